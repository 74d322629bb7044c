"""OpenLineage events of a run: the event model, and every event valid against the spec."""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from jsonschema import ValidationError

import headrace
from headrace.core.observers import StepEvent, VersionRef
from headrace.lineage import LineageStats, MemoryTransport, OpenLineageEmitter
from headrace.lineage.events import RUN_EVENT_SCHEMA_URL, run_uuid, schema_fields
from tests.lineage.conftest import SpecValidator
from tests.lineage.scenario import (
    RUN_ID,
    T0,
    TRACEBACK,
    Played,
    arrow_schema,
    play_run,
    run_info,
)

NS = "headrace://flights"


@pytest.fixture
def played() -> tuple[Played, list[dict[str, Any]], OpenLineageEmitter]:
    transport = MemoryTransport()
    emitter = OpenLineageEmitter(transport)
    result = play_run(emitter)
    return result, transport.events, emitter


def of_job(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["job"]["name"] == name]


def test_every_event_is_valid_openlineage(played: Any, spec: SpecValidator) -> None:
    _, events, emitter = played
    assert events
    for event in events:
        spec.validate(event)
        assert event["schemaURL"] == RUN_EVENT_SCHEMA_URL
        assert event["schemaURL"].startswith(spec.spec["$id"] + "#")
    assert emitter.stats == LineageStats(sent=len(events), failed=0, dropped=0)


def test_the_validator_rejects_what_the_spec_forbids(played: Any, spec: SpecValidator) -> None:
    """The schema checks are not vacuous: formats, facet schemas and facet keys are enforced."""
    _, events, _ = played
    complete = of_job(events, "flights.features")[-1]
    broken: list[dict[str, Any]] = []
    event = copy.deepcopy(complete)
    event["run"]["runId"] = RUN_ID  # not a UUID
    broken.append(event)
    event = copy.deepcopy(complete)
    event["eventTime"] = "2024-05-01 10:40"  # not RFC 3339
    broken.append(event)
    event = copy.deepcopy(complete)
    del event["outputs"][0]["facets"]["schema"]["_producer"]
    broken.append(event)
    event = copy.deepcopy(complete)
    event["outputs"][0]["facets"]["schema"]["fields"][0]["name"] = 3
    broken.append(event)
    event = copy.deepcopy(complete)
    del event["outputs"][0]["facets"]["version"]["datasetVersion"]
    broken.append(event)
    for event in broken:
        with pytest.raises(ValidationError):
            spec.validate(event)
    event = copy.deepcopy(complete)
    facets = event["outputs"][0]["facets"]
    facets["columns"] = facets.pop("schema")  # a facet under another facet's key
    with pytest.raises(AssertionError, match="is not the key"):
        spec.validate(event)


def test_one_run_level_job_and_one_stable_job_per_asset(played: Any) -> None:
    result, events, _ = played
    run_events = of_job(events, "flights")
    assert [e["eventType"] for e in run_events] == ["START", "FAIL"]
    assert {e["job"]["namespace"] for e in events} == {NS}
    assert {e["job"]["name"] for e in events} == {
        "flights",
        "flights.raw_flights",
        "flights.features",
        "flights.model",
    }
    assert [e["eventType"] for e in of_job(events, "flights.raw_flights")] == [
        "START",
        "COMPLETE",
        "START",
        "COMPLETE",
    ]
    run_id = run_events[0]["run"]["runId"]
    assert run_id == run_uuid(result.run.run_id) == str(uuid.UUID(run_id))
    assert run_events[0]["run"]["runId"] == run_events[1]["run"]["runId"]
    assert run_events[0]["job"]["facets"]["jobType"]["jobType"] == "JOB"
    assert run_events[0]["eventTime"] == "2024-05-01T10:40:00+00:00"


