"""Reading what discovery found: the drop feed and what just opened (each bucket's state:
`states.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, col, select

from resywatch.db.models import DropEvent, Venue
from resywatch.resy.pages import venue_page_url
from resywatch.services.discovery.filters import BoardFilter


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
