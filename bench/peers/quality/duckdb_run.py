"""Floor: the eight checks as one DuckDB aggregate query over the pandas frame (project venv).

Timed: connecting, the replacement scan of the pandas frame, and the query.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w

started = time.perf_counter()
import duckdb  # noqa: E402

IMPORT_S = time.perf_counter() - started

_IN_SET = ", ".join(f"'{v}'" for v in w.CATEGORIES)
QUERY = f"""
SELECT
    count(*) AS rows,
    count(*) FILTER (WHERE id IS NULL) AS id_not_null,
    count(*) - count(DISTINCT id) AS id_unique,
    count(*) FILTER (WHERE amount < {w.AMOUNT_MIN} OR amount > {w.AMOUNT_MAX}) AS amount_range,
    count(*) FILTER (WHERE category NOT IN ({_IN_SET})) AS category_set,
    count(*) FILTER (WHERE NOT regexp_full_match(email, '{w.EMAIL_RE}')) AS email_regex,
    count(*) FILTER (WHERE ts IS NULL) AS ts_not_null,
    avg(amount) AS amount_mean
FROM frame
"""


def validate(df: Any) -> dict[str, int | None]:
    con = duckdb.connect()
    try:
        con.register("frame", df)
        cursor = con.execute(QUERY)
        names = [d[0] for d in cursor.description]
        m = dict(zip(names, cursor.fetchone() or (), strict=True))
    finally:
        con.close()
    return w.failures_from_metrics(m)


if __name__ == "__main__":
    args = w.runner_args()
    w.run_calls(
        "duckdb (floor)",
        duckdb.__version__,
        validate,
        import_s=IMPORT_S,
        calls=args.calls,
        rows=args.rows,
    )
