"""The report of a monitor: ONE self-contained HTML page.

It shows what the monitor watches, its windows and recent alerts; the dataset drift
share per window over time (windows coloured by status, the threshold dashed); for the
latest judged window, each compared column's test with the reference and current
distributions overlaid (drifted columns first); each performance metric over time,
measured and estimated values drawn apart; and prediction and target drift over time.

Everything comes from the store: the windows and their results, the reference profile
each window was judged against, and the window's rows of the prediction log (for the
current side of the distributions), so a monitor no longer declared still reports.
Charts are SVG drawn by matplotlib (imported only here, never pyplot) and embedded
inline: no script, no external URL. Every string from data or definitions is escaped.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from headrace.core.monitors import Monitor
from headrace.monitoring.runner import MonitorError
from headrace.quality.report import _STYLE, _e, _fmt, _inline, _when
from headrace.store.monitoring import AlertRecord, ResultRecord, WindowRecord

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace

log = logging.getLogger("headrace.monitoring")

#: Alerts listed in the header, windows listed in the windows table.
RECENT_ALERTS = 20
RECENT_WINDOWS = 30
#: Alerts counted at most (more show as "10,000+").
ALERT_COUNT_CAP = 10_000
#: Levels of a categorical column drawn (by their largest share on either side).
TOP_LEVELS = 20
#: Bins of a numeric column's density.
BINS = 30
#: Window ids per results query (under every database's limit on parameters).
_CHUNK = 500

_STATUS_COLOURS = {
    "ok": "#16a34a",
    "drift": "#d97706",
    "breach": "#dc2626",
    "too_small": "#9ca3af",
}
_STATUS_BADGES = {"ok": "pass", "drift": "warn", "breach": "fail"}
_ESTIMATED = " (estimated)"
_REFERENCE_COLOUR = "#6b7280"
_CURRENT_COLOUR = "#2563eb"
_ESTIMATE_COLOUR = "#7c3aed"


@dataclass(frozen=True, kw_only=True)
class ColumnView:
    """One compared column of the latest judged window: its test result, its reference
    profile (None when not stored) and its current values (None when not logged)."""

    result: ResultRecord
    kind: str | None
    reference: dict[str, Any] | None
    current: list[Any] | None


@dataclass(frozen=True, kw_only=True)
class MonitorReportData:
    """Everything a monitor's report shows, gathered from the store (``build_report``)."""

    monitor: str
    declaration: Monitor | None
    windows: list[WindowRecord]
    results: dict[str, list[ResultRecord]]  # by window id
    alerts: list[AlertRecord]  # newest first, at most ALERT_COUNT_CAP
    latest: WindowRecord | None  # the latest window judged (not too small)
    columns: list[ColumnView] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # columns not compared, and why
    note: str | None = None  # why the current distributions are missing
    generated_at: float = field(default_factory=time.time)


# -- gathering --------------------------------------------------------------------------


def _declaration(ws: Workspace, monitor: str) -> Monitor | None:
    from headrace.monitoring.runner import declared

    try:
        return declared(ws).get(monitor)
    except Exception as exc:  # a broken project: the store still has everything
        log.warning("monitor report: the project's monitors could not be loaded: %s", exc)
        return None


def _results(ws: Workspace, windows: Sequence[WindowRecord]) -> dict[str, list[ResultRecord]]:
    out: dict[str, list[ResultRecord]] = {w.id: [] for w in windows}
    ids = [w.id for w in windows]
    for start in range(0, len(ids), _CHUNK):
        for result in ws.store.monitoring.results(ids[start : start + _CHUNK]):
            out.setdefault(result.window_id, []).append(result)
    return out


def _window_rows(ws: Workspace, window: WindowRecord) -> list[tuple[Any, ...]]:
    """The prediction-log rows of ``window``: its model version's rows from its start
    (inclusive) to its end (inclusive; a time window's rows at its end are the next
    window's)."""
    assert window.model is not None
    # the float just below the start: ``after`` is exclusive, and at epoch magnitudes
    # subtracting a tiny constant would leave the start unchanged
    after = math.nextafter(window.start, -math.inf)
    rows = ws.store.predictions.since(window.model, after=after, until=window.end)
    if window.version is not None:
        rows = [r for r in rows if int(r[1]) == window.version]
    if len(rows) > window.rows:
        inside = [r for r in rows if float(r[0]) < window.end]
        if len(inside) >= window.rows:
            rows = inside
    return rows


