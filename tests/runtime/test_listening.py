"""``headrace server`` and ``headrace serve`` over TLS, and their drain on SIGTERM: real
server processes, a certificate authority made by the test (trustme), real TLS clients."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
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
    )
    running = Running(process, f"{scheme}://127.0.0.1:{port}")
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
