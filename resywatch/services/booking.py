"""Booking: `book now`, auto-book for watches and notify requests, and what every try ends as.

The path is find -> details -> book, with the guards the open-source bots lack:

- Never double-book. The user's upcoming reservations are checked for the venue and date
  first; a claim (a `booking_attempt` row whose `claim_key` is unique per watch or request and
  slot) lets one worker only send a book request for it; a book request that gets no clear
  answer is followed by a look at the reservations, never by a blind retry.
- Fee ceilings: a quote above them is refused before `/3/book`.
- Success is reported only once the reservation shows in the user's reservations.

Every try is a `booking_attempt` row with the latency of each step. The outcome of a try
nobody is watching (auto-book, snipe) is written as a `booking` notification in the same
transaction as the row, so it is delivered like any other.
"""

from __future__ import annotations

import asyncio
import time as clock
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from resywatch.db.models import BookingAttempt, Watch
from resywatch.db.models.booking import Outcome as Outcome  # re-exported: its old home
from resywatch.db.models.booking import failed_attempt
from resywatch.errors import InvalidInput, ResywatchError
from resywatch.redact import redact_text
from resywatch.resy import errors as resy_errors
from resywatch.resy.models import DetailsResponse, Reservation
from resywatch.services import outbox
from resywatch.services.availability import open_slots
from resywatch.services.vocabulary import OpenSlot, Want, describe_slot, local_today, validate_want

if TYPE_CHECKING:
    from resywatch.config import Settings
    from resywatch.db.engine import Database
    from resywatch.resy.client import ResyClient

T = TypeVar("T")

#: Slots tried, best first, when the better ones turn out to be gone (404).
MAX_SLOTS_TRIED = 3
#: The preferred time when none is given: dinner.
DEFAULT_PREFERRED = time(19, 0)
#: `--time 19:00` alone accepts slots this close to it.
TIME_SLACK = timedelta(minutes=30)
CAPTCHA_MESSAGE = "this venue asks for a captcha: book it in the Resy app"
#: A book token expiring sooner than this is fetched again before it is used.
TOKEN_MARGIN = timedelta(seconds=30)


#: Exit codes of `book now` and `book snipe`, one per outcome (documented in their help).
EXIT_CODES: dict[Outcome, int] = {
    Outcome.BOOKED: 0,
    Outcome.DRY_RUN: 0,
    Outcome.NO_SLOT: 10,
    Outcome.SLOT_GONE: 11,
    Outcome.CONFLICT: 12,
    Outcome.ALREADY_BOOKED: 12,
    Outcome.PAYMENT_REQUIRED: 13,
    Outcome.PAYMENT_NOT_ACCEPTED: 14,
    Outcome.BLOCKED: 14,
    Outcome.FEE_TOO_HIGH: 15,
    Outcome.AUTH_EXPIRED: 16,
    Outcome.RATE_LIMITED: 17,
    Outcome.UNCONFIRMED: 18,
    Outcome.CAPTCHA: 19,
    Outcome.DECLINED: 1,
    Outcome.CLAIMED: 1,
    Outcome.FAILED: 1,
    Outcome.PENDING: 1,
}


class BookingFailed(ResywatchError):
    """The booking failed."""

    code = "booking_failed"

    def __init__(self, result: BookingResult) -> None:
        super().__init__(result.message)
        self.result = result
        self.code = result.outcome.value
        self.exit_code = EXIT_CODES[result.outcome]  # booking's own codes, 10-19


