"""What every route of the team server shares: who is calling (bearer tokens, cached
briefly), what they may do (roles per namespace), the audit of mutating calls, errors as
JSON, bounded bodies and pages of lists.

A token is checked against the store at most once per :data:`TOKEN_TTL` seconds per
process: a token revoked (or a principal disabled) through this process stops working at
once, through another process within that time. While the store is unreachable, a token
checked in the last 15 minutes still works (:mod:`headrace.server.outage`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from headrace.core.governance import AccessDenied, allows

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from starlette.requests import Request
    from starlette.responses import Response

    from headrace.runtime.workspace import Workspace
    from headrace.store.governance import Principal

log = logging.getLogger("headrace.server")

MAX_BODY = 1024 * 1024
MAX_LIMIT = 1000
TOKEN_TTL = 10.0


class ApiError(Exception):
    """An answer other than success: the status, a stable code, a message naming the
    field or object at fault, and any extra fields for the JSON body."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.audited = False  # recorded in the audit log already
        self.headers: dict[str, str] = {}  # extra response headers (Retry-After)

    def payload(self) -> dict[str, Any]:
        return {"error_code": self.code, "message": self.message, **self.extra}


def failure(exc: BaseException) -> str:
    """What the audit log says about a call that raised ``exc``: its message, or for a
    store outage one line saying so (not the driver's echo of the statement)."""
    from headrace.store.availability import describe
    from headrace.store.failures import is_unreachable

    if isinstance(exc, ApiError):
        return exc.message
    if is_unreachable(exc):
        return f"the metadata store was unreachable ({describe(exc)})"
    return str(exc)


def bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(400, "BAD_REQUEST", message, **extra)


