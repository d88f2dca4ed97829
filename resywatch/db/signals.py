"""Hearing that notifications were committed, so delivery need not wait for its timer.

A write transaction that inserts outbox rows (`notification`) is marked while it runs (ORM
adds and Core inserts alike). When it commits, the database's `OutboxSignal` calls its
listeners in this process; on PostgreSQL the transaction also runs `NOTIFY` on
`OUTBOX_CHANNEL` just before its COMMIT, and PostgreSQL delivers a notification only if the
transaction commits (a rollback sends nothing), to every session that LISTENs:
`listen_outbox` is such a session, for a worker that runs delivery. SQLite has no such
thing across processes: there the delivery timer stays the only wake between processes.

A signal is only a hint to look now: it carries nothing, rings coalesce, and a missed one
(a listener reconnecting) costs the timer's wait, never a notification.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Insert, event, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import ORMExecuteState, Session

OUTBOX_TABLE = "notification"
OUTBOX_CHANNEL = "resywatch_outbox"
_MARK = "resywatch_outbox_written"
# A LISTEN connection probes itself this often, so a dead one is replaced (a silent TCP
# drop raises nothing while waiting), and waits this long before reconnecting.
LISTEN_PROBE_S = 30.0
LISTEN_RETRY_S = 5.0

Listener = Callable[[], None]


class OutboxSignal:
    """The listeners of one database's outbox commits (this process only)."""

    def __init__(self, *, notify: bool) -> None:
        self._notify = notify  # PostgreSQL: NOTIFY other processes too
        # The NOTIFY's payload: a listener in this process skips its own commits, which its
        # listeners have already heard without the round trip.
        self.source = f"{os.getpid()}:{secrets.token_hex(6)}"
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    @contextmanager
    def listening(self, listener: Listener) -> Iterator[None]:
        """Call `listener` after every commit that wrote notifications, while inside the
        block. It runs on the committing thread, right after the commit: it must be quick
        and must not raise (the write it follows has already succeeded)."""
        with self._lock:
            self._listeners.append(listener)
        try:
            yield
        finally:
            with self._lock:
                self._listeners.remove(listener)

    def watch(self, session: Session) -> None:
        """Mark `session` when it inserts outbox rows (a write session, before use)."""
        event.listen(session, "before_flush", _mark_added)
        event.listen(session, "do_orm_execute", _mark_inserted)

    def before_commit(self, session: Session) -> None:
        """Flush, and on PostgreSQL queue the NOTIFY inside the transaction."""
        session.flush()
        if self._notify and session.info.get(_MARK):
            session.execute(
                text("SELECT pg_notify(:channel, :source)"),
                {"channel": OUTBOX_CHANNEL, "source": self.source},
            )

    def after_commit(self, session: Session) -> None:
        if not session.info.pop(_MARK, False):
            return
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def rolled_back(self, session: Session) -> None:
        session.info.pop(_MARK, None)


def _mark_added(session: Session, _context: Any, _instances: Any) -> None:
    if any(getattr(row, "__tablename__", None) == OUTBOX_TABLE for row in session.new):
        session.info[_MARK] = True


def _mark_inserted(state: ORMExecuteState) -> None:
    statement = state.statement
    if isinstance(statement, Insert) and getattr(statement.table, "name", None) == OUTBOX_TABLE:
        state.session.info[_MARK] = True


def listen_conninfo(url: URL) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (secrets included: for
    connecting only, never for printing)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def listen_outbox(
    url: URL,
    on_notice: Listener,
    *,
    connected: asyncio.Event | None = None,
    ignore: str | None = None,
    probe_s: float = LISTEN_PROBE_S,
    retry_s: float = LISTEN_RETRY_S,
) -> None:
    """LISTEN on `OUTBOX_CHANNEL` on a connection of its own, calling `on_notice` for each
    notification but those from `ignore` (this process's `OutboxSignal.source`), until
    cancelled. A lost connection is reopened after `retry_s`, and then calls `on_notice`
    once, since commits made while nobody listened were heard by nobody. `connected` is set
    once LISTEN is in place (tests wait on it)."""
    import psycopg

    reconnecting = False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                listen_conninfo(url), autocommit=True, connect_timeout=5
            ) as conn:
                await conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
                if connected is not None:
                    connected.set()
                if reconnecting:
                    on_notice()
                while True:
                    async for notice in conn.notifies(timeout=probe_s):
                        if notice.payload != ignore:
                            on_notice()
                    await conn.execute("SELECT 1")  # raises if the connection died
        except (psycopg.Error, OSError):
            if connected is not None:
                connected.clear()
            reconnecting = True
            await asyncio.sleep(retry_s)
