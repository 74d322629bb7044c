"""Evaluating monitors: the windows not yet judged, their drift and performance, the
results stored per window, alerts (de-duplicated, with a cooldown) and actions.

A model monitor reads its model's prediction log (the ``served`` and ``canary`` rows)
after the last window it judged, splits it by model version and then into windows (a
duration, or a number of predictions; a window still open waits unless ``partial``),
and compares each window with the version's reference:

- **feature drift**: the logged inputs against the version's training data, found
  through lineage (the data versions the model was trained from, restricted by
  ``reference_where`` formatted with the training run's params), profiled once and kept
  in the store;
- **prediction drift**: the logged positive-class probabilities (or the outputs)
  against the model's own predictions on the reference;
- **target drift**: the labels attached so far against the reference's ``target``;
- **performance**: measured from the labels (and compared with the version's own run
  metric when a limit names a baseline), or, for a binary classifier without enough
  labels, estimated from its probabilities and marked as an estimate.

An asset monitor judges each new version of the asset against its reference asset's
current version (or, with ``reference="previous"``, the version before).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headrace.core.monitors import (
    LOWER_IS_BETTER,
    MONITORS,
    Monitor,
    PerformanceLimit,
    declared_by,
)
from headrace.errors import HeadraceError
from headrace.store.monitoring import AlertRecord, ResultRecord, WindowRecord

if TYPE_CHECKING:
    from headrace.drift import DatasetDrift, DriftDetector
    from headrace.monitoring.performance import Performance
    from headrace.runtime.workspace import Workspace

log = logging.getLogger("headrace.monitoring")


class MonitorError(HeadraceError):
    """A monitor that cannot be evaluated: names the monitor and the reason."""


@dataclass
class WindowOutcome:
    window: WindowRecord
    results: list[ResultRecord]
    drift: DatasetDrift | None = None
    performance: Performance | None = None
    estimated: Performance | None = None
    breaches: list[ResultRecord] = field(default_factory=list)


@dataclass
class MonitorRun:
    monitor: str
    windows: list[WindowOutcome] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    retrain: dict[str, Any] | None = None
    note: str | None = None


@dataclass
class _Reference:
    key: str
    detector: DriftDetector
    prediction: DriftDetector | None
    target: DriftDetector | None
    metrics: dict[str, float]
    classes: list[Any] | None
    rows: int


# -- the reference ----------------------------------------------------------------------


def _reference_table(ws: Workspace, monitor: Monitor, version: int) -> tuple[Any, dict[str, Any]]:
    """The training data of a model version (through lineage), restricted, and the run's
    metrics."""
    import polars as pl

    from headrace.registry.service import lineage
    from headrace.runtime.reading import read_version

    assert monitor.model is not None
    found = lineage(ws, f"{monitor.model}/{version}")
    if monitor.reference != "training":
        current = ws.store.versions.heads("main", [monitor.reference])
        if not current:
            raise MonitorError(
                f"monitor {monitor.name!r}: the reference asset {monitor.reference!r} has no "
                "version on main"
            )
        records = list(current.values())
    else:
        records = [record for record, _, _ in found.data]
        if not records:
            raise MonitorError(
                f"monitor {monitor.name!r}: {monitor.model} version {version} has no training "
                "data in its lineage; give reference= an asset name"
            )
    frames = [read_version(ws, record, as_="polars") for record in records]
    table = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    if monitor.reference_where:
        params = _training_params(ws, found)
        try:
            condition = monitor.reference_where.format(**params)
        except KeyError as exc:
            raise MonitorError(
                f"monitor {monitor.name!r}: reference_where names {{{exc.args[0]}}}, which "
                f"is not a param of the training run (it has {', '.join(params) or 'none'})"
            ) from exc
        try:
            table = table.filter(pl.sql_expr(condition))
        except Exception as exc:
            raise MonitorError(
                f"monitor {monitor.name!r}: reference_where {condition!r} failed: {exc}"
            ) from exc
    return table, {"metrics": found.metrics, "params": found.params}


def _training_params(ws: Workspace, found: Any) -> dict[str, Any]:
    """The params the model version was trained with: the model asset's defaults, the
    run's params, then the params its code logged."""
    import contextlib

    from headrace.workspace.project import ProjectMissingError

    params: dict[str, Any] = {}
    version = (
        ws.store.versions.get(found.model.asset_version_id)
        if found.model.asset_version_id
        else None
    )
    if version is not None:
        with contextlib.suppress(ProjectMissingError, KeyError):
            spec = ws.graph[version.asset]
            params.update({p.name: p.default for p in spec.params if not p.required})
    if found.run is not None:
        params.update(found.run.params or {})
    params.update(found.params)
    return params


