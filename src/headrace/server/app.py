"""The team server (``headrace server``): one process serving

- ``/api/v1``: headrace's own JSON API (FastAPI; its OpenAPI document at
  ``/api/v1/openapi.json``, the docs page at ``/api/v1/docs``);
- ``/api/2.0/mlflow`` and ``/api/2.0/mlflow-artifacts``: the MLflow REST surface, so the
  unmodified ``mlflow`` client logs and registers into headrace
  (:mod:`headrace.server.mlflow_api`);
- ``/metrics``: Prometheus.

Every route but health, readiness and metrics takes ``Authorization: Bearer <token>``:
no token or a bad one is a 401 (audited in aggregate; 429 for an address past 50
failures a minute); a role without the route's permission gets a 403 naming
the permission and the least role that carries it. A mutating call is authorised before
it touches anything and written to the audit log with its outcome (``ok``, ``denied``,
``failed``); a malformed body sent to a route the caller may not use is a 403 like any
other. Lists are paged (``limit`` up to 1,000 and a ``page_token``); JSON bodies are
limited to 1 MiB and 64 levels of nesting, artifact uploads to 512 MiB. A fault of the
server is a 500 in the same JSON format, with an error id that is also in its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response

from headrace.io.jsonnesting import nests_deeper
from headrace.server.context import (
    MAX_BODY,
    MAX_LIMIT,
    ApiError,
    Gate,
    json_response,
    page_of,
)
from headrace.server.deps import Caller, Paging
from headrace.server.lineage_api import LineageEventIn
from headrace.server.models import GrantIn, PrincipalIn, TokenIn

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import FastAPI
    from starlette.types import ASGIApp, Receive, Scope, Send

    from headrace.runtime.workspace import Workspace
    from headrace.store.governance import Principal

log = logging.getLogger("headrace.server")

__all__ = ["MAX_BODY", "MAX_LIMIT", "ApiError", "create_server_app"]

#: Seconds the server waits for each chunk of a request's body.
BODY_TIMEOUT = 30.0
#: Routes whose bodies may be larger than MAX_BODY (artifact uploads stream to disk).
_LARGE_BODIES = ("/api/2.0/mlflow-artifacts/artifacts/", "/api/v1/blobs")
#: Levels of nesting a JSON body may have (parsers and validators recurse on them).
MAX_NESTING = 64
_MLFLOW = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")


class _Limits:
    """ASGI middleware: a JSON body (any route but artifact uploads) is read here first,
    and refused before the app sees it when it is over 1 MiB (declared, counted, or once
    gzip-inflated: 413), not gzip though it says so (400), nested more than
    :data:`MAX_NESTING` levels deep (400), or stops arriving (408); an
    upload's body is streamed to its route under the same per-chunk timeout. Each
    request's route and status are counted for ``/metrics``."""

    def __init__(self, app: ASGIApp, observe: Any) -> None:
        self.app, self.observe = app, observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        receiving: Any = _timed(receive)
        if not scope["path"].startswith(_LARGE_BODIES):
            try:
                scope, receiving = await _buffered(scope, receiving, MAX_BODY)
            except ApiError as error:
                if error.code == "BAD_REQUEST" and scope["path"].startswith(_MLFLOW):
                    error.code = "INVALID_PARAMETER_VALUE"  # MLflow's name for it
                await json_response(error.payload(), error.status)(scope, receive, send)
                self.observe(error.code.lower(), error.status, started)
                return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.observe(name, status["code"], started)


class _Definitions:
    """ASGI middleware: before a request, if the project's files changed (looked at
    every 2 s), load its definitions afresh (assets, pipelines, schedules, monitors),
    so the API serves what the daemon beside it runs. If they do not load, the last
    good ones stay and the error is logged."""

    def __init__(self, app: ASGIApp, ws: Workspace) -> None:
        from headrace.scheduling.reload import ProjectWatch

        self.app, self.ws = app, ws
        self.watch = ProjectWatch(ws)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.watch.changed():
            from headrace.scheduling.definitions import load_automation
            from headrace.scheduling.reload import reload_project

            try:
                reload_project(self.ws, lambda: load_automation(self.ws, check_paths=False))
                log.warning("the project's definitions changed: loaded afresh")
            except Exception as exc:
                log.error(
                    "the project's definitions changed but do not load; the last good ones "
                    "stay in use: %s: %s",
                    type(exc).__name__,
                    exc,
                )
        await self.app(scope, receive, send)


