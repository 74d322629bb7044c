"""``headrace server`` and ``headrace serve`` over TLS, and their drain on SIGTERM: real
server processes, a certificate authority made by the test (trustme), real TLS clients."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

import headrace as hr
from headrace.registry.service import set_alias
from headrace.runtime.workspace import open_workspace
from tests.integration.conftest import HEADRACE
from tests.projects import write_project
from tests.serving.test_server import fitted, frame, free_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Certificates:
    ca: trustme.CA
    ca_file: Path
    cert: Path
    key: Path

    def client(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path / "tls"
    folder.mkdir()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    return Certificates(ca, folder / "ca.pem", folder / "cert.pem", folder / "key.pem")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env["COLUMNS"] = "200"
    return {**env, **extra}


@dataclass
class Running:
    process: subprocess.Popen[str]
    url: str

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=60)
        return output

    def kill(self) -> None:
        """After a failed test: the server and its worker processes, whatever their state."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.communicate(timeout=60)


def _start(
    cwd: Path, args: list[str], health: str, verify: ssl.SSLContext | bool, **env: str
) -> Running:
    port = free_port()
    scheme = "https" if verify is not True else "http"
    process = subprocess.Popen(
        [*HEADRACE, *args, "--port", str(port)],
        cwd=cwd,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a failed test kills it whole
    )
    running = Running(process, f"{scheme}://127.0.0.1:{port}")
    STARTED.append(running)
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(running.url + health, verify=verify, timeout=2).status_code == 200:
                return running
        except httpx.TransportError:
            pass
        if time.time() > deadline or process.poll() is not None:
            raise AssertionError(f"the server did not start:\n{running.stop()}")
        time.sleep(0.1)


STARTED: list[Running] = []


@pytest.fixture(autouse=True)
def _no_server_outlives_its_test() -> Iterator[None]:
    yield
    while STARTED:
        running = STARTED.pop()
        if running.process.poll() is None:
            running.kill()


@pytest.fixture
def model_workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    write_project(root, "")
    ws = hr.open_workspace(root)
    try:
        hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
        set_alias(ws, "delay", "champion", 1)
        ws.store.governance.create_first_admin("root")
    finally:
        ws.close()
    return root


def _token(root: Path) -> str:
    with open_workspace(root) as ws:
        return ws.store.governance.issue_token("root")


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HEADRACE, *args], cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=120
    )


# --- TLS ------------------------------------------------------------------------------


def test_the_team_server_over_tls_is_trusted_only_through_its_authority(
    model_workspace: Path, certificates: Certificates
) -> None:
    # the README's "Deploying it" block: server with --tls-cert/--tls-key, then whoami
    # with an https HEADRACE_URL and HEADRACE_CA_BUNDLE
    token = _token(model_workspace)
    server = _start(
        model_workspace,
        [
            "server",
            "--no-daemon",
            "--tls-cert",
            str(certificates.cert),
            "--tls-key",
            "../tls/key.pem",
        ],
        "/api/v1/ready",
        certificates.client(),
    )
    try:
        assert server.url.startswith("https://")
        ready = httpx.get(f"{server.url}/api/v1/ready", verify=certificates.client())
        assert ready.json() == {"status": "ready"}
        assert ready.http_version == "HTTP/1.1"
        # A client that trusts only the usual authorities refuses this certificate.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{server.url}/api/v1/ready")
        # Plain HTTP gets no answer on a TLS port.
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url.replace("https", "http") + "/api/v1/ready", timeout=5)
        # The CLI in client mode, with the authority given.
        remote = {"HEADRACE_URL": server.url, "HEADRACE_TOKEN": token}
        me = _cli(model_workspace, "whoami", HEADRACE_CA_BUNDLE=str(certificates.ca_file), **remote)
        assert me.returncode == 0, me.stderr
        assert me.stdout.startswith("root (person) at https://127.0.0.1:")
        # Without it: one line naming the problem and the setting that fixes it.
        refused = _cli(model_workspace, "whoami", **remote)
        assert refused.returncode == 1
        assert "presented a certificate this client does not trust" in refused.stderr
        assert "HEADRACE_CA_BUNDLE=/path/to/ca.pem" in refused.stderr
        assert "Traceback" not in refused.stderr
        # Another authority's certificate is no better than none.
        other = trustme.CA()
        other.cert_pem.write_to_path(str(certificates.ca_file.with_name("other.pem")))
        wrong = _cli(
            model_workspace,
            "whoami",
            HEADRACE_CA_BUNDLE=str(certificates.ca_file.with_name("other.pem")),
            **remote,
        )
        assert wrong.returncode == 1 and "does not trust" in wrong.stderr
        # A bundle that is not there is named.
        missing = _cli(
            model_workspace, "whoami", HEADRACE_CA_BUNDLE="/nonexistent/ca.pem", **remote
        )
        assert missing.returncode == 1
        assert "HEADRACE_CA_BUNDLE=/nonexistent/ca.pem cannot be read" in missing.stderr
    finally:
        output = server.stop()
    assert "headrace server on https://127.0.0.1:" in output
    assert "Traceback" not in output


