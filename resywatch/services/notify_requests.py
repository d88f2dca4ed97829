"""Notify requests: "tell me when venue V has a slot on date D (or a range) for party P
between T1 and T2". One-off: a request ends once satisfied, or when its dates pass."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, update
from sqlmodel import Session, col, select

from resywatch.accounts import DEFAULT_ACCOUNT, stored_name
from resywatch.db.engine import Database
from resywatch.db.models import Notification, NotifyRequest, RequestStatus, Venue, WatchStatus
from resywatch.errors import InvalidInput, NotFound, ResywatchError
from resywatch.ids import may_name_a_row
from resywatch.redact import redact_text
from resywatch.services import outbox
from resywatch.services import venues as venue_service
from resywatch.services.availability import open_slots
from resywatch.services.retire import retire_pending
from resywatch.services.vocabulary import (
    Want,
    describe_slots,
    local_today,
    stored_times,
    times_text,
    validate_want,
    window_text,
)
from resywatch.services.watches import WatchView, list_watches

if TYPE_CHECKING:
    from resywatch.runtime import Runtime
    from resywatch.services.booking.outcomes import BookingResult


MAX_TITLE = 255


@dataclass(frozen=True)
class RequestView:
    id: int
    venue_id: int
    venue_name: str
    title: str | None
    date_from: date
    date_to: date
    party_size: int
    window: str | None
    status: str  # pending | satisfied | expired
    found: dict[str, object] | None
    last_checked_at: datetime | None
    satisfied_at: datetime | None
    created_at: datetime
    auto_book: bool = False
    read_at: datetime | None = None
    unread: bool = False  # satisfied, and what it found not marked read yet
    preferred_times: list[str] = field(default_factory=list)  # ranked, for --auto-book
    account: str = DEFAULT_ACCOUNT  # the Resy account it books for


@dataclass(frozen=True)
class RequestCheck:
    id: int
    status: str
    found: str | None = None  # what opened, when satisfied
    error: str | None = None
    booking: BookingResult | None = None  # with --auto-book: the try a hit triggered


def check_title(title: str) -> str:
    """A title as typed, trimmed; InvalidInput (exit 2) when empty, too long or multi-line."""
    text = title.strip()
    if not text:
        raise InvalidInput("a title needs some text")
    if len(text) > MAX_TITLE:
        raise InvalidInput(f"a title is at most {MAX_TITLE} characters ({len(text)} given)")
    if not text.isprintable():
        raise InvalidInput(f"title {text!r} has a line break or control character")
    return text


def default_title(want: Want) -> str:
    """The seed's default title: party - date(s) - window (or "any")."""
    days = (
        str(want.date_from)
        if want.date_from == want.date_to
        else (f"{want.date_from}..{want.date_to}")
    )
    return f"{want.party_size} - {days} - {window_text(want.time_from, want.time_to) or 'any'}"


async def add_request(
    rt: Runtime, venue: str, want: Want, *, auto_book: bool = False, title: str | None = None
) -> RequestView:
    now = rt.clock.now()
    today = local_today(now, rt.settings.timezone)
    validate_want(want, today)
    label = check_title(title) if title is not None else None
    try:
        found = await venue_service.resolve_venue(rt, venue)
    except NotFound as exc:
        raise InvalidInput(str(exc)) from None
    request = NotifyRequest(
        venue_id=found.id,
        venue_name=found.name,
        title=label or default_title(want),
        date_from=max(want.date_from, today),
        date_to=want.date_to,
        party_size=want.party_size,
        time_from=want.time_from,
        time_to=want.time_to,
        preferred_times=times_text(want.times),
        auto_book=auto_book,
        account=stored_name(rt.account),
        created_at=now,
    )
    with rt.db.write() as session:
        session.add(request)
        session.flush()
        return request_view(request)


def list_requests(
    db: Database, *, open_only: bool = False, unread_only: bool = False
) -> list[RequestView]:
    with db.read() as session:
        query = select(NotifyRequest).order_by(col(NotifyRequest.id).desc())
        if open_only:
            query = query.where(NotifyRequest.status == RequestStatus.PENDING)
        if unread_only:
            query = query.where(_unread())
        return [request_view(r) for r in session.exec(query)]


def rename_request(db: Database, request_id: int, title: str) -> RequestView:
    """Give the request a new title (the seed's PATCH of a notify request)."""
    label = check_title(title)
    with db.write() as session:
        request = _load(session, request_id)
        request.title = label
        return request_view(request)


def mark_read(db: Database, now: datetime, *, request_id: int | None = None) -> list[int]:
    """Mark a satisfied request's result read (or, with no id, every unread one); returns
    the ids marked now. A request read before keeps its first read time."""
    with db.write() as session:
        if request_id is not None:
            request = _load(session, request_id)
            if request.status != RequestStatus.SATISFIED:
                raise InvalidInput(
                    f"notify request {request_id} has found nothing yet ({request.status}): "
                    "there is no result to mark read"
                )
            if request.read_at is not None:
                return []
            request.read_at = now
            return [request_id]
        ids = list(session.exec(select(NotifyRequest.id).where(_unread())))
        if ids:
            session.execute(
                update(NotifyRequest).where(col(NotifyRequest.id).in_(ids)).values(read_at=now)
            )
        return sorted(i for i in ids if i is not None)


def _unread() -> ColumnElement[bool]:
    return and_(
        col(NotifyRequest.status) == RequestStatus.SATISFIED, col(NotifyRequest.read_at).is_(None)
    )


