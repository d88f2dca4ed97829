"""Reading what discovery found: the drop feed, what just opened, and each bucket's state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from resywatch.config import Settings
from resywatch.db.models import DiscoveryBucket, DropEvent, Venue
from resywatch.resy.pages import venue_page_url
from resywatch.services.discovery import hot
from resywatch.services.discovery.filters import BoardFilter

STALE_AFTER = timedelta(hours=4)  # the seed's rule: a bucket older than this is not trusted


@dataclass(frozen=True)
class Drop:
    """A drop event as the feed shows it."""

    id: int
    slot_id: str  # what `discover explain` takes
    venue_id: int
    venue_name: str
    neighborhood: str | None
    slot_date: date
    starts_at: datetime  # venue-local
    party_sizes: list[int]
    seating_types: list[str]
    is_hotspot: bool
    opened_at: datetime
    closed_at: datetime | None
    open: bool
    duration_s: int | None
    bucket_id: str
    url: str | None


@dataclass(frozen=True)
class FeedFilter:
    since: datetime | None = None
    open_only: bool = False
    where: BoardFilter | None = None  # dates, anchor, party, time of day, hotspots, venue
    limit: int = 50
    after_id: int | None = None  # for --follow: only events newer than this one


def feed(session: Session, filters: FeedFilter, now: datetime) -> list[Drop]:
    """Drop events, newest first, filtered."""
    where = filters.where or BoardFilter()
    query = select(DropEvent, Venue).join(Venue, col(Venue.id) == DropEvent.venue_id, isouter=True)
    query = query.where(*where.day_conditions())
    if filters.since is not None:
        query = query.where(col(DropEvent.opened_at) >= filters.since)
    if filters.open_only:
        query = query.where(col(DropEvent.closed_at).is_(None))
    if where.hotspots_only:
        query = query.where(col(DropEvent.is_hotspot))
    if filters.after_id is not None:
        query = query.where(col(DropEvent.id) > filters.after_id)
    query = query.order_by(col(DropEvent.opened_at).desc(), col(DropEvent.id).desc())
    drops: list[Drop] = []
    # Party, time-of-day, anchor and name filters are applied here: the JSON columns and
    # the normalised name are not indexable portably, and the SQL filters above bound the rows.
    for event, venue in session.exec(query):
        if where.keeps(event):
            drops.append(to_drop(event, venue, now))
            if len(drops) >= filters.limit:
                break
    return drops


@dataclass(frozen=True)
class BucketState:
    id: str
    date: date
    anchor: str
    baselined: bool
    baseline_size: int
    slot_count: int
    last_scan_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    age_s: float | None
    stale: bool
    # How often the bucket is scanned now: the interval, or its part while the bucket is
    # hot (drops opened in it lately: `recent_drops`). None when no settings were given.
    interval_s: float | None = None
    hot: bool = False
    recent_drops: int = 0


def bucket_states(
    session: Session, now: datetime, settings: Settings | None = None
) -> list[BucketState]:
    rows = list(
        session.exec(
            select(DiscoveryBucket).order_by(col(DiscoveryBucket.slot_date), DiscoveryBucket.anchor)
        )
    )
    drops = hot.recent_drops(session, [r.id for r in rows], settings, now) if settings else {}
    return [
        BucketState(
            id=row.id,
            date=row.slot_date,
            anchor=row.anchor,
            baselined=row.baselined_at is not None,
            baseline_size=row.baseline_count,
            slot_count=row.slot_count,
            last_scan_at=row.last_scan_at,
            last_attempt_at=row.last_attempt_at,
            last_error=row.last_error,
            consecutive_failures=row.consecutive_failures,
            age_s=(now - row.last_scan_at).total_seconds() if row.last_scan_at else None,
            stale=row.last_scan_at is None or now - row.last_scan_at > STALE_AFTER,
            interval_s=hot.interval_s(settings, hot=row.id in drops) if settings else None,
            hot=row.id in drops,
            recent_drops=drops.get(row.id, 0),
        )
        for row in rows
    ]


def to_drop(event: DropEvent, venue: Venue | None, now: datetime) -> Drop:
    assert event.id is not None
    url = None
    if venue is not None and venue.url_slug:
        party = min(event.party_sizes, default=2)
        url = venue_page_url(venue.location_slug, venue.url_slug, event.slot_date, party)
    open_for = (event.closed_at or now) - event.opened_at
    return Drop(
        id=event.id,
        slot_id=event.slot_id,
        venue_id=event.venue_id,
        venue_name=event.venue_name,
        neighborhood=venue.neighborhood if venue else None,
        slot_date=event.slot_date,
        starts_at=event.starts_at,
        party_sizes=event.party_sizes,
        seating_types=event.seating_types,
        is_hotspot=event.is_hotspot,
        opened_at=event.opened_at,
        closed_at=event.closed_at,
        open=event.closed_at is None,
        duration_s=event.duration_s if event.closed_at else int(open_for.total_seconds()),
        bucket_id=event.bucket_id,
        url=url,
    )
