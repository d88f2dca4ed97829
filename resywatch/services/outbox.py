"""The outbox's messages: every notification is built here, and only here.

One builder per kind of event, each with its typed payload and its dedupe key. The dedupe
key names the row a message is about (`drop:<event id>`, `watch:<watch id>:...`,
`notify:<request id>`, `booking:<attempt id>`...), which is what makes writing a message
twice a no-op and lets `retire.retire_pending` find the undelivered messages of a deleted
row. The readers of keys and payloads (a watch's hit history, `watch show`, retention) are
here too, so the shapes are written down once.

What a channel receives is the row as `channels.Message.document()`: README's "Webhook and
NDJSON messages" documents it as a contract; the payloads below are its `payload` field.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict

from sqlalchemy import ColumnElement, and_
from sqlmodel import Session, col, select

from resywatch.db.models import Notification, NotificationKind, Outcome, Venue
from resywatch.resy.pages import venue_page_url
from resywatch.services.curated import normalize_name
from resywatch.services.vocabulary import OpenSlot, describe_slots

if TYPE_CHECKING:
    from resywatch.db.models import BookingAttempt, DropEvent, NotifyRequest, ScheduledSnipe, Watch
    from resywatch.services.booking.outcomes import BookingResult

_NOTIFICATION = Notification.__table__  # type: ignore[attr-defined]

#: Every drop's message key starts with this (`admin` retires them all at once).
DROP_PREFIX = "drop:"


# --- payloads ------------------------------------------------------------------------------


class DropPayload(TypedDict):
    drop_event_id: int | None
    venue_id: int
    venue_name: str
    starts_at: str  # venue-local ISO date-time
    party_sizes: list[int]
    seating_types: list[str]
    is_hotspot: bool


class WatchHitPayload(TypedDict):
    """A `venues` watch found slots: one message per venue and day, new slots only."""

    watch_id: int
    venue_id: int
    venue_name: str
    day: str  # ISO date
    times: list[str]  # HH:MM, venue-local
    seating_types: list[str]
    party_size: int
    slot_keys: list[str]  # the slots it covered: a watch never notifies one twice


class NewVenuePayload(TypedDict):
    """A `new-venues` watch found a venue its search did not return last time."""

    watch_id: int
    venue_name: str
    day: str


class RequestFound(TypedDict):
    """What satisfied a notify request (also stored as the request's `result`)."""

    days: list[str]
    times: list[str]  # "YYYY-MM-DD HH:MM"
    seating_types: list[str]


class NotifyHitPayload(RequestFound):
    notify_request_id: int | None
    venue_id: int


class BookingPayload(TypedDict):
    attempt_id: int | None
    source: str  # book-now | watch | notify | snipe
    source_id: int | None
    outcome: str  # an Outcome
    venue_id: int
    venue_name: str
    day: str
    time: str | None
    seating_type: str | None
    party_size: int
    reservation_id: int | None


class SnipeMissedPayload(TypedDict):
    snipe_id: int | None
    venue_id: int
    outcome: Literal["missed"]


class TokenLapsingPayload(TypedDict):
    """An account's token that could not be refreshed: a week before it lapses, then when
    it has lapsed (one message each per token)."""

    account: str
    event: Literal["expiring", "expired"]
    expires_at: str  # ISO-8601 UTC


# --- dedupe keys ---------------------------------------------------------------------------


def drop_key(event_id: int | None) -> str:
    return f"{DROP_PREFIX}{event_id}"


def watch_hit_prefix(watch_id: int) -> str:
    """The keys of a watch's slot hits start with this."""
    return f"watch:{watch_id}:"


def watch_key_prefixes(watch_id: int) -> tuple[str, ...]:
    """The keys of every message a watch writes start with one of these."""
    return (watch_hit_prefix(watch_id), f"new-venue:{watch_id}:")


def watch_hit_key(watch_id: int, venue_id: int, day: date, slot_keys: Sequence[str]) -> str:
    """One per venue, day and set of slots: the same new slots are never announced twice."""
    digest = hashlib.sha256("|".join(slot_keys).encode()).hexdigest()[:16]
    return f"{watch_hit_prefix(watch_id)}{venue_id}:{day.isoformat()}:{digest}"


def new_venue_key(watch_id: int, day: date, name: str) -> str:
    return f"{watch_key_prefixes(watch_id)[1]}{day.isoformat()}:{normalize_name(name)}"


def notify_key(request_id: int | None) -> str:
    """A request is satisfied once, so it has one message."""
    return f"notify:{request_id}"


def booking_key(attempt_id: int | None) -> str:
    return f"booking:{attempt_id}"


def snipe_missed_key(snipe_id: int | None) -> str:
    return f"snipe-missed:{snipe_id}"


def token_key(account: str, event: str, expires_at: datetime) -> str:
    """One per account, event and token (a new login's token has its own expiry)."""
    return f"token-{event}:{account}:{int(expires_at.timestamp())}"


def slot_key(slot: OpenSlot) -> str:
    """A slot as a watch notifies it: the slot and its seating type."""
    return f"{slot.slot_id}:{slot.seating_type or ''}"


# --- builders ------------------------------------------------------------------------------


def venue_url(venue: Venue | None, day: date, party_size: int) -> str | None:
    """The venue's Resy page for that day and party, when we know its slug."""
    if venue is None or not venue.url_slug:
        return None
    return venue_page_url(venue.location_slug, venue.url_slug, day, party_size)


def drop_opened(event: DropEvent, venue: Venue | None) -> Notification:
    """A drop: a slot nobody had seen opened (discovery)."""
    party = min(event.party_sizes) if event.party_sizes else 2
    seating = f" ({', '.join(event.seating_types)})" if event.seating_types else ""
    when = f"{event.starts_at:%a %b} {event.starts_at.day} at {event.starts_at:%-I:%M %p}"
    where = f" in {venue.neighborhood}" if venue is not None and venue.neighborhood else ""
    payload = DropPayload(
        drop_event_id=event.id,
        venue_id=event.venue_id,
        venue_name=event.venue_name,
        starts_at=event.starts_at.isoformat(),
        party_sizes=event.party_sizes,
        seating_types=event.seating_types,
        is_hotspot=event.is_hotspot,
    )
    return Notification(
        dedupe_key=drop_key(event.id),
        kind=NotificationKind.DROP,
        title=f"{event.venue_name}: a table just opened",
        body=f"{event.venue_name}{where}: {when}, party of "
        f"{'/'.join(map(str, event.party_sizes)) or party}{seating}.",
        url=venue_url(venue, event.slot_date, party),
        payload=dict(payload),
        created_at=event.opened_at,
        next_attempt_at=event.opened_at,
    )


def slot_times(slots: Sequence[OpenSlot]) -> list[str]:
    return sorted({f"{s.starts_at:%H:%M}" for s in slots})


def slot_seating(slots: Sequence[OpenSlot]) -> list[str]:
    return sorted({s.seating_type for s in slots if s.seating_type})


def watch_hit(watch: Watch, slots: Sequence[OpenSlot], venue: Venue | None) -> Notification:
    """A `venues` watch's new slots at one venue on one day (`slots` share both)."""
    assert watch.id is not None and slots
    first = slots[0]
    slot_keys = sorted(slot_key(s) for s in slots)
    payload = WatchHitPayload(
        watch_id=watch.id,
        venue_id=first.venue_id,
        venue_name=first.venue_name,
        day=first.day.isoformat(),
        times=slot_times(slots),
        seating_types=slot_seating(slots),
        party_size=watch.party_size,
        slot_keys=slot_keys,
    )
    return Notification(
        dedupe_key=watch_hit_key(watch.id, first.venue_id, first.day, slot_keys),
        kind=NotificationKind.WATCH_HIT,
        title=f"{first.venue_name} has a table",
        body=f"{first.venue_name}: {describe_slots(slots)}, party of {watch.party_size} "
        f"(watch {watch.id}).",
        url=venue_url(venue, first.day, watch.party_size),
        payload=dict(payload),
    )


def new_venue(watch: Watch, day: date, name: str) -> Notification:
    """A `new-venues` watch's venue that its search did not return last time."""
    assert watch.id is not None
    payload = NewVenuePayload(watch_id=watch.id, venue_name=name, day=day.isoformat())
    return Notification(
        dedupe_key=new_venue_key(watch.id, day, name),
        kind=NotificationKind.WATCH_HIT,
        title=f"New on Resy for {day:%b} {day.day}: {name}",
        body=f"{name} now has tables on {day:%a %b} {day.day} for "
        f"{watch.party_size} (watch {watch.id}).",
        payload=dict(payload),
    )


def request_found(slots: Sequence[OpenSlot]) -> RequestFound:
    return RequestFound(
        days=sorted({s.day.isoformat() for s in slots}),
        times=sorted({f"{s.day} {s.starts_at:%H:%M}" for s in slots}),
        seating_types=slot_seating(slots),
    )


def notify_hit(
    request: NotifyRequest, slots: Sequence[OpenSlot], venue: Venue | None
) -> Notification:
    """A notify request satisfied by these slots."""
    assert slots
    payload = NotifyHitPayload(
        notify_request_id=request.id, venue_id=request.venue_id, **request_found(slots)
    )
    return Notification(
        dedupe_key=notify_key(request.id),
        kind=NotificationKind.NOTIFY_HIT,
        title=f"{request.venue_name} has a table for you",
        body=f"{request.venue_name}: {describe_slots(slots)}, party of {request.party_size}.",
        url=venue_url(venue, slots[0].day, request.party_size),
        payload=dict(payload),
    )


def booking_outcome(attempt: BookingAttempt, result: BookingResult) -> Notification:
    """How a booking try nobody watched ended (auto-book, snipe)."""
    when = (
        f" {result.starts_at:%a %b} {result.day.day} {result.starts_at:%H:%M}"
        if result.starts_at
        else f" {result.day:%a %b} {result.day.day}"
    )
    if result.outcome is Outcome.BOOKED:
        title = f"Booked: {result.venue_name}{when} for {result.party_size}"
    elif result.outcome is Outcome.DRY_RUN:
        title = f"Dry run: {result.venue_name}{when} is bookable"
    else:
        title = f"Not booked: {result.venue_name}{when} ({result.outcome.value})"
    payload = BookingPayload(
        attempt_id=attempt.id,
        source=attempt.source,
        source_id=attempt.source_id,
        outcome=result.outcome.value,
        venue_id=result.venue_id,
        venue_name=result.venue_name,
        day=result.day.isoformat(),
        time=f"{result.starts_at:%H:%M}" if result.starts_at else None,
        seating_type=result.seating_type,
        party_size=result.party_size,
        reservation_id=result.reservation_id,
    )
    return Notification(
        dedupe_key=booking_key(attempt.id),
        kind=NotificationKind.BOOKING,
        title=title,
        body=result.message,
        payload=dict(payload),
    )


def snipe_missed(snipe: ScheduledSnipe, reason: str) -> Notification:
    """A snipe that ended without a try: no runner in time, or its runner died."""
    payload = SnipeMissedPayload(snipe_id=snipe.id, venue_id=snipe.venue_id, outcome="missed")
    return Notification(
        dedupe_key=snipe_missed_key(snipe.id),
        kind=NotificationKind.BOOKING,
        title=f"Missed: the snipe for {snipe.venue_name} on {snipe.slot_date}",
        body=reason,
        payload=dict(payload),
    )


def token_lapsing(account: str, expires_at: datetime, now: datetime, *, why: str) -> Notification:
    """An account's token lapses within a week, or has lapsed, and was not refreshed."""
    event: Literal["expiring", "expired"] = "expired" if expires_at <= now else "expiring"
    flag = "" if account == "default" else f" --account {account}"
    when = f"{expires_at:%Y-%m-%d %H:%M} UTC"
    title = (
        f"Resy login of account {account!r} has expired"
        if event == "expired"
        else f"Resy login of account {account!r} expires {when}"
    )
    payload = TokenLapsingPayload(account=account, event=event, expires_at=expires_at.isoformat())
    return Notification(
        dedupe_key=token_key(account, event, expires_at),
        kind=NotificationKind.ACCOUNT,
        title=title,
        body=f"{why}. Snipes, watches and reservations of this account need it: run "
        f"`resywatch auth login{flag}`.",
        payload=dict(payload),
    )


def test_message(now: datetime) -> Notification:
    """`notify test`: sent straight to the channels, never stored (a fresh key each time)."""
    return Notification(
        dedupe_key=f"test:{uuid.uuid4().hex}",
        kind=NotificationKind.TEST,
        title="resywatch: test notification",
        body="If you can read this, resywatch can notify you here.",
        url=None,
        payload={},
        created_at=now,
    )


# --- readers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoundHit:
    """A hit a watch found earlier, from the notification it wrote."""

    found_at: datetime
    kind: str  # slots | new-venue
    venue_id: int | None
    venue_name: str
    day: date | None  # None only for a notification written without one
    times: list[str]
    seating_types: list[str]


def hits_of(watch: Watch | type[Watch]) -> ColumnElement[bool]:
    """The watch's hit notifications: written for its id since it was created (an id that
    SQLite gives again after a delete must not inherit the hits of the watch it named)."""
    return and_(
        col(Notification.kind) == NotificationKind.WATCH_HIT,
        _NOTIFICATION.c.payload["watch_id"].as_integer() == watch.id,
        col(Notification.created_at) >= watch.created_at,
    )


def found_hit(notification: Notification) -> FoundHit:
    """A watch's hit, read back from its payload (slots or a new venue)."""
    payload = notification.payload
    times, seating = payload.get("times"), payload.get("seating_types")
    venue_id, day = payload.get("venue_id"), payload.get("day")
    return FoundHit(
        found_at=notification.created_at,
        kind="slots" if "slot_keys" in payload else "new-venue",
        venue_id=venue_id if isinstance(venue_id, int) else None,
        venue_name=str(payload.get("venue_name") or ""),
        day=date.fromisoformat(day) if isinstance(day, str) else None,
        times=[str(t) for t in times] if isinstance(times, list) else [],
        seating_types=[str(s) for s in seating] if isinstance(seating, list) else [],
    )


def notified_slot_keys(session: Session, watch_id: int) -> set[str]:
    """Every slot a watch has announced (the `slot_keys` of its slot hits)."""
    notified: set[str] = set()
    for payload in session.exec(
        select(Notification.payload).where(
            col(Notification.dedupe_key).startswith(watch_hit_prefix(watch_id))
        )
    ):
        keys = payload.get("slot_keys", [])
        notified.update(str(key) for key in keys if isinstance(keys, list))
    return notified


class KindAndPayload(Protocol):
    """What `still_dedupes` reads of a message: a `Notification`, or a row of its columns."""

    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> Mapping[str, object]: ...


def still_dedupes(row: KindAndPayload, today: date) -> bool:
    """Whether a delivered message must be kept because its key still stops a repeat: a
    watch's hit for a day not yet past. (A notify request's hit need not stay: the request
    is satisfied with it and never checked again.)"""
    if row.kind == NotificationKind.ACCOUNT:
        return True  # two a token at most: kept, or the notice would come again
    if row.kind != NotificationKind.WATCH_HIT:
        return False
    day = row.payload.get("day")
    return isinstance(day, str) and day >= today.isoformat()
