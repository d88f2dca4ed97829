"""Standing questions: interval watches, their search snapshots, one-off notify requests."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from resywatch.db.base import NEVER_REUSED, utcnow
from resywatch.db.statuses import RequestStatus as RequestStatus
from resywatch.db.statuses import WatchKind as WatchKind
from resywatch.db.statuses import WatchStatus as WatchStatus


class Watch(SQLModel, table=True):
    """Checked every `interval_s`: `venues` (these venues have a slot) or `new-venues`."""

    __tablename__ = "watch"
    __table_args__ = (Index("ix_watch_status_next_check", "status", "next_check_at"), NEVER_REUSED)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # a WatchKind
    venue_ids: list[int] = Field(default_factory=list, sa_type=JSON)
    query: str | None = None
    cuisine: str | None = None
    neighborhood: str | None = None
    date_from: date
    date_to: date
    party_size: int
    time_from: time | None = None  # local window; None = any time
    time_to: time | None = None
    seating_types: list[str] = Field(default_factory=list, sa_type=JSON)
    #: The `--time` list (HH:MM, best first), what --auto-book books first; None: no --time.
    preferred_times: list[str] | None = Field(default=None, sa_type=JSON)
    interval_s: int = 300
    auto_book: bool = False
    account: str | None = Field(default=None, max_length=32)  # who books; None: default
    status: str = Field(default=WatchStatus.ACTIVE, max_length=16)
    last_checked_at: datetime | None = None
    next_check_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class VenueSearchSnapshot(SQLModel, table=True):
    """The venue names a search returned last time, to tell which names are new."""

    __tablename__ = "venue_search_snapshot"
    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    criteria_key: str = Field(max_length=64, unique=True)
    venue_names: list[str] = Field(default_factory=list, sa_type=JSON)
    updated_at: datetime = Field(default_factory=utcnow)


class NotifyRequest(SQLModel, table=True):
    """Tell me (or book for me) when venue V has a slot on D for party P between T1 and T2."""

    __tablename__ = "notify_request"
    __table_args__ = NEVER_REUSED

    id: int | None = Field(default=None, primary_key=True)
    venue_id: int
    venue_name: str
    title: str | None = Field(default=None, max_length=255)  # the user's label
    date_from: date
    date_to: date
    party_size: int
    time_from: time | None = None
    time_to: time | None = None
    preferred_times: list[str] | None = Field(default=None, sa_type=JSON)  # as a watch's
    auto_book: bool = False
    account: str | None = Field(default=None, max_length=32)  # who books; None: default
    status: str = Field(default=RequestStatus.PENDING, max_length=16, index=True)
    result: dict[str, object] | None = Field(default=None, sa_type=JSON)
    last_checked_at: datetime | None = None
    satisfied_at: datetime | None = None
    read_at: datetime | None = None  # when its found result was marked read
    created_at: datetime = Field(default_factory=utcnow)
