"""Pandera (its own venv, pandas backend): a ``DataFrameSchema`` validated lazily.

Timed: ``schema.validate(df, lazy=True)``, which collects every failure case before raising.
The schema is built before timing. Pandera's per-column ``nullable=False`` default adds
not-null checks on ``amount`` and ``category`` (they pass), and the dtype checks on ``id``
and ``amount`` come with the columns, as in the shared peer workload.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w

started = time.perf_counter()
import pandera  # noqa: E402
import pandera.pandas as pa  # noqa: E402

IMPORT_S = time.perf_counter() - started

SCHEMA = pa.DataFrameSchema(
    {
        "id": pa.Column("int64", nullable=False, unique=True),
        "amount": pa.Column("float64", pa.Check.in_range(w.AMOUNT_MIN, w.AMOUNT_MAX)),
        "category": pa.Column(checks=pa.Check.isin(w.CATEGORIES)),
        "email": pa.Column(checks=pa.Check.str_matches(w.EMAIL_RE), nullable=True),
        "ts": pa.Column(nullable=False),
    },
    checks=[
        pa.Check(lambda d: w.ROWS_MIN <= len(d) <= w.ROWS_MAX, name="row_count"),
        pa.Check(lambda d: w.MEAN_MIN <= d["amount"].mean() <= w.MEAN_MAX, name="amount_mean"),
    ],
    strict=False,
)
# (column, start of Pandera's check label) -> the bench's name for that check.
CANONICAL = {
    ("id", "not_nullable"): "id_not_null",
    ("id", "field_uniqueness"): "id_unique",
    ("amount", "in_range"): "amount_range",
    ("category", "isin"): "category_set",
    ("email", "str_matches"): "email_regex",
    (None, "row_count"): "row_count",
    ("ts", "not_nullable"): "ts_not_null",
    (None, "amount_mean"): "amount_mean",
}
LAST: dict[str, Any] = {}


def _canonical(column: Any, check: str) -> str:
    col = None if column is None or column != column or column == "orders" else str(column)
    for (c, prefix), name in CANONICAL.items():
        if check.startswith(prefix) and (c is None or c == col):
            return name
    return f"{col}:{check}"


def validate(df: Any) -> dict[str, int | None]:
    try:
        SCHEMA.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        counts = cases.groupby(["column", "check"], dropna=False).size()
        LAST["failure_cases"] = {f"{c}|{k}": int(n) for (c, k), n in counts.items()}
        failures: dict[str, int | None] = {}
        for (column, check), n in counts.items():
            name = _canonical(column, str(check))
            failures[name] = None if name in ("row_count", "amount_mean") else int(n)
        return failures
    return {}


if __name__ == "__main__":
    args = w.runner_args()
    w.run_calls(
        "pandera",
        pandera.__version__,
        validate,
        import_s=IMPORT_S,
        calls=args.calls,
        rows=args.rows,
        extra={"report": LAST, "pandas": w.library_version("pandas")},
    )
