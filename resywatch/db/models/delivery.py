"""Per-channel delivery state of a notification.

A notification sent to channel A that failed on channel B is retried on B only: the relay
skips every channel whose row says `sent` (or `failed`, a permanent refusal).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from resywatch.db.base import NEVER_REUSED, utcnow
from resywatch.db.statuses import DeliveryStatus as DeliveryStatus


class NotificationDelivery(SQLModel, table=True):
    """One notification on one channel: pending (will retry) | sent | failed."""

    __tablename__ = "notification_delivery"
    __table_args__ = (UniqueConstraint("notification_id", "channel"), NEVER_REUSED)

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notification.id", ondelete="CASCADE")
    # The channel's key: its scheme and a hash of its URL (the URL itself may hold tokens).
    channel: str = Field(max_length=64)
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16)
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
