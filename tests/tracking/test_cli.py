"""headrace runs search / compare and experiments list, as a user runs them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import headrace as hr
from headrace.workspace.settings import init_workspace
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def tracked(tmp_path: Path) -> list[str]:
    init_workspace(tmp_path)
    ws = hr.open_workspace(tmp_path)
    ids = []
    try:
        for i in range(3):
            with hr.start_run("churn", name=f"try{i}", workspace=ws) as run:
                hr.log_params({"lr": [0.1, 0.2, 0.4][i], "model": "gbm"})
                for step in range(5):
                    hr.log_metric("loss", 1 / (step + 1 + i), step=step)
                hr.log_metric("auc", [0.7, 0.8, 0.9][i])
                ids.append(run.id)
    finally:
        ws.close()
    return ids


def test_search_filters_orders_and_pages(tmp_path: Path, tracked: list[str]) -> None:
    done = run_cli(tmp_path, "runs", "search", "metrics.auc > 0.75", "--order-by", "metrics.auc")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "churn" in line]
    assert [row.split()[1] for row in rows] == ["try1", "try2"]
    first = run_cli(tmp_path, "runs", "search", "--json", "--max", "2", "--columns", "metrics.auc")
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert [line.get("name") for line in lines[:2]] == ["try2", "try1"]
    assert lines[0]["params"] == {} and set(lines[0]["metrics"]) == {"auc"}
    token = lines[2]["next_page_token"]
    rest = run_cli(tmp_path, "runs", "search", "--json", "--max", "2", "--page-token", token)
    assert [json.loads(line)["name"] for line in rest.stdout.splitlines()] == ["try0"]
    bad = run_cli(tmp_path, "runs", "search", "params.lr >")
    assert bad.returncode == 1 and "expected a value but found the end" in bad.stderr
    missing = run_cli(tmp_path, "runs", "search", "-e", "chrun")
    assert missing.returncode == 1 and "did you mean 'churn'" in missing.stderr


def test_compare_side_by_side_with_plot_and_csv(tmp_path: Path, tracked: list[str]) -> None:
    done = run_cli(
        tmp_path,
        "runs",
        "compare",
        *(run_id[:16] for run_id in tracked),
        "--plot",
        "loss.png",
        "--csv",
        "history.csv",
    )
    assert done.returncode == 0, done.stderr
    lr_row = next(line for line in done.stdout.splitlines() if "params.lr" in line)
    assert lr_row.split()[1:] == ["0.1", "0.2", "0.4"]
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (tmp_path / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len([r for r in rows if r["metric"] == "loss"]) == 15
    html = run_cli(tmp_path, "runs", "compare", tracked[0], tracked[1], "--plot", "p.html")
    assert html.returncode == 0 and "<svg" in (tmp_path / "p.html").read_text()
    bad = run_cli(tmp_path, "runs", "compare", tracked[0], "--plot", "p.jpg")
    assert bad.returncode == 1 and "use a .png, .svg or .html file" in bad.stderr
    typo = run_cli(tmp_path, "runs", "compare", tracked[0], "-m", "los")
    assert typo.returncode == 1 and "did you mean 'loss'" in typo.stderr


def test_experiments_list(tmp_path: Path, tracked: list[str]) -> None:
    done = run_cli(tmp_path, "experiments", "list")
    assert done.returncode == 0
    assert done.stdout.splitlines()[1].split()[:2] == ["churn", "3"]
