"""A realistic run played against an observer: partitions, several inputs, a cached step,
a failure with its traceback."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from headrace.core.observers import RunInfo, RunObserver, StepEvent, VersionRef

T0 = 1_714_560_000.0  # 2024-05-01T10:40:00Z
RUN_ID = "018f3a1b2c3d4e5f60718293a4b5c6d7"

TRACEBACK = """\
Traceback (most recent call last):
  File "/work/project/pipeline/model.py", line 12, in model
    raise ValueError("no rows for carrier 'ZZ'")
ValueError: no rows for carrier 'ZZ'
"""


def arrow_schema(schema: pa.Schema) -> list[list[str]]:
    """As headrace.io records it: ``[[column, str(arrow type)], ...]``."""
    return [[f.name, str(f.type)] for f in schema]


FLIGHTS_SCHEMA = arrow_schema(
    pa.schema(
        [
            ("carrier", pa.string()),
            ("dep_time", pa.timestamp("us", tz="UTC")),
            ("delay", pa.float64()),
        ]
    )
)
WEATHER_SCHEMA = arrow_schema(
    pa.schema([("origin", pa.dictionary(pa.int32(), pa.string())), ("temp", pa.decimal128(5, 2))])
)
FEATURES_SCHEMA = arrow_schema(
    pa.schema(
        [
            ("carrier", pa.string()),
            ("stats", pa.struct([("mean", pa.float64()), ("hours", pa.list_(pa.int16()))])),
            ("tags", pa.map_(pa.string(), pa.int64())),
        ]
    )
)


def run_info(**changes: object) -> RunInfo:
    values: dict[str, object] = {
        "run_id": RUN_ID,
        "project": "flights",
        "selection": "+features model",
        "branch": "main",
        "params": {"airport": "JFK", "limit": 3, "carriers": ["AA", "UA"]},
        "started_at": T0,
    }
    values.update(changes)
    return RunInfo(**values)  # type: ignore[arg-type]


def flights(month: str, version: str, rows: int) -> VersionRef:
    return VersionRef(
        asset="raw_flights",
        partition=month,
        version_id=version,
        schema=FLIGHTS_SCHEMA,
        row_count=rows,
    )


WEATHER = VersionRef(
    asset="weather", partition=None, version_id="v-weather-1", schema=WEATHER_SCHEMA, row_count=8
)
FEATURES = VersionRef(
    asset="features",
    partition=None,
    version_id="v-features-1",
    schema=FEATURES_SCHEMA,
    row_count=42,
)


@dataclass
class Played:
    run: RunInfo
    steps: list[StepEvent]


def play_run(observer: RunObserver, run: RunInfo | None = None) -> Played:
    """raw_flights[2013-01] and [2013-02] run, weather is cached (skipped), features reads
    both flights partitions and weather, model fails; the run fails."""
    run = run or run_info()
    steps: list[StepEvent] = []

    def step(
        key: str,
        asset: str,
        partition: str | None,
        at: float,
        *,
        status: str,
        inputs: list[VersionRef] | None = None,
        output: VersionRef | None = None,
        error: str | None = None,
        traceback: str | None = None,
        description: str = "",
    ) -> None:
        started = StepEvent(
            run=run,
            step_key=key,
            asset=asset,
            partition=partition,
            status="running",
            at=at,
            description=description,
            inputs=list(inputs or []),
        )
        observer.step_started(started)
        finished = StepEvent(
            run=run,
            step_key=key,
            asset=asset,
            partition=partition,
            status=status,
            at=at + 1.5,
            description=description,
            inputs=list(inputs or []),
            output=output,
            error=error,
            traceback=traceback,
        )
        observer.step_finished(finished)
        steps.extend([started, finished])

    observer.run_started(run)
    for index, month in enumerate(["2013-01", "2013-02"]):
        step(
            f"raw_flights[{month}]",
            "raw_flights",
            month,
            T0 + 1 + index,
            status="success",
            description="Flights landed from the BTS monthly files.",
            output=flights(month, f"v-flights-{month}", 1000 + index),
        )
    skipped = StepEvent(
        run=run,
        step_key="weather",
        asset="weather",
        partition=None,
        status="skipped",
        at=T0 + 3,
        output=WEATHER,
    )
    observer.step_finished(skipped)
    steps.append(skipped)
    step(
        "features",
        "features",
        None,
        T0 + 5,
        status="success",
        inputs=[
            flights("2013-01", "v-flights-2013-01", 1000),
            flights("2013-02", "v-flights-2013-02", 1001),
            WEATHER,
        ],
        output=FEATURES,
    )
    step(
        "model",
        "model",
        None,
        T0 + 8,
        status="failed",
        inputs=[FEATURES],
        error="asset 'model' failed: ValueError: no rows for carrier 'ZZ'",
        traceback=TRACEBACK,
    )
    observer.run_finished(run, "failed", T0 + 12, None)
    return Played(run=run, steps=steps)
