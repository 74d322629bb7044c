"""Batch scoring: a whole table through a registered model, written as a versioned table.

The input is an asset (its current version on a branch, all partitions) or a Parquet
or CSV file. Rows are scored in chunks (the signature is enforced on each), the
predictions (and, for a binary classifier, the probability of the positive class) are
added as columns, and the result becomes a new version of the output asset.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.serving.formats import ScoringInputError

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace
    from headrace.store.records import VersionRecord


@dataclass(frozen=True)
class BatchResult:
    rows: int
    model: str
    version: int
    output: VersionRecord
    seconds: float


def _read_input(ws: Workspace, source: str, branch: str) -> Any:
    import polars as pl

    path = Path(source)
    if path.suffix.lower() in (".parquet", ".csv") or path.exists():
        if not path.is_file():
            raise ScoringInputError(f"input file {source!r} does not exist", field="input")
        if path.suffix.lower() == ".csv":
            return pl.read_csv(path, infer_schema_length=None)
        return pl.read_parquet(path)
    heads = sorted(
        ws.store.versions.heads(branch, [source]).values(), key=lambda v: v.partition or ""
    )
    if not heads:
        raise ScoringInputError(
            f"{source!r} is neither a file nor an asset with a version on branch {branch!r}",
            field="input",
        )
    from headrace.runtime.reading import read_version

    tables = [read_version(ws, v, "polars") for v in heads]
    return pl.concat(tables, how="diagonal_relaxed") if len(tables) > 1 else tables[0]


def score_table(
    ws: Workspace,
    uri: str,
    source: str,
    output: str,
    *,
    branch: str = "main",
    chunk_rows: int = 100_000,
    keep: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    allow_pickle: bool = False,
) -> BatchResult:
    """Score ``source`` with the model at ``uri``; the result is a version of ``output``.

    ``keep`` names the input columns copied beside the predictions (default: all).
    """
    import numpy as np
    import polars as pl

    from headrace.data.versions import import_table
    from headrace.registry.service import load_model

    started = time.perf_counter()
    model = load_model(ws, uri, allow_pickle=allow_pickle)
    table = _read_input(ws, source, branch)
    if keep is not None:
        missing = [c for c in keep if c not in table.columns]
        if missing:
            raise ScoringInputError(f"the input has no column {missing[0]!r}", field=missing[0])
    if chunk_rows < 1:
        raise ScoringInputError("chunk_rows must be at least 1", field="chunk_rows")
    total = table.height
    proba = callable(getattr(model.model, "predict_proba", None))
    parts = []
    for offset in range(0, max(total, 1), chunk_rows):
        chunk = table.slice(offset, chunk_rows)
        if chunk.is_empty():
            break
        predicted = np.asarray(model.predict(chunk))
        columns: dict[str, Any] = {"prediction": predicted}
        if proba:
            probabilities = np.asarray(model.predict_proba(chunk))
            if probabilities.ndim == 2 and probabilities.shape[1] == 2:
                columns["probability"] = probabilities[:, 1]
        kept = chunk.select(keep) if keep is not None else chunk
        parts.append(
            kept.with_columns(
                pl.DataFrame(columns).to_series(i).alias(name) for i, name in enumerate(columns)
            )
        )
        if progress is not None:
            progress(min(offset + chunk_rows, total), total)
    if not parts:
        raise ScoringInputError(f"the input {source!r} has no rows", field="input")
    result = pl.concat(parts)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scored.parquet"
        result.write_parquet(path, compression="zstd")
        imported = import_table(ws, output, path, branch=branch)
    return BatchResult(
        rows=result.height,
        model=model.name,
        version=model.version,
        output=imported.version,
        seconds=time.perf_counter() - started,
    )
