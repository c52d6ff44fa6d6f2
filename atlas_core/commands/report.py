"""``report.html`` of a run: one self-contained page that opens offline.

Curves of loss, learning rate and test PSNR against steps and training seconds (inline
SVG, from ``history.jsonl``), the test views as prediction | ground truth | depth |
error with their PSNR and SSIM, the metrics, protocol, config, plugin versions and
the video, every image and the video embedded as data URLs.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch

from atlas_core.data.images import to_uint8
from atlas_core.engine.evaluate import error_image
from atlas_core.engine.history import read_history
from atlas_core.errors import AtlasError
from atlas_core.io import atomic_write_bytes

__all__ = ["line_chart", "write_report"]

WIDTH, HEIGHT, MARGIN = 460, 260, 48
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
STYLE = """body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
.charts svg{margin:0 1em 1em 0}img{image-rendering:pixelated;width:160px}
pre{background:#f6f6f6;padding:1em;overflow:auto}"""


def _ticks(low: float, high: float) -> list[float]:
    """About five round tick values covering [low, high]."""
    if high <= low:
        return [low]
    step = 10 ** math.floor(math.log10((high - low) / 4))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= 5:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + k * step for k in range(int((high - first) / step) + 1)]


def line_chart(
    title: str,
    xlabel: str,
    series: dict[str, list[tuple[float, float]]],
    log_y: bool = False,
    lines: bool = True,
) -> str:
    """An SVG chart of named (x, y) series, as lines or (``lines=False``) points only."""
    series = {name: points for name, points in series.items() if points}
    if not series:
        return ""
    points = [p for values in series.values() for p in values]
    if log_y:
        points = [(x, y) for x, y in points if y > 0]
        series = {n: [(x, math.log10(y)) for x, y in v if y > 0] for n, v in series.items()}
        points = [(x, math.log10(y)) for x, y in points]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x0 = 0.0 if min(xs) >= 0 else min(xs)  # steps and seconds count from 0
    x1 = max(xs) if max(xs) > x0 else x0 + 1
    y0, y1 = min(ys), max(ys)
    if y1 <= y0:  # one value: centre it
        y0, y1 = y0 - 0.5, y1 + 0.5

    def at(x: float, y: float) -> tuple[float, float]:
        px = MARGIN + (x - x0) / (x1 - x0) * (WIDTH - MARGIN - 10)
        py = HEIGHT - MARGIN + 10 - (y - y0) / (y1 - y0) * (HEIGHT - MARGIN - 20)
        return round(px, 1), round(py, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}">',
        _text(WIDTH / 2, 14, title, "middle", 13),
        _text(WIDTH / 2, HEIGHT - 4, xlabel, "middle", 11),
    ]
    for tick in _ticks(y0, y1):
        x, y = at(x0, tick)
        parts.append(_text(x - 4, y, f"{10**tick:.2g}" if log_y else f"{tick:.4g}", "end", 10))
        parts.append(f'<line x1="{x}" y1="{y}" x2="{WIDTH - 10}" y2="{y}" stroke="#eee"/>')
    for tick in _ticks(x0, x1):
        x, y = at(tick, y0)
        parts.append(_text(x, y + 14, f"{tick:.4g}", "middle", 10))
    for k, (name, values) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        line = " ".join(f"{px},{py}" for px, py in (at(x, y) for x, y in values))
        style = f'fill="none" stroke="{colour}" stroke-width="1.5"'
        if lines:
            parts.append(f'<polyline {style} points="{line}"/>')
        if len(values) < 30 or not lines:  # few points (evaluations): mark them
            marks = (at(x, y) for x, y in values)
            parts += [f'<circle cx="{px}" cy="{py}" r="2.5" fill="{colour}"/>' for px, py in marks]
        parts.append(_text(WIDTH - 12, 30 + 14 * k, name, "end", 11, colour))
    parts.append("</svg>")
    return "".join(parts)


def _text(x: float, y: float, text: str, anchor: str, size: int, colour: str = "#222") -> str:
    """An SVG text element."""
    where = f'x="{x}" y="{y}" text-anchor="{anchor}" font-size="{size}" fill="{colour}"'
    return f"<text {where}>{html.escape(text)}</text>"


def _png(image: np.ndarray) -> str:
    """An <img> with the image embedded as a PNG data URL."""
    data = base64.b64encode(iio.imwrite("<bytes>", image, extension=".png")).decode()
    return f'<img src="data:image/png;base64,{data}">'


