"""The team server's HTTP API (``headrace server``): a first slice of issue 8.

Every ``/api/v1`` route but ``health`` and ``ready`` takes ``Authorization: Bearer
<token>``: no token or a bad one is a 401; a principal whose role lacks the route's
permission gets a 403 naming the permission and the least role that carries it. A
mutating call is authorised before it touches anything and written to the audit log
with its outcome (``ok``, ``denied``, ``failed``). Lists are paged (``limit`` up to
1,000 and a ``page_token``); bodies are limited to 1 MiB. ``/metrics`` is Prometheus.

Routes so far: ``GET /api/v1/health``, ``GET /api/v1/ready``, ``GET /api/v1/whoami``,
``GET|POST /api/v1/principals``, ``GET /api/v1/audit``, ``GET /api/v1/audit/verify``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from headrace.core.governance import EVERYWHERE, AccessDenied, allows

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from headrace.runtime.workspace import Workspace
    from headrace.store.governance import Principal

MAX_BODY = 1024 * 1024
MAX_LIMIT = 1000


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _json(payload: Any, status: int = 200) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse(payload, status_code=status)


def create_server_app(ws: Workspace) -> Starlette:
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from starlette.applications import Starlette
    from starlette.routing import Route

    from headrace.store.governance import GovernanceError, InvalidToken

    governance = ws.store.governance
    registry = CollectorRegistry()
    requests = Counter(
        "headrace_api_requests", "API requests", ["route", "status"], registry=registry
    )
    latency = Histogram("headrace_api_seconds", "API latency", ["route"], registry=registry)

    def principal_of(request: Request) -> Principal:
        header = request.headers.get("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "UNAUTHENTICATED", "send Authorization: Bearer <token>")
        try:
            return governance.authenticate(token.strip())
        except InvalidToken as exc:
            raise ApiError(401, "UNAUTHENTICATED", str(exc)) from exc

    def require(principal: Principal, permission: str, namespace: str = EVERYWHERE) -> None:
        if not allows(principal.role(namespace), permission):
            denied = AccessDenied(principal.name, permission, namespace)
            raise ApiError(
                403, "PERMISSION_DENIED", str(denied), permission=permission, role=denied.role
            )

    async def body_of(request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY:
            raise ApiError(413, "REQUEST_TOO_LARGE", f"the body is over {MAX_BODY:,} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise ApiError(413, "REQUEST_TOO_LARGE", f"the body is over {MAX_BODY:,} bytes")
            chunks.append(chunk)
        try:
            data = json.loads(b"".join(chunks) or b"{}")
        except ValueError as exc:
            raise ApiError(400, "BAD_REQUEST", f"the body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "BAD_REQUEST", "the body must be a JSON object")
        return data

    def paging(request: Request) -> tuple[int, int]:
        raw_limit = request.query_params.get("limit", "100")
        raw_token = request.query_params.get("page_token", "0")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise ApiError(400, "BAD_REQUEST", f"limit must be 1 to {MAX_LIMIT}", field="limit")
        if not raw_token.isdigit():
            raise ApiError(400, "BAD_REQUEST", "page_token is not valid", field="page_token")
        return int(raw_limit), int(raw_token)

    def route(name: str, handler: Any, *, mutating: str | None = None) -> Any:
        """Wrap a handler: errors as JSON, metrics, and for a mutating route the audit."""

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            actor = "anonymous"
            try:
                principal = None if name in ("health", "ready") else principal_of(request)
                actor = principal.name if principal else actor
                response: Response = await handler(request, principal)
                if mutating:
                    governance.record(actor, mutating, request.url.path, "ok")
            except ApiError as error:
                if mutating and error.status in (403, 400, 409, 413):
                    outcome = "denied" if error.status == 403 else "failed"
                    governance.record(
                        actor, mutating, request.url.path, outcome, {"error": error.message}
                    )
                response = _json(
                    {"error_code": error.code, "message": error.message, **error.extra},
                    error.status,
                )
            except GovernanceError as exc:
                status = 409 if "exists" in str(exc) else 400
                if mutating:
                    governance.record(
                        actor, mutating, request.url.path, "failed", {"error": str(exc)}
                    )
                response = _json(
                    {
                        "error_code": "CONFLICT" if status == 409 else "BAD_REQUEST",
                        "message": str(exc),
                    },
                    status,
                )
            requests.labels(name, str(response.status_code)).inc()
            latency.labels(name).observe(time.perf_counter() - started)
            return response

        return endpoint

    async def health(request: Request, principal: Any) -> Response:
        return _json({"status": "ok"})

    async def ready(request: Request, principal: Any) -> Response:
        from sqlalchemy import text

        try:
            with ws.store.read() as c:
                c.execute(text("SELECT 1"))
        except Exception as exc:
            return _json({"status": "not ready", "reason": str(exc)}, 503)
        return _json({"status": "ready"})

    async def whoami(request: Request, principal: Principal) -> Response:
        return _json({"name": principal.name, "kind": principal.kind, "roles": principal.grants})

    async def list_principals(request: Request, principal: Principal) -> Response:
        require(principal, "manage_principals")
        limit, offset = paging(request)
        everyone = governance.principals()
        page = everyone[offset : offset + limit]
        following = offset + limit if offset + limit < len(everyone) else None
        return _json(
            {
                "principals": [
                    {"name": p.name, "kind": p.kind, "roles": p.grants, "disabled": p.disabled}
                    for p in page
                ],
                "next_page_token": None if following is None else str(following),
            }
        )

    async def create_principal(request: Request, principal: Principal) -> Response:
        require(principal, "manage_principals")
        data = await body_of(request)
        name, kind = data.get("name"), data.get("kind", "person")
        role, namespace = data.get("role", "viewer"), data.get("namespace", EVERYWHERE)
        if not isinstance(name, str):
            raise ApiError(400, "BAD_REQUEST", "name is required (a string)", field="name")
        from headrace.core.errors import DefinitionError

        try:
            governance.create_principal(
                name, kind=kind, role=role, namespace=namespace, actor=principal.name
            )
        except DefinitionError as exc:
            raise ApiError(400, "BAD_REQUEST", str(exc)) from exc
        token = governance.issue_token(name, actor=principal.name)
        return _json(
            {"name": name, "kind": kind, "role": role, "namespace": namespace, "token": token}, 201
        )

    async def audit(request: Request, principal: Principal) -> Response:
        require(principal, "manage_principals")
        limit, after = paging(request)
        entries = governance.audit(limit=limit, after=after)
        return _json(
            {
                "entries": [e.__dict__ for e in entries],
                "next_page_token": str(entries[-1].seq) if len(entries) == limit else None,
            }
        )

    async def verify(request: Request, principal: Principal) -> Response:
        require(principal, "manage_principals")
        checked, problem = governance.verify()
        return _json({"checked": checked, "intact": problem is None, "problem": problem})

    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from starlette.responses import Response as Plain

        return Plain(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    create = route("principals", create_principal, mutating="principal.create")
    listing = route("principals", list_principals)

    async def principals_route(request: Request) -> Response:
        chosen = create if request.method == "POST" else listing
        answer: Response = await chosen(request)
        return answer

    return Starlette(
        routes=[
            Route("/api/v1/health", route("health", health), methods=["GET"]),
            Route("/api/v1/ready", route("ready", ready), methods=["GET"]),
            Route("/api/v1/whoami", route("whoami", whoami), methods=["GET"]),
            Route("/api/v1/principals", principals_route, methods=["GET", "POST"]),
            Route("/api/v1/audit", route("audit", audit), methods=["GET"]),
            Route("/api/v1/audit/verify", route("verify", verify), methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )
