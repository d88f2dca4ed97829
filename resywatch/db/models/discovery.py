"""Discovery tables: buckets, their current slots, drop events and the venues seen."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import NaiveDatetime
from sqlalchemy import JSON, Index, text
from sqlmodel import Field, SQLModel

from resywatch.db.base import NEVER_REUSED, utcnow


class DiscoveryBucket(SQLModel, table=True):
    """One (date, anchor) unit of the discovery scan, e.g. `2026-12-01_19:00`."""

    __tablename__ = "discovery_bucket"

    id: str = Field(primary_key=True, max_length=32)
    slot_date: date = Field(index=True)
    anchor: str = Field(max_length=5)  # local HH:MM in the configured time zone
    # Hash of what the scan asks Resy (area, window, party sizes): when it changes, the
    # bucket re-baselines instead of reporting everything newly in scope as drops.
    search_key: str | None = Field(default=None, max_length=64)
    baselined_at: datetime | None = None  # None: no B yet
    last_scan_at: datetime | None = None  # last success
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    baseline_count: int = 0  # |B|
    slot_count: int = 0  # |P|
    # The lease of the worker scanning it now. Every claim bumps the epoch, and a scan is
    # applied only while its epoch still stands, so a worker paused past its lease (GC,
    # SIGSTOP, a frozen VM) cannot write over the scan of the worker that took it over.
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = None
    lease_epoch: int = 0
    # When the discovery cycle of the last recorded scan (success or failure) started: a
    # bucket is due again once a later cycle has started. A start time, not a cycle number,
    # so a changed interval takes effect at the next cycle, whichever way it changed.
    last_cycle_start: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class SlotSnapshot(SQLModel, table=True):
    """A slot a bucket knows: in its baseline (B), its last successful scan (P), or both."""

    __tablename__ = "slot_snapshot"

    bucket_id: str = Field(
        primary_key=True, max_length=32, foreign_key="discovery_bucket.id", ondelete="CASCADE"
    )
    slot_id: str = Field(primary_key=True, max_length=32)
    venue_id: int = Field(index=True)
    starts_at: NaiveDatetime  # venue-local wall-clock time, as Resy gives it (no zone)
    # How the slot is offered, e.g. "2,4|Bar,Dining Room": compared as one string, so an
    # unchanged scan costs no JSON decoding (tens of thousands of rows a pass).
    offered: str = Field(default="", max_length=255)
    in_baseline: bool = False
    in_previous: bool = False
    first_seen_at: datetime = Field(default_factory=utcnow)
    changed_at: datetime = Field(default_factory=utcnow)


class DropEvent(SQLModel, table=True):
    """One slot opening: it stays open until the slot disappears from every scan."""

    __tablename__ = "drop_event"
    __table_args__ = (
        # A slot has at most one open drop, however many buckets or replays see it.
        Index(
            "uq_drop_event_open_slot",
            "slot_id",
            unique=True,
            sqlite_where=text("closed_at IS NULL"),
            postgresql_where=text("closed_at IS NULL"),
        ),
        Index("ix_drop_event_venue_opened", "venue_id", "opened_at"),
        NEVER_REUSED,
    )

    id: int | None = Field(default=None, primary_key=True)
    slot_id: str = Field(max_length=32)
    bucket_id: str = Field(max_length=32)  # the bucket that saw it first
    venue_id: int
    venue_name: str
    starts_at: NaiveDatetime  # venue-local wall-clock time
    slot_date: date = Field(index=True)
    party_sizes: list[int] = Field(default_factory=list, sa_type=JSON)
    seating_types: list[str] = Field(default_factory=list, sa_type=JSON)
    is_hotspot: bool = False
    opened_at: datetime = Field(default_factory=utcnow, index=True)
    closed_at: datetime | None = None
    duration_s: int | None = None
    # A close and a reopen within the quiet period re-open this event (a flicker, not news):
    # how often, and the last time, so `discover explain` can tell.
    reopen_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    reopened_at: datetime | None = None


class Venue(SQLModel, table=True):
    """A restaurant on Resy, upserted whenever a scan or search sees it."""

    __tablename__ = "venue"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # Resy's id
    name: str = Field(index=True)
    url_slug: str | None = None
    location_slug: str | None = None  # Resy's city slug, e.g. new-york-ny
    neighborhood: str | None = None
    cuisine: str | None = None
    price_range: int | None = None
    rating: float | None = None
    rating_count: int | None = None
    time_zone: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    lead_time_days: int | None = None  # /2/config lead_time_in_days
    first_seen_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
