"""Booking a slot now: `book now` (the best matching slot of a venue's day) and auto-book
(the best of the slots a watch or notify request just found).

Never double-book: the user's upcoming reservations are checked for the venue and date
first, and for auto-book a claim (a `booking_attempt` row whose `claim_key` is unique per
watch or request and slot) lets one worker only send a book request for it. Booking writes
only its own rows: what a booked watch or request does next is the caller's `on_booked`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import time
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from resywatch.db.models import BookingAttempt
from resywatch.db.models.booking import Outcome
from resywatch.resy import errors as resy_errors
from resywatch.services.availability import open_slots
from resywatch.services.booking.attempts import (
    finish_attempt,
    finished_at,
    result_of,
    start_attempt,
)
from resywatch.services.booking.booker import Booker, Confirm, Steps
from resywatch.services.booking.outcomes import BookingResult, Verdict
from resywatch.services.booking.plan import (
    BookingPlan,
    BookingRequest,
    bookable,
    plan_for,
    rank,
    restricted_note,
    today,
    want_for,
)
from resywatch.services.booking.quote import (
    already_booked,
    held_at,
    no_slot_message,
    verdict_for_error,
)
from resywatch.services.vocabulary import OpenSlot, Want, describe_slot

if TYPE_CHECKING:
    from resywatch.config import Settings
    from resywatch.runtime import Runtime

#: Slots tried, best first, when the better ones turn out to be gone (404).
MAX_SLOTS_TRIED = 3

#: Called in the transaction that records a booked try: what the watch or request that
#: asked for it does now (e.g. a watch ends). Booking never writes its rows itself.
OnBooked = Callable[[Session], None]


async def book_now(
    rt: Runtime, request: BookingRequest, *, confirm: Confirm | None = None
) -> BookingResult:
    """Find -> details -> book the best matching slot, unless the user already holds a table
    there that day. Tries the next best when a slot is gone (404), up to three."""
    now = rt.clock.now()
    plan = await plan_for(rt, request)
    attempt_id = start_attempt(
        rt.db, source="book-now", source_id=None, plan=plan, slot=None, claim_key=None, now=now
    )
    steps = Steps()
    verdict = await _book_best(rt, plan, steps, confirm)
    result = result_of(verdict, plan, steps, rt.settings, attempt_id)
    assert attempt_id is not None
    finish_attempt(
        rt.db, attempt_id, result, notify=result.outcome is Outcome.BOOKED,
        now=finished_at(now, steps),
    )  # fmt: skip
    return result


async def _book_best(
    rt: Runtime, plan: BookingPlan, steps: Steps, confirm: Confirm | None
) -> Verdict:
    resy = rt.resy
    booker = Booker(resy, plan, steps, rt.clock)
    try:
        # Both at once: the check costs no extra round trip.
        mine, found = await asyncio.gather(
            booker.reservations("reservations"),
            steps.run("find", open_slots(resy, plan.venue_id, plan.want, today(rt))),
        )
    except resy_errors.ResyError as exc:
        return verdict_for_error(exc, plan)
    held = held_at(mine, plan.venue_id, plan.day)
    if held is not None:
        return already_booked(plan, held)
    candidates = rank(bookable(found), plan.want, plan.preferred)
    if not candidates:
        return Verdict(Outcome.NO_SLOT, no_slot_message(plan) + restricted_note(found))
    gone: list[OpenSlot] = []
    verdict = Verdict(Outcome.NO_SLOT, no_slot_message(plan))
    for slot in candidates[:MAX_SLOTS_TRIED]:
        verdict = await booker.try_slot(slot, confirm=confirm)
        if verdict.outcome is not Outcome.SLOT_GONE:
            break
        gone.append(slot)
    if gone and verdict.outcome is not Outcome.SLOT_GONE:
        taken = ", ".join(f"{s.starts_at:%H:%M}" for s in gone)
        verdict.message += f" (taken first: {taken})"
    return verdict


def claim_key(source: str, source_id: int, slot: OpenSlot) -> str:
    """One book request at most per (watch or request, slot): the slot and its seating."""
    return f"{source}:{source_id}:{slot.slot_id}:{slot.seating_type or ''}"[:128]


async def auto_book(
    rt: Runtime,
    *,
    source: str,
    source_id: int,
    want: Want,
    slots: Sequence[OpenSlot],
    on_booked: OnBooked | None = None,
) -> BookingResult | None:
    """Book the best of `slots` for a watch or notify request created with `--auto-book`.

    Slots this watch or request already claimed are skipped; losing a claim to another
    worker ends the try at once (that worker is booking for the same watch). None when
    nothing was left to try. The outcome is a `booking` notification; `on_booked` runs in
    the transaction that records a booking.
    """
    taken = _claimed(rt, source, source_id)
    free = [s for s in bookable(slots) if claim_key(source, source_id, s) not in taken]
    if not free:
        return None
    preferred = None
    if want.time_from and want.time_to:  # the first listed time, else the window's middle
        _, preferred = want_for(
            want.date_from, want.party_size, at=want.times,
            window=(want.time_from, want.time_to),
        )  # fmt: skip
    candidates = rank(free, want, preferred)
    now, steps = rt.clock.now(), Steps()
    top = _plan(candidates[0], want, preferred, rt.settings)
    try:
        mine = await Booker(rt.resy, top, steps, rt.clock).reservations("reservations")
    except resy_errors.ResyError as exc:
        # Nothing claimed: the slots stay free for the next check.
        verdict = verdict_for_error(exc, top, candidates[0])
        attempt_id = start_attempt(
            rt.db, source=source, source_id=source_id, plan=top, slot=candidates[0],
            claim_key=None, now=now,
        )  # fmt: skip
        assert attempt_id is not None
        failed = result_of(verdict, top, steps, rt.settings, attempt_id)
        finish_attempt(rt.db, attempt_id, failed, notify=True, now=finished_at(now, steps))
        return failed
    result: BookingResult | None = None
    for slot in candidates[:MAX_SLOTS_TRIED]:
        plan = _plan(slot, want, preferred, rt.settings)
        key = claim_key(source, source_id, slot)
        attempt_id = start_attempt(
            rt.db, source=source, source_id=source_id, plan=plan, slot=slot, claim_key=key,
            now=now,
        )  # fmt: skip
        if attempt_id is None:
            return result or BookingResult(
                Outcome.CLAIMED,
                f"another worker is booking {describe_slot(plan.venue_name, slot)} for "
                f"{source} {source_id}",
                plan.venue_id, plan.venue_name, slot.day, want.party_size, slot.starts_at,
                slot.seating_type,
            )  # fmt: skip
        if (held := held_at(mine, slot.venue_id, slot.day)) is not None:
            verdict = already_booked(plan, held)
            verdict.slot = slot
        else:
            verdict = await Booker(rt.resy, plan, steps, rt.clock).try_slot(slot)
        result = result_of(verdict, plan, steps, rt.settings, attempt_id)
        finish_attempt(
            rt.db, attempt_id, result, notify=True, now=finished_at(now, steps),
            then=on_booked if verdict.outcome is Outcome.BOOKED else None,
        )  # fmt: skip
        if verdict.outcome is not Outcome.SLOT_GONE:
            break
    return result


def _claimed(rt: Runtime, source: str, source_id: int) -> set[str | None]:
    """The claim keys this watch or request already holds."""
    with rt.db.read() as session:
        prefix = f"{source}:{source_id}:"
        return set(
            session.exec(
                select(BookingAttempt.claim_key).where(
                    col(BookingAttempt.claim_key).startswith(prefix)
                )
            )
        )


def _plan(slot: OpenSlot, want: Want, preferred: time | None, settings: Settings) -> BookingPlan:
    return BookingPlan(
        venue_id=slot.venue_id,
        venue_name=slot.venue_name,
        want=replace(want, date_from=slot.day, date_to=slot.day),
        preferred=preferred,
        max_total=settings.book_max_total,
        max_cancel_fee=settings.book_max_cancel_fee,
    )
