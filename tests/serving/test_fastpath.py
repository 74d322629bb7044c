"""The numeric fast path: same answers as the general path, and every other body falls
back to it (whose errors name the field); the adaptive micro-batch wait."""

from __future__ import annotations

import json
import time
from datetime import datetime

import httpx
import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import headrace as hr
from headrace.registry.service import load_model
from headrace.runtime.workspace import Workspace
from headrace.serving.fastpath import FastPath, Matrix, stack
from headrace.serving.predlog import Scored, _rows, row_ids
from tests.serving.test_server import serve

FLOATS = ["x1", "x2", "x3"]


def floats(rows: int = 120, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.normal(0, 1, rows) for c in FLOATS})


def fitted() -> object:
    data = floats()
    labels = (data.x1 + 0.5 * data.x2 - data.x3 > 0).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(data, labels)


@pytest.fixture
def fast(ws: Workspace) -> FastPath:
    hr.log_model(fitted(), "num", frame=floats(), workspace=ws)
    path = FastPath.of(load_model(ws, "num"))
    assert path is not None and path.columns == FLOATS
    return path


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": FLOATS, "data": [[0.1, -2, 3.5], [1, 2, 3]]}},
        {"dataframe_split": {"columns": FLOATS, "index": [0, 1], "data": [[0.1, -2, 3.5]] * 2}},
        {"dataframe_records": [{"x1": 0.1, "x2": -2, "x3": 3.5}, {"x3": 3, "x1": 1, "x2": 2}]},
        {"instances": [[0.1, -2, 3.5], [1, 2, 3]]},
        {"inputs": [{"x1": 0.1, "x2": -2, "x3": 3.5}]},
    ],
)
def test_plain_numeric_bodies_take_the_fast_path(fast: FastPath, payload: object) -> None:
    matrix = fast.read(body(payload))
    assert isinstance(matrix, Matrix) and matrix.array.dtype == np.float64
    assert matrix.array.shape[1] == 3 and matrix.array[0].tolist() == [0.1, -2.0, 3.5]


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["x2", "x1", "x3"], "data": [[1, 2, 3]]}},  # order
        {"dataframe_split": {"columns": FLOATS, "data": []}},
        {"dataframe_split": {"columns": FLOATS, "data": [[1, 2]]}},
        {"dataframe_split": {"columns": FLOATS, "data": [[1, 2, None]]}},
        {"dataframe_split": {"columns": FLOATS, "data": [[1, 2, True]]}},
        {"dataframe_split": {"columns": FLOATS, "data": [[1, 2, "3"]]}},
        {"dataframe_split": {"columns": FLOATS, "data": [[1, 2, [3]]]}},
        {"dataframe_split": {"columns": FLOATS, "data": [[1, 2, 10**400]]}},
        {"dataframe_split": {"columns": FLOATS, "data": [[1, 2, 3]], "extra": 1}},
        {"dataframe_records": [{"x1": 1, "x2": 2}]},
        {"dataframe_records": [{"x1": 1, "x2": 2, "x3": 3, "x4": 4}]},
        {"dataframe_records": [[1, 2, 3]]},
        {"instances": [[1, 2, 3]], "params": {"a": 1}},
        {"something": [[1, 2, 3]]},
        [[1, 2, 3]],
    ],
)
def test_other_bodies_fall_back_to_the_general_path(fast: FastPath, payload: object) -> None:
    assert fast.read(body(payload)) is None


def test_non_finite_and_malformed_bodies_fall_back(fast: FastPath) -> None:
    assert fast.read(b'{"instances": [[1, 2, NaN]]}') is None
    assert fast.read(b'{"instances": [[1, 2, Infinity]]}') is None
    assert fast.read(b"{not json") is None
    assert fast.read(b"\xff\xfe") is None


def test_models_that_need_a_frame_or_other_types_have_no_fast_path(ws: Workspace) -> None:
    ints = floats().assign(x3=lambda d: (d.x3 * 10).round().astype(int))
    labels = (ints.x1 > 0).astype(int)
    hr.log_model(
        make_pipeline(StandardScaler(), LogisticRegression()).fit(ints, labels),
        "mixed",
        frame=ints,
        workspace=ws,
    )
    assert FastPath.of(load_model(ws, "mixed")) is None  # an Int64 column
    by_name = make_pipeline(
        make_column_transformer((StandardScaler(), ["x2", "x1"])), LogisticRegression()
    ).fit(floats(), labels)
    hr.log_model(by_name, "by_name", frame=floats(), workspace=ws)
    assert FastPath.of(load_model(ws, "by_name")) is None  # selects columns by name


