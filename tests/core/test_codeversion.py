from __future__ import annotations

import textwrap
from pathlib import Path

import headrace as hr
from headrace.core.codeversion import code_version, function_version


def _load(tmp_path: Path, name: str, source: str) -> dict[str, object]:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    namespace: dict[str, object] = {"__name__": name}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


def test_changes_in_called_project_code_change_the_version(tmp_path: Path) -> None:
    base = """
    import headrace as hr
    def scale(x):
        return x * {factor}
    @hr.asset
    def out() -> int:
        return scale(2)
    """
    one = _load(tmp_path, "cv_one", base.format(factor=2))
    same = _load(tmp_path, "cv_same", base.format(factor=2))
    changed = _load(tmp_path, "cv_changed", base.format(factor=3))
    v1 = function_version(one["out"].fn, ("cv_one",))  # type: ignore[attr-defined]
    v1b = function_version(same["out"].fn, ("cv_same",))  # type: ignore[attr-defined]
    v2 = function_version(changed["out"].fn, ("cv_changed",))  # type: ignore[attr-defined]
    assert v1 == v1b
    assert v1 != v2


def test_code_outside_the_project_does_not_count(tmp_path: Path) -> None:
    ns = _load(
        tmp_path,
        "cv_lib",
        """
        import json
        import headrace as hr
        @hr.asset
        def out() -> str:
            return json.dumps(1)
        """,
    )
    spec = ns["out"]
    assert code_version(spec, ("cv_lib",)) == function_version(spec.fn, ("cv_lib",))  # type: ignore[attr-defined]


def test_explicit_code_version_wins() -> None:
    @hr.asset(code_version="v7")
    def pinned() -> int:
        return 1

    assert code_version(pinned, ()) == "v7"
