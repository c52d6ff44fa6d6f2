"""Data-parallel training across processes started by ``torchrun``.

``torchrun --nproc-per-node N -m atlas_core run ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; each rank then trains the same model on its share of every ray batch.
All ranks draw the same global batch (same seed, so the same random stream) and keep
rows ``rank::world``; after the backward pass their gradients are averaged with an
all-reduce, the synchronisation that DistributedDataParallel performs. It is done by
hand because plugins may replace parameters mid-run (grid upscaling) and some
parameters get no gradient on a step. The backend is gloo on CPU and nccl on CUDA;
rank 0 alone writes checkpoints, metrics, images and logs.

A collective that fails (a rank's process or machine died, its connection reset) raises
``RankLost``; the trainer then saves a checkpoint on rank 0 and stops with one line
saying how to resume, instead of a traceback or a hang.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from atlas_core.errors import AtlasError, first_line

__all__ = [
    "TIMEOUT",
    "RankLost",
    "World",
    "average_gradients",
    "current",
    "everywhere",
    "finish",
    "init",
    "mean",
    "requested",
    "shard",
    "skipped_eval",
    "total",
]


class RankLost(AtlasError):
    """A collective failed: another rank of the run is gone."""


def _collective(operation: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run a torch.distributed collective; a failed one raises RankLost."""
    try:
        operation(*args, **kwargs)
    except RuntimeError as exc:  # gloo and nccl report a vanished peer as RuntimeError
        text = re.sub(r"\[[^\]]*\.(cc|cpp):\d+\] ", "", first_line(exc))  # C++ source line
        raise RankLost(text.split(". This is typically")[0]) from exc


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a data-parallel run."""

    rank: int
    size: int
    local_rank: int

    @property
    def main(self) -> bool:
        """True on rank 0, the rank that writes outputs."""
        return self.rank == 0


def requested() -> bool:
    """True when ``torchrun`` (or the env it sets) asks for more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


TIMEOUT = timedelta(hours=6)  # other ranks wait while rank 0 evaluates and renders


def init(device: torch.device) -> World | None:
    """Join the process group described by the environment; None for a single process."""
    if not requested():
        return None
    if dist.is_initialized():
        return current()
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise AtlasError(f"WORLD_SIZE > 1 but {', '.join(missing)} unset: start with torchrun")
    world = World(
        rank=int(os.environ["RANK"]),
        size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    # Importing dynamo once a group exists makes it hold references to the group (torch
    # 2.13; creating an optimizer imports it), so destroy_process_group would leave gloo's
    # worker threads running into interpreter exit, where one freeing a tensor aborts the
    # rank ("terminate called without an active exception"). Imported first, it does not.
    import torch._dynamo  # noqa: F401

    backend = "gloo"
    if device.type == "cuda":
        backend = "nccl"
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=TIMEOUT)
    return world


def current() -> World | None:
    """The World of an initialised process group, else None."""
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() < 2:
        return None
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return World(dist.get_rank(), dist.get_world_size(), local)


def shard(world: World | None, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """This rank's rows ``rank::size`` of each tensor (all of them without a world).

    Rows past a multiple of ``size`` are dropped, so every rank gets as many: the mean of
    the ranks' mean losses is then the global mean, and their random streams stay equal.
    """
    if world is None:
        return tensors
    return tuple(t[: len(t) // world.size * world.size][world.rank :: world.size] for t in tensors)


def average_gradients(world: World | None, params: Iterable[torch.nn.Parameter]) -> None:
    """All-reduce and average gradients; a parameter without one counts as zero.

    Sparse row gradients (voxel grids) are made dense first: ranks touch different rows.
    """
    if world is None:
        return
    for param in params:
        if not param.requires_grad:
            continue
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        elif param.grad.is_sparse:
            param.grad = param.grad.to_dense()
        _collective(dist.all_reduce, param.grad, op=dist.ReduceOp.SUM)
        param.grad.div_(world.size)


def _reduce(value: float, dtype: torch.dtype) -> float:
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([value], dtype=dtype, device=device)
    _collective(dist.all_reduce, tensor, op=dist.ReduceOp.SUM)
    return tensor.item()


def mean(world: World | None, value: float) -> float:
    """The mean of a scalar over ranks (the value itself without a world)."""
    if world is None:
        return value
    return _reduce(value, torch.float64) / world.size


def total(world: World | None, value: int) -> int:
    """The sum of an integer over ranks."""
    if world is None:
        return value
    return int(_reduce(value, torch.int64))


def everywhere(world: World | None, flag: bool) -> bool:
    """True when ``flag`` holds on every rank."""
    if world is None:
        return flag
    return total(world, int(not flag)) == 0


def skipped_eval() -> dict[str, Any]:
    """What ranks other than 0 return from evaluation: they render nothing."""
    nan = float("nan")
    return {
        "psnr": nan, "ssim": nan, "views": 0, "seconds_per_view": 0.0,
        "per_view_psnr": [], "per_view_ssim": [], "per_view_names": [],
    }  # fmt: skip


def finish(world: World | None) -> None:
    """Wait for every rank, then leave the process group."""
    if world is not None and dist.is_initialized():
        _collective(dist.barrier)
        dist.destroy_process_group()
