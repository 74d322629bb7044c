"""The [lineage] settings and HEADRACE_LINEAGE_* variables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from headrace.errors import MissingExtraError, SettingsError
from headrace.lineage import (
    FileTransport,
    HttpTransport,
    emitter_from_settings,
    load_lineage_settings,
)
from headrace.workspace.settings import Settings

ENV = (
    "HEADRACE_LINEAGE_TRANSPORT",
    "HEADRACE_LINEAGE_PATH",
    "HEADRACE_LINEAGE_URL",
    "HEADRACE_LINEAGE_API_KEY",
    "HEADRACE_LINEAGE_TIMEOUT",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def workspace(tmp_path: Path, lineage: str = "") -> Settings:
    (tmp_path / "headrace.toml").write_text(f'[project]\nname = "flights"\n\n{lineage}')
    return Settings(root=tmp_path, project_name="flights")


def test_lineage_is_off_by_default(tmp_path: Path) -> None:
    settings = workspace(tmp_path)
    assert emitter_from_settings(settings) is None
    config = load_lineage_settings(tmp_path)
    assert config.transport == "none"
    assert config.path == tmp_path / ".headrace" / "lineage" / "events.jsonl"


def test_file_transport_defaults_to_the_state_folder(tmp_path: Path) -> None:
    emitter = emitter_from_settings(workspace(tmp_path, '[lineage]\ntransport = "file"\n'))
    assert emitter is not None
    assert isinstance(emitter.transport, FileTransport)
    assert emitter.transport.path == tmp_path / ".headrace" / "lineage" / "events.jsonl"


def test_file_paths_are_relative_to_the_workspace(tmp_path: Path) -> None:
    settings = workspace(tmp_path, '[lineage]\ntransport = "file"\npath = "out/ol.jsonl"\n')
    emitter = emitter_from_settings(settings)
    assert emitter is not None and isinstance(emitter.transport, FileTransport)
    assert emitter.transport.path == tmp_path / "out" / "ol.jsonl"
    absolute = tmp_path / "elsewhere.jsonl"
    settings = workspace(tmp_path, f'[lineage]\ntransport = "file"\npath = "{absolute}"\n')
    emitter = emitter_from_settings(settings)
    assert emitter is not None and isinstance(emitter.transport, FileTransport)
    assert emitter.transport.path == absolute


def test_http_transport_from_the_file(tmp_path: Path) -> None:
    settings = workspace(
        tmp_path,
        '[lineage]\ntransport = "http"\nurl = "https://marquez.example:5000/"\n'
        'api_key = "k"\ntimeout = 2.5\n',
    )
    emitter = emitter_from_settings(settings)
    assert emitter is not None
    transport = emitter.transport
    assert isinstance(transport, HttpTransport)
    assert transport.endpoint == "https://marquez.example:5000/api/v1/lineage"
    assert (transport.api_key, transport.timeout) == ("k", 2.5)
    assert "k" not in repr(load_lineage_settings(tmp_path))


def test_environment_variables_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = workspace(tmp_path, '[lineage]\ntransport = "file"\ntimeout = 9\n')
    monkeypatch.setenv("HEADRACE_LINEAGE_TRANSPORT", "http")
    monkeypatch.setenv("HEADRACE_LINEAGE_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("HEADRACE_LINEAGE_API_KEY", "from-env")
    monkeypatch.setenv("HEADRACE_LINEAGE_TIMEOUT", "0.5")
    emitter = emitter_from_settings(settings)
    assert emitter is not None and isinstance(emitter.transport, HttpTransport)
    assert emitter.transport.url == "http://127.0.0.1:5000"
    assert (emitter.transport.api_key, emitter.transport.timeout) == ("from-env", 0.5)
    monkeypatch.setenv("HEADRACE_LINEAGE_TRANSPORT", "file")
    monkeypatch.setenv("HEADRACE_LINEAGE_PATH", "/tmp/x/events.jsonl")
    assert load_lineage_settings(tmp_path).path == Path("/tmp/x/events.jsonl")
    monkeypatch.setenv("HEADRACE_LINEAGE_TRANSPORT", "none")
    assert emitter_from_settings(settings) is None


@pytest.mark.parametrize(
    ("lineage", "env", "field", "message"),
    [
        ('colour = "blue"\n', {}, "lineage.colour", "unknown setting lineage.colour"),
        ('transport = "kafka"\n', {}, "lineage.transport", "headrace.toml lineage.transport"),
        (
            'transport = "file"\n',
            {"HEADRACE_LINEAGE_TRANSPORT": "HTTP"},
            "lineage.transport",
            "HEADRACE_LINEAGE_TRANSPORT: lineage transport 'HTTP' is unknown",
        ),
        ('transport = "http"\n', {}, "lineage.url", "needs a url"),
        ('transport = "http"\nurl = "ftp://x"\n', {}, "lineage.url", "not an http"),
        (
            'transport = "http"\n',
            {"HEADRACE_LINEAGE_URL": "localhost:5000"},
            "lineage.url",
            "HEADRACE_LINEAGE_URL: lineage url",
        ),
        ("timeout = 0\n", {}, "lineage.timeout", "> 0, got 0"),
        ("timeout = true\n", {}, "lineage.timeout", "got True"),
        ('timeout = "inf"\n', {}, "lineage.timeout", "got 'inf'"),
        ("", {"HEADRACE_LINEAGE_TIMEOUT": "soon"}, "lineage.timeout", "HEADRACE_LINEAGE_TIMEOUT"),
        ("path = 3\n", {}, "lineage.path", "expected a string, got 3"),
        ("api_key = [1]\n", {}, "lineage.api_key", "expected a string"),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lineage: str,
    env: dict[str, str],
    field: str,
    message: str,
) -> None:
    settings = workspace(tmp_path, "[lineage]\n" + lineage)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="lineage") as caught:
        emitter_from_settings(settings)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_lineage_must_be_a_table(tmp_path: Path) -> None:
    (tmp_path / "headrace.toml").write_text('lineage = "file"\n')
    with pytest.raises(SettingsError, match="lineage must be a table") as caught:
        load_lineage_settings(tmp_path)
    assert caught.value.field == "lineage"


def test_http_needs_the_openlineage_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = workspace(tmp_path, '[lineage]\ntransport = "http"\nurl = "http://127.0.0.1:1"\n')
    monkeypatch.setitem(sys.modules, "openlineage.client", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'headrace\[openlineage\]'"):
        emitter_from_settings(settings)
