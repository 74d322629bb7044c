"""Opening the metadata store: engine settings per database, and safe auto-migration."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DisconnectionError

from headrace.store.errors import SchemaTooNewError, StoreError
from headrace.store.schema import SCHEMA_HEAD

_MIGRATIONS = Path(__file__).parent / "migrations"
_READ = "headrace_read"


def _sqlite_path(url: str) -> Path | None:
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    if not rest or rest.startswith(":memory:") or "mode=memory" in rest:
        return None
    return Path(rest.split("?", 1)[0])


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling defers locks; we issue BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 60000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the write lock up front, so two writers queue on the busy timeout
        # instead of deadlocking on a lock upgrade ("database is locked").
        read_only = connection.get_execution_options().get(_READ, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


#: A pooled connection idle longer than this is pinged before use.
IDLE_PING = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling that costs nothing on a busy connection.

    ``pool_pre_ping`` pings at every checkout: a round trip per transaction, a third of
    a short run's statements. A connection that was used a moment ago is as alive as a
    ping would prove; only one that sat idle (the server may have restarted, a proxy
    may have dropped it) is pinged, and replaced if the ping fails.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["headrace_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("headrace_idle_since")
        if since is None or time.monotonic() - since < IDLE_PING:
            return
        try:
            dbapi_connection.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as exc:
            raise DisconnectionError(f"pooled connection lost while idle: {exc}") from exc


#: libpq settings that keep a lost server from hanging a process: give up connecting
#: after 10 s, and find a connection whose packets vanish (a network cut, not a refused
#: port) in about a minute, not the kernel's two hours. The URL's own query wins.
_POSTGRES_TIMEOUTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def _postgres_timeouts(url: str) -> dict[str, int]:
    from sqlalchemy.engine import make_url

    given = make_url(url).query
    return {k: v for k, v in _POSTGRES_TIMEOUTS.items() if k not in given}


def create_store_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql"):
        try:
            engine = create_engine(
                url, pool_size=5, max_overflow=10, connect_args=_postgres_timeouts(url)
            )
        except ModuleNotFoundError as exc:
            raise StoreError("PostgreSQL needs psycopg: pip install 'headrace[postgres]'") from exc
        _ping_when_idle(engine)
        return engine
    raise StoreError(
        f"metadata URL {url!r} is not supported; use sqlite:///PATH or "
        "postgresql+psycopg://USER@HOST:PORT/DB"
    )


def _has_table(connection: Connection, name: str) -> bool:
    # A catalog query, cheaper than SQLAlchemy's inspector (this runs at every open).
    if connection.dialect.name == "sqlite":
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"
    elif connection.dialect.name == "postgresql":
        query = (
            "SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = :name "
            "AND schemaname = ANY(current_schemas(false))"
        )
    else:
        return bool(inspect(connection).has_table(name))
    return connection.execute(text(query), {"name": name}).first() is not None


def _current_revision(connection: Connection) -> str | None:
    if not _has_table(connection, "alembic_version"):
        return None
    row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


@contextlib.contextmanager
def _migration_lock(engine: Engine, connection: Connection) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(727274)"))
        yield
        return
    path = _sqlite_path(str(engine.url))
    if path is None:
        yield
        return
    with open(str(path) + ".migrate.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _known_revisions() -> set[str]:
    return {p.stem.split("_", 1)[0] for p in (_MIGRATIONS / "versions").glob("[0-9]*.py")}


def migrate(engine: Engine) -> None:
    """Bring the schema to the head revision; safe when several processes race.

    The fast path reads the revision without importing Alembic; only an empty or older
    database pays for it.
    """
    with engine.connect().execution_options(**{_READ: True}) as connection:
        current = _current_revision(connection)
        has_runs = current is None and _has_table(connection, "runs")
        connection.rollback()
    if current == SCHEMA_HEAD:
        return
    if has_runs:
        raise StoreError(
            "the metadata store has headrace tables but no schema revision (alembic_version "
            "is missing); it was not created by headrace's migrations, so it is not changed"
        )
    if current is not None and current not in _known_revisions():
        raise SchemaTooNewError(
            f"the metadata store is at schema revision {current}, newer than this headrace "
            f"({SCHEMA_HEAD}); upgrade headrace"
        )
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection, _migration_lock(engine, connection):
        if _current_revision(connection) == SCHEMA_HEAD:
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class MetadataStore:
    """The one metadata store of a workspace, with a repository per area."""

    def __init__(self, engine: Engine) -> None:
        from headrace.store.automation import (
            AutomationStateRepository,
            NotificationRepository,
            QueueRepository,
        )
        from headrace.store.branches import BranchRepository
        from headrace.store.deadletters import DeadLetterRepository
        from headrace.store.governance import GovernanceRepository
        from headrace.store.lineage import LineageRepository
        from headrace.store.monitoring import MonitorRepository
        from headrace.store.predictions import PredictionRepository
        from headrace.store.profiles import ProfileRepository
        from headrace.store.quality import QualityRepository
        from headrace.store.registry import RegistryRepository
        from headrace.store.runs import RunRepository
        from headrace.store.tracking import TrackingRepository
        from headrace.store.versions import VersionRepository

        self.engine = engine
        postgres = engine.dialect.name == "postgresql"
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT", **{_READ: True})
            if postgres
            else None
        )
        self._autocommit_write = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else None
        )
        self.automation = AutomationStateRepository(self)
        self.branches = BranchRepository(self)
        self.deadletters = DeadLetterRepository(self)
        self.governance = GovernanceRepository(self)
        self.lineage = LineageRepository(self)
        self.monitoring = MonitorRepository(self)
        self.notifications = NotificationRepository(self)
        self.predictions = PredictionRepository(self)
        self.profiles = ProfileRepository(self)
        self.quality = QualityRepository(self)
        self.queue = QueueRepository(self)
        self.registry = RegistryRepository(self)
        self.runs = RunRepository(self)
        self.tracking = TrackingRepository(self)
        self.versions = VersionRepository(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it holds the write lock from its start.

        Concurrent writers wait on SQLite's busy timeout (60 s) rather than failing.
        """
        with self.engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def write_one(self) -> Iterator[Connection]:
        """A connection for ONE write statement, which is its own transaction.

        On PostgreSQL it runs in autocommit: a single statement is atomic by itself, so
        BEGIN and COMMIT would only add two round trips (the run queue's claim, finish
        and enqueue are each one statement). On SQLite, a write transaction as usual.
        """
        if self._autocommit_write is None:
            with self.write() as connection:
                yield connection
            return
        with self._autocommit_write.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read that takes no write lock.

        On SQLite, one transaction: a consistent snapshot of the WAL. On PostgreSQL,
        each statement in autocommit: under READ COMMITTED a transaction gives its
        statements no common snapshot anyway, so BEGIN and COMMIT would only add two
        round trips to every read.
        """
        if self._autocommit is not None:
            with self._autocommit.connect() as connection:
                yield connection
            return
        with (
            self.engine.connect().execution_options(**{_READ: True}) as connection,
            connection.begin(),
        ):
            yield connection

    def ping(self) -> None:
        """One round trip to the database; raises what the driver raised if it does not
        answer (:func:`~headrace.store.failures.is_unreachable` tells an outage)."""
        with self.read() as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, migrate_schema: bool = True) -> MetadataStore:
    """Open (and create or upgrade) the metadata store at ``url``."""
    engine = create_store_engine(url)
    if migrate_schema:
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()  # a refused or failed open must not leak its connections
            raise
    return MetadataStore(engine)
