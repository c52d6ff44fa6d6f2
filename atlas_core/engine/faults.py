"""Faults during training: non-finite steps are skipped and counted; Ctrl-C stops cleanly."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from types import FrameType, TracebackType

import torch

__all__ = ["BadSteps", "InterruptRequest", "finite_gradients"]


def finite_gradients(parameters: Iterable[torch.nn.Parameter]) -> bool:
    """True when no gradient holds NaN or Inf (one device sync for all of them)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return True
    device = grads[0].device
    values = [g.detach()._values() if g.is_sparse else g.detach() for g in grads]
    values = [v for v in values if v.numel()]
    if not values:
        return True
    # a sum is NaN or Inf when any term is (or when it overflows, as bad a sign); on a
    # CPU it costs an eighth of an infinity norm over a grid's sparse gradient
    sums = [v.sum(dtype=torch.float32).to(device) for v in values]
    return bool(torch.stack(sums).isfinite().all())


@dataclass
class BadSteps:
    """Counts steps skipped for a non-finite loss or gradient: in total and in a row."""

    limit: int
    skipped: int = 0
    in_row: int = 0

    def record(self, good: bool) -> None:
        """Note whether the last step was applied."""
        if good:
            self.in_row = 0
        else:
            self.skipped += 1
            self.in_row += 1

    @property
    def exhausted(self) -> bool:
        """True after ``limit`` bad steps in a row."""
        return self.in_row >= self.limit


class InterruptRequest:
    """Within ``with``, the first SIGINT only sets ``requested``; a second one interrupts.

    Training then stops between two steps, so the checkpoint it saves is consistent.
    Only the main thread can handle signals; elsewhere SIGINT behaves as usual.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: signal.Handlers | None = None
        self._installed = False

    def __enter__(self) -> InterruptRequest:
        if threading.current_thread() is not threading.main_thread():
            return self
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.SIG_IGN:  # e.g. a background job: keep ignoring it
            return self
        self._previous = previous
        signal.signal(signal.SIGINT, self._handle)
        self._installed = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._installed:
            previous = self._previous
            restore = previous if previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, restore)
            self._installed = False