def test_the_scoring_server_listens_over_tls_from_the_settings(
    model_workspace: Path, certificates: Certificates
) -> None:
    server = _start(
        model_workspace,
        ["serve", "delay@champion", "--no-log"],
        "/health",
        certificates.client(),
        HEADRACE_TLS_CERT=str(certificates.cert),
        HEADRACE_TLS_KEY=str(certificates.key),
    )
    try:
        body = {"dataframe_records": frame(3).to_dict("records")}
        scored = httpx.post(f"{server.url}/invocations", json=body, verify=certificates.client())
        assert scored.status_code == 200 and len(scored.json()["predictions"]) == 3
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.post(f"{server.url}/invocations", json=body)
    finally:
        output = server.stop()
    assert "(delay@champion) on https://127.0.0.1:" in output


def test_the_tls_settings_are_read_from_headrace_toml(
    model_workspace: Path, certificates: Certificates
) -> None:
    config = model_workspace / "headrace.toml"
    config.write_text(
        config.read_text()
        + '\n[server]\ntls_cert = "../tls/cert.pem"\ntls_key = "../tls/nokey.pem"\n'
    )
    refused = _cli(model_workspace, "serve", "delay@champion")
    assert refused.returncode == 1
    missing = certificates.key.with_name("nokey.pem").resolve()
    assert refused.stderr == (
        f"error: [server] tls_key (HEADRACE_TLS_KEY) {missing}: no such file; "
        "give the path of a PEM file\n"
    )
    # An option overrides the setting.
    given = _cli(model_workspace, "serve", "delay@champion", "--tls-key", "nothere.pem")
    assert f"--tls-key {model_workspace.resolve() / 'nothere.pem'}: no such file" in given.stderr


@pytest.mark.parametrize("command", [["server", "--no-daemon"], ["serve", "delay@champion"]])
def test_a_bad_certificate_or_key_is_refused_before_listening(
    model_workspace: Path, certificates: Certificates, command: list[str]
) -> None:
    other = trustme.CA().issue_cert("127.0.0.1")
    other.private_key_pem.write_to_path(str(certificates.key.with_name("other-key.pem")))
    (certificates.cert.with_name("garbage.pem")).write_text("not a certificate\n")
    cases = {
        "cert without key": (
            ["--tls-cert", str(certificates.cert)],
            "--tls-cert is set but no key is: TLS needs both the certificate chain and its "
            "private key (PEM files); give --tls-key (or [server] tls_key) too, or neither",
        ),
        "key without cert": (
            ["--tls-key", str(certificates.key)],
            "--tls-key is set but no cert is",
        ),
        "missing file": (
            ["--tls-cert", "nothere.pem", "--tls-key", str(certificates.key)],
            f"--tls-cert {model_workspace.resolve() / 'nothere.pem'}: no such file",
        ),
        "key of another certificate": (
            [
                "--tls-cert",
                str(certificates.cert),
                "--tls-key",
                str(other_key := certificates.key.with_name("other-key.pem")),
            ],
            f"--tls-key {other_key} cannot be loaded",
        ),
        "not PEM": (
            [
                "--tls-cert",
                str(certificates.cert.with_name("garbage.pem")),
                "--tls-key",
                str(certificates.key),
            ],
            "give a PEM certificate chain and the PEM private key that matches it",
        ),
    }
    for name, (options, message) in cases.items():
        run = _cli(model_workspace, *command, *options, "--port", str(free_port()))
        assert run.returncode == 1, (name, run.stdout, run.stderr)
        assert message in run.stderr, (name, run.stderr)
        assert run.stderr.count("\n") == 1 and "on https://" not in run.stdout, (name, run.stderr)


