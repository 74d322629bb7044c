"""Writing what a tracked run logged so that a value the database refuses cannot hold
back the others, and an unreachable store loses nothing.

A batch is split into atoms (one param, tag, metric value or artifact each) only when
the database refuses it: :class:`~headrace.store.deadletters.IsolatingWriter` halves it
until the refused atoms stand alone, writes the rest and keeps those as dead letters
(``headrace deadletters list --writer tracking``). While the store cannot be reached,
the atoms stay pending and :meth:`TrackedWriter.write` says so.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.core.deadletters import TRACKING
from headrace.core.tracking import Tracked

if TYPE_CHECKING:
    from headrace.store.deadletters import Outcome

log = logging.getLogger("headrace.tracking")

#: ("param" | "tag", key, value), ("metric", (key, value, step, time)) or
#: ("artifact", (path, blob, size, time))
Atom = tuple[Any, ...]


def atoms(tracked: Tracked) -> list[Atom]:
    out: list[Atom] = [("param", k, v) for k, v in tracked.params.items()]
    out += [("tag", k, v) for k, v in tracked.tags.items()]
    out += [("metric", m) for m in tracked.metrics]
    out += [("artifact", a) for a in tracked.artifacts]
    return out


def merged(parts: list[Atom]) -> Tracked:
    tracked = Tracked()
    for atom in parts:
        kind = atom[0]
        if kind == "param":
            tracked.params[atom[1]] = atom[2]
        elif kind == "tag":
            tracked.tags[atom[1]] = atom[2]
        elif kind == "metric":
            tracked.metrics.append(atom[1])
        else:
            tracked.artifacts.append(atom[1])
    return tracked


class TrackedWriter:
    """Writes one local run's batches through the store's isolating writer."""

    def __init__(self, store: Any, run_id: str) -> None:
        from headrace.store.deadletters import IsolatingWriter

        self.run_id = run_id
        self._store = store
        self._writer: IsolatingWriter[Atom] = IsolatingWriter(
            store, TRACKING, self._write, self._payload
        )

    def _write(self, parts: list[Atom]) -> None:
        self._store.tracking.write(self.run_id, merged(parts))

    def _payload(self, atom: Atom) -> dict[str, Any]:
        value = list(atom[1:]) if atom[0] in ("param", "tag") else list(atom[1])
        return {"run_id": self.run_id, "kind": atom[0], "value": value}

    def write(self, tracked: Tracked) -> tuple[Tracked, Outcome[Atom]]:
        """Write ``tracked``; (what is still pending because the store could not be
        reached, the outcome). Refused atoms are dead-lettered, not pending."""
        outcome = self._writer.write(atoms(tracked))
        return merged(outcome.unwritten), outcome


def spill(folder: Path, run_id: str, tracked: Tracked) -> Path:
    """What a run could not write at its end, as JSON lines (one atom each)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"tracking-{run_id}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"
    with path.open("a", encoding="ascii") as out:
        for atom in atoms(tracked):
            value = list(atom[1:]) if atom[0] in ("param", "tag") else list(atom[1])
            line = {"run_id": run_id, "kind": atom[0], "value": value}
            out.write(json.dumps(line, ensure_ascii=True, default=str) + "\n")
    return path