def test_step_runs_share_one_uuid_and_point_at_the_run(played: Any) -> None:
    _, events, _ = played
    run_id = run_uuid(RUN_ID)
    by_run: dict[str, list[str]] = {}
    for event in events:
        if event["job"]["name"] == "flights":
            continue
        by_run.setdefault(event["run"]["runId"], []).append(event["eventType"])
        parent = event["run"]["facets"]["parent"]
        assert parent["run"] == {"runId": run_id}
        assert parent["job"] == {"namespace": NS, "name": "flights"}
        assert parent["root"] == {"run": parent["run"], "job": parent["job"]}
        assert event["job"]["facets"]["jobType"]["jobType"] == "ASSET"
    # a START and one terminal event per step; the two raw_flights partitions are 2 runs
    assert sorted(by_run.values()) == sorted([["START", "COMPLETE"]] * 3 + [["START", "FAIL"]])
    assert run_uuid(RUN_ID, "raw_flights[2013-01]") in by_run
    assert len({*by_run, run_id}) == 5


def test_run_ids_are_stable_across_emitters() -> None:
    first, second = MemoryTransport(), MemoryTransport()
    play_run(OpenLineageEmitter(first))
    play_run(OpenLineageEmitter(second))
    assert [e["run"]["runId"] for e in first.events] == [e["run"]["runId"] for e in second.events]
    other = MemoryTransport()
    play_run(OpenLineageEmitter(other), run_info(run_id="018f3a1b2c3d4e5f60718293a4b5ffff"))
    assert {e["run"]["runId"] for e in other.events}.isdisjoint(
        {e["run"]["runId"] for e in first.events}
    )


def test_complete_carries_inputs_and_the_new_output_version(played: Any) -> None:
    _, events, _ = played
    start, complete = of_job(events, "flights.features")
    assert complete["eventTime"] == "2024-05-01T10:40:06.500000+00:00"
    flights, weather = complete["inputs"]
    # the two partitions read of raw_flights are one dataset, its subset names both
    assert (flights["namespace"], flights["name"]) == (NS, "main/raw_flights")
    assert flights["inputFacets"]["subset"]["inputCondition"] == {
        "type": "partition",
        "partitions": [
            {"identifier": "2013-01", "dimensions": {"partition": "2013-01"}},
            {"identifier": "2013-02", "dimensions": {"partition": "2013-02"}},
        ],
    }
    assert flights["inputFacets"]["inputStatistics"]["rowCount"] == 2001
    assert "version" not in flights["facets"]  # two versions: each partition has its own
    assert [f["name"] for f in flights["facets"]["schema"]["fields"]] == [
        "carrier",
        "dep_time",
        "delay",
    ]
    assert weather["name"] == "main/weather"
    assert weather["facets"]["version"]["datasetVersion"] == "v-weather-1"
    assert "subset" not in weather.get("inputFacets", {})

    (output,) = complete["outputs"]
    assert (output["namespace"], output["name"]) == (NS, "main/features")
    assert output["facets"]["version"]["datasetVersion"] == "v-features-1"
    assert output["outputFacets"] == {
        "outputStatistics": {
            "_producer": complete["producer"],
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-2/"
            "OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
            "rowCount": 42,
        }
    }
    assert output["facets"]["schema"]["fields"][1] == {
        "name": "stats",
        "type": "struct",
        "ordinal_position": 2,
        "fields": [
            {"name": "mean", "type": "double", "ordinal_position": 1},
            {"name": "hours", "type": "list<item: int16>", "ordinal_position": 2},
        ],
    }
    # START names the inputs and the output dataset, without a version yet
    assert [d["name"] for d in start["inputs"]] == ["main/raw_flights", "main/weather"]
    assert start["outputs"] == [{"namespace": NS, "name": "main/features"}]


def test_a_partition_is_a_subset_of_the_assets_dataset(played: Any) -> None:
    _, events, _ = played
    start, complete = of_job(events, "flights.raw_flights")[:2]
    (output,) = complete["outputs"]
    assert output["name"] == "main/raw_flights"
    assert output["facets"]["version"]["datasetVersion"] == "v-flights-2013-01"
    assert output["outputFacets"]["subset"]["outputCondition"]["partitions"] == [
        {"identifier": "2013-01", "dimensions": {"partition": "2013-01"}}
    ]
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 1000
    assert start["outputs"][0]["outputFacets"]["subset"] == output["outputFacets"]["subset"]
    assert complete["job"]["facets"]["documentation"]["description"] == (
        "Flights landed from the BTS monthly files."
    )
    tags = {t["key"]: t["value"] for t in complete["run"]["facets"]["tags"]["tags"]}
    assert tags == {
        "headrace.run_id": RUN_ID,
        "headrace.step": "raw_flights[2013-01]",
        "headrace.branch": "main",
        "headrace.partition": "2013-01",
    }


