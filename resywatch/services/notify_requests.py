"""Notify requests: "tell me when venue V has a slot on date D (or a range) for party P
between T1 and T2". One-off: a request ends once satisfied, or when its dates pass."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

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
    validate_want,
    window_text,
)
from resywatch.services.watches import WatchView, list_watches

if TYPE_CHECKING:
    from resywatch.runtime import Runtime
    from resywatch.services.booking.outcomes import BookingResult


@dataclass(frozen=True)
class RequestView:
    id: int
    venue_id: int
    venue_name: str
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
    account: str = DEFAULT_ACCOUNT  # the Resy account it books for


@dataclass(frozen=True)
class RequestCheck:
    id: int
    status: str
    found: str | None = None  # what opened, when satisfied
    error: str | None = None
    booking: BookingResult | None = None  # with --auto-book: the try a hit triggered


async def add_request(
    rt: Runtime, venue: str, want: Want, *, auto_book: bool = False
) -> RequestView:
    now = rt.clock.now()
    today = local_today(now, rt.settings.timezone)
    validate_want(want, today)
    try:
        found = await venue_service.resolve_venue(rt, venue)
    except NotFound as exc:
        raise InvalidInput(str(exc)) from None
    request = NotifyRequest(
        venue_id=found.id,
        venue_name=found.name,
        date_from=max(want.date_from, today),
        date_to=want.date_to,
        party_size=want.party_size,
        time_from=want.time_from,
        time_to=want.time_to,
        auto_book=auto_book,
        account=stored_name(rt.account),
        created_at=now,
    )
    with rt.db.write() as session:
        session.add(request)
        session.flush()
        return _view(request)


def list_requests(db: Database, *, open_only: bool = False) -> list[RequestView]:
    with db.read() as session:
        query = select(NotifyRequest).order_by(col(NotifyRequest.id).desc())
        if open_only:
            query = query.where(NotifyRequest.status == RequestStatus.PENDING)
        return [_view(r) for r in session.exec(query)]


def remove_request(db: Database, request_id: int) -> RequestView:
    """Delete the request and its hit message if not yet delivered."""
    with db.write() as session:
        request = _load(session, request_id)
        view = _view(request)
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


def my_watches(db: Database, *, notifications: int = 20, active_only: bool = False) -> MyWatches:
    """With `active_only`, only what is still checked: pending requests, watches not ended."""
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


def _view(request: NotifyRequest) -> RequestView:
    assert request.id is not None
    return RequestView(
        id=request.id,
        venue_id=request.venue_id,
        venue_name=request.venue_name,
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
        account=request.account or DEFAULT_ACCOUNT,
    )
