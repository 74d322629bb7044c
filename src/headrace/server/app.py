"""The team server (``headrace server``): one process serving

- ``/api/v1``: headrace's own JSON API (FastAPI; its OpenAPI document at
  ``/api/v1/openapi.json``, the docs page at ``/api/v1/docs``);
- ``/api/2.0/mlflow`` and ``/api/2.0/mlflow-artifacts``: the MLflow REST surface, so the
  unmodified ``mlflow`` client logs and registers into headrace
  (:mod:`headrace.server.mlflow_api`);
- ``/metrics``: Prometheus.

Every route but health, readiness and metrics takes ``Authorization: Bearer <token>``:
no token or a bad one is a 401; a role without the route's permission gets a 403 naming
the permission and the least role that carries it. A mutating call is authorised before
it touches anything and written to the audit log with its outcome (``ok``, ``denied``,
``failed``). Lists are paged (``limit`` up to 1,000 and a ``page_token``); JSON bodies
are limited to 1 MiB and artifact uploads to 512 MiB.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import Response

from headrace.server.context import (
    MAX_BODY,
    MAX_LIMIT,
    ApiError,
    Gate,
    json_response,
    page_of,
    paging,
)
from headrace.server.models import PrincipalIn
from headrace.store.governance import Principal

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Receive, Scope, Send

    from headrace.runtime.workspace import Workspace

__all__ = ["MAX_BODY", "MAX_LIMIT", "ApiError", "create_server_app"]


def _caller(request: Request) -> Principal:
    """The authenticated principal of a request (a FastAPI dependency)."""
    gate: Gate = request.app.state.gate
    return gate.principal(request)


Caller = Annotated[Principal, Depends(_caller)]

#: Routes whose bodies may be larger than MAX_BODY (artifact uploads stream to disk).
_LARGE_BODIES = ("/api/2.0/mlflow-artifacts/artifacts/",)


class _Limits:
    """ASGI middleware: bodies over the limit are refused with 413 (declared or counted),
    and each request's route and status are counted for ``/metrics``."""

    def __init__(self, app: ASGIApp, observe: Any) -> None:
        self.app, self.observe = app, observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        limit = None if path.startswith(_LARGE_BODIES) else MAX_BODY
        status = {"code": 500}
        receiving: Any = receive
        if limit is not None:
            for name, value in scope.get("headers", []):
                if name == b"content-length" and value.isdigit() and int(value) > limit:
                    answer = json_response(
                        {
                            "error_code": "REQUEST_TOO_LARGE",
                            "message": f"the body is over {limit:,} bytes",
                        },
                        413,
                    )
                    await answer(scope, receive, send)
                    self.observe("too_large", 413, started)
                    return
            seen = 0

            async def counted() -> Any:
                nonlocal seen
                message = await receive()
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ApiError(413, "REQUEST_TOO_LARGE", f"the body is over {limit:,} bytes")
                return message

            receiving = counted

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


def create_server_app(ws: Workspace) -> FastAPI:
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from headrace.errors import HeadraceError
    from headrace.server.mlflow_api import mlflow_routes
    from headrace.store.governance import GovernanceError

    gate = Gate(ws)
    governance = ws.store.governance
    registry = CollectorRegistry()
    requests = Counter(
        "headrace_api_requests", "API requests", ["route", "status"], registry=registry
    )
    latency = Histogram("headrace_api_seconds", "API latency", ["route"], registry=registry)

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
    )
    app.state.gate = gate

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return json_response(error.payload(), error.status)

    @app.exception_handler(GovernanceError)
    async def governance_error(request: Request, exc: GovernanceError) -> Response:
        status = 409 if "exists" in str(exc) else 400
        code = "CONFLICT" if status == 409 else "BAD_REQUEST"
        return json_response({"error_code": code, "message": str(exc)}, status)

    @app.exception_handler(HeadraceError)
    async def headrace_error(request: Request, exc: HeadraceError) -> Response:
        status = 404 if "NotFound" in type(exc).__name__ else 400
        code = "NOT_FOUND" if status == 404 else "BAD_REQUEST"
        return json_response({"error_code": code, "message": str(exc)}, status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                problems.append(f"the body is not valid JSON: {e.get('ctx', {}).get('error')}")
            else:
                where = ".".join(str(p) for p in e.get("loc", ()))
                problems.append(f"{where}: {e.get('msg')}")
        message = "; ".join(problems) or "invalid request"
        route = request.scope.get("route")
        action = (getattr(route, "openapi_extra", None) or {}).get("x-audit-action")
        if action is not None:
            try:
                who = gate.principal(request)
            except ApiError as error:
                return json_response(error.payload(), error.status)
            gate.record(who, action, request.url.path, "failed", {"error": message[:2000]})
        return json_response({"error_code": "BAD_REQUEST", "message": message}, 400)

    prefix = "/api/v1"
    errors: dict[int | str, dict[str, Any]] = {
        401: {"description": "No token, or a token that is not valid"},
        403: {"description": "The role lacks the permission (named in the answer)"},
    }

    @app.get(f"{prefix}/health", tags=["service"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

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
    def list_principals(request: Request, who: Caller) -> Response:
        gate.require(who, "manage_principals")
        limit, offset = paging(request)
        page, following = page_of(governance.principals(), limit, offset)
        return json_response(
            {
                "principals": [
                    {"name": p.name, "kind": p.kind, "roles": p.grants, "disabled": p.disabled}
                    for p in page
                ],
                "next_page_token": following,
            }
        )

    @app.post(
        f"{prefix}/principals",
        tags=["governance"],
        status_code=201,
        responses=errors,
        openapi_extra={"x-audit-action": "principal.create"},
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
            token = governance.issue_token(body.name, actor=who.name)
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

    @app.get(f"{prefix}/audit", tags=["governance"], responses=errors)
    def audit(request: Request, who: Caller) -> Response:
        gate.require(who, "manage_principals")
        limit, after = paging(request)
        entries = governance.audit(limit=limit, after=after)
        return json_response(
            {
                "entries": [e.__dict__ for e in entries],
                "next_page_token": str(entries[-1].seq) if len(entries) == limit else None,
            }
        )

    @app.get(f"{prefix}/audit/verify", tags=["governance"], responses=errors)
    def verify(who: Caller) -> Response:
        gate.require(who, "manage_principals")
        checked, problem = governance.verify()
        return json_response({"checked": checked, "intact": problem is None, "problem": problem})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from starlette.responses import Response as Plain

        return Plain(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    for route in mlflow_routes(ws, gate):
        app.router.routes.append(route)
    app.add_middleware(_Limits, observe=observe)
    return app
