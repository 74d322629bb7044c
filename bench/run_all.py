"""``make bench``: every benchmark, side by side with the peers the issues name.

Usage: python bench/run_all.py [--no-peers]
                               [--peers dagster,prefect,airflow,plain,dvc,great_expectations,
                                        pandera,polars,duckdb,mlflow,sqlite3,evidently]
                               [--only orchestration,versioning,quality,tracking,serving,
                                       drift,server,automation,objects]
                               [--reps 3] [--big-n 10000] [--gx-reps 1] [--mlflow-calls 1000]
                               [--serve-seconds 10] [--serve-workers 1,2]
                               [--out bench/results/latest.json]

Each benchmark takes the peers it knows from --peers: orchestration the orchestrators
(plain, prefect, dagster, airflow), versioning DVC (dvc), quality Great Expectations
(great_expectations, alias gx), Pandera (pandera) and the hand-written floors (polars, duckdb),
tracking MLflow (mlflow) and a hand-written floor (sqlite3), serving MLflow's
`mlflow models serve` (mlflow), drift Evidently's DataDriftPreset (evidently), server
`mlflow server` (mlflow), objects (the durable and the encrypted object store) `dvc add` (dvc).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import (
    automation,
    drift,
    objects,
    orchestration,
    quality,
    serving,
    team_server,
    tracking,
    versioning,
)

DEFAULT_PEERS = (
    "plain,prefect,dagster,airflow,dvc,great_expectations,pandera,polars,duckdb,mlflow,sqlite3,"
    "evidently"
)
BENCHMARKS = (
    "orchestration",
    "versioning",
    "quality",
    "tracking",
    "serving",
    "drift",
    "server",
    "automation",
    "objects",
)
VERSIONING_PEERS = {"dvc"}
QUALITY_PEERS = {*quality.PEERS, *quality.ALIASES}
TRACKING_PEERS = set(tracking.PEERS)
SERVING_PEERS = set(serving.PEERS)
DRIFT_PEERS = set(drift.PEERS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-peers", action="store_true", help="headrace only")
    parser.add_argument("--peers", default=DEFAULT_PEERS)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="benchmarks to run")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--big-n", type=int, default=10_000)
    parser.add_argument("--gx-reps", type=int, default=1, help="Great Expectations runs (slow)")
    parser.add_argument(
        "--mlflow-calls",
        type=int,
        default=tracking.MLFLOW_CALLS,
        help="MLflow log_metric calls per run (fewer than 10,000: extrapolated, labelled)",
    )
    parser.add_argument(
        "--serve-seconds",
        type=int,
        default=serving.DURATION_S,
        help="serving: seconds of load per concurrency (after a 2 s warm-up)",
    )
    parser.add_argument(
        "--serve-workers",
        default=",".join(map(str, serving.WORKERS)),
        help="serving: the server process counts to measure",
    )
    parser.add_argument(
        "--drift-rows", type=int, default=drift.ROWS, help="drift: rows of each frame"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    args = parser.parse_args(argv)
    only = [b for b in args.only.split(",") if b]
    unknown = sorted(set(only) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    peers = None if args.no_peers else [p for p in args.peers.split(",") if p]
    results: dict[str, Any] = {}
    if "orchestration" in only:
        others = VERSIONING_PEERS | QUALITY_PEERS | TRACKING_PEERS | SERVING_PEERS | DRIFT_PEERS
        theirs = None if peers is None else [p for p in peers if p not in others]
        results["orchestration"] = orchestration.run(peers=theirs, reps=args.reps, big_n=args.big_n)
        print("== orchestration ==")
        print(orchestration.report(results["orchestration"]))
    if "versioning" in only:
        results["versioning"] = versioning.run(peers=peers, reps=args.reps)
        print("\n== versioning ==" if "orchestration" in only else "== versioning ==")
        print(versioning.report(results["versioning"]))
    if "quality" in only:
        results["quality"] = quality.run(peers=peers, reps=args.reps, gx_reps=args.gx_reps)
        print("\n== quality ==" if len(results) > 1 else "== quality ==")
        print(quality.report(results["quality"]))
    if "tracking" in only:
        results["tracking"] = tracking.run(
            peers=peers, reps=args.reps, mlflow_calls=args.mlflow_calls
        )
        print("\n== tracking ==" if len(results) > 1 else "== tracking ==")
        print(tracking.report(results["tracking"]))
    if "serving" in only:
        results["serving"] = serving.run(
            peers=peers,
            workers=tuple(int(x) for x in args.serve_workers.split(",") if x.strip()),
            duration=args.serve_seconds,
        )
        print("\n== serving ==" if len(results) > 1 else "== serving ==")
        print(serving.report(results["serving"]))
    if "drift" in only:
        results["drift"] = drift.run(
            peers=None if peers is None else [p for p in peers if p in DRIFT_PEERS],
            rows=args.drift_rows,
        )
        print("\n== drift ==" if len(results) > 1 else "== drift ==")
        print(drift.report(results["drift"]))
    if "server" in only:
        results["server"] = team_server.run(
            peers=peers, reps=args.reps, mlflow_calls=args.mlflow_calls
        )
        print("\n== server ==" if len(results) > 1 else "== server ==")
        print(team_server.report(results["server"]))
    if "automation" in only:
        results["automation"] = automation.run()
        print("\n== automation ==" if len(results) > 1 else "== automation ==")
        print(automation.report(results["automation"]))
    if "objects" in only:
        results["objects"] = objects.run(peers=peers, reps=args.reps)
        print("\n== objects ==" if len(results) > 1 else "== objects ==")
        print(objects.report(results["objects"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nresults written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
