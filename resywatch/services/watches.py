"""Watches: standing questions checked every N minutes.

- `venues`: these venues, these dates, this party and window: tell me when any has a slot.
  A hit is a matching slot this watch has not notified yet.
- `new-venues`: this search: tell me when a venue appears that was not there last time. The
  first check is the baseline. (Unlike the seed, an empty previous result is a real
  previous state: going from nothing to something is news.)

Each hit is a notification written in the same transaction as the check's bookkeeping, with
a dedupe key, so a crash can neither lose nor double it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from resywatch.accounts import DEFAULT_ACCOUNT, stored_name
from resywatch.db.engine import Database
from resywatch.db.models import (
    Notification,
    Venue,
    VenueSearchSnapshot,
    Watch,
    WatchKind,
    WatchStatus,
)
from resywatch.errors import InvalidInput, NotFound, ResywatchError
from resywatch.ids import may_name_a_row
from resywatch.redact import redact_text
from resywatch.services import outbox
from resywatch.services import venues as venue_service
from resywatch.services.availability import open_slots
from resywatch.services.curated import normalize_name
from resywatch.services.outbox import FoundHit as FoundHit  # re-exported: `watch show`'s hits
from resywatch.services.retire import retire_pending
from resywatch.services.vocabulary import (
    OpenSlot,
    Want,
    local_today,
    stored_times,
    times_text,
    validate_want,
    window_text,
)

if TYPE_CHECKING:
    from resywatch.runtime import Runtime
    from resywatch.services.booking.outcomes import BookingResult

MIN_INTERVAL = timedelta(minutes=1)
MAX_INTERVAL = timedelta(days=1)


@dataclass(frozen=True)
class WatchSpec:
    kind: WatchKind
    want: Want
    interval: timedelta = timedelta(minutes=5)
    venues: tuple[str, ...] = ()  # names or ids, for `venues`
    query: str | None = None  # for `new-venues`
    cuisine: str | None = None
    neighborhood: str | None = None
    auto_book: bool = False  # book the best hit (`venues` watches; see services/booking/book.py)


@dataclass(frozen=True)
class WatchView:
    """A watch as people and scripts see it."""

    id: int
    kind: str
    status: str
    venues: list[dict[str, object]]
    query: str | None
    cuisine: str | None
    neighborhood: str | None
    date_from: date
    date_to: date
    party_size: int
    window: str | None
    seating_types: list[str]
    interval_s: int
    last_checked_at: datetime | None
    next_check_at: datetime | None
    last_error: str | None
    created_at: datetime
    auto_book: bool = False
    last_hit_at: datetime | None = None  # when its newest hit was found
    preferred_times: list[str] = field(default_factory=list)  # ranked, for --auto-book
    account: str = DEFAULT_ACCOUNT  # the Resy account it books for


@dataclass(frozen=True)
class WatchDetail(WatchView):
    """`watch show`: the watch, and what it found last."""

    last_hits: list[FoundHit] = field(default_factory=list)


#: How many of a watch's newest hits `watch show` lists.
LAST_HITS = 10


@dataclass
class Hit:
    watch_id: int
    kind: str
    venue_id: int | None
    venue_name: str
    day: date
    times: list[str] = field(default_factory=list)
    seating_types: list[str] = field(default_factory=list)
    url: str | None = None


@dataclass
class CheckResult:
    watch_id: int
    status: str
    hits: list[Hit] = field(default_factory=list)
    baseline: bool = False
    error: str | None = None
    booking: BookingResult | None = None  # with --auto-book: the try a hit triggered


async def add_watch(rt: Runtime, spec: WatchSpec) -> WatchView:
    """Validate, resolve venue names to ids (ambiguous or unknown: exit 2), then save."""
    now = rt.clock.now()
    today = local_today(now, rt.settings.timezone)
    validate_want(spec.want, today)
    if not MIN_INTERVAL <= spec.interval <= MAX_INTERVAL:
        raise InvalidInput("--every must be between 1m and 24h")
    venue_ids: list[int] = []
    if spec.kind != WatchKind.VENUES and spec.auto_book:
        raise InvalidInput("--auto-book needs venues: a new-venues watch cannot book")
    if spec.kind == WatchKind.VENUES:
        if not spec.venues:
            raise InvalidInput("a venues watch needs at least one --venue")
        for text in spec.venues:
            venue_ids.append(await _resolve(rt, text))
    watch = Watch(
        kind=spec.kind,
        venue_ids=list(dict.fromkeys(venue_ids)),
        query=spec.query,
        cuisine=spec.cuisine,
        neighborhood=spec.neighborhood,
        date_from=max(spec.want.date_from, today),
        date_to=spec.want.date_to,
        party_size=spec.want.party_size,
        time_from=spec.want.time_from,
        time_to=spec.want.time_to,
        seating_types=list(spec.want.seating_types),
        preferred_times=times_text(spec.want.times),
        interval_s=int(spec.interval.total_seconds()),
        auto_book=spec.auto_book,
        account=stored_name(rt.account),
        next_check_at=now,
        created_at=now,
        updated_at=now,
    )
    with rt.db.write() as session:
        session.add(watch)
        session.flush()
        return _view(session, watch)


async def _resolve(rt: Runtime, text: str) -> int:
    try:
        venue = await venue_service.resolve_venue(rt, text)
    except NotFound as exc:  # for a watch, an unknown venue is bad input
        raise InvalidInput(str(exc)) from None
    return venue.id


def list_watches(db: Database) -> list[WatchView]:
    with db.read() as session:
        rows = session.exec(select(Watch).order_by(col(Watch.id).desc())).all()
        last_hit = dict(
            session.exec(
                select(Watch.id, func.max(Notification.created_at))
                .join(Notification, outbox.hits_of(Watch))
                .group_by(col(Watch.id))
            ).all()
        )
        return [replace(_view(session, w), last_hit_at=last_hit.get(w.id)) for w in rows]


def get_watch(db: Database, watch_id: int) -> WatchDetail:
    """The watch, with its newest hits (from the notifications its checks wrote)."""
    with db.read() as session:
        watch = _load(session, watch_id)
        found = session.exec(
            select(Notification)
            .where(outbox.hits_of(watch))
            .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
            .limit(LAST_HITS)
        ).all()
        hits = [outbox.found_hit(n) for n in found]
        view = _view(session, watch)
    return WatchDetail(
        **{f.name: getattr(view, f.name) for f in fields(WatchView)}
        | {"last_hit_at": hits[0].found_at if hits else None, "last_hits": hits}
    )


def remove_watch(db: Database, watch_id: int) -> WatchView:
    """Delete the watch, its messages not yet delivered and its search snapshots."""
    with db.write() as session:
        watch = _load(session, watch_id)
        view = _view(session, watch)
        retire_pending(session, prefixes=outbox.watch_key_prefixes(watch_id))
        if watch.kind == WatchKind.NEW_VENUES:
            days = (watch.date_to - watch.date_from).days + 1
            keys = [_criteria_key(watch, watch.date_from + timedelta(d)) for d in range(days)]
            session.execute(
                delete(VenueSearchSnapshot).where(col(VenueSearchSnapshot.criteria_key).in_(keys))
            )
        session.delete(watch)
    return view


def set_paused(db: Database, watch_id: int, *, paused: bool, now: datetime) -> WatchView:
    with db.write() as session:
        watch = _load(session, watch_id)
        if watch.status == WatchStatus.ENDED:
            raise InvalidInput(f"watch {watch_id} has ended: its dates are past")
        watch.status = WatchStatus.PAUSED if paused else WatchStatus.ACTIVE
        watch.next_check_at = None if paused else now
        watch.updated_at = now
        return _view(session, watch)


async def check_watches(
    rt: Runtime, *, ids: Sequence[int] = (), due_only: bool = False
) -> list[CheckResult]:
    """Check the named watches (or every active one; or only the due ones) now."""
    now = rt.clock.now()  # one instant for the whole round: who is due, and when next
    with rt.db.read() as session:
        query = select(Watch).order_by(col(Watch.id))
        if ids:
            query = query.where(col(Watch.id).in_([i for i in ids if may_name_a_row(i)]))
        else:
            query = query.where(Watch.status == WatchStatus.ACTIVE)
        watches = list(session.exec(query))
    missing = set(ids) - {w.id for w in watches}
    if missing:
        raise NotFound(f"no watch {', '.join(map(str, sorted(missing)))}")
    if due_only:
        watches = [w for w in watches if w.next_check_at is None or w.next_check_at <= now]
    return [await _check_one(rt, w, now) for w in watches]


async def _check_one(rt: Runtime, watch: Watch, now: datetime) -> CheckResult:
    assert watch.id is not None
    db, resy, settings = rt.db, rt.resy, rt.settings
    today = local_today(now, settings.timezone)
    if watch.date_to < today:
        with db.write() as session:
            row = _load(session, watch.id)
            row.status, row.next_check_at, row.updated_at = WatchStatus.ENDED, None, now
        return CheckResult(watch.id, WatchStatus.ENDED)
    want = Want(
        date_from=max(watch.date_from, today),
        date_to=watch.date_to,
        party_size=watch.party_size,
        time_from=watch.time_from,
        time_to=watch.time_to,
        seating_types=tuple(watch.seating_types),
        times=stored_times(watch.preferred_times),
    )
    result = CheckResult(watch.id, watch.status)
    try:
        if watch.kind == WatchKind.VENUES:
            found = await asyncio.gather(
                *(open_slots(resy, v, want, today) for v in watch.venue_ids)
            )
            slots = [slot for per_venue in found for slot in per_venue]
            names: dict[date, list[str]] = {}
        else:
            slots = []
            names = await _names_by_day(rt, watch, want, today)
    except ResywatchError as exc:
        result.error = redact_text(str(exc), rt.secrets())
    try:
        with db.write() as session:
            row = _load(session, watch.id)
            row.date_from = want.date_from  # past dates are pruned
            row.last_checked_at = now
            row.next_check_at = now + timedelta(seconds=row.interval_s)
            row.last_error = result.error
            row.updated_at = now
            if result.error is None:
                if watch.kind == WatchKind.VENUES:
                    result.hits = _record_slot_hits(session, row, slots)
                else:
                    result.baseline, result.hits = _record_new_venues(session, row, names, now)
    except IntegrityError:
        # Another check of this watch recorded the same hits first (their dedupe keys are
        # unique): they are announced once, by that check.
        result.hits, result.baseline = [], False
    if watch.auto_book and result.hits and result.error is None:
        # After the check's own transaction: no Resy call ever runs inside one.
        from resywatch.services.booking.book import auto_book

        try:
            acting = rt.for_account(watch.account)  # books as the account it was added for
        except ResywatchError as exc:  # logged out since: said, and tried next check
            result.error = str(exc)
            return result
        result.booking = await auto_book(
            acting, source="watch", source_id=watch.id, want=want, slots=slots,
            on_booked=_end_watch(watch.id, now),
        )  # fmt: skip
    return result


def _end_watch(watch_id: int, now: datetime) -> Callable[[Session], None]:
    """A booked watch has done its job: it ends (it would book again on its next hit).
    Written in the transaction that records the booking."""

    def end(session: Session) -> None:
        watch = session.get(Watch, watch_id)
        if watch is not None:
            watch.status, watch.next_check_at, watch.updated_at = WatchStatus.ENDED, None, now

    return end


def _record_slot_hits(session: Session, watch: Watch, slots: list[OpenSlot]) -> list[Hit]:
    """Notify the matching slots this watch has not notified yet: one message per venue
    and day, listing only the new slots (each message records the slots it covered)."""
    assert watch.id is not None
    notified = outbox.notified_slot_keys(session, watch.id)
    fresh = [s for s in slots if outbox.slot_key(s) not in notified]
    hits: list[Hit] = []
    for (venue_id, day), group in _group(fresh).items():
        message = outbox.watch_hit(watch, group, session.get(Venue, venue_id))
        session.add(message)
        hits.append(
            Hit(
                watch_id=watch.id,
                kind="slots",
                venue_id=venue_id,
                venue_name=group[0].venue_name,
                day=day,
                times=outbox.slot_times(group),
                seating_types=outbox.slot_seating(group),
                url=message.url,
            )
        )
    return hits


def _group(slots: list[OpenSlot]) -> dict[tuple[int, date], list[OpenSlot]]:
    grouped: dict[tuple[int, date], list[OpenSlot]] = {}
    for slot in slots:
        grouped.setdefault((slot.venue_id, slot.day), []).append(slot)
    return grouped


async def _names_by_day(
    rt: Runtime, watch: Watch, want: Want, today: date
) -> dict[date, list[str]]:
    """Per day, the names of the venues the watch's search returns with open tables."""
    window = (watch.time_from, watch.time_to) if watch.time_from and watch.time_to else None
    names: dict[date, list[str]] = {}
    for day in [d for d in want.days() if d >= today]:
        found, _ = await venue_service.open_venues(
            rt,
            venue_service.SearchQuery(
                day=day,
                party_size=watch.party_size,
                query=watch.query or "",
                window=window,
                neighborhood=watch.neighborhood,
                cuisine=watch.cuisine,
                limit=1000,
            ),
        )
        names[day] = sorted({v.name for v in found})
    return names


