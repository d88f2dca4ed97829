"""Database administration: migrate, and describe what is there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, func, inspect, select
from sqlmodel import col

from resywatch.db import migrate as migrations
from resywatch.db.engine import Database, rows_changed
from resywatch.db.models import (
    ApiCallLog,
    BookingAttempt,
    DiscoveryBucket,
    DropEvent,
    SlotSnapshot,
    metadata,
)
from resywatch.db.models.booking import failed_attempt
from resywatch.resy.transport import ApiCall
from resywatch.services import outbox
from resywatch.services.retire import retire_pending


@dataclass(frozen=True)
class MigrateResult:
    backend: str
    url: str
    revision_before: str | None
    revision: str
    changed: bool


@dataclass(frozen=True)
class DbInfo:
    backend: str
    url: str
    current_revision: str | None
    head_revision: str
    up_to_date: bool
    row_counts: dict[str, int]


def migrate(db: Database) -> MigrateResult:
    """Upgrade the database to the newest schema; running it again changes nothing."""
    result = migrations.upgrade(db)
    return MigrateResult(
        backend=db.backend,
        url=db.display_url,
        revision_before=result.before,
        revision=result.after,
        changed=result.changed,
    )


def db_info(db: Database) -> DbInfo:
    """Backend, URL (password masked), schema revisions and the rows in each table."""
    current = migrations.current_revision(db)
    counts: dict[str, int] = {}
    if current is not None:
        with db.read() as session:
            present = set(inspect(session.connection()).get_table_names())
            for table in metadata.sorted_tables:
                if table.name in present:
                    counts[table.name] = (
                        session.scalar(select(func.count()).select_from(table)) or 0
                    )
    head = migrations.head_revision()
    return DbInfo(
        backend=db.backend,
        url=db.display_url,
        current_revision=current,
        head_revision=head,
        up_to_date=current == head,
        row_counts=dict(sorted(counts.items())),
    )


@dataclass(frozen=True)
class Cleared:
    drop_events: int
    buckets: int
    snapshots: int
    notifications: int = 0  # drop messages not yet delivered, retired with their drops


def clear_discovery(db: Database) -> Cleared:
    """The seed's clear-db: forget drops, buckets and snapshots (the next scan baselines),
    and the drop messages not delivered yet. A plain DELETE, so ids go on from where they
    were (never TRUNCATE ... RESTART IDENTITY): `drop:<id>` keys stay unique."""
    with db.write() as session:
        counts = [
            rows_changed(session.execute(delete(table)))
            for table in (SlotSnapshot, DropEvent, DiscoveryBucket)
        ]
        retired = retire_pending(session, prefixes=[outbox.DROP_PREFIX])
    return Cleared(
        drop_events=counts[1], buckets=counts[2], snapshots=counts[0], notifications=retired
    )


def api_calls(
    db: Database,
    *,
    since: datetime | None = None,
    endpoint: str | None = None,
    errors_only: bool = False,
    limit: int = 100,
) -> list[ApiCall]:
    """The Resy call log, newest first (each row as the client recorded it)."""
    query = select(ApiCallLog).order_by(col(ApiCallLog.at).desc(), col(ApiCallLog.id).desc())
    if since is not None:
        query = query.where(col(ApiCallLog.at) >= since)
    if endpoint:
        query = query.where(col(ApiCallLog.endpoint).contains(endpoint, autoescape=True))
    if errors_only:
        query = query.where(col(ApiCallLog.error_kind).is_not(None))
    with db.read() as session:
        return [
            ApiCall(r.at, r.method, r.endpoint, r.status, r.latency_ms, r.error_kind, r.attempt)
            for r in session.scalars(query.limit(limit))
        ]


@dataclass(frozen=True)
class BookingError:
    at: datetime
    venue_id: int
    venue_name: str | None
    slot_date: date
    party_size: int
    outcome: str
    resy_status: int | None
    message: str | None


def booking_errors(
    db: Database, *, since: datetime | None = None, limit: int = 100
) -> list[BookingError]:
    """Failed booking attempts (`db.models.booking.failed_attempt`), newest first (the seed's
    booking-errors view)."""
    query = (
        select(BookingAttempt)
        .where(failed_attempt())
        .order_by(col(BookingAttempt.created_at).desc(), col(BookingAttempt.id).desc())
    )
    if since is not None:
        query = query.where(col(BookingAttempt.created_at) >= since)
    with db.read() as session:
        return [
            BookingError(
                a.created_at, a.venue_id, a.venue_name, a.slot_date, a.party_size, a.outcome,
                a.resy_status, a.message,
            )
            for a in session.scalars(query.limit(limit))
        ]  # fmt: skip
