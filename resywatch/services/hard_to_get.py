"""The curated hard-to-get list: what is on it, when each venue last dropped, and the seed's
"notify me for all of them" (one notify request per listed venue)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, func, text
from sqlmodel import col, select

from resywatch.data import load_hard_to_get, load_hard_to_get_source
from resywatch.db.engine import Database
from resywatch.db.models import DropEvent, NotifyRequest, RequestStatus
from resywatch.errors import InvalidInput, NotFound
from resywatch.services import venues as venue_service
from resywatch.services.curated import HotspotMatcher
from resywatch.services.notify_requests import (
    RequestView,
    check_title,
    request_view,
)
from resywatch.services.vocabulary import Want, local_today, validate_want

if TYPE_CHECKING:
    from resywatch.runtime import Runtime

DEFAULT_PREFIX = "Hard to get"
FILING_LOCK = 0x7277_4854_4721  # "rwHTG!": the advisory lock key of `notify_all`


@dataclass(frozen=True)
class LastDrop:
    venue_id: int
    venue_name: str  # as Resy names it
    opened_at: datetime
    slot_date: date
    starts_at: datetime  # venue-local
    open: bool


@dataclass(frozen=True)
class HardToGetVenue:
    name: str
    neighborhood: str
    cuisine: str
    list: str  # toughest | hit-list
    note: str
    last_drop: LastDrop | None  # the newest drop discovery saw at this venue
    drops: int  # drops seen there (as long as retention keeps them)


@dataclass(frozen=True)
class HardToGetList:
    source: str
    as_of: str
    venues: list[HardToGetVenue]


def hard_to_get(db: Database) -> HardToGetList:
    """The curated list, in file order, each venue with its last drop seen."""
    matcher = HotspotMatcher.hard_to_get()
    newest = select(
        DropEvent.venue_id,
        DropEvent.venue_name,
        func.max(DropEvent.opened_at),
        func.count(),
    ).group_by(col(DropEvent.venue_id), col(DropEvent.venue_name))
    latest: dict[str, tuple[datetime, int, str]] = {}  # curated name -> newest, venue, name
    counts: dict[str, int] = {}
    with db.read() as session:
        for venue_id, venue_name, opened_at, count in session.execute(newest):
            curated = matcher.match(venue_name)
            if curated is None:
                continue
            counts[curated] = counts.get(curated, 0) + count
            if curated not in latest or opened_at > latest[curated][0]:
                latest[curated] = (opened_at, venue_id, venue_name)
        drops = {
            name: session.exec(
                select(DropEvent)
                .where(DropEvent.venue_id == venue_id, DropEvent.opened_at == opened_at)
                .order_by(col(DropEvent.id).desc())
            ).first()
            for name, (opened_at, venue_id, _) in latest.items()
        }
    source = load_hard_to_get_source()
    return HardToGetList(
        source=source.source,
        as_of=source.as_of,
        venues=[
            HardToGetVenue(
                name=v.name,
                neighborhood=v.neighborhood,
                cuisine=v.cuisine,
                list=v.list_name,
                note=v.note,
                last_drop=_last(drops.get(v.name)),
                drops=counts.get(v.name, 0),
            )
            for v in load_hard_to_get()
        ],
    )


def _last(event: DropEvent | None) -> LastDrop | None:
    if event is None:
        return None
    return LastDrop(
        venue_id=event.venue_id,
        venue_name=event.venue_name,
        opened_at=event.opened_at,
        slot_date=event.slot_date,
        starts_at=event.starts_at,
        open=event.closed_at is None,
    )


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass
class BulkRequests:
    """What `notify add --hard-to-get` did: requests filed now, the same ones already
    pending (not filed twice), and the listed venues it could not place on Resy."""

    created: list[RequestView] = field(default_factory=list)
    already_pending: list[RequestView] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


async def notify_all(rt: Runtime, want: Want, *, prefix: str | None = None) -> BulkRequests:
    """One notify request per hard-to-get venue for `want` (the seed's "notify me for all
    of them"). Idempotent: a venue with the same pending request (dates, party, window) is
    not asked for again. Bad input writes nothing; venues are looked up (and remembered)
    before the requests are written, together, in one transaction."""
    now = rt.clock.now()
    today = local_today(now, rt.settings.timezone)
    validate_want(want, today)
    label = check_title(prefix) if prefix is not None else DEFAULT_PREFIX
    result = BulkRequests()
    found: list[tuple[str, int, str]] = []  # curated name, venue id, Resy name
    for listed in load_hard_to_get():
        try:
            venue = await venue_service.resolve_venue(rt, listed.name)
        except (NotFound, InvalidInput) as exc:  # not on Resy, or several candidates
            result.skipped.append(Skipped(listed.name, str(exc)))
            continue
        assert venue.id is not None
        found.append((listed.name, venue.id, venue.name))
    date_from = max(want.date_from, today)
    with rt.db.write() as session:
        if rt.db.backend == "postgresql":
            # Two filings at once would each find no pending request and both file: one at
            # a time. A transaction-scoped lock (fine behind PgBouncer); SQLite's write
            # transactions are serial already (BEGIN IMMEDIATE).
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FILING_LOCK})
        for curated, venue_id, venue_name in found:
            same = session.exec(
                select(NotifyRequest).where(
                    NotifyRequest.venue_id == venue_id,
                    NotifyRequest.status == RequestStatus.PENDING,
                    NotifyRequest.date_from == date_from,
                    NotifyRequest.date_to == want.date_to,
                    NotifyRequest.party_size == want.party_size,
                    _same(col(NotifyRequest.time_from), want.time_from),
                    _same(col(NotifyRequest.time_to), want.time_to),
                )
            ).first()
            if same is not None:
                result.already_pending.append(request_view(same))
                continue
            if any(r.venue_id == venue_id for r in result.created):
                continue  # two listed names, one Resy venue
            request = NotifyRequest(
                venue_id=venue_id,
                venue_name=venue_name,
                title=f"{label}: {curated}"[:255],
                date_from=date_from,
                date_to=want.date_to,
                party_size=want.party_size,
                time_from=want.time_from,
                time_to=want.time_to,
                created_at=now,
            )
            session.add(request)
            session.flush()
            result.created.append(request_view(request))
    return result


def _same(column: Any, value: time | None) -> ColumnElement[bool]:
    """`column = value`, where no window (NULL) equals no window."""
    return cast(ColumnElement[bool], column.is_(None) if value is None else column == value)
