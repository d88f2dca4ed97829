"""The user's own reservations on Resy: list them, show one, cancel one.

Resy is the record: nothing here is stored. A cancel is checked against the list first
(the reservation must be upcoming and cancellable), says what it costs before anything is
sent, is sent once (`/3/cancel` changes state: never retried), and is confirmed through the
list afterwards, as a booking is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum

from resywatch.errors import InvalidInput, NotFound, ResywatchError
from resywatch.resy.models import Reservation
from resywatch.runtime import Runtime

#: One page of each list: Resy's own apps show far fewer; a longer history is on resy.com.
PAGE = 100


class Which(StrEnum):
    UPCOMING = "upcoming"
    PAST = "past"
    ALL = "all"


@dataclass(frozen=True)
class ReservationView:
    reservation_id: int
    venue_id: int | None
    venue_name: str | None
    day: date
    time: time | None  # venue-local
    party_size: int | None
    seating_type: str | None
    upcoming: bool
    cancellable: bool  # Resy allows a cancel (as far as its list says)
    cancel_fee: float  # what a cancel costs once past the cut-off (0: free)
    cancel_cut_off: datetime | None  # until then a cancel is free; None: unknown
    resy_token: str | None  # what /3/cancel needs (never shown: it cancels the table)

    def fee_if_cancelled(self, now: datetime) -> float:
        """What cancelling at `now` costs: the fee once past the cut-off (or when Resy
        gives no cut-off: the safe reading), else nothing."""
        if self.cancel_fee <= 0:
            return 0.0
        return self.cancel_fee if self.cancel_cut_off is None or now >= self.cancel_cut_off else 0.0


@dataclass(frozen=True)
class CancelQuote:
    """What the user is asked before a cancel."""

    reservation: ReservationView
    fee: float  # what this cancel costs now

    @property
    def summary(self) -> str:
        r = self.reservation
        what = describe(r)
        if self.fee > 0:
            past = (
                f"past the free cut-off ({r.cancel_cut_off:%Y-%m-%d %H:%M} UTC)"
                if r.cancel_cut_off
                else "Resy gives no free cut-off"
            )
            return f"cancelling {what} costs ${self.fee:.2f} now: {past}"
        if r.cancel_fee > 0 and r.cancel_cut_off is not None:
            return (
                f"cancelling {what} is free until {r.cancel_cut_off:%Y-%m-%d %H:%M} UTC "
                f"(${r.cancel_fee:.2f} after)"
            )
        return f"cancelling {what} is free"


@dataclass(frozen=True)
class CancelResult:
    reservation_id: int
    cancelled: bool
    fee: float  # what Resy said the cancel would cost when it was sent
    refunded: bool | None  # Resy's `payment.refund`, when it says


class CancelNotConfirmed(ResywatchError):
    """Resy accepted the cancel, but the reservation is still listed: check the Resy app."""

    code = "cancel_unconfirmed"


def describe(r: ReservationView) -> str:
    when = f"{r.day:%a %b} {r.day.day}" + (f" {r.time:%H:%M}" if r.time else "")
    venue = r.venue_name or (f"venue {r.venue_id}" if r.venue_id else "a venue")
    party = f", party of {r.party_size}" if r.party_size else ""
    return f"reservation {r.reservation_id} ({venue}, {when}{party})"


async def list_reservations(rt: Runtime, which: Which = Which.UPCOMING) -> list[ReservationView]:
    """Upcoming soonest first, past newest first; `all`: upcoming, then past."""
    kinds = [Which.UPCOMING, Which.PAST] if which is Which.ALL else [which]
    found: list[ReservationView] = []
    for kind in kinds:
        rows = await rt.resy.reservations(kind=kind.value, limit=PAGE)
        found.extend(view(r, upcoming=kind is Which.UPCOMING) for r in rows)
    return found


async def show_reservation(rt: Runtime, reservation_id: int) -> ReservationView:
    for r in await list_reservations(rt, Which.ALL):
        if r.reservation_id == reservation_id:
            return r
    raise NotFound(
        f"no reservation {reservation_id} on this account: see `resywatch reservations list --all`"
    )


async def cancel_reservation(
    rt: Runtime,
    reservation_id: int,
    *,
    allow_fee: bool,
    confirm: Callable[[CancelQuote], bool] | None = None,
) -> CancelResult:
    """Cancel an upcoming reservation. `confirm` is asked with the quote (None: do not
    ask). A cancel that costs a fee is refused unless `allow_fee` or `confirm` agrees:
    nothing is sent then."""
    upcoming = await list_reservations(rt, Which.UPCOMING)
    target = next((r for r in upcoming if r.reservation_id == reservation_id), None)
    if target is None:
        raise NotFound(
            f"no upcoming reservation {reservation_id} on this account: "
            "see `resywatch reservations list`"
        )
    if not target.cancellable or not target.resy_token:
        raise ResywatchError(f"Resy does not allow cancelling {describe(target)}")
    quote = CancelQuote(target, target.fee_if_cancelled(rt.clock.now()))
    if confirm is not None:
        if not confirm(quote):
            raise ResywatchError(f"not cancelled: {describe(target)} stands")
    elif quote.fee > 0 and not allow_fee:
        raise InvalidInput(f"{quote.summary}; pass --yes to cancel anyway (nothing was sent)")
    answer = await rt.resy.cancel(target.resy_token)
    payment = answer.get("payment")
    refund = payment.get("refund") if isinstance(payment, dict) else None
    still = await list_reservations(rt, Which.UPCOMING)
    if any(r.reservation_id == reservation_id for r in still):
        raise CancelNotConfirmed(
            f"Resy accepted the cancel of {describe(target)} but still lists it: check the Resy app"
        )
    return CancelResult(reservation_id, True, quote.fee, None if refund is None else bool(refund))


def view(r: Reservation, *, upcoming: bool) -> ReservationView:
    cancellation = r.cancellation
    fee = cancellation.fee if cancellation else None
    amount = fee.amount if fee and fee.amount and fee.applies is not False else 0.0
    return ReservationView(
        reservation_id=r.reservation_id,
        venue_id=r.venue_id,
        venue_name=r.venue_name,
        day=r.day,
        time=_time(r.time_slot),
        party_size=r.num_seats,
        seating_type=r.config.type if r.config else None,
        upcoming=upcoming,
        cancellable=upcoming and (cancellation is None or cancellation.allowed is not False),
        cancel_fee=float(amount),
        cancel_cut_off=_moment(fee.date_cut_off) if fee else None,
        resy_token=r.resy_token,
    )


def _time(text: str | None) -> time | None:
    try:
        return time.fromisoformat(text.strip()[:8]) if text else None
    except ValueError:
        return None


def _moment(text: str | None) -> datetime | None:
    """Resy's cut-off, ISO with a Z or an offset (UTC when it names no zone); None when it
    cannot be read (the fee then counts as due: the safe reading)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
