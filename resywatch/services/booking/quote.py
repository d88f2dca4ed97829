"""The one path from a slot's details to a go or a stop, which `book now`, auto-book and the
sniper all take: the quote (`/3/details`), the fee ceilings, the dry run, and the message of
every verdict a try can end with (a Resy error, already booked, no slot)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from resywatch.db.models.booking import Outcome
from resywatch.resy import errors as resy_errors
from resywatch.services.booking.outcomes import Verdict, rate_limited_message
from resywatch.services.vocabulary import OpenSlot, describe_slot

if TYPE_CHECKING:
    from resywatch.resy.models import DetailsResponse, Reservation
    from resywatch.services.booking.plan import BookingPlan

CAPTCHA_MESSAGE = "this venue asks for a captcha: book it in the Resy app"


@dataclass(frozen=True)
class Quote:
    """What `/3/details` says the booking costs, and its book token."""

    book_token: str
    expires_at: datetime | None
    total: float
    cancellation_fee: float  # `cancellation.fee.amount`, as Resy gives it
    payment_method_id: int | None  # the card the booking would use
    party_size: int = 1

    @property
    def cancellation_fee_if_per_guest(self) -> float:
        """The fee if Resy's amount is per guest: public clients read it both ways (one
        multiplies by the party, finding 9) and no sample decides."""
        return self.cancellation_fee * max(self.party_size, 1)

    @property
    def cancellation_fee_max(self) -> float:
        """The larger reading: what `--max-cancel-fee` is held against."""
        return max(self.cancellation_fee, self.cancellation_fee_if_per_guest)

    def fee_text(self) -> str:
        """`$25.00 cancellation fee ($50.00 if per guest)`: both readings when they differ."""
        text = f"${self.cancellation_fee:.2f} cancellation fee"
        if self.cancellation_fee_max != self.cancellation_fee:
            text += f" (${self.cancellation_fee_max:.2f} if per guest)"
        return text


def quote_of(details: DetailsResponse, payment_method_id: int | None, party_size: int = 1) -> Quote:
    if details.book_token is None:
        raise resy_errors.CaptchaRequired(CAPTCHA_MESSAGE)
    methods = details.user.payment_methods if details.user else []
    default = sorted(methods, key=lambda m: not m.is_default)[0].id if methods else None
    return Quote(
        book_token=details.book_token.value,
        expires_at=details.book_token.date_expires,
        total=details.total,
        cancellation_fee=details.cancellation_fee,
        payment_method_id=payment_method_id if payment_method_id is not None else default,
        party_size=party_size,
    )


def over_ceiling(quote: Quote, plan: BookingPlan) -> str | None:
    """Why the quote is refused, or None when it is within the ceilings."""
    if quote.total <= plan.max_total and quote.cancellation_fee_max <= plan.max_cancel_fee:
        return None
    return (
        f"the quote (${quote.total:.2f} up front, {quote.fee_text()}) is above your ceilings "
        f"(${plan.max_total:.2f} / ${plan.max_cancel_fee:.2f}): raise --max-total / "
        "--max-cancel-fee to book it"
    )


def fee_refused(quote: Quote, plan: BookingPlan, slot: OpenSlot) -> Verdict | None:
    """The stop when the quote is above the plan's ceilings (before any book request)."""
    refused = over_ceiling(quote, plan)
    if refused is None:
        return None
    message = f"not booking {describe_slot(plan.venue_name, slot)}: {refused}"
    return Verdict(Outcome.FEE_TOO_HIGH, message, slot, quote=quote)


def dry_run(quote: Quote, plan: BookingPlan, slot: OpenSlot) -> Verdict:
    """Where a dry run stops: what would have been booked, at what price."""
    message = (
        f"dry run: would book {describe_slot(plan.venue_name, slot)} for "
        f"{plan.want.party_size} (${quote.total:.2f} up front, "
        f"{quote.fee_text()}); nothing was booked"
    )
    return Verdict(Outcome.DRY_RUN, message, slot, quote=quote)


def held_at(reservations: Sequence[Reservation], venue_id: int, day: date) -> Reservation | None:
    return next((r for r in reservations if r.venue_id == venue_id and r.day == day), None)


def verdict_for_error(
    exc: resy_errors.ResyError, plan: BookingPlan, slot: OpenSlot | None = None
) -> Verdict:
    """A Resy error on the way to booking, as an outcome with a message that says what to do."""
    what = describe_slot(plan.venue_name, slot)
    status = exc.status
    if isinstance(exc, resy_errors.AuthExpired):
        message = f"Resy no longer accepts your auth token ({status}): run `resywatch auth login`"
        return Verdict(Outcome.AUTH_EXPIRED, message, slot, status)
    if isinstance(exc, resy_errors.AuthError):  # the API key, on a key-only call
        return Verdict(Outcome.AUTH_EXPIRED, str(exc), slot, status)
    if isinstance(exc, resy_errors.CaptchaRequired):
        return Verdict(Outcome.CAPTCHA, f"{what}: {CAPTCHA_MESSAGE}", slot, status)
    if isinstance(exc, resy_errors.SlotGone):
        message = f"{what} was taken before it could be booked (Resy 404)"
        return Verdict(Outcome.SLOT_GONE, message, slot, status)
    if isinstance(exc, resy_errors.PaymentRequired):
        message = (
            f"{plan.venue_name} needs a card on file for this booking (Resy 402): add one on "
            "resy.com, or pass --payment-method ID"
        )
        return Verdict(Outcome.PAYMENT_REQUIRED, message, slot, status)
    if isinstance(exc, resy_errors.PaymentNotAccepted):
        message = (
            f"{plan.venue_name} cannot take payment methods (Resy 403: {exc}): book with the "
            "venue directly"
        )
        return Verdict(Outcome.PAYMENT_NOT_ACCEPTED, message, slot, status)
    if isinstance(exc, resy_errors.Blocked):
        message = (
            "Resy's firewall blocked the booking (403): wait a few minutes, or try from "
            "another network (datacenter addresses are often blocked)"
        )
        return Verdict(Outcome.BLOCKED, message, slot, status)
    if isinstance(exc, resy_errors.Conflict):
        message = (
            f"Resy refused {what} as a conflict (412): you may already hold a reservation at "
            f"{plan.venue_name} that day; check your reservations on resy.com"
        )
        return Verdict(Outcome.CONFLICT, message, slot, status)
    if exc.rate_limiting:
        return Verdict(Outcome.RATE_LIMITED, rate_limited_message(exc), slot, status)
    return Verdict(Outcome.FAILED, f"booking failed: {exc}", slot, status)


def already_booked(plan: BookingPlan, held: Reservation) -> Verdict:
    at = f" at {held.time_slot[:5]}" if held.time_slot else ""
    message = (
        f"you already hold a reservation at {plan.venue_name} on {held.day}{at} (reservation "
        f"{held.reservation_id}): not booking again"
    )
    return Verdict(Outcome.ALREADY_BOOKED, message, reservation_id=held.reservation_id)


def no_slot_message(plan: BookingPlan) -> str:
    want = plan.want
    window = (
        f" between {want.time_from:%H:%M} and {want.time_to:%H:%M}"
        if (want.time_from and want.time_to)
        else ""
    )
    seating = f" ({', '.join(want.seating_types)})" if want.seating_types else ""
    return f"no open slot at {plan.venue_name} on {plan.day} for {want.party_size}{window}{seating}"
