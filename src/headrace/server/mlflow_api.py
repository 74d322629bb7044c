"""The MLflow REST surface of the team server: the unmodified ``mlflow`` client works
against ``headrace server`` (``mlflow.set_tracking_uri("http://host:port")`` and
``MLFLOW_TRACKING_TOKEN``), and what it logs is headrace's own data:

- experiments are headrace experiments (MLflow's experiment ``"0"`` is ``default``);
- runs are headrace tracked runs: params, metrics (every value, with its step and
  time), tags, status; ``search_runs`` is headrace's run search;
- artifacts go through the server's artifact proxy (``mlflow-artifacts:/``) into the
  content-addressed blob store, as rows of ``run_artifacts``;
- logged models (MLflow 3's ``log_model``) are ``logged_models`` rows, their files
  artifacts under the model's id;
- registered models and versions are headrace's registry: a version registered by the
  client is a model version of flavor ``mlflow`` (the model's directory, zipped, in one
  blob), linked to the run that logged it; aliases are headrace aliases, with the
  registry's history of who moved them.

Each call needs a bearer token; each mutating call is authorised first, before its body
is read (``log_run`` to log, ``register_model`` to register, ``promote_model`` to move an
alias), and written to the audit log, in the same transaction as what it changes where
there is one.
Errors come as MLflow's ``{"error_code", "message"}``: ``RESOURCE_DOES_NOT_EXIST`` (404),
``INVALID_PARAMETER_VALUE`` (400), ``RESOURCE_ALREADY_EXISTS`` (400),
``PERMISSION_DENIED`` (403), ``UNAUTHENTICATED`` (401), and ``TEMPORARILY_UNAVAILABLE``
(503, with ``Retry-After``) while the metadata store is unreachable.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
import zipfile
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from headrace.server.context import (
    ApiError,
    Gate,
    failure,
    finite,
    json_body,
    json_response,
    spool_upload,
)

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from headrace.runtime.workspace import Workspace
    from headrace.store.governance import Principal

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
DEFAULT_ID = "0"
#: MLflow's own limits on one log-batch call, enforced the same way.
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS, MAX_BATCH_TOTAL = 1000, 100, 100, 1000
MAX_ARTIFACT = 512 * 1024 * 1024
STATUS_IN = {
    "RUNNING": "running",
    "SCHEDULED": "queued",
    "FINISHED": "success",
    "FAILED": "failed",
    "KILLED": "canceled",
}
STATUS_OUT = {v: k for k, v in STATUS_IN.items()} | {"skipped": "FINISHED"}
REGISTRY_STATUS = "READY"
#: MLflow's error code for a server that cannot answer now (503, with Retry-After)
UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
#: A run's logged-model outputs are kept as tags ``mlflow.loggedModel.<model id>`` = step.
_OUTPUT_TAG = "mlflow.loggedModel."


def not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def _string(args: dict[str, Any], field: str, *, required: bool = True) -> str:
    value = args.get(field)
    if value is None or value == "":
        if required:
            raise invalid(f"missing value for required parameter {field!r}")
        return ""
    if not isinstance(value, str):
        raise invalid(f"parameter {field!r} must be a string, got {type(value).__name__}")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool):
        raise invalid(f"parameter {field!r} must be a number, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if value in special:
            return special[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise invalid(f"parameter {field!r} must be a number, got {value!r}")


#: An integer written as text (at most 20 digits: int() of a longer one is slow or refused).
_DIGITS = re.compile(r"-?[0-9]{1,20}")


def _integer(value: Any, field: str, default: int | None = None) -> int:
    if value is None or value == "":
        if default is None:
            raise invalid(f"missing value for required parameter {field!r}")
        return default
    if isinstance(value, bool):
        raise invalid(f"parameter {field!r} must be an integer, got a boolean")
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, int):
        # MLflow's protocol has 64-bit integers; a larger one would reach the database
        # and the JSON answer, neither of which holds it
        if not -(2**63) <= value < 2**63:
            raise invalid(f"parameter {field!r} must be a 64-bit integer, got {value}")
        return value
    raise invalid(f"parameter {field!r} must be an integer, got {str(value)[:100]!r}")


def _pairs(value: Any, field: str) -> list[tuple[str, str]]:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise invalid(f"{field!r} must be a list of {{key, value}} objects")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise invalid(f"{field}[{i}] must be an object with a string 'key'")
        raw = item.get("value", "")
        text = raw if isinstance(raw, str) else json.dumps(raw)
        if "\x00" in text:  # PostgreSQL's text refuses it: refused here, naming the item
            raise invalid(f"{field}[{i}] {item['key']!r}: the value holds a NUL byte")
        out.append((item["key"], text))
    return out


def _kv(pairs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _check_key(key: str, what: str) -> str:
    if not key or len(key) > 250 or "\x00" in key:
        raise invalid(f"{what} key {key!r}: expected 1 to 250 characters, no NUL byte")
    if "/../" in f"/{key}/" or key.startswith("/"):
        raise invalid(f"{what} key {key!r} may not be a path out of its run")
    return key


def artifact_path(raw: str) -> str:
    """A stored artifact's path, checked: relative, no ``..``, no empty or ``.``
    segments, no backslashes or NUL, under 1,000 characters."""
    if not isinstance(raw, str) or not raw:
        raise invalid("an artifact path is required")
    if len(raw) > 1000:
        raise invalid("an artifact path is at most 1,000 characters")
    if raw.startswith("/") or "\\" in raw or "\x00" in raw or ":" in raw.split("/")[0]:
        raise invalid(f"artifact path {raw!r} must be relative (no drive, no leading /)")
    parts = raw.strip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise invalid(f"artifact path {raw!r} may not hold '.', '..' or empty segments")
    return "/".join(parts)


class MlflowApi:
    """The handlers; each takes the request and the calling principal."""

    def __init__(self, ws: Workspace, gate: Gate) -> None:
        self.ws, self.gate = ws, gate
        self.store = ws.store
        self._tracked: set[str] = set()

    # -- helpers ----------------------------------------------------------------------

    def _experiment_row(self, experiment_id: str) -> Any:
        from sqlalchemy import select

        from headrace.store.schema import experiments
        from headrace.store.tracking import DEFAULT_EXPERIMENT

        if experiment_id == DEFAULT_ID:
            return self.store.tracking.experiment(DEFAULT_EXPERIMENT)
        with self.store.read() as c:
            row = c.execute(select(experiments).where(experiments.c.id == experiment_id)).first()
        if row is None:
            raise not_found(f"no experiment with id {experiment_id!r}")
        return row

    def _experiment_id(self, raw: str) -> str:
        """A headrace experiment id from MLflow's (``"0"`` is the default experiment)."""
        return str(self._experiment_row(raw).id)

    def _mlflow_experiment_id(self, headrace_id: str | None, default_id: str) -> str:
        if headrace_id is None or headrace_id == default_id:
            return DEFAULT_ID
        return headrace_id

    def _default_id(self) -> str:
        from headrace.store.tracking import DEFAULT_EXPERIMENT

        return self.store.tracking.experiment(DEFAULT_EXPERIMENT).id

    def _experiment_json(self, row: Any, default_id: str) -> dict[str, Any]:
        from headrace.store.schema import experiment_tags

        mlflow_id = self._mlflow_experiment_id(row.id, default_id)
        tags = self.store.tracking.tags_of(experiment_tags, experiment_id=row.id)
        return {
            "experiment_id": mlflow_id,
            "name": "Default" if mlflow_id == DEFAULT_ID else row.name,
            "artifact_location": f"mlflow-artifacts:/{mlflow_id}",
            "lifecycle_stage": _lifecycle(row.deleted_at),
            "creation_time": _ms(row.created_at),
            "last_update_time": _ms(max(row.created_at, row.deleted_at or 0)),
            "tags": _kv(tags),
        }

    def _run_row(self, run_id: str) -> Any:
        from sqlalchemy import select

        from headrace.store.schema import runs

        if not isinstance(run_id, str) or not run_id:
            raise invalid("missing value for required parameter 'run_id'")
        with self.store.read() as c:
            row = c.execute(
                select(
                    runs.c.id,
                    runs.c.name,
                    runs.c.status,
                    runs.c.experiment_id,
                    runs.c.created_at,
                    runs.c.ended_at,
                    runs.c.deleted_at,
                ).where(runs.c.id == run_id)
            ).first()
        if row is None:
            raise not_found(f"run {run_id!r} not found")
        return row

    def _live_run(self, run_id: str) -> None:
        """Refuse a run that does not exist, is a pipeline run or is deleted. A tracked
        run stays one, so an active run seen once is not looked up again until this
        process deletes it."""
        if run_id in self._tracked:
            return
        row = self._run_row(run_id)
        if row.experiment_id is None:
            raise invalid(f"run {run_id} is a pipeline run; the MLflow API logs to tracked runs")
        if row.deleted_at is not None:
            raise invalid(f"run {run_id} is deleted; restore it (runs/restore) to log to it")
        if len(self._tracked) > 100_000:
            self._tracked.clear()
        self._tracked.add(run_id)

    def _run_info(self, row: Any, default_id: str, tags: dict[str, str]) -> dict[str, Any]:
        experiment = self._mlflow_experiment_id(row.experiment_id, default_id)
        return {
            "run_id": row.id,
            "run_uuid": row.id,
            "run_name": row.name or "",
            "experiment_id": experiment,
            "user_id": tags.get("mlflow.user", ""),
            "status": STATUS_OUT.get(row.status, "RUNNING"),
            "start_time": _ms(row.created_at),
            "end_time": _ms(row.ended_at),
            "artifact_uri": f"mlflow-artifacts:/{experiment}/{row.id}/artifacts",
            "lifecycle_stage": _lifecycle(row.deleted_at),
        }

    def _run_json(self, run: Any, default_id: str) -> dict[str, Any]:
        """A run from a search page (params, latest metrics and tags loaded)."""
        tags = dict(run.tags)
        info = self._run_info(
            _RunRow(
                run.id,
                run.name,
                run.status,
                run.experiment_id,
                run.created_at,
                run.ended_at,
                run.deleted_at,
            ),
            default_id,
            tags,
        )
        return {
            "info": info,
            "data": {
                "metrics": [
                    {
                        "key": k,
                        "value": finite(v),
                        "timestamp": _ms(run.metric_times.get(k, run.created_at)),
                        "step": run.metric_steps.get(k, 0),
                    }
                    for k, v in run.metrics.items()
                ],
                "params": _kv(run.params),
                "tags": _kv(tags),
            },
            "inputs": {},
            "outputs": {
                "model_outputs": [
                    {"model_id": k.removeprefix(_OUTPUT_TAG), "step": int(v or 0)}
                    for k, v in tags.items()
                    if k.startswith(_OUTPUT_TAG) and v.lstrip("-").isdigit()
                ]
            },
        }

    def _full_run(self, run_id: str) -> dict[str, Any]:
        page = self.store.tracking.latest_runs([run_id])
        if not page:
            raise not_found(f"run {run_id!r} not found")
        return self._run_json(page[0], self._default_id())

    # -- experiments ------------------------------------------------------------------

    async def create_experiment(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import insert, select

        from headrace.core.ids import new_id
        from headrace.store.schema import experiment_tags, experiments

        args = await json_body(request)
        name = _string(args, "name")
        if len(name) > 200:
            raise invalid("experiment name: expected 1 to 200 characters")
        tags = _pairs(args.get("tags"), "tags")
        for key, _ in tags:
            _check_key(key, "tag")
        if args.get("artifact_location"):
            raise invalid(
                "artifact_location: artifacts of a headrace server go through its proxy; "
                "leave it unset"
            )
        with (
            self.gate.audited(who, "experiment.create", name, "log_run") as ticket,
            self.store.write() as c,
        ):
            if c.execute(select(experiments.c.id).where(experiments.c.name == name)).first():
                raise ApiError(
                    400,
                    "RESOURCE_ALREADY_EXISTS",
                    f"experiment {name!r} already exists",
                )
            experiment_id = new_id()
            c.execute(
                insert(experiments).values(
                    id=experiment_id, name=name, description=None, created_at=time.time()
                )
            )
            _set_tags(c, experiment_tags, {"experiment_id": experiment_id}, tags)
            ticket.write(c)
        return json_response({"experiment_id": experiment_id})

    async def get_experiment(self, request: Request, who: Principal) -> Response:
        raw = _string(dict(request.query_params), "experiment_id")
        row = self._experiment_row(raw)
        return json_response({"experiment": self._experiment_json(row, self._default_id())})

    async def get_experiment_by_name(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import select

        from headrace.store.schema import experiments
        from headrace.store.tracking import DEFAULT_EXPERIMENT

        name = _string(dict(request.query_params), "experiment_name")
        if name == "Default":
            name = DEFAULT_EXPERIMENT
        with self.store.read() as c:
            row = c.execute(select(experiments).where(experiments.c.name == name)).first()
        if row is None:
            raise not_found(f"could not find experiment with name {name!r}")
        return json_response({"experiment": self._experiment_json(row, self._default_id())})

    async def search_experiments(self, request: Request, who: Principal) -> Response:
        args = await json_body(request) if request.method == "POST" else dict(request.query_params)
        limit = _integer(args.get("max_results"), "max_results", 1000)
        if not 1 <= limit <= 50_000:
            raise invalid("max_results must be 1 to 50000")
        offset = _integer(args.get("page_token") or "0", "page_token")
        wanted = _string(args, "filter", required=False)
        default_id = self._default_id()
        rows = self.store.tracking.experiments(deleted=_view(args.get("view_type"), "view_type"))
        if wanted:
            name = _experiment_name_filter(wanted)
            rows = [r for r in rows if _like(r.name, name)]
        page = rows[offset : offset + limit]
        following = offset + limit < len(rows)
        return json_response(
            {
                "experiments": [self._experiment_json(r, default_id) for r in page],
                **({"next_page_token": str(offset + limit)} if following else {}),
            }
        )

    # -- runs -------------------------------------------------------------------------

    async def create_run(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import insert

        from headrace.core.ids import new_id
        from headrace.core.tracking import Tracked
        from headrace.store.schema import runs
        from headrace.store.tracking import write_tracked

        args = await json_body(request)
        raw_experiment = _string(args, "experiment_id", required=False) or "0"
        experiment = self._experiment_row(raw_experiment)
        if getattr(experiment, "deleted_at", None) is not None:
            raise invalid(f"experiment {raw_experiment} is deleted; restore it to add runs")
        experiment_id = str(experiment.id)
        tags = dict(_pairs(args.get("tags"), "tags"))
        for key in tags:
            _check_key(key, "tag")
        name = _string(args, "run_name", required=False) or tags.get("mlflow.runName") or None
        if name is not None and len(name) > 200:
            raise invalid("run_name: expected at most 200 characters")
        if name is not None:
            tags["mlflow.runName"] = name
        user = _string(args, "user_id", required=False)
        if user and "mlflow.user" not in tags:
            tags["mlflow.user"] = user
        started = _integer(args.get("start_time"), "start_time", int(time.time() * 1000))
        parent = tags.get("mlflow.parentRunId")
        run_id = new_id()
        with (
            self.gate.audited(who, "run.create", run_id, "log_run") as ticket,
            self.store.write() as c,
        ):
            c.execute(
                insert(runs).values(
                    id=run_id,
                    status="running",
                    selection="",
                    params="{}",
                    partitions=None,
                    branch="main",
                    trigger="tracking",
                    executor="none",
                    max_concurrency=1,
                    force=False,
                    host=request.client.host if request.client else None,
                    pid=None,
                    plan="[]",
                    created_at=started / 1000,
                    started_at=started / 1000,
                    experiment_id=experiment_id,
                    parent_run_id=parent,
                    name=name,
                )
            )
            if tags:
                write_tracked(c, c.dialect.name, run_id, Tracked(tags=tags))
            ticket.write(c)
        return json_response({"run": self._full_run(run_id)})

    async def update_run(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import update

        from headrace.core.tracking import Tracked
        from headrace.store.schema import runs
        from headrace.store.tracking import write_tracked

        args = await json_body(request)
        run_id = _string(args, "run_id", required=False) or _string(args, "run_uuid")
        self._live_run(run_id)
        values: dict[str, Any] = {}
        if args.get("status"):
            status = STATUS_IN.get(str(args["status"]))
            if status is None:
                raise invalid(f"status {args['status']!r}: expected one of {', '.join(STATUS_IN)}")
            values["status"] = status
            if status not in ("running", "queued"):
                ended = _integer(args.get("end_time"), "end_time", int(time.time() * 1000))
                values["ended_at"] = ended / 1000
        name = _string(args, "run_name", required=False)
        if name:
            values["name"] = name
        with self.gate.audited(who, "run.update", run_id, "log_run") as ticket:
            ticket.details = {k: v for k, v in values.items() if k != "ended_at"}
            with self.store.write() as c:
                if values:
                    c.execute(update(runs).where(runs.c.id == run_id).values(**values))
                if name:
                    write_tracked(c, c.dialect.name, run_id, Tracked(tags={"mlflow.runName": name}))
                ticket.write(c)
        info = self._run_info(self._run_row(run_id), self._default_id(), self._tags(run_id))
        return json_response({"run_info": info})

    def _tags(self, run_id: str) -> dict[str, str]:
        return self.store.tracking.tags(run_id)

    async def get_run(self, request: Request, who: Principal) -> Response:
        args = dict(request.query_params)
        run_id = args.get("run_id") or _string(args, "run_uuid")
        self._run_row(run_id)
        return json_response({"run": self._full_run(run_id)})

    def _log(self, who: Principal, run_id: str, action: str, data: Any) -> None:
        """Write a batch and its audit entry in one transaction."""
        from headrace.core.tracking import TrackingError
        from headrace.store.tracking import write_tracked

        self._live_run(run_id)  # as in MLflow, a finished run can still be logged to
        with self.gate.audited(who, action, run_id, "log_run") as ticket:
            try:
                with self.store.write() as c:
                    write_tracked(c, c.dialect.name, run_id, data)
                    ticket.write(c)
            except TrackingError as exc:
                raise invalid(str(exc)) from exc

    async def log_metric(self, request: Request, who: Principal) -> Response:
        from headrace.core.tracking import Tracked

        args = await json_body(request)
        run_id = _string(args, "run_id", required=False) or _string(args, "run_uuid")
        key = _check_key(_string(args, "key"), "metric")
        value = _number(args.get("value"), "value")
        at = _integer(args.get("timestamp"), "timestamp", int(time.time() * 1000))
        step = _integer(args.get("step"), "step", 0)
        self._log(who, run_id, "run.log_metric", Tracked(metrics=[(key, value, step, at / 1000)]))
        return json_response({})

    async def log_param(self, request: Request, who: Principal) -> Response:
        from headrace.core.tracking import Tracked

        args = await json_body(request)
        run_id = _string(args, "run_id", required=False) or _string(args, "run_uuid")
        key = _check_key(_string(args, "key"), "param")
        value = args.get("value")
        value = "" if value is None else str(value)
        if len(value) > 6000:
            raise invalid(f"param {key!r}: a value is at most 6,000 characters")
        self._log(who, run_id, "run.log_param", Tracked(params={key: value}))
        return json_response({})

    async def set_tag(self, request: Request, who: Principal) -> Response:
        from headrace.core.tracking import Tracked

        args = await json_body(request)
        run_id = _string(args, "run_id", required=False) or _string(args, "run_uuid")
        key = _check_key(_string(args, "key"), "tag")
        value = args.get("value")
        value = "" if value is None else str(value)
        self._live_run(run_id)
        # a tag may be set on a finished run (MLflow allows it): no status check
        from headrace.store.tracking import write_tracked

        with self.gate.audited(who, "run.set_tag", run_id, "log_run") as ticket:
            ticket.details = {"key": key}
            with self.store.write() as c:
                write_tracked(c, c.dialect.name, run_id, Tracked(tags={key: value}))
                ticket.write(c)
        return json_response({})

    async def delete_tag(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import and_, delete

        from headrace.store.schema import run_tags

        args = await json_body(request)
        run_id = _string(args, "run_id")
        key = _string(args, "key")
        self._live_run(run_id)
        with self.gate.audited(who, "run.delete_tag", run_id, "log_run") as ticket:
            ticket.details = {"key": key}
            with self.store.write() as c:
                gone = c.execute(
                    delete(run_tags).where(and_(run_tags.c.run_id == run_id, run_tags.c.key == key))
                ).rowcount
                if not gone:
                    raise not_found(f"no tag {key!r} on run {run_id}")
                ticket.write(c)
        return json_response({})

    async def log_batch(self, request: Request, who: Principal) -> Response:
        from headrace.core.tracking import Tracked

        args = await json_body(request)
        run_id = _string(args, "run_id")
        metrics = args.get("metrics") or []
        params = _pairs(args.get("params"), "params")
        tags = _pairs(args.get("tags"), "tags")
        if not isinstance(metrics, list):
            raise invalid("'metrics' must be a list")
        if len(metrics) > MAX_BATCH_METRICS or len(params) > MAX_BATCH_PARAMS:
            raise invalid(
                f"a batch holds at most {MAX_BATCH_METRICS} metrics and {MAX_BATCH_PARAMS} "
                f"params (got {len(metrics)} and {len(params)})"
            )
        if len(tags) > MAX_BATCH_TAGS or len(metrics) + len(params) + len(tags) > MAX_BATCH_TOTAL:
            raise invalid(
                f"a batch holds at most {MAX_BATCH_TAGS} tags and {MAX_BATCH_TOTAL} items in all"
            )
        now = int(time.time() * 1000)
        points = []
        for i, m in enumerate(metrics):
            if not isinstance(m, dict):
                raise invalid(f"metrics[{i}] must be an object")
            key = _check_key(_string(m, "key"), f"metrics[{i}]")
            points.append(
                (
                    key,
                    _number(m.get("value"), f"metrics[{i}].value"),
                    _integer(m.get("step"), f"metrics[{i}].step", 0),
                    _integer(m.get("timestamp"), f"metrics[{i}].timestamp", now) / 1000,
                )
            )
        seen: dict[str, str] = {}
        for key, value in params:
            _check_key(key, "param")
            if key in seen and seen[key] != value:
                raise invalid(f"param {key!r} appears twice in the batch with different values")
            seen[key] = value
        for key, _ in tags:
            _check_key(key, "tag")
        data = Tracked(params=seen, tags=dict(tags), metrics=self._new_points(run_id, points))
        self._log(who, run_id, "run.log_batch", data)
        return json_response({})

    def _new_points(
        self, run_id: str, points: list[tuple[str, float, int, float]]
    ) -> list[tuple[str, float, int, float]]:
        """The points not already stored: as in MLflow, a batch that re-sends a point
        (a retry, or MLflow 3 linking a run's metrics to its logged model) is idempotent."""
        from sqlalchemy import and_, select

        from headrace.store.schema import metric_values

        if not points:
            return points
        keys = sorted({p[0] for p in points})
        with self.store.read() as c:
            stored = {
                (k, None if nan else v, s, round(t * 1000))
                for k, v, nan, s, t in c.execute(
                    select(
                        metric_values.c.key,
                        metric_values.c.value,
                        metric_values.c.is_nan,
                        metric_values.c.step,
                        metric_values.c.timestamp,
                    ).where(and_(metric_values.c.run_id == run_id, metric_values.c.key.in_(keys)))
                )
            }
        fresh, seen = [], set()
        for key, value, step, at in points:
            ident = (key, None if math.isnan(value) else value, step, round(at * 1000))
            if ident not in stored and ident not in seen:
                seen.add(ident)
                fresh.append((key, value, step, at))
        return fresh

    async def log_inputs(self, request: Request, who: Principal) -> Response:
        args = await json_body(request)
        run_id = _string(args, "run_id")
        self._live_run(run_id)
        if args.get("datasets"):
            raise invalid(
                "dataset inputs are not recorded through the MLflow API; headrace records "
                "a run's data versions when it reads them (hr.read)"
            )
        return json_response({})

    async def log_outputs(self, request: Request, who: Principal) -> Response:
        """MLflow 3 links a logged model to the run that produced it: kept as a tag."""
        from headrace.core.tracking import Tracked

        args = await json_body(request)
        run_id = _string(args, "run_id")
        models = args.get("models") or []
        if not isinstance(models, list):
            raise invalid("'models' must be a list")
        tags = {}
        for i, item in enumerate(models):
            model_id = item.get("model_id") if isinstance(item, dict) else None
            if not isinstance(model_id, str):
                raise invalid(f"models[{i}].model_id is required")
            self._logged_model_row(model_id)
            tags[f"{_OUTPUT_TAG}{model_id}"] = str(_integer(item.get("step"), "step", 0))
        self._live_run(run_id)
        with (
            self.gate.audited(who, "run.log_outputs", run_id, "log_run") as ticket,
            self.store.write() as c,
        ):
            from headrace.store.tracking import write_tracked

            write_tracked(c, c.dialect.name, run_id, Tracked(tags=tags))
            ticket.write(c)
        return json_response({})

    async def search_runs(self, request: Request, who: Principal) -> Response:
        from headrace.core.search import SearchSyntaxError
        from headrace.core.tracking import TrackingError

        args = await json_body(request)
        raw_ids = args.get("experiment_ids") or []
        if not isinstance(raw_ids, list) or not all(isinstance(i, str) for i in raw_ids):
            raise invalid("'experiment_ids' must be a list of strings")
        limit = _integer(args.get("max_results"), "max_results", 1000)
        if not 1 <= limit <= 50_000:
            raise invalid("max_results must be 1 to 50000")
        deleted = _view(args.get("run_view_type"), "run_view_type")
        orders = args.get("order_by") or []
        if not isinstance(orders, list) or not all(isinstance(o, str) for o in orders):
            raise invalid("'order_by' must be a list of strings")
        ids = [self._experiment_id(i) for i in raw_ids]
        try:
            page = self.store.tracking.search(
                experiment_ids=ids,
                filter=_mlflow_filter(_string(args, "filter", required=False) or None),
                order_by=", ".join(_mlflow_order(o) for o in orders) or None,
                max_results=limit,
                page_token=_string(args, "page_token", required=False) or None,
                with_metric_steps=True,
                deleted=deleted,
            )
        except (SearchSyntaxError, TrackingError) as exc:
            raise invalid(str(exc)) from exc
        default_id = self._default_id()
        return json_response(
            {
                "runs": [self._run_json(r, default_id) for r in page.runs],
                **({"next_page_token": page.next_page_token} if page.next_page_token else {}),
            }
        )

    async def metric_history(self, request: Request, who: Principal) -> Response:
        args = dict(request.query_params)
        run_id = args.get("run_id") or _string(args, "run_uuid")
        key = _string(args, "metric_key")
        self._run_row(run_id)
        limit = _integer(args.get("max_results"), "max_results", 25_000)
        offset = _integer(args.get("page_token") or "0", "page_token")
        if not 1 <= limit <= 25_000 or offset < 0:
            raise invalid("max_results must be 1 to 25000 and page_token a position")
        points = self.store.tracking.metric_history([run_id], [key])
        page = points[offset : offset + limit]
        return json_response(
            {
                "metrics": [
                    {
                        "key": p.key,
                        "value": finite(p.value),
                        "timestamp": _ms(p.timestamp),
                        "step": p.step,
                    }
                    for _, p in page
                ],
                **(
                    {"next_page_token": str(offset + limit)} if offset + limit < len(points) else {}
                ),
            }
        )

    # -- artifacts (the proxy) --------------------------------------------------------

    def _owner(self, path: str) -> tuple[str, str]:
        """(owner id, path within it) of a proxied artifact path:
        ``EXP/RUN_ID/artifacts/REL`` or ``EXP/models/MODEL_ID/artifacts/REL``."""
        parts = path.split("/")
        if len(parts) >= 3 and parts[2] == "artifacts" and parts[1] != "models":
            self._run_row(parts[1])
            return parts[1], "/".join(parts[3:])
        if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
            self._logged_model_row(parts[2])
            return parts[2], "/".join(parts[4:])
        raise invalid(
            f"artifact path {path!r}: expected EXPERIMENT/RUN_ID/artifacts/... or "
            "EXPERIMENT/models/MODEL_ID/artifacts/..."
        )

    async def upload_artifact(self, request: Request, who: Principal, path: str) -> Response:

        from sqlalchemy import delete, insert

        from headrace.store.schema import run_artifacts

        path = artifact_path(path)
        owner, inner = self._owner(path)
        if not inner:
            raise invalid("an artifact upload names a file, not the artifacts folder")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_ARTIFACT:
            raise ApiError(413, "REQUEST_TOO_LARGE", f"an artifact is at most {MAX_ARTIFACT:,} B")
        with self.gate.audited(who, "artifact.upload", path, "log_run") as ticket:
            blob, size = await spool_upload(self.ws.blobs, request, MAX_ARTIFACT)
            ticket.details = {"size": size}
            with self.store.write() as c:
                c.execute(
                    delete(run_artifacts).where(
                        (run_artifacts.c.run_id == owner) & (run_artifacts.c.path == inner)
                    )
                )
                c.execute(
                    insert(run_artifacts).values(
                        run_id=owner, path=inner, blob=blob, size=size, created_at=time.time()
                    )
                )
                ticket.write(c)
        return json_response({})

    async def download_artifact(self, request: Request, who: Principal, path: str) -> Response:
        from starlette.responses import FileResponse
        from starlette.responses import Response as Plain

        path = artifact_path(path)
        if path.startswith("registry/"):
            return self._registry_file(path)
        owner, inner = self._owner(path)
        found = {p: (b, s) for p, b, s in self.store.tracking.artifacts(owner)}
        if inner not in found:
            raise not_found(f"no artifact {inner!r} under {owner}")
        blob = found[inner][0]
        local = getattr(self.ws.blobs, "path_of", None)
        if local is not None:
            return FileResponse(local(blob), media_type="application/octet-stream")
        return Plain(self.ws.blobs.get_bytes(blob), media_type="application/octet-stream")

    async def list_artifacts(self, request: Request, who: Principal) -> Response:
        raw = request.query_params.get("path") or ""
        if not raw:
            return json_response({"files": []})
        path = artifact_path(raw)
        if path.startswith("registry/"):
            return json_response({"files": self._registry_listing(path)})
        parts = path.split("/")
        if len(parts) < 3 or (parts[1] == "models" and len(parts) < 4):
            return json_response({"files": []})  # above a run's or a model's artifacts
        owner, inner = self._owner(path)
        return json_response({"files": _listing(self.store.tracking.artifacts(owner), inner)})

    async def list_run_artifacts(self, request: Request, who: Principal) -> Response:
        args = dict(request.query_params)
        run_id = args.get("run_id") or _string(args, "run_uuid")
        row = self._run_row(run_id)
        inner = artifact_path(args["path"]) if args.get("path") else ""
        experiment = self._mlflow_experiment_id(row.experiment_id, self._default_id())
        return json_response(
            {
                "root_uri": f"mlflow-artifacts:/{experiment}/{run_id}/artifacts",
                "files": _listing(self.store.tracking.artifacts(run_id), inner),
            }
        )

    # -- logged models (MLflow 3) -----------------------------------------------------

    def _logged_model_row(self, model_id: str) -> Any:
        from sqlalchemy import select

        from headrace.store.schema import logged_models

        with self.store.read() as c:
            row = c.execute(select(logged_models).where(logged_models.c.id == model_id)).first()
        if row is None:
            raise not_found(f"logged model {model_id!r} not found")
        return row

    def _logged_model_json(self, row: Any, default_id: str) -> dict[str, Any]:
        experiment = self._mlflow_experiment_id(row.experiment_id, default_id)
        return {
            "info": {
                "model_id": row.id,
                "experiment_id": experiment,
                "name": row.name,
                "artifact_uri": f"mlflow-artifacts:/{experiment}/models/{row.id}/artifacts",
                "creation_timestamp_ms": _ms(row.created_at),
                "last_updated_timestamp_ms": _ms(row.updated_at),
                "status": row.status,
                "model_type": row.model_type or "",
                "source_run_id": row.run_id or "",
                "tags": _kv(json.loads(row.tags)),
                "lifecycle_stage": "active",
            },
            "data": {"params": _kv(json.loads(row.params)), "metrics": []},
        }

    async def create_logged_model(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import insert

        from headrace.core.ids import new_id
        from headrace.store.schema import logged_models

        args = await json_body(request)
        experiment_id = self._experiment_id(_string(args, "experiment_id"))
        name = _string(args, "name", required=False) or "model"
        run_id = _string(args, "source_run_id", required=False) or None
        if run_id is not None:
            self._run_row(run_id)
        params = dict(_pairs(args.get("params"), "params"))
        tags = dict(_pairs(args.get("tags"), "tags"))
        model_id = "m-" + new_id()[:30]
        now = time.time()
        with (
            self.gate.audited(who, "logged_model.create", model_id, "log_run") as ticket,
            self.store.write() as c,
        ):
            c.execute(
                insert(logged_models).values(
                    id=model_id,
                    experiment_id=experiment_id,
                    name=name[:200],
                    run_id=run_id,
                    model_type=_string(args, "model_type", required=False) or None,
                    status="LOGGED_MODEL_PENDING",
                    params=json.dumps(params),
                    tags=json.dumps(tags),
                    created_at=now,
                    updated_at=now,
                )
            )
            ticket.write(c)
        row = self._logged_model_row(model_id)
        return json_response({"model": self._logged_model_json(row, self._default_id())})

    async def get_logged_model(self, request: Request, who: Principal, model_id: str) -> Response:
        row = self._logged_model_row(model_id)
        return json_response({"model": self._logged_model_json(row, self._default_id())})

    async def finalize_logged_model(
        self, request: Request, who: Principal, model_id: str
    ) -> Response:
        from sqlalchemy import update

        from headrace.store.schema import logged_models

        args = await json_body(request)
        status = _string(args, "status")
        if status not in ("LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"):
            raise invalid(f"status {status!r}: expected LOGGED_MODEL_READY or _UPLOAD_FAILED")
        self._logged_model_row(model_id)
        with self.gate.audited(who, "logged_model.finalize", model_id, "log_run") as ticket:
            ticket.details = {"status": status}
            with self.store.write() as c:
                c.execute(
                    update(logged_models)
                    .where(logged_models.c.id == model_id)
                    .values(status=status, updated_at=time.time())
                )
                ticket.write(c)
        row = self._logged_model_row(model_id)
        return json_response({"model": self._logged_model_json(row, self._default_id())})

    async def set_logged_model_tags(
        self, request: Request, who: Principal, model_id: str
    ) -> Response:
        from sqlalchemy import update

        from headrace.store.schema import logged_models

        args = await json_body(request)
        new = dict(_pairs(args.get("tags"), "tags"))
        row = self._logged_model_row(model_id)
        with (
            self.gate.audited(who, "logged_model.set_tags", model_id, "log_run") as ticket,
            self.store.write() as c,
        ):
            tags = json.loads(row.tags) | new
            c.execute(
                update(logged_models)
                .where(logged_models.c.id == model_id)
                .values(tags=json.dumps(tags), updated_at=time.time())
            )
            ticket.write(c)
        return json_response({})

    async def search_logged_models(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import select

        from headrace.store.schema import logged_models

        args = await json_body(request)
        raw_ids = args.get("experiment_ids") or []
        if not isinstance(raw_ids, list):
            raise invalid("'experiment_ids' must be a list of strings")
        wanted = _equalities(
            str(args.get("filter") or ""),
            ("name", "source_run_id", "status", "model_type"),
            "logged models",
        )
        ids = [self._experiment_id(str(i)) for i in raw_ids]
        limit = _integer(args.get("max_results"), "max_results", 100)
        offset = _integer(args.get("page_token") or "0", "page_token")
        query = select(logged_models).order_by(logged_models.c.created_at.desc())
        if ids:
            query = query.where(logged_models.c.experiment_id.in_(ids))
        columns = {"source_run_id": logged_models.c.run_id}
        for field, value in wanted.items():
            query = query.where(columns.get(field, logged_models.c[field]) == value)
        with self.store.read() as c:
            rows = c.execute(query.limit(limit + 1).offset(offset)).all()
        default_id = self._default_id()
        return json_response(
            {
                "models": [self._logged_model_json(r, default_id) for r in rows[:limit]],
                **({"next_page_token": str(offset + limit)} if len(rows) > limit else {}),
            }
        )

    # -- the registry -----------------------------------------------------------------

    def _model_json(self, name: str) -> dict[str, Any]:
        from sqlalchemy import select

        from headrace.store.schema import model_tags, models

        with self.store.read() as c:
            row = c.execute(select(models).where(models.c.name == name)).first()
        if row is None:
            raise not_found(f"registered model {name!r} not found")
        versions = self.store.registry.versions(name)
        aliases = [{"alias": a, "version": str(v.version)} for v in versions for a in v.aliases]
        latest = [self._version_json(versions[-1])] if versions else []
        return {
            "name": row.name,
            "creation_timestamp": _ms(row.created_at),
            "last_updated_timestamp": _ms(max([row.created_at, *(v.created_at for v in versions)])),
            "description": row.description or "",
            "latest_versions": latest,
            "aliases": aliases,
            "tags": _kv(self.store.tracking.tags_of(model_tags, name=name)),
        }

    def _version_json(self, v: Any) -> dict[str, Any]:
        from headrace.store.schema import model_version_tags

        return {
            "name": v.name,
            "version": str(v.version),
            "creation_timestamp": _ms(v.created_at),
            "last_updated_timestamp": _ms(v.created_at),
            "user_id": v.created_by or "",
            "current_stage": "None",
            "description": v.description or "",
            "source": f"mlflow-artifacts:/registry/{v.name}/{v.version}",
            "run_id": v.run_id or "",
            "status": REGISTRY_STATUS,
            "tags": _kv(
                {
                    **self.store.tracking.tags_of(
                        model_version_tags, name=v.name, version=v.version
                    ),
                    "headrace.status": v.status,
                }
            ),
            "aliases": list(v.aliases),
        }

    def _name(self, args: dict[str, Any]) -> str:
        from headrace.registry.service import check_name
        from headrace.store.registry import RegistryError

        name = _string(args, "name")
        try:
            return check_name(name)
        except RegistryError as exc:
            raise invalid(str(exc)) from exc

    async def create_registered_model(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import insert, select

        from headrace.store.schema import model_tags, models

        args = await json_body(request)
        name = self._name(args)
        tags = _pairs(args.get("tags"), "tags")
        for key, _ in tags:
            _check_key(key, "tag")
        with (
            self.gate.audited(who, "model.create", name, "register_model") as ticket,
            self.store.write() as c,
        ):
            if c.execute(select(models.c.name).where(models.c.name == name)).first():
                raise ApiError(
                    400, "RESOURCE_ALREADY_EXISTS", f"registered model {name!r} already exists"
                )
            c.execute(
                insert(models).values(
                    name=name,
                    description=_string(args, "description", required=False) or None,
                    created_at=time.time(),
                    created_by=who.name,
                )
            )
            _set_tags(c, model_tags, {"name": name}, tags)
            ticket.write(c)
        return json_response({"registered_model": self._model_json(name)})

    async def get_registered_model(self, request: Request, who: Principal) -> Response:
        name = _string(dict(request.query_params), "name")
        return json_response({"registered_model": self._model_json(name)})

    async def search_registered_models(self, request: Request, who: Principal) -> Response:
        args = dict(request.query_params)
        limit = _integer(args.get("max_results"), "max_results", 100)
        offset = _integer(args.get("page_token") or "0", "page_token")
        names = self.store.registry.names()
        if args.get("filter"):
            pattern = _name_filter(args["filter"])
            names = [n for n in names if _like(n, pattern)]
        page = names[offset : offset + limit]
        return json_response(
            {
                "registered_models": [self._model_json(n) for n in page],
                **({"next_page_token": str(offset + limit)} if offset + limit < len(names) else {}),
            }
        )

    def _source_files(self, source: str, model_id: str | None) -> tuple[dict[str, bytes], str]:
        """The files of the model a version is registered from, and its run."""
        owner, inner, run_id = "", "", ""
        if model_id:
            row = self._logged_model_row(model_id)
            owner, run_id = row.id, row.run_id or ""
        elif source.startswith("models:/m-"):
            row = self._logged_model_row(source.removeprefix("models:/").split("/")[0])
            owner, run_id = row.id, row.run_id or ""
        elif source.startswith("mlflow-artifacts:/"):
            owner, inner = self._owner(artifact_path(source.removeprefix("mlflow-artifacts:/")))
            run_id = owner if not owner.startswith("m-") else ""
        elif source.startswith("runs:/"):
            run_id, _, inner = source.removeprefix("runs:/").partition("/")
            self._run_row(run_id)
            owner, inner = run_id, artifact_path(inner) if inner else ""
        else:
            raise invalid(
                f"source {source!r}: expected models:/m-..., runs:/RUN_ID/PATH or an "
                "mlflow-artifacts:/ location of this server"
            )
        prefix = f"{inner}/" if inner else ""
        files = {
            p[len(prefix) :]: self.ws.blobs.get_bytes(b)
            for p, b, _ in self.store.tracking.artifacts(owner)
            if p.startswith(prefix)
        }
        if "MLmodel" not in files:
            raise invalid(f"source {source!r} holds no MLmodel file: not an MLflow model")
        return files, run_id

    async def create_model_version(self, request: Request, who: Principal) -> Response:
        from headrace.io.models import pack_mlflow_model
        from headrace.store.registry import NewModelVersion, RegistryError

        args = await json_body(request)
        name = self._name(args)
        source = _string(args, "source")
        model_id = _string(args, "model_id", required=False) or None
        run_id = _string(args, "run_id", required=False) or None
        with self.gate.audited(who, "model.register", name, "register_model") as ticket:
            files, source_run = self._source_files(source, model_id)
            run_id = run_id or source_run or None
            if run_id:
                self._run_row(run_id)
            flavor_class, data = pack_mlflow_model(files)
            blob = self.ws.blobs.put_bytes(data)
            try:
                record = self.store.registry.register(
                    NewModelVersion(
                        name=name,
                        flavor="mlflow",
                        blob=blob,
                        size=len(data),
                        signature=None,
                        model_class=flavor_class,
                        run_id=run_id,
                        asset_version_id=None,
                        data_versions=self._data_versions(run_id),
                        description=_string(args, "description", required=False) or None,
                    ),
                    actor=who.name,
                )
            except RegistryError as exc:
                raise invalid(str(exc)) from exc
            ticket.details = {"version": record.version, "source": source}
        return json_response({"model_version": self._version_json(record)})

    def _data_versions(self, run_id: str | None) -> list[str]:
        """The data versions a run names in its ``headrace.data_versions`` tag (version
        ids, comma-separated): how an MLflow-logged model joins headrace's lineage."""
        if not run_id:
            return []
        raw = self.store.tracking.tags(run_id).get("headrace.data_versions", "")
        known = []
        for version_id in filter(None, (v.strip() for v in raw.split(","))):
            try:
                known.append(self.store.versions.get(version_id).id)
            except Exception as exc:
                raise invalid(
                    f"run {run_id} tag headrace.data_versions names {version_id!r}, "
                    f"which is not a data version here: {exc}"
                ) from exc
        return known

    def _version(self, args: dict[str, Any]) -> Any:
        from headrace.store.registry import ModelNotFoundError

        name = _string(args, "name")
        number = _integer(args.get("version"), "version")
        try:
            return self.store.registry.version(name, number)
        except ModelNotFoundError as exc:
            raise not_found(str(exc)) from exc

    async def get_model_version(self, request: Request, who: Principal) -> Response:
        return json_response(
            {"model_version": self._version_json(self._version(dict(request.query_params)))}
        )

    async def download_uri(self, request: Request, who: Principal) -> Response:
        v = self._version(dict(request.query_params))
        return json_response({"artifact_uri": f"mlflow-artifacts:/registry/{v.name}/{v.version}"})

    async def search_model_versions(self, request: Request, who: Principal) -> Response:
        args = dict(request.query_params)
        wanted = args.get("filter") or ""
        limit = _integer(args.get("max_results"), "max_results", 10_000)
        offset = _integer(args.get("page_token") or "0", "page_token")
        name, run_id = _version_filter(wanted)
        names = [name] if name else self.store.registry.names()
        found = []
        for n in names:
            if n not in self.store.registry.names():
                continue
            found += [
                v for v in self.store.registry.versions(n) if not run_id or v.run_id == run_id
            ]
        page = found[offset : offset + limit]
        return json_response(
            {
                "model_versions": [self._version_json(v) for v in page],
                **({"next_page_token": str(offset + limit)} if offset + limit < len(found) else {}),
            }
        )

    async def latest_versions(self, request: Request, who: Principal) -> Response:
        args = await json_body(request)
        name = self._name(args)
        versions = self.store.registry.versions(name)
        return json_response(
            {"model_versions": [self._version_json(versions[-1])] if versions else []}
        )

    async def set_alias(self, request: Request, who: Principal) -> Response:
        from headrace.monitoring.retraining import set_alias as move
        from headrace.registry.errors import GuardedAliasError
        from headrace.registry.service import check_alias
        from headrace.runtime.identity import acting_as
        from headrace.store.registry import ModelNotFoundError, RegistryError

        args = await json_body(request)
        name = self._name(args)
        alias = _string(args, "alias")
        number = _integer(args.get("version"), "version")
        try:
            check_alias(alias)
        except RegistryError as exc:
            raise invalid(str(exc)) from exc
        with self.gate.audited(who, "model.alias", f"{name}@{alias}", "promote_model") as ticket:
            ticket.details = {"version": number}
            try:
                # the same rule as headrace's own route: a guarded alias moves only when
                # its promotion policy passes (MLflow's API has no override)
                with acting_as(who.name):
                    move(
                        self.ws,
                        name,
                        alias,
                        number,
                        reason="set through the MLflow API",
                        role=who.role(self.gate.namespace),
                    )
            except GuardedAliasError as exc:
                raise ApiError(409, "INVALID_STATE", str(exc), rules=list(exc.rules)) from exc
            except ModelNotFoundError as exc:
                raise not_found(str(exc)) from exc
            except RegistryError as exc:
                raise invalid(str(exc)) from exc
        return json_response({})

    async def delete_alias(self, request: Request, who: Principal) -> Response:
        from headrace.store.registry import ModelNotFoundError, RegistryError

        args = dict(request.query_params)
        if request.method != "GET":
            args |= await json_body(request)
        name = self._name(args)
        alias = _string(args, "alias")
        with self.gate.audited(who, "model.unalias", f"{name}@{alias}", "promote_model"):
            try:
                self.store.registry.remove_alias(name, alias, actor=who.name)
            except ModelNotFoundError as exc:
                raise not_found(str(exc)) from exc
            except RegistryError as exc:
                raise invalid(str(exc)) from exc
        return json_response({})

    async def version_by_alias(self, request: Request, who: Principal) -> Response:
        from headrace.store.registry import ModelNotFoundError

        args = dict(request.query_params)
        name = _string(args, "name")
        alias = _string(args, "alias")
        try:
            record = self.store.registry.resolve(name, alias)
        except ModelNotFoundError as exc:
            raise not_found(str(exc)) from exc
        return json_response({"model_version": self._version_json(record)})

    # -- model versions' files (the registry as artifacts) ----------------------------

    # -- tags, renames, deletions ------------------------------------------------------

    async def _tag(self, request: Request, who: Principal, kind: str, *, delete: bool) -> Response:
        """Set or delete one tag of an experiment, a registered model or a model version
        (``kind``), audited: the row must exist; a tag deleted must be there."""
        from headrace.store.schema import experiment_tags, model_tags, model_version_tags

        args = await json_body(request)
        table: Any
        if kind == "experiment":
            raw = _string(args, "experiment_id")
            row, table = self._experiment_row(raw), experiment_tags
            target, owner, permission = raw, {"experiment_id": row.id}, "log_run"
        elif kind == "model":
            name = self._name(args)
            self._model_json(name)  # it exists
            table, target, owner, permission = model_tags, name, {"name": name}, "register_model"
        else:
            v = self._version(args)
            table, target = model_version_tags, f"{v.name}/{v.version}"
            owner, permission = {"name": v.name, "version": v.version}, "register_model"
        key = _check_key(_string(args, "key"), "tag")
        value = args.get("value")
        action = f"{kind}.{'untag' if delete else 'tag'}"
        with (
            self.gate.audited(who, action, target, permission) as ticket,
            self.store.write() as c,
        ):
            ticket.details = {"key": key}
            if delete:
                if not _delete_tag(c, table, owner, key):
                    raise not_found(f"no tag {key!r} on {target}")
            else:
                _set_tags(c, table, owner, [(key, "" if value is None else str(value))])
            ticket.write(c)
        return json_response({})

    async def set_experiment_tag(self, request: Request, who: Principal) -> Response:
        return await self._tag(request, who, "experiment", delete=False)

    async def delete_experiment_tag(self, request: Request, who: Principal) -> Response:
        return await self._tag(request, who, "experiment", delete=True)

    async def set_registered_model_tag(self, request: Request, who: Principal) -> Response:
        return await self._tag(request, who, "model", delete=False)

    async def delete_registered_model_tag(self, request: Request, who: Principal) -> Response:
        return await self._tag(request, who, "model", delete=True)

    async def set_model_version_tag(self, request: Request, who: Principal) -> Response:
        return await self._tag(request, who, "version", delete=False)

    async def delete_model_version_tag(self, request: Request, who: Principal) -> Response:
        return await self._tag(request, who, "version", delete=True)

    def _tracked_experiment(self, raw: str, *, deletable: bool = False) -> Any:
        row = self._experiment_row(raw)
        if deletable and raw == DEFAULT_ID:
            raise invalid("the Default experiment (id 0) cannot be deleted or renamed")
        return row

    async def update_experiment(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import select, update

        from headrace.store.schema import experiments

        args = await json_body(request)
        raw = _string(args, "experiment_id")
        row = self._tracked_experiment(raw, deletable=True)
        name = _string(args, "new_name")
        if len(name) > 200:
            raise invalid("new_name: expected 1 to 200 characters")
        with (
            self.gate.audited(who, "experiment.rename", raw, "log_run") as ticket,
            self.store.write() as c,
        ):
            ticket.details = {"from": row.name, "to": name}
            taken = c.execute(select(experiments.c.id).where(experiments.c.name == name)).first()
            if taken is not None and taken.id != row.id:
                raise ApiError(
                    400, "RESOURCE_ALREADY_EXISTS", f"experiment {name!r} already exists"
                )
            c.execute(update(experiments).where(experiments.c.id == row.id).values(name=name))
            ticket.write(c)
        return json_response({})

    async def delete_experiment(self, request: Request, who: Principal) -> Response:
        return await self._lifecycle_of(request, who, "experiment", deleted=True)

    async def restore_experiment(self, request: Request, who: Principal) -> Response:
        return await self._lifecycle_of(request, who, "experiment", deleted=False)

    async def delete_run(self, request: Request, who: Principal) -> Response:
        return await self._lifecycle_of(request, who, "run", deleted=True)

    async def restore_run(self, request: Request, who: Principal) -> Response:
        return await self._lifecycle_of(request, who, "run", deleted=False)

    async def _lifecycle_of(
        self, request: Request, who: Principal, kind: str, *, deleted: bool
    ) -> Response:
        """Delete (softly: restorable) or restore an experiment or a tracked run."""
        from sqlalchemy import update

        from headrace.store.schema import experiments, runs

        args = await json_body(request)
        raw = _string(args, f"{kind}_id")
        table = experiments if kind == "experiment" else runs
        if kind == "experiment":
            row_id = self._tracked_experiment(raw, deletable=True).id
        else:
            if self._run_row(raw).experiment_id is None:
                raise invalid(f"run {raw} is a pipeline run; only tracked runs are deleted")
            row_id = raw
        action = f"{kind}.{'delete' if deleted else 'restore'}"
        with (
            self.gate.audited(who, action, raw, "log_run") as ticket,
            self.store.write() as c,
        ):
            c.execute(
                update(table)
                .where(table.c.id == row_id)
                .values(deleted_at=time.time() if deleted else None)
            )
            ticket.write(c)
        self._tracked.discard(raw)  # a run logged to in this process is looked up again
        return json_response({})

    async def update_registered_model(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import update

        from headrace.store.schema import models

        args = await json_body(request)
        name = self._name(args)
        self._model_json(name)
        description = _string(args, "description", required=False)
        with (
            self.gate.audited(who, "model.describe", name, "register_model") as ticket,
            self.store.write() as c,
        ):
            c.execute(
                update(models).where(models.c.name == name).values(description=description or None)
            )
            ticket.write(c)
        return json_response({"registered_model": self._model_json(name)})

    async def update_model_version(self, request: Request, who: Principal) -> Response:
        from sqlalchemy import update

        from headrace.store.schema import model_versions

        args = await json_body(request)
        v = self._version(args)
        description = _string(args, "description", required=False)
        with (
            self.gate.audited(
                who, "model.describe", f"{v.name}/{v.version}", "register_model"
            ) as ticket,
            self.store.write() as c,
        ):
            c.execute(
                update(model_versions)
                .where(model_versions.c.name == v.name, model_versions.c.version == v.version)
                .values(description=description or None)
            )
            ticket.write(c)
        return json_response({"model_version": self._version_json(self._version(args))})

    def _registry_zip(self, path: str) -> tuple[zipfile.ZipFile, str]:
        from headrace.io.models import unpack

        parts = path.split("/")
        if len(parts) < 3 or not parts[2].isdigit():
            raise invalid(f"artifact path {path!r}: expected registry/NAME/VERSION/...")
        v = self._version({"name": parts[1], "version": parts[2]})
        if v.flavor != "mlflow":
            raise invalid(
                f"{v.name} version {v.version} is a headrace {v.flavor} model, not an MLflow "
                "model: load it with headrace (hr.load_model)"
            )
        _, payload = unpack(self.ws.blobs.get_bytes(v.blob))
        return zipfile.ZipFile(io.BytesIO(payload)), "/".join(parts[3:])

    def _registry_file(self, path: str) -> Response:
        from starlette.responses import Response as Plain

        archive, inner = self._registry_zip(path)
        try:
            data = archive.read(inner)
        except KeyError as exc:
            raise not_found(f"no file {inner!r} in {path}") from exc
        return Plain(data, media_type="application/octet-stream")

    def _registry_listing(self, path: str) -> list[dict[str, Any]]:
        archive, inner = self._registry_zip(path)
        rows = [(i.filename, "", i.file_size) for i in archive.infolist() if not i.is_dir()]
        return _listing(rows, inner)


class _RunRow:
    def __init__(self, *values: Any) -> None:
        (
            self.id,
            self.name,
            self.status,
            self.experiment_id,
            self.created_at,
            self.ended_at,
            self.deleted_at,
        ) = values


def _set_tags(c: Any, table: Any, key_values: dict[str, Any], tags: list[tuple[str, str]]) -> None:
    """Set tags (insert or replace) on the row ``key_values`` names."""
    from headrace.store.upsert import upsert_statement

    if not tags:
        return
    keys = (*key_values, "key")
    statement = upsert_statement(c.dialect.name, table, keys, (*keys, "value"))
    c.execute(statement, [{**key_values, "key": k, "value": v} for k, v in tags])


def _delete_tag(c: Any, table: Any, key_values: dict[str, Any], key: str) -> bool:
    from sqlalchemy import delete

    done = c.execute(
        delete(table).where(
            table.c.key == key, *(table.c[name] == value for name, value in key_values.items())
        )
    )
    return bool(done.rowcount)


def _lifecycle(deleted_at: float | None) -> str:
    return "active" if deleted_at is None else "deleted"


#: MLflow's view types: which lifecycle stages a search returns (``deleted`` filter).
_VIEWS: dict[str, bool | None] = {"ACTIVE_ONLY": False, "DELETED_ONLY": True, "ALL": None}


def _view(value: Any, field: str) -> bool | None:
    view = str(value or "ACTIVE_ONLY")
    if view not in _VIEWS:
        raise invalid(f"{field} {view!r}: expected one of {', '.join(_VIEWS)}")
    return _VIEWS[view]


def _listing(rows: list[tuple[str, str, int]], inner: str) -> list[dict[str, Any]]:
    """The direct children of ``inner`` among stored files (folders inferred)."""
    prefix = f"{inner}/" if inner else ""
    files: dict[str, dict[str, Any]] = {}
    for path, _, size in rows:
        if path == inner:
            return []  # a file, not a folder
        if not path.startswith(prefix):
            continue
        head, _, rest = path[len(prefix) :].partition("/")
        child = prefix + head
        if rest:
            files.setdefault(child, {"path": head, "is_dir": True})
        else:
            files[child] = {"path": head, "is_dir": False, "file_size": size}
    return [files[k] for k in sorted(files)]


def _like(value: str, pattern: str) -> bool:
    import re

    if pattern == "":
        return True
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE) is not None


def _quoted(text: str, field: str, what: str) -> str:
    import re

    match = re.fullmatch(
        rf"\s*(?:attributes?\.)?{field}\s*(=|LIKE|ILIKE)\s*(['\"])(.*)\2\s*", text, re.IGNORECASE
    )
    if match is None:
        raise invalid(f"filter {text!r}: {what} supports {field} = '...' or {field} LIKE '...'")
    return match.group(3) if match.group(1) != "=" else match.group(3).replace("%", "\\%")


def _experiment_name_filter(text: str) -> str:
    return _quoted(text, "name", "searching experiments")


def _name_filter(text: str) -> str:
    return _quoted(text, "name", "searching registered models")


def _equalities(text: str, allowed: tuple[str, ...], what: str) -> dict[str, str]:
    """``field = 'value' AND ...`` over ``allowed`` fields (MLflow's common filters)."""
    import re

    found: dict[str, str] = {}
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        match = re.fullmatch(r"\s*(?:attributes\.)?(\w+)\s*=\s*(['\"])(.*)\2\s*", part)
        if match is None or match.group(1) not in allowed:
            raise invalid(
                f"filter {text!r}: searching {what} supports "
                + " AND ".join(f"{f} = '...'" for f in allowed)
            )
        found[match.group(1)] = match.group(3)
    return found


def _version_filter(text: str) -> tuple[str | None, str | None]:
    found = _equalities(text, ("name", "run_id"), "model versions")
    return found.get("name"), found.get("run_id")


def _mlflow_filter(text: str | None) -> str | None:
    """MLflow's filter dialect in headrace's: statuses by MLflow's names."""
    import re

    if not text:
        return None

    def status(match: re.Match[str]) -> str:
        value = match.group(3)
        return f"{match.group(1)}{match.group(2)}{STATUS_IN.get(value, value)}{match.group(2)}"

    return re.sub(
        r"((?:attributes?\.)?status\s*(?:=|!=)\s*)(['\"])([A-Z]+)\2", status, text, flags=re.I
    )


def _mlflow_order(text: str) -> str:
    text = text.strip()
    for word in ("attributes.", "attribute.", "attr."):
        if text.startswith(word):
            break
    else:
        if text.split(" ")[0] in ("start_time", "end_time", "run_name", "status", "run_id"):
            text = f"attributes.{text}"
    return text


Handler = Callable[..., Awaitable["Response"]]


def mlflow_routes(ws: Workspace, gate: Gate) -> list[Route]:
    """The MLflow REST routes (also under ``/ajax-api/2.0``), each authenticated."""
    from starlette.routing import Route

    from headrace.errors import HeadraceError
    from headrace.store.failures import is_unreachable

    api = MlflowApi(ws, gate)

    def endpoint(handler: Handler, permission: str = "read", *names: str) -> Any:
        """The route of ``handler``; ``permission``: the least a caller needs for it,
        checked before the body is read (the handler checks the exact one, which may
        be more, in its audited part)."""
        action = f"mlflow.{handler.__name__}"

        async def run(request: Request) -> Response:
            who = None
            try:
                who = gate.principal(request)
                if permission == "read":
                    gate.require(who, "read")
                else:  # refused before the body is looked at: a 403, audited as denied
                    try:
                        gate.require(who, permission)
                    except ApiError as denied:
                        gate.record(
                            who, action, request.url.path, "denied", {"error": denied.message}
                        )
                        denied.audited = True
                        raise
                extra = [request.path_params[n] for n in names]
                answer: Response = await handler(request, who, *extra)
                return answer
            except Exception as exc:
                # a mutating call refused before it reached its audited part (bad input,
                # an unknown run) is recorded too; unauthenticated calls are not
                if permission != "read" and who is not None and not getattr(exc, "audited", False):
                    message = failure(exc)
                    gate.record(who, action, request.url.path, "failed", {"error": message[:2000]})
                raise

        async def answered(request: Request) -> Response:
            try:
                return await run(request)
            except ApiError as error:
                code = {
                    403: "PERMISSION_DENIED",
                    401: "UNAUTHENTICATED",
                    413: error.code,
                    429: "REQUEST_LIMIT_EXCEEDED",
                    503: UNAVAILABLE,
                }.get(error.status, error.code)
                if error.code == "BAD_REQUEST":
                    code = "INVALID_PARAMETER_VALUE"
                return json_response(
                    {**error.payload(), "error_code": code}, error.status, error.headers
                )
            except Exception as exc:
                if is_unreachable(exc):  # the client retries a 503 by itself
                    busy = gate.outage.unavailable(exc, code=UNAVAILABLE)
                    return json_response(busy.payload(), busy.status, busy.headers)
                if not isinstance(exc, HeadraceError):
                    raise
                return json_response(
                    {"error_code": "INVALID_PARAMETER_VALUE", "message": str(exc)}, 400
                )

        return answered

    table: list[tuple[str, list[str], Any]] = [
        ("/experiments/create", ["POST"], endpoint(api.create_experiment, "log_run")),
        ("/experiments/get", ["GET"], endpoint(api.get_experiment)),
        ("/experiments/get-by-name", ["GET"], endpoint(api.get_experiment_by_name)),
        ("/experiments/search", ["GET", "POST"], endpoint(api.search_experiments)),
        ("/experiments/set-experiment-tag", ["POST"], endpoint(api.set_experiment_tag, "log_run")),
        (
            "/experiments/delete-experiment-tag",
            ["POST"],
            endpoint(api.delete_experiment_tag, "log_run"),
        ),
        ("/experiments/update", ["POST"], endpoint(api.update_experiment, "log_run")),
        ("/experiments/delete", ["POST"], endpoint(api.delete_experiment, "log_run")),
        ("/experiments/restore", ["POST"], endpoint(api.restore_experiment, "log_run")),
        ("/runs/delete", ["POST"], endpoint(api.delete_run, "log_run")),
        ("/runs/restore", ["POST"], endpoint(api.restore_run, "log_run")),
        ("/runs/create", ["POST"], endpoint(api.create_run, "log_run")),
        ("/runs/update", ["POST"], endpoint(api.update_run, "log_run")),
        ("/runs/get", ["GET"], endpoint(api.get_run)),
        ("/runs/log-metric", ["POST"], endpoint(api.log_metric, "log_run")),
        ("/runs/log-parameter", ["POST"], endpoint(api.log_param, "log_run")),
        ("/runs/set-tag", ["POST"], endpoint(api.set_tag, "log_run")),
        ("/runs/delete-tag", ["POST"], endpoint(api.delete_tag, "log_run")),
        ("/runs/log-batch", ["POST"], endpoint(api.log_batch, "log_run")),
        ("/runs/log-inputs", ["POST"], endpoint(api.log_inputs, "log_run")),
        ("/runs/outputs", ["POST"], endpoint(api.log_outputs, "log_run")),
        ("/runs/search", ["POST"], endpoint(api.search_runs)),
        ("/metrics/get-history", ["GET"], endpoint(api.metric_history)),
        ("/artifacts/list", ["GET"], endpoint(api.list_run_artifacts)),
        ("/logged-models", ["POST"], endpoint(api.create_logged_model, "log_run")),
        ("/logged-models/search", ["POST"], endpoint(api.search_logged_models)),
        ("/logged-models/{model_id}", ["GET"], endpoint(api.get_logged_model, "read", "model_id")),
        (
            "/logged-models/{model_id}",
            ["PATCH"],
            endpoint(api.finalize_logged_model, "log_run", "model_id"),
        ),
        (
            "/logged-models/{model_id}/tags",
            ["PATCH"],
            endpoint(api.set_logged_model_tags, "log_run", "model_id"),
        ),
        (
            "/registered-models/create",
            ["POST"],
            endpoint(api.create_registered_model, "register_model"),
        ),
        ("/registered-models/get", ["GET"], endpoint(api.get_registered_model)),
        ("/registered-models/search", ["GET"], endpoint(api.search_registered_models)),
        (
            "/registered-models/get-latest-versions",
            ["GET", "POST"],
            endpoint(api.latest_versions),
        ),
        (
            "/registered-models/update",
            ["PATCH"],
            endpoint(api.update_registered_model, "register_model"),
        ),
        (
            "/registered-models/set-tag",
            ["POST"],
            endpoint(api.set_registered_model_tag, "register_model"),
        ),
        (
            "/registered-models/delete-tag",
            ["DELETE"],
            endpoint(api.delete_registered_model_tag, "register_model"),
        ),
        ("/model-versions/update", ["PATCH"], endpoint(api.update_model_version, "register_model")),
        (
            "/model-versions/set-tag",
            ["POST"],
            endpoint(api.set_model_version_tag, "register_model"),
        ),
        (
            "/model-versions/delete-tag",
            ["DELETE"],
            endpoint(api.delete_model_version_tag, "register_model"),
        ),
        ("/registered-models/alias", ["POST"], endpoint(api.set_alias, "promote_model")),
        ("/registered-models/alias", ["DELETE"], endpoint(api.delete_alias, "promote_model")),
        ("/registered-models/alias", ["GET"], endpoint(api.version_by_alias)),
        ("/model-versions/create", ["POST"], endpoint(api.create_model_version, "register_model")),
        ("/model-versions/get", ["GET"], endpoint(api.get_model_version)),
        ("/model-versions/search", ["GET"], endpoint(api.search_model_versions)),
        ("/model-versions/get-download-uri", ["GET"], endpoint(api.download_uri)),
    ]

    async def unknown(request: Request) -> Response:
        return json_response(
            {
                "error_code": "ENDPOINT_NOT_FOUND",
                "message": f"{request.method} {request.url.path}: this MLflow REST endpoint "
                "is not served by headrace",
            },
            404,
        )

    everything = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    routes = []
    for prefix in (API, "/ajax-api/2.0/mlflow"):
        routes += [Route(prefix + path, fn, methods=methods) for path, methods, fn in table]
        routes.append(Route(prefix + "/{rest:path}", unknown, methods=everything))
    routes += [
        Route(ARTIFACTS, endpoint(api.list_artifacts), methods=["GET"]),
        Route(
            ARTIFACTS + "/{path:path}",
            endpoint(api.download_artifact, "read", "path"),
            methods=["GET"],
        ),
        Route(
            ARTIFACTS + "/{path:path}",
            endpoint(api.upload_artifact, "log_run", "path"),
            methods=["PUT"],
        ),
    ]
    return routes
