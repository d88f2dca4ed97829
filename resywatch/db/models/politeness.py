"""Shared politeness towards one Resy host: the request budget, a pause asked for by a
429's Retry-After, and the circuit breaker. Kept in the database, so every worker and every
cron pass of every machine obeys the same limits."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from resywatch.db.base import utcnow


class ResyHost(SQLModel, table=True):
    """One Resy host's shared state (a row per base URL host)."""

    __tablename__ = "resy_host"

    host: str = Field(primary_key=True, max_length=255)
    # The request budget as a virtual schedule (GCRA): the time at which the next request
    # would be on schedule. A request may go when it is at most `burst` intervals ahead.
    next_free_at: datetime | None = None
    paused_until: datetime | None = None  # Retry-After: nobody calls before this
    consecutive_failures: int = 0
    opened_at: datetime | None = None  # the breaker opened (None: closed)
    open_until: datetime | None = None  # after this, one trial call (half-open)
    probe_until: datetime | None = None  # the trial call's lease
    last_error: str | None = Field(default=None, max_length=500)
    updated_at: datetime = Field(default_factory=utcnow)


class SnipeWindow(SQLModel, table=True):
    """The snipe lane's reservation for one running snipe: from `opens_at` to `closes_at`
    it may send `rps` requests a second of the lane's own budget, and every other caller of
    the host yields to it. Settled (deleted) when the snipe ends; a runner that died leaves a
    row that stops mattering at `closes_at`."""

    __tablename__ = "snipe_window"

    # The snipe's id, never generated here.
    snipe_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    host: str = Field(max_length=255)
    opens_at: datetime
    closes_at: datetime = Field(index=True)
    rps: float