def _current(ws: Workspace, window: WindowRecord) -> tuple[Any, str | None]:
    """The window's logged rows decoded (a polars frame), or None and why."""
    from headrace.monitoring.runner import _decode

    if window.model is None:
        return None, "the window is not of a prediction log, so its values are not shown"
    rows = _window_rows(ws, window)
    if not rows:
        return None, "the window's predictions are no longer in the prediction log"
    try:
        return _decode(rows), None
    except Exception as exc:
        log.warning("monitor report: the window's logged inputs could not be decoded: %s", exc)
        return None, f"the window's logged inputs could not be decoded ({exc})"


def _column_values(frame: Any, name: str) -> list[Any] | None:
    if frame is None or name not in frame.columns:
        return None
    return [v for v in frame.get_column(name).to_list() if v is not None]


def _drifted_first(results: Sequence[ResultRecord]) -> list[ResultRecord]:
    return sorted(results, key=lambda r: (not r.breached, r.name))


def build_report(ws: Workspace, monitor: str) -> MonitorReportData:
    """Gather the report of ``monitor`` from the store.

    Raises:
        MonitorError: the monitor has no stored windows.
    """
    windows = ws.store.monitoring.windows(monitor)
    if not windows:
        raise MonitorError(
            f"monitor {monitor!r} has no windows yet: run `headrace monitor run` first "
            "(it judges the windows a report shows)"
        )
    results = _results(ws, windows)
    judged = [w for w in windows if w.status != "too_small"]
    latest = judged[-1] if judged else None
    columns: list[ColumnView] = []
    skipped: dict[str, str] = {}
    note = None
    if latest is not None:
        stored = (
            ws.store.monitoring.reference(monitor, latest.reference)
            if latest.reference is not None
            else None
        )
        features = (stored or {}).get("features") or {}
        profiles = features.get("columns") or {}
        skipped = {str(k): str(v) for k, v in (features.get("skipped") or {}).items()}
        frame, note = _current(ws, latest)
        for result in _drifted_first([r for r in results[latest.id] if r.kind == "column_drift"]):
            profile = profiles.get(result.name)
            current = _column_values(frame, result.name)
            kind = profile.get("kind") if isinstance(profile, dict) else None
            if kind is None and current:
                kind = "numeric" if all(_is_number(v) for v in current) else "categorical"
            columns.append(ColumnView(result=result, kind=kind, reference=profile, current=current))
        if stored is None:
            note = "the reference profile of this window is no longer stored" + (
                f"; {note}" if note else ""
            )
    return MonitorReportData(
        monitor=monitor,
        declaration=_declaration(ws, monitor),
        windows=windows,
        results=results,
        alerts=ws.store.monitoring.alerts(monitor, limit=ALERT_COUNT_CAP),
        latest=latest,
        columns=columns,
        skipped=skipped,
        note=note,
    )


def write_report(ws: Workspace, monitor: str, path: Path) -> Path:
    """Write the report of ``monitor`` to ``path`` (its folders are made) and return
    its resolved path.

    Raises:
        MonitorError: the monitor has no stored windows (run ``headrace monitor run``).
    """
    data = build_report(ws, monitor)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data), encoding="utf-8")
    return path.resolve()


# -- values -----------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _finite(values: Sequence[Any]) -> np.ndarray:
    numbers = [float(v) for v in values if _is_number(v)]
    array = np.asarray(numbers, dtype=np.float64)
    return np.sort(array[np.isfinite(array)])


def _level(value: Any) -> str:
    """A category as text, so a level logged as 1 and profiled as 1.0 are one level."""
    if _is_number(value):
        number = float(value)
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
        return repr(number)
    return str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


# -- charts (matplotlib, SVG) -----------------------------------------------------------


