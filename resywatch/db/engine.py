"""The database handle: one engine per invocation, short read and write sessions.

On SQLite every write transaction starts with BEGIN IMMEDIATE: a deferred transaction that
reads and then writes cannot upgrade its lock while another process commits, and SQLite then
fails at once with "database is locked" instead of waiting out the busy timeout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Insert, Result, Table, event
from sqlalchemy.engine import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

from resywatch.db.signals import OutboxSignal
from resywatch.redact import redact_url

SQLITE_BUSY_TIMEOUT_MS = 10_000
# No statement may hang a worker: a row lock held by a stuck peer fails within
# PG_LOCK_TIMEOUT, anything else within PG_STATEMENT_TIMEOUT (retention's batches and a
# dense bucket's apply take well under a second).
PG_LOCK_TIMEOUT = "5s"
PG_STATEMENT_TIMEOUT = "30s"
_BEGIN_OPTION = "resywatch_sqlite_begin"


class Database:
    """Engine plus session factories for one database URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url: URL = make_url(url)
        self.engine: Engine = create_engine(self.url, echo=echo, **_engine_options(self.url))
        self._write_engine = self.engine
        if self.backend == "sqlite":
            # A file: URI (uri=true) names its file its own way: SQLite creates it.
            _tune_sqlite(self.engine, None if self.url.query.get("uri") else self.sqlite_path)
            self._write_engine = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        else:
            _tune_postgres(self.engine)
        # Who hears that notifications were committed (delivery, to send them at once).
        self.outbox = OutboxSignal(notify=self.backend == "postgresql")

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    @property
    def display_url(self) -> str:
        """The URL with its password masked: safe to print."""
        return redact_url(self.url.render_as_string(hide_password=False))

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, for SQLite on disk; None for PostgreSQL or in-memory SQLite."""
        if self.backend != "sqlite" or self.url.database in (None, "", ":memory:"):
            return None
        return Path(self.url.database or "")

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits when the block ends and rolls back on error."""
        with Session(self._write_engine, expire_on_commit=False) as session:
            self.outbox.watch(session)
            try:
                yield session
                self.outbox.before_commit(session)
                session.commit()
            except BaseException:
                session.rollback()
                self.outbox.rolled_back(session)
                raise
        self.outbox.after_commit(session)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries only: closing it rolls back (objects stay readable)."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection in a write transaction (Alembic runs its migrations in one).

        On SQLite, foreign keys are off inside it and checked before the commit, the way
        SQLite documents for schema changes: a migration rebuilds a table by copying it and
        dropping the old one, and with foreign keys on that drop would cascade-delete the
        rows of every table referring to it (a bucket's snapshots, a message's deliveries).
        """
        if self.backend != "sqlite":
            with self._write_engine.begin() as connection:
                yield connection
            return
        with self._write_engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction: before it
            try:
                with connection.begin():
                    yield connection
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"the schema change broke foreign keys: {broken[:5]}")
            finally:
                raw.execute("PRAGMA foreign_keys=ON")

    def dispose(self) -> None:
        self.engine.dispose()


def insert_unless_present(session: Session, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING: when several workers insert the same new row at
    once, one does and the others move on (a plain INSERT would fail their transaction)."""
    # Each dialect's module on first use: a SQLite box never loads PostgreSQL's.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched: a claim is won when it is 1."""
    return cast(CursorResult[Any], result).rowcount


def _engine_options(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        # The pysqlite driver's own timeout is the busy timeout, in seconds.
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    # Fail fast when PostgreSQL is down instead of hanging a cron pass or a health check.
    return {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}


def create_private_file(path: Path) -> None:
    """Create the SQLite file readable and writable by its owner only (it holds
    reservations and history) before SQLite would create it world-readable; SQLite gives
    its -wal and -shm files the main file's mode. A file that exists is left as it is:
    its owner may have chosen to share it."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except (FileExistsError, FileNotFoundError):  # exists, or no directory: SQLite says so
        return
    os.close(descriptor)


def _tune_postgres(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Set per connection rather than as startup options, which PgBouncer refuses.
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{PG_LOCK_TIMEOUT}'")
            cursor.execute(f"SET statement_timeout = '{PG_STATEMENT_TIMEOUT}'")
        dbapi_connection.commit()


def _tune_sqlite(engine: Engine, path: Path | None) -> None:
    @event.listens_for(engine, "do_connect")
    def _before_connect(*_: Any) -> None:
        if path is not None:
            create_private_file(path)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (the driver would always defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Safe with WAL: a crashed process loses nothing; only power loss can drop the
        # last commits, in exchange for one fsync per checkpoint instead of per commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
