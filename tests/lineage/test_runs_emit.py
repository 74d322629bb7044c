"""A real run, configured with ``[lineage] transport = "file"``, emits valid events."""

from __future__ import annotations

import json
from pathlib import Path

import headrace as hr
from tests.lineage.conftest import SpecValidator
from tests.projects import OPENED, write_project

PROJECT = """
import pandas as pd

@hr.asset(partitions=hr.static(["a", "b"]))
def raw(partition: str) -> pd.DataFrame:
    return pd.DataFrame({"p": [partition], "x": [1]})

@hr.asset
def total(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.groupby("p", as_index=False).x.sum()

@hr.asset
def broken(total: pd.DataFrame) -> int:
    raise ValueError("no")
"""


def test_a_run_emits_openlineage_events_that_validate(tmp_path: Path, spec: SpecValidator) -> None:
    root, _ = write_project(tmp_path, PROJECT)
    config = root / "headrace.toml"
    config.write_text(config.read_text() + '\n[lineage]\ntransport = "file"\n')
    ws = hr.open_workspace(root)
    OPENED.append(ws)
    result = hr.materialize(workspace=ws)
    assert result.steps["broken"].status == "failed"
    path = root / ".headrace" / "lineage" / "events.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    for event in events:
        spec.validate(event)
    kinds = [(e["job"]["name"], e["eventType"]) for e in events]
    project = ws.settings.project_name
    assert (project, "START") in kinds and (project, "FAIL") in kinds
    assert (f"{project}.total", "COMPLETE") in kinds
    assert (f"{project}.broken", "FAIL") in kinds
    complete = next(
        e for e in events if e["job"]["name"] == f"{project}.total" and e["eventType"] == "COMPLETE"
    )
    output = complete["outputs"][0]
    assert output["name"] == "main/total"
    assert [f["name"] for f in output["facets"]["schema"]["fields"]] == ["p", "x"]
    assert output["facets"]["version"]["datasetVersion"] == result.steps["total"].version_id
    assert [i["name"] for i in complete["inputs"]] == ["main/raw"]
    # A second run is cached: skipped steps emit nothing.
    before = len(events)
    hr.materialize("raw total", workspace=ws)
    after = path.read_text().splitlines()
    assert len(after) - before == 2  # the run's START and COMPLETE only
