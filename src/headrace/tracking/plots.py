"""Metric histories as charts: PNG, or a self-contained HTML page with an inline SVG."""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from headrace.core.tracking import TrackingError


def plot_histories(
    series: Mapping[str, Mapping[str, Sequence[tuple[int, float]]]], path: str | Path
) -> Path:
    """One panel per metric, one line per run: ``series[metric][run label] = [(step,
    value), ...]``. The file's suffix chooses PNG or HTML."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".html", ".svg"):
        raise TrackingError(f"cannot plot to {target.name!r}: use a .png, .svg or .html file")
    if not series:
        raise TrackingError("nothing to plot: the runs logged no such metric")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(series)
    figure, axes = plt.subplots(panels, 1, figsize=(8, 3.2 * panels), squeeze=False)
    from matplotlib.ticker import MaxNLocator

    for axis, (metric, runs) in zip(axes[:, 0], sorted(series.items()), strict=True):
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        if all(len(points) <= 1 for points in runs.values()):
            # one value a run: bars compare them better than lone points
            labels = list(runs)
            values = [points[-1][1] if points else float("nan") for points in runs.values()]
            bars = axis.barh(labels, values, color="#4c72b0")
            axis.bar_label(bars, fmt="%.4g", fontsize="small", padding=3)
            axis.invert_yaxis()
            continue
        for label, points in runs.items():
            steps = [p[0] for p in points]
            values = [p[1] for p in points]
            axis.plot(steps, values, marker="o" if len(points) < 30 else None, label=label)
        axis.set_xlabel("step")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend(fontsize="small")
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        figure.savefig(target, format="png", dpi=110)
    else:
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
        svg = buffer.getvalue()
        if suffix == ".svg":
            target.write_text(svg)
        else:
            title = html.escape(", ".join(sorted(series)))
            target.write_text(
                f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
                f"</head><body><h1>{title}</h1>{svg[svg.index('<svg') :]}</body></html>"
            )
    plt.close(figure)
    return target