def _svg(
    draw: Callable[[Any], None],
    index: int,
    size: tuple[float, float],
    *,
    grid: Literal["x", "y"] = "y",
) -> str:
    """One matplotlib figure drawn by ``draw(axes)``, as an inline SVG element."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": f"headrace-m{index}", "text.parse_math": False}
    ):
        figure = Figure(figsize=size, layout="constrained")
        ax = figure.add_subplot()
        draw(ax)
        ax.tick_params(labelsize=7)
        ax.grid(axis=grid, color="#e5e7eb", lw=0.6)
        ax.set_axisbelow(True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        buffer = io.StringIO()
        figure.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    return _inline(buffer.getvalue(), f"m{index}-")


def _time_axis(ax: Any) -> None:
    import matplotlib.dates

    mdates: Any = matplotlib.dates  # its locators and formatters are not annotated
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch)


def _level_line(
    ax: Any, points: Sequence[tuple[datetime, float]], style: dict[str, Any], label: str
) -> None:
    """A per-window reference value (a baseline, a threshold): a horizontal line when it
    never changes, else a step line."""
    if not points:
        return
    values = {v for _, v in points}
    if len(values) == 1:
        ax.axhline(points[0][1], label=f"{label} {points[0][1]:,.4g}", **style)
    else:
        ax.step([t for t, _ in points], [v for _, v in points], where="post", label=label, **style)


def _figure(svg: str, caption: str, anchor: str | None = None) -> str:
    ident = f' id="{_e(anchor)}"' if anchor else ""
    return f'<figure class="chart"{ident}>{svg}<figcaption>{_e(caption)}</figcaption></figure>'


def _drift_share_chart(data: MonitorReportData, threshold: float | None, index: int) -> str:
    def draw(ax: Any) -> None:
        from matplotlib.ticker import PercentFormatter

        judged = [w for w in data.windows if w.drift_share is not None]
        if judged:
            ax.plot(
                [_at(w.end) for w in judged],
                [w.drift_share for w in judged],
                color="#94a3b8",
                lw=1.1,
                zorder=1,
            )
        for status, colour in _STATUS_COLOURS.items():
            chosen = [w for w in data.windows if w.status == status]
            if not chosen:
                continue
            ys = [0.0 if w.drift_share is None else w.drift_share for w in chosen]
            label = "too small (not judged)" if status == "too_small" else status
            ax.scatter(
                [_at(w.end) for w in chosen],
                ys,
                s=26,
                color=colour,
                marker="x" if status == "too_small" else "o",
                zorder=3,
                label=f"{label} ({len(chosen)})",
            )
        others = sorted({w.status for w in data.windows} - set(_STATUS_COLOURS))
        for status in others:
            chosen = [w for w in data.windows if w.status == status]
            ax.scatter(
                [_at(w.end) for w in chosen],
                [0.0 if w.drift_share is None else w.drift_share for w in chosen],
                s=26,
                color="#111827",
                marker="s",
                zorder=3,
                label=f"{status} ({len(chosen)})",
            )
        if threshold is not None:
            ax.axhline(
                threshold, color="#dc2626", lw=1, ls="--", label=f"threshold {threshold:.0%}"
            )
        ax.set_ylim(-0.04, 1.06)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("drifted columns", fontsize=8)
        ax.set_title("dataset drift share per window (by window end)", fontsize=9, loc="left")
        _time_axis(ax)

    return _svg(draw, index, (7.2, 2.6))


def _numeric_chart(name: str, reference: np.ndarray, current: np.ndarray, index: int) -> str:
    """Both sides as densities over the same bins (the reference from its profile's
    sorted values or quantiles, each standing for an equal share of its rows)."""

    def draw(ax: Any) -> None:
        spans = [_span(a) for a in (reference, current) if a.size]
        low, high = min(s[0] for s in spans), max(s[1] for s in spans)
        if not high > low:
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, BINS + 1)
        for values, colour, label in (
            (reference, _REFERENCE_COLOUR, "reference"),
            (current, _CURRENT_COLOUR, "current"),
        ):
            if not values.size:
                continue
            density, _ = np.histogram(np.clip(values, low, high), bins=edges, density=True)
            ax.stairs(density, edges, fill=True, color=colour, alpha=0.22, lw=0)
            ax.stairs(density, edges, color=colour, lw=1.3, label=label)
        ax.set_ylabel("density", fontsize=8)
        ax.set_title(name, fontsize=9, loc="left")

    return _svg(draw, index, (6.4, 2.3))


def _span(values: np.ndarray) -> tuple[float, float]:
    """The range a side's density is drawn over: all of it, or for a large sample its
    0.5% to 99.5% quantiles, so a few extreme values do not squash the rest (they are
    counted in the edge bins). A profile's quantiles already leave the extremes out."""
    if values.size <= 200:
        return float(values[0]), float(values[-1])
    low, high = np.quantile(values, [0.005, 0.995])
    return float(low), float(high)


