"""Trainer: steps, evaluation, checkpoints, resume, outputs; calls the lifecycle hooks.

Plugins never see the Trainer: lifecycle hooks get its ``Run`` handle (``engine/run.py``).
"""

from __future__ import annotations

import shlex
import threading
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from atlas_core.build import configure
from atlas_core.capabilities import Grows, RendersViews
from atlas_core.commands.camera_paths import CameraPath, interpolate, read_camera_path
from atlas_core.commands.report import write_report
from atlas_core.commands.video import orbit, write_video
from atlas_core.config import RunConfig, load_toml, save_toml
from atlas_core.data.images import to_uint8
from atlas_core.data.scales import Pyramid
from atlas_core.data.scene import Views, camera_rays, make_rays
from atlas_core.engine import distributed, history
from atlas_core.engine.checkpoints import (
    check_versions,
    latest_checkpoint,
    load_latest,
    save_checkpoint,
)
from atlas_core.engine.error_map import error_map_for, uniform_pixels
from atlas_core.engine.evaluate import REPORTED, chosen_supersample, evaluate
from atlas_core.engine.faults import BadSteps, InterruptRequest, finite_gradients
from atlas_core.engine.optimizers.choice import clip_gradients, make_optimizer
from atlas_core.engine.progress import TrainProgress
from atlas_core.engine.run import Run
from atlas_core.engine.schedule import learning_rate
from atlas_core.engine.setup import (
    check_batch,
    check_losses,
    check_scales,
    crop_side,
    load_scene,
    resolve_device,
)
from atlas_core.errors import AtlasError, Interrupted, PluginError, first_line
from atlas_core.io import atomic_write_json
from atlas_core.nerf.crops import crop_rays, decimate, ray_stride
from atlas_core.nerf.pipeline import assemble, protocol_background
from atlas_core.plugins import AtlasPlugins, load

__all__ = ["Trainer", "load_scene", "load_trained"]


