"""Delivering alerts to real receivers: an HTTP server on 127.0.0.1 for webhooks (signed,
retried, refused, unreachable), an SMTP server (aiosmtpd) for e-mail, with and without a
login, and the log."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from headrace.core import monitors as m
from headrace.monitoring.alerts import Delivery, deliver, verify_signature

ALERT: dict[str, Any] = {
    "id": "5f0c2a9e7d1b4c3aa0e1f2d3c4b5a697",
    "monitor": "delay_watch",
    "key": "dataset_drift",
    "title": "delay_watch: dataset drift: 60% of columns drifted (threshold 50%)",
    "message": (
        "Monitor delay_watch (model flight_delay@champion), version 3\n"
        "window 2024-05-01 00:00 .. 2024-05-02 00:00: 5,000 predictions, 0 labeled\n"
        "- dataset drift: 60% of columns drifted (threshold 50%)\n"
        "drifted columns: distance, carrier, dep_hour, Zürich µ"
    ),
    "severity": "warning",
    "model": "flight_delay",
    "version": 3,
    "window": {"start": 1714521600.0, "end": 1714608000.0, "rows": 5000},
    "results": [
        {"kind": "dataset_drift", "name": "dataset", "value": 0.6, "threshold": 0.5},
        {"kind": "feature_drift", "name": "distance", "value": 0.31, "p_value": None},
    ],
    "created_at": 1714608012.25,
}
SECRET_ENV = "HEADRACE_TEST_WEBHOOK_SECRET"


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to 127.0.0.1 must not go through a proxy set in the environment."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# -- a webhook receiver -------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: Message
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next of ``statuses`` (the last one repeats)."""

    statuses: list[int]
    answer: bytes = b"ok"
    url: str = ""
    requests: list[Received] = field(default_factory=list)