def _categorical_chart(
    name: str, levels: list[str], reference: list[float], current: list[float], index: int
) -> str:
    """Side-by-side bars of each level's share on both sides (the first level on top)."""

    def draw(ax: Any) -> None:
        from matplotlib.ticker import PercentFormatter

        ys = np.arange(len(levels))[::-1]
        height = 0.4
        ax.barh(ys + height / 2, reference, height, color=_REFERENCE_COLOUR, label="reference")
        ax.barh(ys - height / 2, current, height, color=_CURRENT_COLOUR, label="current")
        shown = [lv if len(lv) <= 28 else lv[:25] + "..." for lv in levels]
        ax.set_yticks(ys, shown, fontsize=7)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("share of rows", fontsize=8)
        ax.set_title(name, fontsize=9, loc="left")

    return _svg(draw, index, (6.4, max(2.0, 0.26 * len(levels) + 0.9)), grid="x")


def _shares(
    reference: dict[str, Any] | None, current: list[Any] | None
) -> tuple[list[str], list[float], list[float], int]:
    """The top levels by their largest share on either side, both sides' shares of
    them, and how many levels were left out."""
    ref_counts: dict[str, float] = {}
    for level, count in (reference or {}).get("levels") or []:
        key = _level(level)
        ref_counts[key] = ref_counts.get(key, 0.0) + float(count)
    cur_counts: dict[str, float] = {}
    for value in current or []:
        key = _level(value)
        cur_counts[key] = cur_counts.get(key, 0.0) + 1.0
    ref_total = sum(ref_counts.values()) or 1.0
    cur_total = sum(cur_counts.values()) or 1.0
    levels = list(dict.fromkeys([*ref_counts, *cur_counts]))
    levels.sort(
        key=lambda k: -max(ref_counts.get(k, 0.0) / ref_total, cur_counts.get(k, 0.0) / cur_total)
    )
    kept = levels[:TOP_LEVELS]
    return (
        kept,
        [ref_counts.get(k, 0.0) / ref_total for k in kept],
        [cur_counts.get(k, 0.0) / cur_total for k in kept],
        len(levels) - len(kept),
    )


def _column_chart(view: ColumnView, index: int) -> tuple[str, str] | None:
    """The column's distributions chart and its caption, None when neither side is
    known."""
    name = view.result.name
    reference = view.reference
    if view.kind == "numeric":
        ref_values = _finite((reference or {}).get("values") or [])
        cur_values = _finite(view.current or [])
        if not ref_values.size and not cur_values.size:
            return None
        rows = int((reference or {}).get("count") or ref_values.size)
        sketch = (
            "" if (reference or {}).get("exact") else f", drawn from {ref_values.size:,} quantiles"
        )
        caption = (
            f"reference: {rows:,} values{sketch} · current: {cur_values.size:,} values; "
            "densities over the same bins"
        )
        return _numeric_chart(name, ref_values, cur_values, index), caption
    levels, ref_shares, cur_shares, more = _shares(reference, view.current)
    if not levels:
        return None
    rows = int((reference or {}).get("count") or 0)
    caption = (
        f"reference: {rows:,} rows · current: {len(view.current or []):,} rows; "
        f"share of rows per level (top {len(levels)}"
        + (f", {more:,} more not drawn)" if more else ")")
    )
    return _categorical_chart(name, levels, ref_shares, cur_shares, index), caption


