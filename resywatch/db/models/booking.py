"""Every try to book, whatever its outcome, and the snipes scheduled for release instants."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum

from pydantic import NaiveDatetime
from sqlalchemy import JSON, BigInteger, ColumnElement, Index
from sqlmodel import Field, SQLModel, col

from resywatch.db.base import NEVER_REUSED, utcnow


class Outcome(StrEnum):
    """How a booking try ended (`booking_attempt.outcome`). Each has its own message and
    exit code (`services.booking.outcomes.EXIT_CODES`)."""

    BOOKED = "booked"
    DRY_RUN = "dry_run"
    NO_SLOT = "no_slot"
    SLOT_GONE = "slot_gone"  # 404 on book
    CONFLICT = "conflict"  # 412 on book
    ALREADY_BOOKED = "already_booked"  # the upcoming-reservations check
    PAYMENT_REQUIRED = "payment_required"  # 402
    PAYMENT_NOT_ACCEPTED = "payment_not_accepted"  # 403 from the venue
    BLOCKED = "blocked"  # 403 from Resy's firewall
    FEE_TOO_HIGH = "fee_too_high"
    CAPTCHA = "captcha"  # the venue asks for a captcha (feature_recaptcha)
    AUTH_EXPIRED = "auth_expired"  # 419
    RATE_LIMITED = "rate_limited"  # 429
    UNCONFIRMED = "unconfirmed"  # no clear answer and not (yet) in the reservations
    DECLINED = "declined"  # the user said no at the prompt
    CLAIMED = "claimed"  # another worker holds the claim: nothing sent
    FAILED = "failed"
    PENDING = "pending"  # the row while its try is under way


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


class SnipeStatus(StrEnum):
    """`scheduled_snipe.status` (and how one run of a snipe ended)."""

    SCHEDULED = "scheduled"
    RUNNING = "running"  # a runner holds it (`claimed_by`, `claimed_until`)
    DONE = "done"  # tried: its booking outcome is in `outcome`
    MISSED = "missed"  # no runner in time, or its runner died
    CANCELLED = "cancelled"


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


NOT_FAILED = frozenset({Outcome.BOOKED, Outcome.DRY_RUN, Outcome.PENDING, Outcome.DECLINED})


def failed_attempt() -> ColumnElement[bool]:
    """The one definition of a failed booking attempt: `health`, `admin booking-errors`
    and `book attempts --failed` all use it. Beside the table, so `health` need not load
    the booking service to ask."""
    return col(BookingAttempt.outcome).not_in(sorted(o.value for o in NOT_FAILED))