def test_a_failed_step_carries_its_error_and_traceback(played: Any) -> None:
    _, events, _ = played
    start, fail = of_job(events, "flights.model")
    assert fail["eventType"] == "FAIL"
    error = fail["run"]["facets"]["errorMessage"]
    assert error["message"] == "asset 'model' failed: ValueError: no rows for carrier 'ZZ'"
    assert error["programmingLanguage"] == "python"
    assert error["stackTrace"] == TRACEBACK
    assert [d["name"] for d in fail["inputs"]] == ["main/features"]
    assert fail["outputs"] == [{"namespace": NS, "name": "main/model"}]
    assert "errorMessage" not in start["run"]["facets"]
    run_fail = of_job(events, "flights")[-1]
    assert run_fail["run"]["facets"]["errorMessage"]["message"] == "1 step failed: model"


def test_a_cached_step_emits_nothing(played: Any) -> None:
    _, events, _ = played
    assert of_job(events, "flights.weather") == []
    assert not any(d["name"] == "main/weather" for e in events for d in e["outputs"])


def test_run_facets_carry_params_selection_and_branch(played: Any) -> None:
    _, events, _ = played
    start = of_job(events, "flights")[0]
    facets = start["run"]["facets"]
    assert facets["executionParameters"]["parameters"] == [
        {"key": "airport", "value": "JFK"},
        {"key": "limit", "value": "3"},
        {"key": "carriers", "value": '["AA", "UA"]'},
    ]
    tags = {t["key"]: t["value"] for t in facets["tags"]["tags"]}
    assert tags == {
        "headrace.run_id": RUN_ID,
        "headrace.branch": "main",
        "headrace.selection": "+features model",
    }
    assert facets["processing_engine"]["name"] == "headrace"
    assert facets["processing_engine"]["version"] == headrace.__version__
    assert start["producer"] == f"urn:headrace:{headrace.__version__}"
    assert datetime.fromisoformat(start["eventTime"]).timestamp() == T0


@pytest.mark.parametrize(
    ("status", "expected"), [("success", "COMPLETE"), ("failed", "FAIL"), ("canceled", "ABORT")]
)
def test_run_end_event_types(status: str, expected: str, spec: SpecValidator) -> None:
    transport = MemoryTransport()
    emitter = OpenLineageEmitter(transport)
    run = run_info(params={})
    emitter.run_started(run)
    error = "KeyboardInterrupt: " if status == "canceled" else None
    emitter.run_finished(run, status, T0 + 1, error)
    start, end = transport.events
    assert (start["eventType"], end["eventType"]) == ("START", expected)
    assert "executionParameters" not in start["run"]["facets"]
    assert ("errorMessage" in end["run"]["facets"]) == (expected == "FAIL")
    if expected == "FAIL":
        assert end["run"]["facets"]["errorMessage"]["message"] == "run failed"
    for event in transport.events:
        spec.validate(event)


def step_event(status: str, at: float, **changes: Any) -> StepEvent:
    values: dict[str, Any] = {
        "run": run_info(),
        "step_key": "report[2024-05-01]",
        "asset": "report",
        "partition": "2024-05-01",
        "status": status,
        "at": at,
    }
    values.update(changes)
    return StepEvent(**values)


def test_retries_are_one_run_and_a_failure_without_start_gets_one(spec: SpecValidator) -> None:
    transport = MemoryTransport()
    emitter = OpenLineageEmitter(transport)
    emitter.step_started(step_event("running", T0))
    emitter.step_finished(step_event("retrying", T0 + 1, error="timeout"))
    emitter.step_started(step_event("running", T0 + 2))
    emitter.step_finished(step_event("upstream_failed", T0 + 2))
    emitter.step_finished(step_event("failed", T0 + 3, error="boom"))
    # a step failing before it started (no step_started) still gets START then FAIL
    emitter.step_finished(step_event("failed", T0 + 4, step_key="other", asset="other"))
    emitter.run_finished(run_info(), "failed", T0 + 5, None)
    types = [(e["job"]["name"], e["eventType"]) for e in transport.events]
    assert types == [
        ("flights.report", "START"),
        ("flights.report", "RUNNING"),
        ("flights.report", "FAIL"),
        ("flights.other", "START"),
        ("flights.other", "FAIL"),
        ("flights", "FAIL"),
    ]
    assert len({e["run"]["runId"] for e in transport.events[:3]}) == 1
    assert transport.events[3]["eventTime"] == transport.events[4]["eventTime"]
    message = transport.events[-1]["run"]["facets"]["errorMessage"]["message"]
    assert message == "2 steps failed: report[2024-05-01], other"
    for event in transport.events:
        spec.validate(event)


