"""The quality workload and its measurement, shared by every runner (numpy + pandas only).

Imported by the runners in this folder from whichever venv runs them (the project's for
headrace and the Polars/DuckDB floors, the peers' own for Great Expectations and Pandera),
so it must work on pandas 2 and 3 alike and needs nothing else.

- :func:`make_frame`: the issue's 5,000,000 x 8 orders table, seed 42, with exactly
  ``BAD_AMOUNTS`` amounts above the range and ``BAD_EMAILS`` malformed e-mails (and 10% null
  e-mails, which pass the regex check). Same random stream, call for call, as the shared
  peer workload, so every venv validates the same values.
- :func:`fingerprint`: a short digest of the values, so the bench can tell that the tools
  really saw the same data (pandas 2 keeps text as ``object``, pandas 3 as ``str``).
- :func:`measure`: one call's wall and CPU seconds and its peak extra RSS: the process's
  RSS high-water mark (``VmHWM``) is reset through ``/proc/self/clear_refs`` right before
  the call and read right after; extra = that peak minus the RSS before the call.
- :func:`emit`: the one ``RESULT {json}`` line a runner prints for the bench to read.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

SEED = 42
ROWS = 5_000_000
CATEGORIES = [f"cat_{i}" for i in range(10)]
EMAIL_RE = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"
AMOUNT_MIN, AMOUNT_MAX = 0.0, 10_000.0
ROWS_MIN, ROWS_MAX = 4_000_000, 6_000_000
MEAN_MIN, MEAN_MAX = 4_500.0, 5_500.0
BAD_AMOUNTS = 100
BAD_EMAILS = 100
NULL_EMAIL_SHARE = 0.10
DOMAINS = ["example.com", "mail.org", "corp.io", "test.net"]

# The suite's eight checks, in order, under the names every runner reports them by.
CHECKS = (
    "id_not_null",
    "id_unique",
    "amount_range",
    "category_set",
    "email_regex",
    "row_count",
    "ts_not_null",
    "amount_mean",
)
# What every tool must find: check -> failing rows.
EXPECTED_FAILURES = {"amount_range": BAD_AMOUNTS, "email_regex": BAD_EMAILS}


def make_frame(rows: int = ROWS, seed: int = SEED) -> Any:
    """The orders table as a pandas DataFrame (text as pandas' default string dtype)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    # The draws below must stay in this order: each consumes the shared random stream.
    ids = rng.permutation(rows).astype("int64") + 1
    amount = rng.uniform(0, 10_000, rows)
    amount[rng.choice(rows, BAD_AMOUNTS, replace=False)] = 12_345.0
    category_codes = rng.integers(0, len(CATEGORIES), rows)
    seconds = rng.integers(0, 365 * 86_400, rows)
    domain_codes = rng.integers(0, len(DOMAINS), rows)
    null_email = rng.random(rows) < NULL_EMAIL_SHARE
    quantity = rng.integers(1, 100, rows).astype("int32")
    is_active = rng.random(rows) < 0.8
    score = rng.normal(0, 1, rows)

    category = pd.Series(np.asarray(CATEGORIES, dtype=object)[category_codes], dtype="str")
    ts = pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds, unit="s")
    domain = pd.Series(np.asarray(DOMAINS, dtype=object)[domain_codes], dtype="str")
    email = ("user" + pd.Series(ids).astype("str") + "@" + domain).astype("str")
    email[null_email] = None
    email[np.flatnonzero(~null_email)[:BAD_EMAILS]] = "not-an-email"
    return pd.DataFrame(
        {
            "id": ids,
            "amount": amount,
            "category": category,
            "ts": ts,
            "email": email,
            "quantity": quantity,
            "is_active": is_active,
            "score": score,
        }
    )


