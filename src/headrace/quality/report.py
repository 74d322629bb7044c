"""The quality report of an asset: ONE self-contained HTML page.

It shows the head version (asset, version, rows, when), its column profile with a small
histogram per numeric column, its latest check results with samples of failing rows,
and a control chart per check with a numeric observed value over the asset's versions
(limits where recorded, failures highlighted). Charts are SVG drawn by matplotlib
(imported only here, never pyplot) and embedded inline: no script, no external URL.
Every string that comes from data or definitions is escaped.
"""

from __future__ import annotations

import html
import io
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headrace.core.checks import ROW_LEVEL
from headrace.quality.profile import ColumnProfile, Histogram, TableProfile
from headrace.runtime.workspace import Workspace
from headrace.store.profiles import CheckPoint
from headrace.store.quality import CheckRecord
from headrace.store.records import VersionRecord

#: Sample rows and columns shown per failed check.
SAMPLE_ROWS = 5
SAMPLE_COLUMNS = 12


@dataclass(frozen=True, kw_only=True)
class ReportData:
    """Everything a report shows, gathered from the store (``build_report``)."""

    asset: str
    branch: str | None
    version: VersionRecord
    profile: TableProfile
    profiled_at: float | None
    results: list[CheckRecord] = field(default_factory=list)
    history: list[CheckPoint] = field(default_factory=list)
    generated_at: float = field(default_factory=time.time)


def build_report(
    ws: Workspace,
    asset: str,
    *,
    branch: str = "main",
    partition: str | None = None,
    version: str | None = None,
) -> ReportData:
    """Gather a report of ``asset``'s head on ``branch`` (or of one version).

    A partitioned asset reports on one partition's head: ``partition``, or the last in
    partition order. Its control charts cover every version of the asset, so a daily
    asset's charts run across its days. The version's stored profile is used; it is
    made (and stored) now when there is none.
    """
    from headrace.quality.profiling import versions_of

    records = versions_of(ws, asset, version=version, branch=branch, partition=partition)
    record = records[-1]
    stored = ws.store.profiles.get(record.id)
    if stored is not None:
        table, profiled_at = TableProfile.from_dict(stored.profile), stored.created_at
    else:
        from headrace.quality.profiling import profile_version

        table, profiled_at = profile_version(ws, record), time.time()
    latest: dict[str, CheckRecord] = {}
    for result in ws.store.quality.results(record.id):  # oldest first: the last one wins
        latest.pop(result.name, None)
        latest[result.name] = result
    return ReportData(
        asset=asset,
        branch=None if version is not None else branch,
        version=record,
        profile=table,
        profiled_at=profiled_at,
        results=sorted(latest.values(), key=lambda r: (r.passed, r.severity != "error")),
        history=ws.store.profiles.check_history(asset),
    )


def write_report(
    ws: Workspace,
    asset: str,
    output: str | Path | None = None,
    *,
    branch: str = "main",
    partition: str | None = None,
    version: str | None = None,
) -> Path:
    """Write the report of ``asset`` to ``output`` (default ``<asset>-report.html`` in
    the current folder) and return its path."""
    data = build_report(ws, asset, branch=branch, partition=partition, version=version)
    path = Path(output) if output is not None else Path(f"{asset}-report.html")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data), encoding="utf-8")
    return path.resolve()


