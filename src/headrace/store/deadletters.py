"""Writing a batch so that rows the database refuses cannot hold back the others.

:class:`IsolatingWriter` is the one mechanism every buffered writer uses: it writes a
batch in one transaction; when the database refuses it, it splits the batch in halves
until the refused rows stand alone, writes the rest, and keeps each refused row in the
``dead_letters`` table with the reason. When the store cannot be reached at all, it
splits nothing: the rows are handed back to be written later (see
:func:`headrace.store.failures.is_transient`).
"""

from __future__ import annotations

import builtins
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import func, insert, select

from headrace.core.deadletters import DeadLetter
from headrace.store.failures import is_transient, refusal
from headrace.store.schema import dead_letters

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore

log = logging.getLogger("headrace.store")

T = TypeVar("T")


def encode_payload(payload: Any) -> str:
    """The row as JSON text any database takes: ASCII only, so a NUL byte or a lone
    surrogate that made the row refused is kept escaped instead of refused again."""
    return json.dumps(payload, ensure_ascii=True, default=str, sort_keys=True)


class DeadLetterRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def add(self, writer: str, letters: Sequence[tuple[str, Any]]) -> None:
        """Keep refused rows: (reason, row as a JSON-ready value) pairs, in one
        transaction."""
        if not letters:
            return
        now = time.time()
        rows = [
            {
                "writer": writer,
                "reason": reason.replace("\x00", "\\x00"),
                "payload": encode_payload(payload),
                "created_at": now,
            }
            for reason, payload in letters
        ]
        with self._store.write() as c:
            c.execute(insert(dead_letters), rows)

    def list(
        self, *, writer: str | None = None, limit: int = 100, after: int = 0
    ) -> builtins.list[DeadLetter]:
        """Dead letters oldest first (those with an id above ``after``)."""
        query = select(dead_letters).where(dead_letters.c.id > after)
        if writer is not None:
            query = query.where(dead_letters.c.writer == writer)
        query = query.order_by(dead_letters.c.id).limit(limit)
        with self._store.read() as c:
            return [
                DeadLetter(
                    id=r.id,
                    writer=r.writer,
                    reason=r.reason,
                    payload=json.loads(r.payload),
                    created_at=r.created_at,
                )
                for r in c.execute(query)
            ]

    def count(self, writer: str | None = None) -> int:
        query = select(func.count()).select_from(dead_letters)
        if writer is not None:
            query = query.where(dead_letters.c.writer == writer)
        with self._store.read() as c:
            return int(c.execute(query).scalar() or 0)


@dataclass
class Outcome(Generic[T]):
    """What one :meth:`IsolatingWriter.write` did with its rows."""

    written: int = 0
    #: rows the database refused, each with the reason, now kept as dead letters
    dead_lettered: list[tuple[T, str]] = field(default_factory=list)
    #: rows not written because the store could not be reached: write them again later
    unwritten: list[T] = field(default_factory=list)
    #: the error that made the store unreachable (None when every row was handled)
    error: BaseException | None = None


class IsolatingWriter(Generic[T]):
    """Writes batches of one writer's rows; see the module's docstring.

    Args:
        store: the store whose ``dead_letters`` table keeps refused rows.
        writer: the writer's name in each dead letter (``predictions``, ``tracking``).
        write: writes a list of rows in one transaction, or raises (nothing written).
        payload: a refused row as a JSON-ready value, for its dead letter.
    """

    def __init__(
        self,
        store: MetadataStore,
        writer: str,
        write: Callable[[list[T]], None],
        payload: Callable[[T], Any],
    ) -> None:
        self._store = store
        self.writer = writer
        self._write = write
        self._payload = payload

    def write(self, rows: Sequence[T]) -> Outcome[T]:
        outcome: Outcome[T] = Outcome()
        refused: list[tuple[T, str]] = []
        # Halves are written in order; a refused batch is replaced by its two halves,
        # so k bad rows among n cost about k * log2(n) extra transactions.
        pending: deque[list[T]] = deque([list(rows)] if rows else [])
        while pending:
            batch = pending.popleft()
            try:
                self._write(batch)
            except Exception as exc:
                if is_transient(exc):
                    outcome.unwritten = [*batch, *(row for rest in pending for row in rest)]
                    outcome.error = exc
                    break
                if len(batch) == 1:
                    refused.append((batch[0], refusal(exc)))
                else:
                    middle = len(batch) // 2
                    pending.extendleft([batch[middle:], batch[:middle]])
                continue
            outcome.written += len(batch)
        if refused:
            self._dead_letter(refused, outcome)
        return outcome

    def _dead_letter(self, refused: list[tuple[T, str]], outcome: Outcome[T]) -> None:
        try:
            self._store.deadletters.add(
                self.writer, [(reason, self._payload(row)) for row, reason in refused]
            )
        except Exception as exc:  # kept for the next attempt, which refuses them again
            log.error(
                "%s: %d refused rows could not be dead-lettered (%s); they are kept and "
                "tried again",
                self.writer,
                len(refused),
                refusal(exc),
            )
            outcome.unwritten.extend(row for row, _ in refused)
            if outcome.error is None:
                outcome.error = exc
            return
        outcome.dead_lettered = refused
        reasons: dict[str, int] = {}
        for _, reason in refused:
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in reasons.items():
            log.error(
                "%s: the database refused %d rows; they are kept as dead letters "
                "(headrace deadletters list --writer %s): %s",
                self.writer,
                count,
                self.writer,
                reason,
            )
