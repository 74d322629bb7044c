"""A hand-written floor (project venv, standard library only): ``sqlite3`` and plain SQL.

What the same work costs with no tracking library in between: a minimal schema (runs,
params, metric history, latest metric values), the store's pragmas set as headrace sets
them (WAL, ``synchronous = NORMAL``), no validation of keys or values.

- ``log``: a run row is inserted and committed; each "call" appends a tuple to a list,
  written with one ``executemany`` and commit every 1,000 values (headrace's buffering
  policy); the end writes the rest, the latest value and the run's status.
- ``populate``: one transaction per run (run, 5 params, 5 metrics).
- ``search``: the same queries in SQL (the filter as two ``EXISTS``), then every run's
  params and latest metrics loaded and assembled into dicts, as a library would return.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import sqlite3  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w  # noqa: E402

IMPORT_S = time.perf_counter() - T0
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, experiment TEXT NOT NULL, name TEXT, status TEXT NOT NULL,
    created_at REAL NOT NULL, ended_at REAL);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs (experiment, created_at);
CREATE TABLE IF NOT EXISTS params (
    run_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL, key TEXT NOT NULL, value REAL, step INTEGER NOT NULL,
    timestamp REAL NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run_id, key, step);
CREATE TABLE IF NOT EXISTS latest (
    run_id INTEGER NOT NULL, key TEXT NOT NULL, value REAL, PRIMARY KEY (run_id, key));
"""
FLUSH_EVERY = 1000
RUN_COLUMNS = "r.id, r.name, r.status, r.created_at, r.ended_at"
QUERIES = {
    "all": f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.experiment = ? "
    "ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
    "filtered": f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.experiment = ? "
    "AND EXISTS (SELECT 1 FROM latest m WHERE m.run_id = r.id AND m.key = 'm0' AND m.value > 0.5) "
    "AND EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.id AND p.key = 'p1' AND p.value = 'v3') "
    "ORDER BY r.created_at DESC, r.id DESC LIMIT ?",
    "top100": f"SELECT {RUN_COLUMNS} FROM runs r LEFT JOIN latest m ON m.run_id = r.id "
    "AND m.key = 'm0' WHERE r.experiment = ? "
    "ORDER BY m.value IS NULL, m.value DESC, r.created_at DESC, r.id DESC LIMIT ?",
}


class Floor:
    tool = "sqlite3"
    version = sqlite3.sqlite_version
    variants = ("log_metric",)
    cases = ("all", "filtered", "top100")

    def __init__(self) -> None:
        self.db: Any = None

    def open(self, store: Path, *, create: bool) -> None:
        store.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(store / "floor.db", isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        if create:
            self.db.executescript(SCHEMA)

    def _new_run(self, experiment: str, name: str | None) -> int:
        cursor = self.db.execute(
            "INSERT INTO runs (experiment, name, status, created_at) VALUES (?, ?, 'running', ?)",
            (experiment, name, time.time()),
        )
        return int(cursor.lastrowid)

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")

    def log_run(self, variant: str, calls: int) -> tuple[str, dict[str, float]]:
        t0 = time.perf_counter()
        run_id = self._new_run(w.LOG_EXPERIMENT, None)
        t1 = time.perf_counter()
        pending: list[tuple[Any, ...]] = []
        for i in range(calls):
            pending.append((run_id, w.METRIC, w.metric_value(i), i, time.time()))
            if len(pending) >= FLUSH_EVERY:
                self._write(pending)
                pending = []
        t2 = time.perf_counter()
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", pending)
        self.db.execute(
            "INSERT OR REPLACE INTO latest SELECT run_id, key, value FROM metrics "
            "WHERE run_id = ? AND key = ? ORDER BY step DESC LIMIT 1",
            (run_id, w.METRIC),
        )
        self.db.execute(
            "UPDATE runs SET status = 'success', ended_at = ? WHERE id = ?", (time.time(), run_id)
        )
        self.db.execute("COMMIT")
        t3 = time.perf_counter()
        return str(run_id), {"start_s": t1 - t0, "loop_s": t2 - t1, "end_s": t3 - t2}

    def stored_values(self, run_id: str) -> int:
        query = "SELECT count(*) FROM metrics WHERE run_id = ? AND key = ?"
        return int(self.db.execute(query, (int(run_id), w.METRIC)).fetchone()[0])

    def add_run(self, name: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        self.db.execute("BEGIN")
        run_id = self._new_run(w.SEARCH_EXPERIMENT, name)
        now = time.time()
        self.db.executemany(
            "INSERT INTO params VALUES (?, ?, ?)", [(run_id, k, v) for k, v in params.items()]
        )
        self.db.executemany(
            "INSERT INTO metrics VALUES (?, ?, ?, 0, ?)",
            [(run_id, k, v, now) for k, v in metrics.items()],
        )
        self.db.executemany(
            "INSERT INTO latest VALUES (?, ?, ?)", [(run_id, k, v) for k, v in metrics.items()]
        )
        self.db.execute(
            "UPDATE runs SET status = 'success', ended_at = ? WHERE id = ?", (now, run_id)
        )
        self.db.execute("COMMIT")

    def search(self, case: str) -> list[str]:
        max_results = w.CASES[case][2]
        rows = self.db.execute(QUERIES[case], (w.SEARCH_EXPERIMENT, max_results)).fetchall()
        ids = [r[0] for r in rows]
        marks = ",".join("?" * len(ids))
        loaded: dict[str, dict[int, dict[str, Any]]] = {"params": {}, "latest": {}}
        for table, bucket in loaded.items():
            query = f"SELECT run_id, key, value FROM {table} WHERE run_id IN ({marks})"
            for run_id, key, value in self.db.execute(query, ids):
                bucket.setdefault(run_id, {})[key] = value
        found = [
            {
                "id": r[0],
                "name": r[1],
                "status": r[2],
                "created_at": r[3],
                "ended_at": r[4],
                "params": loaded["params"].get(r[0], {}),
                "metrics": loaded["latest"].get(r[0], {}),
            }
            for r in rows
        ]
        return [run["name"] for run in found]


if __name__ == "__main__":
    w.main(Floor, t0=T0, import_s=IMPORT_S)