def test_fast_and_general_paths_answer_alike_over_http(ws: Workspace) -> None:
    model = fitted()
    hr.log_model(model, "num", frame=floats(), workspace=ws)
    data = floats(40, seed=11)
    expected = model.predict(data).tolist()  # type: ignore[attr-defined]
    split = data.to_dict("split")
    reordered = data[["x3", "x1", "x2"]].to_dict("split")
    with serve(ws, "num") as running:
        post = running.url + "/invocations"
        in_order = {"dataframe_split": {"columns": FLOATS, "data": split["data"]}}
        fast = httpx.post(post, json=in_order)
        general = httpx.post(
            post,
            json={"dataframe_split": {"columns": reordered["columns"], "data": reordered["data"]}},
        )
        records = httpx.post(post, json={"dataframe_records": data.to_dict("records")})
        assert fast.status_code == general.status_code == records.status_code == 200
        assert fast.json()["predictions"] == general.json()["predictions"] == expected
        assert records.json()["predictions"] == expected
        # the fast path declines these; the general path names the field
        bad = httpx.post(post, json={"dataframe_split": {"columns": FLOATS, "data": [[1, 2, "a"]]}})
        assert bad.status_code == 400 and bad.json()["field"] == "x3"
        missing = httpx.post(post, json={"dataframe_records": [{"x1": 1.0, "x2": 2.0}]})
        assert missing.status_code == 400 and missing.json()["field"] == "x3"
        running.stop()  # type: ignore[operator]
    logged = ws.store.predictions.list("num", limit=1000)
    assert len(logged) == 120  # three good requests of 40 rows; the bad ones are not logged
    first = [p for p in logged if p.row == 0]
    assert all(p.inputs == dict(zip(FLOATS, split["data"][0], strict=True)) for p in first)


def test_a_lone_request_does_not_wait_for_a_batch_to_fill(ws: Workspace) -> None:
    hr.log_model(fitted(), "num", frame=floats(), workspace=ws)
    row = {"instances": [[0.5, 0.1, -0.2]]}
    with serve(ws, "num", batch_max_rows=16, batch_max_wait_ms=1000.0) as running:
        started = time.perf_counter()
        for _ in range(5):
            assert httpx.post(running.url + "/invocations", json=row).status_code == 200
        elapsed = time.perf_counter() - started
        batcher = running.app.state.batcher  # type: ignore[attr-defined]
        # waiting out the window would take 5 s; each request went alone at once
        assert elapsed < 2.5 and batcher.batches == 5 and batcher.largest == 1


def test_stacking_matrices_and_frames() -> None:
    a = Matrix(np.array([[1.0, 2.0, 3.0]]), FLOATS)
    b = Matrix(np.array([[4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]), FLOATS)
    both = stack([a, b])
    assert isinstance(both, Matrix) and both.height == 3
    frame = pl.DataFrame({"x1": [0.0], "x2": [0.0], "x3": [0.0]})
    mixed = stack([a, frame])
    assert isinstance(mixed, pl.DataFrame) and mixed.to_dicts()[1] == dict.fromkeys(FLOATS, 0.0)


def test_the_log_encodes_matrices_and_frames_of_any_type() -> None:
    def scored(inputs: object, outputs: list[object]) -> Scored:
        return Scored("r", "m", 1, "served", inputs, outputs, 1.0, 0.0)

    a = Matrix(np.array([[1.5, 2.0, -3.25]]), FLOATS)
    b = Matrix(np.array([[4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]), FLOATS)
    frame = pl.DataFrame({"when": [datetime(2026, 1, 2, 3, 4)], "n": [None]})
    rows = _rows([scored(a, [1]), scored(frame, ["x"]), scored(b, [0, 1])], row_ids())
    inputs = [json.loads(r["inputs"]) for r in rows]
    assert inputs[0] == {"x1": 1.5, "x2": 2.0, "x3": -3.25}
    assert inputs[1]["when"].startswith("2026-01-02") and inputs[1]["n"] is None
    assert inputs[2:] == [{"x1": 4.0, "x2": 5.0, "x3": 6.0}, {"x1": 7.0, "x2": 8.0, "x3": 9.0}]
    assert [json.loads(r["output"]) for r in rows] == [1, "x", 0, 1]
    assert len({r["id"] for r in rows}) == 4