def fingerprint(df: Any) -> str:
    """A digest of the frame's values that does not depend on the pandas version."""
    email = df["email"]
    parts = [
        len(df),
        int(df["id"].sum()),
        round(float(df["amount"].sum()), 3),
        int((df["amount"] > AMOUNT_MAX).sum()),
        sorted((str(k), int(v)) for k, v in df["category"].value_counts().items()),
        int(df["ts"].astype("datetime64[s]").astype("int64").sum()),  # any unit -> seconds
        int(email.isna().sum()),
        int((email == "not-an-email").sum()),
        [None if v is None or v != v else str(v) for v in email.iloc[:: max(1, len(df) // 997)]],
        int(df["quantity"].sum()),
        int(df["is_active"].sum()),
        round(float(df["score"].sum()), 6),
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def dtypes(df: Any) -> dict[str, str]:
    return {str(c): str(t) for c, t in df.dtypes.items()}


# --- measurement -------------------------------------------------------------------------------


def _status_mib(*keys: str) -> dict[str, float]:
    found: dict[str, float] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in keys:
                found[key] = int(rest.split()[0]) / 1024.0  # kB -> MiB
    return found


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # 5: reset the peak RSS (VmHWM) to the current RSS
    except OSError:
        return False
    return True


class _Sampler:
    """Polls RSS every 2 ms: the fallback where VmHWM cannot be reset."""

    def __init__(self, start_mib: float) -> None:
        self.peak = start_mib
        self._stop = threading.Event()
        self._page_mib = os.sysconf("SC_PAGE_SIZE") / 2**20
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        with open("/proc/self/statm") as fh:
            while not self._stop.is_set():
                fh.seek(0)
                self.peak = max(self.peak, int(fh.read().split()[1]) * self._page_mib)
                time.sleep(0.002)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def settle(seconds: float = 1.0) -> None:
    """Let the allocators give back what data generation freed before RSS is read."""
    gc.collect()
    if "pyarrow" in sys.modules:
        with contextlib.suppress(Exception):  # an allocator without the call: nothing to do
            sys.modules["pyarrow"].default_memory_pool().release_unused()
    time.sleep(seconds)
    gc.collect()


def measure(fn: Callable[[Any], Any], data: Any) -> tuple[Any, dict[str, Any]]:
    """Run ``fn(data)`` once; its outcome and wall, CPU and peak-extra-RSS figures."""
    settle()
    before = _status_mib("VmRSS")["VmRSS"]
    hwm = _reset_high_water_mark()
    sampler = None if hwm else _Sampler(before)
    load = os.getloadavg()[0]
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    outcome = fn(data)
    wall = time.perf_counter() - started
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    now = _status_mib("VmRSS", "VmHWM")
    peak = now["VmHWM"] if sampler is None else max(sampler.stop(), now["VmRSS"])
    figures = {
        "wall_s": round(wall, 4),
        "cpu_s": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 3),
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": round(peak, 1),
        "peak_extra_mib": round(peak - before, 1),
        "rss_after_mib": round(now["VmRSS"], 1),
        "memory_method": "VmHWM reset" if sampler is None else "RSS sampled every 2 ms",
        "loadavg1": round(load, 2),
    }
    return outcome, figures


# --- the runner's side ------------------------------------------------------------------------


def runner_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--calls", type=int, default=1, help="validations in this process")
    return parser.parse_args(argv)


def run_calls(
    tool: str,
    version: str,
    validate: Callable[[Any], dict[str, int | None]],
    *,
    import_s: float,
    calls: int,
    rows: int,
    extra: dict[str, Any] | None = None,
) -> None:
    """Make the frame, validate it ``calls`` times (the first one cold), print the result.

    ``validate`` returns the checks that failed, by the names in :data:`CHECKS`, each with
    its failing-row count (None for a check on an aggregate).
    """
    started = time.perf_counter()
    df = make_frame(rows)
    generate_s = time.perf_counter() - started
    record: dict[str, Any] = {
        "tool": tool,
        "version": version,
        "rows": len(df),
        "import_s": round(import_s, 3),
        "generate_s": round(generate_s, 2),
        "fingerprint": fingerprint(df),
        "dtypes": dtypes(df),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "calls": [],
    }
    record.update(extra or {})
    for _ in range(max(1, calls)):
        failures, figures = measure(validate, df)
        figures["failures"] = failures
        record["calls"].append(figures)
    emit(record)


def failures_from_metrics(m: dict[str, Any]) -> dict[str, int | None]:
    """The failed checks of the hand-written floors, from their one row of metrics."""
    failures: dict[str, int | None] = {
        k: int(m[k])
        for k in ("id_not_null", "id_unique", "amount_range", "category_set", "email_regex")
        if m[k]
    }
    if m["ts_not_null"]:
        failures["ts_not_null"] = int(m["ts_not_null"])
    if not ROWS_MIN <= m["rows"] <= ROWS_MAX:
        failures["row_count"] = None
    if not MEAN_MIN <= m["amount_mean"] <= MEAN_MAX:
        failures["amount_mean"] = None
    return failures


def emit(record: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(record, default=str), flush=True)


def library_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"
