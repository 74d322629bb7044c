"""The scoring server: a Starlette app over one registered model (``name@alias``).

Endpoints: ``POST /invocations`` (the formats of ``mlflow models serve``), ``POST
/predict`` (records in, predictions and the model version out), ``GET /ping``, ``GET
/health`` (200 only once the model is loaded), ``GET /version`` and ``GET /metrics``
(Prometheus). Every request is checked against the model's signature; bad input is a
4xx naming the field. A model that raises on checked input is a 500 with an error id
that is also logged (a model without a signature: a 400, since its input was not
checked); so is any other fault, always in the same JSON format.
Every prediction goes to the prediction log, written off the request path. When the
served alias moves, the new version is loaded in the background and swapped in
between requests.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headrace.io.signature import SignatureError
from headrace.serving.batching import MicroBatcher
from headrace.serving.errors import PredictionLogFullError, RequestHeaderError
from headrace.serving.fastpath import FastPath, Matrix, as_frame
from headrace.serving.formats import ScoringInputError, jsonable, parse, read_json
from headrace.serving.predlog import PredictionLog, Scored
from headrace.store.availability import Availability
from headrace.store.failures import is_unreachable

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from headrace.registry.service import LoadedModel
    from headrace.runtime.workspace import Workspace

log = logging.getLogger("headrace.serving")
MAX_BODY = 10 * 1024 * 1024


@dataclass
class ServeOptions:
    uri: str
    max_body: int = MAX_BODY
    poll_seconds: float = 2.0
    allow_pickle: bool = False
    trusted: tuple[str, ...] = ()
    log_predictions: bool = True
    #: (alias, percent of requests) sent to a canary version of the same model.
    canary: tuple[str, float] | None = None
    #: an alias scored on every request after the response, logged, never returned.
    shadow: str | None = None
    #: micro-batching: requests scored together up to this many rows (1: off), waiting
    #: at most this long for others to join.
    batch_max_rows: int = 1
    batch_max_wait_ms: float = 2.0
    #: tune the process for latency once the models are loaded (the server process of
    #: ``headrace serve``, not an app embedded in another program): see ``_tune``.
    tune_process: bool = False


@dataclass
class Served:
    """The model being served; replaced whole when the alias moves."""

    model: LoadedModel
    columns: list[str] | None = field(default=None)
    #: the numeric fast path, when the model's inputs are all floats (None otherwise)
    fast: FastPath | None = field(default=None)

    def __post_init__(self) -> None:
        self.scorer = _scorer(self)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "headrace_requests",
            "Scoring requests",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "headrace_request_seconds",
            "Scoring latency",
            ["endpoint"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.errors = Counter(
            "headrace_errors",
            "Requests that failed",
            ["endpoint", "kind"],
            registry=self.registry,
        )
        self.rows = Counter("headrace_predicted_rows", "Rows scored", registry=self.registry)
        self.version = Gauge(
            "headrace_model_version",
            "The model version being served",
            ["model"],
            registry=self.registry,
        )


class Server:
    """The served model, an optional canary and shadow, each reloaded when its alias
    moves; scoring and the prediction log."""

    def __init__(self, ws: Workspace, options: ServeOptions) -> None:
        self.ws = ws
        self.options = options
        self.metrics = Metrics()
        self.models: dict[str, Served | None] = {"served": None}
        self.uris: dict[str, str] = {"served": options.uri}
        name = options.uri.split("@")[0].split("/")[0]
        if options.canary is not None:
            self.uris["canary"] = f"{name}@{options.canary[0]}"
            self.models["canary"] = None
        if options.shadow is not None:
            self.uris["shadow"] = f"{name}@{options.shadow}"
            self.models["shadow"] = None
        self.predictions = (
            PredictionLog(
                ws.store,
                spill_dir=ws.settings.state_dir / "unlogged",
                registry=self.metrics.registry,
            )
            if options.log_predictions
            else None
        )
        #: whether the metadata store answers the alias checks (scoring does not need it)
        self.availability = Availability("scoring server", logger=log)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def served(self) -> Served | None:
        return self.models["served"]

    # -- the models -----------------------------------------------------------------

    def load(self, role: str = "served") -> None:
        from headrace.registry.service import load_model

        model = load_model(
            self.ws,
            self.uris[role],
            allow_pickle=self.options.allow_pickle,
            trusted=self.options.trusted,
        )
        signature = model.signature
        self.models[role] = Served(
            model, signature.columns if signature else None, FastPath.of(model)
        )
        if role == "served":
            self.metrics.version.labels(model.name).set(model.version)
        log.info("%s: %s version %d", role, model.name, model.version)

    def _watch(self) -> None:
        from headrace.registry.service import resolve

        while not self._stop.wait(self.options.poll_seconds):
            for role, uri in self.uris.items():
                try:
                    record = resolve(self.ws, uri)
                    self.availability.back()
                    current = self.models[role]
                    if current is None or record.version != current.model.version:
                        self.load(role)  # the old model serves until the new one is ready
                except Exception as exc:
                    if is_unreachable(exc):  # the loaded models keep scoring
                        self.availability.lost(exc)
                        break
                    log.exception("checking %s for a new version failed", uri)

    def start(self) -> None:
        for role in self.uris:
            self.load(role)
        self._watcher = threading.Thread(target=self._watch, name="headrace-watch", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        if self.predictions is not None:
            self.predictions.close()

    # -- scoring --------------------------------------------------------------------

    def route(self, key: str | None) -> str:
        """``served``, or ``canary`` for its share of requests (the same key always
        goes the same way)."""
        if self.options.canary is None or self.models.get("canary") is None:
            return "served"
        share = self.options.canary[1]
        if key:
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            point = int.from_bytes(digest, "big") % 10_000 / 100
        else:
            point = random.random() * 100
        return "canary" if point < share else "served"

    def _log(
        self,
        served: Served,
        role: str,
        request_id: str,
        table: Any,
        outputs: list[Any],
        latency: float,
        key: str | None,
    ) -> None:
        if self.predictions is not None:
            self.predictions.append(
                Scored(
                    request_id=request_id,
                    model=served.model.name,
                    version=served.model.version,
                    role=role,
                    inputs=table,
                    outputs=outputs,
                    latency_ms=latency,
                    at=time.time(),
                    keys=[key] * len(outputs) if key else None,
                    scorer=served.scorer,
                )
            )

    def prepare(
        self,
        body: bytes,
        content_type: str | None,
        key: str | None = None,
        *,
        records: bool = False,
    ) -> tuple[str, Served, Any]:
        """The role that answers, its model, and the request's table fitted to the
        model's signature; bad input raises a 4xx error naming the field, a full
        prediction log a 503 (a request is refused rather than answered and not logged).
        ``records``: the body of ``/predict`` (a record, a list of them, or
        ``{"records": [...]}``)."""
        if self.predictions is not None:
            self.predictions.check_room()
        role = self.route(key)
        served = self.models[role]
        if served is None:
            raise ScoringInputError("the model is not loaded yet", status=503, field=None)
        parsed = None
        if _is_json(content_type):
            if not body.strip():
                raise ScoringInputError("the request body is empty", field="body")
            parsed = read_json(body)  # once, for the fast path and the general one
            if records:
                parsed = parsed._replace(value=_as_records(parsed.value))
            if served.fast is not None:
                matrix = served.fast.read_value(parsed.value)
                if matrix is not None:
                    return role, served, matrix
        table = parse(body, content_type, served.columns, parsed)
        return role, served, served.model.check(table)

    @staticmethod
    def predict(served: Served, table: Any) -> list[Any]:
        """Predict on what :meth:`prepare` returned (a model that raises: ModelFailure)."""
        try:
            if isinstance(table, Matrix) and served.fast is not None:
                return jsonable(served.fast.predict(table))
            return jsonable(served.model.predict_checked(as_frame(table)))
        except Exception as exc:
            raise ModelFailure(exc, checked=served.model.signature is not None) from exc

    def record(
        self,
        role: str,
        served: Served,
        request_id: str,
        table: Any,
        outputs: list[Any],
        latency: float,
        key: str | None,
    ) -> None:
        self._log(served, role, request_id, table, outputs, latency, key)
        self.metrics.rows.inc(len(outputs))

    def score(
        self,
        body: bytes,
        content_type: str | None,
        request_id: str,
        key: str | None = None,
        *,
        records: bool = False,
    ) -> tuple[Served, Any, Any, float]:
        """Prepare, predict and record in one call (no micro-batching)."""
        role, served, table = self.prepare(body, content_type, key, records=records)
        started = time.perf_counter()
        outputs = self.predict(served, table)
        latency = (time.perf_counter() - started) * 1000
        self.record(role, served, request_id, table, outputs, latency, key)
        return served, table, outputs, latency

    def shadow(self, table: Any, request_id: str, key: str | None) -> None:
        """Score the shadow model and log it (after the response is sent)."""
        served = self.models.get("shadow")
        if served is None:
            return
        started = time.perf_counter()
        try:
            fast = served.fast
            if isinstance(table, Matrix) and fast is not None and fast.columns == table.columns:
                outputs = jsonable(fast.predict(table))
            else:  # its own signature checks what the served model was given
                outputs = jsonable(served.model.predict(as_frame(table)))
        except Exception:
            self.metrics.errors.labels("shadow", "model").inc()
            log.exception("the shadow model failed on request %s", request_id)
            return
        self._log(
            served,
            "shadow",
            request_id,
            table,
            outputs,
            (time.perf_counter() - started) * 1000,
            key,
        )


def _scorer(served: Served) -> Any:
    """For a binary classifier, a function giving each row's probability of the positive
    class (the prediction log's writer calls it, off the request path); else None."""
    model = served.model
    classes = getattr(model.model, "classes_", None)
    if getattr(model.model, "predict_proba", None) is None or classes is None:
        return None
    if len(classes) != 2:
        return None
    fast = served.fast

    def score(table: Any) -> Any:
        if isinstance(table, Matrix) and fast is not None:
            from headrace.io.signature import call_predict

            return call_predict(model.model.predict_proba, fast.model_input(table))[:, 1]
        return model.predict_proba(as_frame(table))[:, 1]

    return score


class ModelFailure(Exception):
    """The model raised. ``checked``: the input had passed the model's signature (so the
    fault is the model's: a 500); without a signature the input is the likelier culprit,
    and the answer is a 400, as MLflow's scoring server gives."""

    def __init__(self, cause: BaseException, *, checked: bool = True) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.checked = checked


def _error(status: int, code: str, message: str, **extra: Any) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error_code": code, "message": message, **extra}, status_code=status)


def _internal(cause: BaseException, what: str, request_id: str | None) -> Response:
    """A 500 in the documented format, with an error id that is also in the log, beside
    the traceback."""
    error_id = uuid.uuid4().hex[:16]
    log.error("%s on request %s (error %s)", what, request_id or "-", error_id, exc_info=cause)
    return _error(
        500,
        "INTERNAL_ERROR",
        f"{what}; error id {error_id}",
        error_id=error_id,
        request_id=request_id,
    )


def _unchecked_input(cause: BaseException, request_id: str) -> Response:
    """The 400 for a model without a signature that fails on a request's input."""
    said = " ".join(str(cause).split())[:300]
    log.warning("the model failed on the input of request %s: %r", request_id, cause)
    return _error(
        400,
        "BAD_REQUEST",
        f"the model failed on this input ({type(cause).__name__}: {said}); it was registered "
        "without a signature, so requests are not checked before it: send the columns and "
        "types it was trained on",
        field=None,
        request_id=request_id,
    )


_CODES = {
    400: "BAD_REQUEST",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_CONTENT_TYPE",
    503: "NOT_READY",
}


def create_app(ws: Workspace, options: ServeOptions) -> Starlette:
    """The ASGI app; the model loads at start-up and the log is flushed at shutdown."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    server = Server(ws, options)
    batcher = (
        MicroBatcher(server.predict, options.batch_max_rows, options.batch_max_wait_ms / 1000)
        if options.batch_max_rows > 1
        else None
    )

    async def _body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > options.max_body:
            raise ScoringInputError(
                f"the body has {int(declared):,} bytes; at most {options.max_body:,}",
                status=413,
                field="body",
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > options.max_body:
                raise ScoringInputError(
                    f"the body is larger than {options.max_body:,} bytes",
                    status=413,
                    field="body",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def _handle(request: Request, endpoint: str, shape: Any) -> Response:
        if batcher is None:
            return await _answer(request, endpoint, shape)
        with batcher.handling():
            return await _answer(request, endpoint, shape)

    async def _answer(request: Request, endpoint: str, shape: Any) -> Response:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        status = 200
        try:
            request_id, key = _client_ids(request.headers, request_id)
            body = await _body(request)
            content_type = request.headers.get("content-type") or ""
            if endpoint == "predict" and not content_type:
                content_type = "application/json"
            records = endpoint == "predict"
            if batcher is None:
                served, table, outputs, _latency = server.score(
                    body, content_type, request_id, key, records=records
                )
            else:
                role, served, table = server.prepare(body, content_type, key, records=records)
                scoring = time.perf_counter()
                outputs = await batcher.submit(served, table)
                server.record(
                    role,
                    served,
                    request_id,
                    table,
                    outputs,
                    (time.perf_counter() - scoring) * 1000,
                    key,
                )
            background = (
                BackgroundTask(server.shadow, table, request_id, key)
                if "shadow" in server.models
                else None
            )
            response: Response = JSONResponse(
                shape(served, outputs, request_id),
                headers={"x-request-id": request_id},
                background=background,
            )
        except (ScoringInputError, SignatureError) as exc:
            status = getattr(exc, "status", 400)
            field_name = getattr(exc, "field", None) or getattr(exc, "column", None)
            kind = "log_full" if isinstance(exc, PredictionLogFullError) else "input"
            server.metrics.errors.labels(endpoint, kind).inc()
            response = _error(
                status,
                getattr(exc, "code", None) or _CODES.get(status, "BAD_REQUEST"),
                str(exc),
                field=field_name,
                request_id=request_id,
            )
        except ModelFailure as failure:
            server.metrics.errors.labels(endpoint, "model").inc()
            if failure.checked:
                status = 500
                response = _internal(
                    failure.cause, f"the model failed ({type(failure.cause).__name__})", request_id
                )
            else:
                status = 400
                response = _unchecked_input(failure.cause, request_id)
        except Exception as exc:  # a fault of ours: the documented answer, never plain text
            status = 500
            server.metrics.errors.labels(endpoint, "internal").inc()
            response = _internal(exc, "the request could not be scored", request_id)
        server.metrics.requests.labels(endpoint, str(status)).inc()
        server.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        return response

    async def invocations(request: Request) -> Response:
        return await _handle(request, "invocations", lambda s, out, rid: {"predictions": out})

    async def predict(request: Request) -> Response:
        return await _handle(
            request,
            "predict",
            lambda s, out, rid: {
                "predictions": out,
                "model": s.model.name,
                "version": s.model.version,
                "request_id": rid,
            },
        )

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n", status_code=200 if server.served else 503)

    async def health(request: Request) -> Response:
        served = server.served
        if served is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        # Scoring needs no store: an outage degrades alias checks and the log's writes.
        # Failing to log is loud: the server still answers (200) but says degraded,
        # and why; a full log refuses requests, so then it is not ready (503).
        store = server.availability.snapshot()
        body: dict[str, Any] = {
            "status": "ok" if store["reachable"] else "degraded",
            "model": served.model.name,
            "version": served.model.version,
            "store": store,
        }
        if server.predictions is not None:
            state = server.predictions.health()
            body["prediction_log"] = state
            if state["status"] != "ok":
                body["status"] = state["status"]
            if state["pending_rows"] >= state["capacity"]:
                return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    async def version(request: Request) -> Response:
        from importlib.metadata import version as installed

        served = server.served
        return JSONResponse(
            {
                "uri": options.uri,
                "model": served.model.name if served else None,
                "version": served.model.version if served else None,
                "flavor": served.model.record.flavor if served else None,
                "headrace": installed("headrace"),
            }
        )

    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from starlette.responses import Response as Plain

        return Plain(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        server.start()
        if options.tune_process:
            _tune()
        if batcher is not None:
            batcher.start()
        try:
            yield
        finally:
            if batcher is not None:
                await batcher.stop()
            server.stop()

    async def unexpected(request: Request, exc: Exception) -> Response:
        return _internal(exc, "the request failed", request.headers.get("x-request-id"))

    app = Starlette(
        exception_handlers={Exception: unexpected},
        routes=[
            Route("/invocations", invocations, methods=["POST"]),
            Route("/predict", predict, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.server = server
    app.state.batcher = batcher
    return app


def _tune() -> None:
    """Latency tuning of a server process, once the models are loaded: everything
    allocated so far (the libraries, the model) moves out of the garbage collector's
    generations, so a full collection no longer walks it in the middle of a request;
    and the interpreter hands the GIL over every 0.5 ms instead of 5 ms, so the
    prediction log's writer thread cannot hold a request up for long."""
    import gc
    import sys

    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.0005)


