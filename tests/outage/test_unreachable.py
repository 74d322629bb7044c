"""``is_unreachable`` on real errors of real databases: an outage (refused,
terminated, stopped server, an unopenable SQLite file) is told from a statement the
database refused (constraints, syntax, timeouts, locks), which a retry would not fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from headrace.errors import HeadraceError
from headrace.store import MetadataStore, open_store
from headrace.store.errors import StoreError, StoreUnreachableError
from headrace.store.failures import is_transient, is_unreachable
from tests.outage.cluster import PrivateCluster, free_port

pytestmark = pytest.mark.integration


def _raised(store: MetadataStore, sql: str) -> BaseException:
    with pytest.raises(Exception) as caught, store.write() as c:
        c.execute(text(sql))
    return caught.value


@pytest.fixture
def private(cluster: PrivateCluster) -> Iterator[MetadataStore]:
    store = open_store(cluster.database(), migrate_schema=False)
    try:
        yield store
    finally:
        store.close()


def test_postgres_outages_are_unreachable(cluster: PrivateCluster, private: MetadataStore) -> None:
    nobody = open_store(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x", migrate_schema=False
    )
    with pytest.raises(Exception) as refused:
        nobody.ping()
    nobody.close()
    assert is_unreachable(refused.value)

    with private.read() as c:  # a session the administrator ends (57P01)
        pid = c.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(cluster.admin, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(Exception) as ended:
            c.execute(text("SELECT 1"))
    assert is_unreachable(ended.value)

    cluster.stop()
    with pytest.raises(Exception) as stopped:
        private.ping()
    assert is_unreachable(stopped.value)
    # wrapped the way headrace wraps store errors, it is still recognised
    try:
        raise StoreError("could not list runs") from stopped.value
    except StoreError as wrapped:
        assert is_unreachable(wrapped)


def test_postgres_refusals_are_not_unreachable(private: MetadataStore) -> None:
    with private.write() as c:
        c.execute(text("CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL)"))
        c.execute(text("INSERT INTO t VALUES (1, 'a')"))
    refusals = [
        "INSERT INTO t VALUES (1, 'again')",  # unique violation
        "INSERT INTO t VALUES (2, NULL)",  # not null
        "SELEC 1",  # syntax
        "SELECT * FROM no_such_table",
        "SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)",  # 57014: canceled, not gone
    ]
    for sql in refusals:
        assert not is_unreachable(_raised(private, sql)), sql
    private.ping()  # and the store still answers


def test_sqlite_errors(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}", migrate_schema=False)
    with store.write() as c:
        c.execute(text("CREATE TABLE t (id int PRIMARY KEY)"))
        c.execute(text("INSERT INTO t VALUES (1)"))
    assert not is_unreachable(_raised(store, "INSERT INTO t VALUES (1)"))
    assert not is_unreachable(_raised(store, "SELEC 1"))
    # a writer that finds the database locked waits or fails: busy, not gone
    impatient = create_engine(f"sqlite:///{tmp_path / 'a.db'}", connect_args={"timeout": 0})
    with store.write() as c:
        c.execute(text("INSERT INTO t VALUES (2)"))
        with pytest.raises(Exception) as locked, impatient.begin() as other:
            other.execute(text("INSERT INTO t VALUES (3)"))
    impatient.dispose()
    assert "locked" in str(locked.value) and not is_unreachable(locked.value)
    assert is_transient(locked.value)  # a buffered writer keeps its rows for later
    store.close()
    # a database file that cannot be opened (its folder gone, or not a file)
    (tmp_path / "folder.db").mkdir()
    gone = open_store(f"sqlite:///{tmp_path / 'folder.db'}", migrate_schema=False)
    with pytest.raises(Exception) as unopenable:
        gone.ping()
    gone.close()
    assert is_unreachable(unopenable.value)


def test_other_errors() -> None:
    assert is_unreachable(StoreUnreachableError("down"))
    assert is_unreachable(ConnectionResetError("reset"))
    assert not is_unreachable(ValueError("bad value"))
    assert not is_unreachable(HeadraceError("no run with id 'x'"))
    assert not is_unreachable(TimeoutError("a lock timeout is not an outage"))
