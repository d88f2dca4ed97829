"""The notification outbox: written with the event that caused it, delivered later.

A relay (`resywatch notify deliver`) claims due rows by setting `claimed_by`/`claimed_until`
(a lease, so a crashed relay's rows come back once it expires), sends them, then records
the outcome; per-channel outcomes live in `notification_delivery`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from resywatch.db.base import NEVER_REUSED, utcnow


class NotificationKind(StrEnum):
    """What a notification is about (`notification.kind`; the webhook document's `kind`).
    Every one is built in `services/outbox.py`."""

    DROP = "drop"  # a slot nobody had seen opened (discovery)
    WATCH_HIT = "watch_hit"  # a watch found slots, or a new venue
    NOTIFY_HIT = "notify_hit"  # a notify request was satisfied
    BOOKING = "booking"  # a booking try ended (book now, auto-book, snipe), or a snipe missed
    ACCOUNT = "account"  # an account's token lapses soon, or lapsed, and was not refreshed
    TEST = "test"  # `notify test`: sent straight to the channels, never stored


class NotificationStatus(StrEnum):
    """`notification.status`: `pending` until every channel has it (`sent`) or the relay
    gives up (`failed`)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


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