def _performance_series(
    data: MonitorReportData,
) -> dict[str, dict[bool, list[tuple[WindowRecord, ResultRecord]]]]:
    """Per metric, its (window, result) pairs: measured (False) and estimated (True)."""
    series: dict[str, dict[bool, list[tuple[WindowRecord, ResultRecord]]]] = {}
    for window in data.windows:
        for result in data.results.get(window.id, []):
            if result.kind != "performance" or result.value is None:
                continue
            metric = result.name
            if result.estimated and metric.endswith(_ESTIMATED):
                metric = metric[: -len(_ESTIMATED)]
            sides = series.setdefault(metric, {False: [], True: []})
            sides[result.estimated].append((window, result))
    return series


def _metric_order(data: MonitorReportData, metrics: Sequence[str]) -> list[str]:
    limited = [lim.metric for lim in data.declaration.limits] if data.declaration else []
    return sorted(
        metrics, key=lambda m: (m not in limited, limited.index(m) if m in limited else 0, m)
    )


def _performance_chart(
    metric: str, sides: dict[bool, list[tuple[WindowRecord, ResultRecord]]], index: int
) -> str:
    def draw(ax: Any) -> None:
        pairs = sides[False] + sides[True]
        baselines = _per_window([(w, r.baseline) for w, r in pairs])
        thresholds = _per_window([(w, r.threshold) for w, r in pairs])
        _level_line(ax, baselines, {"color": "#16a34a", "lw": 1, "ls": "--"}, "baseline")
        _level_line(ax, thresholds, {"color": "#dc2626", "lw": 1, "ls": ":"}, "limit")
        measured = sides[False]
        if measured:
            ax.plot(
                [_at(w.end) for w, _ in measured],
                [r.value for _, r in measured],
                color=_CURRENT_COLOUR,
                lw=1.3,
                marker="o",
                ms=4,
                label="measured",
                zorder=3,
            )
        estimated = sides[True]
        if estimated:
            ax.plot(
                [_at(w.end) for w, _ in estimated],
                [r.value for _, r in estimated],
                color=_ESTIMATE_COLOUR,
                lw=1.1,
                ls="--",
                marker="o",
                ms=5,
                mfc="none",
                label="estimated",
                zorder=3,
            )
        breached = [(w, r) for w, r in pairs if r.breached]
        if breached:
            ax.scatter(
                [_at(w.end) for w, _ in breached],
                [r.value for _, r in breached],
                s=70,
                facecolors="none",
                edgecolors="#dc2626",
                lw=1.4,
                zorder=4,
                label="limit crossed",
            )
        ax.set_ylabel(metric, fontsize=8)
        ax.set_title(metric, fontsize=9, loc="left")
        _time_axis(ax)

    return _svg(draw, index, (7.2, 2.4))


def _per_window(
    values: Sequence[tuple[WindowRecord, float | None]],
) -> list[tuple[datetime, float]]:
    seen: dict[str, tuple[datetime, float]] = {}
    for window, value in values:
        if value is not None and math.isfinite(value):
            seen.setdefault(window.id, (_at(window.end), float(value)))
    return sorted(seen.values())


def _drift_series(
    data: MonitorReportData, kind: str
) -> dict[str, list[tuple[WindowRecord, ResultRecord]]]:
    series: dict[str, list[tuple[WindowRecord, ResultRecord]]] = {}
    for window in data.windows:
        for result in data.results.get(window.id, []):
            if result.kind == kind:
                series.setdefault(result.name, []).append((window, result))
    return series


def _plotted(result: ResultRecord) -> float | None:
    """What a drift test is judged on: its p-value for a p-value test, else its score."""
    return result.p_value if result.p_value is not None else result.value