#: The longest X-Request-Id kept (the log's request_id column) and X-Request-Key (key).
MAX_REQUEST_ID = 64
MAX_REQUEST_KEY = 200


def _client_ids(headers: Any, fallback: str) -> tuple[str, str | None]:
    """The request's id (the client's X-Request-Id, else ``fallback``) and key
    (X-Request-Key), checked at the edge so that the prediction log can keep them:
    an id is 1-64 visible ASCII characters, a key at most 200 characters with no
    control character."""
    request_id = headers.get("x-request-id") or None  # an empty header: none sent
    if request_id is not None and not _is_visible_id(request_id):
        raise RequestHeaderError(
            f"header X-Request-Id: expected 1 to {MAX_REQUEST_ID} visible ASCII "
            f"characters (no spaces), got {len(request_id)} characters; send a shorter "
            "id such as a UUID, or none (the server makes one)",
            header="X-Request-Id",
        )
    key = headers.get("x-request-key")
    if key is not None:
        if len(key) > MAX_REQUEST_KEY or any(ch < " " or ch == "\x7f" for ch in key):
            raise RequestHeaderError(
                f"header X-Request-Key: expected at most {MAX_REQUEST_KEY} characters "
                f"without control characters, got {len(key)} characters; send a shorter "
                "key (a hash of a long one)",
                header="X-Request-Key",
            )
        key = key or None
    return request_id or fallback, key


