"""Delivering a monitor's alert: a webhook, an e-mail, or headrace's log.

:func:`deliver` sends one alert through one action. It never raises because a delivery
failed: the :class:`Delivery` it returns says whether it worked and what happened (the
monitor stores it with the alert; ``headrace monitor run`` prints it). Only an action
that is not an alert delivery at all, such as ``retrain``, is a ``ValueError``.

Webhook
    The alert is POSTed as JSON (``Content-Type: application/json``) with the headers
    ``X-Headrace-Event: alert``, ``X-Headrace-Delivery: <alert id>`` (the same on every
    attempt, so a receiver can drop a duplicate) and ``X-Headrace-Timestamp: <UNIX
    seconds>``. When the action names ``secret_env``, the secret is read from that
    environment variable when the alert is sent (a missing or empty variable fails the
    delivery and nothing is sent), and ``X-Headrace-Signature: sha256=<hex>`` carries the
    HMAC-SHA256, under the secret, of ``b"<timestamp>." + body``. Signing the timestamp
    with the body lets a receiver refuse a captured request replayed later: it checks the
    signature *and* that the timestamp is recent, which :func:`verify_signature` does
    (comparing in constant time).

    A connection error, a timeout or a 5xx answer is retried, 3 attempts in all (after
    0.2 s, then 0.5 s); a 4xx is the receiver refusing the alert and is not retried.
    Redirects are not followed (a redirected POST arrives as a GET, without the alert), so
    a 3xx is a failed delivery too. Proxies set in the usual environment variables
    (``https_proxy``, ``no_proxy``) apply. The detail shows the URL's scheme, host and
    port only: the path or query of a webhook URL often is its token.

E-mail
    A text message with the subject ``[headrace] <title>``, the alert's message and a
    footer (monitor, window, alert id), and the whole alert attached as ``alert.json``.
    With ``starttls`` the SMTP connection is upgraded first, verifying the server's
    certificate. With ``password_env``, headrace logs in as the user named in
    ``username_env`` (or as the sender's address when there is none); both are read from
    the environment when the alert is sent. Without ``starttls`` the password crosses the
    network in the clear: log in that way only to a server on the same host or network.

Log
    The title and the message go to the ``headrace.monitoring`` logger at the action's
    level.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import math
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.utils import formatdate, make_msgid, parseaddr
from typing import IO, Any

from headrace.core.monitors import Action

log = logging.getLogger("headrace.monitoring")

#: the pauses before a webhook's second and third attempts
RETRY_BACKOFF = (0.2, 0.5)
#: seconds a webhook or SMTP server may take when the action gives no timeout
DEFAULT_TIMEOUT = 10.0
#: characters of a refusing webhook's answer kept in the delivery's detail
ANSWER_CHARS = 200

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending one alert through one action."""

    action: str  # webhook | email | log
    ok: bool
    #: what happened: ``"POST https://hooks.example.com/... -> 200 in 12 ms"``,
    #: ``"sent to a@example.com via smtp.example.com:587"``, or why it failed
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "ok": self.ok, "detail": self.detail}


def deliver(action: Action, alert: Mapping[str, Any]) -> Delivery:
    """Send ``alert`` (a JSON-able mapping: ``id``, ``monitor``, ``title``, ``message``,
    ``window``, ...) through ``action``, a webhook, e-mail or log action.

    Never raises for a failed delivery: the returned :class:`Delivery` has ``ok=False``
    and says why. Raises ``ValueError`` for an action that is not delivered as an alert
    (``retrain``, or a kind it does not know).
    """
    channel = _CHANNELS.get(action.kind)
    if channel is None:
        raise ValueError(
            f"deliver(): a {action.kind!r} action is not an alert delivery; "
            f"expected one of {', '.join(_CHANNELS)}"
        )
    try:
        return channel(action.options, alert)
    except Exception as exc:  # an unexpected failure is the delivery's, not the monitor's
        log.exception("delivering alert %s through %s failed", alert.get("id"), action.kind)
        return Delivery(action.kind, False, f"failed: {type(exc).__name__}: {exc}")