def remove_request(db: Database, request_id: int) -> RequestView:
    """Delete the request and its hit message if not yet delivered."""
    with db.write() as session:
        request = _load(session, request_id)
        view = request_view(request)
        retire_pending(session, keys=[outbox.notify_key(request_id)])
        session.delete(request)
    return view


async def check_requests(rt: Runtime, *, ids: Sequence[int] = ()) -> list[RequestCheck]:
    """Check the pending requests (or the named ones) now."""
    now = rt.clock.now()  # one instant for the whole round
    with rt.db.read() as session:
        query = select(NotifyRequest).order_by(col(NotifyRequest.id))
        query = (
            query.where(col(NotifyRequest.id).in_([i for i in ids if may_name_a_row(i)]))
            if ids
            else query.where(NotifyRequest.status == RequestStatus.PENDING)
        )
        requests = list(session.exec(query))
    missing = set(ids) - {r.id for r in requests}
    if missing:
        raise NotFound(f"no notify request {', '.join(map(str, sorted(missing)))}")
    today = local_today(now, rt.settings.timezone)
    results = await asyncio.gather(
        *(_check_one(rt, r, today, now) for r in requests if r.status == RequestStatus.PENDING)
    )
    return list(results)


async def _check_one(
    rt: Runtime, request: NotifyRequest, today: date, now: datetime
) -> RequestCheck:
    assert request.id is not None
    want = Want(
        date_from=max(request.date_from, today),
        date_to=request.date_to,
        party_size=request.party_size,
        time_from=request.time_from,
        time_to=request.time_to,
        times=stored_times(request.preferred_times),
    )
    slots, error = [], None
    if request.date_to >= today:
        try:
            slots = await open_slots(rt.resy, request.venue_id, want, today)
        except ResywatchError as exc:
            error = redact_text(str(exc), rt.secrets())
    booking = None
    if request.auto_book and slots:
        # Before the request's transaction (no Resy call runs inside one). It stays pending
        # unless the try settled it: a slot gone or a hiccup is tried again next check.
        from resywatch.services.booking.book import auto_book
        from resywatch.services.booking.outcomes import SETTLED

        try:
            acting = rt.for_account(request.account)  # books as the account it was added for
        except ResywatchError as exc:  # logged out since: said, and tried next check
            acting, error = None, str(exc)
        if acting is not None:
            booking = await auto_book(
                acting, source="notify", source_id=request.id, want=want, slots=slots
            )
        if booking is None or booking.outcome not in SETTLED:
            slots = []
    with rt.db.write() as session:
        row = _load(session, request.id)
        if row.status != RequestStatus.PENDING:  # another check got there first
            return RequestCheck(row.id or 0, row.status)
        row.last_checked_at = now
        if request.date_to < today:
            row.status = RequestStatus.EXPIRED
        elif slots:
            row.status, row.satisfied_at = RequestStatus.SATISFIED, now
            row.result = dict(outbox.request_found(slots))
            session.add(outbox.notify_hit(row, slots, session.get(Venue, row.venue_id)))
        found = describe_slots(slots) if slots else None
        return RequestCheck(row.id or 0, row.status, found, error, booking)


@dataclass(frozen=True)
class MyWatches:
    """The seed's "my watches": interval watches, notify requests (satisfied ones with what
    was found and when), latest notifications."""

    interval_watches: list[WatchView]
    notify_requests: list[RequestView]
    notifications: list[dict[str, object]]


def my_watches(
    db: Database, *, notifications: int = 20, active_only: bool = False, unread_only: bool = False
) -> MyWatches:
    """With `active_only`, only what is still checked: pending requests, watches not ended.
    With `unread_only`, only the requests whose found result is not read yet."""
    if unread_only:
        if active_only:  # pending requests have found nothing to read
            raise InvalidInput("--unread lists satisfied requests, --active pending ones: use one")
        return MyWatches([], list_requests(db, unread_only=True), [])
    with db.read() as session:
        latest = session.exec(
            select(Notification)
            .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
            .limit(notifications)
        )
        recent: list[dict[str, object]] = [
            {
                "id": n.id,
                "kind": n.kind,
                "title": n.title,
                "body": n.body,
                "status": n.status,
                "created_at": n.created_at,
                "sent_at": n.sent_at,
            }
            for n in latest
        ]
    watches = list_watches(db)
    if active_only:
        watches = [w for w in watches if w.status != WatchStatus.ENDED]
    return MyWatches(watches, list_requests(db, open_only=active_only), recent)


def _load(session: Session, request_id: int) -> NotifyRequest:
    request = session.get(NotifyRequest, request_id) if may_name_a_row(request_id) else None
    if request is None:
        raise NotFound(f"no notify request {request_id}")
    return request


def request_view(request: NotifyRequest) -> RequestView:
    assert request.id is not None
    return RequestView(
        id=request.id,
        venue_id=request.venue_id,
        venue_name=request.venue_name,
        title=request.title,
        date_from=request.date_from,
        date_to=request.date_to,
        party_size=request.party_size,
        window=window_text(request.time_from, request.time_to),
        status=request.status,
        found=request.result,
        last_checked_at=request.last_checked_at,
        satisfied_at=request.satisfied_at,
        created_at=request.created_at,
        auto_book=request.auto_book,
        read_at=request.read_at,
        unread=request.status == RequestStatus.SATISFIED and request.read_at is None,
        preferred_times=list(request.preferred_times or []),
        account=request.account or DEFAULT_ACCOUNT,
    )
