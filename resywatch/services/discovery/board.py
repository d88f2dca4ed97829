"""The drop board as the seed served it: what just opened and what is still open, one entry
per venue per date (with its times), the scan header (last scan, next scan, venues scanned,
stale buckets), and the per-date counts behind the calendar.

A drop is on the board only while a fresh bucket (scanned within STALE_AFTER) still sees its
slot: a stale bucket's view is not trusted, so what only it sees is left out and the bucket
is named instead. The filters are the ones `discover feed` takes too (`BoardFilter`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from resywatch.db.models import DiscoveryBucket, DropEvent, JobHeartbeat, SlotSnapshot, Venue
from resywatch.errors import InvalidInput
from resywatch.services.discovery.feed import Drop, to_drop
from resywatch.services.discovery.filters import BoardFilter
from resywatch.services.discovery.states import STALE_AFTER

DISCOVERY_JOB = "discovery"  # the job whose heartbeat says when the next scan runs


@dataclass(frozen=True)
class VenueDay:
    """One venue on one date: every open drop there, its times together."""

    date: date
    venue_id: int
    venue_name: str
    neighborhood: str | None
    times: list[str]  # venue-local HH:MM, earliest first
    party_sizes: list[int]
    seating_types: list[str]
    is_hotspot: bool
    opened_at: datetime  # when the first of these drops opened
    last_opened_at: datetime
    drop_ids: list[int]
    url: str | None


@dataclass(frozen=True)
class DayBoard:
    date: date
    scanned_at: datetime | None  # the newest fresh scan of this date's buckets
    venues: list[VenueDay]


@dataclass(frozen=True)
class ScanInfo:
    """The board's header: how current it is."""

    last_scan_at: datetime | None
    next_scan_at: datetime | None  # the discovery job's next run; None without a scheduler
    venues_scanned: int  # venues with a slot in the fresh buckets' last scans
    slots_scanned: int
    buckets_fresh: int
    stale_buckets: list[str]  # left out of the board: not scanned within STALE_AFTER


@dataclass(frozen=True)
class Board:
    minutes: int
    last_scan_at: datetime | None
    next_scan_at: datetime | None
    venues_scanned: int
    slots_scanned: int
    buckets_fresh: int
    stale_buckets: list[str]
    just_opened: list[DayBoard]
    still_open: list[DayBoard] | None = None  # only when asked for


@dataclass(frozen=True)
class CalendarDay:
    date: date
    venues: int  # venues with an open drop that date
    drops: int
    hotspot_venues: int


@dataclass(frozen=True)
class Calendar:
    last_scan_at: datetime | None
    next_scan_at: datetime | None
    stale_buckets: list[str]
    days: list[CalendarDay] = field(default_factory=list)


def scan_info(session: Session, where: BoardFilter, now: datetime) -> ScanInfo:
    """The header over the buckets the filter covers."""
    buckets = [b for b in session.exec(select(DiscoveryBucket)) if where.keeps_bucket(b)]
    fresh = [b.id for b in buckets if _fresh(b, now)]
    stale = sorted(b.id for b in buckets if not _fresh(b, now))
    scanned = [b.last_scan_at for b in buckets if b.last_scan_at is not None]
    venues = slots = 0
    if fresh:
        venues, slots = session.exec(
            select(
                func.count(func.distinct(SlotSnapshot.venue_id)),
                func.count(func.distinct(SlotSnapshot.slot_id)),
            ).where(col(SlotSnapshot.in_previous), col(SlotSnapshot.bucket_id).in_(fresh))
        ).one()
    beat = session.get(JobHeartbeat, DISCOVERY_JOB)
    return ScanInfo(
        last_scan_at=max(scanned, default=None),
        next_scan_at=beat.next_run_at if beat else None,
        venues_scanned=venues,
        slots_scanned=slots,
        buckets_fresh=len(fresh),
        stale_buckets=stale,
    )


def open_drops(
    session: Session,
    where: BoardFilter,
    now: datetime,
    *,
    opened_since: datetime | None = None,
    opened_before: datetime | None = None,
) -> list[Drop]:
    """Open drops a fresh bucket still sees, filtered; hotspots first, then by time."""
    seen = (
        select(SlotSnapshot.slot_id)
        .join(DiscoveryBucket, col(DiscoveryBucket.id) == SlotSnapshot.bucket_id)
        .where(
            col(SlotSnapshot.in_previous),
            col(DiscoveryBucket.last_scan_at) >= now - STALE_AFTER,
        )
    )
    query = (
        select(DropEvent, Venue)
        .join(Venue, col(Venue.id) == DropEvent.venue_id, isouter=True)
        .where(col(DropEvent.closed_at).is_(None), col(DropEvent.slot_id).in_(seen))
        .where(*where.day_conditions())
    )
    if opened_since is not None:
        query = query.where(col(DropEvent.opened_at) >= opened_since)
    if opened_before is not None:
        query = query.where(col(DropEvent.opened_at) < opened_before)
    if where.hotspots_only:
        query = query.where(col(DropEvent.is_hotspot))
    drops = [to_drop(e, v, now) for e, v in session.exec(query) if where.keeps(e)]
    return sorted(drops, key=lambda d: (not d.is_hotspot, d.starts_at, d.venue_name))