def _drift_chart(
    kind: str, name: str, pairs: list[tuple[WindowRecord, ResultRecord]], index: int
) -> str:
    def draw(ax: Any) -> None:
        points = [(w, r, _plotted(r)) for w, r in pairs]
        points = [(w, r, v) for w, r, v in points if v is not None and math.isfinite(v)]
        p_values = {r.p_value is not None for _, r, _ in points}
        _level_line(
            ax,
            _per_window([(w, r.threshold) for w, r, _ in points]),
            {"color": "#dc2626", "lw": 1, "ls": "--"},
            "threshold",
        )
        ax.plot(
            [_at(w.end) for w, _, _ in points],
            [v for _, _, v in points],
            color=_CURRENT_COLOUR,
            lw=1.2,
            marker="o",
            ms=4,
            label="p-value" if p_values == {True} else "score",
            zorder=3,
        )
        drifted = [(w, v) for w, r, v in points if r.breached]
        if drifted:
            ax.scatter(
                [_at(w.end) for w, _ in drifted],
                [v for _, v in drifted],
                s=40,
                color="#dc2626",
                zorder=4,
                label="drifted",
            )
        if p_values == {True}:
            ax.set_ylabel("p-value (drifted below)", fontsize=8)
        elif p_values == {False}:
            ax.set_ylabel("score (drifted at or above)", fontsize=8)
        else:
            ax.set_ylabel("score or p-value", fontsize=8)
        ax.set_title(f"{kind.replace('_', ' ')}: {name}", fontsize=9, loc="left")
        _time_axis(ax)

    return _svg(draw, index, (7.2, 2.3))


# -- the page ---------------------------------------------------------------------------

_EXTRA_STYLE = """
h3{font-size:15px;margin:18px 0 4px}
section.column{background:#fff;border:1px solid #e5e7eb;margin:0 0 12px;padding:8px 10px}
section.column.drifted{border-left:4px solid #dc2626}
section.column figure.chart{border:0;margin:0;padding:0}
.legend-note{color:#6b7280;font-size:12px;margin:0 0 8px}
"""


def _status_badge(status: str) -> str:
    kind = _STATUS_BADGES.get(status, "")
    label = "too small" if status == "too_small" else status
    return f'<span class="badge status {kind}" data-status="{_e(status)}">{_e(label)}</span>'


def _drift_flag(drifted: bool) -> str:
    if drifted:
        return '<span class="badge fail drift-flag" data-drifted="yes">drifted</span>'
    return '<span class="badge pass drift-flag" data-drifted="no">stable</span>'


def _header(data: MonitorReportData) -> str:
    declaration = data.declaration
    latest = data.windows[-1]
    if declaration is not None:
        watches = _e(declaration.watches)
        window = (
            f"{declaration.window_rows:,} predictions"
            if declaration.window_rows is not None
            else f"{float(declaration.window) / 3600:,.4g} h"
        )
        declared = f" · window <b>{_e(window)}</b> · min rows <b>{declaration.min_rows:,}</b>"
    else:
        target = f"model {latest.model}" if latest.model else "an asset"
        watches = f"{_e(target)} <b>(not declared)</b>"
        declared = ""
    shown = len(data.alerts)
    count = f"{shown:,}+" if shown >= ALERT_COUNT_CAP else f"{shown:,}"
    suppressed = sum(a.suppressed for a in data.alerts)
    meta = (
        f"watches <b>{watches}</b>{declared} · <b>{len(data.windows):,}</b> window"
        f"{'s' * (len(data.windows) != 1)} · latest {_status_badge(latest.status)} "
        f"(ending {_e(_when(latest.end))}) · <b>{count}</b> alert{'s' * (shown != 1)}"
        f" ({suppressed:,} suppressed)"
    )
    description = (
        f'<p class="meta">{_e(declaration.description)}</p>'
        if declaration is not None and declaration.description
        else ""
    )
    return (
        f'<h1>monitor {_e(data.monitor)}</h1><p class="meta">{meta}</p>{description}'
        f"<h2>Recent alerts</h2>{_alerts_table(data.alerts)}"
    )


def _alerts_table(alerts: Sequence[AlertRecord]) -> str:
    if not alerts:
        return '<p class="meta">No alerts.</p>'
    rows = []
    for alert in alerts[:RECENT_ALERTS]:
        first = alert.message.splitlines()[0] if alert.message else ""
        rows.append(
            "<tr>"
            f'<td class="n">{_e(_when(alert.created_at))}</td><td><code>{_e(alert.key)}</code></td>'
            f"<td>{'yes' if alert.suppressed else 'no'}</td>"
            f'<td title="{_e(alert.message)}">{_e(first)}</td>'
            "</tr>"
        )
    more = len(alerts) - RECENT_ALERTS
    note = f'<p class="small">and {more:,} older</p>' if more > 0 else ""
    head = "<tr><th>time</th><th>key</th><th>suppressed</th><th>message</th></tr>"
    return f'<table class="alerts">{head}{"".join(rows)}</table>{note}'