class Trainer:
    """Trains one run in ``out`` and writes its outputs."""

    def __init__(self, config: RunConfig, plugins: AtlasPlugins, out: Path, resume: bool = False):
        self.config, self.plugins, self.out = config, plugins, Path(out)
        self.device = resolve_device(config.device)
        self.world = distributed.init(self.device)  # None unless started by torchrun
        torch.manual_seed(config.seed)
        configure(config, plugins)  # plugins may choose the data kind too (dnerf)
        check_losses(config, plugins)
        self.scene = load_scene(config, plugins)
        self.pipeline = assemble(config, plugins, self.scene).to(self.device)
        config.versions = plugins.versions
        self.optimizer = self.make_optimizer()
        self.train_views = self.scene.split("train").to(self.device)
        check_batch(config, self.pipeline, self.train_views)
        self.error_map = error_map_for(config, self.world, self.train_views)
        check_scales(config, self.error_map is not None, self.train_views)
        self.pyramid = Pyramid(config.train.scales) if config.train.scales > 1 else None
        self.batch_rays = config.train.batch_rays
        self.rays_seen = 0
        self.step = 0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0  # evaluations started from a step hook are not training
        self.progress: TrainProgress | None = None  # the bar, while fit runs
        self.viewer_lock: threading.Lock | None = None  # a live viewer's: held around each step
        self.faults = BadSteps(config.train.max_bad_steps)
        self.history: list[dict[str, Any]] = []
        self.run = Run(self)
        if resume:
            self.restore()

    def make_optimizer(self) -> torch.optim.Optimizer:
        """``train.optimizer`` over the pipeline's trainable parameters, grouped by ``lr_scale``.

        A component tags a parameter with ``tag_parameter(param, lr_scale=...)`` (grids
        learn faster than MLPs, as in DVGO and Instant-NGP); the schedule multiplies every
        group's rate alike. With the default adam, a parameter tagged ``masked_updates``
        switches to MaskedAdam; ``train.train_only`` freezes the rest (``optimizers/``).
        """
        return make_optimizer(self.pipeline, self.config.train)

    @property
    def growing(self) -> list[Grows]:
        """The pipeline's modules with a ``grow`` schedule, found afresh (a growing module
        may replace or drop its submodules)."""
        return [m for m in self.pipeline.modules() if isinstance(m, Grows)]

    def rebuild_optimizer(self) -> None:
        """Start a new optimizer after parameters were replaced (e.g. grid upscaling)."""
        self.optimizer = self.make_optimizer()

    @property
    def checkpoint_dir(self) -> Path:
        """Where checkpoints go."""
        return self.out / "checkpoints"

    def state(self) -> dict[str, Any]:
        """Everything a checkpoint holds."""
        return {
            "step": self.step,
            "train_seconds": self.train_seconds,
            "batch_rays": self.batch_rays,
            "rays_seen": self.rays_seen,
            "model": self.pipeline.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "skipped_steps": self.faults.skipped,
            "config": self.config.to_dict(),
            "plugins": self.plugins.versions,
        }

    @property
    def main(self) -> bool:
        """True in a single process and on rank 0 of a data-parallel run (it writes)."""
        return self.world is None or self.world.main

    def save(self) -> Path | None:
        """Write a checkpoint for the current step (rank 0 only)."""
        if not self.main:
            return None
        keep = self.config.train.keep_checkpoints
        return save_checkpoint(self.checkpoint_dir, self.step, self.state(), keep)

    def restore(self) -> bool:
        """Load the newest readable checkpoint, if any; False when there is none."""
        found = load_latest(self.checkpoint_dir, self.device)
        if found is None:
            return False
        path, state = found
        check_versions(path, dict(state.get("plugins", {})), self.plugins.versions)
        try:
            self.pipeline.load_state_dict(state["model"])
            self.rebuild_optimizer()  # parameters may have been resized while loading
            self.optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"].cpu())
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise AtlasError(f"{path}: does not match this run's model: {first_line(exc)}") from exc
        self.faults.skipped = int(state.get("skipped_steps", 0))
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.batch_rays = int(state.get("batch_rays", self.batch_rays))
        self.rays_seen = int(state.get("rays_seen", 0))
        if self.main:
            history.trim_after(self.out / history.FILE, self.step)
        return True

    def log_history(self, entry: dict[str, Any]) -> None:
        """Append one line to the run's history.jsonl (rank 0)."""
        if self.main:
            history.append_entry(self.out / history.FILE, entry)

    def learning_rate(self) -> float:
        """This step's learning rate (``atlas_core.engine.schedule``)."""
        return learning_rate(self.config.train, self.step, self.train_seconds)

    def sample_batch(self) -> Any:
        """Random rays across all training images (``train.batch = rays``), or crops."""
        if self.config.train.batch != "rays":
            return self.sample_crops()
        views, count = self.step_views(), self.batch_rays
        if self.pyramid is not None:  # Mip-NeRF's multiscale training
            rays = self.pyramid.rays(views, count, self.scene)
            (index,) = distributed.shard(self.world, torch.arange(len(rays)))
            return rays if self.world is None else rays[index.to(self.device)]
        drawn = self.error_map and self.error_map.draw(views, count)
        images, rows, cols = drawn or uniform_pixels(views, count, self.device)
        images, rows, cols = distributed.shard(self.world, images, rows, cols)
        train, offsets = self.config.train, None
        if train.pixel_jitter and self.step >= train.pixel_jitter_start:  # as Instant-NGP
            offsets = torch.rand(len(rows), 2, device=rows.device) - 0.5
        return make_rays(views, images, rows, cols, self.scene, offsets=offsets)

    def sample_crops(self) -> Any:
        """Random square crops (``crops``) or whole views (``views``), about ``batch_rays``
        rays in all (at least one crop per rank); each rank gets crops of its own."""
        views, train = self.step_views(), self.config.train
        stride = ray_stride(self.pipeline)  # rays per crop: one per stride x stride block
        size = (views.height, views.width)
        if train.batch == "crops":
            size = (crop_side(self.config, views, stride),) * 2
        ranks = 1 if self.world is None else self.world.size
        count = max(1, self.batch_rays * stride * stride // (size[0] * size[1]) // ranks) * ranks
        images = torch.randint(len(views), (count,)).to(self.device)
        tops = torch.randint(views.height - size[0] + 1, (count,)).to(self.device)
        lefts = torch.randint(views.width - size[1] + 1, (count,)).to(self.device)
        images, tops, lefts = distributed.shard(self.world, images, tops, lefts)
        rays = crop_rays(views, images, tops, lefts, size, self.scene)
        return rays if stride == 1 else decimate(rays, stride)

    def step_views(self) -> Views:
        """This step's training views: a plugin's ``atlas_train_views``, else the scene's."""
        found = self.plugins.results("atlas_train_views", run=self.run, step=self.step)
        if len(found) > 1:
            names = " and ".join(f"'{name}'" for name, _ in found)
            raise PluginError(f"plugins {names} both supply the training views of a step")
        if not found:
            return self.train_views
        name, views = found[0]
        if not isinstance(views, Views):
            raise PluginError(
                f"plugin '{name}': atlas_train_views returned {type(views).__name__}, not Views"
            )
        return views.to(self.device)

    def view_pipeline(self) -> Any:
        """What renders whole views for evaluation and videos: the pipeline, or the adapter
        of a ``RendersViews`` renderer (``renderer.view_renderer(pipeline, scene)``, e.g.
        neural upsampling renders a low-resolution image and upsamples it)."""
        renderer = self.pipeline.renderer
        if isinstance(renderer, RendersViews):
            return renderer.view_renderer(self.pipeline, self.scene)
        return self.pipeline

    def train_step(self) -> dict[str, float]:
        """One optimizer step; returns the loss terms and the learning rate."""
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        rays = self.sample_batch()
        outputs, field_outputs = self.pipeline(rays)
        if self.error_map is not None:
            self.error_map.record(outputs)
        total, terms = self.pipeline.loss(rays, outputs, field_outputs)
        self.optimizer.zero_grad(set_to_none=True)
        self.faults.record(self.apply_update(total))
        metrics = {name: float(value.detach()) for name, value in terms.items()}
        loss = distributed.mean(self.world, float(total.detach()))
        metrics.update(loss=loss, lr=lr, rays=distributed.total(self.world, len(rays)))
        metrics["samples"] = distributed.total(self.world, self.pipeline.last_num_samples)
        self.adapt_batch(metrics["samples"])
        return metrics

    def apply_update(self, total: torch.Tensor) -> bool:
        """Backpropagate and step, unless the loss or a gradient is NaN/Inf (then skip).

        In a data-parallel run every rank joins the gradient all-reduce, and all skip
        together when any rank's loss was not finite.
        """
        finite = distributed.everywhere(self.world, bool(torch.isfinite(total.detach())))
        if not finite and self.world is None:
            return False
        total.backward()
        distributed.average_gradients(self.world, self.pipeline.parameters())
        if not finite or not finite_gradients(self.pipeline.parameters()):
            self.optimizer.zero_grad(set_to_none=True)
            return False
        if self.config.train.grad_clip > 0:
            clip_gradients(self.pipeline.parameters(), self.config.train.grad_clip)
        self.optimizer.step()
        return True

    def adapt_batch(self, samples: int) -> None:
        """Steer the ray batch so a step holds about ``train.target_samples`` samples.

        With an occupancy grid the samples per ray fall as empty space is found; a
        fixed sample budget keeps each step's cost steady (as Instant-NGP does).
        """
        target = self.config.train.target_samples
        if target <= 0:
            return
        per_ray = max(samples, 1) / self.batch_rays
        wanted = target / per_ray
        # shrink at once (a step far over budget is costly), grow smoothly
        smoothed = wanted if wanted < self.batch_rays else 0.8 * self.batch_rays + 0.2 * wanted
        self.batch_rays = int(min(max(smoothed, 256), 1 << 17))

    def done(self) -> bool:
        """True once the step count or the time budget is reached."""
        train = self.config.train
        if self.step >= train.max_steps:
            return True
        return train.time_budget > 0 and self.train_seconds >= train.time_budget

    def keep_training(self) -> bool:
        """True while no rank is done: ranks' clocks differ, yet they must stop together."""
        if self.world is None or self.config.train.time_budget <= 0:
            return not self.done()
        return distributed.everywhere(self.world, not self.done())

    def fit(self) -> None:
        """Train until done, saving and (optionally) evaluating along the way.

        The first Ctrl-C stops after the current step, saves a checkpoint and raises
        Interrupted; too many non-finite steps in a row raise an AtlasError, and so does
        a data-parallel rank that vanished (after rank 0 saved a checkpoint).
        """
        self.plugins.call("atlas_train_start", run=self.run)
        self.pipeline.train()
        train = self.config.train
        self.progress = TrainProgress(
            train.max_steps, train.time_budget, self.step, self.train_seconds, quiet=not self.main
        )
        with InterruptRequest() as interrupt:
            try:
                while self.keep_training() and not interrupt.requested:
                    self.fit_step(self.progress)
            except distributed.RankLost as exc:
                raise self.lost_rank(exc) from exc
            finally:
                self.progress.close()
                self.progress = None
            self.save()
        if interrupt.requested:
            raise Interrupted(
                f"interrupted at step {self.step} (checkpoint saved); resume with: "
                f"atlas run --resume --out {shlex.quote(str(self.out))}"
            )

    def fit_step(self, progress: TrainProgress) -> None:
        """One training step, holding ``viewer_lock`` when a live viewer is attached (so the
        viewer never renders a half-updated model)."""
        if self.viewer_lock is None:
            self.step_once(progress)
            return
        with self.viewer_lock:
            self.step_once(progress)

    def step_once(self, progress: TrainProgress) -> None:
        """One training step with its hook call, logging, checkpoint and evaluation."""
        train = self.config.train
        start = time.perf_counter()
        metrics = self.train_step()
        self.step += 1
        self.rays_seen += metrics["rays"]
        if any([module.grow(self.step) for module in self.growing]):
            self.rebuild_optimizer()  # grids grew (DVGO's progressive scaling)
        hook_start = time.perf_counter()
        self.train_seconds += hook_start - start
        self.run._collect(metrics)
        evaluated = self.eval_seconds
        try:
            self.plugins.call("atlas_train_step_end", run=self.run, step=self.step, metrics=metrics)
        finally:
            self.run._collect(None)
        # the hook's work is training too (a voxel field's box fit and upscaling, an SDF
        # conversion); an evaluation it starts (a sweep's intermediate rungs) is not
        hook = time.perf_counter() - hook_start
        self.train_seconds += hook - (self.eval_seconds - evaluated)
        if self.faults.exhausted:
            raise self.numeric_failure()
        if self.step % train.log_every == 0:
            self.history.append({"step": self.step, **metrics})
            self.log_history({"step": self.step, "seconds": self.train_seconds, **metrics})
        progress.update(self.step, self.train_seconds, metrics["loss"])
        if self.step % train.save_every == 0 and self.faults.in_row == 0:
            self.save()  # never during a run of bad steps: the last good one stays
        if train.eval_every and self.step % train.eval_every == 0:
            self.evaluate(write_images=False)

    def lost_rank(self, exc: distributed.RankLost) -> AtlasError:
        """Save the last completed step (rank 0) and say how to resume.

        Collectives all run before the optimizer step, so the parameters are still those
        of step ``self.step`` when one fails.
        """
        saved = self.save()
        kept = f"checkpoint saved: {saved}" if saved else "rank 0 saves the checkpoints"
        return AtlasError(
            f"step {self.step}: lost contact with another rank ({exc}); {kept}; resume with: "
            f"atlas run --resume --out {shlex.quote(str(self.out))} (alone, or under "
            "torchrun on every node)"
        )

    def numeric_failure(self) -> AtlasError:
        """The error that stops a run after ``train.max_bad_steps`` bad steps in a row."""
        last = latest_checkpoint(self.checkpoint_dir)
        kept = f"last good checkpoint: {last}" if last else "no checkpoint was written"
        return AtlasError(
            f"step {self.step}: loss or gradient was NaN/Inf in {self.faults.in_row} steps "
            f"in a row (train.max_bad_steps); {kept}; try a lower train.lr"
        )

    def evaluate(self, write_images: bool = True) -> dict[str, Any]:
        """Evaluate on the test split and call ``atlas_eval_end`` (rank 0 only)."""
        if not self.main:
            return distributed.skipped_eval()
        start = time.perf_counter()
        result = self.score("test", self.out / "test" if write_images else None)
        if self.progress is not None:
            self.progress.evaluated(result["psnr"])
        scores = {key: result[key] for key in ("psnr", "ssim", "views", "multiscale_psnr")
                  if key in result}  # fmt: skip
        self.log_history({"step": self.step, "seconds": self.train_seconds, "eval": scores})
        try:
            self.plugins.call("atlas_eval_end", run=self.run, step=self.step, metrics=result)
        finally:
            self.eval_seconds += time.perf_counter() - start  # the hook's logging included
        return result

    def score(self, split: str, out_dir: Path | None) -> dict[str, Any]:
        """Render and score ``split``'s evaluation views (images to ``out_dir`` unless None);
        no history, hooks or progress: ``evaluate`` adds those for the test split."""
        settings = self.config.eval
        supersample = chosen_supersample(settings.supersample, self.train_views)
        return evaluate(self.view_pipeline(), self.scene, self.device, settings.views,
                        settings.chunk, out_dir, split, scales=self.config.train.scales,
                        supersample=supersample)  # fmt: skip

    def render_video(self, path: Path, frames: int, camera_path: str = "turntable") -> Path:
        """Render a camera path to ``path`` (mp4 or gif).

        ``camera_path``: ``orbit``/``turntable`` or ``spiral`` around the scene,
        ``interpolate`` through the training cameras, or a nerfstudio camera_path.json.
        """
        views = self.scene.split("train")
        if camera_path.endswith(".json"):
            cameras = read_camera_path(Path(camera_path))
        else:
            if camera_path == "interpolate":
                poses = interpolate(views.c2w, frames)
            else:
                poses = orbit(views.c2w, frames, camera_path)
            focals = [views.focal] * len(poses)
            cameras = CameraPath(poses, focals, views.width, views.height, self.config.eval.fps)
        self.pipeline.eval()
        images = []
        renderer = self.view_pipeline()
        shown = Path(camera_path).name
        steps = zip(cameras.poses.to(self.device), cameras.focals, strict=True)
        for pose, focal in tqdm(list(steps), desc=f"render {shown}", leave=False):
            rays = camera_rays(pose, focal, cameras.width, cameras.height, self.scene)
            rgb = renderer.render(rays, self.config.eval.chunk)["rgb"]
            images.append(to_uint8(rgb.view(cameras.height, cameras.width, 3)))
        return write_video(path, images, cameras.fps)

    def metrics(self, test: dict[str, Any]) -> dict[str, Any]:
        """The run's metrics.json content."""
        views = self.scene.split("test")
        return {
            "test": {key: test[key] for key in REPORTED if key in test},
            "steps": self.step,
            "skipped_steps": self.faults.skipped,
            "train_seconds": self.train_seconds,
            "rays_per_second": self.rays_seen / max(self.train_seconds, 1e-9),
            "protocol": {
                "data": self.config.data.path,
                "data_kind": self.config.data.kind,
                "split": "test" if "test" in self.scene.splits else "train",
                "views": test["views"],
                "resolution": [views.height, views.width],
                "background": protocol_background(self.config),
            },
            "plugins": self.plugins.versions,
            "device": str(self.device),
        }

    def finish(self, video: bool = True) -> dict[str, Any]:
        """Final evaluation, video, metrics.json and report.html; calls ``atlas_train_end``."""
        test = self.evaluate()
        if not self.main:
            return self.metrics(test)
        if video and self.config.eval.video_frames > 0:
            self.render_video(self.out / "video.mp4", self.config.eval.video_frames)
        metrics = self.metrics(test)
        atomic_write_json(self.out / "metrics.json", metrics)
        write_report(self.out)
        self.plugins.call("atlas_train_end", run=self.run, metrics=metrics)
        return metrics

    def write_config(self) -> None:
        """Save config.toml (with plugin versions) into the run folder."""
        if self.main:
            save_toml(self.config, self.out / "config.toml")


def load_trained(
    run_dir: str | Path, device: str | None = None, eval_views: int | None = None
) -> Trainer:
    """The run in ``run_dir`` rebuilt from its config.toml and its newest checkpoint."""
    out = Path(run_dir)
    config = load_toml(out / "config.toml")
    if device:
        config.set("device", device)
    if eval_views is not None:
        config.set("eval.views", eval_views)
    trainer = Trainer(config, load(config.plugins), out)
    if not trainer.restore():
        raise AtlasError(f"{out / 'checkpoints'}: no checkpoint to load")
    return trainer