def test_many_failed_steps_are_summarised() -> None:
    transport = MemoryTransport()
    emitter = OpenLineageEmitter(transport)
    for index in range(12):
        emitter.step_finished(step_event("failed", T0, step_key=f"s{index}", asset=f"s{index}"))
    emitter.run_finished(run_info(), "failed", T0 + 1, None)
    message = transport.events[-1]["run"]["facets"]["errorMessage"]["message"]
    assert message == "12 steps failed: s0, s1, s2, s3, s4, s5, s6, s7, s8, s9 and 2 more"


def test_schema_fields_from_real_arrow_types() -> None:
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("when", pa.timestamp("ns", tz="Europe/Paris")),
            ("price", pa.decimal128(10, 2)),
            (
                "nested",
                pa.struct(
                    [
                        ("inner", pa.struct([("x", pa.list_(pa.float32()))])),
                        ("m", pa.map_(pa.string(), pa.struct([("y", pa.int8())]))),
                    ]
                ),
            ),
            ("empty", pa.struct([])),
        ]
    )
    fields = schema_fields(arrow_schema(schema))
    assert fields[0] == {"name": "id", "type": "int64", "ordinal_position": 1}
    assert fields[1]["type"] == "timestamp[ns, tz=Europe/Paris]"
    assert fields[2]["type"] == "decimal128(10, 2)"
    assert fields[3] == {
        "name": "nested",
        "type": "struct",
        "ordinal_position": 4,
        "fields": [
            {
                "name": "inner",
                "type": "struct",
                "ordinal_position": 1,
                "fields": [{"name": "x", "type": "list<item: float>", "ordinal_position": 1}],
            },
            {"name": "m", "type": "map<string, struct<y: int8>>", "ordinal_position": 2},
        ],
    }
    assert fields[4] == {"name": "empty", "type": "struct", "ordinal_position": 5, "fields": []}


def test_a_struct_type_that_does_not_parse_is_kept_as_text() -> None:
    # Arrow does not quote member names: "struct<a, b: string>" is ambiguous
    (arrow_type,) = [
        t for _, t in arrow_schema(pa.schema([("odd", pa.struct([("a, b", pa.string())]))]))
    ]
    assert schema_fields([["odd", arrow_type]]) == [
        {"name": "odd", "type": "struct<a, b: string>", "ordinal_position": 1}
    ]


def test_unusual_project_names_make_a_valid_namespace(spec: SpecValidator) -> None:
    transport = MemoryTransport()
    emitter = OpenLineageEmitter(transport)
    run = run_info(project="my flights/é")
    emitter.run_started(run)
    emitter.run_finished(run, "success", T0 + 1, None)
    assert transport.events[0]["job"] == {
        "namespace": "headrace://my%20flights%2F%C3%A9",
        "name": "my flights/é",
        "facets": transport.events[0]["job"]["facets"],
    }
    for event in transport.events:
        spec.validate(event)


# -- emission never fails or blocks a run ---------------------------------------------------


class BrokenTransport:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, event: dict[str, Any]) -> None:
        self.calls += 1
        raise ConnectionError("lineage server is down")

    def close(self) -> None:
        pass


def lineage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "headrace-lineage"]


def test_a_failing_transport_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    transport = BrokenTransport()
    emitter = OpenLineageEmitter(transport)
    with caplog.at_level(logging.WARNING, logger="headrace.lineage"):
        play_run(emitter)  # raises nothing
    stats = emitter.stats
    assert stats.sent == 0
    assert transport.calls == stats.failed == 3  # then the circuit breaker stops trying
    assert stats.dropped == 10 - 3
    assert stats.errors == 10
    messages = [r.getMessage() for r in caplog.records]
    assert any("lineage server is down" in m for m in messages)
    assert any("3 events in a row failed" in m for m in messages)
    assert any(f"10 of 10 events of run {RUN_ID} were not delivered" in m for m in messages)