class BookingStopped(ResywatchError):
    """A booking command stopped before its try, for a reason that is a booking outcome."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.code = outcome.value
        self.exit_code = EXIT_CODES[outcome]


@dataclass(frozen=True)
class BookingPlan:
    """What to book and on which terms."""

    venue_id: int
    venue_name: str
    want: Want
    preferred: time | None = None  # candidates closest to it first
    payment_method_id: int | None = None  # None: the user's default card
    max_total: float = 0.0
    max_cancel_fee: float = 50.0
    dry_run: bool = False

    @property
    def day(self) -> date:
        return self.want.date_from


@dataclass(frozen=True)
class BookingResult:
    """The outcome of one try, as the CLI prints it."""

    outcome: Outcome
    message: str
    venue_id: int
    venue_name: str
    day: date
    party_size: int
    starts_at: datetime | None = None  # venue-local
    seating_type: str | None = None
    reservation_id: int | None = None
    resy_status: int | None = None
    total: float | None = None  # the quote: charged up front
    cancellation_fee: float | None = None
    cancellation_fee_max: float | None = None  # read per guest when larger (finding 9)
    attempt_id: int | None = None
    dry_run: bool = False
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.BOOKED, Outcome.DRY_RUN)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def error(self) -> BookingFailed:
        return BookingFailed(self)


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


Confirm = Callable[[OpenSlot, Quote], bool]


# --- ranking ------------------------------------------------------------------------------


def want_for(
    day: date,
    party_size: int,
    *,
    at: time | None = None,
    window: tuple[time, time] | None = None,
    seating_types: Sequence[str] = (),
) -> tuple[Want, time | None]:
    """The slots to accept and the preferred time: `--time` alone accepts +-30 min around
    it; a window alone prefers its middle; both: the window, closest to the time first."""
    if window is None and at is not None:
        start = datetime.combine(day, at)
        low, high = (start - TIME_SLACK).time(), (start + TIME_SLACK).time()
        window = (low if low < at else time(0, 0), high if high > at else time(23, 59))
    preferred = at
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
    )
    return want, preferred


def check_time_in_window(at: time | None, window: tuple[time, time] | None) -> None:
    if at is not None and window is not None and not window[0] <= at <= window[1]:
        raise InvalidInput(
            f"--time {at:%H:%M} is outside --window {window[0]:%H:%M}-{window[1]:%H:%M}"
        )


def rank(slots: Sequence[OpenSlot], want: Want, preferred: time | None) -> list[OpenSlot]:
    """Best first: earliest day, then closest to the preferred time, then the seating types
    in the order given (unlisted ones after), then the earlier time."""
    target = preferred or DEFAULT_PREFERRED
    order = {s.casefold(): i for i, s in enumerate(want.seating_types)}

    def key(slot: OpenSlot) -> tuple[date, float, int, datetime]:
        distance = abs(
            (slot.starts_at - datetime.combine(slot.starts_at.date(), target)).total_seconds()
        )
        seating = order.get((slot.seating_type or "").casefold(), len(order))
        return slot.day, distance, seating, slot.starts_at

    return sorted(slots, key=key)


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


# --- one try --------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What one step of the path concluded."""

    outcome: Outcome
    message: str
    slot: OpenSlot | None = None
    resy_status: int | None = None
    reservation_id: int | None = None
    quote: Quote | None = None


class Steps:
    """Runs Resy calls, timing each step and counting the requests."""

    def __init__(self) -> None:
        self.latency_ms: dict[str, float] = {}
        self.requests = 0
        self._started = clock.perf_counter()

    async def run(self, step: str, call: Awaitable[T]) -> T:
        started = clock.perf_counter()
        self.requests += 1
        try:
            return await call
        finally:
            # The last call of each step (a snipe repeats its steps many times).
            self.latency_ms[step] = round((clock.perf_counter() - started) * 1000, 2)

    def total(self) -> dict[str, float]:
        spent = (clock.perf_counter() - self._started) * 1000
        return self.latency_ms | {"total": round(spent, 2)}


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


def rate_limited_message(exc: resy_errors.ResyError) -> str:
    if isinstance(exc, resy_errors.CircuitOpen) and exc.until is not None:
        return (
            "Resy is rate limiting requests (429): none is sent until "
            f"{exc.until.astimezone(UTC):%H:%M:%S} UTC"
        )
    return "Resy is rate limiting requests (429): try again in a minute"


@contextmanager
def rate_limits_stop_the_booking() -> Iterator[None]:
    """Resy's rate limiting (a 429, or the breaker 429s opened) met before the booking try
    (finding the venue, its release) ends the booking command as rate limited (exit 17), as
    it would during the try."""
    try:
        yield
    except resy_errors.ResyError as exc:
        if not exc.rate_limiting:
            raise
        raise BookingStopped(Outcome.RATE_LIMITED, rate_limited_message(exc)) from None