def _record_new_venues(
    session: Session, watch: Watch, names: dict[date, list[str]], now: datetime
) -> tuple[bool, list[Hit]]:
    assert watch.id is not None
    baseline, hits = False, []
    for day, current in names.items():
        key = _criteria_key(watch, day)
        snapshot = session.exec(
            select(VenueSearchSnapshot).where(VenueSearchSnapshot.criteria_key == key)
        ).first()
        if snapshot is None:
            session.add(VenueSearchSnapshot(criteria_key=key, venue_names=current, updated_at=now))
            baseline = True
            continue
        before = {normalize_name(n) for n in snapshot.venue_names}
        for name in current:
            if normalize_name(name) in before:
                continue
            dedupe = outbox.new_venue_key(watch.id, day, name)
            if session.exec(
                select(Notification.id).where(Notification.dedupe_key == dedupe)
            ).first():
                continue
            hits.append(Hit(watch.id, "new-venue", None, name, day))
            session.add(outbox.new_venue(watch, day, name))
        if current != snapshot.venue_names:
            snapshot.venue_names, snapshot.updated_at = current, now
    return baseline, hits


def _criteria_key(watch: Watch, day: date) -> str:
    criteria = [
        watch.id, day.isoformat(), watch.party_size, watch.query, watch.cuisine,
        watch.neighborhood, _hhmm(watch.time_from), _hhmm(watch.time_to),
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(criteria).encode()).hexdigest()[:32]