def _timed(receive: Receive) -> Any:
    """``receive`` with a 408 when a chunk of the body does not arrive in BODY_TIMEOUT;
    once the body is in, receive() (which then waits for a disconnect) is left alone."""
    complete = False

    async def timed() -> Any:
        nonlocal complete
        if complete:
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), BODY_TIMEOUT)
        except TimeoutError as exc:
            raise ApiError(
                408, "REQUEST_TIMEOUT", f"the body did not arrive within {BODY_TIMEOUT:g} s"
            ) from exc
        complete = message.get("type") != "http.request" or not message.get("more_body")
        return message

    return timed


async def _buffered(scope: Scope, receive: Any, limit: int) -> tuple[Scope, Any]:
    """Read the whole body (at most ``limit`` bytes, gzip inflated under the same bound)
    and return the scope and a ``receive`` that replays it."""
    import zlib

    too_large = ApiError(413, "REQUEST_TOO_LARGE", f"the body is over {limit:,} bytes")
    headers = dict(scope.get("headers", []))
    declared = headers.get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the app sees an empty body and answers no one
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            raise too_large
        chunks.append(body)
        more = message.get("more_body", False)
    data = b"".join(chunks)
    if headers.get(b"content-encoding", b"").lower() == b"gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(data, limit + 1)
        except zlib.error as exc:
            raise ApiError(400, "BAD_REQUEST", f"the body is not valid gzip: {exc}") from exc
        if len(data) > limit or inflater.unconsumed_tail:
            raise ApiError(
                413, "REQUEST_TOO_LARGE", f"the body is over {limit:,} bytes once decompressed"
            )
        scope = {
            **scope,
            "headers": [
                (k, v)
                for k, v in scope["headers"]
                if k not in (b"content-encoding", b"content-length")
            ]
            + [(b"content-length", str(len(data)).encode())],
        }
    if nests_deeper(data, MAX_NESTING):
        raise ApiError(
            400,
            "BAD_REQUEST",
            f"the JSON body is nested more than {MAX_NESTING} levels deep; no request of "
            "this API needs more than a few",
        )
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    return scope, replay


