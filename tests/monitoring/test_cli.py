"""``headrace monitor`` over a real project: list, run, show, report, and mistakes."""

from __future__ import annotations

from pathlib import Path

import headrace as hr
from headrace.registry.service import set_alias
from tests.integration.conftest import run_cli
from tests.monitoring.test_monitor_run import PROJECT, _label, _score
from tests.projects import open_project


def test_monitor_commands(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PROJECT)
    assert hr.materialize(workspace=ws).success
    set_alias(ws, "delay_model", "champion", 1)
    module = __import__(ws.settings.project_module)
    calm, moved = module.world(500, 1, 31), module.world(500, 2, 32)
    _label(ws, calm, _score(ws, calm, "calm"))
    _score(ws, moved, "moved")
    ws.close()

    listed = run_cli(tmp_path, "monitor", "list", check=True).stdout
    assert "delay_watch" in listed and "model delay_model@champion" in listed
    assert "500 predictions" in listed and "roc_auc, accuracy" in listed

    ran = run_cli(tmp_path, "monitor", "run", "delay_watch", "--no-actions", check=True).stdout
    assert "delay_watch: 2 window(s)" in ran
    assert "ok version 1" in ran and "drift version 1" in ran and "drifted: distance" in ran
    assert "measured on 500 rows" in ran and "estimated on 500 rows" in ran
    assert "alert" not in ran and "retrain" not in ran  # --no-actions sends nothing

    again = run_cli(tmp_path, "monitor", "run", check=True).stdout
    assert "no new predictions" in again

    shown = run_cli(tmp_path, "monitor", "show", "delay_watch", check=True).stdout
    assert shown.count("delay_watch") == 0 and " ok " in shown and " drift " in shown

    report = run_cli(tmp_path, "monitor", "report", "delay_watch", "-o", "r.html", check=True)
    assert "wrote" in report.stdout and (tmp_path / "r.html").read_text().count("<svg") >= 3

    unknown = run_cli(tmp_path, "monitor", "run", "delay_wach")
    assert unknown.returncode == 1
    assert "no monitor named 'delay_wach'" in unknown.stderr and "delay_watch" in unknown.stderr
    empty = run_cli(tmp_path, "monitor", "report", "nothing_here")
    assert empty.returncode == 1 and "run `headrace monitor run` first" in empty.stderr