def finite(value: float) -> float | str:
    """A float for protobuf JSON: NaN and the infinities as the strings it uses."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """JSON by orjson (non-finite floats become null: write them with :func:`finite`
    where a client expects protobuf JSON)."""
    import orjson
    from starlette.responses import Response as Plain

    body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS, default=str)
    return Plain(body, status_code=status, media_type="application/json", headers=headers)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The raw body, refused (413) past ``limit`` bytes, declared or streamed."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "REQUEST_TOO_LARGE", f"the body is over {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "REQUEST_TOO_LARGE", f"the body is over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def spool_upload(blobs: Any, request: Request, limit: int) -> tuple[str, int]:
    """Stream a request's body to a spool file (refused with 413 past ``limit`` bytes)
    and move it into the blob store; (digest, size). Nothing is left behind on refusal."""
    import os
    import tempfile
    from pathlib import Path

    handle, spool = tempfile.mkstemp(prefix="hr-upload-")
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "REQUEST_TOO_LARGE", f"an upload is at most {limit:,} B")
                out.write(chunk)
        digest: str = blobs.put_file(Path(spool), move=True)
    finally:
        if os.path.exists(spool):
            os.unlink(spool)
    return digest, size


async def json_body(request: Request) -> dict[str, Any]:
    raw = await read_body(request)
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object")
    return data


def page_of(items: list[Any], limit: int, offset: int) -> tuple[list[Any], str | None]:
    """One page of an in-memory list and the token of the next (None at the end)."""
    following = offset + limit
    return items[offset:following], (str(following) if following < len(items) else None)


class Gate:
    """Authentication, authorisation and audit for one server process."""

    def __init__(self, ws: Workspace) -> None:
        from headrace.server.auth_failures import FailedAuthLedger

        self.ws = ws
        self.governance = ws.store.governance
        #: Failed authentications, audited in aggregate (a flood cannot fill the disk).
        self.failures = FailedAuthLedger(self._record_failure)
        #: Grants in this namespace apply here, beside those everywhere: the project's.
        self.namespace = ws.settings.project_name
        self._tokens: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()
        from headrace.server.outage import StoreOutage

        #: the store's reachability, and audit entries waiting for it
        self.outage = StoreOutage(ws)

    def principal(self, request: Request) -> Principal:
        """The caller, from ``Authorization: Bearer <token>`` (401 without a valid one)."""
        from headrace.store.governance import InvalidToken

        header = request.headers.get("authorization") or ""
        scheme, _, token = header.partition(" ")
        token = token.strip()
        source = request.client.host if request.client is not None else "unknown"
        bearer = scheme.lower() == "bearer" and bool(token)
        now = time.monotonic()
        with self._lock:
            cached = self._tokens.get(token) if bearer else None
        if cached is not None and now - cached[1] < TOKEN_TTL:
            return cached[0]
        # a throttled source may still present a token this process has verified
        # before (checked against the store again): guessers cannot know one
        wait = self.failures.throttled(source) if cached is None else None
        if wait is not None:
            self.failures.failed(source, "throttled")
            seconds = max(math.ceil(wait), 1)
            refused = ApiError(
                429,
                "TOO_MANY_FAILED_AUTHENTICATIONS",
                f"{source} failed to authenticate {self.failures.limit} times within "
                f"{self.failures.window:g} s; try again in {seconds} s with a valid token",
                retry_after=seconds,
            )
            refused.headers["Retry-After"] = str(seconds)
            raise refused
        if not bearer:
            self.failures.failed(source, "missing")
            raise ApiError(401, "UNAUTHENTICATED", "send Authorization: Bearer <token>")
        try:
            principal = self.governance.authenticate(token)
        except InvalidToken as exc:
            with self._lock:
                self._tokens.pop(token, None)
            self.failures.failed(source, exc.reason, exc.token_id)
            raise ApiError(401, "UNAUTHENTICATED", str(exc)) from exc
        except Exception as exc:
            from headrace.server.outage import TOKEN_OUTAGE_TTL
            from headrace.store.failures import is_unreachable

            if not is_unreachable(exc):
                raise
            if cached is not None and now - cached[1] < TOKEN_OUTAGE_TTL:
                return cached[0]  # seen lately: the outage does not lock its owner out
            raise self.outage.unavailable(exc) from exc
        with self._lock:
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[token] = (principal, now)
        return principal

    def _record_failure(
        self, actor: str, action: str, target: str | None, outcome: str, details: dict[str, Any]
    ) -> None:
        try:
            self.governance.record(actor, action, target, outcome, details)
        except Exception as exc:
            from headrace.store.failures import is_unreachable

            if is_unreachable(exc):  # written once the store is back, like any entry
                self.outage.defer(actor, action, target, outcome, details)
                return
            # the refusal stands whether or not its record could be written
            log.exception("a failed authentication could not be audited")

    def forget(self) -> None:
        """Drop every cached token (after a revocation, a disable or a grant)."""
        with self._lock:
            self._tokens.clear()

    def require(self, principal: Principal, permission: str, namespace: str | None = None) -> None:
        """403 unless the principal's role here (granted everywhere, or in this server's
        project namespace) carries ``permission``."""
        namespace = self.namespace if namespace is None else namespace
        if not allows(principal.role(namespace), permission):
            denied = AccessDenied(principal.name, permission, namespace)
            raise ApiError(
                403,
                "PERMISSION_DENIED",
                str(denied),
                permission=permission,
                role=denied.role,
                namespace=namespace,
            )

    def record(
        self,
        principal: Principal | None,
        action: str,
        target: str | None,
        outcome: str,
        details: dict[str, Any] | None = None,
        connection: Connection | None = None,
    ) -> None:
        actor = principal.name if principal is not None else "anonymous"
        if connection is not None:
            self.governance.append(connection, actor, action, target, outcome, details or {})
            return
        try:
            self.governance.record(actor, action, target, outcome, details)
        except Exception as exc:
            from headrace.store.failures import is_unreachable

            if not is_unreachable(exc):
                raise
            # written once the store is back (or counted as dropped), never lost silently
            self.outage.defer(actor, action, target, outcome, details or {})

    @contextmanager
    def audited(
        self,
        principal: Principal,
        action: str,
        target: str | None,
        permission: str,
        namespace: str | None = None,
    ) -> Iterator[AuditTicket]:
        """Authorise, run the body, and record the outcome (ok, denied or failed).

        A body that writes in one transaction calls ``ticket.write(connection)`` so the
        action and its ``ok`` entry commit together; otherwise ``ok`` is recorded after
        the body returns. Refusals and failures are recorded here.
        """
        try:
            self.require(principal, permission, namespace)
        except ApiError as denied:
            self.record(principal, action, target, "denied", {"error": denied.message})
            denied.audited = True
            raise
        ticket = AuditTicket(self, principal, action, target)
        try:
            yield ticket
        except Exception as exc:
            message = failure(exc)
            self.record(principal, action, target, "failed", {"error": message[:2000]})
            exc.audited = True  # type: ignore[attr-defined]
            raise
        if not ticket.written:
            self.record(principal, action, target, "ok", ticket.details)


class AuditTicket:
    """The pending ``ok`` entry of one audited call."""

    def __init__(self, gate: Gate, principal: Principal, action: str, target: str | None) -> None:
        self.gate, self.principal, self.action, self.target = gate, principal, action, target
        self.details: dict[str, Any] = {}
        self.written = False

    def write(self, connection: Connection) -> None:
        self.gate.record(self.principal, self.action, self.target, "ok", self.details, connection)
        self.written = True
