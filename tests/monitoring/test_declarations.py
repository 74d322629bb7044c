"""Declaring monitors in code and in monitors.yaml: every mistake is named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from headrace import monitors as m
from headrace.core.monitors import MONITORS, MonitorDefinitionError, seconds
from headrace.workspace.monitors import load_monitor_file


def test_a_monitor_in_code_with_every_part() -> None:
    declared = m.monitor(
        "decl_full",
        model="delay",
        window="12h",
        tests={"distance": "psi", "carrier": {"method": "chi2", "threshold": 0.01}},
        limits=[m.performance("roc_auc", baseline="holdout_auc", max_drop=0.05)],
        actions=[
            m.webhook("https://hooks.example.com/x", secret_env="HOOK"),
            m.email(["a@example.com"], port=2525),
            m.log("error"),
            m.retrain("+delay", params={"months": 3}),
        ],
        cooldown="30m",
    )
    assert MONITORS["decl_full"] is declared
    assert declared.window == 12 * 3600 and declared.window_rows is None
    assert declared.tests == {"distance": ("psi", None), "carrier": ("chi2", 0.01)}
    assert [a.kind for a in declared.actions] == ["webhook", "email", "log", "retrain"]
    assert declared.cooldown == 1800 and declared.watches == "model delay@champion"
    assert m.monitor("decl_rows", model="delay", window=5000).window_rows == 5000
    assert m.monitor("decl_cron", model="delay", schedule="0 6 * * 1-5").schedule == "0 6 * * 1-5"
    assert m.monitor("decl_every", model="delay", schedule="15m").schedule == "15m"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: m.monitor("bad name!", model="x"), "is not a name"),
        (lambda: m.monitor("a"), "watch exactly one of model= or asset="),
        (lambda: m.monitor("a", model="x", asset="y"), "exactly one of"),
        (lambda: m.monitor("a", asset="y"), "an asset monitor needs reference="),
        (lambda: m.monitor("a", model="x", window="soon"), "expected a duration such as"),
        (lambda: m.monitor("a", model="x", window=0), "window must be >= 1"),
        (lambda: m.monitor("a", model="x", cooldown="-1h"), "expected a duration"),
        (lambda: m.monitor("a", model="x", drift_share=2), "drift_share must be in"),
        (lambda: m.monitor("a", model="x", schedule="hourly"), "schedule is a duration such as"),
        (lambda: m.monitor("a", model="x", tests={"c": "t-test"}), "unknown drift method"),
        (
            lambda: m.monitor("a", model="x", tests={"c": {"method": "psi", "threshold": -1}}),
            "threshold must be a number > 0",
        ),
        (lambda: m.monitor("a", model="x", limits=["auc"]), "limits must be made with"),
        (lambda: m.monitor("a", model="x", actions=["log"]), "actions must be made with"),
        (lambda: m.performance("auc", min=0.7), "unknown metric 'auc'"),
        (lambda: m.performance("roc_auc", max_drop=0.1), "max_drop needs baseline="),
        (lambda: m.performance("roc_auc"), "give min=, max= or max_drop="),
        (lambda: m.webhook("ftp://x"), "expected an http(s) URL"),
        (lambda: m.email("nobody"), "expected e-mail addresses"),
        (lambda: m.email("a@b.c", port=0), "port must be 1-65535"),
        (lambda: m.log("loud"), "level is info, warning or error"),
        (lambda: m.retrain(""), "expected an asset selection"),
    ],
)
def test_mistakes_in_code_are_named(make: object, message: str) -> None:
    with pytest.raises(MonitorDefinitionError, match=re.escape(message)):
        make()  # type: ignore[operator]


def test_durations() -> None:
    assert [seconds(v, "w") for v in ("90s", "30m", "6h", "1d", "2w", 15)] == [
        90,
        1800,
        21600,
        86400,
        1209600,
        15,
    ]


def test_monitors_yaml_loads_every_field(tmp_path: Path) -> None:
    path = tmp_path / "monitors.yaml"
    path.write_text(
        """
monitors:
  - name: yaml_watch
    model: flight_delay
    reference_where: "month <= {train_months}"
    window: 5000
    min_rows: 500
    tests: {distance: psi, carrier: {method: chi2, threshold: 0.01}}
    target: delayed
    limits:
      - {metric: roc_auc, baseline: holdout_auc, max_drop: 0.05}
    actions:
      - webhook: {url: "http://127.0.0.1:9/hook", secret_env: HOOK}
      - log: {}
      - retrain: {selection: flight_delay, params: {train_months: 8}}
    cooldown: 6h
"""
    )
    [loaded] = load_monitor_file(path)
    assert loaded.window_rows == 5000 and loaded.target == "delayed"
    assert loaded.limits[0].max_drop == 0.05 and loaded.actions[2].options["params"] == {
        "train_months": 8
    }
    assert MONITORS["yaml_watch"] is loaded


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("monitors: [", "not valid YAML"),
        ("watch: 1", "expected a top-level 'monitors:' list"),
        ("monitors: [{model: x}]", "monitors[0]: each monitor is a mapping with a name"),
        (
            "monitors: [{name: a, model: x, windw: 5}]",
            "unknown field 'windw' (did you mean 'window'?)",
        ),
        ("monitors: [{name: a, model: x, actions: [{page: {}}]}]", "unknown action 'page'"),
        ("monitors: [{name: a, model: x, actions: [{log: {colour: red}}]}]", "actions[0]: log:"),
        ("monitors: [{name: a, model: x, limits: [{metric: roc_auc, minimum: 1}]}]", "limits:"),
        ("monitors: [{name: a, model: x, window: soon}]", "monitors.yaml: monitor('a'): window"),
    ],
)
def test_mistakes_in_yaml_name_the_file_and_the_monitor(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "monitors.yaml"
    path.write_text(text)
    with pytest.raises(MonitorDefinitionError) as error:
        load_monitor_file(path)
    assert message in str(error.value)
