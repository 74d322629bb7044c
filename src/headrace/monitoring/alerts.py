"""Delivering a monitor's alert: a signed webhook, an e-mail, or the log.

``deliver`` never raises for a failed delivery: the returned :class:`Delivery` says
whether it worked and why not, and the monitor stores it with the alert.

Webhooks POST the alert as JSON. With a secret (read from the environment variable the
action names), the request carries ``X-Headrace-Timestamp`` (UNIX seconds) and
``X-Headrace-Signature: sha256=<hex>``, the HMAC-SHA256 of ``"<timestamp>." + body``
under the secret. Signing the timestamp with the body lets a receiver refuse a replayed
request: :func:`verify_signature` checks both, in constant time. Connection errors and
5xx answers are retried twice (after 0.2 s and 0.5 s); a 4xx is not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from headrace.core.monitors import Action

log = logging.getLogger("headrace.monitoring")
_BACKOFF = (0.2, 0.5)


@dataclass(frozen=True)
class Delivery:
    action: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` signs ``timestamp`` and ``body`` under ``secret``, and the
    timestamp is within ``tolerance`` seconds of now (a replay is refused)."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def deliver(action: Action, alert: Mapping[str, Any]) -> Delivery:
    """Send ``alert`` through ``action`` (webhook, email or log)."""
    if action.kind == "webhook":
        return _webhook(action.options, alert)
    if action.kind == "email":
        return _email(action.options, alert)
    if action.kind == "log":
        level = getattr(logging, str(action.options.get("level", "warning")).upper())
        log.log(level, "%s\n%s", alert.get("title"), alert.get("message"))
        return Delivery("log", True, f"logged at {action.options.get('level', 'warning')}")
    raise ValueError(f"{action.kind!r} is not an alert delivery (webhook, email or log)")


def _secret(name: str | None) -> tuple[str | None, str | None]:
    """(secret, problem): the value of the environment variable ``name``."""
    if not name:
        return None, None
    value = os.environ.get(name)
    if not value:
        return None, f"the environment variable {name} (the secret) is not set"
    return value, None


def _webhook(options: Mapping[str, Any], alert: Mapping[str, Any]) -> Delivery:
    import urllib.error
    import urllib.request

    url = str(options["url"])
    secret, problem = _secret(options.get("secret_env"))
    if problem:
        return Delivery("webhook", False, f"not sent to {url}: {problem}")
    body = json.dumps(alert, sort_keys=True, default=str).encode()
    attempt, started = 0, time.perf_counter()
    while True:
        attempt += 1
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "headrace",
            "X-Headrace-Event": "alert",
            "X-Headrace-Delivery": str(alert.get("id", "")),
            "X-Headrace-Timestamp": timestamp,
        }
        if secret is not None:
            headers["X-Headrace-Signature"] = sign(secret, timestamp, body)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        retry = False
        try:
            with urllib.request.urlopen(request, timeout=float(options.get("timeout", 10))) as r:
                took = (time.perf_counter() - started) * 1000
                return Delivery("webhook", True, f"POST {url} -> {r.status} in {took:.0f} ms")
        except urllib.error.HTTPError as answer:
            text = answer.read()[:200].decode(errors="replace")
            detail = f"POST {url} -> {answer.code}: {text}"
            retry = answer.code >= 500
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            detail = f"POST {url} failed: {reason}"
            retry = True
        if not retry or attempt > len(_BACKOFF):
            return Delivery("webhook", False, f"{detail} (attempt {attempt})")
        time.sleep(_BACKOFF[attempt - 1])


def _email(options: Mapping[str, Any], alert: Mapping[str, Any]) -> Delivery:
    import smtplib
    from email.message import EmailMessage

    host, port = str(options["host"]), int(options["port"])
    username, problem = _secret(options.get("username_env"))
    password, problem2 = _secret(options.get("password_env"))
    if problem or problem2:
        return Delivery("email", False, f"not sent: {problem or problem2}")
    message = EmailMessage()
    message["Subject"] = f"[headrace] {alert.get('title')}"
    message["From"] = str(options["sender"])
    message["To"] = ", ".join(options["to"])
    window = alert.get("window") or {}
    message.set_content(
        f"{alert.get('message')}\n\n--\nmonitor {alert.get('monitor')}, "
        f"window of {window.get('rows', '?')} predictions, alert {alert.get('id')}\n"
    )
    message.add_attachment(
        json.dumps(alert, sort_keys=True, indent=1, default=str).encode(),
        maintype="application",
        subtype="json",
        filename="alert.json",
    )
    try:
        with smtplib.SMTP(host, port, timeout=float(options.get("timeout", 10))) as smtp:
            if options.get("starttls"):
                smtp.starttls()
            if username is not None or password is not None:
                smtp.login(username or "", password or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        return Delivery("email", False, f"not sent via {host}:{port}: {exc}")
    return Delivery("email", True, f"sent to {', '.join(options['to'])} via {host}:{port}")