def test_an_event_that_cannot_be_built_is_counted(caplog: pytest.LogCaptureFixture) -> None:
    transport = MemoryTransport()
    emitter = OpenLineageEmitter(transport)
    bad = run_info(started_at="yesterday")
    with caplog.at_level(logging.WARNING, logger="headrace.lineage"):
        emitter.run_started(bad)
        emitter.run_finished(bad, "success", T0, None)
    assert transport.events[0]["eventType"] == "COMPLETE"
    assert emitter.stats == LineageStats(sent=1, failed=0, dropped=1)
    assert "could not build the run_started event" in caplog.text


class GatedTransport(MemoryTransport):
    """Blocks every send until the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = threading.Event()
        self.gate = threading.Event()

    def send(self, event: dict[str, Any]) -> None:
        self.sending.set()
        self.gate.wait(10)
        super().send(event)


def test_a_slow_transport_does_not_block_the_run() -> None:
    transport = GatedTransport()
    emitter = OpenLineageEmitter(transport, max_queued=3, flush_timeout=0.2)
    began = time.monotonic()
    try:
        run = run_info()
        emitter.run_started(run)
        assert transport.sending.wait(5)  # the sender holds the run's START
        for index in range(5):  # three wait, two find the queue full
            emitter.step_started(step_event("running", T0, step_key=f"s{index}", asset="s"))
        assert time.monotonic() - began < 1.0
        emitter.run_finished(run, "success", T0 + 1, None)  # full too; then waits 0.2 s
        assert time.monotonic() - began < 3.0
        assert transport.events == []
    finally:
        transport.gate.set()
    for thread in lineage_threads():
        thread.join(5)
    # the START went out; the three still waiting at the flush deadline were dropped
    assert emitter.stats == LineageStats(sent=1, failed=0, dropped=6)
    assert [e["eventType"] for e in transport.events] == ["START"]
    assert not lineage_threads()


def test_the_sender_thread_ends_with_the_last_run() -> None:
    transport = MemoryTransport()
    emitter = OpenLineageEmitter(transport)
    one, two = run_info(run_id="a" * 32), run_info(run_id="b" * 32)
    emitter.run_started(one)
    emitter.run_started(two)
    emitter.run_finished(one, "success", T0, None)
    assert lineage_threads()  # run two is still going
    emitter.run_finished(two, "success", T0, None)
    assert not lineage_threads()
    assert len(transport.events) == 4
    # and it starts again for the next run
    play_run(emitter)
    assert not lineage_threads()
    assert len(transport.events) == 14
    emitter.close()


def test_flush_and_close_deliver_events_outside_a_run() -> None:
    transport = MemoryTransport()
    emitter = OpenLineageEmitter(transport)
    emitter.step_started(step_event("running", T0))
    assert emitter.flush(5)
    assert len(transport.events) == 1
    emitter.step_finished(
        step_event(
            "success",
            T0 + 1,
            output=VersionRef(asset="report", partition="2024-05-01", version_id="v1"),
        )
    )
    emitter.close()
    assert [e["eventType"] for e in transport.events] == ["START", "COMPLETE"]
    assert not lineage_threads()


def test_the_documented_example_is_what_headrace_emits(played: Any, spec: SpecValidator) -> None:
    doc = Path(__file__).parents[2] / "docs" / "openlineage.md"
    text = doc.read_text(encoding="utf-8")
    block = text.split("## An emitted COMPLETE event", 1)[1].split("```json\n", 1)[1]
    example = json.loads(block.split("\n```", 1)[0])
    _, events, _ = played
    emitted = of_job(events, "flights.features")[-1]
    # the example was written with some headrace version: compare with it
    current = f"urn:headrace:{headrace.__version__}"
    documented = example["producer"]
    normalized = json.loads(
        json.dumps(emitted)
        .replace(current, documented)
        .replace(
            f'"version": "{headrace.__version__}"', f'"version": "{documented.split(":")[-1]}"'
        )
    )
    assert example == normalized
    spec.validate(example)
