"""What to book: the one request type (`book now`, and the booking half of every snipe),
the plan a try follows (venue resolved, the slots to accept, the ceilings), and how the
candidate slots are ranked.

A request is checked (exit 2, nothing written) and its venue resolved (exit 3) by one path,
`plan_for`, or by its two halves (`BookingRequest.want`, `find_venue`) where a snipe checks
more between them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TYPE_CHECKING

from resywatch.services.booking.outcomes import rate_limits_stop_the_booking
from resywatch.services.vocabulary import (
    OpenSlot,
    Want,
    local_today,
    validate_want,
    window_around,
)

if TYPE_CHECKING:
    from resywatch.config import Settings
    from resywatch.db.models import Venue
    from resywatch.runtime import Runtime

#: The preferred time when none is given: dinner.
DEFAULT_PREFERRED = time(19, 0)


@dataclass(frozen=True)
class BookingPlan:
    """What to book and on which terms."""

    venue_id: int
    venue_name: str
    want: Want
    preferred: time | None = None  # candidates closest to it first (after `want.times`)
    payment_method_id: int | None = None  # None: the user's default card
    max_total: float = 0.0
    max_cancel_fee: float = 50.0
    dry_run: bool = False

    @property
    def day(self) -> date:
        return self.want.date_from


def want_for(
    day: date,
    party_size: int,
    *,
    at: time | Sequence[time] | None = None,
    window: tuple[time, time] | None = None,
    seating_types: Sequence[str] = (),
) -> tuple[Want, time | None]:
    """The slots to accept and the preferred time. `--time` alone accepts +-30 min around
    it (a list: from 30 min before its earliest to 30 min after its latest time); a window
    alone prefers its middle; both: the window, closest to the (first) time first."""
    times = (at,) if isinstance(at, time) else tuple(at or ())
    if window is None and times:
        window = window_around(times)
    preferred = times[0] if times else None
    if preferred is None and window is not None:
        first, last = (datetime.combine(day, t) for t in window)
        preferred = (first + (last - first) / 2).time()
    want = Want(
        date_from=day,
        date_to=day,
        party_size=party_size,
        time_from=window[0] if window else None,
        time_to=window[1] if window else None,
        seating_types=tuple(seating_types),
        times=times,
    )
    return want, preferred


def rank(slots: Sequence[OpenSlot], want: Want, preferred: time | None) -> list[OpenSlot]:
    """Best first: earliest day, then the wanted times in their order (a ranked `--time`
    list), then the others closest to the preferred time, then the seating types in the
    order given (unlisted ones after), then the earlier time. One listed time ranks as its
    nearness alone did: it is the closest to itself."""
    target = preferred or DEFAULT_PREFERRED
    order = {s.casefold(): i for i, s in enumerate(want.seating_types)}
    listed = {t.replace(second=0, microsecond=0): i for i, t in enumerate(want.times)}

    def key(slot: OpenSlot) -> tuple[date, int, float, int, datetime]:
        start = slot.starts_at.time().replace(second=0, microsecond=0)
        distance = abs(
            (slot.starts_at - datetime.combine(slot.starts_at.date(), target)).total_seconds()
        )
        seating = order.get((slot.seating_type or "").casefold(), len(order))
        return slot.day, listed.get(start, len(listed)), distance, seating, slot.starts_at

    return sorted(slots, key=key)


def bookable(slots: Sequence[OpenSlot]) -> list[OpenSlot]:
    """The slots an ordinary account can book: not Global Dining Access, not an exclusive it
    is not eligible for (finding 12). The others are listed, never booked."""
    return [s for s in slots if s.restricted is None]


def restricted_note(slots: Sequence[OpenSlot]) -> str:
    left_out = [s for s in slots if s.restricted is not None]
    if not left_out:
        return ""
    times = ", ".join(sorted({f"{s.starts_at:%H:%M}" for s in left_out}))
    why = "; ".join(sorted({s.restricted or "" for s in left_out}))
    return f" (left out, not bookable by this account: {times}, {why})"


@dataclass(frozen=True)
class BookingRequest:
    """What the user asks to book: a venue (name, Resy id or page URL), a day, a party and
    preferences. `book now` is one; a snipe is one plus when and how to poll."""

    venue: str
    day: date
    party_size: int
    times: tuple[time, ...] = ()  # `--time`: one preferred time, or a ranked list
    window: tuple[time, time] | None = None
    seating_types: tuple[str, ...] = ()
    payment_method_id: int | None = None
    max_total: float | None = None  # None: the settings' ceiling
    max_cancel_fee: float | None = None
    dry_run: bool = False

    def want(self, today: date) -> tuple[Want, time | None]:
        """The slots to accept and the preferred time, checked (exit 2, nothing written)."""
        want, preferred = want_for(
            self.day,
            self.party_size,
            at=self.times,
            window=self.window,
            seating_types=self.seating_types,
        )
        validate_want(want, today)
        return want, preferred

    def plan(
        self, venue: Venue, want: Want, preferred: time | None, settings: Settings
    ) -> BookingPlan:
        """The plan for `venue`, the ceilings not given taken from the settings."""
        return BookingPlan(
            venue_id=venue.id,
            venue_name=venue.name,
            want=want,
            preferred=preferred,
            payment_method_id=self.payment_method_id,
            max_total=settings.book_max_total if self.max_total is None else self.max_total,
            max_cancel_fee=(
                settings.book_max_cancel_fee if self.max_cancel_fee is None else self.max_cancel_fee
            ),
            dry_run=self.dry_run,
        )


async def find_venue(rt: Runtime, request: BookingRequest) -> Venue:
    """The request's venue (exit 3 when unknown); rate limiting on the way is exit 17."""
    from resywatch.services.venues import resolve_venue

    with rate_limits_stop_the_booking():
        return await resolve_venue(rt, request.venue)


async def plan_for(rt: Runtime, request: BookingRequest) -> BookingPlan:
    """Check the request (exit 2, nothing written), then resolve its venue (exit 3)."""
    want, preferred = request.want(today(rt))
    venue = await find_venue(rt, request)
    return request.plan(venue, want, preferred, rt.settings)


def today(rt: Runtime) -> date:
    """Today in the configured zone, on the runtime's clock."""
    return local_today(rt.clock.now(), rt.settings.timezone)


_TOKEN = re.compile(
    r"^rgs://resy/(?P<venue>\d+)/(?P<template>\d+)/(?P<service>\d+)/\d{4}-\d{2}-\d{2}/"
    r"\d{4}-\d{2}-\d{2}/(?P<time>\d{2}:\d{2}:\d{2})/\d+/(?P<type>.+)$"
)


def predict_token(token: str, day: date, party_size: int) -> str | None:
    """The config token of the same slot on another day and party size, if `token` has the
    known `rgs://` form."""
    found = _TOKEN.match(token)
    if found is None:
        return None
    return (
        f"rgs://resy/{found['venue']}/{found['template']}/{found['service']}/{day}/{day}/"
        f"{found['time']}/{party_size}/{found['type']}"
    )
