"""Venues: saving what Resy tells us about them (every feature that sees a venue, discovery
included, saves it here), ad-hoc availability search, finding a venue's id, and what is
known about one venue (horizon, calendar, learned release pattern)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from resywatch.db.engine import Database, insert_unless_present
from resywatch.db.models import Venue
from resywatch.errors import InvalidInput, NotFound
from resywatch.ids import is_id, may_name_a_row, parse_id
from resywatch.resy import errors as resy_errors
from resywatch.resy.models import CalendarResponse, VenueResponse
from resywatch.resy.pages import venue_page_url
from resywatch.resy.search_page import SearchHit
from resywatch.services.curated import HotspotMatcher, name_filter, normalize_name
from resywatch.services.discovery import buckets as bucket_rules
from resywatch.services.discovery.metrics import VenueMetrics, venue_metrics
from resywatch.services.discovery.patterns import ReleasePattern, patterns
from resywatch.services.vocabulary import local_today

if TYPE_CHECKING:
    from resywatch.runtime import Runtime


@dataclass(frozen=True)
class SeenVenue:
    """What a search or a venue page told us about a venue: what `upsert_venues` saves."""

    id: int
    name: str
    url_slug: str | None
    location_slug: str | None
    neighborhood: str | None
    cuisine: str | None
    price_range: int | None
    rating: float | None
    rating_count: int | None
    latitude: float | None
    longitude: float | None

    @classmethod
    def from_hit(cls, hit: SearchHit) -> SeenVenue:
        return cls(
            id=hit.id,
            name=hit.name,
            url_slug=hit.url_slug,
            location_slug=hit.location.url_slug if hit.location else None,
            neighborhood=hit.neighborhood,
            cuisine=", ".join(hit.cuisine) or None,
            price_range=hit.price_range_id,
            rating=hit.rating.average if hit.rating else None,
            rating_count=hit.rating.count if hit.rating else None,
            latitude=hit.geoloc.lat if hit.geoloc else None,
            longitude=hit.geoloc.lng if hit.geoloc else None,
        )

    @classmethod
    def from_venue(cls, info: VenueResponse) -> SeenVenue:
        location = info.location
        return cls(
            id=info.id,
            name=info.name,
            url_slug=info.url_slug,
            location_slug=location.url_slug if location else None,
            neighborhood=location.neighborhood if location else None,
            cuisine=None,
            price_range=None,
            rating=None,
            rating_count=None,
            latitude=None,
            longitude=None,
        )


_VENUE = Venue.__table__  # type: ignore[attr-defined]


def upsert_venues(db: Database, venues: Iterable[SeenVenue], now: datetime) -> int:
    """Insert venues not yet known and update changed ones; unchanged ones are not written."""
    with db.write() as session:
        return upsert_venues_in(session, venues, now)


def upsert_venues_in(session: Session, venues: Iterable[SeenVenue], now: datetime) -> int:
    """`upsert_venues` inside the caller's transaction (a discovery scan saves the venues
    it saw with its snapshot, all or nothing)."""
    seen = {v.id: v for v in venues}
    if not seen:
        return 0
    written = 0
    known = {v.id: v for v in session.exec(select(Venue).where(col(Venue.id).in_(seen)))}
    for venue_id, venue in seen.items():
        fields = {k: v for k, v in vars(venue).items() if v is not None}
        row = known.get(venue_id)
        if row is None:  # another worker may be adding it too
            values = fields | {"first_seen_at": now, "updated_at": now}
            session.execute(insert_unless_present(session, _VENUE).values(**values))
        elif any(getattr(row, k) != v for k, v in fields.items()):
            row.sqlmodel_update(fields | {"updated_at": now})
        else:
            continue
        written += 1
    return written


@dataclass(frozen=True)
class SearchQuery:
    day: date
    party_size: int
    query: str = ""
    window: tuple[time, time] | None = None  # local; None = any time
    neighborhood: str | None = None
    cuisine: str | None = None
    hotspots_only: bool = False
    limit: int = 20


@dataclass(frozen=True)
class VenueTimes:
    venue_id: int
    name: str
    neighborhood: str | None
    cuisine: str | None
    rating: float | None
    is_hotspot: bool
    times: list[str]  # local HH:MM, earliest first
    seating_types: list[str]
    url: str | None
    #: Of `times`, those only slots this account cannot book offer (Global Dining Access,
    #: an exclusive it is not eligible for): listed, marked, never booked (finding 12).
    restricted_times: list[str] = field(default_factory=list)


async def search(rt: Runtime, query: SearchQuery) -> list[VenueTimes]:
    """Venues in the configured area with open slots for the date, party and window: hotspots
    first, then by rating. The venues seen are remembered (`venue show NAME` finds them)."""
    now = rt.clock.now()
    if query.day < local_today(now, rt.settings.timezone):
        raise InvalidInput(f"{query.day} is in the past")
    found, seen = await open_venues(rt, query)
    upsert_venues(rt.db, seen, now)
    ranked = sorted(found, key=lambda v: (not v.is_hotspot, -(v.rating or 0), v.name))
    return ranked[: query.limit]


async def open_venues(rt: Runtime, query: SearchQuery) -> tuple[list[VenueTimes], list[SeenVenue]]:
    """The search itself: venues with matching open slots, and the venues it saw (nothing
    is written: the caller decides what to remember)."""
    resy, settings = rt.resy, rt.settings
    filters: list[str | None] = [None]
    if query.window is not None:
        start, end = (datetime.combine(query.day, t) for t in query.window)
        half_hours = -(-int((end - start).total_seconds()) // 7200)  # ceil(half, in hours)
        filters = [*bucket_rules.time_filters((start + (end - start) / 2).time(), half_hours)]
    pages = await asyncio.gather(
        *(
            resy.search_all(
                day=query.day,
                party_size=query.party_size,
                query=query.query,
                time_filter=time_filter,
                bounding_box=settings.discovery_bounding_box,
                per_page=settings.discovery_page_size,
                max_pages=5,
            )
            for time_filter in filters
        )
    )
    matcher = HotspotMatcher.default()
    found: dict[int, VenueTimes] = {}
    seen: dict[int, SeenVenue] = {}
    for hit in (h for page in pages for h in page):
        if not _wanted(hit, query, matcher):
            continue
        slots = [
            (starts, slot.seating, slot.restricted)
            for slot in hit.slots
            if (starts := slot.starts_at).date() == query.day
            and (query.window is None or query.window[0] <= starts.time() <= query.window[1])
        ]
        if not slots:
            continue
        seen[hit.id] = SeenVenue.from_hit(hit)
        previous = found.get(hit.id)
        times = sorted(
            {f"{starts:%H:%M}" for starts, _, _ in slots} | set(previous.times if previous else [])
        )
        seating = sorted(
            {seating for _, seating, _ in slots if seating}
            | set(previous.seating_types if previous else [])
        )
        bookable_times = {f"{starts:%H:%M}" for starts, _, restricted in slots if not restricted}
        if previous is not None:
            bookable_times |= set(previous.times) - set(previous.restricted_times)
        restricted = [t for t in times if t not in bookable_times]
        found[hit.id] = VenueTimes(
            venue_id=hit.id,
            name=hit.name,
            neighborhood=hit.neighborhood,
            cuisine=", ".join(hit.cuisine) or None,
            rating=hit.rating.average if hit.rating else None,
            is_hotspot=matcher.matches(hit.name),
            times=times,
            seating_types=seating,
            url=venue_page_url(
                hit.location.url_slug if hit.location else None,
                hit.url_slug,
                query.day,
                query.party_size,
            )
            if hit.url_slug
            else None,
            restricted_times=restricted,
        )
    return list(found.values()), list(seen.values())


def _wanted(hit: SearchHit, query: SearchQuery, matcher: HotspotMatcher) -> bool:
    if query.hotspots_only and not matcher.matches(hit.name):
        return False
    if query.neighborhood and normalize_name(query.neighborhood) not in normalize_name(
        hit.neighborhood or ""
    ):
        return False
    return not (
        query.cuisine
        and not any(normalize_name(query.cuisine) in normalize_name(c) for c in hit.cuisine)
    )


@dataclass(frozen=True)
class VenueSummary:
    venue_id: int
    name: str
    neighborhood: str | None
    cuisine: str | None
    rating: float | None
    price_range: int | None


async def find_venues(rt: Runtime, text: str, *, limit: int = 20) -> list[VenueSummary]:
    """Venues whose name matches, with their Resy ids; they are remembered for later."""
    now = rt.clock.now()
    hits = await _named(rt, text, now)
    upsert_venues(rt.db, (SeenVenue.from_hit(h) for h in hits), now)
    return [_summary(h) for h in hits[:limit]]


async def _named(
    rt: Runtime,
    text: str,
    now: datetime,
    bounding_box: tuple[float, float, float, float] | None = None,
) -> list[SearchHit]:
    """Resy's venue search by name (no availability asked; within `bounding_box` if given),
    best matches first: Resy's search is fuzzy ("amori" finds "Mori"), so the hits are
    ranked by how close their names are to the text."""
    if not text.strip():
        raise InvalidInput("give part of a venue's name to search for")
    today = local_today(now, rt.settings.timezone)
    hits = await rt.resy.search_all(
        day=today, party_size=2, query=text.strip(), availability=False, per_page=50,
        max_pages=2, bounding_box=bounding_box,
    )  # fmt: skip
    wanted = normalize_name(text)
    return sorted(hits, key=lambda h: (-name_closeness(wanted, h.name), h.name))


def name_closeness(wanted: str, name: str) -> float:
    """0..1: 1 for the same name (normalized), then containing it, then a fuzzy ratio."""
    have = normalize_name(name)
    if have == wanted:
        return 1.0
    ratio = SequenceMatcher(None, wanted, have).ratio()
    return 0.5 + ratio / 2 if wanted in have or have in wanted else ratio / 2


def _where(hit: SearchHit) -> str:
    """`Carbone (Greenwich Village, New York, id 6194)`: enough to tell namesakes apart."""
    place = ", ".join(p for p in (hit.neighborhood, hit.locality) if p) or "?"
    return f"{hit.name} ({place}, id {hit.id})"


#: resy.com venue pages: /cities/<city>/venues/<slug> (and the older /cities/<city>/<slug>).
RESY_VENUE_URL = re.compile(
    r"^(?:https?://)?(?:www\.)?resy\.com/cities/(?P<city>[\w-]+)/(?:venues/)?(?P<slug>[\w-]+)/?"
    r"(?:[?#].*)?$",
    re.IGNORECASE,
)


def _summary(hit: SearchHit) -> VenueSummary:
    return VenueSummary(
        venue_id=hit.id,
        name=hit.name,
        neighborhood=hit.neighborhood,
        cuisine=", ".join(hit.cuisine) or None,
        rating=hit.rating.average if hit.rating else None,
        price_range=hit.price_range_id,
    )


async def resolve_venue(rt: Runtime, text: str) -> Venue:
    """A venue from its Resy id or its name: known venues first, then Resy's search.

    An ambiguous name is an error that lists the candidates (exit 2); no match is exit 3.
    An id (ASCII digits) beyond 64 bits, or a name with no letters or digits, is exit 2.
    Only the venue found is written (remembered); a failed lookup writes nothing.
    """
    db, resy, now = rt.db, rt.resy, rt.clock.now()
    text = text.strip()
    page = RESY_VENUE_URL.match(text)
    if page is not None:
        slug, city = page["slug"].lower(), page["city"].lower()
        with db.read() as session:
            known_pages = list(session.exec(select(Venue).where(Venue.url_slug == slug)))
        if len(known_pages) == 1:
            return known_pages[0]
        try:
            seen = SeenVenue.from_venue(await resy.venue_by_slug(slug, city))
        except (resy_errors.NotFound, resy_errors.BadRequest):
            raise NotFound(f"Resy has no venue page {slug!r} in {city!r}") from None
    elif is_id(text):
        venue_id = parse_id(text, what="venue")
        if not may_name_a_row(venue_id):  # `venue.id` could not hold it: no venue has it
            raise NotFound(f"Resy has no venue with id {venue_id}")
        with db.read() as session:
            known = session.get(Venue, venue_id)
        if known is not None:
            return known
        try:
            seen = SeenVenue.from_venue(await resy.venue(venue_id))
        except resy_errors.NotFound:
            raise NotFound(f"Resy has no venue with id {venue_id}") from None
    else:
        wanted = name_filter(text, what="venue")
        with db.read() as session:
            # autoescape: a "%" or "_" typed is a character, not a LIKE wildcard
            named = select(Venue).where(col(Venue.name).icontains(text, autoescape=True))
            exact = [v for v in session.exec(named) if normalize_name(v.name) == wanted]
        if len(exact) == 1:
            return exact[0]
        seen = SeenVenue.from_hit(await _one_named(rt, text, now))
    upsert_venues(db, [seen], now)
    with db.read() as session:
        venue = session.get(Venue, seen.id)
    assert venue is not None
    return venue


async def _one_named(rt: Runtime, text: str, now: datetime) -> SearchHit:
    """The venue a name means: the same name within the configured area first, then
    anywhere (Resy's search is not limited to one city); else the one fuzzy match. Several:
    an error listing them, best first, with neighbourhood and city (exit 2); none: exit 3."""
    wanted = normalize_name(text)
    nearby = await _named(rt, text, now, rt.settings.discovery_bounding_box)
    same = [h for h in nearby if normalize_name(h.name) == wanted]
    anywhere: list[SearchHit] = []
    if not same:
        anywhere = await _named(rt, text, now)
        same = [h for h in anywhere if normalize_name(h.name) == wanted]
    if len(same) == 1:
        return same[0]
    ids = {h.id for h in nearby}
    ranked = same or [*nearby, *(h for h in anywhere if h.id not in ids)]
    if not ranked:
        raise NotFound(f"no venue on Resy matches {text!r}")
    if len(ranked) == 1:
        return ranked[0]
    if not same:
        ranked.sort(key=lambda h: -name_closeness(wanted, h.name))  # stable: nearby first
    listed = "; ".join(_where(h) for h in ranked[:10])
    raise InvalidInput(
        f"{text!r} matches several venues: {listed}. Use the id, the resy.com page URL or "
        "the full name."
    )


@dataclass(frozen=True)
class CalendarDay:
    date: date
    status: str  # available | sold-out | closed | not-released


@dataclass(frozen=True)
class VenueReport:
    venue_id: int
    name: str
    neighborhood: str | None
    cuisine: str | None
    time_zone: str | None
    url: str | None
    lead_time_days: int | None
    last_calendar_day: date | None
    calendar: list[CalendarDay]
    pattern: ReleasePattern | None
    metrics: VenueMetrics | None  # from the last 30 days of drops; None without any


async def show_venue(rt: Runtime, text: str, *, party_size: int, days: int) -> VenueReport:
    """Everything known about one venue: booking horizon, the next days' calendar and its
    learned release pattern."""
    db, resy, settings, now = rt.db, rt.resy, rt.settings, rt.clock.now()
    venue = await resolve_venue(rt, text)
    today = local_today(now, settings.timezone)
    info, config, calendar = await asyncio.gather(
        resy.venue(venue.id),
        resy.venue_config(venue.id),
        resy.calendar(venue.id, party_size, today, today + timedelta(days=days - 1)),
    )
    with db.write() as session:
        row = session.get(Venue, venue.id)
        assert row is not None
        row.lead_time_days = config.lead_time_in_days
        row.time_zone = info.time_zone or row.time_zone
        row.url_slug = info.url_slug or row.url_slug
        row.updated_at = now
        venue = row
    with db.read() as session:
        learned = patterns(session, default_timezone=settings.timezone, venue_id=venue.id)
        rates = venue_metrics(session, now, [venue.id])
    return VenueReport(
        venue_id=venue.id,
        name=venue.name,
        neighborhood=venue.neighborhood,
        cuisine=venue.cuisine,
        time_zone=venue.time_zone,
        url=venue_page_url(venue.location_slug, venue.url_slug, today, party_size)
        if venue.url_slug
        else None,
        lead_time_days=config.lead_time_in_days,
        last_calendar_day=calendar.last_calendar_day,
        calendar=_calendar(calendar, today, days),
        pattern=learned[0] if learned else None,
        metrics=rates.get(venue.id),
    )


def _calendar(calendar: CalendarResponse, today: date, days: int) -> list[CalendarDay]:
    """One status a day: Resy's word, or not-released past the booking horizon."""
    known = {d.date: d.inventory.reservation for d in calendar.scheduled}
    result = []
    for offset in range(days):
        day = today + timedelta(days=offset)
        if calendar.last_calendar_day is not None and day > calendar.last_calendar_day:
            status = "not-released"
        else:
            status = (known.get(day) or "closed").replace(" ", "-")  # "not available" too
        result.append(CalendarDay(day, status))
    return result