def _columns(monitor: Monitor, loaded: Any, table: Any) -> list[str]:
    if monitor.columns is not None:
        return list(monitor.columns)
    signature = loaded.signature
    if signature is not None:
        return list(signature.columns)
    return [c for c in table.columns if c != monitor.target]


def _reference(ws: Workspace, monitor: Monitor, version: int) -> _Reference:
    """The version's reference: from the store when profiled before, else built once."""
    from headrace.drift import DriftDetector
    from headrace.registry.service import load_model

    assert monitor.model is not None
    key = json.dumps(
        [
            monitor.model,
            version,
            monitor.reference,
            monitor.reference_where,
            monitor.columns,
            monitor.target,
            sorted(monitor.tests.items()),
        ],
        default=str,
    )
    repository = ws.store.monitoring
    loaded = load_model(ws, f"{monitor.model}/{version}")
    classes = getattr(loaded.model, "classes_", None)
    classes = None if classes is None else [_plain(c) for c in list(classes)]
    stored = repository.reference(monitor.name, key)
    if stored is None:
        table, run = _reference_table(ws, monitor, version)
        if table.height == 0:
            raise MonitorError(
                f"monitor {monitor.name!r}: the reference of {monitor.model} version {version} "
                "has no rows (check reference_where)"
            )
        columns = _columns(monitor, loaded, table)
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise MonitorError(
                f"monitor {monitor.name!r}: the reference has no column {missing[0]!r}"
            )
        detector = _detector(monitor, columns).fit(table.select(columns))
        stored = {"features": detector.profile(), "rows": table.height, "metrics": run["metrics"]}
        predicted = _reference_predictions(loaded, table.select(columns), classes)
        if predicted is not None:
            stored["prediction"] = DriftDetector().fit(predicted).profile()
        if monitor.target is not None:
            if monitor.target not in table.columns:
                raise MonitorError(
                    f"monitor {monitor.name!r}: target {monitor.target!r} is not a column of "
                    "the reference"
                )
            target = table.select(monitor.target).drop_nulls()
            stored["target"] = (
                DriftDetector(categorical_columns=[monitor.target]).fit(target).profile()
            )
        repository.save_reference(monitor.name, key, stored)
    tests = {c: _column_test(t) for c, t in monitor.tests.items()}
    return _Reference(
        key=key,
        detector=DriftDetector.from_profile(
            stored["features"], drift_share=monitor.drift_share, tests=tests
        ),
        prediction=DriftDetector.from_profile(stored["prediction"])
        if "prediction" in stored
        else None,
        target=DriftDetector.from_profile(stored["target"]) if "target" in stored else None,
        metrics={k: float(v) for k, v in stored.get("metrics", {}).items()},
        classes=classes,
        rows=int(stored["rows"]),
    )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _column_test(test: tuple[str, float | None]) -> Any:
    from headrace.drift import ColumnTest

    return ColumnTest(test[0], test[1])


def _detector(monitor: Monitor, columns: list[str]) -> DriftDetector:
    from headrace.drift import DriftDetector

    tests = {c: _column_test(t) for c, t in monitor.tests.items() if c in columns}
    return DriftDetector(columns, tests=tests, drift_share=monitor.drift_share)


