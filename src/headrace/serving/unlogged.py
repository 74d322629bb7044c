"""Prediction rows a scoring server could not write to the metadata store: kept in a
JSON-lines file at shutdown (:func:`spill`), written later by ``headrace predictions
load`` (:func:`load_unlogged`)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.core.deadletters import PREDICTIONS

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore


def spill(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows to a new JSON-lines file (ASCII, so any byte the store refused survives)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"predictions-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"
    with path.open("a", encoding="ascii") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=True, default=str) + "\n")
        out.flush()
        os.fsync(out.fileno())
    return path


@dataclass(frozen=True)
class Loaded:
    written: int
    present: int
    dead_lettered: int


def load_unlogged(store: MetadataStore, path: str | Path) -> Loaded:
    """Write the rows of a file a server kept when the store was unreachable (see
    ``PredictionLog.close``); rows logged already are skipped, so loading a file twice
    writes nothing twice, and rows the database refuses become dead letters."""
    from headrace.serving.errors import UnloggedFileError
    from headrace.store.deadletters import IsolatingWriter
    from headrace.store.errors import StoreUnreachableError
    from headrace.store.failures import refusal
    from headrace.store.schema import predictions

    columns = {c.name for c in predictions.columns}
    rows: list[dict[str, Any]] = []
    try:
        with Path(path).open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise UnloggedFileError(
                        f"{path}, line {number}: not JSON ({exc}); expected one prediction "
                        "row per line as the server wrote it",
                        path=str(path),
                        line=number,
                    ) from exc
                if not isinstance(row, dict) or set(row) != columns:
                    got = sorted(row) if isinstance(row, dict) else type(row).__name__
                    raise UnloggedFileError(
                        f"{path}, line {number}: expected a row with the prediction log's "
                        f"columns {sorted(columns)}, got {got}",
                        path=str(path),
                        line=number,
                    )
                rows.append(row)
    except OSError as exc:
        raise UnloggedFileError(
            f"cannot read {path}: {exc.strerror or exc}", path=str(path)
        ) from exc
    present = store.predictions.present([row["id"] for row in rows])
    new = [row for row in rows if row["id"] not in present]
    writer: IsolatingWriter[dict[str, Any]] = IsolatingWriter(
        store, PREDICTIONS, store.predictions.write, lambda row: row
    )
    outcome = writer.write(new)
    if outcome.error is not None:
        raise StoreUnreachableError(
            f"the metadata store could not be reached ({refusal(outcome.error)}); "
            f"{len(outcome.unwritten):,} rows of {path} are not written yet: load the file "
            "again once it answers"
        ) from outcome.error
    return Loaded(outcome.written, len(present), len(outcome.dead_lettered))
