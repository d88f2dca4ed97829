"""The notification outbox: written with the event that caused it, delivered later."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from resywatch.db.base import utcnow


class Notification(SQLModel, table=True):
    """One message to deliver at least once; `dedupe_key` makes writing it twice a no-op."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_status_next", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=255, unique=True)  # e.g. drop:<event id>
    kind: str = Field(max_length=32)  # drop | watch_hit | notify_hit | booking | test
    title: str
    body: str
    url: str | None = None
    payload: dict[str, object] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)