def _hhmm(moment: time | None) -> str | None:
    return f"{moment:%H:%M}" if moment else None


def _load(session: Session, watch_id: int) -> Watch:
    watch = session.get(Watch, watch_id) if may_name_a_row(watch_id) else None
    if watch is None:
        raise NotFound(f"no watch {watch_id}")
    return watch


def _view(session: Session, watch: Watch) -> WatchView:
    assert watch.id is not None
    venues: list[dict[str, object]] = []
    for venue_id in watch.venue_ids:
        venue = session.get(Venue, venue_id)
        venues.append({"id": venue_id, "name": venue.name if venue else None})
    return WatchView(
        id=watch.id,
        kind=watch.kind,
        status=watch.status,
        venues=venues,
        query=watch.query,
        cuisine=watch.cuisine,
        neighborhood=watch.neighborhood,
        date_from=watch.date_from,
        date_to=watch.date_to,
        party_size=watch.party_size,
        window=window_text(watch.time_from, watch.time_to),
        seating_types=watch.seating_types,
        interval_s=watch.interval_s,
        last_checked_at=watch.last_checked_at,
        next_check_at=watch.next_check_at,
        last_error=watch.last_error,
        created_at=watch.created_at,
        auto_book=watch.auto_book,
        preferred_times=list(watch.preferred_times or []),
        account=watch.account or DEFAULT_ACCOUNT,
    )
