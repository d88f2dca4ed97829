"""The notification outbox: written with the event that caused it, delivered later.

A relay (`resywatch notify deliver`) claims due rows by setting `claimed_by`/`claimed_until`
(a lease, so a crashed relay's rows come back once it expires), sends them, then records
the outcome; per-channel outcomes live in `notification_delivery`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from resywatch.db.base import NEVER_REUSED, utcnow
from resywatch.db.statuses import NotificationKind as NotificationKind
from resywatch.db.statuses import NotificationStatus as NotificationStatus


class Notification(SQLModel, table=True):
    """One message to deliver at least once; `dedupe_key` makes writing it twice a no-op."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_status_next", "status", "next_attempt_at"),
        NEVER_REUSED,
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=255, unique=True)  # e.g. drop:<event id>
    kind: str = Field(max_length=32)  # a NotificationKind
    title: str
    body: str
    url: str | None = None
    payload: dict[str, object] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default=NotificationStatus.PENDING, max_length=16)
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None  # when every channel had it
    created_at: datetime = Field(default_factory=utcnow, index=True)
    claimed_by: str | None = Field(default=None, max_length=64)  # the relay's claim token
    claimed_until: datetime | None = None  # the lease: free again after this