# -- formatting -----------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _fmt(value: Any) -> str:
    """A value for a table cell (escaped)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return _e(value)
    if isinstance(value, int):
        return _e(f"{value:,}")
    if isinstance(value, float):
        return _e(f"{value:,.6g}" if math.isfinite(value) else value)
    text = str(value)
    return _e(text if len(text) <= 80 else text[:77] + "...")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


# -- histograms (hand-drawn SVG, a few hundred bytes each) ----------------------------


def _histogram_svg(column: ColumnProfile, histogram: Histogram) -> str:
    width, height, gap = 160, 36, 1
    counts = histogram.counts
    top = max(counts) or 1
    bar = width / len(counts)
    shapes = []
    for i, count in enumerate(counts):
        h = 0 if not count else max(1.0, (height - 2) * count / top)
        if column.kind == "temporal":
            tip = f"{count:,} rows"
        else:
            low, high = histogram.edges[i], histogram.edges[i + 1]
            tip = f"{low:,.6g} to {high:,.6g}: {count:,} rows"
        shapes.append(
            f'<rect x="{i * bar:.2f}" y="{height - h:.2f}" width="{max(bar - gap, 0.5):.2f}" '
            f'height="{h:.2f}"><title>{_e(tip)}</title></rect>'
        )
    label = f"histogram of {column.name}"
    return (
        f'<svg class="hist" role="img" aria-label="{_e(label)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">{"".join(shapes)}</svg>'
    )


# -- control charts (matplotlib, SVG) -------------------------------------------------

_XML_HEAD = re.compile(r"^.*?(?=<svg)", re.S)
_NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def _inline(svg: str, prefix: str) -> str:
    """matplotlib's SVG document as an element inside HTML: no XML prolog, metadata or
    namespace URLs (HTML implies them), and ids made unique to this chart."""
    svg = _XML_HEAD.sub("", svg, count=1)
    svg = _METADATA.sub("", svg)
    head, rest = svg.split(">", 1)
    svg = _NAMESPACES.sub("", head) + ">" + rest
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', svg)
    return re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)


@dataclass(frozen=True, kw_only=True)
class _Point:
    label: str
    value: float
    passed: bool
    lower: float | None = None
    upper: float | None = None


def _chart_svg(title: str, ylabel: str, points: Sequence[_Point], index: int) -> str:
    import matplotlib
    from matplotlib.figure import Figure

    nan = float("nan")
    xs = list(range(len(points)))
    ys = [p.value for p in points]
    lower = [nan if p.lower is None else p.lower for p in points]
    upper = [nan if p.upper is None else p.upper for p in points]
    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": f"headrace-{index}", "text.parse_math": False}
    ):
        figure = Figure(figsize=(7.0, 2.3), layout="constrained")
        ax = figure.add_subplot()
        if any(not math.isnan(v) for v in lower + upper):
            ax.fill_between(xs, lower, upper, step="mid", color="#16a34a", alpha=0.08, lw=0)
            ax.step(xs, lower, where="mid", color="#16a34a", lw=1, ls="--", label="limits")
            ax.step(xs, upper, where="mid", color="#16a34a", lw=1, ls="--")
        center = sum(ys) / len(ys)
        ax.axhline(center, color="#6b7280", lw=0.8, ls=":", label=f"mean {center:,.4g}")
        ax.plot(xs, ys, color="#2563eb", lw=1.2, marker="o", ms=3.5, label="observed")
        failed = [(x, p.value) for x, p in zip(xs, points, strict=True) if not p.passed]
        if failed:
            ax.scatter(
                [x for x, _ in failed],
                [y for _, y in failed],
                s=42,
                color="#dc2626",
                zorder=3,
                label="failed",
            )
        step = max(1, math.ceil(len(points) / 8))
        ticks = xs[::step]
        ax.set_xticks(ticks, [points[i].label for i in ticks], fontsize=7)
        ax.set_xlim(-0.5, len(points) - 0.5)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", color="#e5e7eb", lw=0.6)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        buffer = io.StringIO()
        figure.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    return _inline(buffer.getvalue(), f"c{index}-")


def _point_label(point: CheckPoint) -> str:
    return point.partition or point.version_id[:8]


def _chart_series(history: Sequence[CheckPoint]) -> dict[str, list[CheckPoint]]:
    """Per check name, its points with a numeric observed value (oldest first)."""
    series: dict[str, list[CheckPoint]] = {}
    for point in history:
        if _number(point.observed) is not None:
            series.setdefault(point.name, []).append(point)
    return series


def _charts(data: ReportData) -> list[str]:
    series = _chart_series(data.history)
    order = [r.name for r in data.results if r.name in series]
    order += sorted(name for name in series if name not in order)
    out: list[str] = []
    for index, name in enumerate(order):
        points = series[name]
        kind = points[-1].kind
        row_level = kind in ROW_LEVEL
        # A row-level check observes how many rows failed; its rule's bounds are on the
        # rows' values, not on that count, so they are not drawn.
        plotted = [
            _Point(
                label=_point_label(p),
                value=float(p.observed),
                passed=p.passed,
                lower=None if row_level else p.lower,
                upper=None if row_level else p.upper,
            )
            for p in points
        ]
        ylabel = "failing rows" if row_level else "observed"
        svg = _chart_svg(f"{name} ({kind})", ylabel, plotted, index)
        failures = sum(not p.passed for p in points)
        caption = (
            f"{len(points)} version{'s' * (len(points) != 1)}, {failures} not passed "
            f"(severity {points[-1].severity}); rule: {points[-1].threshold or '-'}"
        )
        out.append(
            f'<figure class="chart" id="chart-{_e(name)}">{svg}'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )
    return out


# -- the page -------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111827;margin:0;
background:#f9fafb}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#4b5563;margin:0 0 12px}.meta b{color:#111827}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border-bottom:1px solid #e5e7eb;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.small{color:#6b7280;font-size:11px}
.pass{color:#15803d;font-weight:600}.fail{color:#b91c1c;font-weight:600}
.warn{color:#b45309;font-weight:600}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;margin-right:6px;
font-size:12px;background:#e5e7eb}
.badge.fail{background:#fee2e2}.badge.pass{background:#dcfce7}.badge.warn{background:#fef3c7}
svg.hist rect{fill:#60a5fa}
figure.chart{background:#fff;border:1px solid #e5e7eb;margin:0 0 12px;padding:8px}
figure.chart svg{max-width:100%;height:auto}
figcaption{color:#4b5563;font-size:12px}
details{margin:4px 0 10px}summary{cursor:pointer;color:#374151}
code{font-size:12px}
"""


