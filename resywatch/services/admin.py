"""Database administration: migrate, and describe what is there."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime

from sqlalchemy import delete, func, inspect, select
from sqlmodel import col

from resywatch.config import Settings
from resywatch.db import migrate as migrations
from resywatch.db.engine import Database, rows_changed
from resywatch.db.models import (
    ApiCallLog,
    BookingAttempt,
    DiscoveryBucket,
    DropEvent,
    JobHeartbeat,
    SlotSnapshot,
    metadata,
)
from resywatch.db.models.booking import failed_attempt
from resywatch.redact import redact_text
from resywatch.resy.transport import ApiCall
from resywatch.services import outbox
from resywatch.services.discovery.states import BucketState, bucket_states
from resywatch.services.health import fast_checks
from resywatch.services.retire import retire_pending

DISCOVERY_JOB = "discovery"  # the scheduler's name for it (services do not import the registry)


@dataclass(frozen=True)
class MigrateResult:
    backend: str
    url: str
    revision_before: str | None
    revision: str
    changed: bool


@dataclass(frozen=True)
class JobBeat:
    """The discovery job's heartbeat row (the seed's job_heartbeat)."""

    job: str
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_error: str | None  # secrets masked
    next_run_at: datetime | None
    running_since: datetime | None
    owner: str | None


@dataclass(frozen=True)
class BucketSummary:
    """The seed's discovery_buckets summary."""

    total: int
    baselined: int
    stale: list[str]  # not scanned for 4 h: left out of just-opened
    failing: list[str]  # their last scan failed
    last_scan_at: datetime | None
    slots_in_last_scans: int
    venues_in_last_scans: int
    open_drops: int


@dataclass(frozen=True)
class DbInfo:
    backend: str
    url: str
    current_revision: str | None
    head_revision: str
    up_to_date: bool
    row_counts: dict[str, int]
    # The seed's db-debug fields; None (and no hints but one) until the schema is current.
    next_scan_at: datetime | None = None
    job_heartbeat: JobBeat | None = None
    bucket_summary: BucketSummary | None = None
    fast_checks: dict[str, bool] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)


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
    """Backend, URL (password masked), schema revisions and the rows in each table
    (`with_discovery` adds the seed's db-debug fields)."""
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


def with_discovery(db: Database, info: DbInfo, settings: Settings, now: datetime) -> DbInfo:
    """`info` with the seed's db-debug view of discovery: next scan, the discovery job's
    heartbeat (secrets masked), the bucket summary, the fast checks and hints."""
    if not info.up_to_date:  # the tables may lack columns the models read
        return replace(info, hints=["the schema is behind: run `resywatch admin migrate`"])
    with db.read() as session:
        beat = session.get(JobHeartbeat, DISCOVERY_JOB)
        states = bucket_states(session, now)
        venues = session.scalar(
            select(func.count(func.distinct(SlotSnapshot.venue_id))).where(
                col(SlotSnapshot.in_previous)
            )
        )
        open_drops = session.scalar(
            select(func.count()).select_from(DropEvent).where(col(DropEvent.closed_at).is_(None))
        )
    heartbeat = _beat(beat, settings) if beat is not None else None
    scans = [s.last_scan_at for s in states if s.last_scan_at]
    summary = BucketSummary(
        total=len(states),
        baselined=sum(s.baselined for s in states),
        stale=[s.id for s in states if s.stale],
        failing=[s.id for s in states if s.consecutive_failures],
        last_scan_at=max(scans, default=None),
        slots_in_last_scans=sum(s.slot_count for s in states),
        venues_in_last_scans=venues or 0,
        open_drops=open_drops or 0,
    )
    checks = fast_checks(beat, states, settings, now)
    return replace(
        info,
        next_scan_at=beat.next_run_at if beat else None,
        job_heartbeat=heartbeat,
        bucket_summary=summary,
        fast_checks=checks,
        hints=_hints(heartbeat, summary, states, checks),
    )


def _beat(beat: JobHeartbeat, settings: Settings) -> JobBeat:
    error = redact_text(beat.last_error, settings.secrets()) if beat.last_error else None
    return JobBeat(
        job=beat.job_name,
        last_started_at=beat.last_started_at,
        last_finished_at=beat.last_finished_at,
        last_status=beat.last_status,
        last_error=error,
        next_run_at=beat.next_run_at,
        running_since=beat.running_since,
        owner=beat.owner,
    )


def _hints(
    beat: JobBeat | None,
    summary: BucketSummary,
    states: list[BucketState],
    checks: dict[str, bool],
) -> list[str]:
    """What to look at next, from what is wrong now (the seed's hints, for a terminal)."""
    hints = []
    if beat is None:
        hints.append(
            "the discovery job has never run: start `resywatch run-forever` or a crontab line "
            "(`resywatch run due`)"
        )
    elif not checks.get("job_alive"):
        hints.append("the discovery job has not started lately: is run-forever or cron running?")
    if beat is not None and beat.last_error and beat.last_status == "failed":
        hints.append(f"the last discovery pass failed: {beat.last_error}")
    if not states:
        hints.append("no bucket yet: run `resywatch discover scan` (the first pass baselines)")
    elif summary.baselined < summary.total:
        hints.append(
            f"{summary.total - summary.baselined} bucket(s) have no baseline yet: their next "
            "scan takes it, and reports no drops"
        )
    if summary.stale:
        hints.append(
            f"{len(summary.stale)} bucket(s) not scanned for 4 h are left out of just-opened: "
            f"{', '.join(summary.stale[:6])}{' ...' if len(summary.stale) > 6 else ''}"
        )
    if summary.failing:
        hints.append(
            f"{len(summary.failing)} bucket(s) failing: `resywatch discover buckets` shows "
            "their last error"
        )
    hints.append(
        "why a slot is or is not in the feed: `resywatch discover explain SLOT_ID` (or "
        "--venue V --date D --time T); a bucket's slots: `resywatch discover buckets --show "
        "DATE_HH:MM`"
    )
    return hints


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
