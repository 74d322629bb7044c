"""Shared by the peer runner scripts: argument parsing and the one-line JSON result.

Runner scripts execute inside a peer's own virtual environment, so this module uses the
standard library only. Workloads (identical across peers):

- ``chain N``: task 0 returns ``0 + 1``; task ``i`` takes task ``i-1``'s value and returns
  ``x + 1``. The last value is ``N``.
- ``fan N``: ``N`` independent tasks; task ``i`` returns ``i + 1``. The values sum to
  ``N * (N + 1) / 2``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

MODES = ("chain", "fan")


@dataclass(frozen=True)
class Args:
    mode: str
    n: int
    extra: tuple[str, ...]


def parse_args(usage: str, extra_choices: tuple[str, ...] = ()) -> Args:
    """Read ``MODE N [EXTRA]`` from ``sys.argv``; exit with status 2 and ``usage`` if invalid."""
    argv = sys.argv[1:]
    want = 3 if extra_choices else 2
    valid = (
        len(argv) in (2, want)
        and argv[0] in MODES
        and argv[1].isdigit()
        and int(argv[1]) >= 1
        and (len(argv) == 2 or argv[2] in extra_choices)
    )
    if not valid:
        print(f"usage: {usage}", file=sys.stderr)
        raise SystemExit(2)
    extra = tuple(argv[2:]) if len(argv) == want else extra_choices[:1]
    return Args(mode=argv[0], n=int(argv[1]), extra=extra)


def expected(mode: str, n: int) -> int:
    """The workload's final value: the chain's last value, or the fan-out's sum."""
    return n if mode == "chain" else n * (n + 1) // 2


def emit(*, import_s: float, run_s: float, run_cpu_s: float, ok: bool, **extra: object) -> None:
    """Print the single JSON result line the bench parses (the last ``{``-line of stdout)."""
    record: dict[str, object] = {
        "import_s": import_s,
        "run_s": run_s,
        "run_cpu_s": run_cpu_s,
        "ok": ok,
        **extra,
    }
    sys.stdout.flush()
    print(json.dumps(record), flush=True)
