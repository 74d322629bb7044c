"""Executing one step: load inputs, call the user's function, store its value.

This module runs in the coordinating process (in-process and threads executors) or in
a worker process (processes executor). It writes only blobs, which are atomic and
content-addressed; every metadata write is left to the coordinator, so a killed worker
leaves no half-made version.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headrace.core.assets import AssetSpec
from headrace.core.params import type_hints
from headrace.errors import HeadraceError
from headrace.io.errors import InputTypeError, SerializationError
from headrace.io.frames import annotation_flavor, from_arrow, table_flavor
from headrace.io.serializers import deserialize, serialize
from headrace.objects.blobs import LocalBlobStore
from headrace.orchestration import capture
from headrace.orchestration.timeouts import call_with_timeout
from headrace.orchestration.tracebacks import user_traceback
from headrace.tracking.runs import STEP, Collector


@dataclass(frozen=True, slots=True)
class InputRef:
    version_id: str
    blob: str
    format: str
    flavor: str
    partition: str | None


@dataclass(frozen=True, slots=True)
class StepInput:
    parameter: str
    refs: tuple[InputRef, ...] | None  # None: an optional input with nothing to read
    many: bool  # the upstream is partitioned and this step reads several partitions


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What an asset's checks need besides its value, gathered by the coordinator:
    the referenced assets' current versions (and the columns read from them), each
    anomaly check's history, and the previous version's schema."""

    references: tuple[tuple[str, tuple[str, ...], tuple[InputRef, ...]], ...] = ()
    history: dict[str, list[float]] = field(default_factory=dict)
    previous_schema: list[list[str]] | None = None


@dataclass(frozen=True, slots=True)
class StepTask:
    run_id: str
    key: str
    asset: str
    partition: str | None
    attempt: int
    inputs: tuple[StepInput, ...]
    params: dict[str, Any]
    branch: str
    workspace_root: str = "."
    checks: CheckContext | None = None


@dataclass(slots=True)
class StepResult:
    key: str
    attempt: int
    ok: bool
    started_at: float
    ended_at: float
    logs: list[tuple[str, float, str]] = field(default_factory=list)
    kind: str | None = None
    format: str | None = None
    flavor: str | None = None
    blob: str | None = None
    size: int | None = None
    row_count: int | None = None
    schema: list[list[str]] | None = None
    stats: dict[str, Any] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    quarantine_reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: What the function logged (params, metrics, tags, artifacts), kept on failure too.
    tracked: Any = None
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    retryable: bool = False
    exception: BaseException | None = None


@dataclass(frozen=True)
class StepContext:
    """What an asset function can ask for by taking a ``context`` parameter.

    Attributes:
        run_id: the run's id.
        asset: the asset being materialized.
        partition: its partition key, or None.
        attempt: 1 for the first attempt, 2 for the first retry, ...
        branch: the branch being written.
        params: the asset's validated params.
        log: a logger whose records are kept with the step's logs.
        workspace_root: the workspace folder (for files relative to it).
        partition_window: the ``[start, end)`` dates of a time partition, else None.
    """

    run_id: str
    asset: str
    partition: str | None
    attempt: int
    branch: str
    params: dict[str, Any]
    log: logging.Logger
    workspace_root: Path
    partition_window: tuple[Any, Any] | None = None


def _load_input(blobs: Any, spec: AssetSpec, item: StepInput) -> Any:
    if item.refs is None:
        return None
    wanted = annotation_flavor(type_hints(spec.fn).get(item.parameter))
    local = isinstance(blobs, LocalBlobStore)
    if wanted is not None:
        for ref in item.refs:
            if ref.format != "parquet":
                raise InputTypeError(
                    f"asset {spec.name!r}: parameter {item.parameter!r} is annotated as a "
                    f"{wanted} table, but its upstream version {ref.version_id[:12]} holds "
                    f"{ref.format} data, not a table",
                    asset=spec.name,
                    parameter=item.parameter,
                )

    def load(ref: InputRef, flavor: str | None) -> Any:
        source: bytes | str = blobs.source(ref.blob) if local else blobs.get_bytes(ref.blob)
        return deserialize(source, ref.format, ref.flavor, wanted=flavor)

    if not item.many:
        if not item.refs:
            return None
        return load(item.refs[0], wanted)
    if item.refs and all(r.format == "parquet" for r in item.refs):
        import pyarrow as pa

        tables = [load(r, "arrow") for r in item.refs]
        combined = pa.concat_tables(tables, promote_options="default")
        return from_arrow(combined, wanted or item.refs[0].flavor)
    return {r.partition: load(r, wanted) for r in item.refs}


