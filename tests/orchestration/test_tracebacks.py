"""A failed step's traceback says whose each frame is: the user's, a library's or
headrace's own; real failures, shown by ``headrace runs show``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import run_cli
from tests.projects import write_project

PROJECT = """
import json

@hr.asset
def raw() -> dict:
    return {"rows": 3}

@hr.asset
def parsed(raw: dict) -> dict:
    return json.loads("{" + str(raw["rows"]))

@hr.asset
def broken(raw: dict) -> dict:
    raise ValueError(f"bad value in row {raw['rows']}")
"""


def _run_id(output: str) -> str:
    found = re.search(r"runs show ([0-9a-f]+)", output)
    assert found, output
    return found.group(1)


def _labels(shown: str) -> list[str]:
    return re.findall(r"^  -- in (.+) --$", shown, flags=re.MULTILINE)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_project(tmp_path, PROJECT)
    return tmp_path


@pytest.mark.integration
def test_a_failure_in_your_code_shows_your_frames_and_the_libraries_below(project: Path) -> None:
    failed = run_cli(project, "materialize")  # all three
    assert failed.returncode == 1
    shown = run_cli(project, "runs", "show", _run_id(failed.stdout + failed.stderr)).stdout
    failures = {part.split(":")[0]: part for part in shown.split("\n✗ ")[1:]}
    broken, parsed = failures["broken"], failures["parsed"]
    assert _labels(broken) == ["your code"]
    assert 'raise ValueError(f"bad value in row {raw' in broken
    assert "headrace/" not in broken
    assert _labels(parsed) == ["your code", "a library (not your code)"]
    assert "json/decoder.py" in parsed and "headrace/" not in parsed


@pytest.mark.integration
def test_a_failure_inside_headrace_shows_its_frames_labelled_not_yours(project: Path) -> None:
    # A real failure of headrace's object store: the folder its writes start in is a
    # file (so is a disk that is full or read-only: the write fails in headrace, not
    # in the asset).
    objects = project / ".headrace" / "objects"
    objects.mkdir(parents=True, exist_ok=True)
    (objects / ".tmp").write_text("not a folder\n")
    failed = run_cli(project, "materialize", "raw")
    assert failed.returncode == 1
    shown = run_cli(project, "runs", "show", _run_id(failed.stdout + failed.stderr)).stdout
    assert "✗ raw: asset 'raw' failed: FileExistsError:" in shown
    trace = shown[shown.index("Traceback (most recent call last):") :]
    assert _labels(trace) == ["headrace (not your code)", "a library (not your code)"]
    assert "headrace/objects/blobs.py" in trace and "in put_bytes" in trace
    assert "-- in your code --" not in trace
    assert trace.rstrip().endswith("File exists: " + repr(str(objects / ".tmp")))


@pytest.mark.integration
def test_an_object_store_that_is_not_a_folder_is_one_clear_line(project: Path) -> None:
    objects = project / ".headrace" / "objects"
    if objects.exists():
        objects.rmdir()
    objects.write_text("not a folder\n")
    failed = run_cli(project, "materialize", "raw")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert f"the object store {objects} is not a folder" in failed.stderr


def test_frames_are_told_apart_by_their_files() -> None:
    import json

    import headrace
    from headrace.orchestration.tracebacks import HEADRACE, LIBRARY, YOURS, owner

    assert owner(headrace.__file__) == HEADRACE
    assert owner(json.__file__) == LIBRARY
    assert owner(pytest.__file__) == LIBRARY
    assert owner("<frozen importlib._bootstrap>") == LIBRARY
    assert owner(__file__) == YOURS
    assert owner("/srv/project/pipeline.py") == YOURS
