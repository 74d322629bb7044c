"""The tracking workloads and the runners' side of their measurement (stdlib only).

Imported by the runners in this folder from whichever venv runs them (the project's for
headrace, MLflow's own for MLflow), so it needs nothing outside the standard library.
The workloads are those of ``../shared/peers/tracking-serving/`` (``track_bench.py`` and
``search_bench.py``):

- **Logging**: one run of experiment ``bench-metrics`` receives :data:`VALUES` values of
  the metric ``loss`` (value ``1 / (i + 1)`` at step ``i``), one call each (or, for
  MLflow's ``log_batch``, all in one call).
- **Search**: experiment ``bench-search`` holds :data:`RUNS` finished runs named ``r0`` to
  ``r999``, each with params ``p0``-``p4`` (``'v0'``-``'v9'``) and metrics ``m0``-``m4``
  (in [0, 1)), drawn from ``random.Random(0)`` in the shared script's order, so every
  tool stores the same values and :func:`expected_names` knows what each query returns.

A runner is a small adapter (:class:`Adapter`) handed to :func:`main`, which parses
the command line, times the phases and prints one ``RESULT {json}`` line:

    RUNNER log --store DIR --variant log_metric --calls 10000 --warm 2
    RUNNER populate --store DIR
    RUNNER search --store DIR --case filtered --warm 5

``log`` creates a fresh store in DIR, then times ``1 + warm`` runs of ``calls`` values
each (the first one cold), checking after each (untimed) that every value was stored.
``search`` opens the store ``populate`` made and times ``1 + warm`` calls of one query
(the first one cold: the process's first query), checking the runs it returns.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

VALUES = 10_000
LOG_EXPERIMENT = "bench-metrics"
METRIC = "loss"
SEARCH_EXPERIMENT = "bench-search"
RUNS = 1000
PARAMS = 5
METRICS = 5
SEED = 0
FILTER = "metrics.m0 > 0.5 AND params.p1 = 'v3'"
ORDER = "metrics.m0 DESC"
TOP = 100


def metric_value(i: int) -> float:
    return 1.0 / (i + 1)


def search_runs() -> list[tuple[str, dict[str, str], dict[str, float]]]:
    """The search workload's runs: (name, params, metrics), in creation order."""
    rng = random.Random(SEED)
    out = []
    for i in range(RUNS):
        params = {f"p{j}": f"v{rng.randint(0, 9)}" for j in range(PARAMS)}
        metrics = {f"m{j}": rng.random() for j in range(METRICS)}
        out.append((f"r{i}", params, metrics))
    return out


# The queries: case -> (filter, order_by, max_results). ``all_pandas`` is MLflow's
# ``mlflow.search_runs`` (a pandas DataFrame of all runs), for information.
CASES: dict[str, tuple[str | None, str | None, int]] = {
    "all": (None, None, RUNS),
    "filtered": (FILTER, None, RUNS),
    "top100": (None, ORDER, TOP),
    "all_pandas": (None, None, RUNS),
}
ORDERED_CASES = {"top100"}


def expected_names(case: str) -> list[str]:
    """The run names ``case`` must return (in order for ordered cases, else sorted)."""
    runs = search_runs()
    if case == "filtered":
        return sorted(name for name, p, m in runs if m["m0"] > 0.5 and p["p1"] == "v3")
    if case == "top100":
        return [name for name, _, m in sorted(runs, key=lambda r: -r[2]["m0"])][:TOP]
    return sorted(name for name, _, _ in runs)


