"""Where the audit keys come from: the environment, a private key file, or the default
file made at the first seal; rotation; and the refusals of bad keys."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from headrace.core.audit_chain import AuditKeyError
from headrace.workspace.audit_keys import KeySource, key_file_of, parse_env_keys, parse_key_file
from headrace.workspace.settings import Settings

SECRET = "s" * 32


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADRACE_AUDIT_KEY", raising=False)


def _settings(root: Path, key_file: str | None = None) -> Settings:
    return Settings(root=root, project_name="p", audit_key_file=key_file)


def test_the_default_key_file_is_made_private_at_the_first_seal(tmp_path: Path) -> None:
    source = KeySource(_settings(tmp_path))
    assert source(False) is None  # verifying makes nothing
    assert not (tmp_path / ".headrace" / "audit.key").exists()
    ring = source(True)
    path = tmp_path / ".headrace" / "audit.key"
    assert ring is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KeySource(_settings(tmp_path))(False) == ring  # the same key, read back


def test_processes_racing_to_make_the_default_key_agree(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        rings = list(pool.map(lambda _: KeySource(_settings(tmp_path))(True), range(16)))
    assert len({r.current for r in rings if r is not None}) == 1
    assert [p.name for p in (tmp_path / ".headrace").iterdir()] == ["audit.key"]


def test_keys_from_the_environment_come_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADRACE_AUDIT_KEY", f"old:{SECRET}, new:{'t' * 40}")
    ring = KeySource(_settings(tmp_path))(True)
    assert ring is not None and ring.ids == ("old", "new") and ring.current.id == "new"
    assert not (tmp_path / ".headrace").exists()
    with pytest.raises(AuditKeyError, match="the audit keys come from HEADRACE_AUDIT_KEY"):
        KeySource(_settings(tmp_path)).rotate()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (SECRET, "HEADRACE_AUDIT_KEY item 1 is not id:secret"),
        (f"a:{SECRET},{SECRET}", "HEADRACE_AUDIT_KEY item 2 is not id:secret"),
        ("a:short", "HEADRACE_AUDIT_KEY: audit key 'a' has a 5-character secret"),
        (f"a:{SECRET},a:{SECRET}", "audit key id 'a' appears twice"),
        (f"a b:{SECRET}", "audit key id 'a b' is not valid"),
    ],
)
def test_bad_environment_keys_are_refused(value: str, message: str) -> None:
    with pytest.raises(AuditKeyError, match=message):
        parse_env_keys(value)


def test_a_named_key_file_must_exist_and_be_private(tmp_path: Path) -> None:
    source = KeySource(_settings(tmp_path, "secrets/audit.keys"))
    with pytest.raises(AuditKeyError, match=r"audit key file .*secrets/audit.keys \(the audit"):
        source(True)
    path = tmp_path / "secrets" / "audit.keys"
    path.parent.mkdir()
    path.write_text(f"# ours\nk1 {SECRET}  # the first\n\nk2 {'u' * 32}\n")
    path.chmod(0o640)
    with pytest.raises(AuditKeyError, match=r"readable or writable by others \(mode 0640\)"):
        source(False)
    path.chmod(0o600)
    ring = source(False)
    assert ring is not None and ring.ids == ("k1", "k2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k1\n", "keys line 1: expected 'id secret' \\(two words\\), got 1"),
        (f"k1 {SECRET}\nk2 a b\n", "keys line 2: expected 'id secret'"),
        ("# nothing\n", "holds no audit key; add a line 'id secret'"),
        ("k1 tiny\n", "keys line 1: audit key 'k1' has a 4-character secret"),
    ],
)
def test_a_malformed_key_file_names_the_line(text: str, message: str) -> None:
    with pytest.raises(AuditKeyError, match=message):
        parse_key_file(text, "keys")


def test_rotation_adds_a_key_that_the_next_seal_uses(tmp_path: Path) -> None:
    source = KeySource(_settings(tmp_path))
    first = source(True)
    old, key, path = KeySource(_settings(tmp_path)).rotate()
    assert first is not None and old == first.current.id and key.id != old
    again = source(True)  # another process's source sees the new key
    assert again is not None and again.ids == (old, key.id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rotation_with_no_key_yet_makes_the_file(tmp_path: Path) -> None:
    old, key, path = KeySource(_settings(tmp_path, "k.txt")).rotate()
    assert old is None and path == tmp_path / "k.txt"
    assert parse_key_file(path.read_text(), "k").ids == (key.id,)


def test_the_key_file_setting_comes_from_the_toml_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.errors import SettingsError
    from headrace.workspace.settings import load_settings

    monkeypatch.delenv("HEADRACE_AUDIT_KEY_FILE", raising=False)
    toml = tmp_path / "headrace.toml"
    toml.write_text('[audit]\nkey_file = "/etc/headrace/audit.keys"\n')
    assert load_settings(tmp_path).audit_key_file == "/etc/headrace/audit.keys"
    monkeypatch.setenv("HEADRACE_AUDIT_KEY_FILE", "keys/audit.keys")
    settings = load_settings(tmp_path)
    assert settings.audit_key_file == "keys/audit.keys"
    assert key_file_of(settings) == (tmp_path / "keys" / "audit.keys", True)
    toml.write_text('[audit]\nkey = "x"\n')
    with pytest.raises(
        SettingsError,
        match=r"unknown setting audit.key; \[audit\] takes "
        r"checkpoint_every, checkpoint_log, key_file",
    ):
        load_settings(tmp_path)
