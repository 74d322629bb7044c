"""Dagster 1.13: the chain and fan-out workloads as a job of ops or as a set of assets.

Usage: ``python dagster_run.py chain|fan N [ops|assets]`` (default ``ops``). Both run in
process: ``JobDefinition.execute_in_process`` for ops, ``dagster.materialize`` for assets.
With ``DAGSTER_HOME`` set the run uses that instance (an empty home or a ``dagster.yaml``
without storage settings means SQLite run, event-log and schedule storage); without it, an
ephemeral in-memory instance.
"""

from __future__ import annotations

import os
import time
from typing import Any

from _common import emit, expected, parse_args

_t_import = time.perf_counter()
import dagster as dg  # noqa: E402  (timed import)

IMPORT_S = time.perf_counter() - _t_import


def _source_op(name: str, value: int) -> dg.OpDefinition:
    @dg.op(name=name)
    def source() -> int:
        return value

    return source


def _increment_op(name: str) -> dg.OpDefinition:
    @dg.op(name=name)
    def increment(x: int) -> int:
        return x + 1

    return increment


def build_job(mode: str, n: int) -> dg.JobDefinition:
    if mode == "chain":
        first = _source_op("t0", 1)
        rest = [_increment_op(f"t{i}") for i in range(1, n)]

        @dg.job(name=f"chain_{n}")
        def chain_job() -> None:
            value = first()
            for op_def in rest:
                value = op_def(value)

        return chain_job

    sources = [_source_op(f"t{i}", i + 1) for i in range(n)]

    @dg.job(name=f"fan_{n}")
    def fan_job() -> None:
        for op_def in sources:
            op_def()

    return fan_job


def _source_asset(name: str, value: int) -> dg.AssetsDefinition:
    @dg.asset(name=name)
    def source() -> int:
        return value

    return source


def _increment_asset(name: str, upstream: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, ins={"x": dg.AssetIn(upstream)})
    def increment(x: int) -> int:
        return x + 1

    return increment


def build_assets(mode: str, n: int) -> list[dg.AssetsDefinition]:
    if mode == "chain":
        return [_source_asset("a0", 1)] + [
            _increment_asset(f"a{i}", f"a{i - 1}") for i in range(1, n)
        ]
    return [_source_asset(f"a{i}", i + 1) for i in range(n)]


def run(mode: str, n: int, style: str, instance: Any) -> tuple[bool, int]:
    """Build and execute the workload; return (success, final value)."""
    if style == "ops":
        result: Any = build_job(mode, n).execute_in_process(instance=instance)
        prefix = "t"
    else:
        result = dg.materialize(build_assets(mode, n), instance=instance)
        prefix = "a"
    if not result.success:
        return False, 0
    if mode == "chain":
        return True, int(result.output_for_node(f"{prefix}{n - 1}"))
    return True, sum(int(result.output_for_node(f"{prefix}{i}")) for i in range(n))


def main() -> None:
    args = parse_args("dagster_run.py chain|fan N [ops|assets]", ("ops", "assets"))
    style = args.extra[0]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    success, result = run(args.mode, args.n, style, instance)
    run_s, run_cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
    ok = success and result == expected(args.mode, args.n)
    storage = type(instance.run_storage).__name__ if instance is not None else "ephemeral"
    emit(
        import_s=IMPORT_S,
        run_s=run_s,
        run_cpu_s=run_cpu_s,
        ok=ok,
        result=result,
        style=style,
        storage=storage,
    )


if __name__ == "__main__":
    main()