class Booker:
    """details -> fee check -> (prompt) -> book -> confirm for one slot, with the guards."""

    def __init__(
        self,
        resy: ResyClient,
        plan: BookingPlan,
        steps: Steps,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.resy, self.plan, self.steps, self.now = resy, plan, steps, now
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
        return expires - self.now() < TOKEN_MARGIN

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
        refused = over_ceiling(quote, self.plan)
        if refused is not None:
            message = f"not booking {describe_slot(self.plan.venue_name, slot)}: {refused}"
            return Verdict(Outcome.FEE_TOO_HIGH, message, slot, quote=quote)
        return quote

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
            message = (
                f"dry run: would book {describe_slot(plan.venue_name, slot)} for "
                f"{plan.want.party_size} (${quote.total:.2f} up front, "
                f"{quote.fee_text()}); nothing was booked"
            )
            return Verdict(Outcome.DRY_RUN, message, slot, quote=quote)
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


# --- recording ------------------------------------------------------------------------------


def start_attempt(
    db: Database,
    *,
    source: str,
    source_id: int | None,
    plan: BookingPlan,
    slot: OpenSlot | None,
    claim_key: str | None,
    now: datetime,
) -> int | None:
    """The attempt's row, written before anything is sent. With a claim key, None means
    another worker holds the claim (the key is unique): send nothing."""
    row = BookingAttempt(
        source=source,
        source_id=source_id,
        claim_key=claim_key,
        venue_id=plan.venue_id,
        venue_name=plan.venue_name,
        slot_date=slot.day if slot else plan.day,
        starts_at=slot.starts_at if slot else None,
        party_size=plan.want.party_size,
        seating_type=slot.seating_type if slot else None,
        outcome=Outcome.PENDING.value,
        dry_run=plan.dry_run,
        created_at=now,
    )
    try:
        with db.write() as session:
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        if claim_key is None:
            raise
        return None


def finish_attempt(
    db: Database,
    attempt_id: int,
    result: BookingResult,
    *,
    notify: bool,
    now: datetime,
    then: Callable[[Session], None] | None = None,
) -> None:
    """The attempt's outcome, its `booking` notification (when `notify`) and whatever `then`
    writes, in one transaction."""
    with db.write() as session:
        row = session.get(BookingAttempt, attempt_id)
        if row is None:  # pruned meanwhile: nothing to finish
            return
        row.outcome = result.outcome.value
        row.message = result.message
        row.resy_status = result.resy_status
        row.reservation_id = result.reservation_id
        row.latency_ms = result.latency_ms
        row.finished_at = now
        if result.starts_at is not None:
            row.slot_date, row.starts_at = result.day, result.starts_at
            row.seating_type = result.seating_type
        if notify and result.outcome is not Outcome.PENDING:
            session.add(outbox.booking_outcome(row, result))
        if then is not None:
            then(session)


def result_of(
    verdict: Verdict,
    plan: BookingPlan,
    steps: Steps,
    settings: Settings,
    attempt_id: int | None,
) -> BookingResult:
    slot = verdict.slot
    return BookingResult(
        outcome=verdict.outcome,
        message=redact_text(verdict.message, settings.secrets()),
        venue_id=plan.venue_id,
        venue_name=plan.venue_name,
        day=slot.day if slot else plan.day,
        party_size=plan.want.party_size,
        starts_at=slot.starts_at if slot else None,
        seating_type=slot.seating_type if slot else None,
        reservation_id=verdict.reservation_id,
        resy_status=verdict.resy_status,
        total=verdict.quote.total if verdict.quote else None,
        cancellation_fee=verdict.quote.cancellation_fee if verdict.quote else None,
        cancellation_fee_max=verdict.quote.cancellation_fee_max if verdict.quote else None,
        attempt_id=attempt_id,
        dry_run=plan.dry_run,
        latency_ms=steps.total(),
    )


def _finished_at(started: datetime, steps: Steps) -> datetime:
    return started + timedelta(milliseconds=steps.total()["total"])


# --- book now -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookNow:
    """`resywatch book now`: a venue (name or id), a day, a party and preferences."""

    venue: str
    day: date
    party_size: int
    at: time | None = None
    window: tuple[time, time] | None = None
    seating_types: tuple[str, ...] = ()
    payment_method_id: int | None = None
    max_total: float | None = None  # None: the settings' ceiling
    max_cancel_fee: float | None = None
    dry_run: bool = False


async def plan_for(
    *,
    resy: ResyClient,
    db: Database,
    settings: Settings,
    venue: str,
    day: date,
    party_size: int,
    at: time | None,
    window: tuple[time, time] | None,
    seating_types: Sequence[str],
    payment_method_id: int | None,
    max_total: float | None,
    max_cancel_fee: float | None,
    dry_run: bool,
    now: datetime,
) -> BookingPlan:
    """Validate the request (exit 2, nothing written) and resolve the venue (exit 3)."""
    from resywatch.services.venues import resolve_venue

    check_time_in_window(at, window)
    want, preferred = want_for(day, party_size, at=at, window=window, seating_types=seating_types)
    validate_want(want, local_today(now, settings.timezone))
    with rate_limits_stop_the_booking():
        found = await resolve_venue(resy=resy, db=db, settings=settings, text=venue, now=now)
    return BookingPlan(
        venue_id=found.id,
        venue_name=found.name,
        want=want,
        preferred=preferred,
        payment_method_id=payment_method_id,
        max_total=settings.book_max_total if max_total is None else max_total,
        max_cancel_fee=settings.book_max_cancel_fee if max_cancel_fee is None else max_cancel_fee,
        dry_run=dry_run,
    )


async def book_now(
    *,
    db: Database,
    resy: ResyClient,
    settings: Settings,
    request: BookNow,
    now: datetime,
    confirm: Confirm | None = None,
) -> BookingResult:
    """Find -> details -> book the best matching slot, unless the user already holds a table
    there that day. Tries the next best when a slot is gone (404), up to three."""
    plan = await plan_for(
        resy=resy, db=db, settings=settings, venue=request.venue, day=request.day,
        party_size=request.party_size, at=request.at, window=request.window,
        seating_types=request.seating_types, payment_method_id=request.payment_method_id,
        max_total=request.max_total, max_cancel_fee=request.max_cancel_fee,
        dry_run=request.dry_run, now=now,
    )  # fmt: skip
    attempt_id = start_attempt(
        db, source="book-now", source_id=None, plan=plan, slot=None, claim_key=None, now=now
    )
    steps = Steps()
    verdict = await _book_best(resy, plan, steps, settings, now, confirm)
    result = result_of(verdict, plan, steps, settings, attempt_id)
    assert attempt_id is not None
    finish_attempt(
        db, attempt_id, result, notify=result.outcome is Outcome.BOOKED,
        now=_finished_at(now, steps),
    )  # fmt: skip
    return result


async def _book_best(
    resy: ResyClient,
    plan: BookingPlan,
    steps: Steps,
    settings: Settings,
    now: datetime,
    confirm: Confirm | None,
) -> Verdict:
    booker = Booker(resy, plan, steps)
    today = local_today(now, settings.timezone)
    try:
        # Both at once: the check costs no extra round trip.
        mine, found = await asyncio.gather(
            booker.reservations("reservations"),
            steps.run("find", open_slots(resy, plan.venue_id, plan.want, today)),
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


# --- auto-book ------------------------------------------------------------------------------


def claim_key(source: str, source_id: int, slot: OpenSlot) -> str:
    """One book request at most per (watch or request, slot): the slot and its seating."""
    return f"{source}:{source_id}:{slot.slot_id}:{slot.seating_type or ''}"[:128]


#: Outcomes after which a notify request has its answer (the others try again next check).
SETTLED = frozenset(
    {
        Outcome.BOOKED,
        Outcome.ALREADY_BOOKED,
        Outcome.CONFLICT,
        Outcome.FEE_TOO_HIGH,
        Outcome.PAYMENT_REQUIRED,
        Outcome.PAYMENT_NOT_ACCEPTED,
        Outcome.CAPTCHA,  # a notification instead of a booking: the user books in the app
        Outcome.DRY_RUN,
    }
)


async def auto_book(
    *,
    db: Database,
    resy: ResyClient,
    settings: Settings,
    source: str,
    source_id: int,
    want: Want,
    slots: Sequence[OpenSlot],
    now: datetime,
) -> BookingResult | None:
    """Book the best of `slots` for a watch or notify request created with `--auto-book`.

    Slots this watch or request already claimed are skipped; losing a claim to another
    worker ends the try at once (that worker is booking for the same watch). None when
    nothing was left to try. A booked watch ends; the outcome is a `booking` notification.
    """
    with db.read() as session:
        prefix = f"{source}:{source_id}:"
        taken = set(
            session.exec(
                select(BookingAttempt.claim_key).where(
                    col(BookingAttempt.claim_key).startswith(prefix)
                )
            )
        )
    free = [s for s in bookable(slots) if claim_key(source, source_id, s) not in taken]
    if not free:
        return None
    preferred = None
    if want.time_from and want.time_to:
        _, preferred = want_for(
            want.date_from, want.party_size, window=(want.time_from, want.time_to)
        )
    candidates = rank(free, want, preferred)
    steps = Steps()
    top = _plan(candidates[0], want, preferred, settings)
    try:
        mine = await Booker(resy, top, steps).reservations("reservations")
    except resy_errors.ResyError as exc:
        # Nothing claimed: the slots stay free for the next check.
        verdict = verdict_for_error(exc, top, candidates[0])
        attempt_id = start_attempt(
            db, source=source, source_id=source_id, plan=top, slot=candidates[0],
            claim_key=None, now=now,
        )  # fmt: skip
        assert attempt_id is not None
        failed = result_of(verdict, top, steps, settings, attempt_id)
        finish_attempt(db, attempt_id, failed, notify=True, now=_finished_at(now, steps))
        return failed
    result: BookingResult | None = None
    for slot in candidates[:MAX_SLOTS_TRIED]:
        plan = _plan(slot, want, preferred, settings)
        key = claim_key(source, source_id, slot)
        attempt_id = start_attempt(
            db, source=source, source_id=source_id, plan=plan, slot=slot, claim_key=key, now=now
        )
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
            verdict = await Booker(resy, plan, steps).try_slot(slot)
        result = result_of(verdict, plan, steps, settings, attempt_id)
        finish_attempt(
            db, attempt_id, result, notify=True, now=_finished_at(now, steps),
            then=_end_watch(source, source_id, now) if verdict.outcome is Outcome.BOOKED else None,
        )  # fmt: skip
        if verdict.outcome is not Outcome.SLOT_GONE:
            break
    return result


def _plan(slot: OpenSlot, want: Want, preferred: time | None, settings: Settings) -> BookingPlan:
    return BookingPlan(
        venue_id=slot.venue_id,
        venue_name=slot.venue_name,
        want=replace(want, date_from=slot.day, date_to=slot.day),
        preferred=preferred,
        max_total=settings.book_max_total,
        max_cancel_fee=settings.book_max_cancel_fee,
    )


def _end_watch(source: str, source_id: int, now: datetime) -> Callable[[Session], None]:
    """A booked watch has done its job: it ends (it would book again on its next hit)."""

    def end(session: Session) -> None:
        if source == "watch":
            watch = session.get(Watch, source_id)
            if watch is not None:
                watch.status, watch.next_check_at, watch.updated_at = "ended", None, now

    return end


# --- attempts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptView:
    id: int
    created_at: datetime
    finished_at: datetime | None
    source: str
    source_id: int | None
    venue_id: int
    venue_name: str | None
    slot_date: date
    starts_at: datetime | None
    party_size: int
    seating_type: str | None
    outcome: str
    resy_status: int | None
    reservation_id: int | None
    message: str | None
    dry_run: bool
    latency_ms: dict[str, float]


#: Outcomes that are not failures: booked, a dry run, a try still under way (its row is
#: written before anything is sent, so a snipe waiting for its release and `book now` at
#: its prompt are pending), and a try the user called off.
def list_attempts(
    db: Database,
    *,
    since: datetime | None = None,
    failed_only: bool = False,
    limit: int = 50,
) -> list[AttemptView]:
    """Booking attempts, newest first (the seed's booking logs and booking errors)."""
    with db.read() as session:
        query = select(BookingAttempt)
        if since is not None:
            query = query.where(col(BookingAttempt.created_at) >= since)
        if failed_only:
            query = query.where(failed_attempt())
        query = query.order_by(col(BookingAttempt.created_at).desc(), col(BookingAttempt.id).desc())
        rows = session.exec(query.limit(limit)).all()
    return [_attempt_view(r) for r in rows]


def _attempt_view(row: BookingAttempt) -> AttemptView:
    assert row.id is not None
    return AttemptView(
        id=row.id,
        created_at=row.created_at,
        finished_at=row.finished_at,
        source=row.source,
        source_id=row.source_id,
        venue_id=row.venue_id,
        venue_name=row.venue_name,
        slot_date=row.slot_date,
        starts_at=row.starts_at,
        party_size=row.party_size,
        seating_type=row.seating_type,
        outcome=row.outcome,
        resy_status=row.resy_status,
        reservation_id=row.reservation_id,
        message=row.message,
        dry_run=row.dry_run,
        latency_ms=dict(row.latency_ms),
    )
