"""The training bar counts what ends the run: budget seconds, or steps."""

from __future__ import annotations

import io
from pathlib import Path

from atlas_core.cli import main
from atlas_core.engine.progress import TrainProgress


def shown(progress: TrainProgress, out: io.StringIO) -> str:
    """The bar's last rendering."""
    progress.bar.refresh()
    return out.getvalue().split("\r")[-1]


def test_time_budget_bar_counts_seconds() -> None:
    """Under a budget: seconds of it, no step total; step, steps/s, loss and PSNR."""
    out = io.StringIO()
    progress = TrainProgress(100000, 60.0, file=out)
    progress.update(40, 20.0, loss=0.0123)
    progress.evaluated(24.5)
    progress.update(41, 20.5)
    text = shown(progress, out)
    assert "20/60 s" in text and "100000" not in text
    assert "step 41" in text and "2.00 steps/s" in text
    assert "loss 0.0123" in text and "PSNR 24.50 dB" in text


def test_step_bar_and_resume() -> None:
    """Without a budget: steps; a resumed run starts where it was, rate of this session."""
    out = io.StringIO()
    progress = TrainProgress(500, 0.0, step=100, seconds=50.0, file=out)
    progress.update(150, 60.0, loss=0.5)
    text = shown(progress, out)
    assert "150/500 steps" in text and "5.00 steps/s" in text and "PSNR" not in text


def test_quiet_bar_prints_nothing() -> None:
    """Ranks other than 0 keep quiet."""
    out = io.StringIO()
    progress = TrainProgress(10, 0.0, quiet=True, file=out)
    progress.update(5, 1.0, loss=0.1)
    progress.close()
    assert out.getvalue() == ""


def test_budgeted_run_never_prints_its_step_cap(
    atlas_scene: Path,
    tmp_path: Path,
    quick_args: list[str],
    capsys,  # noqa: ANN001
) -> None:
    """``atlas run --time-budget`` shows seconds of the budget, not the 10^6 step cap."""
    argv = ["run", "--data", str(atlas_scene), "--out", str(tmp_path / "run"), *quick_args]
    assert main([*argv, "--max-steps", "987654", "--time-budget", "0.5"]) == 0
    err = capsys.readouterr().err
    assert "/0 s" in err or "/1 s" in err
    assert "987654" not in err