def _reference_predictions(loaded: Any, table: Any, classes: list[Any] | None) -> Any:
    """The model's predictions on the reference: the positive-class probability of a
    binary classifier, else the predictions (a one-column polars frame)."""
    import polars as pl

    try:
        if classes is not None and len(classes) == 2 and hasattr(loaded.model, "predict_proba"):
            return pl.DataFrame({"prediction": loaded.predict_proba(table)[:, 1]})
        return pl.DataFrame({"prediction": list(loaded.predict(table))})
    except Exception:
        log.exception("predicting on the reference failed; prediction drift is left out")
        return None


# -- windows of the prediction log --------------------------------------------------------


def _windows(
    rows: list[tuple[Any, ...]], monitor: Monitor, now: float, partial: bool
) -> list[tuple[float, float, list[tuple[Any, ...]]]]:
    """``(start, end, rows)`` per window, split by model version first."""
    by_version: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_version.setdefault(int(row[1]), []).append(row)
    out = []
    for group in by_version.values():
        if monitor.window_rows is not None:
            size, index = monitor.window_rows, 0
            while index < len(group):
                stop = min(index + size, len(group))
                while stop < len(group) and group[stop][0] == group[stop - 1][0]:
                    stop += 1  # the rows of one request stay together
                chunk = group[index:stop]
                if len(chunk) >= size or partial:
                    out.append((float(chunk[0][0]), float(chunk[-1][0]), chunk))
                index = stop
        else:
            length = float(monitor.window)
            buckets: dict[int, list[tuple[Any, ...]]] = {}
            for row in group:
                buckets.setdefault(int(float(row[0]) // length), []).append(row)
            for bucket, chunk in sorted(buckets.items()):
                start, end = bucket * length, (bucket + 1) * length
                if end <= now or partial:
                    out.append((start, min(end, float(chunk[-1][0])) if partial else end, chunk))
    return sorted(out, key=lambda w: w[1])


def _decode(rows: list[tuple[Any, ...]]) -> Any:
    """The window's rows as a polars frame: the inputs' columns, ``__output``,
    ``__score`` and ``__label`` (decoded from JSON)."""
    import polars as pl

    inputs = pl.Series("inputs", [r[2] for r in rows], dtype=pl.String)
    frame = inputs.str.json_decode(infer_schema_length=None).struct.unnest()
    return frame.with_columns(
        pl.Series("__output", [json.loads(r[3]) for r in rows], strict=False),
        pl.Series("__score", [r[4] for r in rows], dtype=pl.Float64),
        pl.Series(
            "__label", [None if r[5] is None else json.loads(r[5]) for r in rows], strict=False
        ),
    )


# -- judging a window -------------------------------------------------------------------


def _result(kind: str, name: str, **values: Any) -> ResultRecord:
    return ResultRecord(
        window_id=values.pop("window_id"),
        kind=kind,
        name=name,
        method=values.get("method"),
        value=values.get("value"),
        p_value=values.get("p_value"),
        threshold=values.get("threshold"),
        baseline=values.get("baseline"),
        breached=bool(values.get("breached", False)),
        estimated=bool(values.get("estimated", False)),
    )


def _drift_results(window_id: str, kind: str, drift: DatasetDrift) -> list[ResultRecord]:
    return [
        _result(
            kind,
            c.column,
            window_id=window_id,
            method=c.method,
            value=c.score,
            p_value=c.p_value,
            threshold=c.threshold,
            breached=c.drifted,
        )
        for c in drift.columns
    ]


def _feature_drift_results(window_id: str, drift: DatasetDrift) -> list[ResultRecord]:
    """Each column's drift, then the dataset's drift share."""
    share = _result(
        "dataset_drift",
        "share",
        window_id=window_id,
        value=drift.share,
        threshold=drift.threshold,
        breached=drift.drifted,
    )
    return [*_drift_results(window_id, "column_drift", drift), share]


def _limit_breached(limit: PerformanceLimit, value: float, baseline: float | None) -> bool:
    lower_better = limit.metric in LOWER_IS_BETTER
    if limit.min is not None and value < limit.min:
        return True
    if limit.max is not None and value > limit.max:
        return True
    if limit.max_drop is not None and baseline is not None:
        drop = value - baseline if lower_better else baseline - value
        if drop > limit.max_drop:
            return True
    return False


def _performance(
    frame: Any, reference: _Reference, monitor: Monitor
) -> tuple[Performance | None, Performance | None]:
    import numpy as np

    from headrace.monitoring import performance as perf

    classes = reference.classes
    scores = frame["__score"]
    labeled = frame.filter(frame["__label"].is_not_null())
    measured = estimated = None
    binary = classes is not None and len(classes) == 2
    if labeled.height:
        labels = labeled["__label"].to_numpy()
        outputs = labeled["__output"].to_numpy()
        if binary:
            assert classes is not None
            positive = classes[1]
            has_scores = labeled["__score"].null_count() == 0
            measured = perf.measured_binary(
                np.asarray([_same(v, positive) for v in labels]),
                np.asarray([_same(v, positive) for v in outputs]),
                labeled["__score"].to_numpy() if has_scores else None,
            )
        elif classes is not None:
            measured = perf.measured_classes(labels.astype(str), outputs.astype(str))
        else:
            try:
                measured = perf.measured_regression(labels.astype(float), outputs.astype(float))
            except (TypeError, ValueError):
                measured = None
    if binary and scores.null_count() == 0 and frame.height:
        assert classes is not None
        predicted = np.asarray([_same(v, classes[1]) for v in frame["__output"].to_list()])
        estimated = perf.estimated_binary(predicted, scores.to_numpy())
    return measured, estimated


def _same(value: Any, positive: Any) -> int:
    return int(value == positive or str(value) == str(positive))


def _judge_window(
    ws: Workspace,
    monitor: Monitor,
    version: int,
    start: float,
    end: float,
    rows: list[tuple[Any, ...]],
    reference: _Reference,
) -> WindowOutcome:
    import polars as pl

    frame = _decode(rows)
    labeled = int(frame["__label"].is_not_null().sum())
    window_id = uuid.uuid4().hex
    results: list[ResultRecord] = []
    drift = None
    status = "ok"
    if len(rows) < monitor.min_rows:
        status = "too_small"
    else:
        columns = list(reference.detector.references)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise MonitorError(
                f"monitor {monitor.name!r}: the logged inputs have no column {missing[0]!r}"
            )
        drift = reference.detector.score(frame.select(columns))
        results += _feature_drift_results(window_id, drift)
        if monitor.prediction_drift and reference.prediction is not None:
            current = (
                frame.select(pl.col("__score").alias("prediction"))
                if frame["__score"].null_count() == 0
                else frame.select(pl.col("__output").alias("prediction"))
            )
            try:
                results += _drift_results(
                    window_id, "prediction_drift", reference.prediction.score(current)
                )
            except Exception as exc:  # outputs of another kind than the reference's
                log.warning("monitor %s: prediction drift left out: %s", monitor.name, exc)
        if reference.target is not None and labeled >= monitor.min_rows:
            target = frame.filter(pl.col("__label").is_not_null()).select(
                pl.col("__label").alias(monitor.target or "target")
            )
            results += _drift_results(window_id, "target_drift", reference.target.score(target))
    measured, estimated = (
        _performance(frame, reference, monitor) if status == "ok" else (None, None)
    )
    judged = measured if measured is not None and labeled >= monitor.min_rows else None
    for outcome, is_estimate in ((measured, False), (estimated, True)):
        if outcome is None:
            continue
        limits = {limit.metric: limit for limit in monitor.limits}
        for metric, value in outcome.metrics.items():
            limit = limits.get(metric)
            baseline = reference.metrics.get(limit.baseline) if limit and limit.baseline else None
            judge = limit is not None and (
                (not is_estimate and judged is not None) or (is_estimate and judged is None)
            )
            results.append(
                _result(
                    "performance",
                    f"{metric} (estimated)" if is_estimate else metric,
                    window_id=window_id,
                    value=value,
                    baseline=baseline,
                    threshold=_threshold(limit, baseline),
                    breached=judge and _limit_breached(limit, value, baseline),  # type: ignore[arg-type]
                    estimated=is_estimate,
                )
            )
    breaches = [
        r
        for r in results
        if r.breached
        and r.kind in ("dataset_drift", "performance", "prediction_drift", "target_drift")
    ]
    if status == "ok" and breaches:
        status = "breach" if any(r.kind == "performance" for r in breaches) else "drift"
    window = WindowRecord(
        id=window_id,
        monitor=monitor.name,
        model=monitor.model,
        version=version,
        asset_version=None,
        start=start,
        end=end,
        rows=len(rows),
        labeled=labeled,
        status=status,
        drift_share=drift.share if drift is not None else None,
        evaluated_at=time.time(),
        reference=reference.key,
    )
    return WindowOutcome(window, results, drift, measured, estimated, breaches)


def _threshold(limit: PerformanceLimit | None, baseline: float | None) -> float | None:
    if limit is None:
        return None
    if limit.max_drop is not None and baseline is not None:
        lower_better = limit.metric in LOWER_IS_BETTER
        return baseline + limit.max_drop if lower_better else baseline - limit.max_drop
    return limit.min if limit.min is not None else limit.max


# -- alerts and actions -----------------------------------------------------------------


def _alert_key(result: ResultRecord) -> str:
    if result.kind == "dataset_drift":
        return "dataset_drift"
    return f"{result.kind}:{result.name}"


def _describe(result: ResultRecord) -> str:
    if result.kind == "dataset_drift":
        return (
            f"dataset drift: {result.value:.0%} of columns drifted "
            f"(threshold {result.threshold:.0%})"
        )
    if result.kind == "performance":
        base = f", baseline {result.baseline:.4f}" if result.baseline is not None else ""
        limit = f"{result.threshold:.4f}" if result.threshold is not None else "-"
        return f"{result.name} = {result.value:.4f}, limit {limit}{base}"
    p = f", p = {result.p_value:.3g}" if result.p_value is not None else ""
    return (
        f"{result.kind.replace('_', ' ')} of {result.name}: {result.method} {result.value:.4f}{p}"
    )


def _alerts(
    ws: Workspace, monitor: Monitor, outcome: WindowOutcome, now: float
) -> list[AlertRecord]:
    """One alert per breached key, sent unless one with the same key was sent within
    the cooldown (then recorded as suppressed)."""
    from headrace.monitoring.alerts import deliver

    out = []
    repository = ws.store.monitoring
    by_key: dict[str, list[ResultRecord]] = {}
    for result in outcome.breaches:
        by_key.setdefault(_alert_key(result), []).append(result)
    drifted = [c.column for c in outcome.drift.columns if c.drifted] if outcome.drift else []
    for key, results in by_key.items():
        last = repository.last_alert(monitor.name, key)
        suppressed = last is not None and now - last < monitor.cooldown
        window = outcome.window
        title = f"{monitor.name}: " + "; ".join(_describe(r) for r in results)
        of = (
            f"version {window.version}"
            if window.version is not None
            else f"version {window.asset_version}"
        )
        lines = [
            f"Monitor {monitor.name} ({monitor.watches}), {of}",
            f"window {_when(window.start)} .. {_when(window.end)}: {window.rows:,} "
            + (f"predictions, {window.labeled:,} labeled" if monitor.model else "rows"),
            *(f"- {_describe(r)}" for r in results),
        ]
        if key == "dataset_drift" and drifted:
            lines.append(f"drifted columns: {', '.join(drifted)}")
        alert_id = uuid.uuid4().hex
        payload = {
            "id": alert_id,
            "monitor": monitor.name,
            "key": key,
            "title": title,
            "message": "\n".join(lines),
            "severity": "critical" if any(r.kind == "performance" for r in results) else "warning",
            "model": monitor.model,
            "version": window.version,
            "window": {"start": window.start, "end": window.end, "rows": window.rows},
            "results": [r.__dict__ for r in results],
            "created_at": now,
        }
        outcomes = []
        if not suppressed:
            for action in monitor.actions:
                if action.kind == "retrain":
                    continue
                outcomes.append(deliver(action, payload).to_dict())
        record = AlertRecord(
            id=alert_id,
            monitor=monitor.name,
            key=key,
            window_id=window.id,
            message="\n".join(lines),
            payload=payload,
            created_at=now,
            suppressed=suppressed,
            outcomes=outcomes,
        )
        repository.add_alert(record)
        out.append(record)
    return out


def _retrain(
    ws: Workspace, monitor: Monitor, now: float, alerts: Sequence[AlertRecord]
) -> dict[str, Any] | None:
    from headrace.monitoring.retraining import retrain

    return retrain(ws, monitor, now, alerts)


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


# -- running ----------------------------------------------------------------------------


def run_monitor(
    ws: Workspace,
    monitor: Monitor,
    *,
    now: float | None = None,
    partial: bool = False,
    act: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> MonitorRun:
    """Judge the monitor's new windows, store them, alert and act (``act=False``: judge
    and store only)."""
    now = time.time() if now is None else now
    if monitor.model is None:
        return _run_asset_monitor(ws, monitor, now=now, act=act, progress=progress)
    repository = ws.store.monitoring
    rows = ws.store.predictions.since(monitor.model, after=repository.last_end(monitor.name))
    run = MonitorRun(monitor.name)
    windows = _windows(rows, monitor, now, partial)
    if not windows:
        run.note = (
            "no new predictions"
            if not rows
            else f"{len(rows):,} new predictions, no window closed yet"
        )
        return run
    references: dict[int, _Reference] = {}
    for index, (start, end, chunk) in enumerate(windows):
        version = int(chunk[0][1])
        if version not in references:
            references[version] = _reference(ws, monitor, version)
        outcome = _judge_window(ws, monitor, version, start, end, chunk, references[version])
        repository.save_window(outcome.window, outcome.results)
        run.windows.append(outcome)
        if act and outcome.breaches:
            run.alerts += _alerts(ws, monitor, outcome, now)
        if progress is not None:
            progress(index + 1, len(windows))
    if act and any(not a.suppressed for a in run.alerts):
        run.retrain = _retrain(ws, monitor, now, run.alerts)
    return run


#: versions an asset monitor judges in one run when it has never run before
BACKLOG = 20


def _table(ws: Workspace, records: Sequence[Any]) -> Any:
    import polars as pl

    from headrace.runtime.reading import read_version

    frames = [read_version(ws, r, as_="polars") for r in records]
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]


def _run_asset_monitor(
    ws: Workspace,
    monitor: Monitor,
    *,
    now: float,
    act: bool,
    progress: Callable[[int, int], None] | None,
) -> MonitorRun:
    """Each version of the asset not judged yet, against the reference asset's current
    version on main (or, with ``reference="previous"``, the version made before it)."""
    assert monitor.asset is not None
    repository = ws.store.monitoring
    done = repository.evaluated_versions(monitor.name)
    last = repository.last_end(monitor.name)
    fresh = [
        v
        for v in ws.store.versions.list(monitor.asset, limit=1000)
        if v.id not in done and v.kind == "table" and (last is None or v.created_at >= last)
    ][:BACKLOG][::-1]
    run = MonitorRun(monitor.name)
    if not fresh:
        run.note = f"no new version of {monitor.asset}"
        return run
    fixed = None
    if monitor.reference != "previous":
        heads = ws.store.versions.heads("main", [monitor.reference])
        if not heads:
            raise MonitorError(
                f"monitor {monitor.name!r}: the reference asset {monitor.reference!r} has no "
                "version on main"
            )
        fixed = (",".join(sorted(h.id for h in heads.values())), _table(ws, list(heads.values())))
    for index, version in enumerate(fresh):
        if fixed is not None:
            key, reference = fixed
        else:
            before = ws.store.versions.previous(version)
            if before is None:
                continue  # the first version has nothing to compare with
            key, reference = before.id, _table(ws, [before])
        current = _table(ws, [version])
        columns = (
            list(monitor.columns)
            if monitor.columns
            else [c for c in current.columns if c in reference.columns]
        )
        for name in columns:
            if name not in current.columns or name not in reference.columns:
                raise MonitorError(
                    f"monitor {monitor.name!r}: column {name!r} is not in both "
                    f"{monitor.asset} and its reference"
                )
        window_id = uuid.uuid4().hex
        status = "too_small" if current.height < monitor.min_rows else "ok"
        drift = None
        results: list[ResultRecord] = []
        if status == "ok":
            drift = (
                _detector(monitor, columns)
                .fit(reference.select(columns))
                .score(current.select(columns))
            )
            results = _feature_drift_results(window_id, drift)
        breaches = [r for r in results if r.breached and r.kind != "column_drift"]
        window = WindowRecord(
            id=window_id,
            monitor=monitor.name,
            model=None,
            version=None,
            asset_version=version.id,
            start=version.created_at,
            end=version.created_at,
            rows=current.height,
            labeled=0,
            status="drift" if breaches else status,
            drift_share=drift.share if drift is not None else None,
            evaluated_at=time.time(),
            reference=key,
        )
        repository.save_window(window, results)
        outcome = WindowOutcome(window, results, drift, None, None, breaches)
        run.windows.append(outcome)
        if act and breaches:
            run.alerts += _alerts(ws, monitor, outcome, now)
        if progress is not None:
            progress(index + 1, len(fresh))
    if act and any(not a.suppressed for a in run.alerts):
        run.retrain = _retrain(ws, monitor, now, run.alerts)
    return run


def overview(ws: Workspace, *, strict: bool = True) -> list[dict[str, Any]]:
    """Every monitor, declared or with stored windows, as plain values: what it watches,
    its window, limits and actions, how many windows it has and when the last ended
    (``headrace monitor list``, ``GET /api/v1/monitors``). Not ``strict``: a project
    that does not load still shows what is stored."""
    try:
        known = declared(ws)
    except Exception:
        if strict:
            raise
        known = {}
    stored = ws.store.monitoring.monitors()
    rows = []
    for name in sorted(set(known) | set(stored)):
        m = known.get(name)
        count, last = stored.get(name, (0, None))
        rows.append(
            {
                "name": name,
                "declared": m is not None,
                "watches": m.watches if m else None,
                "window_seconds": m.window if m else None,
                "window_rows": m.window_rows if m else None,
                "limits": [limit.metric for limit in m.limits] if m else [],
                "actions": [a.kind for a in m.actions] if m else [],
                "windows": count,
                "last_evaluated": last,
            }
        )
    return rows


def declared(ws: Workspace) -> dict[str, Monitor]:
    """The monitors of the workspace's project: its code (importing the project declares
    them), then ``monitors.yaml`` beside it."""
    import contextlib

    from headrace.workspace.monitors import FILE, load_monitor_file
    from headrace.workspace.project import ProjectMissingError

    with contextlib.suppress(ProjectMissingError):
        _ = ws.graph
    found = declared_by(ws.settings.project_module)
    path = ws.settings.project_dir / FILE
    if path.is_file():
        found.update({m.name: m for m in load_monitor_file(path)})
    return found


def run_monitors(
    ws: Workspace, names: Sequence[str] | None = None, **options: Any
) -> list[MonitorRun]:
    known = declared(ws)
    chosen = list(names) if names else sorted(known)
    for name in chosen:
        if name not in known:
            from headrace.core.graph import suggest

            raise MonitorError(f"no monitor named {name!r}" + suggest(name, known))
    return [run_monitor(ws, known[name], **options) for name in chosen]


__all__ = ["MONITORS", "MonitorError", "MonitorRun", "WindowOutcome", "run_monitor", "run_monitors"]