def _windows_table(data: MonitorReportData) -> str:
    rows = []
    for window in data.windows[::-1][:RECENT_WINDOWS]:
        results = data.results.get(window.id, [])
        drifted = sum(r.breached for r in results if r.kind == "column_drift")
        compared = sum(r.kind == "column_drift" for r in results)
        crossed = sorted({r.name for r in results if r.breached and r.kind != "column_drift"})
        rows.append(
            "<tr>"
            f'<td class="n">{_e(_when(window.start))}</td>'
            f'<td class="n">{_e(_when(window.end))}</td>'
            f'<td class="n">{_fmt(window.version)}</td><td class="n">{_fmt(window.rows)}</td>'
            f'<td class="n">{_fmt(window.labeled)}</td><td>{_status_badge(window.status)}</td>'
            f'<td class="n">{_e(_pct(window.drift_share))}</td>'
            f'<td class="n">{f"{drifted:,} of {compared:,}" if compared else "-"}</td>'
            f"<td>{_e(', '.join(crossed)) or '-'}</td>"
            "</tr>"
        )
    more = len(data.windows) - RECENT_WINDOWS
    note = f'<p class="small">and {more:,} older windows (in the chart)</p>' if more > 0 else ""
    head = (
        "<tr><th>start</th><th>end</th><th>version</th><th>rows</th><th>labeled</th>"
        "<th>status</th><th>drift share</th><th>drifted columns</th><th>crossed</th></tr>"
    )
    return f'<table class="windows">{head}{"".join(rows)}</table>{note}'


def _drift_share_section(data: MonitorReportData, counter: Iterator[int]) -> str:
    thresholds = [
        r.threshold
        for w in data.windows
        for r in data.results.get(w.id, [])
        if r.kind == "dataset_drift" and r.threshold is not None
    ]
    threshold = (
        thresholds[-1]
        if thresholds
        else (data.declaration.drift_share if data.declaration is not None else None)
    )
    svg = _drift_share_chart(data, threshold, next(counter))
    judged = sum(w.drift_share is not None for w in data.windows)
    caption = (
        f"{judged:,} of {len(data.windows):,} windows judged; a window drifts when the share "
        f"of drifted columns reaches the threshold ({_pct(threshold)})"
    )
    return (
        f'<h2 id="drift-share">Drift share over time</h2>{_figure(svg, caption)}'
        f"<h3>Windows</h3>{_windows_table(data)}"
    )


def _columns_section(data: MonitorReportData, counter: Iterator[int]) -> str:
    latest = data.latest
    title = '<h2 id="columns">Per-column drift</h2>'
    if latest is None:
        return title + '<p class="meta">No window has been judged yet (all were too small).</p>'
    drifted = sum(v.result.breached for v in data.columns)
    intro = (
        f'<p class="meta">the latest judged window, ending <b>{_e(_when(latest.end))}</b> '
        f"(version {_fmt(latest.version)}, {_fmt(latest.rows)} rows, "
        f"{_status_badge(latest.status)}): <b>{drifted:,}</b> of {len(data.columns):,} "
        "columns drifted</p>"
    )
    if data.note:
        intro += f'<p class="legend-note">{_e(data.note)}</p>'
    if not data.columns:
        return title + intro + '<p class="meta">No column drift results for this window.</p>'
    summary = []
    blocks = []
    for position, view in enumerate(data.columns):
        r = view.result
        anchor = f"column-{position}"
        summary.append(
            "<tr>"
            f'<td><a href="#{anchor}"><b>{_e(r.name)}</b></a></td>'
            f"<td>{_drift_flag(r.breached)}</td>"
            f"<td>{_e(view.kind or '-')}</td><td>{_e(r.method or '-')}</td>"
            f'<td class="n">{_fmt(r.value)}</td><td class="n">{_fmt(r.p_value)}</td>'
            f'<td class="n">{_fmt(r.threshold)}</td>'
            "</tr>"
        )
        chart = _column_chart(view, next(counter))
        figure = (
            _figure(*chart)
            if chart is not None
            else '<p class="meta">Neither distribution is available.</p>'
        )
        judged_on = "p-value" if r.p_value is not None else "score"
        blocks.append(
            f'<section class="column{" drifted" if r.breached else ""}" id="{anchor}">'
            f"<h3>{_drift_flag(r.breached)} {_e(r.name)}</h3>"
            f'<p class="meta">method <b>{_e(r.method or "-")}</b> · score <b>{_fmt(r.value)}</b>'
            f" · p-value <b>{_fmt(r.p_value)}</b> · threshold <b>{_fmt(r.threshold)}</b> "
            f"(on the {judged_on})</p>{figure}</section>"
        )
    head = (
        "<tr><th>column</th><th>drift</th><th>kind</th><th>method</th><th>score</th>"
        "<th>p-value</th><th>threshold</th></tr>"
    )
    skipped = ""
    if data.skipped:
        skipped = (
            '<p class="legend-note">not compared: '
            + "; ".join(f"{_e(k)} ({_e(v)})" for k, v in sorted(data.skipped.items()))
            + "</p>"
        )
    return (
        title
        + intro
        + f'<table class="columns">{head}{"".join(summary)}</table>{skipped}'
        + "".join(blocks)
    )


