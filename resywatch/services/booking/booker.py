"""One try at one slot: details -> fee check -> (prompt) -> book -> confirm, with the guards.

Never double-book: a book request that gets no clear answer is followed by a look at the
user's reservations, never by a blind retry; success is reported only once the reservation
shows there. `Booker.quote` and `Booker.book` are the steps the sniper reuses.
"""

from __future__ import annotations

import time as perf
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, TypeVar

from resywatch.clock import SYSTEM_CLOCK, Clock
from resywatch.db.models.booking import Outcome
from resywatch.resy import errors as resy_errors
from resywatch.services.booking.outcomes import Verdict
from resywatch.services.booking.quote import (
    Quote,
    already_booked,
    dry_run,
    fee_refused,
    held_at,
    quote_of,
    verdict_for_error,
)
from resywatch.services.vocabulary import OpenSlot, describe_slot

if TYPE_CHECKING:
    from resywatch.resy.client import ResyClient
    from resywatch.resy.models import Reservation
    from resywatch.services.booking.plan import BookingPlan

T = TypeVar("T")

#: A book token expiring sooner than this is fetched again before it is used.
TOKEN_MARGIN = timedelta(seconds=30)


Confirm = Callable[[OpenSlot, Quote], bool]


class Steps:
    """Runs Resy calls, timing each step and counting the requests."""

    def __init__(self) -> None:
        self.latency_ms: dict[str, float] = {}
        self.requests = 0
        self._started = perf.perf_counter()

    async def run(self, step: str, call: Awaitable[T]) -> T:
        started = perf.perf_counter()
        self.requests += 1
        try:
            return await call
        finally:
            # The last call of each step (a snipe repeats its steps many times).
            self.latency_ms[step] = round((perf.perf_counter() - started) * 1000, 2)

    def total(self) -> dict[str, float]:
        spent = (perf.perf_counter() - self._started) * 1000
        return self.latency_ms | {"total": round(spent, 2)}


