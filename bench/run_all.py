"""``make bench``: every benchmark, side by side with the peers the issues name.

Usage: python bench/run_all.py [--no-peers] [--peers dagster,prefect,airflow,plain]
                               [--reps 3] [--big-n 10000] [--out bench/results/latest.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import orchestration

DEFAULT_PEERS = "plain,prefect,dagster,airflow"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-peers", action="store_true", help="headrace only")
    parser.add_argument("--peers", default=DEFAULT_PEERS)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--big-n", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    args = parser.parse_args(argv)
    peers = None if args.no_peers else [p for p in args.peers.split(",") if p]
    results = {"orchestration": orchestration.run(peers=peers, reps=args.reps, big_n=args.big_n)}
    print("== orchestration ==")
    print(orchestration.report(results["orchestration"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nresults written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
