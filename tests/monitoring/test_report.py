"""The HTML report of a monitor: one self-contained page with the drift share over time,
each column's reference and current distributions for the latest judged window (drifted
first), performance over time with estimates drawn apart, and prediction and target
drift over time; made from the store alone."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import headrace as hr
from headrace.core.monitors import MONITORS
from headrace.drift import DriftDetector
from headrace.monitoring.report import write_report
from headrace.monitoring.runner import MonitorError, run_monitor
from headrace.registry.service import set_alias
from headrace.runtime.workspace import Workspace
from headrace.store.monitoring import AlertRecord, ResultRecord, WindowRecord
from tests.monitoring.test_monitor_run import PROJECT, _label, _score
from tests.projects import close_opened, open_project

_SECTION = re.compile(
    r'<section class="column( drifted)?" id="column-\d+"><h3>.*?</span> (.*?)</h3>(.*?)</section>',
    re.S,
)


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    close_opened()


@pytest.fixture
def served(tmp_path: Path) -> Workspace:
    ws = open_project(tmp_path, PROJECT)
    assert hr.materialize(workspace=ws).success
    set_alias(ws, "delay_model", "champion", 1)
    return ws


def _assert_self_contained(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()
    external = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert external == []
    assert "http://" not in text and "https://" not in text


def _part(text: str, start: str, end: str | None) -> str:
    """The text from the heading with id ``start`` up to the one with id ``end``."""
    head = text.index(f'id="{start}"')
    tail = text.index(f'id="{end}"', head) if end else len(text)
    return text[head:tail]


def _columns(text: str) -> list[tuple[str, bool, str]]:
    """Per-column blocks in page order: (name as written, drifted, the block's body)."""
    return [(m.group(2), bool(m.group(1)), m.group(3)) for m in _SECTION.finditer(text)]


def test_the_report_shows_drift_per_column_and_performance_over_time(
    served: Workspace, tmp_path: Path
) -> None:
    name = served.settings.project_module
    assert name is not None
    module = __import__(name)
    calm, moved = module.world(1000, 1, 11), module.world(1000, 2, 12)
    _label(served, calm, _score(served, calm, "calm"))
    _label(served, moved, _score(served, moved, "moved"))
    run = run_monitor(served, MONITORS["delay_watch"], act=False)
    assert [w.window.status for w in run.windows] == ["ok", "ok", "breach", "breach"]

    path = write_report(served, "delay_watch", tmp_path / "out" / "nested" / "report.html")

    assert path.is_file() and path.parent.name == "nested"
    text = path.read_text(encoding="utf-8")
    _assert_self_contained(text)
    # the header: what it watches, its windows, the latest status, no alerts (act=False)
    header = text[: text.index('id="drift-share"')]
    assert "delay_watch" in header and "model delay_model@champion" in header
    assert "<b>4</b> windows" in header and 'data-status="breach"' in header
    assert "<b>0</b> alerts" in header and "No alerts." in header
    # the windows table shows every window's status
    table = text[text.index('<table class="windows">') :]
    table = table[: table.index("</table>")]
    assert table.count('data-status="ok"') == 2 and table.count('data-status="breach"') == 2
    # per column: distance drifted and comes first; both distributions drawn from the
    # reference profile and the window's 500 logged rows
    columns = _part(text, "columns", "performance")
    found = _columns(columns)
    assert [(name, drifted) for name, drifted, _ in found] == [
        ("distance", True),
        ("temp", False),
    ]
    assert columns.index('<span class="badge fail drift-flag" data-drifted="yes">drifted') < (
        columns.index('data-drifted="no"')
    )
    distance = found[0][2]
    assert "wasserstein" in distance and "<svg" in distance
    assert "reference: 3,000 values" in distance and "current: 500 values" in distance
    assert all(body.count("<svg") == 1 for _, _, body in found)
    # one chart per measured metric, estimates labelled and kept apart
    store = served.store.monitoring
    windows = store.windows("delay_watch")
    results = store.results([w.id for w in windows])
    metrics = {r.name.removesuffix(" (estimated)") for r in results if r.kind == "performance"}
    assert {"roc_auc", "accuracy"} <= metrics
    assert any(r.estimated and r.name == "accuracy (estimated)" for r in results)
    performance = _part(text, "performance", "prediction_drift")
    assert performance.count("<svg") == len(metrics)
    for chart in performance.split("<svg")[1:]:
        assert ">measured<" in chart and ">estimated<" in chart
    assert "estimated" in performance and "never merged" in performance
    # prediction and target drift over time
    drift_names = {(r.kind, r.name) for r in results if r.kind.endswith("_drift")}
    assert ("prediction_drift", "prediction") in drift_names
    assert ("target_drift", "delayed") in drift_names
    assert _part(text, "prediction_drift", "target_drift").count("<svg") == 1
    assert _part(text, "target_drift", None).count("<svg") == 1
    # every chart inline: drift share, two columns, the metrics, prediction, target
    assert text.count("<svg") == 1 + 2 + len(metrics) + 1 + 1
    assert _part(text, "drift-share", "columns").count("<svg") == 1


def test_a_monitor_without_windows_is_a_clear_error(tmp_path: Path) -> None:
    ws = open_project(tmp_path, "")
    with pytest.raises(MonitorError, match=r"no windows yet: run `headrace monitor run` first"):
        write_report(ws, "never_ran", tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_names_from_the_data_are_escaped_and_an_undeclared_monitor_still_reports(
    tmp_path: Path,
) -> None:
    """A window written straight to the store: the monitor is not declared, a column
    name and categories hold HTML, and performance is only estimated."""
    ws = open_project(tmp_path / "ws", "")
    number, city = "<b>x&y</b>", 'city"<i>'
    rng = np.random.default_rng(4)
    reference = pl.DataFrame(
        {number: rng.normal(0, 1, 400), city: rng.choice(["a<b", "c&d", "e"], 400).tolist()}
    )
    profile = DriftDetector().fit(reference).profile()
    ws.store.monitoring.save_reference(
        "tiny", "ref-1", {"features": profile, "rows": 400, "metrics": {}}
    )
    start = time.time() - 1000
    values = rng.normal(3, 1, 150)  # moved: the numeric column drifts
    cities = rng.choice(["a<b", "c&d", "e"], 150).tolist()
    ws.store.predictions.write(
        [
            {
                "id": f"r{i}",
                "request_id": f"q{i}",
                "model": "tiny_model",
                "version": 1,
                "role": "served",
                "row": 0,
                "key": None,
                "inputs": json.dumps({number: float(values[i]), city: cities[i]}),
                "output": json.dumps(1),
                "latency_ms": 1.0,
                "created_at": start + i,
                "label": None,
                "labeled_at": None,
                "score": 0.7,
            }
            for i in range(150)
        ]
    )
    current = pl.DataFrame({number: values, city: cities})
    drift = DriftDetector.from_profile(profile).score(current)
    assert drift.drifted_columns == [number]

    def window(ident: str, first: float, last: float, rows: int, status: str) -> WindowRecord:
        return WindowRecord(
            id=ident,
            monitor="tiny",
            model="tiny_model",
            version=1,
            asset_version=None,
            start=first,
            end=last,
            rows=rows,
            labeled=0,
            status=status,
            drift_share=None if status == "too_small" else drift.share,
            evaluated_at=time.time(),
            reference="ref-1",
        )

    def result(
        kind: str,
        name: str,
        *,
        method: str | None = None,
        value: float | None = None,
        p_value: float | None = None,
        threshold: float | None = None,
        breached: bool = False,
        estimated: bool = False,
    ) -> ResultRecord:
        return ResultRecord(
            window_id="w2",
            kind=kind,
            name=name,
            method=method,
            value=value,
            p_value=p_value,
            threshold=threshold,
            baseline=None,
            breached=breached,
            estimated=estimated,
        )

    ws.store.monitoring.save_window(window("w1", start - 500, start - 400, 20, "too_small"), [])
    ws.store.monitoring.save_window(
        window("w2", start, start + 149, 150, "drift"),
        [
            *(
                result(
                    "column_drift",
                    c.column,
                    method=c.method,
                    value=c.score,
                    p_value=c.p_value,
                    threshold=c.threshold,
                    breached=c.drifted,
                )
                for c in drift.columns
            ),
            result("dataset_drift", "share", value=drift.share, threshold=0.5, breached=True),
            result("performance", "accuracy (estimated)", value=0.7, estimated=True),
        ],
    )
    ws.store.monitoring.add_alert(
        AlertRecord(
            id="a1",
            monitor="tiny",
            key="dataset_drift",
            window_id="w2",
            message=f"drift of {number}\nthe rest",
            payload={},
            created_at=start + 200,
            suppressed=True,
            outcomes=[],
        )
    )

    text = write_report(ws, "tiny", tmp_path / "tiny.html").read_text(encoding="utf-8")

    _assert_self_contained(text)
    for raw in (number, city, "a<b", "c&d"):
        assert raw not in text
    assert html.escape(number) in text and html.escape("c&d") in text
    assert "model tiny_model" in text and "(not declared)" in text
    assert 'data-status="too_small"' in text and 'data-status="drift"' in text
    # the alert: its first line, escaped, marked suppressed
    alerts = text[text.index('<table class="alerts">') :]
    alerts = alerts[: alerts.index("</table>")]
    assert f">drift of {html.escape(number)}</td>" in alerts
    assert "<td>yes</td>" in alerts
    # the drifted numeric column first; the categories drawn as bars from both sides
    found = _columns(_part(text, "columns", "performance"))
    assert [(name, drifted) for name, drifted, _ in found] == [
        (html.escape(number), True),
        (html.escape(city), False),
    ]
    assert "current: 150 values" in found[0][2]
    assert "current: 150 rows" in found[1][2] and "top 3" in found[1][2]
    # only estimated: still drawn, labelled as estimated
    performance = _part(text, "performance", None)
    assert performance.count("<svg") == 1
    assert ">estimated<" in performance and ">measured<" not in performance
    assert text.count("<svg") == 1 + 2 + 1
