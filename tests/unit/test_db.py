"""The database layer on each backend: readiness checks, SQLite tuning, timestamps,
and the unique keys the domain relies on."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import event, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError
from sqlmodel import select

from resywatch.db import migrate
from resywatch.db.engine import Database
from resywatch.db.models import (
    BookingAttempt,
    DropEvent,
    JobHeartbeat,
    Notification,
    NotifyRequest,
    ScheduledSnipe,
    Watch,
    metadata,
)
from resywatch.errors import DatabaseNotReady, DatabaseUnavailable


def drop(slot_id: str, **fields: object) -> DropEvent:
    values: dict[str, object] = {
        "slot_id": slot_id,
        "bucket_id": "2026-12-01_19:00",
        "venue_id": 1,
        "venue_name": "Carbone",
        "starts_at": datetime(2026, 12, 1, 19, 30),
        "slot_date": date(2026, 12, 1),
    }
    values.update(fields)
    return DropEvent.model_validate(values)


def test_missing_database_is_refused_with_the_fix(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        with pytest.raises(DatabaseNotReady, match="run `resywatch admin migrate`"):
            migrate.ensure_current(db)
    finally:
        db.dispose()


def test_missing_sqlite_file_is_not_created_by_the_check(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    db = Database(f"sqlite:///{path}")
    with pytest.raises(DatabaseNotReady):
        migrate.ensure_current(db)
    assert not path.exists()


def test_database_at_an_unknown_revision_is_refused(db: Database) -> None:
    config = migrate.alembic_config()
    with db.write_connection() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        # Pretend an older revision than head was applied.
        connection.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num text)"))
        connection.execute(text("DELETE FROM alembic_version"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('0000-unknown')"))
    with pytest.raises(DatabaseNotReady, match="upgrade resywatch"):
        migrate.ensure_current(db)


def test_auto_migrate_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "auto.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.ensure_current(db, auto_migrate=True)
        assert migrate.current_revision(db) == migrate.head_revision()
    finally:
        db.dispose()


def test_unreachable_database_is_reported_without_password() -> None:
    db = Database("postgresql+psycopg://user:hunter22@127.0.0.1:1/none")
    with pytest.raises(DatabaseUnavailable) as raised:
        migrate.current_revision(db)
    assert "hunter22" not in str(raised.value)
    assert "://***@127.0.0.1:1" in str(raised.value)


def test_timestamps_round_trip_as_utc(db: Database) -> None:
    eastern = timezone(timedelta(hours=-5))
    opened = datetime(2026, 12, 1, 9, 0, 1, tzinfo=eastern)
    with db.write() as session:
        session.add(drop("s1", opened_at=opened))
    with db.read() as session:
        row = session.exec(select(DropEvent)).one()
    assert row.opened_at == opened
    assert row.opened_at.tzinfo is not None
    assert row.opened_at.utcoffset() == timedelta(0)
    assert row.starts_at == datetime(2026, 12, 1, 19, 30)  # local wall clock, no zone


def test_naive_timestamps_are_refused(db: Database) -> None:
    with pytest.raises(StatementError, match="timezone"), db.write() as session:
        session.add(JobHeartbeat(job_name="discovery", last_started_at=datetime(2026, 1, 1)))


def test_one_open_drop_per_slot(db: Database) -> None:
    with db.write() as session:
        session.add(drop("s1"))
    with pytest.raises(IntegrityError), db.write() as session:
        session.add(drop("s1"))
    # Once closed, the slot may open again: a new drop event.
    with db.write() as session:
        event_row = session.exec(select(DropEvent)).one()
        event_row.closed_at = datetime.now(UTC)
        session.add(drop("s1"))
    with db.read() as session:
        assert len(session.exec(select(DropEvent)).all()) == 2


def test_notification_dedupe_key_is_unique(db: Database) -> None:
    with db.write() as session:
        session.add(Notification(dedupe_key="drop:1", kind="drop", title="t", body="b"))
    with pytest.raises(IntegrityError), db.write() as session:
        session.add(Notification(dedupe_key="drop:1", kind="drop", title="t", body="b"))


def test_every_generated_id_is_never_handed_out_again(db: Database) -> None:
    # SQLite without AUTOINCREMENT gives the newest row's id out again once it is deleted;
    # a PostgreSQL sequence never goes back. Holds for tables added later too.
    generated = [t.name for t in metadata.sorted_tables if t.autoincrement_column is not None]
    assert {"drop_event", "notify_request", "watch", "booking_attempt"} <= set(generated)
    with db.read() as session:
        for table in generated:
            if db.backend == "sqlite":
                ddl = session.scalar(
                    text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}
                )
                assert "AUTOINCREMENT" in (ddl or ""), table
            else:
                sequence = session.scalar(
                    text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}
                )
                assert sequence is not None, table


DAY = date(2026, 12, 1)
SLOTS = itertools.count()
# A row of each table whose id other rows or dedupe keys name.
NAMED_BY_KEYS = {
    "drop_event": lambda: drop(f"s{next(SLOTS)}"),  # one open drop per slot
    "notify_request": lambda: NotifyRequest(
        venue_id=1, venue_name="Lilia", date_from=DAY, date_to=DAY, party_size=2
    ),
    "watch": lambda: Watch(kind="venues", venue_ids=[1], date_from=DAY, date_to=DAY, party_size=2),
    "booking_attempt": lambda: BookingAttempt(
        source="book-now", venue_id=1, slot_date=DAY, party_size=2, outcome="pending"
    ),
    "scheduled_snipe": lambda: ScheduledSnipe(
        venue_id=1,
        venue_name="Lilia",
        slot_date=DAY,
        party_size=2,
        release_at=datetime(2026, 11, 1, 14, tzinfo=UTC),
        release_source="at",
        max_total=0,
        max_cancel_fee=0,
        lead_s=3,
        poll_interval_s=0.2,
        deadline_s=60,
        late_s=120,
        request_budget=100,
    ),
}


@pytest.mark.parametrize("table", sorted(NAMED_BY_KEYS))
def test_deleting_the_newest_row_does_not_give_its_id_to_the_next(db: Database, table: str) -> None:
    make = NAMED_BY_KEYS[table]
    with db.write() as session:
        first, newest = make(), make()
        session.add_all([first, newest])
    with db.write() as session:
        session.delete(session.get(type(newest), newest.id))
    with db.write() as session:
        after = make()
        session.add(after)
    assert after.id is not None and newest.id is not None and after.id > newest.id


def test_write_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as session:
        session.add(JobHeartbeat(job_name="discovery"))
        session.flush()
        raise RuntimeError("boom")
    with db.read() as session:
        assert session.exec(select(JobHeartbeat)).all() == []


def test_sqlite_is_tuned_and_writes_begin_immediate(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 't.db'}")
    migrate.upgrade(db)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    begins: list[str] = []

    @event.listens_for(db.engine, "begin")
    def _seen(connection: object) -> None:
        begins.append("begin")

    try:
        with db.read() as session:
            assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert session.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        with db.write() as session:
            session.add(JobHeartbeat(job_name="discovery"))
    finally:
        db.dispose()
    issued = [s for s in statements if s.startswith("BEGIN")]
    assert issued == ["BEGIN DEFERRED", "BEGIN IMMEDIATE"]


MOUNTS = """\
/dev/vda1 / ext4 rw,relatime 0 0
server:/export /mnt/shared nfs4 rw,relatime 0 0
/dev/vdb1 /mnt/shared/local ext4 rw 0 0
"""


def test_filesystem_of_picks_the_deepest_mount() -> None:
    assert migrate.filesystem_of(Path("/home/me"), MOUNTS) == "ext4"
    assert migrate.filesystem_of(Path("/mnt/shared/x"), MOUNTS) == "nfs4"
    assert migrate.filesystem_of(Path("/mnt/shared/local/x"), MOUNTS) == "ext4"
    assert migrate.filesystem_of(Path("/mnt/sharedness"), MOUNTS) == "ext4"


def test_sqlite_on_a_network_filesystem_is_refused(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda1 / ext4 rw 0 0\nserver:/x {tmp_path} nfs rw 0 0\n")
    with pytest.raises(DatabaseUnavailable, match="network filesystem"):
        migrate.refuse_network_filesystem(tmp_path / "db" / "r.db", mounts)
    migrate.refuse_network_filesystem(Path("/var/lib/r.db"), mounts)  # local: fine


@pytest.mark.timed
@pytest.mark.postgres
def test_a_postgresql_statement_blocked_by_a_row_lock_fails_within_the_lock_timeout(
    postgres_db: Database,
) -> None:
    db = postgres_db  # SQLite has one writer at a time, and its own busy timeout
    with db.write() as session:
        session.add(JobHeartbeat(job_name="discovery"))
    heartbeat = JobHeartbeat.__table__  # type: ignore[attr-defined]
    touch = update(heartbeat).where(heartbeat.c.job_name == "discovery").values(owner="x")
    with db.write() as holder:
        holder.execute(touch)  # a stuck peer holds the row lock
        started = time.monotonic()
        with pytest.raises(OperationalError, match="lock timeout"), db.write() as blocked:
            blocked.execute(touch)
        waited = time.monotonic() - started
    assert 4 <= waited < 10  # lock_timeout is 5 s: the worker moves on instead of hanging