# --- drain on SIGTERM -----------------------------------------------------------------


@dataclass
class Outcome:
    started: float
    ended: float
    #: a status code, "refused" (a new connection after the listener closed) or "reset: ..."
    what: str
    connection: str | None = None
    body: dict[str, object] | None = None
    fresh: bool = False  # sent on a new connection (the previous answer closed the last)


def _sigterm_under_load(
    server: Running, path: str, body: object, *, loaders: int, idle: int
) -> tuple[list[list[Outcome]], list[Outcome], float]:
    """Clients on keep-alive connections: ``loaders`` send requests back to back,
    ``idle`` send one, then another once shutdown has begun. Returns the outcomes that
    ended after SIGTERM (a list per loader), the idle ones, and when SIGTERM was sent."""
    signalled_at: list[float] = []
    begun = threading.Event()
    lock = threading.Lock()
    after: list[list[Outcome]] = []
    idle_outcomes: list[Outcome] = []
    warm = threading.Barrier(loaders + idle + 1)

    def send(client: httpx.Client) -> Outcome:
        started = time.time()
        try:
            if body is None:
                answer = client.get(server.url + path)
            else:
                answer = client.post(server.url + path, json=body)
        except httpx.ConnectError:
            return Outcome(started, time.time(), "refused")
        except httpx.TransportError as exc:
            return Outcome(started, time.time(), f"reset: {exc!r}")
        payload = answer.json() if answer.status_code >= 400 else None
        return Outcome(
            started, time.time(), str(answer.status_code), answer.headers.get("connection"), payload
        )

    def ready(client: httpx.Client) -> None:
        # a worker answers 503 while it loads the model: wait for a 200 on this connection
        deadline = time.time() + 60
        try:
            while send(client).what != "200":
                got = send(client)
                assert time.time() < deadline, f"no 200 before the load: {got}"
                time.sleep(0.1)
        except BaseException:
            warm.abort()
            raise
        warm.wait(timeout=60)

    def loader() -> None:
        mine: list[Outcome] = []
        with lock:
            after.append(mine)
        with httpx.Client(timeout=60) as client:
            ready(client)
            fresh = False
            while True:
                outcome = send(client)
                outcome.fresh = fresh
                fresh = outcome.connection == "close"
                if signalled_at and outcome.ended >= signalled_at[0]:
                    mine.append(outcome)
                if outcome.what != "200":
                    return  # a 503, refused or reset: this client is done

    def idler() -> None:
        with httpx.Client(timeout=60) as client:
            ready(client)
            assert begun.wait(timeout=60)
            outcome = send(client)  # on the connection opened before SIGTERM
            with lock:
                idle_outcomes.append(outcome)

    threads = [threading.Thread(target=loader) for _ in range(loaders)]
    threads += [threading.Thread(target=idler) for _ in range(idle)]
    for thread in threads:
        thread.start()
    warm.wait(timeout=60)
    port = int(server.url.rsplit(":", 1)[1])
    signalled_at.append(time.time())
    server.process.send_signal(signal.SIGTERM)
    # Shutdown has begun once new connections are refused.
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            break
        time.sleep(0.01)
    begun.set()
    for thread in threads:
        thread.join(timeout=90)
    server.process.wait(timeout=60)
    return after, idle_outcomes, signalled_at[0]


