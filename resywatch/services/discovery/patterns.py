"""What observed drops say about each venue's release habits.

Venues release a new day N days ahead at a local time of day, a little early or late, and
cancellations reopen single slots at any hour. From the drops discovery saw, this infers per
venue the usual (lead days, local release time) pair, how sure that is, how long drops
last and how many there are a day. Booking uses it to snipe at the right moment.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session, col

from resywatch.db.models import DropEvent, Venue
from resywatch.services.curated import name_filter, normalize_name
from resywatch.services.discovery.metrics import VenueMetrics, venue_metrics

ROUND_TO_MINUTES = 15  # release times are compared on a quarter-hour grid
FULL_CONFIDENCE_SAMPLES = 10
STREAM_ROWS = 1_000  # rows read from the database at a time


@dataclass(frozen=True)
class ReleasePattern:
    venue_id: int
    venue_name: str
    time_zone: str
    samples: int
    lead_days: int | None  # the usual days between release and the slot's date
    release_time: str | None  # the usual local release time, HH:MM (quarter-hour grid)
    release_share: float  # share of drops that match that (lead days, time) pair
    confidence: float  # release_share, discounted when there are few samples
    median_duration_s: float | None
    closed_samples: int
    drops_per_day: float
    first_seen: datetime
    last_seen: datetime
    hourly: list[int]  # drops opened in each local hour, 0..23
    metrics: VenueMetrics | None = None  # rate, open time, rarity, trend (when asked for)


def patterns(
    session: Session,
    *,
    default_timezone: str,
    venue: str | None = None,
    venue_id: int | None = None,
    metrics_at: datetime | None = None,
) -> list[ReleasePattern]:
    """One pattern per venue with drops (optionally only the venues matching `venue`),
    most drops first; with `metrics_at` (now), each with its venue metrics."""
    # Every drop ever kept is read (the releases job does it every minute): the columns a
    # pattern uses, streamed one venue at a time, never the whole table as objects at once
    # (a working set that grew with the table, 30 days of drops by default).
    query = (
        select(
            col(DropEvent.venue_id),
            col(DropEvent.venue_name),
            col(DropEvent.slot_date),
            col(DropEvent.opened_at),
            col(DropEvent.duration_s),
            col(Venue.time_zone),
        )
        .join(Venue, col(Venue.id) == DropEvent.venue_id, isouter=True)
        .order_by(col(DropEvent.venue_id), col(DropEvent.opened_at))
        .execution_options(yield_per=STREAM_ROWS)
    )
    if venue_id is not None:
        query = query.where(col(DropEvent.venue_id) == venue_id)
    wanted = name_filter(venue) if venue is not None else None
    found = []
    for _, rows in groupby(session.execute(query), key=lambda row: row.venue_id):
        events = [e for e in rows if not wanted or wanted in normalize_name(e.venue_name)]
        if events:
            found.append(_pattern(events, events[0].time_zone or default_timezone))
    if metrics_at is not None:
        rates = venue_metrics(session, metrics_at, [p.venue_id for p in found])
        found = [replace(p, metrics=rates.get(p.venue_id)) for p in found]
    return sorted(found, key=lambda p: (-p.samples, p.venue_name))


def _pattern(events: list[Any], time_zone: str) -> ReleasePattern:
    """The pattern of one venue's drops (rows of DropEvent's columns, oldest first)."""
    zone = ZoneInfo(time_zone)
    local_opened = [e.opened_at.astimezone(zone) for e in events]
    pairs = Counter(
        ((e.slot_date - opened.date()).days, _quarter(opened))
        for e, opened in zip(events, local_opened, strict=True)
    )
    (lead_days, minute), count = pairs.most_common(1)[0]
    share = count / len(events)
    durations = [e.duration_s for e in events if e.duration_s is not None]
    first, last = events[0].opened_at, events[-1].opened_at
    span_days = max(1.0, (last - first) / timedelta(days=1))
    hourly = [0] * 24
    for opened in local_opened:
        hourly[opened.hour] += 1
    return ReleasePattern(
        venue_id=events[0].venue_id,
        venue_name=events[-1].venue_name,
        time_zone=time_zone,
        samples=len(events),
        lead_days=lead_days,
        release_time=f"{minute // 60:02d}:{minute % 60:02d}",
        release_share=round(share, 3),
        confidence=round(share * min(1.0, len(events) / FULL_CONFIDENCE_SAMPLES), 3),
        median_duration_s=statistics.median(durations) if durations else None,
        closed_samples=len(durations),
        drops_per_day=round(len(events) / span_days, 2),
        first_seen=first,
        last_seen=last,
        hourly=hourly,
    )


def _quarter(moment: datetime) -> int:
    """Minutes since local midnight, to the nearest quarter hour: a release seen at 9:59:58
    (early) or 10:01:30 (late) both count as 10:00."""
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
    step = ROUND_TO_MINUTES * 60
    return (round(seconds / step) * step // 60) % (24 * 60)