@pytest.fixture
def serve() -> Iterator[Callable[..., Receiver]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(*statuses: int, answer: bytes = b"ok", path: str = "/hooks/alerts") -> Receiver:
        receiver = Receiver(list(statuses) or [200], answer)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(Received(self.path, self.headers, body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else None
                status = status or receiver.statuses[0]
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        return receiver

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_signed_webhook_posts_the_alert_and_the_signature_verifies(
    serve: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "s3cret-for-tests")
    receiver = serve(200, path="/hooks/T0KEN-in-the-path?key=query-token")
    before = time.time()
    delivery = deliver(m.webhook(receiver.url, secret_env=SECRET_ENV, timeout=5), ALERT)

    assert isinstance(delivery, Delivery)
    assert delivery.ok, delivery.detail
    assert delivery.action == "webhook"
    assert delivery.detail.startswith(f"POST http://127.0.0.1:{receiver.url.split(':')[2][:5]}")
    assert " -> 200 in " in delivery.detail and delivery.detail.endswith(" ms")
    # the webhook's token (in its path or query) is not repeated in what is stored
    assert "T0KEN" not in delivery.detail and "query-token" not in delivery.detail
    assert delivery.to_dict() == {"action": "webhook", "ok": True, "detail": delivery.detail}

    [got] = receiver.requests
    assert got.path == "/hooks/T0KEN-in-the-path?key=query-token"
    assert json.loads(got.body.decode("utf-8")) == ALERT
    assert got.body == json.dumps(ALERT, sort_keys=True, default=str).encode("utf-8")
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == "headrace"
    assert got.headers["X-Headrace-Event"] == "alert"
    assert got.headers["X-Headrace-Delivery"] == ALERT["id"]
    timestamp = got.headers["X-Headrace-Timestamp"]
    assert int(before) <= int(timestamp) <= time.time()
    signature = got.headers["X-Headrace-Signature"]
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64

    assert verify_signature("s3cret-for-tests", timestamp, got.body, signature)
    # a changed body, another secret, a stale (or future) timestamp: refused
    changed = got.body.replace(b"dataset drift", b"dataset drifT")
    assert changed != got.body
    assert not verify_signature("s3cret-for-tests", timestamp, changed, signature)
    assert not verify_signature("another-secret", timestamp, got.body, signature)
    sent = int(timestamp)
    assert verify_signature("s3cret-for-tests", timestamp, got.body, signature, now=sent + 299)
    assert not verify_signature("s3cret-for-tests", timestamp, got.body, signature, now=sent + 301)
    assert not verify_signature(
        "s3cret-for-tests", timestamp, got.body, signature, tolerance=10, now=sent - 11
    )
    # the timestamp is signed: a replay with a fresh timestamp does not verify
    assert not verify_signature("s3cret-for-tests", str(sent + 600), got.body, signature)
    assert not verify_signature("s3cret-for-tests", "not a time", got.body, signature)
    assert not verify_signature("s3cret-for-tests", "nan", got.body, signature)
    assert not verify_signature("", timestamp, got.body, signature)
    assert not verify_signature("s3cret-for-tests", timestamp, got.body, "sha256=µ")


def test_an_unsigned_webhook_has_no_signature_header(serve: Callable[..., Receiver]) -> None:
    receiver = serve(204)
    delivery = deliver(m.webhook(receiver.url), ALERT)
    assert delivery.ok and "-> 204" in delivery.detail
    [got] = receiver.requests
    assert "X-Headrace-Signature" not in got.headers
    assert got.headers["X-Headrace-Timestamp"] and json.loads(got.body) == ALERT


def test_a_missing_secret_sends_nothing(
    serve: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = serve(200)
    action = m.webhook(receiver.url, secret_env=SECRET_ENV)
    monkeypatch.delenv(SECRET_ENV, raising=False)
    delivery = deliver(action, ALERT)
    assert not delivery.ok and SECRET_ENV in delivery.detail
    monkeypatch.setenv(SECRET_ENV, "")  # empty is missing too
    delivery = deliver(action, ALERT)
    assert not delivery.ok and SECRET_ENV in delivery.detail
    assert receiver.requests == []


def test_5xx_answers_are_retried(serve: Callable[..., Receiver]) -> None:
    receiver = serve(500, 503, 200)
    started = time.perf_counter()
    delivery = deliver(m.webhook(receiver.url, timeout=5), ALERT)
    assert delivery.ok, delivery.detail
    assert "-> 200" in delivery.detail and "attempt 3 of 3" in delivery.detail
    assert len(receiver.requests) == 3
    assert time.perf_counter() - started >= 0.2 + 0.5  # the backoff between attempts
    # every attempt carries the same delivery id and body, so a receiver can de-duplicate
    assert {r.headers["X-Headrace-Delivery"] for r in receiver.requests} == {ALERT["id"]}
    assert len({r.body for r in receiver.requests}) == 1


def test_a_webhook_failing_every_attempt(serve: Callable[..., Receiver]) -> None:
    receiver = serve(502, answer=b"upstream down")
    delivery = deliver(m.webhook(receiver.url, timeout=5), ALERT)
    assert not delivery.ok
    assert "-> 502 after 3 attempts: upstream down" in delivery.detail
    assert len(receiver.requests) == 3


def test_a_4xx_is_not_retried(serve: Callable[..., Receiver]) -> None:
    answer = b"bad alert: " + b"x" * 300
    receiver = serve(400, answer=answer)
    delivery = deliver(m.webhook(receiver.url, timeout=5), ALERT)
    assert not delivery.ok
    assert len(receiver.requests) == 1
    assert "-> 400 after 1 attempt: bad alert: x" in delivery.detail
    # the first 200 characters of the answer, not more
    assert delivery.detail.endswith(": " + answer.decode()[:200])


def test_a_redirect_is_not_followed(serve: Callable[..., Receiver]) -> None:
    receiver = serve(302)
    delivery = deliver(m.webhook(receiver.url, timeout=5), ALERT)
    assert not delivery.ok and "-> 302" in delivery.detail
    assert len(receiver.requests) == 1  # no GET (without the alert) to the new location


def test_nothing_listening_is_a_failed_delivery() -> None:
    url = f"http://127.0.0.1:{free_port()}/alerts"
    delivery = deliver(m.webhook(url, timeout=2), ALERT)
    assert not delivery.ok
    assert "failed after 3 attempts" in delivery.detail
    assert "refused" in delivery.detail.lower()


def test_a_url_that_is_not_http_is_not_fetched() -> None:
    delivery = deliver(m.Action("webhook", {"url": "file:///etc/passwd"}), ALERT)
    assert not delivery.ok and "not an http(s) URL" in delivery.detail


# -- an SMTP server -----------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


USER, PASSWORD = "alerts@example.com", "right-password"


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (USER, PASSWORD)
    return AuthResult(success=ok, handled=False)


@dataclass
class Mailer:
    inbox: Inbox
    port: int


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., Mailer]]:
    controllers: list[Controller] = []

    def start(*, auth: bool = False) -> Mailer:
        inbox = Inbox()
        options: dict[str, Any] = {}
        if auth:
            options = {
                "auth_required": True,
                "auth_require_tls": False,
                "authenticator": authenticate,
            }
        port = free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return Mailer(inbox, port)

    yield start
    for controller in controllers:
        controller.stop()


def parse(envelope: Envelope) -> EmailMessage:
    content = envelope.original_content or envelope.content
    assert isinstance(content, bytes)
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_an_email_carries_the_alert(smtp_server: Callable[..., Mailer]) -> None:
    server = smtp_server()
    action = m.email(
        ["oncall@example.com", "ml-team@example.com"],
        host="127.0.0.1",
        port=server.port,
        sender="headrace@example.com",
        timeout=5,
    )
    delivery = deliver(action, ALERT)
    assert delivery.ok, delivery.detail
    assert delivery.detail == (
        f"sent to oncall@example.com, ml-team@example.com via 127.0.0.1:{server.port}"
    )

    [envelope] = server.inbox.envelopes
    assert envelope.mail_from == "headrace@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "ml-team@example.com"]
    message = parse(envelope)
    # (a long subject may be folded right after "Subject:"; unfolded, that is one space)
    assert message["Subject"].strip() == f"[headrace] {ALERT['title']}"
    assert message["From"] == "headrace@example.com"
    assert message["To"] == "oncall@example.com, ml-team@example.com"
    assert message["Date"] and message["Message-ID"]

    text_part = message.get_body(("plain",))
    assert text_part is not None
    text = text_part.get_content().replace("\r\n", "\n")  # lines end in CRLF on the wire
    assert text.startswith(ALERT["message"])  # the non-ASCII column name survives
    footer = text[len(ALERT["message"]) :]
    assert "monitor: delay_watch" in footer
    assert "window: 2024-05-01 00:00:00 .. 2024-05-02 00:00:00 UTC, 5,000 rows" in footer
    assert f"alert: {ALERT['id']}" in footer

    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "alert.json"
    assert attachment.get_content_type() == "application/json"
    assert json.loads(attachment.get_content()) == ALERT


def test_a_multi_line_title_is_one_subject_line(smtp_server: Callable[..., Mailer]) -> None:
    server = smtp_server()
    alert = {**ALERT, "title": "two\nlines"}
    delivery = deliver(m.email("a@example.com", host="127.0.0.1", port=server.port), alert)
    assert delivery.ok, delivery.detail
    assert parse(server.inbox.envelopes[0])["Subject"] == "[headrace] two lines"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_an_email_logs_in_with_credentials_from_the_environment(
    smtp_server: Callable[..., Mailer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = smtp_server(auth=True)
    action = m.email(
        "oncall@example.com",
        host="127.0.0.1",
        port=server.port,
        username_env="HEADRACE_TEST_SMTP_USER",
        password_env="HEADRACE_TEST_SMTP_PASSWORD",
        timeout=5,
    )
    monkeypatch.setenv("HEADRACE_TEST_SMTP_USER", USER)
    monkeypatch.setenv("HEADRACE_TEST_SMTP_PASSWORD", PASSWORD)
    delivery = deliver(action, ALERT)
    assert delivery.ok, delivery.detail
    assert len(server.inbox.envelopes) == 1

    monkeypatch.setenv("HEADRACE_TEST_SMTP_PASSWORD", "wrong-password")
    delivery = deliver(action, ALERT)
    assert not delivery.ok
    assert f"logging in as {USER}" in delivery.detail and "535" in delivery.detail
    assert "wrong-password" not in delivery.detail

    monkeypatch.delenv("HEADRACE_TEST_SMTP_PASSWORD")
    delivery = deliver(action, ALERT)
    assert not delivery.ok and "HEADRACE_TEST_SMTP_PASSWORD" in delivery.detail

    monkeypatch.delenv("HEADRACE_TEST_SMTP_USER")
    delivery = deliver(action, ALERT)
    assert not delivery.ok and "HEADRACE_TEST_SMTP_USER" in delivery.detail

    # no login at all: the server requires one
    anonymous = m.email("oncall@example.com", host="127.0.0.1", port=server.port, timeout=5)
    delivery = deliver(anonymous, ALERT)
    assert not delivery.ok and "530" in delivery.detail
    assert len(server.inbox.envelopes) == 1  # only the first, logged-in delivery arrived


def test_an_email_to_a_closed_port_is_a_failed_delivery() -> None:
    port = free_port()
    delivery = deliver(m.email("a@example.com", host="127.0.0.1", port=port, timeout=2), ALERT)
    assert not delivery.ok
    assert f"127.0.0.1:{port}" in delivery.detail and "refused" in delivery.detail.lower()


# -- the log, and what is not a delivery ---------------------------------------------------


@pytest.mark.parametrize(("level", "levelno"), [("info", logging.INFO), ("error", logging.ERROR)])
def test_a_log_action_writes_the_alert(
    level: str, levelno: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="headrace.monitoring")
    delivery = deliver(m.log(level), ALERT)
    assert delivery == Delivery("log", True, f"logged at {level} to headrace.monitoring")
    [record] = [r for r in caplog.records if r.name == "headrace.monitoring"]
    assert record.levelno == levelno
    assert ALERT["title"] in record.getMessage()
    assert ALERT["message"] in record.getMessage()


def test_a_retrain_action_is_not_delivered() -> None:
    with pytest.raises(ValueError, match="'retrain' action is not an alert delivery"):
        deliver(m.retrain("flight_delay"), ALERT)
