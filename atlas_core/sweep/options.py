"""The options of ``atlas sweep`` (kept free of heavy imports: the CLI loads it always)."""

from __future__ import annotations

import argparse

__all__ = ["OBJECTIVES", "PRUNERS", "add_arguments"]

OBJECTIVES = ("psnr", "psnr_per_second")
PRUNERS = ("median", "halving", "none")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``atlas sweep``."""
    parser.add_argument("study", help="study file (e.g. sweeps/plugin_combos.py)")
    parser.add_argument("--data", required=True, help="scene folder every trial trains on")
    parser.add_argument("--trials", type=int, required=True, help="finished trials in total")
    storage_help = "sqlite:///FILE (default), journal:FILE or postgresql://USER@HOST:PORT/DB"
    parser.add_argument("--storage", help=storage_help)
    parser.add_argument("--study-name", help="default: the study file's NAME or stem")
    budget_help = "training seconds per trial (evaluation excluded)"
    parser.add_argument("--time-budget", type=float, metavar="SECONDS", help=budget_help)
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    grace_help = "seconds without a heartbeat before a running trial counts as dead and is rerun"
    parser.add_argument("--grace", type=int, default=60, metavar="SECONDS", help=grace_help)
    parser.add_argument("--objective", choices=OBJECTIVES, default="psnr")
    parser.add_argument("--pruner", choices=PRUNERS, default="median")
    logger_help = "one W&B run per trial (offline unless WANDB_MODE=online)"
    parser.add_argument("--logger", choices=("wandb", "none"), default="wandb", help=logger_help)
    set_help = "config for every trial (wins over the study's choices)"
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=set_help
    )
    parser.add_argument("--out", help="sweep folder (default: outputs/sweep-<study name>)")
