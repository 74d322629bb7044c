"""How headrace's HTTP servers (``headrace server``, ``headrace serve``) listen: over TLS
when given a certificate and key, and draining on SIGTERM instead of resetting requests.

Drain: uvicorn handles SIGTERM by closing its listeners, then asking every open
connection to shut down: a busy one finishes its response, an idle keep-alive one is
closed at once, so a request the client has just written to it is lost (the client sees
a reset). The protocol classes here keep an idle connection open for
:data:`DRAIN_IDLE_SECONDS` instead, and a gate in front of the application answers any
request arriving once shutdown has begun with 503 and ``Connection: close``. uvicorn's
graceful timeout still bounds the whole wait.

This module loads uvicorn; only the commands that listen import it.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from headrace.errors import HeadraceError
from headrace.workspace.settings import Settings

#: How long a keep-alive connection idle when shutdown begins stays open for a request
#: already on its way (answered 503), before it is closed.
DRAIN_IDLE_SECONDS = 1.0
#: The longest wait for requests in flight before they are cancelled.
GRACEFUL_SECONDS = 30


class TLSConfigError(HeadraceError):
    """The TLS certificate or key of a server is missing, unreadable or does not match."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, kw_only=True)
class TLSFiles:
    """A PEM certificate chain and its private key, checked to load together."""

    cert: Path
    key: Path


def tls_files(cert: str | None, key: str | None, settings: Settings) -> TLSFiles | None:
    """The certificate and key to listen with (None: plain HTTP): the options, else the
    settings (``[server] tls_cert``/``tls_key``, ``HEADRACE_TLS_CERT``/``_KEY``); relative
    paths are to the workspace. Loaded once to check them: a bad pair fails at start."""
    names = {
        "cert": "--tls-cert" if cert else "[server] tls_cert (HEADRACE_TLS_CERT)",
        "key": "--tls-key" if key else "[server] tls_key (HEADRACE_TLS_KEY)",
    }
    cert, key = cert or settings.tls_cert, key or settings.tls_key
    if not cert and not key:
        return None
    if not cert or not key:
        given, missing = ("cert", "key") if not key else ("key", "cert")
        raise TLSConfigError(
            f"{names[given]} is set but no {missing} is: TLS needs both the certificate "
            f"chain and its private key (PEM files); give --tls-{missing} (or [server] "
            f"tls_{missing}) too, or neither",
            field=f"--tls-{missing}",
        )
    root = settings.root
    files = TLSFiles(cert=(root / cert).resolve(), key=(root / key).resolve())
    for which, path in (("cert", files.cert), ("key", files.key)):
        if not path.is_file():
            raise TLSConfigError(
                f"{names[which]} {path}: no such file; give the path of a PEM file",
                field=names[which],
            )
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(
            f"{names['cert']} {files.cert} with {names['key']} {files.key} cannot be loaded "
            f"({exc}); give a PEM certificate chain and the PEM private key that matches it",
            field=names["cert"],
        ) from exc
    return files


def listen(
    app: str, *, host: str, port: int, workers: int, tls: TLSFiles | None, **extra: Any
) -> None:
    """Run the ASGI application factory ``app`` under uvicorn until SIGTERM or SIGINT."""
    import uvicorn

    config = uvicorn.Config(
        app,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=f"{__name__}:{_protocol_name()}",
        ssl_certfile=str(tls.cert) if tls else None,
        ssl_keyfile=str(tls.key) if tls else None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        **extra,
    )
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            raise SystemExit(3)  # uvicorn's code for a server that failed to start
        return
    _supervisor()(config, sockets=[config.bind_socket()]).run()


def _supervisor() -> type[Any]:
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        """uvicorn's worker supervisor, letting go of the listening socket on SIGTERM."""

        def terminate_all(self) -> None:
            # The workers close their copies of the socket when they begin to drain; the
            # parent's copy would keep it listening, so new connections would queue in
            # the backlog, unanswered, until reset. Closed, they are refused at once.
            for sock in self.sockets:
                sock.close()
            super().terminate_all()

    return Supervisor


def _protocol_name() -> str:
    try:
        import httptools  # noqa: F401 - uvicorn's faster parser, when installed
    except ImportError:
        return DrainingH11Protocol.__name__
    return "DrainingHttpToolsProtocol"


class _Draining:
    """Once shutdown has begun (the process-wide flag), what arrives is answered 503."""

    started = False


async def _refuse(scope: Any, receive: Any, send: Any) -> None:
    body = json.dumps(
        {
            "error_code": "SERVER_SHUTTING_DOWN",
            "message": "this server is shutting down and takes no new requests; "
            "send the request again (to another instance)",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _DrainGate:
    """ASGI: requests pass to the application until shutdown begins, then get 503."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and _Draining.started:
            await _refuse(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _DrainOnShutdown:
    """Mixed into a uvicorn HTTP protocol: drains its connection instead of closing it."""

    # what the uvicorn protocol provides
    app: Any
    cycle: Any
    transport: Any
    loop: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = _DrainGate(self.app)

    def shutdown(self) -> None:
        # uvicorn calls this on each open connection once its listeners are closed.
        _Draining.started = True
        if self.cycle is None or self.cycle.response_complete:
            self.loop.call_later(DRAIN_IDLE_SECONDS, self._close_if_idle)
        else:  # busy: the response in flight completes, with Connection: close
            self.cycle.keep_alive = False

    def _close_if_idle(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            super().shutdown()  # type: ignore[misc]
        # else a request arrived: its 503 carries Connection: close, which closes it


class DrainingH11Protocol(_DrainOnShutdown, H11Protocol):
    """uvicorn's h11 protocol, draining on shutdown."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is optional for uvicorn
    pass
else:

    class DrainingHttpToolsProtocol(_DrainOnShutdown, HttpToolsProtocol):
        """uvicorn's httptools protocol, draining on shutdown."""


__all__ = ["DRAIN_IDLE_SECONDS", "TLSConfigError", "TLSFiles", "listen", "tls_files"]
