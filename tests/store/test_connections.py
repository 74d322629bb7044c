"""PostgreSQL connections: a pooled connection that sat idle is pinged before use and
replaced when the server dropped it; a busy one is used without a ping; reads run in
autocommit, and so do single-statement writes (no BEGIN/COMMIT round trips)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from headrace.store import engine as store_engine
from headrace.store import open_store
from tests.conftest import _pg_admin


def _drop_connections(url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with _pg_admin() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        ).fetchall()
    return len(rows)


def test_an_idle_connection_the_server_dropped_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(postgres_url)
    try:
        assert store.runs.list() == []
        assert _drop_connections(postgres_url) >= 1
        monkeypatch.setattr(store_engine, "IDLE_PING", 0.0)  # everything counts as idle
        assert store.runs.list() == []  # pinged, found dead, replaced
    finally:
        store.close()


def test_a_connection_used_a_moment_ago_is_not_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(postgres_url)
    statements: list[str] = []

    def seen(_c: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    try:
        store.runs.list()
        event.listen(store.engine, "before_cursor_execute", seen)
        store.runs.list()
        store.branches.exists("main")
        assert len(statements) == 2  # the two reads, no ping between them
        # Without the ping, a connection the server dropped fails its next statement:
        # the ping is what saves the idle case above.
        monkeypatch.setattr(store_engine, "IDLE_PING", 1e9)
        _drop_connections(postgres_url)
        with pytest.raises(OperationalError):
            store.runs.list()
        assert store.runs.list() == []  # the pool replaced it after the failure
    finally:
        store.close()


def test_reads_run_in_autocommit_on_postgresql(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        with store.read() as c:
            raw = c.connection.dbapi_connection
            assert raw is not None and raw.autocommit
        with store.write_one() as c:  # one statement: its own transaction
            raw = c.connection.dbapi_connection
            assert raw is not None and raw.autocommit
        with store.write() as c:
            raw = c.connection.dbapi_connection
            assert raw is not None and not raw.autocommit
    finally:
        store.close()


def test_connections_time_out_and_keep_alive_unless_the_url_says_otherwise(
    postgres_url: str,
) -> None:
    store = open_store(postgres_url)
    try:
        with store.read() as c:
            raw = c.connection.dbapi_connection
            assert raw is not None
            dsn = raw.info.dsn  # libpq's view of the live connection
    finally:
        store.close()
    assert "connect_timeout=10" in dsn and "keepalives_idle=30" in dsn
    assert "keepalives_count=3" in dsn
    own = open_store(f"{postgres_url}?connect_timeout=3")
    try:
        with own.read() as c:
            raw = c.connection.dbapi_connection
            assert raw is not None
            assert "connect_timeout=3" in raw.info.dsn
    finally:
        own.close()
