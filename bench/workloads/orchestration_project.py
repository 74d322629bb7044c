"""The orchestration workloads as a headrace project (env: BENCH_MODE, BENCH_N).

- ``chain``: N assets, each reading the previous one and returning ``x + 1``.
- ``fan``: N independent assets, each returning a small table (3 rows, 2 columns).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import headrace as hr

if TYPE_CHECKING:
    import pyarrow as pa

MODE = os.environ.get("BENCH_MODE", "chain")
N = int(os.environ.get("BENCH_N", "200"))


def small_table(i: int) -> pa.Table:
    import pyarrow as pa  # only the fan-out builds tables; the chain passes integers

    return pa.table({"i": [i, i + 1, i + 2], "v": [0.5, 1.5, 2.5]})


def _first() -> int:
    return 1


def _next(x: int) -> int:
    return x + 1


def _table(i: int) -> Callable[[], pa.Table]:
    def make() -> pa.Table:
        return small_table(i)

    return make


if MODE == "chain":
    definitions = [hr.asset(_first, name="a0")] + [
        hr.asset(_next, name=f"a{i}", ins={"x": f"a{i - 1}"}) for i in range(1, N)
    ]
else:
    definitions = [hr.asset(_table(i), name=f"t{i}") for i in range(N)]