def _profile_rows(table: TableProfile) -> str:
    rows = []
    for column in table.columns:
        nulls = f"{column.nulls:,}"
        if table.rows:
            nulls += f' <span class="small">({column.null_fraction:.2%})</span>'
        if column.nan:
            nulls += f' <span class="small">+{column.nan:,} NaN</span>'
        shape: list[str] = []
        if column.histogram is not None:
            shape.append(_histogram_svg(column, column.histogram))
        if column.quantiles:
            shape.append(
                '<div class="small">'
                + " · ".join(f"p{float(q) * 100:g} {_fmt(v)}" for q, v in column.quantiles.items())
                + "</div>"
            )
        if column.top_values:
            shape.append(
                '<div class="small">'
                + " · ".join(f"{_fmt(v)} <b>{n:,}</b>" for v, n in column.top_values)
                + "</div>"
            )
        if column.min_length is not None:
            shape.append(
                f'<div class="small">length {column.min_length:,} to {column.max_length:,}</div>'
            )
        rows.append(
            "<tr>"
            f"<td><b>{_e(column.name)}</b></td>"
            f"<td><code>{_e(column.dtype)}</code></td>"
            f'<td class="n">{nulls}</td>'
            f'<td class="n">{_fmt(column.distinct)}</td>'
            f'<td class="n">{_fmt(column.min)}</td>'
            f'<td class="n">{_fmt(column.max)}</td>'
            f'<td class="n">{_fmt(column.mean)}</td>'
            f'<td class="n">{_fmt(column.std)}</td>'
            f"<td>{''.join(shape)}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>column</th><th>type</th><th>nulls</th><th>distinct</th><th>min</th>"
        "<th>max</th><th>mean</th><th>std</th><th>distribution</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _status(result: CheckRecord) -> str:
    if result.passed:
        return '<span class="pass">✓ passed</span>'
    if result.severity == "error":
        return '<span class="fail">✗ failed</span>'
    return '<span class="warn">! warned</span>'


def _sample_table(result: CheckRecord) -> str:
    rows = [r for r in result.sample[:SAMPLE_ROWS] if isinstance(r, dict)]
    if not rows:
        return ""
    wanted = [c for c in result.columns if c in rows[0]]
    names = list(dict.fromkeys([*wanted, *rows[0]]))[:SAMPLE_COLUMNS]
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(n))}</td>" for n in names) + "</tr>" for r in rows
    )
    more = len(result.sample) - len(rows)
    note = f'<div class="small">and {more} more sampled</div>' if more > 0 else ""
    return (
        f"<details><summary>{len(rows)} failing row{'s' * (len(rows) != 1)} of "
        f"<b>{_e(result.name)}</b></summary><table><tr>{head}</tr>{body}</table>{note}</details>"
    )