# -- webhook signatures -----------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Headrace-Signature`` value of ``body`` sent at ``timestamp``:
    ``"sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body))``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """For a webhook's receiver: whether ``signature`` (the ``X-Headrace-Signature``
    header) signs ``timestamp`` (the ``X-Headrace-Timestamp`` header) and ``body`` (the
    request's raw body, before any parsing) under ``secret``, and the timestamp is within
    ``tolerance`` seconds of ``now`` (by default the clock), so that a request replayed
    later is refused. The signature is compared in constant time. An empty secret
    verifies nothing: anyone can sign with it."""
    if not secret:
        return False
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if not math.isfinite(sent):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    expected = sign(secret, timestamp, body).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


# -- webhook ------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Answers a redirect with its own error instead of following it."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, with ``/...`` when it has more (a path
    or query, often the webhook's token); None when ``url`` is not an http(s) URL."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    return shown + ("/..." if parts.path.strip("/") or parts.query else "/")


def _timeout(options: Mapping[str, Any]) -> float:
    try:
        timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT
    return timeout if timeout > 0 else DEFAULT_TIMEOUT


def _post(
    opener: urllib.request.OpenerDirector, request: urllib.request.Request, timeout: float
) -> tuple[int | None, str]:
    """One attempt: (the answer's status, or None when there was none; the first
    characters of a refusing answer's body, or why there was no answer)."""
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status), ""
    except urllib.error.HTTPError as answer:  # a non-2xx answer
        try:
            text = answer.read(16 * ANSWER_CHARS).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            text = ""
        finally:
            answer.close()
        return answer.code, " ".join(text.split())[:ANSWER_CHARS]
    except urllib.error.URLError as exc:  # no connection
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return None, f"no answer within {timeout:g} s"
        return None, str(reason)
    except TimeoutError:
        return None, f"no answer within {timeout:g} s"
    except (OSError, http.client.HTTPException, ValueError) as exc:  # a broken answer
        return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _webhook(options: Mapping[str, Any], alert: Mapping[str, Any]) -> Delivery:
    url = options.get("url")
    shown = _origin(url) if isinstance(url, str) else None
    if not isinstance(url, str) or shown is None:
        return Delivery("webhook", False, "not sent: the action's url is not an http(s) URL")
    secret: str | None = None
    secret_env = options.get("secret_env")
    if secret_env:
        secret = os.environ.get(str(secret_env))
        if not secret:
            return Delivery(
                "webhook",
                False,
                f"not sent to {shown}: the environment variable {secret_env} (the webhook's "
                "signing secret) is not set or is empty",
            )
    body = json.dumps(alert, sort_keys=True, default=str).encode("utf-8")
    timeout = _timeout(options)
    opener = urllib.request.build_opener(_NoRedirects)
    attempts = len(RETRY_BACKOFF) + 1
    for attempt in range(1, attempts + 1):
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "headrace",
            "X-Headrace-Event": str(alert.get("event") or "alert"),
            "X-Headrace-Delivery": str(alert.get("id", "")),
            "X-Headrace-Timestamp": timestamp,
        }
        if secret is not None:
            headers["X-Headrace-Signature"] = sign(secret, timestamp, body)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        started = time.perf_counter()
        status, text = _post(opener, request, timeout)
        took = (time.perf_counter() - started) * 1000
        tries = f"attempt {attempt} of {attempts}" if attempt > 1 else ""
        if status is not None and 200 <= status < 300:
            suffix = f" ({tries})" if tries else ""
            return Delivery("webhook", True, f"POST {shown} -> {status} in {took:.0f} ms{suffix}")
        retry = status is None or status >= 500
        if not retry or attempt == attempts:
            tried = f"after {attempt} attempt{'s' if attempt > 1 else ''}"
            if status is None:
                detail = f"POST {shown} failed {tried}: {text}"
            else:
                detail = f"POST {shown} -> {status} {tried}" + (f": {text}" if text else "")
            return Delivery("webhook", False, detail)
        time.sleep(RETRY_BACKOFF[attempt - 1])
    raise AssertionError("unreachable")  # pragma: no cover


# -- e-mail -------------------------------------------------------------------------------


def _credentials(
    options: Mapping[str, Any], sender: str
) -> tuple[tuple[str, str] | None, str | None]:
    """((user, password) or None when there is no login; why they cannot be read)."""
    user_env, password_env = options.get("username_env"), options.get("password_env")
    if not user_env and not password_env:
        return None, None
    if not password_env:
        return None, f"username_env={user_env!r} is given without password_env; a login needs both"
    user = parseaddr(sender)[1] or sender
    if user_env:
        user = os.environ.get(str(user_env), "")
        if not user:
            return None, (
                f"the environment variable {user_env} (the SMTP user name) is not set or is empty"
            )
    password = os.environ.get(str(password_env), "")
    if not password:
        return None, (
            f"the environment variable {password_env} (the SMTP password) is not set or is empty"
        )
    return (user, password), None


