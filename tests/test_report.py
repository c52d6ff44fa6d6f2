"""report.html: curves, test views, config and video in one offline file."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree

from atlas_core.cli import main
from atlas_core.commands.report import line_chart
from atlas_core.engine.history import read_history


def test_line_chart_draws_every_series() -> None:
    """One polyline per non-empty series, scaled into the frame, log axis labelled."""
    svg = line_chart("loss", "step", {"a": [(0, 1.0), (10, 0.1)], "b": [(0, 0.5)], "c": []}, True)
    assert svg.count("<polyline") == 2 and ">a</text>" in svg and ">c</text>" not in svg
    points = re.findall(r'points="([^"]+)"', svg)[0].split()
    xs = [float(p.split(",")[0]) for p in points]
    assert xs[0] < xs[1] <= 460
    assert line_chart("empty", "step", {"a": []}) == ""
    ElementTree.fromstring(svg)  # well-formed SVG


def test_one_point_sits_inside_the_frame_with_its_value_labelled() -> None:
    """A lone evaluation (a run without eval_every) is drawn mid-height, x from 0."""
    svg = line_chart("PSNR", "step", {"test": [(430, 27.95)]})
    cx, cy = (float(v) for v in re.findall(r'cx="([^"]+)" cy="([^"]+)"', svg)[0])
    frame = [float(v) for v in re.findall(r'<line x1="[^"]+" y1="([^"]+)"', svg)]
    assert min(frame) < cy < max(frame)  # between the lowest and highest grid line
    assert cx > 400  # the far right: the axis starts at step 0
    assert ">27.8<" in svg or ">28<" in svg


def test_run_writes_a_self_contained_report(atlas_scene, tmp_path, quick_args, capsys) -> None:  # noqa: ANN001
    """A finished run has history.jsonl and report.html; ``atlas report`` rewrites it."""
    out = tmp_path / "run"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), *quick_args]
    assert main([*args, "--eval-views", "2", "--set", "train.eval_every=10"]) == 0
    train, evals = read_history(out / "history.jsonl")
    assert [e["step"] for e in evals] == [10, 20, 30, 30]  # every 10 steps, then the final
    assert train and all("loss" in e and "seconds" in e for e in train)
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 5 and "test PSNR (dB)" in page
    assert page.count(">train batch (rgb_l2)</text>") == 2  # PSNR of the batches, both axes
    assert page.count('src="data:image/png;base64,') == 2 * 4  # pred, gt, depth, error
    assert 'src="data:video/mp4;base64,' in page
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"{metrics['test']['per_view_psnr'][0]:.2f}" in page
    assert "max_steps = 30" in page and "core" in page  # config and plugin versions
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing online
    (out / "report.html").unlink()
    other = tmp_path / "elsewhere.html"
    assert main(["report", str(out), "--output", str(other)]) == 0
    assert other.read_text() == page and not (out / "report.html").exists()
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 2
    assert "no metrics.json" in capsys.readouterr().err


def test_resume_drops_history_past_the_checkpoint(atlas_scene, tmp_path, quick_args) -> None:  # noqa: ANN001
    """Lines logged after the last checkpoint belong to a lost future; resume trims them."""
    out = tmp_path / "run"
    args = ["run", "--data", str(atlas_scene), "--out", str(out), *quick_args]
    assert main([*args, "--save-every", "10", "--set", "train.log_every=5"]) == 0
    with open(out / "history.jsonl", "a") as handle:
        handle.write('{"step": 99, "seconds": 9.0, "loss": 1.0, "lr": 0.1}\n{"step": 10')
    assert main(["run", "--resume", "--out", str(out), "--max-steps", "40"]) == 0
    train, _ = read_history(out / "history.jsonl")
    steps = [e["step"] for e in train]
    assert 99 not in steps and steps == sorted(steps) and steps[-1] == 40


def test_error_column_is_the_evaluation_error_image_or_made_alike(
    atlas_scene, tmp_path, quick_args
) -> None:  # noqa: ANN001, E501
    """The report embeds each view's ``_error.png``; runs from before it was written get
    the same image made from the prediction and the ground truth."""
    import base64

    import imageio.v3 as iio
    import numpy as np

    from atlas_core.commands.report import write_report

    out = tmp_path / "run"
    assert main(["run", "--data", str(atlas_scene), "--out", str(out), *quick_args]) == 0
    error_png = next((out / "test").glob("*_error.png"))

    def embedded(page: str) -> np.ndarray:
        data = re.findall(r'src="data:image/png;base64,([^"]+)"', page)[3]  # the 4th: error
        return iio.imread(base64.b64decode(data))

    saved = iio.imread(error_png)
    assert np.array_equal(embedded(write_report(out).read_text()), saved)
    error_png.unlink()  # an older run: made from the 8-bit images, within rounding
    remade = embedded(write_report(out).read_text()).astype(int)
    assert np.abs(remade - saved.astype(int)).max() <= 4  # 8-bit inputs, 4x gain
    iio.imwrite(error_png, np.zeros_like(saved))  # a saved image is used as it is
    assert not embedded(write_report(out).read_text()).any()