class Booker:
    """details -> fee check -> (prompt) -> book -> confirm for one slot, with the guards."""

    def __init__(
        self,
        resy: ResyClient,
        plan: BookingPlan,
        steps: Steps,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.resy, self.plan, self.steps, self.clock = resy, plan, steps, clock
        # The reservations the last confirm read, by id (None: it could not read them).
        self.last_seen: dict[int, Reservation] | None = None

    async def quote(self, slot: OpenSlot) -> Quote:
        details = await self.steps.run(
            "details", self.resy.details(slot.token, slot.day, self.plan.want.party_size)
        )
        return quote_of(details, self.plan.payment_method_id, self.plan.want.party_size)

    def stale(self, quote: Quote) -> bool:
        """Whether the quote's book token expires within TOKEN_MARGIN from now."""
        expires = quote.expires_at
        if expires is None:
            return False
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        return expires - self.clock.now() < TOKEN_MARGIN

    async def reservations(self, step: str) -> list[Reservation]:
        return await self.steps.run(step, self.resy.reservations())

    async def _priced(self, slot: OpenSlot, quote: Quote | None) -> Quote | Verdict:
        """The slot's quote (`quote`, or fetched now) within the ceilings, or the verdict
        that ends the try here (Resy refused the details, or the quote is above a ceiling)."""
        if quote is None:
            try:
                quote = await self.quote(slot)
            except resy_errors.ResyError as exc:
                return verdict_for_error(exc, self.plan, slot)
        return fee_refused(quote, self.plan, slot) or quote

    async def try_slot(
        self, slot: OpenSlot, quote: Quote | None = None, *, confirm: Confirm | None = None
    ) -> Verdict:
        plan = self.plan
        if slot.captcha:  # known from the find: no details, no book request
            return verdict_for_error(resy_errors.CaptchaRequired(), plan, slot)
        priced = await self._priced(slot, quote)
        if isinstance(priced, Verdict):
            return priced
        quote = priced
        if plan.dry_run:
            return dry_run(quote, plan, slot)
        if confirm is not None and not confirm(slot, quote):
            return Verdict(Outcome.DECLINED, "not booked: you declined", slot, quote=quote)
        if confirm is not None and self.stale(quote):
            # The prompt outlasted the book token (it lasts about 5 minutes): a fresh one, on
            # the same terms, rather than a refusal taken for a conflict.
            priced = await self._priced(slot, None)
            if isinstance(priced, Verdict):
                return priced
            quote = priced
        verdict = await self.book(slot, quote)
        verdict.quote = quote
        return verdict

    async def book(self, slot: OpenSlot, quote: Quote, *, counted: bool = True) -> Verdict:
        """One book request (never retried), then the reservations to confirm it.
        `counted=False`: its failure is not reported to the shared breaker (speculative)."""
        try:
            booked = await self.steps.run(
                "book", self.resy.book(quote.book_token, quote.payment_method_id, counted=counted)
            )
        except resy_errors.Conflict as exc:
            if exc.reservation_id is not None:  # Resy's "412, but you hold it"
                return await self.confirm_held(slot, exc)
            return verdict_for_error(exc, self.plan, slot)
        except (
            resy_errors.ResyTimeout,
            resy_errors.ConnectionFailed,
            resy_errors.ServerError,
        ) as exc:
            # No clear answer: the booking may have gone through. Look, never retry blindly.
            return await self.confirm(slot, None, status=exc.status, cause=exc)
        except resy_errors.ResyError as exc:
            return verdict_for_error(exc, self.plan, slot)
        return await self.confirm(slot, booked.reservation_id, status=201)

    async def confirm_held(self, slot: OpenSlot, refusal: resy_errors.Conflict) -> Verdict:
        """A 412 that names a reservation of the user's: booked if it is this slot (Resy's
        "412, but the request is successful"), already booked if it is another one that day,
        and a conflict if the reservations do not show it."""
        verdict = await self.confirm(slot, refusal.reservation_id, status=refusal.status)
        if self.last_seen is None:
            return verdict  # the reservations could not be read: unconfirmed
        mine = self.last_seen.get(refusal.reservation_id or 0)
        if verdict.outcome is not Outcome.BOOKED or mine is None:
            return verdict_for_error(refusal, self.plan, slot)
        if mine.time_slot and mine.time_slot[:5] != f"{slot.starts_at:%H:%M}":
            held = already_booked(self.plan, mine)
            return replace(held, slot=slot, resy_status=refusal.status)
        verdict.message += f" (Resy answered {refusal.status}: you hold it)"
        return verdict

    async def confirm(
        self,
        slot: OpenSlot,
        reservation_id: int | None,
        *,
        status: int | None,
        cause: resy_errors.ResyError | None = None,
    ) -> Verdict:
        """Booked only if the user's reservations show it."""
        plan, what = self.plan, describe_slot(self.plan.venue_name, slot)
        self.last_seen = None
        try:
            mine = await self.reservations("confirm")
        except resy_errors.ResyError as exc:
            message = (
                f"Resy {'answered ' + str(status) if cause is None else 'gave no clear answer'} "
                f"for {what} but your reservations could not be read ({exc}): check resy.com "
                "before trying again"
            )
            return Verdict(Outcome.UNCONFIRMED, message, slot, status, reservation_id)
        self.last_seen = {r.reservation_id: r for r in mine}
        found = next((r for r in mine if r.reservation_id == reservation_id), None) or held_at(
            mine, plan.venue_id, plan.day
        )
        if found is not None:
            message = (
                f"booked {what} for {plan.want.party_size}: reservation {found.reservation_id}"
            )
            return Verdict(Outcome.BOOKED, message, slot, status, found.reservation_id)
        if cause is not None and isinstance(cause, resy_errors.ServerError):
            message = f"booking {what} failed ({cause}); it is not in your reservations"
            return Verdict(Outcome.FAILED, message, slot, status)
        if cause is not None:
            message = (
                f"Resy gave no answer to the booking of {what} ({cause}) and it is not in your "
                "reservations (yet): check resy.com before trying again"
            )
            return Verdict(Outcome.UNCONFIRMED, message, slot, status)
        message = (
            f"Resy said {what} was booked (reservation {reservation_id}) but it is not in your "
            "reservations: check resy.com before trying again"
        )
        return Verdict(Outcome.UNCONFIRMED, message, slot, status, reservation_id)
