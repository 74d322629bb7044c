from __future__ import annotations

import subprocess
import sys

import headrace


def test_public_names_are_pinned() -> None:
    assert headrace.__all__ == sorted(
        [
            "AssetSpec",
            "HeadraceError",
            "RetryPolicy",
            "RunResult",
            "StepContext",
            "Suite",
            "Workspace",
            "__version__",
            "asset",
            "backfill",
            "checks",
            "daily",
            "materialize",
            "monthly",
            "open_workspace",
            "read",
            "resume",
            "static",
            "upstream",
            "validate",
            "start_run",
            "active_run",
            "log_param",
            "log_params",
            "log_metric",
            "log_metrics",
            "set_tag",
            "set_tags",
            "log_artifact",
            "log_model",
            "load_model",
            "model",
            "policies",
            "monitors",
            "drift",
            "search_runs",
            "set_alias",
        ]
    )
    for name in headrace.__all__:
        assert getattr(headrace, name) is not None


def test_import_headrace_stays_light() -> None:
    code = (
        "import sys, headrace; heavy = [m for m in ('sqlalchemy', 'pandas', 'polars', 'pyarrow',"
        " 'typer', 'rich', 'alembic', 'fsspec', 'pydantic', 'uvicorn') if m in sys.modules];"
        " print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    decorated = (
        "import sys, headrace as hr\n@hr.asset\ndef a() -> int:\n    return 1\n"
        "assert 'sqlalchemy' not in sys.modules and 'pyarrow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", decorated], check=True)
