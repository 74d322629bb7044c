"""An encrypted workspace end to end: runs in every executor, imports, reads, diffs, gc,
the ``headrace keys`` commands and the commands documented in docs/objects.md, on
SQLite and PostgreSQL metadata stores."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import headrace as hr
from headrace.data.gc import collect
from headrace.data.versions import import_table
from headrace.errors import HeadraceError
from headrace.objects.encrypted import EncryptedBlobStore
from headrace.objects.keyring import KEYS_FILE
from headrace.objects.opening import KEY_ENV, NEW_KEY_ENV, enable_encryption
from headrace.runtime.workspace import open_workspace
from tests.projects import close_opened, open_project

KEY = "a workspace key, long enough 123"
DOC = Path(__file__).parents[2] / "docs" / "objects.md"

PROJECT = """
import os
import pandas as pd

@hr.asset(partitions=hr.static(["a", "b"]))
def part(partition: str) -> pd.DataFrame:
    return pd.DataFrame({"p": [partition], "pid": [os.getpid()], "secret": ["s3cr3t-" + partition]})

@hr.asset
def combined(part: pd.DataFrame) -> pd.DataFrame:
    return part
"""


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(NEW_KEY_ENV, raising=False)
    monkeypatch.delenv("HEADRACE_ENCRYPTION_KEY_FILE", raising=False)
    monkeypatch.setenv(KEY_ENV, KEY)
    yield
    close_opened()


def _metadata(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "postgresql":
        monkeypatch.setenv("HEADRACE_METADATA_URL", request.getfixturevalue("postgres_url"))


@pytest.mark.parametrize("executor", ["in_process", "threads", "processes"])
def test_a_run_on_an_encrypted_store_in_every_executor(
    tmp_path: Path,
    keyed: None,
    backend: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    executor: str,
) -> None:
    _metadata(backend, request, monkeypatch)
    ws = open_project(tmp_path, PROJECT)
    enable_encryption(ws.objects_config)
    ws.__dict__.pop("blobs", None)
    result = hr.materialize(workspace=ws, executor=executor, max_concurrency=2)
    assert result.success, {k: s.error for k, s in result.steps.items()}
    assert isinstance(ws.blobs, EncryptedBlobStore)
    combined = hr.read("combined", workspace=ws)
    assert sorted(combined.secret) == ["s3cr3t-a", "s3cr3t-b"]
    if executor == "processes":
        assert os.getpid() not in set(combined.pid)
    # nothing in the object store holds the values in clear
    for path in (tmp_path / ".headrace" / "objects").rglob("*"):
        if path.is_file() and path.name != KEYS_FILE:
            assert b"s3cr3t" not in path.read_bytes()


def _table(path: Path, n: int) -> Path:
    pq.write_table(pa.table({"id": list(range(n)), "v": [i * 1.5 for i in range(n)]}), path)
    return path


def test_import_reimport_and_gc_on_an_encrypted_store(
    tmp_path: Path,
    keyed: None,
    backend: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _metadata(backend, request, monkeypatch)
    open_project(tmp_path, "").close()
    with open_workspace(tmp_path) as ws:
        enable_encryption(ws.objects_config)
    with open_workspace(tmp_path) as ws:
        first = import_table(ws, "t", _table(tmp_path / "one.parquet", 10))
        again = import_table(ws, "t", tmp_path / "one.parquet")
        assert first.created and not again.created
        second = import_table(ws, "t", _table(tmp_path / "two.parquet", 20))
        assert hr.read("t", workspace=ws).num_rows == 20
        assert hr.read("t", workspace=ws, version=first.version.id).num_rows == 10
        orphan = ws.blobs.put_bytes(b"no version points here")
        report = collect(ws, keep_last=1, grace_seconds=0)
        assert orphan in report.deleted_blobs and first.version.blob in report.deleted_blobs
        assert second.version.blob not in report.deleted_blobs
        assert hr.read("t", workspace=ws).num_rows == 20


def _cli(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env["COLUMNS"] = "250"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env | extra


def _documented_commands() -> str:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("## Encrypting a workspace", 1)[1].split("```sh\n", 1)[1]
    return block.split("\n```", 1)[0]


@pytest.mark.integration
def test_the_documented_commands_run_and_a_store_without_its_key_refuses_in_one_line(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    extra = {}
    if backend == "postgresql":
        extra["HEADRACE_METADATA_URL"] = request.getfixturevalue("postgres_url")
    env = _env(**extra)
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    _table(tmp_path / "trips.parquet", 50)
    script = (
        "set -euo pipefail\n" + _documented_commands() + '\necho "KEY=$HEADRACE_ENCRYPTION_KEY"\n'
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(
        r"encrypted the object store: data key wrapped under key id [0-9a-f]{16}", done.stdout
    )
    assert re.search(r"rotated: the data key is now wrapped under key id", done.stdout)
    assert "encrypted (AES-256-GCM, keyed BLAKE3 addresses)" in done.stdout
    assert "imported trips.parquet as trips" in " ".join(done.stdout.split())
    key = done.stdout.strip().splitlines()[-1].removeprefix("KEY=")
    # the key is nowhere in the workspace
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".parquet":
            assert key.encode() not in path.read_bytes(), path
    # without the key, or with another, a command fails with one clear line
    missing = _cli(tmp_path, "import", "trips", "trips.parquet", env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0
    assert "is encrypted (key id" in missing.stderr and "HEADRACE_ENCRYPTION_KEY" in missing.stderr
    wrong = _cli(tmp_path, "import", "trips", "trips.parquet", env=env | {KEY_ENV: "x" * 20})
    assert wrong.returncode == 1 and "does not open this object store" in wrong.stderr
    short = _cli(tmp_path, "keys", "status", env=env | {KEY_ENV: "short"})
    assert short.returncode == 0 and "encrypted" in short.stdout  # status needs no key
    # with the rotated key: import a second version and diff the two (decrypted to a
    # private temporary folder for DuckDB)
    keyed_env = env | {KEY_ENV: key}
    first = re.search(r"as trips version ([0-9a-f]+)", done.stdout)
    _table(tmp_path / "trips2.parquet", 60)
    again = _cli(tmp_path, "import", "trips", "trips2.parquet", env=keyed_env)
    second = re.search(r"as trips version ([0-9a-f]+)", again.stdout)
    assert first and second, again.stdout + again.stderr
    diff = _cli(tmp_path, "diff", "trips", first[1], second[1], env=keyed_env)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert "rows: 50 → 60 (+10)" in diff.stdout


@pytest.mark.integration
def test_keys_init_refuses_a_store_that_already_holds_plain_blobs(tmp_path: Path) -> None:
    env = _env()
    assert _cli(tmp_path, "init", ".", env=env).returncode == 0
    _table(tmp_path / "t.parquet", 5)
    assert _cli(tmp_path, "import", "t", "t.parquet", env=env).returncode == 0
    refused = _cli(tmp_path, "keys", "init", env=env | {KEY_ENV: KEY})
    assert refused.returncode == 1
    assert "already holds 1 unencrypted blobs" in refused.stderr
    assert not (tmp_path / ".headrace" / "objects" / KEYS_FILE).exists()
    plain = _cli(tmp_path, "keys", "status", env=env)
    assert "not encrypted" in plain.stdout


def test_the_key_file_setting_resolves_from_the_workspace_and_must_point_outside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv("HEADRACE_ENCRYPTION_KEY_FILE", raising=False)
    workspace = tmp_path / "ws"
    open_project(workspace, "").close()
    key = tmp_path / "key"
    key.write_text(KEY)
    config = workspace / "headrace.toml"
    original = config.read_text()
    config.write_text(original.replace("[objects]\n", f'[objects]\nkey_file = "{key}"\n'))
    with open_workspace(workspace) as ws:
        assert ws.objects_config.key_file == str(key)
        enable_encryption(ws.objects_config)
    with open_workspace(workspace) as ws:
        assert isinstance(ws.blobs, EncryptedBlobStore)
    (workspace / "inside.key").write_text(KEY)
    monkeypatch.setenv("HEADRACE_ENCRYPTION_KEY_FILE", "inside.key")
    with open_workspace(workspace) as ws:
        assert ws.objects_config.key_file == str(workspace / "inside.key")
        with pytest.raises(HeadraceError, match="is inside the workspace"):
            ws.blobs  # noqa: B018