def _when(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "?"


def _footer(alert: Mapping[str, Any]) -> str:
    if alert.get("monitor") is None and alert.get("event"):  # a run or freshness notice
        lines = [f"event: {alert.get('event')}"]
        for key in ("pipeline", "run_id", "step", "asset", "inspect"):
            if alert.get(key):
                lines.append(f"{key.replace('_', ' ')}: {alert.get(key)}")
        lines.append(f"notification: {alert.get('id')} (attached as alert.json)")
        return "\n".join(lines)
    window = alert.get("window")
    if isinstance(window, Mapping):
        rows = window.get("rows")
        counted = f", {rows:,} rows" if isinstance(rows, int) and not isinstance(rows, bool) else ""
        span = f"{_when(window.get('start'))} .. {_when(window.get('end'))} UTC{counted}"
    else:
        span = "?"
    return (
        f"monitor: {alert.get('monitor')}\n"
        f"window: {span}\n"
        f"alert: {alert.get('id')} (the whole alert is attached as alert.json)"
    )


def _message(alert: Mapping[str, Any], sender: str, recipients: list[str]) -> EmailMessage:
    title = " ".join(str(alert.get("title") or "alert").split())  # a header is one line
    message = EmailMessage()
    message["Subject"] = f"[headrace] {title}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "headrace"
    message["Message-ID"] = make_msgid("headrace", domain=domain)
    message.set_content(f"{alert.get('message') or ''}\n\n-- \n{_footer(alert)}\n")
    message.add_attachment(
        json.dumps(alert, sort_keys=True, indent=2, default=str).encode("utf-8"),
        maintype="application",
        subtype="json",
        filename="alert.json",
    )
    return message


def _smtp_error(exc: BaseException) -> str:
    """An SMTP error as ``"535 5.7.8 Authentication failed"`` rather than a tuple."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "every recipient was refused: " + "; ".join(
            f"{address}: {_reply(code, text)}" for address, (code, text) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _reply(code: int, text: bytes | str) -> str:
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(said.split())}".strip()


def _email(options: Mapping[str, Any], alert: Mapping[str, Any]) -> Delivery:
    host = str(options.get("host") or "localhost")
    port = int(options.get("port") or 25)
    where = f"{host}:{port}"
    to = options.get("to") or []
    recipients = [to] if isinstance(to, str) else [str(r) for r in to]
    if not recipients:
        return Delivery("email", False, f"not sent via {where}: the action has no recipients")
    sender = str(options.get("sender") or "headrace@localhost")
    credentials, problem = _credentials(options, sender)
    if problem:
        return Delivery("email", False, f"not sent via {where}: {problem}")
    try:
        message = _message(alert, sender, recipients)
    except (ValueError, TypeError) as exc:  # an address a header cannot hold
        return Delivery("email", False, f"not sent via {where}: {exc}")
    step = "connecting"
    try:
        with smtplib.SMTP(host, port, timeout=_timeout(options)) as smtp:
            if options.get("starttls"):
                step = "STARTTLS"
                smtp.starttls(context=ssl.create_default_context())
            if credentials is not None:
                step = f"logging in as {credentials[0]}"
                smtp.login(*credentials)
            step = "sending"
            refused = smtp.send_message(message, from_addr=sender, to_addrs=recipients)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        return Delivery("email", False, f"not sent via {where}: {step}: {_smtp_error(exc)}")
    accepted = [r for r in recipients if r not in refused]
    if refused:
        said = "; ".join(f"{a}: {_reply(code, text)}" for a, (code, text) in refused.items())
        return Delivery(
            "email", False, f"sent to {', '.join(accepted)} via {where}, but refused {said}"
        )
    return Delivery("email", True, f"sent to {', '.join(accepted)} via {where}")


# -- log ----------------------------------------------------------------------------------


def _log(options: Mapping[str, Any], alert: Mapping[str, Any]) -> Delivery:
    name = str(options.get("level") or "warning").lower()
    level = _LEVELS.get(name, logging.WARNING)
    log.log(level, "%s\n%s", alert.get("title"), alert.get("message"))
    return Delivery("log", True, f"logged at {logging.getLevelName(level).lower()} to {log.name}")


_CHANNELS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Delivery]] = {
    "webhook": _webhook,
    "email": _email,
    "log": _log,
}