def _assert_drained(server: Running, after: list[list[Outcome]], idle: list[Outcome]) -> None:
    output = server.stop()
    assert server.process.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output
    every = [o for sequence in after for o in sequence] + idle
    # No request on an open connection is reset. (A new connection that the kernel
    # queued in the instant the last listener closed is reset by the kernel: that
    # race is TCP's, see docs/deployment.md; it is counted, not hidden.)
    assert [o for o in every if o.what.startswith("reset") and not o.fresh] == [], (
        after,
        idle,
        output,
    )
    assert {o.what for o in every if not o.fresh} <= {"200", "503", "refused"}
    for sequence in after:
        # each client ends with a 503 on its open connection, or with its connection
        # closed after a last 200 (Connection: close) and a new one refused
        assert sequence, "a client saw nothing after SIGTERM"
        assert sequence[-1].what in ("503", "refused") or sequence[-1].fresh, sequence
        if sequence[-1].what == "refused" or sequence[-1].fresh:
            assert len(sequence) >= 2 and sequence[-2].what == "200", sequence
            assert sequence[-2].connection == "close", sequence
        else:
            assert sequence[-1].connection == "close", sequence
    # a request on a connection idle when shutdown began is answered 503, then closed
    assert [o.what for o in idle] == ["503"] * len(idle)
    for outcome in idle:
        assert outcome.connection == "close"
        assert outcome.body is not None and outcome.body["error_code"] == "SERVER_SHUTTING_DOWN"


class Slow:
    """A model that takes its time: requests are in flight when SIGTERM comes."""

    def predict(self, x: object) -> object:
        import numpy as np

        time.sleep(0.1)
        return np.zeros(len(x), dtype=int)  # type: ignore[arg-type]


def test_sigterm_drains_the_scoring_server_under_load(model_workspace: Path) -> None:
    with open_workspace(model_workspace) as ws:
        hr.log_model(Slow(), "slow", frame=frame(), workspace=ws)
    server = _start(
        model_workspace,
        [
            "serve",
            "slow",
            "--workers",
            "1",
            "--no-log",
            "--allow-pickle",
        ],
        "/health",
        True,
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]),  # Slow unpickles
    )
    body = {"dataframe_records": frame(2).to_dict("records")}
    after, idle, signalled = _sigterm_under_load(server, "/invocations", body, loaders=6, idle=3)
    _assert_drained(server, after, idle)
    # requests were still answered 200 after SIGTERM came (each takes 0.1 s or more)
    assert any(o.what == "200" for seq in after for o in seq)
    assert time.time() - signalled < 20  # drained, then exited


def test_sigterm_drains_the_team_server_under_load(model_workspace: Path) -> None:
    # two processes sharing one listening socket, as a team server runs
    server = _start(
        model_workspace, ["server", "--no-daemon", "--workers", "2"], "/api/v1/ready", True
    )
    after, idle, signalled = _sigterm_under_load(server, "/api/v1/ready", None, loaders=6, idle=2)
    _assert_drained(server, after, idle)
    assert time.time() - signalled < 20


def test_the_tls_settings_must_be_paths(tmp_path: Path) -> None:
    from headrace.errors import SettingsError
    from headrace.workspace.settings import init_workspace, load_settings

    init_workspace(tmp_path)
    config = tmp_path / "headrace.toml"
    config.write_text(config.read_text() + "\n[server]\ntls_cert = 5\n")
    with pytest.raises(SettingsError, match=r"headrace.toml server.tls_cert: expected a string"):
        load_settings(tmp_path)
    config.write_text(config.read_text().replace("tls_cert = 5", "tls_certificate = 'c.pem'"))
    with pytest.raises(SettingsError, match=r"\[server\] takes tls_cert, tls_key"):
        load_settings(tmp_path)


def test_a_ca_bundle_that_is_not_pem_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.runtime.remote import Remote, RemoteError

    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    monkeypatch.setenv("HEADRACE_URL", "https://127.0.0.1:1")
    monkeypatch.setenv("HEADRACE_TOKEN", "hr_x")
    monkeypatch.setenv("HEADRACE_CA_BUNDLE", str(bundle))
    with pytest.raises(RemoteError, match=rf"HEADRACE_CA_BUNDLE={bundle} cannot be read as PEM"):
        Remote.from_environment()
