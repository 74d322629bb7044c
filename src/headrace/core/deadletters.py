"""Dead letters: rows a buffered writer could not write because the database refused
them, kept with the reason instead of being dropped or blocking the rows behind them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The buffered writers that dead-letter rows, by the name kept in each letter.
PREDICTIONS = "predictions"
TRACKING = "tracking"
LABELS = "labels"


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    """One refused row: which writer refused it, why, and the row itself (decoded)."""

    id: int
    writer: str
    reason: str
    payload: Any
    created_at: float
