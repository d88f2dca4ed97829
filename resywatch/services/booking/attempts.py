"""Booking attempts: every try is a `booking_attempt` row, written before anything is sent
and finished with its outcome and the latency of each step. The outcome of a try nobody is
watching (auto-book, snipe) is written as a `booking` notification in the same transaction
as the row, so it is delivered like any other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from resywatch.db.models import BookingAttempt
from resywatch.db.models.booking import Outcome, failed_attempt
from resywatch.redact import redact_text
from resywatch.services import outbox
from resywatch.services.booking.outcomes import BookingResult, Verdict

if TYPE_CHECKING:
    from resywatch.config import Settings
    from resywatch.db.engine import Database
    from resywatch.services.booking.booker import Steps
    from resywatch.services.booking.plan import BookingPlan
    from resywatch.services.vocabulary import OpenSlot


def start_attempt(
    db: Database,
    *,
    source: str,
    source_id: int | None,
    plan: BookingPlan,
    slot: OpenSlot | None,
    claim_key: str | None,
    now: datetime,
) -> int | None:
    """The attempt's row, written before anything is sent. With a claim key, None means
    another worker holds the claim (the key is unique): send nothing."""
    row = BookingAttempt(
        source=source,
        source_id=source_id,
        claim_key=claim_key,
        venue_id=plan.venue_id,
        venue_name=plan.venue_name,
        slot_date=slot.day if slot else plan.day,
        starts_at=slot.starts_at if slot else None,
        party_size=plan.want.party_size,
        seating_type=slot.seating_type if slot else None,
        outcome=Outcome.PENDING.value,
        dry_run=plan.dry_run,
        created_at=now,
    )
    try:
        with db.write() as session:
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        if claim_key is None:
            raise
        return None


def finish_attempt(
    db: Database,
    attempt_id: int,
    result: BookingResult,
    *,
    notify: bool,
    now: datetime,
    then: Callable[[Session], None] | None = None,
) -> None:
    """The attempt's outcome, its `booking` notification (when `notify`) and whatever `then`
    writes, in one transaction."""
    with db.write() as session:
        row = session.get(BookingAttempt, attempt_id)
        if row is None:  # pruned meanwhile: nothing to finish
            return
        row.outcome = result.outcome.value
        row.message = result.message
        row.resy_status = result.resy_status
        row.reservation_id = result.reservation_id
        row.latency_ms = result.latency_ms
        row.finished_at = now
        if result.starts_at is not None:
            row.slot_date, row.starts_at = result.day, result.starts_at
            row.seating_type = result.seating_type
        if notify and result.outcome is not Outcome.PENDING:
            session.add(outbox.booking_outcome(row, result))
        if then is not None:
            then(session)


def result_of(
    verdict: Verdict,
    plan: BookingPlan,
    steps: Steps,
    settings: Settings,
    attempt_id: int | None,
) -> BookingResult:
    slot = verdict.slot
    return BookingResult(
        outcome=verdict.outcome,
        message=redact_text(verdict.message, settings.secrets()),
        venue_id=plan.venue_id,
        venue_name=plan.venue_name,
        day=slot.day if slot else plan.day,
        party_size=plan.want.party_size,
        starts_at=slot.starts_at if slot else None,
        seating_type=slot.seating_type if slot else None,
        reservation_id=verdict.reservation_id,
        resy_status=verdict.resy_status,
        total=verdict.quote.total if verdict.quote else None,
        cancellation_fee=verdict.quote.cancellation_fee if verdict.quote else None,
        cancellation_fee_max=verdict.quote.cancellation_fee_max if verdict.quote else None,
        attempt_id=attempt_id,
        dry_run=plan.dry_run,
        latency_ms=steps.total(),
    )


def finished_at(started: datetime, steps: Steps) -> datetime:
    return started + timedelta(milliseconds=steps.total()["total"])


@dataclass(frozen=True)
class AttemptView:
    id: int
    created_at: datetime
    finished_at: datetime | None
    source: str
    source_id: int | None
    venue_id: int
    venue_name: str | None
    slot_date: date
    starts_at: datetime | None
    party_size: int
    seating_type: str | None
    outcome: str
    resy_status: int | None
    reservation_id: int | None
    message: str | None
    dry_run: bool
    latency_ms: dict[str, float]


def list_attempts(
    db: Database,
    *,
    since: datetime | None = None,
    failed_only: bool = False,
    limit: int = 50,
) -> list[AttemptView]:
    """Booking attempts, newest first (the seed's booking logs and booking errors)."""
    with db.read() as session:
        query = select(BookingAttempt)
        if since is not None:
            query = query.where(col(BookingAttempt.created_at) >= since)
        if failed_only:
            query = query.where(failed_attempt())
        query = query.order_by(col(BookingAttempt.created_at).desc(), col(BookingAttempt.id).desc())
        rows = session.exec(query.limit(limit)).all()
    return [_attempt_view(r) for r in rows]


def _attempt_view(row: BookingAttempt) -> AttemptView:
    assert row.id is not None
    return AttemptView(
        id=row.id,
        created_at=row.created_at,
        finished_at=row.finished_at,
        source=row.source,
        source_id=row.source_id,
        venue_id=row.venue_id,
        venue_name=row.venue_name,
        slot_date=row.slot_date,
        starts_at=row.starts_at,
        party_size=row.party_size,
        seating_type=row.seating_type,
        outcome=row.outcome,
        resy_status=row.resy_status,
        reservation_id=row.reservation_id,
        message=row.message,
        dry_run=row.dry_run,
        latency_ms=dict(row.latency_ms),
    )
