"""Partitions definitions: static keys, daily and monthly time windows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from headrace.core.errors import PartitionError


@dataclass(frozen=True, kw_only=True)
class PartitionsDefinition:
    """Base of every partitions definition: an ordered, finite list of string keys."""

    def keys(self, *, until: dt.date | None = None) -> list[str]:
        """All keys in order (time-based ones up to ``until``, default today)."""
        raise NotImplementedError

    def validate_key(self, key: str) -> str:
        """Return ``key`` normalised, or raise :class:`PartitionError`."""
        raise NotImplementedError

    def offset(self, key: str, n: int) -> str | None:
        """The key ``n`` steps after ``key`` (before if negative), or None past the start."""
        raise NotImplementedError

    def window(self, key: str) -> tuple[dt.date, dt.date] | None:
        """The half-open date window ``[start, end)`` a time key covers; None for static."""
        return None

    def key_range(self, start: str, end: str) -> list[str]:
        """Keys from ``start`` to ``end`` inclusive, in order."""
        first, last = self.validate_key(start), self.validate_key(end)
        if self.sort_key(first) > self.sort_key(last):
            raise PartitionError(f"partition range {start}..{end} is empty: {start} is after {end}")
        return self._between(first, last)

    def sort_key(self, key: str) -> str:
        return key

    def _between(self, first: str, last: str) -> list[str]:
        out: list[str] = []
        current: str | None = first
        while current is not None:
            out.append(current)
            if current == last:
                break
            current = self.offset(current, 1)
        return out


@dataclass(frozen=True, kw_only=True)
class StaticPartitions(PartitionsDefinition):
    """A fixed, ordered list of keys, e.g. regions or customers."""

    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise PartitionError("StaticPartitions needs at least one key")
        seen: set[str] = set()
        for key in self.values:
            if not isinstance(key, str) or not key:
                raise PartitionError(
                    f"static partition keys must be non-empty strings, got {key!r}"
                )
            if any(c in key for c in "[],\n") or key != key.strip():
                raise PartitionError(f"static partition key {key!r} may not contain '[', ']', ','")
            if key in seen:
                raise PartitionError(f"static partition key {key!r} is listed twice")
            seen.add(key)

    def keys(self, *, until: dt.date | None = None) -> list[str]:
        return list(self.values)

    def validate_key(self, key: str) -> str:
        if key not in self.values:
            raise PartitionError(
                f"unknown partition {key!r}; expected one of: {', '.join(self.values[:10])}"
                + (" ..." if len(self.values) > 10 else "")
            )
        return key

    def offset(self, key: str, n: int) -> str | None:
        i = self.values.index(self.validate_key(key)) + n
        return self.values[i] if 0 <= i < len(self.values) else None

    def sort_key(self, key: str) -> str:
        return f"{self.values.index(key):09d}"


def _parse_date(value: str | dt.date, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return dt.date.fromisoformat(value + "-01")
    except ValueError as exc:
        raise PartitionError(f"{what} {value!r} is not a date like 2013-01-31 or 2013-01") from exc


@dataclass(frozen=True, kw_only=True)
class TimePartitions(PartitionsDefinition):
    """Shared behaviour of daily and monthly partitions: ``start`` to ``end`` inclusive."""

    start: dt.date
    end: dt.date | None = None

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise PartitionError(f"partitions end {self.end} is before their start {self.start}")

    def _key(self, day: dt.date) -> str:
        raise NotImplementedError

    def _start_of(self, key: str) -> dt.date:
        raise NotImplementedError

    def _next(self, day: dt.date, n: int) -> dt.date:
        raise NotImplementedError

    def key_for(self, day: dt.date) -> str:
        """The key of the partition holding ``day`` (it may lie outside start..end)."""
        return self._key(day)

    def keys(self, *, until: dt.date | None = None) -> list[str]:
        last = self.end or until or dt.date.today()
        if last < self.start:
            return []
        return self._between(self._key(self.start), self._key(last))

    def validate_key(self, key: str) -> str:
        day = self._start_of(key)
        if self._key(day) != key:
            raise PartitionError(f"partition {key!r} is not in the form {self._key(self.start)!r}")
        if day < self._start_of(self._key(self.start)) or (self.end is not None and day > self.end):
            raise PartitionError(
                f"partition {key!r} is outside {self._key(self.start)}.."
                f"{self._key(self.end) if self.end else 'today'}"
            )
        return key

    def offset(self, key: str, n: int) -> str | None:
        day = self._next(self._start_of(key), n)
        if day < self._start_of(self._key(self.start)):
            return None
        if self.end is not None and day > self.end:
            return None
        return self._key(day)

    def window(self, key: str) -> tuple[dt.date, dt.date]:
        first = self._start_of(key)
        return first, self._next(first, 1)


@dataclass(frozen=True, kw_only=True)
class DailyPartitions(TimePartitions):
    """One partition per day, keyed ``YYYY-MM-DD``."""

    def _key(self, day: dt.date) -> str:
        return day.isoformat()

    def _start_of(self, key: str) -> dt.date:
        try:
            return dt.date.fromisoformat(key)
        except (ValueError, TypeError) as exc:
            raise PartitionError(f"daily partition {key!r} is not a date like 2013-01-31") from exc

    def _next(self, day: dt.date, n: int) -> dt.date:
        return day + dt.timedelta(days=n)


@dataclass(frozen=True, kw_only=True)
class MonthlyPartitions(TimePartitions):
    """One partition per calendar month, keyed ``YYYY-MM``."""

    def _key(self, day: dt.date) -> str:
        return f"{day.year:04d}-{day.month:02d}"

    def _start_of(self, key: str) -> dt.date:
        try:
            year, month = key.split("-")
            if len(year) != 4 or len(month) != 2:
                raise ValueError(key)
            return dt.date(int(year), int(month), 1)
        except (ValueError, TypeError, AttributeError) as exc:
            raise PartitionError(f"monthly partition {key!r} is not a month like 2013-07") from exc

    def _next(self, day: dt.date, n: int) -> dt.date:
        months = day.year * 12 + (day.month - 1) + n
        return dt.date(months // 12, months % 12 + 1, 1)


def static(values: Sequence[str]) -> StaticPartitions:
    """Partitions with a fixed list of keys."""
    return StaticPartitions(values=tuple(values))


def daily(start: str | dt.date, end: str | dt.date | None = None) -> DailyPartitions:
    """Daily partitions from ``start`` to ``end`` (inclusive; open-ended up to today)."""
    return DailyPartitions(
        start=_parse_date(start, "start"), end=None if end is None else _parse_date(end, "end")
    )


def monthly(start: str | dt.date, end: str | dt.date | None = None) -> MonthlyPartitions:
    """Monthly partitions from ``start`` to ``end`` (inclusive; open-ended up to today)."""
    first = _parse_date(start, "start").replace(day=1)
    last = None if end is None else _parse_date(end, "end")
    return MonthlyPartitions(start=first, end=last)


def parse_partition_arg(text: str) -> tuple[str, str | None]:
    """Split a CLI partition argument ``A`` or ``A..B`` into its ends."""
    if ".." in text:
        first, _, last = text.partition("..")
        if not first or not last:
            raise PartitionError(f"partition range {text!r} must look like START..END")
        return first.strip(), last.strip()
    return text.strip(), None


__all__ = [
    "DailyPartitions",
    "MonthlyPartitions",
    "PartitionsDefinition",
    "StaticPartitions",
    "TimePartitions",
    "daily",
    "monthly",
    "parse_partition_arg",
    "static",
]