def just_opened(
    session: Session, where: BoardFilter, now: datetime, *, minutes: int, still_open: bool = False
) -> Board:
    """Drops opened in the last `minutes` that are still open, one entry per venue per date;
    with `still_open`, also the open drops that opened before that (the two never overlap)."""
    cutoff = now - timedelta(minutes=minutes)
    info = scan_info(session, where, now)
    scanned = _scanned_by_date(session, now)
    recent = open_drops(session, where, now, opened_since=cutoff)
    older = open_drops(session, where, now, opened_before=cutoff) if still_open else None
    return Board(
        minutes=minutes,
        last_scan_at=info.last_scan_at,
        next_scan_at=info.next_scan_at,
        venues_scanned=info.venues_scanned,
        slots_scanned=info.slots_scanned,
        buckets_fresh=info.buckets_fresh,
        stale_buckets=info.stale_buckets,
        just_opened=by_date(recent, scanned),
        still_open=None if older is None else by_date(older, scanned),
    )


def by_date(drops: list[Drop], scanned: dict[date, datetime] | None = None) -> list[DayBoard]:
    """Group drops into one entry per venue per date, dates in order; within a date the
    order of each venue's first drop (hotspots first, then by time)."""
    grouped: dict[date, dict[int, list[Drop]]] = {}
    for drop in drops:
        grouped.setdefault(drop.slot_date, {}).setdefault(drop.venue_id, []).append(drop)
    return [
        DayBoard(
            date=day,
            scanned_at=(scanned or {}).get(day),
            venues=[venue_day(day, same) for same in grouped[day].values()],
        )
        for day in sorted(grouped)
    ]


def venue_day(day: date, drops: list[Drop]) -> VenueDay:
    first = drops[0]
    return VenueDay(
        date=day,
        venue_id=first.venue_id,
        venue_name=first.venue_name,
        neighborhood=first.neighborhood,
        times=sorted({f"{d.starts_at:%H:%M}" for d in drops}),
        party_sizes=sorted({p for d in drops for p in d.party_sizes}),
        seating_types=sorted({s for d in drops for s in d.seating_types}),
        is_hotspot=any(d.is_hotspot for d in drops),
        opened_at=min(d.opened_at for d in drops),
        last_opened_at=max(d.opened_at for d in drops),
        drop_ids=sorted(d.id for d in drops),
        url=next((d.url for d in drops if d.url), None),
    )


def calendar(session: Session, where: BoardFilter, now: datetime, *, days: list[date]) -> Calendar:
    """Per date of `days`: the venues and drops open on it (what the board would show)."""
    info = scan_info(session, where, now)
    counts: dict[date, list[Drop]] = {day: [] for day in days}
    for drop in open_drops(session, where, now):
        if drop.slot_date in counts:
            counts[drop.slot_date].append(drop)
    return Calendar(
        last_scan_at=info.last_scan_at,
        next_scan_at=info.next_scan_at,
        stale_buckets=info.stale_buckets,
        days=[
            CalendarDay(
                date=day,
                venues=len({d.venue_id for d in found}),
                drops=len(found),
                hotspot_venues=len({d.venue_id for d in found if d.is_hotspot}),
            )
            for day, found in counts.items()
        ],
    )


def calendar_days(where: BoardFilter, today: date, window_days: int) -> list[date]:
    """The dates a calendar covers: the filter's, else the discovery window from today."""
    if where.dates:
        return sorted(set(where.dates))
    first = where.date_from or today
    last = where.date_until or max(first, today + timedelta(days=window_days - 1))
    if last < first:  # only --until, and it is before today
        raise InvalidInput(f"--until {last} is before today ({first}): give --from as well")
    if (last - first).days > 366:
        raise InvalidInput(f"--from {first} to --until {last} is more than a year of calendar")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _fresh(bucket: DiscoveryBucket, now: datetime) -> bool:
    return bucket.last_scan_at is not None and now - bucket.last_scan_at <= STALE_AFTER


def _scanned_by_date(session: Session, now: datetime) -> dict[date, datetime]:
    rows = session.exec(
        select(col(DiscoveryBucket.slot_date), func.max(DiscoveryBucket.last_scan_at))
        .where(col(DiscoveryBucket.last_scan_at) >= now - STALE_AFTER)
        .group_by(col(DiscoveryBucket.slot_date))
    )
    return {day: moment for day, moment in rows if moment is not None}
