"""The ``atlas`` command: run | eval | render | export | report | view | plugins | sweep | data."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shlex
import sys
from datetime import datetime
from pathlib import Path

from atlas_core import __version__
from atlas_core.commands.camera_paths import read_camera_path
from atlas_core.commands.video import PATHS
from atlas_core.config import RunConfig, apply_overrides, load_toml
from atlas_core.engine.trainer import Trainer, load_trained
from atlas_core.errors import AtlasError, Interrupted, PluginFailure, first_line
from atlas_core.failures import DEBUG_HELP, culprit, debugging, report_bug
from atlas_core.io import atomic_write_json
from atlas_core.plugins import describe_installed, installed, load
from atlas_core.sweep.options import add_arguments as add_sweep_arguments

__all__ = [
    "COMMANDS",
    "RESUME_FIXED",
    "build_parser",
    "cmd_data",
    "cmd_eval",
    "cmd_export",
    "cmd_plugins",
    "cmd_render",
    "cmd_report",
    "cmd_run",
    "cmd_sweep",
    "cmd_view",
    "main",
    "synth_component",
]

RESUME_FIXED = ("config", "data", "data_kind", "plugins", "overrides", "seed")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="atlas", description="NeRF Atlas: composable NeRFs.")
    parser.add_argument("--version", action="version", version=f"nerf-atlas {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    common = argparse.ArgumentParser(add_help=False)  # --debug after the command works too
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    command = functools.partial(sub.add_parser, parents=[common])

    run = command("run", help="train a model and write a run folder")
    run.add_argument("--config", help="TOML config to start from (e.g. a run's config.toml)")
    run.add_argument("--data", help="scene folder")
    run.add_argument("--data-kind", help="data kind (default: auto, found from the folder's files)")
    run.add_argument("--plugins", help="comma-separated plugins to enable")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--out", help="run folder (default: outputs/<scene>-<time>)")
    run.add_argument("--max-steps", type=int)
    run.add_argument("--time-budget", type=float, metavar="SECONDS")
    run.add_argument("--eval-views", type=int, metavar="N")
    run.add_argument("--save-every", type=int, metavar="STEPS")
    run.add_argument("--resume", action="store_true", help="continue the run in --out")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"))
    run.add_argument("--seed", type=int)
    run.add_argument("--logger", choices=("none", "wandb"))
    run.add_argument("--viewer", action="store_true", help="watch training in a browser (viser)")
    run.add_argument(
        "--viewer-port", type=int, default=7007, metavar="PORT", help="viewer port (7007)"
    )

    ev = command(
        "eval",
        help="recompute a run's test metrics from its last checkpoint "
        "(or score its training views: --split train)",
    )
    ev.add_argument("run_dir")
    ev.add_argument("--eval-views", type=int, metavar="N")
    ev.add_argument("--device", choices=("auto", "cpu", "cuda"))
    ev.add_argument(
        "--split",
        choices=("test", "train", "val"),
        default="test",
        help="test (default: rewrites metrics.json and report.html); train or val: scores "
        "those views into RUN/eval-SPLIT/ and leaves the run's metrics as they are",
    )

    render = command("render", help="render a video from a trained run")
    render.add_argument("run_dir")
    path_help = "orbit, turntable, spiral, interpolate (through the training cameras) or a "
    path_help += "nerfstudio camera_path.json (its cameras, size and fps)"
    render.add_argument(
        "--path", default="spiral", metavar="|".join(PATHS) + "|FILE.json", help=path_help
    )
    render.add_argument("--frames", type=int, help="frames of a generated path (default 48)")
    render.add_argument("--output", help="video file (.mp4 or .gif); default RUN_DIR/<path>.mp4")
    render.add_argument("--device", choices=("auto", "cpu", "cuda"))
    render.add_argument(
        "--over-time", action="store_true", help="fixed test camera, time swept over [0, 1]"
    )
    render.add_argument("--camera", type=int, metavar="K", help="test camera for --over-time")

    export = command("export", help="export a trained run's geometry (mesh.ply)")
    export.add_argument("run_dir")
    export.add_argument("what", choices=("mesh",))
    export.add_argument("--resolution", type=int, default=256, help="grid nodes per axis")
    export.add_argument("--level", type=float, help="iso-level (default: 0 for an SDF, 25 density)")
    export.add_argument(
        "--min-component",
        type=float,
        default=0.0,
        help="drop components with fewer faces than this fraction of the largest's (0: keep all)",
    )
    export.add_argument("--device", choices=("auto", "cpu", "cuda"))
    export.add_argument("--visible-only", action="store_true", help="keep faces training views see")

    report = command("report", help="write a run's report.html (curves, test views, config)")
    report.add_argument("run_dir")
    report.add_argument("--output", help="HTML file (default RUN_DIR/report.html)")

    view = command("view", help="look at a trained run in a browser (viser), until Ctrl-C")
    view.add_argument("run_dir")
    view.add_argument("--port", type=int, default=7007, help="port on 127.0.0.1 (7007)")
    view.add_argument("--device", choices=("auto", "cpu", "cuda"))

    plugins = command("plugins", help="list, or install, plugins")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins_sub = plugins.add_subparsers(dest="plugins_command")
    install = plugins_sub.add_parser(
        "install", parents=[common], help="pip-install plugins by name (NAME is atlas-plugin-NAME)"
    )
    install.add_argument("names", nargs="+", metavar="NAME", help="plugin name, or a pip spec")
    install.add_argument(
        "--find-links",
        action="append",
        default=[],
        metavar="URL_OR_DIR",
        help="a folder or page of wheels, e.g. make dist's dist/ (repeatable)",
    )
    install.add_argument("--index-url", metavar="URL", help="a package index instead of PyPI")
    install.add_argument("--upgrade", "-U", action="store_true", help="upgrade if installed")

    sweep = command("sweep", help="run an Optuna study: one atlas run per trial")
    add_sweep_arguments(sweep)

    data = command("data", help="data tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    synth = data_sub.add_parser(
        "synth", parents=[common], help="write a generated scene of a data kind"
    )
    synth.add_argument("out")
    synth.add_argument("--kind", default="blender", help="data kind (a plugin's, once installed)")
    synth.add_argument("--size", type=int, default=64, help="image width and height")
    synth.add_argument("--seed", type=int, default=0, help="random draws of the generator")
    synth.add_argument("--train-views", type=int, help="training views (kind blender; 100)")
    from atlas_core.data.process import CAMERA_MODELS, DEFAULT_FRAMES, MATCHERS

    process = data_sub.add_parser(
        "process", parents=[common], help="photos or a video into a scene (SfM with pycolmap)"
    )
    process.add_argument("input", help="a folder of photos (.jpg, .png) or a video file")
    process.add_argument("--out", required=True, help="scene folder to write")
    process.add_argument("--frames", type=int, help=f"frames kept from a video ({DEFAULT_FRAMES})")
    process.add_argument(
        "--matcher", choices=MATCHERS, help="default: exhaustive up to 100 photos, else sequential"
    )
    process.add_argument(
        "--camera-model",
        choices=CAMERA_MODELS,
        default=CAMERA_MODELS[0],
        help="COLMAP camera shared by every image (written as OPENCV)",
    )
    process.add_argument(
        "--threads",
        type=int,
        help="threads for COLMAP's features, matching and mapping (default: every core; "
        "1 makes the same scene from the same input on every run)",
    )
    process.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    return parser


def _apply_run_args(config: RunConfig, args: argparse.Namespace) -> None:
    """Overlay command-line options on a config (they win over the file)."""
    pairs = {
        "train.max_steps": args.max_steps,
        "train.time_budget": args.time_budget,
        "eval.views": args.eval_views,
        "train.save_every": args.save_every,
        "device": args.device,
        "logger": args.logger,
    }
    for key, value in pairs.items():
        if value is not None:
            config.set(key, value, source=f"--{key.split('.')[-1].replace('_', '-')}")


def _run_config(args: argparse.Namespace) -> tuple[RunConfig, Path]:
    if args.resume:
        if not args.out:
            raise AtlasError("--resume needs --out RUN_DIR")
        given = [name for name in RESUME_FIXED if getattr(args, name)]
        if given:
            flags = ", ".join("--" + g.replace("_", "-").replace("overrides", "set") for g in given)
            raise AtlasError(f"--resume reuses {args.out}/config.toml; drop {flags}")
        out = Path(args.out)
        if not (out / "config.toml").is_file():
            raise AtlasError(
                f"{out}: no config.toml, so there is no run to resume; start it without --resume"
            )
        config = load_toml(out / "config.toml")
        _apply_run_args(config, args)
        return config, out
    config = load_toml(args.config) if args.config else RunConfig()
    if args.data:
        config.data.path = args.data
    if args.data_kind:
        config.set("data.kind", args.data_kind)
    if args.plugins is not None:
        config.plugins = [p.strip() for p in args.plugins.split(",") if p.strip()]
    if args.seed is not None:
        config.set("seed", args.seed)
    apply_overrides(config, args.overrides)
    _apply_run_args(config, args)
    if not config.data.path:
        raise AtlasError("no data: pass --data DIR (make one with `atlas data synth DIR`)")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"outputs/{Path(config.data.path).name}-{config.field.name}-{stamp}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AtlasError(f"{out}: already exists and is not empty; use --resume or another --out")
    config.name = config.name or out.name
    return config, out


def _plugins_for(config: RunConfig):  # noqa: ANN202
    return load(config.plugins, builtins=("wandb",) if config.logger == "wandb" else ())


def cmd_run(args: argparse.Namespace) -> int:
    """Train, evaluate, render and write the run folder (watched in a browser with --viewer)."""
    if args.viewer:
        from atlas_core.viewer.server import require_viser

        require_viser()  # fail before training, not after
    config, out = _run_config(args)
    trainer = Trainer(config, _plugins_for(config), out, resume=args.resume)
    out.mkdir(parents=True, exist_ok=True)
    trainer.write_config()
    watched = args.viewer and trainer.main  # under torchrun, rank 0 serves it
    viewer = _start_viewer(trainer, args.viewer_port, training=True) if watched else None
    try:
        trainer.viewer_lock = viewer.lock if viewer else None
        trainer.fit()
        with trainer.viewer_lock or contextlib.nullcontext():  # evaluation toggles eval mode
            metrics = trainer.finish()
    except KeyboardInterrupt as exc:  # a second Ctrl-C, or one during evaluation
        raise Interrupted(
            f"interrupted at step {trainer.step}; resume with: "
            f"atlas run --resume --out {shlex.quote(str(out))}"
        ) from exc
    finally:
        if viewer is not None:
            viewer.stop()
    test = metrics["test"]
    print(
        f"{out}: test PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.3f} "
        f"({test['views']} views), {metrics['steps']} steps in {metrics['train_seconds']:.0f} s"
    )
    return 0


def _start_viewer(trainer: Trainer, port: int, training: bool):  # noqa: ANN202 - a Viewer
    """Start the live viewer on 127.0.0.1 and say where it is."""
    from atlas_core.viewer.server import DEFAULT_HOST, Viewer

    viewer = Viewer(trainer, DEFAULT_HOST, port, training=training)
    print(
        f"viewer: {viewer.url} (ssh -L {viewer.port}:localhost:{viewer.port} HOST for a remote run)"
    )
    return viewer


def cmd_view(args: argparse.Namespace) -> int:
    """Serve a trained run in the live viewer until Ctrl-C."""
    from atlas_core.viewer.server import require_viser

    require_viser()
    if not (Path(args.run_dir) / "config.toml").is_file():
        raise AtlasError(f"{args.run_dir}: not a run folder (no config.toml)")
    viewer = _start_viewer(load_trained(args.run_dir, args.device), args.port, training=False)
    try:
        viewer.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Recompute test metrics and rewrite metrics.json and report.html (or score another
    split into its own folder)."""
    from atlas_core.commands.report import write_report

    trainer = load_trained(args.run_dir, args.device, args.eval_views)
    if args.split != "test":  # another split, into its own folder: the test metrics stay
        if args.split not in trainer.scene.splits:
            raise AtlasError(f"{trainer.out}: the scene has no '{args.split}' split")
        folder = trainer.out / f"eval-{args.split}"
        result = trainer.score(args.split, folder)
        keep = ("psnr", "ssim", "views", "per_view_psnr", "per_view_ssim", "per_view_names")
        scores = {key: result[key] for key in keep} | {"step": trainer.step}
        atomic_write_json(folder / "metrics.json", scores)
        print(
            f"{folder}: {args.split} PSNR {result['psnr']:.2f} dB, SSIM {result['ssim']:.3f} "
            f"({result['views']} views)"
        )
        return 0
    metrics = trainer.metrics(trainer.evaluate())
    atomic_write_json(trainer.out / "metrics.json", metrics)
    write_report(trainer.out)
    test = metrics["test"]
    print(f"{trainer.out}: test PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.3f}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Render a camera path to a video file."""
    from_file = args.path.endswith(".json")
    if from_file and args.frames is not None:
        raise AtlasError(f"--frames does not apply to {args.path}: it renders one frame a camera")
    if not from_file and args.path not in PATHS:
        raise AtlasError(f"--path {args.path}: choose {', '.join(PATHS)} or a FILE.json")
    args.frames = 48 if args.frames is None else args.frames
    if args.frames < 1:
        raise AtlasError(f"--frames must be >= 1, got {args.frames}")
    if args.over_time or args.camera is not None:
        return _render_over_time(args)
    if from_file:
        read_camera_path(Path(args.path))  # a bad file fails before the run loads
    stem = Path(args.path).stem
    output = Path(args.output) if args.output else Path(args.run_dir) / f"{stem}.mp4"
    if output.suffix.lower() not in (".mp4", ".gif"):
        raise AtlasError(f"{output}: video must end in .mp4 or .gif")
    trainer = load_trained(args.run_dir, args.device)
    path = trainer.render_video(output, args.frames, args.path)
    print(f"wrote {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write a run's report.html."""
    from atlas_core.commands.report import write_report

    print(f"wrote {write_report(Path(args.run_dir), args.output)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Extract the trained field's surface into RUN_DIR/mesh.ply (atlas_core.commands.export)."""
    from atlas_core.commands.export import cmd_export as export

    return export(args)


def _render_over_time(args: argparse.Namespace) -> int:
    """``render --over-time --camera K``: a dynamic scene seen from one test camera."""
    from atlas_core.commands.video import render_over_time, write_video

    if not args.over_time or args.camera is None:
        raise AtlasError("--over-time and --camera K go together")
    name = f"over-time-camera{args.camera}.mp4"
    output = Path(args.output) if args.output else Path(args.run_dir) / name
    if output.suffix.lower() not in (".mp4", ".gif"):
        raise AtlasError(f"{output}: video must end in .mp4 or .gif")
    trainer = load_trained(args.run_dir, args.device)
    chunk = trainer.config.eval.chunk
    images = render_over_time(trainer.pipeline, trainer.scene, args.camera, args.frames, chunk)
    print(f"wrote {write_video(output, images, trainer.config.eval.fps)}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """List installed plugins (built-ins included) and what each registers, or install."""
    if args.plugins_command == "install":
        from atlas_core.commands.install import install

        return install(
            args.names,
            find_links=args.find_links,
            index_url=args.index_url,
            upgrade=args.upgrade,
        )
    infos = describe_installed()
    if args.json:
        print(json.dumps([info.as_dict() for info in infos], indent=2))
        return 0
    for info in infos:
        status = f"BROKEN: {info.error}" if info.error else ""
        print(f"{info.name:12} {info.distribution:24} {info.version:10} {status}")
        for text in info.warnings:
            print(f"    warning    {text}")
        for kind, names in info.components.items():
            print(f"    {kind:10} {', '.join(names)}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """Data tools: ``synth`` writes a generated scene of a data kind; ``process`` runs
    structure from motion on photos or a video (atlas_core.commands.process)."""
    if args.data_command == "process":
        from atlas_core.commands.process import cmd_process

        return cmd_process(args)
    component = synth_component(args.kind)
    options = {"size": args.size, "seed": args.seed}
    if args.train_views is not None:
        if args.kind != "blender":
            raise AtlasError(f"--train-views applies to --kind blender, not '{args.kind}'")
        options["train_views"] = args.train_views
    try:
        out = component.synth(Path(args.out), **options)
    except (FileExistsError, ValueError) as exc:
        raise AtlasError(f"{args.out}: {exc}") from exc
    print(f"wrote {out} (data kind '{args.kind}', {args.size}px, from '{component.plugin}')")
    return 0


def synth_component(kind: str):  # noqa: ANN201 - a registry Component
    """The data kind ``kind`` from the core or the installed plugin that registers it."""
    for names in ([], *([name] for name in sorted(installed()))):
        try:
            registry = load(names).registry
        except AtlasError:
            continue  # a broken plugin cannot supply the kind; `atlas plugins` reports it
        if kind in registry.names("datasets"):
            component = registry.get("datasets", kind)
            if component.synth is None:
                raise AtlasError(f"data kind '{kind}' ('{component.plugin}') has no generator")
            return component
    raise AtlasError(f"no installed plugin registers data kind '{kind}'")


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run or resume a sweep (see atlas_core.sweep)."""
    from atlas_core.sweep.runner import sweep

    return sweep(args)


COMMANDS = {
    "run": cmd_run,
    "eval": cmd_eval,
    "render": cmd_render,
    "export": cmd_export,
    "report": cmd_report,
    "view": cmd_view,
    "plugins": cmd_plugins,
    "sweep": cmd_sweep,
    "data": cmd_data,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``atlas`` console script.

    Exit codes: 0 done, 2 a user error (one line), 1 a bug in a plugin or the core (one
    line naming it; the traceback with ``--debug``), 130 interrupted.
    """
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AtlasError as exc:
        print(f"atlas: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"atlas: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("atlas: interrupted", file=sys.stderr)
        return 130
    except PluginFailure as exc:
        return report_bug(f"{exc} (a bug in the plugin)", exc.error, debugging(args))
    except Exception as exc:  # noqa: BLE001 - a bug: named, traceback with --debug
        message = f"unexpected {first_line(exc)} in {culprit(exc)}"
        return report_bug(message, exc, debugging(args))


if __name__ == "__main__":
    sys.exit(main())