class Adapter(Protocol):
    """One tool's side: what the runner times."""

    tool: str
    version: str
    variants: tuple[str, ...]
    cases: tuple[str, ...]

    def open(self, store: Path, *, create: bool) -> None:
        """Create (``create``) or open the tracking store in ``store``; ready to use."""

    def log_run(self, variant: str, calls: int) -> tuple[str, dict[str, float]]:
        """One run with ``calls`` values; its id and phases (start_s, loop_s, end_s)."""
        ...

    def stored_values(self, run_id: str) -> int:
        """How many values of :data:`METRIC` the store holds for ``run_id``."""
        ...

    def add_run(self, name: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        """One finished run of the search workload."""

    def search(self, case: str) -> list[str]:
        """Run the query ``case`` of :data:`CASES`; the names of the runs returned."""
        ...


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    cpu, started = _cpu(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started, _cpu() - cpu


def _log(adapter: Adapter, args: argparse.Namespace, record: dict[str, Any]) -> None:
    if args.variant not in adapter.variants:
        raise SystemExit(f"{adapter.tool}: no variant {args.variant!r} ({adapter.variants})")
    _, store_s, _ = _timed(lambda: adapter.open(args.store, create=True))
    record.update(variant=args.variant, calls=args.calls, store_s=round(store_s, 4), runs=[])
    for k in range(1 + args.warm):
        (run_id, phases), wall, cpu = _timed(lambda: adapter.log_run(args.variant, args.calls))
        if k == 0:
            record["e2e_s"] = round(time.perf_counter() - record.pop("_t0"), 4)
        stored = adapter.stored_values(run_id)
        if stored != args.calls:
            raise SystemExit(f"{adapter.tool}: run {run_id} stored {stored} of {args.calls}")
        figures = {"wall_s": round(wall, 4), "cpu_s": round(cpu, 3), "stored": stored}
        figures.update({k: round(v, 4) for k, v in phases.items()})
        record["runs"].append(figures)


def _populate(adapter: Adapter, args: argparse.Namespace, record: dict[str, Any]) -> None:
    _, store_s, _ = _timed(lambda: adapter.open(args.store, create=True))

    def fill() -> None:
        for name, params, metrics in search_runs():
            adapter.add_run(name, params, metrics)

    _, wall, cpu = _timed(fill)
    record.update(store_s=round(store_s, 4), populate_s=round(wall, 3), cpu_s=round(cpu, 2))
    record["check"] = sorted(adapter.search("all")) == expected_names("all")


def _search(adapter: Adapter, args: argparse.Namespace, record: dict[str, Any]) -> None:
    if args.case not in adapter.cases:
        raise SystemExit(f"{adapter.tool}: no search case {args.case!r} ({adapter.cases})")
    _, open_s, _ = _timed(lambda: adapter.open(args.store, create=False))
    want = expected_names(args.case)
    calls, same = [], True
    for _ in range(1 + args.warm):
        names, wall, _ = _timed(lambda: adapter.search(args.case))
        got = names if args.case in ORDERED_CASES else sorted(names)
        same = same and got == want
        calls.append(round(wall, 5))
    record.update(
        case=args.case,
        query=dict(zip(("filter", "order_by", "max_results"), CASES[args.case], strict=True)),
        open_s=round(open_s, 4),
        cold_s=calls[0],
        warm_s=calls[1:],
        n_results=len(names),
        n_expected=len(want),
        same=same,
    )


def runner_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    log = sub.add_parser("log", help="time runs of one-by-one or batched logging")
    log.add_argument("--store", type=Path, required=True)
    log.add_argument("--variant", default="log_metric")
    log.add_argument("--calls", type=int, default=VALUES, help="values per run")
    log.add_argument("--warm", type=int, default=2, help="runs after the first, cold one")
    populate = sub.add_parser("populate", help="create the search workload's runs")
    populate.add_argument("--store", type=Path, required=True)
    search = sub.add_parser("search", help="time one query against a populated store")
    search.add_argument("--store", type=Path, required=True)
    search.add_argument("--case", choices=sorted(CASES), default="all")
    search.add_argument("--warm", type=int, default=5, help="calls after the first, cold one")
    return parser.parse_args(argv)


def main(make: Callable[[], Adapter], *, t0: float, import_s: float) -> None:
    """Parse the command line, run it with the adapter ``make()`` returns, print RESULT.

    ``t0`` is the runner's first instant (before it imported its library), so ``e2e_s``
    (to the end of the first logging run) counts the import and the store's creation.
    """
    args = runner_args()
    adapter = make()
    record: dict[str, Any] = {
        "tool": adapter.tool,
        "version": adapter.version,
        "command": args.command,
        "import_s": round(import_s, 4),
        "python": sys.version.split()[0],
        "loadavg1": round(os.getloadavg()[0], 2),
        "_t0": t0,
    }
    {"log": _log, "populate": _populate, "search": _search}[args.command](adapter, args, record)
    record.pop("_t0", None)
    emit(record)


def emit(record: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(record, default=str), flush=True)


def library_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"