def _error_image(path: Path, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The evaluation's error image at ``path``, or (runs from before it wrote one) the
    same image from the 8-bit prediction and ground truth."""
    if path.is_file():
        return iio.imread(path)
    colours = (
        torch.from_numpy(image[..., :3].astype(np.float32) / 255) for image in (pred, target)
    )
    return to_uint8(error_image(*colours))


def _views_table(run_dir: Path, test: dict[str, Any]) -> str:
    """Rows of prediction | ground truth | depth | error with PSNR and SSIM."""
    names = test.get("per_view_names") or []
    psnrs, ssims = test.get("per_view_psnr") or [], test.get("per_view_ssim") or []
    rows = ["<tr><th>view</th><th>PSNR</th><th>SSIM</th><th>prediction</th>"
            "<th>ground truth</th><th>depth</th><th>error (x4)</th></tr>"]  # fmt: skip
    for k, name in enumerate(names):
        files = {kind: run_dir / "test" / f"{name}_{kind}.png" for kind in ("pred", "gt", "depth")}
        if not all(path.is_file() for path in files.values()):
            continue
        pred, target = iio.imread(files["pred"]), iio.imread(files["gt"])
        psnr = f"{psnrs[k]:.2f}" if k < len(psnrs) else ""
        ssim = f"{ssims[k]:.3f}" if k < len(ssims) else ""
        images = [_png(pred), _png(target), _png(iio.imread(files["depth"]))]
        error = _error_image(run_dir / "test" / f"{name}_error.png", pred, target)
        images.append(_png(error))
        cells = "".join(f"<td>{cell}</td>" for cell in images)
        rows.append(
            f"<tr><td>{html.escape(str(name))}</td><td>{psnr}</td><td>{ssim}</td>{cells}</tr>"
        )
    return "<table>" + "".join(rows) + "</table>" if len(rows) > 1 else "<p>No test images.</p>"


def _table(pairs: dict[str, Any]) -> str:
    """A two-column table."""
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in pairs.items()
    )
    return f"<table>{rows}</table>"


def write_report(run_dir: Path, output: Path | None = None) -> Path:
    """Write the run's report.html (or ``output``); the run needs its metrics.json."""
    run_dir = Path(run_dir)
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except FileNotFoundError as exc:
        raise AtlasError(
            f"{run_dir}: no metrics.json (a finished run, or `atlas eval` it)"
        ) from exc
    except json.JSONDecodeError as exc:
        raise AtlasError(f"{run_dir / 'metrics.json'}: not valid JSON: {exc}") from exc
    train, evals = read_history(run_dir / "history.jsonl")
    test = metrics.get("test", {})
    final = [(metrics.get("steps", 0), test["psnr"])] if "psnr" in test else []
    final_s = [(metrics.get("train_seconds", 0.0), test["psnr"])] if "psnr" in test else []
    psnr_steps = [
        (e["step"], e["eval"]["psnr"]) for e in evals if e["step"] < metrics.get("steps", 0)
    ]
    psnr_seconds = [
        (e["seconds"], e["eval"]["psnr"]) for e in evals if e["step"] < metrics.get("steps", 0)
    ]

    def batch_psnr(x: str) -> dict[str, list[tuple[float, float]]]:
        """The training batches' PSNR from their ``rgb_l2`` term, where the run logged one."""
        values = [(e[x], -10 * math.log10(e["rgb_l2"])) for e in train if e.get("rgb_l2", 0) > 0]
        return {"train batch (rgb_l2)": values} if values else {}

    charts = [
        line_chart(
            "training loss", "step", {"loss": [(e["step"], e["loss"]) for e in train]}, True
        ),
        line_chart(
            "training loss",
            "training seconds",
            {"loss": [(e["seconds"], e["loss"]) for e in train]},
            True,
        ),
        line_chart("PSNR (dB)", "step", {"test": psnr_steps + final, **batch_psnr("step")}),
        line_chart(
            "PSNR (dB)",
            "training seconds",
            {"test": psnr_seconds + final_s, **batch_psnr("seconds")},
        ),
        line_chart("learning rate", "step", {"lr": [(e["step"], e["lr"]) for e in train]}, True),
    ]
    summary = {
        "test PSNR (dB)": f"{test.get('psnr', float('nan')):.2f}",
        "test SSIM": f"{test.get('ssim', float('nan')):.4f}",
        "test views": test.get("views"),
        "steps": metrics.get("steps"),
        "training seconds": f"{metrics.get('train_seconds', 0.0):.1f}",
        "rays per second": f"{metrics.get('rays_per_second', 0.0):.0f}",
        "seconds per view": f"{test.get('seconds_per_view', 0.0):.2f}",
        "device": metrics.get("device"),
    }
    config = (run_dir / "config.toml").read_text() if (run_dir / "config.toml").is_file() else ""
    video = run_dir / "video.mp4"
    player = ""
    if video.is_file():
        data = base64.b64encode(video.read_bytes()).decode()
        source = f"data:video/mp4;base64,{data}"
        player = f'<h2>Video</h2><video controls loop src="{source}"></video>'
    page = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(run_dir.name)}: NeRF Atlas run</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(run_dir.name)}</h1>",
        _table(summary),
        "<h2>Curves</h2><div class='charts'>",
        *charts,
        "</div>" if any(charts) else "</div><p>No history.jsonl: no curves.</p>",
        "<h2>Test views</h2>",
        _views_table(run_dir, test),
        player,
        "<h2>Protocol</h2>",
        _table(metrics.get("protocol", {})),
        "<h2>Plugins</h2>",
        _table(metrics.get("plugins", {})),
        f"<h2>Config</h2><pre>{html.escape(config)}</pre>",
        "</body></html>",
    ]
    path = Path(output) if output else run_dir / "report.html"
    atomic_write_bytes(path, "\n".join(page).encode())
    return path
