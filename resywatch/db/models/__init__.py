"""Every table, imported in one place so SQLModel.metadata (and Alembic) sees them all."""

from __future__ import annotations

from sqlmodel import SQLModel

from resywatch.db.models.api_log import ApiCallLog
from resywatch.db.models.booking import BookingAttempt, Outcome, ScheduledSnipe, SnipeStatus
from resywatch.db.models.delivery import DeliveryStatus, NotificationDelivery
from resywatch.db.models.discovery import DiscoveryBucket, DropEvent, SlotSnapshot, Venue
from resywatch.db.models.jobs import JobHeartbeat, JobRun, JobStatus
from resywatch.db.models.notifications import (
    Notification,
    NotificationKind,
    NotificationStatus,
)
from resywatch.db.models.politeness import ResyHost, SnipeWindow
from resywatch.db.models.watches import (
    NotifyRequest,
    RequestStatus,
    VenueSearchSnapshot,
    Watch,
    WatchKind,
    WatchStatus,
)

metadata = SQLModel.metadata

__all__ = [
    "ApiCallLog",
    "BookingAttempt",
    "DeliveryStatus",
    "DiscoveryBucket",
    "DropEvent",
    "JobHeartbeat",
    "JobRun",
    "JobStatus",
    "Notification",
    "NotificationDelivery",
    "NotificationKind",
    "NotificationStatus",
    "NotifyRequest",
    "Outcome",
    "RequestStatus",
    "ResyHost",
    "ScheduledSnipe",
    "SlotSnapshot",
    "SnipeStatus",
    "SnipeWindow",
    "Venue",
    "VenueSearchSnapshot",
    "Watch",
    "WatchKind",
    "WatchStatus",
    "metadata",
]
