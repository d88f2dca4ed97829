"""Every try to book, whatever its outcome, and the snipes scheduled for release instants."""

from __future__ import annotations

from datetime import date, datetime, time

from pydantic import NaiveDatetime
from sqlalchemy import JSON, BigInteger, ColumnElement, Index
from sqlmodel import Field, SQLModel

from resywatch.db.base import NEVER_REUSED, utcnow
from resywatch.db.statuses import Outcome as Outcome
from resywatch.db.statuses import SnipeStatus as SnipeStatus
from resywatch.db.statuses import failed_outcome


class BookingAttempt(SQLModel, table=True):
    """One booking try: what was asked, what Resy said, how long each step took."""

    __tablename__ = "booking_attempt"
    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=16)  # book-now | watch | notify | snipe
    source_id: int | None = None
    # At most one book request per (watch or request, slot), even across workers.
    claim_key: str | None = Field(default=None, max_length=128, unique=True)
    venue_id: int
    venue_name: str | None = None
    slot_date: date
    starts_at: NaiveDatetime | None = None  # venue-local wall-clock time of the slot
    party_size: int
    seating_type: str | None = None
    outcome: str = Field(max_length=32)  # an Outcome
    resy_status: int | None = None
    message: str | None = None
    reservation_id: int | None = Field(default=None, sa_type=BigInteger)
    latency_ms: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    dry_run: bool = False
    created_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None


class ScheduledSnipe(SQLModel, table=True):
    """A booking to try at a release instant, run by `resywatch run snipes` or `run-forever`.

    A runner takes one with a lease (`claimed_by`, `claimed_until`) so that several workers
    never run the same snipe; a lease that outlives its runner lets another take over.

    A recurring snipe (`--repeat`) is a series of rows, one per occurrence, sharing
    `series_id` (the first occurrence's id); when one finishes, the next is added in the
    same transaction, and the unique (series, day) pair keeps it to one next.
    """

    __tablename__ = "scheduled_snipe"
    __table_args__ = (
        Index("ix_scheduled_snipe_status_release", "status", "release_at"),
        # A unique index, not a constraint: SQLite adds it without rebuilding the table.
        Index("uq_scheduled_snipe_series_day", "series_id", "slot_date", unique=True),
        NEVER_REUSED,
    )

    id: int | None = Field(default=None, primary_key=True)
    venue_id: int
    venue_name: str
    slot_date: date
    party_size: int
    time_from: time | None = None  # local window; None = any time
    time_to: time | None = None
    preferred_time: time | None = None  # ranks the candidates: closest first
    #: The `--time` list (HH:MM, best first), ranked ahead of nearness; None: no --time.
    preferred_times: list[str] | None = Field(default=None, sa_type=JSON)
    seating_types: list[str] = Field(default_factory=list, sa_type=JSON)  # in preference order
    release_at: datetime  # the release instant, UTC
    release_source: str = Field(max_length=16)  # at | config | pattern
    payment_method_id: int | None = Field(default=None, sa_type=BigInteger)
    max_total: float
    max_cancel_fee: float
    lead_s: float
    poll_interval_s: float
    deadline_s: float
    late_s: float
    request_budget: int
    dry_run: bool = False
    account: str | None = Field(default=None, max_length=32)  # who books; None: default
    status: str = Field(default=SnipeStatus.SCHEDULED, max_length=16)
    runs: int = 0  # times a runner took it (a takeover after a crash makes it 2)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = None
    outcome: str | None = Field(default=None, max_length=32)  # the booking outcome, when done
    message: str | None = None
    attempt_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    repeat: str | None = Field(default=None, max_length=64)  # daily | weekly:mon,fri
    days_ahead: int | None = None  # each occurrence's day is released this many days before
    series_id: int | None = None  # the first occurrence's id; None: a one-off snipe
    release_zone: str | None = Field(default=None, max_length=64)  # the venue's, for the next


def failed_attempt() -> ColumnElement[bool]:
    """A failed booking attempt, on this table (`statuses.failed_outcome` defines it)."""
    return failed_outcome(BookingAttempt.__table__.c.outcome)  # type: ignore[attr-defined]