def _performance_section(data: MonitorReportData, counter: Iterator[int]) -> str:
    title = '<h2 id="performance">Performance over time</h2>'
    series = _performance_series(data)
    if not series:
        return title + '<p class="meta">No performance was measured or estimated yet.</p>'
    note = (
        '<p class="legend-note">measured values (from labels) are solid with filled markers; '
        "<b>estimated</b> values (from the model's probabilities, before labels arrive) are "
        "dashed with hollow markers and never merged into the measured line; the baseline "
        "(the version's own run metric) is dashed, the limit dotted.</p>"
    )
    figures = []
    for metric in _metric_order(data, list(series)):
        sides = series[metric]
        svg = _performance_chart(metric, sides, next(counter))
        parts = []
        if sides[False]:
            parts.append(f"{len(sides[False]):,} measured")
        if sides[True]:
            parts.append(f"{len(sides[True]):,} estimated")
        crossed = sum(r.breached for _, r in sides[False] + sides[True])
        caption = (
            f"{metric}: {' and '.join(parts)} window values; "
            f"limit crossed {crossed:,} time{'s' * (crossed != 1)}"
        )
        figures.append(_figure(svg, caption))
    return title + note + "".join(figures)


def _drift_kind_section(data: MonitorReportData, kind: str, counter: Iterator[int]) -> str:
    series = _drift_series(data, kind)
    if not series:
        return ""
    label = kind.replace("_", " ")
    figures = []
    for name in sorted(series):
        pairs = series[name]
        svg = _drift_chart(kind, name, pairs, next(counter))
        method = pairs[-1][1].method or "-"
        drifted = sum(r.breached for _, r in pairs)
        caption = (
            f"{label} of {name} ({method}): drifted in {drifted:,} of {len(pairs):,} "
            f"window{'s' * (len(pairs) != 1)}"
        )
        figures.append(_figure(svg, caption))
    return f'<h2 id="{kind}">{_e(label.capitalize())} over time</h2>{"".join(figures)}'


def render_report(data: MonitorReportData) -> str:
    """The report as one HTML document (inline CSS and SVG, no script, no URL)."""
    counter = itertools.count()
    body = (
        _header(data)
        + _drift_share_section(data, counter)
        + _columns_section(data, counter)
        + _performance_section(data, counter)
        + _drift_kind_section(data, "prediction_drift", counter)
        + _drift_kind_section(data, "target_drift", counter)
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(data.monitor)}: monitor report</title>"
        f"<style>{_STYLE}{_EXTRA_STYLE}</style></head>"
        f"<body><main>{body}"
        f'<p class="small">generated by headrace at {_e(_when(data.generated_at))}</p>'
        "</main></body></html>\n"
    )


__all__ = ["MonitorReportData", "build_report", "render_report", "write_report"]
