"""Every try to book, whatever its outcome."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import NaiveDatetime
from sqlalchemy import JSON, BigInteger
from sqlmodel import Field, SQLModel

from resywatch.db.base import utcnow


class BookingAttempt(SQLModel, table=True):
    """One booking try: what was asked, what Resy said, how long each step took."""

    __tablename__ = "booking_attempt"

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
    outcome: str = Field(max_length=32)  # booked | no_slot | slot_gone | conflict | ...
    resy_status: int | None = None
    message: str | None = None
    reservation_id: int | None = Field(default=None, sa_type=BigInteger)
    latency_ms: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    dry_run: bool = False
    created_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None
