"""The training progress bar: it counts what ends the run.

Under a time budget the bar counts training seconds of the budget (a step total would
be a number the run never reaches); otherwise it counts steps. Either way it shows the
step, steps per second, the latest loss and, once an evaluation ran, its PSNR.
"""

from __future__ import annotations

from typing import IO

from tqdm import tqdm

__all__ = ["TrainProgress"]

LAYOUT = "{desc}: {percentage:3.0f}%|{bar}| COUNTED [{elapsed}<{remaining}{postfix}]"


class TrainProgress:
    """A tqdm bar over budget seconds, or over steps when there is no budget."""

    def __init__(
        self,
        max_steps: int,
        time_budget: float,
        step: int = 0,
        seconds: float = 0.0,
        quiet: bool = False,
        file: IO[str] | None = None,
    ):
        self.by_time = time_budget > 0
        self.start_step, self.start_seconds = step, seconds
        self.loss: float | None = None
        self.psnr: float | None = None
        if self.by_time:
            total, initial, unit = time_budget, min(seconds, time_budget), "s"
            counted = "{n:.0f}/{total:.0f} s"
        else:
            total, initial, unit = max_steps, step, "step"
            counted = "{n_fmt}/{total_fmt} steps"
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc="train",
            unit=unit,
            mininterval=2.0,
            bar_format=LAYOUT.replace("COUNTED", counted),
            file=file,
            disable=quiet,
        )

    def update(self, step: int, seconds: float, loss: float | None = None) -> None:
        """Move to ``step`` and ``seconds`` of training; ``loss`` is the latest one."""
        if loss is not None:
            self.loss = loss
        if self.bar.disable:
            return
        if self.by_time:
            self.bar.update(min(seconds, self.bar.total) - self.bar.n)
        else:
            self.bar.update(step - self.bar.n)
        self.bar.set_postfix_str(self.postfix(step, seconds), refresh=False)

    def evaluated(self, psnr: float) -> None:
        """Show the PSNR of the latest evaluation."""
        self.psnr = psnr

    def postfix(self, step: int, seconds: float) -> str:
        """Step, steps/s of this session, loss and PSNR."""
        rate = (step - self.start_step) / max(seconds - self.start_seconds, 1e-9)
        parts = [f"step {step}", f"{rate:.2f} steps/s"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.psnr is not None:
            parts.append(f"PSNR {self.psnr:.2f} dB")
        return ", ".join(parts)

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()
