"""Availability: the backoff, what is logged (once, not per retry), the health snapshot,
and ``call`` retrying only what an outage explains."""

from __future__ import annotations

import logging
import threading

import pytest

from headrace.store.availability import Availability, describe
from headrace.store.errors import StoreUnreachableError


def test_the_wait_doubles_up_to_the_cap_with_jitter() -> None:
    availability = Availability("tester", first=0.25, cap=5.0)
    waits = [availability.lost(ConnectionRefusedError("refused")) for _ in range(8)]
    expected = [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    for wait, full in zip(waits, expected, strict=True):
        assert 0.8 * full <= wait <= full


def test_an_outage_is_logged_once_and_its_end_with_how_long_it_lasted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    availability = Availability("tester", logger=logging.getLogger("headrace.test"))
    assert availability.snapshot() == {
        "reachable": True,
        "since": None,
        "error": None,
        "failures": 0,
        "outages": 0,
    }
    with caplog.at_level(logging.WARNING, logger="headrace.test"):
        for _ in range(5):
            availability.lost(ConnectionRefusedError("connection refused"))
        down = availability.snapshot()
        availability.back()
        availability.back()  # no second line
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("tester: the metadata store is unreachable (")
    assert "ConnectionRefusedError: connection refused" in lines[0]
    assert lines[1].startswith("tester: the metadata store is reachable again after")
    assert "(5 failed attempts)" in lines[1]
    assert down["reachable"] is False and down["failures"] == 5 and down["outages"] == 1
    assert down["error"] == "ConnectionRefusedError: connection refused"
    up = availability.snapshot()
    assert up["reachable"] is True and up["error"] is None and up["failures"] == 0
    assert up["outages"] == 1 and up["since"] is not None


def test_describe_keeps_the_drivers_words_not_the_statement() -> None:
    from sqlalchemy.exc import OperationalError

    wrapped = OperationalError(
        "SELECT secret FROM t WHERE token = %(token)s",
        {"token": "hr_abc_secret"},
        ConnectionResetError("connection reset by peer"),
    )
    text = describe(wrapped)
    assert text == "ConnectionResetError: connection reset by peer"
    assert "secret" not in text


def test_call_retries_while_the_store_is_away_and_only_then() -> None:
    availability = Availability("tester", first=0.001, cap=0.002)
    stop = threading.Event()
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise StoreUnreachableError("down")
        return "done"

    assert availability.call(flaky, stop) == "done"
    assert len(attempts) == 3 and availability.reachable

    def wrong() -> None:
        attempts.append(1)
        raise ValueError("a bad row, not an outage")

    attempts.clear()
    with pytest.raises(ValueError, match="a bad row"):
        availability.call(wrong, stop)
    assert len(attempts) == 1  # not retried

    def down() -> None:
        stop.set()  # asked to stop while waiting: the outage's error comes out
        raise StoreUnreachableError("still down")

    with pytest.raises(StoreUnreachableError, match="still down"):
        availability.call(down, stop)
    assert availability.snapshot()["reachable"] is False