def _is_visible_id(text: str) -> bool:
    return len(text) <= MAX_REQUEST_ID and all("!" <= ch <= "~" for ch in text)


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def _as_records(data: Any) -> Any:
    """``/predict`` takes a record, a list of records, or ``{"records": [...]}``: the
    JSON value in the shape of ``/invocations``."""
    if isinstance(data, dict) and "records" in data:
        data = data["records"]
    if isinstance(data, dict) and not any(
        k in data for k in ("dataframe_split", "dataframe_records", "instances", "inputs")
    ):
        data = [data]
    if isinstance(data, list):
        return {"dataframe_records": data}
    return data


def from_environment() -> Starlette:
    """The app of ``headrace serve`` (each uvicorn worker builds its own)."""
    import json
    import os

    from headrace.runtime.workspace import open_workspace

    config = json.loads(os.environ["HEADRACE_SERVE_CONFIG"])
    ws = open_workspace(config["root"])
    return create_app(
        ws,
        ServeOptions(
            uri=config["uri"],
            max_body=int(config["max_body"]),
            log_predictions=bool(config["log"]),
            allow_pickle=bool(config["allow_pickle"]),
            canary=(str(config["canary"][0]), float(config["canary"][1]))
            if config.get("canary")
            else None,
            shadow=config.get("shadow"),
            batch_max_rows=int(config.get("batch_max_rows", 1)),
            batch_max_wait_ms=float(config.get("batch_max_wait_ms", 2.0)),
            trusted=tuple(config.get("trusted", ())),
            tune_process=True,
        ),
    )
