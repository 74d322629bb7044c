"""headrace's side of the quality bench (project venv): ``hr.validate`` on the orders frame.

The suite is built before timing; the timed call is ``hr.validate(df, suite)`` on the pandas
frame, so the conversion to headrace's engine is included. As for every tool, imports are
not timed (``import_s`` reports them): ``hr.validate`` is resolved and the modules it imports
on first use (its engine, Polars) are imported before the first, cold, call. ``--calls 2``
adds a warm call in the same process.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w

started = time.perf_counter()
import headrace as hr  # noqa: E402
from headrace import checks as c  # noqa: E402

hr.validate  # noqa: B018 - resolving the lazy export imports headrace.api
# What hr.validate imports on its first call: imports are not timed for any tool.
for _module in ("headrace.quality.engine", "polars"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_module)
IMPORT_S = time.perf_counter() - started

# (kind, column) of a headrace check result -> the bench's name for that check.
CANONICAL = {
    ("not_null", "id"): "id_not_null",
    ("unique", "id"): "id_unique",
    ("between", "amount"): "amount_range",
    ("in_set", "category"): "category_set",
    ("matches", "email"): "email_regex",
    ("row_count", None): "row_count",
    ("not_null", "ts"): "ts_not_null",
    ("mean", "amount"): "amount_mean",
}

SUITE = hr.Suite(
    "orders",
    [
        c.not_null("id"),
        c.unique("id"),
        c.between("amount", w.AMOUNT_MIN, w.AMOUNT_MAX),
        c.in_set("category", w.CATEGORIES),
        c.matches("email", w.EMAIL_RE),
        c.row_count(min=w.ROWS_MIN, max=w.ROWS_MAX),
        c.not_null("ts"),
        c.mean("amount", min=w.MEAN_MIN, max=w.MEAN_MAX),
    ],
)
LAST: dict[str, Any] = {}


def validate(df: Any) -> dict[str, int | None]:
    report = hr.validate(df, SUITE)
    failures: dict[str, int | None] = {}
    for result in report.failed:
        key = (result.kind, result.columns[0] if result.columns else None)
        failures[CANONICAL.get(key, result.name)] = result.failing_rows
    LAST.update(
        success=report.success,
        failed_names=[r.name for r in report.failed],
        samples={r.name: len(r.sample) for r in report.failed},
        observed={r.name: r.observed for r in report.results},
        report_seconds=round(report.seconds, 4),
    )
    return failures


if __name__ == "__main__":
    args = w.runner_args()
    w.run_calls(
        "headrace",
        w.library_version("headrace"),
        validate,
        import_s=IMPORT_S,
        calls=args.calls,
        rows=args.rows,
        extra={"report": LAST},
    )
