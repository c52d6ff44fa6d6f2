"""The learning-rate schedule of a run (``train.schedule``)."""

from __future__ import annotations

import math

from atlas_core.config import TrainConfig

__all__ = ["learning_rate"]


def learning_rate(train: TrainConfig, step: int, seconds: float) -> float:
    """``train.schedule`` from ``lr`` to ``lr_final`` over steps or the time budget.

    ``exponential`` (the default) decays geometrically, ``cosine`` follows half a cosine
    (Loshchilov and Hutter 2017, SGDR eq. 5, one cycle), ``none`` keeps ``lr``.
    """
    progress = step / train.max_steps
    if train.time_budget > 0:
        progress = max(progress, seconds / train.time_budget)
    progress = min(progress, 1.0)
    if train.schedule == "none":
        return train.lr
    if train.schedule == "cosine":
        return train.lr_final + 0.5 * (train.lr - train.lr_final) * (
            1 + math.cos(math.pi * progress)
        )
    if train.lr_final <= 0 or train.lr <= 0:
        return train.lr
    return train.lr * math.exp(progress * math.log(train.lr_final / train.lr))