def _failed_auth_flusher(gate: Gate) -> Any:
    """The app's lifespan: write the failed-authentication counts of each ended window
    while no request comes to do it, and the pending ones at shutdown; then log the audit
    entries an outage still holds (a graceful stop: uvicorn re-raises the signal after
    it, so atexit would not run)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        async def every_window() -> None:
            while True:
                await asyncio.sleep(gate.failures.window / 4)
                await asyncio.to_thread(gate.failures.flush_due)

        task = asyncio.create_task(every_window())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(gate.failures.flush)
            gate.outage.unwritten()

    return lifespan


def create_server_app(ws: Workspace) -> FastAPI:
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from sqlalchemy.exc import SQLAlchemyError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from headrace.errors import HeadraceError
    from headrace.server.areas import areas_router
    from headrace.server.mlflow_api import mlflow_routes
    from headrace.store.failures import is_unreachable
    from headrace.store.governance import GovernanceError

    gate = Gate(ws)
    governance = ws.store.governance
    registry = CollectorRegistry()
    requests = Counter(
        "headrace_api_requests", "API requests", ["route", "status"], registry=registry
    )
    latency = Histogram("headrace_api_seconds", "API latency", ["route"], registry=registry)
    outage = gate.outage
    gauges: list[tuple[str, str, Callable[[], float]]] = [
        ("headrace_store_reachable", "Whether the metadata store answers (1) or not",
         lambda: float(outage.availability.reachable)),
        ("headrace_audit_pending", "Audit entries waiting for the store",
         lambda: float(outage.pending)),
        ("headrace_audit_dropped", "Audit entries dropped during store outages",
         lambda: float(outage.dropped)),
    ]  # fmt: skip
    for name, about, read in gauges:
        Gauge(name, about, registry=registry).set_function(read)

    def observe(route: str, status: int, started: float) -> None:
        requests.labels(route, str(status)).inc()
        latency.labels(route).observe(time.perf_counter() - started)

    app = FastAPI(
        title="headrace",
        version="1",
        description="The headrace team server: pipelines, data versions, quality, "
        "tracking, registry, serving and monitoring over one metadata store.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=_failed_auth_flusher(gate),
    )
    app.state.gate = gate

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return json_response(error.payload(), error.status, error.headers)

    def unavailable(exc: BaseException) -> Response:
        error = gate.outage.unavailable(exc)
        return json_response(error.payload(), error.status, error.headers)

    @app.exception_handler(SQLAlchemyError)
    async def store_error(request: Request, exc: SQLAlchemyError) -> Response:
        if is_unreachable(exc):
            return unavailable(exc)
        return await unexpected(request, exc)

    @app.exception_handler(GovernanceError)
    async def governance_error(request: Request, exc: GovernanceError) -> Response:
        status = 409 if "exists" in str(exc) else 400
        code = "CONFLICT" if status == 409 else "BAD_REQUEST"
        return json_response({"error_code": code, "message": str(exc)}, status)

    @app.exception_handler(HeadraceError)
    async def headrace_error(request: Request, exc: HeadraceError) -> Response:
        if is_unreachable(exc):
            return unavailable(exc)
        status = 404 if "NotFound" in type(exc).__name__ else 400
        code = "NOT_FOUND" if status == 404 else "BAD_REQUEST"
        return json_response({"error_code": code, "message": str(exc)}, status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        """A fault of the server: the documented format, never a plain-text page."""
        error_id = uuid.uuid4().hex[:16]
        log.error(
            "%s %s failed (error %s)", request.method, request.url.path, error_id, exc_info=exc
        )
        return json_response(
            {
                "error_code": "INTERNAL_ERROR",
                "message": f"the server failed on this request; error id {error_id}",
                "error_id": error_id,
            },
            500,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Starlette's and FastAPI's own refusals (no such route, a method not allowed, a
        body that does not decode) in the documented format."""
        if exc.status_code == 400:
            return refused_body(request, f"the body cannot be read: {exc.detail}")
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        response = json_response(
            {"error_code": codes.get(exc.status_code, "BAD_REQUEST"), "message": str(exc.detail)},
            exc.status_code,
        )
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                problems.append(f"the body is not valid JSON: {e.get('ctx', {}).get('error')}")
            else:
                where = ".".join(str(p) for p in e.get("loc", ()))
                problems.append(f"{where}: {e.get('msg')}")
        return refused_body(request, "; ".join(problems) or "invalid request")

    def refused_body(request: Request, message: str) -> Response:
        """The 400 of a request whose body or parameters do not fit its route; on an
        audited route, a 401 or 403 first when the caller may not use it at all."""
        route = request.scope.get("route")
        extra = getattr(route, "openapi_extra", None) or {}
        action = extra.get("x-audit-action")
        if action is not None:
            try:
                who = gate.principal(request)
            except ApiError as error:
                return json_response(error.payload(), error.status)
            # the caller's right to the route comes first: a body it may not send is
            # refused for that, and what the route would have wanted stays untold
            least = extra.get("x-permission")
            if least is not None:
                try:
                    gate.require(who, least)
                except ApiError as denied:
                    gate.record(who, action, request.url.path, "denied", {"error": denied.message})
                    return json_response(denied.payload(), denied.status)
            gate.record(who, action, request.url.path, "failed", {"error": message[:2000]})
        return json_response({"error_code": "BAD_REQUEST", "message": message}, 400)

    prefix = "/api/v1"
    errors: dict[int | str, dict[str, Any]] = {
        401: {"description": "No token, or a token that is not valid"},
        403: {"description": "The role lacks the permission (named in the answer)"},
        429: {"description": "Too many failed authentications from this address (Retry-After)"},
    }

    @app.get(f"{prefix}/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """The process answers (always 200): ``status`` is ``degraded`` while the
        metadata store is unreachable; ``store`` says since when and why, and how many
        audit entries wait for it; ``processes`` are the daemon and workers of this
        workspace on this host, from their health files."""
        import os

        from headrace.scheduling.health import read_health

        store = outage.snapshot()
        return {
            "status": "ok" if store["reachable"] else "degraded",
            "process": os.getpid(),
            "store": store,
            "processes": read_health(ws.settings.state_dir),
        }

    @app.get(f"{prefix}/ready", tags=["service"])
    def ready() -> Response:
        from sqlalchemy import text

        try:
            with ws.store.read() as c:
                c.execute(text("SELECT 1"))
        except Exception as exc:
            return json_response({"status": "not ready", "reason": str(exc)}, 503)
        return json_response({"status": "ready"})

    @app.get(f"{prefix}/whoami", tags=["governance"], responses=errors)
    def whoami(who: Caller) -> dict[str, Any]:
        return {"name": who.name, "kind": who.kind, "roles": who.grants}

    @app.get(f"{prefix}/principals", tags=["governance"], responses=errors)
    def list_principals(who: Caller, page: Paging) -> Response:
        gate.require(who, "manage_principals")
        limit, offset = page
        chunk, following = page_of(governance.principals(), limit, offset)
        return json_response(
            {
                "principals": [
                    {
                        "name": p.name,
                        "kind": p.kind,
                        "roles": p.grants,
                        "disabled": p.disabled,
                        "created_at": p.created_at,
                        "created_by": p.created_by,
                    }
                    for p in chunk
                ],
                "next_page_token": following,
            }
        )

    @app.post(
        f"{prefix}/principals",
        tags=["governance"],
        status_code=201,
        responses=errors,
        openapi_extra={"x-audit-action": "principal.create", "x-permission": "manage_principals"},
    )
    def create_principal(body: PrincipalIn, request: Request, who: Caller) -> Response:
        with gate.audited(who, "principal.create", request.url.path, "manage_principals"):
            governance.create_principal(
                body.name,
                kind=body.kind,
                role=body.role,
                namespace=body.namespace,
                actor=who.name,
            )
            token = governance.issue_token(body.name, actor=who.name) if body.token else None
        return json_response(
            {
                "name": body.name,
                "kind": body.kind,
                "role": body.role,
                "namespace": body.namespace,
                "token": token,
            },
            201,
        )

    def _governed(who: Principal, action: str, target: str) -> Any:
        """Authorise an admin call whose store method writes its own audit entry; a
        change to who may do what drops this process's cached tokens."""
        return gate.audited(who, action, target, "manage_principals")

    @app.post(
        f"{prefix}/principals/{{name}}/grants",
        tags=["governance"],
        responses=errors,
        openapi_extra={"x-audit-action": "role.grant", "x-permission": "manage_principals"},
    )
    def grant(name: str, body: GrantIn, who: Caller) -> Response:
        with _governed(who, "role.grant", name) as ticket:
            governance.grant(name, body.role, namespace=body.namespace, actor=who.name)
            ticket.written = True  # the store recorded it with the grant
        gate.forget()
        return json_response({"name": name, "roles": governance.principal(name).grants})

    @app.delete(
        f"{prefix}/principals/{{name}}/grants",
        tags=["governance"],
        responses=errors,
        openapi_extra={"x-audit-action": "role.revoke", "x-permission": "manage_principals"},
    )
    def revoke_grant(
        name: str, who: Caller, namespace: Annotated[str, Query(max_length=200)] = "*"
    ) -> Response:
        with _governed(who, "role.revoke", name) as ticket:
            governance.revoke_grant(name, namespace=namespace, actor=who.name)
            ticket.written = True
        gate.forget()
        return json_response({"name": name, "roles": governance.principal(name).grants})

    @app.post(
        f"{prefix}/principals/{{name}}/disable",
        tags=["governance"],
        responses=errors,
        openapi_extra={"x-audit-action": "principal.disable", "x-permission": "manage_principals"},
    )
    def disable(name: str, who: Caller) -> Response:
        """Disable a principal: every token of theirs stops working."""
        with _governed(who, "principal.disable", name) as ticket:
            governance.set_disabled(name, True, actor=who.name)
            ticket.written = True
        gate.forget()
        return json_response({"name": name, "disabled": True})

    @app.post(
        f"{prefix}/principals/{{name}}/enable",
        tags=["governance"],
        responses=errors,
        openapi_extra={"x-audit-action": "principal.enable", "x-permission": "manage_principals"},
    )
    def enable(name: str, who: Caller) -> Response:
        with _governed(who, "principal.enable", name) as ticket:
            governance.set_disabled(name, False, actor=who.name)
            ticket.written = True
        gate.forget()
        return json_response({"name": name, "disabled": False})

    @app.post(
        f"{prefix}/principals/{{name}}/tokens",
        tags=["governance"],
        status_code=201,
        responses=errors,
        openapi_extra={"x-audit-action": "token.issue", "x-permission": "manage_principals"},
    )
    def issue_token(name: str, body: TokenIn, who: Caller) -> Response:
        """A new token for ``name``, shown once."""
        with _governed(who, "token.issue", name) as ticket:
            token = governance.issue_token(
                name,
                expires_in=None if body.expires_days is None else body.expires_days * 86400,
                description=body.description,
                actor=who.name,
            )
            ticket.written = True
        return json_response({"name": name, "token": token}, 201)

    @app.get(f"{prefix}/principals/{{name}}/tokens", tags=["governance"], responses=errors)
    def list_tokens(name: str, who: Caller, page: Paging) -> Response:
        """A principal's tokens: ids and dates, never secrets."""
        gate.require(who, "manage_principals")
        governance.principal(name)
        rows = [t.__dict__ for t in governance.tokens(name)]
        limit, offset = page
        chunk, following = page_of(rows, limit, offset)
        return json_response({"tokens": chunk, "next_page_token": following})

    @app.delete(
        f"{prefix}/tokens/{{token_id}}",
        tags=["governance"],
        responses=errors,
        openapi_extra={"x-audit-action": "token.revoke", "x-permission": "manage_principals"},
    )
    def revoke_token(token_id: str, who: Caller) -> Response:
        """Revoke a token: it stops working at once in this process, within 10 s in
        the others."""
        with _governed(who, "token.revoke", token_id) as ticket:
            governance.revoke_token(token_id, actor=who.name)
            ticket.written = True
        gate.forget()
        return json_response({"revoked": token_id})

    @app.get(f"{prefix}/audit", tags=["governance"], responses=errors)
    def audit(who: Caller, page: Paging) -> Response:
        """The audit log, oldest first; ``page_token`` is the last sequence number seen."""
        gate.require(who, "manage_principals")
        limit, after = page
        entries = governance.audit(limit=limit, after=after)
        return json_response(
            {
                "entries": [e.__dict__ for e in entries],
                "next_page_token": str(entries[-1].seq) if len(entries) == limit else None,
            }
        )

    @app.get(f"{prefix}/audit/verify", tags=["governance"], responses=errors)
    def verify(
        who: Caller,
        checkpoint: Annotated[
            list[str],
            Query(max_length=20, description="Checkpoint lines kept outside the store"),
        ] = [],  # noqa: B006 - FastAPI copies a query default; a list is the documented way
    ) -> Response:
        """Verify the audit chain with the server's keys, against its checkpoints in the
        object store and any ``checkpoint`` a witness kept."""
        from headrace.core.audit_chain import CheckpointFormatError, parse_checkpoint
        from headrace.runtime.audit import verify_trail

        gate.require(who, "manage_principals")
        try:
            witnessed = [parse_checkpoint(line) for line in checkpoint]
        except CheckpointFormatError as exc:
            raise ApiError(400, "BAD_REQUEST", f"checkpoint: {exc}") from exc
        verdict = verify_trail(ws, witnessed=witnessed)
        return json_response({**verdict.__dict__, "intact": verdict.problem is None})

    @app.post(
        f"{prefix}/audit/checkpoint",
        tags=["governance"],
        status_code=201,
        responses=errors,
        openapi_extra={"x-audit-action": "audit.checkpoint"},
    )
    def checkpoint(who: Caller) -> Response:
        """Sign the audit chain's head, keep it in the object store, and answer it."""
        from headrace.runtime.audit import CheckpointRefusedError, take_checkpoint

        with gate.audited(who, "audit.checkpoint", None, "manage_principals") as ticket:
            try:
                point, digest = take_checkpoint(ws)
            except CheckpointRefusedError as exc:
                raise ApiError(409, "CHECKPOINT_REFUSED", str(exc)) from exc
            ticket.details = {"seq": point.seq, "blob": digest}
        return json_response({"checkpoint": point.line(), "blob": digest}, 201)

    @app.post(
        f"{prefix}/lineage",
        tags=["lineage"],
        status_code=201,
        responses=errors,
        openapi_extra={"x-audit-action": "lineage.event", "x-permission": "log_run"},
    )
    def post_lineage(event: LineageEventIn, request: Request, who: Caller) -> Response:
        """Merge one OpenLineage event (RunEvent, JobEvent or DatasetEvent) into the
        lineage graph."""
        try:
            kind = event.kind()
        except ValueError as exc:
            gate.record(who, "lineage.event", request.url.path, "failed", {"error": str(exc)})
            raise ApiError(400, "BAD_REQUEST", str(exc)) from exc
        target = (
            f"{event.job.namespace}/{event.job.name}"
            if event.job is not None
            else f"{event.dataset.namespace}/{event.dataset.name}"  # type: ignore[union-attr]
        )
        with gate.audited(who, "lineage.event", target, "log_run") as ticket, ws.store.write() as c:
            ticket.details = {"kind": kind, "eventType": event.eventType}
            ws.store.lineage.ingest(c, event.model_dump(exclude_none=True), actor=who.name)
            ticket.write(c)
        return json_response({"kind": kind}, 201)

    @app.get(f"{prefix}/lineage/jobs", tags=["lineage"], responses=errors)
    def lineage_jobs(who: Caller, page: Paging) -> Response:
        gate.require(who, "read")
        limit, offset = page
        rows, total = ws.store.lineage.jobs(limit=limit, offset=offset)
        following = str(offset + limit) if offset + limit < total else None
        return json_response({"jobs": rows, "next_page_token": following})

    @app.get(f"{prefix}/lineage/datasets", tags=["lineage"], responses=errors)
    def lineage_datasets(who: Caller, page: Paging) -> Response:
        gate.require(who, "read")
        limit, offset = page
        rows, total = ws.store.lineage.datasets(limit=limit, offset=offset)
        following = str(offset + limit) if offset + limit < total else None
        return json_response({"datasets": rows, "next_page_token": following})

    @app.get(f"{prefix}/lineage/graph", tags=["lineage"], responses=errors)
    def lineage_graph_route(
        who: Caller,
        namespace: Annotated[str, Query(min_length=1, max_length=500)],
        name: Annotated[str, Query(min_length=1, max_length=500)],
        kind: Literal["dataset", "job"] = "dataset",
        depth: Annotated[int, Query(ge=1, le=50)] = 5,
        branch: Annotated[str, Query(min_length=1, max_length=200)] = "main",
        direction: Literal["both", "upstream", "downstream"] = "both",
    ) -> Response:
        """The lineage around one node: headrace's assets and external jobs and datasets,
        upstream, downstream or both, up to ``depth`` steps away."""
        from headrace.lineage.graph import lineage_graph
        from headrace.store.lineage import Node

        gate.require(who, "read")
        try:
            graph = lineage_graph(
                ws, Node(kind, namespace, name), depth=depth, branch=branch, direction=direction
            )
        except KeyError as exc:
            raise ApiError(
                404, "NOT_FOUND", f"no {kind} {namespace}/{name} in the lineage graph"
            ) from exc
        return json_response(graph)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from starlette.responses import Response as Plain

        return Plain(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(areas_router(ws, gate))
    for route in mlflow_routes(ws, gate):
        app.router.routes.append(route)
    app.add_middleware(_Limits, observe=observe)
    if ws.settings.project_module:
        with contextlib.suppress(Exception):  # a project that does not load: no watch
            _ = ws.graph
            app.add_middleware(_Definitions, ws=ws)
    return app


def from_environment() -> FastAPI:
    """The app of ``headrace server`` (each uvicorn worker process builds its own)."""
    import os

    from headrace.runtime.workspace import open_workspace

    app = create_server_app(open_workspace(os.environ["HEADRACE_SERVER_ROOT"]))
    _settle()
    return app


def _settle() -> None:
    """Freeze what start-up allocated (modules, the app) out of the garbage collector's
    reach: a full collection then scans only what requests allocate, instead of pausing
    a large answer for tens of milliseconds every few requests."""
    import gc

    gc.collect()
    gc.freeze()