def load_reference(
    blobs: Any, asset: str, columns: tuple[str, ...], refs: tuple[InputRef, ...]
) -> Any:
    """The referenced columns of an asset's versions (all its partitions) as one Arrow
    table, reading nothing else from the files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for ref in refs:
        if ref.format != "parquet":
            raise InputTypeError(
                f"a references check reads asset {asset!r}, whose version "
                f"{ref.version_id[:12]} holds {ref.format} data, not a table",
                asset=asset,
                parameter=None,
            )
        source: Any = (
            blobs.source(ref.blob)
            if isinstance(blobs, LocalBlobStore)
            else blobs.get_bytes(ref.blob)
        )
        if isinstance(source, bytes | bytearray | memoryview):
            source = pa.BufferReader(source)
        with pq.ParquetFile(source) as parquet:
            present = set(parquet.schema_arrow.names)
            tables.append(parquet.read(columns=[c for c in columns if c in present]))
    return pa.concat_tables(tables, promote_options="default")


def _run_checks(
    spec: AssetSpec, value: Any, result: StepResult, context: CheckContext | None, blobs: Any
) -> None:
    """The asset's checks on its new value: one pass; failures decide quarantine."""
    from headrace.core.checks import Suite
    from headrace.io.errors import SerializationError as NotATable
    from headrace.quality.engine import validate

    if table_flavor(value) is None:
        raise NotATable(
            f"asset {spec.name!r} declares checks but returned a {type(value).__name__}, "
            "not a table",
            asset=spec.name,
        )
    context = context or CheckContext()
    references = {
        asset: load_reference(blobs, asset, columns, refs)
        for asset, columns, refs in context.references
    }
    report = validate(
        value,
        Suite(spec.name, spec.checks),
        references=references,
        history=context.history,
        previous_schema=context.previous_schema,
    )
    result.checks = [dict(r.__dict__) for r in report.results]
    if report.errors:
        failed = "; ".join(f"{r.name} ({r.message})" for r in report.errors[:5])
        result.quarantine_reason = f"checks failed: {failed}"
    result.warnings = [f"{r.name} ({r.message})" for r in report.warnings]


def _model_signature(spec: AssetSpec, model: Any, kwargs: dict[str, Any]) -> Any:
    """The model's input signature, from the frame it was trained on (else from the
    estimator, when it knows its features)."""
    from headrace.io.estimators import signature_of

    assert spec.model is not None
    wanted = spec.model.signature_from
    frames = [
        kwargs[item.parameter]
        for item in spec.inputs
        if (wanted is None or item.parameter == wanted)
        and table_flavor(kwargs.get(item.parameter)) is not None
    ]
    signature = signature_of(model, frames[0] if frames else None)
    return None if signature is None else signature.to_dict()


def _check_return(spec: AssetSpec, value: Any) -> None:
    """A function annotated to return a table must return one."""
    declared = annotation_flavor(type_hints(spec.fn).get("return"))
    if declared is not None and table_flavor(value) is None:
        raise SerializationError(
            f"asset {spec.name!r} is annotated to return a {declared} table but returned a "
            f"{type(value).__module__}.{type(value).__name__}",
            asset=spec.name,
        )


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, HeadraceError):
        return exc.retryable
    return isinstance(exc, Exception)


def execute_step(task: StepTask, spec: AssetSpec, blobs: Any) -> StepResult:
    """Run one attempt of one step; never raises for a failure in user code."""
    started = time.time()
    buffer = capture.StepLogBuffer()
    result = StepResult(
        key=task.key, attempt=task.attempt, ok=False, started_at=started, ended_at=0
    )
    try:
        with capture.capturing(buffer):
            kwargs: dict[str, Any] = {}
            for item in task.inputs:
                kwargs[item.parameter] = _load_input(blobs, spec, item)
            kwargs.update(task.params)
            if spec.wants_partition:
                kwargs["partition"] = task.partition
            if spec.wants_context:
                window = (
                    spec.partitions.window(task.partition)
                    if spec.partitions is not None and task.partition is not None
                    else None
                )
                kwargs["context"] = StepContext(
                    run_id=task.run_id,
                    asset=task.asset,
                    partition=task.partition,
                    attempt=task.attempt,
                    branch=task.branch,
                    params=dict(task.params),
                    log=logging.getLogger(f"{capture.ASSET_LOGGER}.{task.asset}"),
                    workspace_root=Path(task.workspace_root),
                    partition_window=window,
                )
            collector = Collector(task.run_id, blobs)
            token = STEP.set(collector)
            try:
                value = call_with_timeout(lambda: spec.fn(**kwargs), spec.timeout, task.asset)
            finally:
                STEP.reset(token)
                result.tracked = collector.take() or None
            if value is None and spec.io is None:
                raise TypeError(
                    f"asset {task.asset!r} returned None; an asset must return its value "
                    "(a table or JSON-compatible data)"
                )
            _check_return(spec, value)
            if spec.checks:
                _run_checks(spec, value, result, task.checks, blobs)
            stored = serialize(value, spec.io, asset=task.asset, primary_key=spec.primary_key)
            if spec.model is not None:
                stored.stats["signature"] = _model_signature(spec, value, kwargs)  # type: ignore[index]
        result.blob = blobs.put_bytes(stored.data)
        result.kind, result.format, result.flavor = stored.kind, stored.format, stored.flavor
        result.size, result.row_count, result.schema = (
            len(stored.data),
            stored.row_count,
            stored.schema,
        )
        result.stats = stored.stats
        result.ok = True
    except Exception as exc:
        result.error_type = type(exc).__name__
        where = f" partition {task.partition!r}" if task.partition else ""
        result.error = f"asset {task.asset!r}{where} failed: {type(exc).__name__}: {exc}"
        result.traceback = user_traceback(exc)
        result.retryable = _is_retryable(exc)
        result.exception = exc
    result.ended_at = time.time()
    result.logs = buffer.entries
    return result