def _results(results: Sequence[CheckRecord]) -> str:
    if not results:
        return '<p class="meta">No check results are recorded for this version.</p>'
    rows = []
    for r in results:
        rows.append(
            "<tr>"
            f"<td>{_status(r)}</td><td><b>{_e(r.name)}</b></td><td>{_e(r.kind)}</td>"
            f"<td>{_e(', '.join(r.columns)) or '-'}</td><td>{_e(r.severity)}</td>"
            f'<td class="n">{_fmt(r.observed)}</td><td>{_e(r.threshold)}</td>'
            f'<td class="n">{_fmt(r.failing_rows)}</td><td>{_e(r.message or "")}</td>'
            "</tr>"
        )
    head = (
        "<tr><th>status</th><th>check</th><th>kind</th><th>columns</th><th>severity</th>"
        "<th>observed</th><th>threshold</th><th>failing rows</th><th>message</th></tr>"
    )
    samples = "".join(_sample_table(r) for r in results if not r.passed and r.sample)
    return f"<table>{head}{''.join(rows)}</table>{samples}"


def render_report(data: ReportData) -> str:
    """The report as one HTML document (inline CSS and SVG, no script, no URL)."""
    record = data.version
    label = data.asset + (f"[{record.partition}]" if record.partition else "")
    passed = sum(r.passed for r in data.results)
    errors = sum(not r.passed and r.severity == "error" for r in data.results)
    warnings = sum(not r.passed and r.severity != "error" for r in data.results)
    badges = (
        f'<span class="badge pass">{passed} passed</span>'
        f'<span class="badge fail">{errors} failed</span>'
        f'<span class="badge warn">{warnings} warned</span>'
        if data.results
        else ""
    )
    where = f" on <b>{_e(data.branch)}</b>" if data.branch else ""
    meta = (
        f"version <b><code>{_e(record.id)}</code></b>{where} · "
        f"<b>{data.profile.rows:,}</b> rows · <b>{len(data.profile.columns):,}</b> columns · "
        f"made {_e(_when(record.created_at))} · profiled {_e(_when(data.profiled_at))} "
        f"in {data.profile.seconds * 1000:,.0f} ms"
    )
    charts = _charts(data)
    chart_html = (
        "".join(charts)
        if charts
        else '<p class="meta">No check with a numeric observed value has a history yet.</p>'
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(label)}: quality report</title><style>{_STYLE}</style></head>"
        "<body><main>"
        f'<h1>{_e(label)}</h1><p class="meta">{meta}</p><p>{badges}</p>'
        f"<h2>Profile</h2>{_profile_rows(data.profile)}"
        f"<h2>Checks</h2>{_results(data.results)}"
        f"<h2>Control charts</h2>{chart_html}"
        f'<p class="small">generated by headrace at {_e(_when(data.generated_at))}</p>'
        "</main></body></html>\n"
    )
