from __future__ import annotations

from pathlib import Path

import pytest

from headrace.errors import SettingsError, WorkspaceNotFoundError
from headrace.workspace.settings import find_root, init_workspace, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("HEADRACE_"):
            monkeypatch.delenv(key)


def test_init_and_defaults(tmp_path: Path) -> None:
    root, created = init_workspace(tmp_path / "w", module="flows")
    assert created and (root / ".headrace").is_dir()
    settings = load_settings(root)
    assert settings.project_module == "flows"
    assert settings.executor == "in_process" and settings.max_concurrency == 4
    assert settings.resolved_metadata_url == f"sqlite:///{root / '.headrace' / 'headrace.db'}"
    assert settings.resolved_objects_url == str(root / ".headrace" / "objects")


def test_found_from_a_subfolder_like_git(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_root(deep) == tmp_path.resolve()
    with pytest.raises(WorkspaceNotFoundError, match="headrace init"):
        find_root(Path("/"))


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_workspace(tmp_path)
    monkeypatch.setenv("HEADRACE_EXECUTOR", "threads")
    monkeypatch.setenv("HEADRACE_MAX_CONCURRENCY", "8")
    monkeypatch.setenv("HEADRACE_METADATA_URL", "postgresql+psycopg://postgres@127.0.0.1/x")
    monkeypatch.setenv("HEADRACE_OBJECTS_URL", "memory://blobs")
    settings = load_settings(tmp_path)
    assert settings.executor == "threads" and settings.max_concurrency == 8
    assert settings.resolved_metadata_url == "postgresql+psycopg://postgres@127.0.0.1/x"
    assert settings.resolved_objects_url == "memory://blobs"
    monkeypatch.setenv("HEADRACE_WORKSPACE", str(tmp_path))
    assert find_root() == tmp_path.resolve()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("max_concurrency = 4", "max_concurrency = 0"), "max_concurrency must be an integer >= 1"),
        (("max_concurrency = 4", 'max_concurrency = "x"'), "max_concurrency must be an integer"),
        (('executor = "in_process"', 'executor = "gpu"'), "executor 'gpu' is unknown"),
        (("[run]", "[runs]"), r"unknown section \[runs\]"),
        (("max_concurrency = 4", "max_concurency = 4"), "unknown setting run.max_concurency"),
        (("[run]", "[run"), "invalid TOML"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    init_workspace(tmp_path)
    config = tmp_path / "headrace.toml"
    config.write_text(config.read_text().replace(*edit))
    with pytest.raises(SettingsError, match=message):
        load_settings(tmp_path)


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_workspace(tmp_path)
    monkeypatch.setenv("HEADRACE_MAX_CONCURRENCY", "lots")
    with pytest.raises(SettingsError, match="HEADRACE_MAX_CONCURRENCY"):
        load_settings(tmp_path)
