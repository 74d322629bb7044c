"""Floor: one hand-written Polars ``select`` of the eight checks (project venv).

Timed: the pandas -> Polars conversion and the aggregate pass (Polars is imported before).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w

started = time.perf_counter()
import polars as pl  # noqa: E402

IMPORT_S = time.perf_counter() - started


def validate(df: Any) -> dict[str, int | None]:
    frame = pl.from_pandas(df)
    amount, email = pl.col("amount"), pl.col("email")
    m = frame.select(
        pl.len().alias("rows"),
        pl.col("id").null_count().alias("id_not_null"),
        (pl.len() - pl.col("id").n_unique()).alias("id_unique"),
        ((amount < w.AMOUNT_MIN) | (amount > w.AMOUNT_MAX)).sum().alias("amount_range"),
        (~pl.col("category").is_in(w.CATEGORIES)).sum().alias("category_set"),
        (email.is_not_null() & ~email.str.contains(w.EMAIL_RE)).sum().alias("email_regex"),
        pl.col("ts").null_count().alias("ts_not_null"),
        amount.mean().alias("amount_mean"),
    ).row(0, named=True)
    return w.failures_from_metrics(m)


if __name__ == "__main__":
    args = w.runner_args()
    w.run_calls(
        "polars (floor)",
        pl.__version__,
        validate,
        import_s=IMPORT_S,
        calls=args.calls,
        rows=args.rows,
        extra={"threads": pl.thread_pool_size()},
    )
