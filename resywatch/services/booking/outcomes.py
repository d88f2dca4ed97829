"""What a booking try ends as: its outcome, exit code, result and the error a command raises.

One vocabulary for book now, auto-book and snipes: each step of a try concludes with a
`Verdict`; the try ends as a `BookingResult` (what the CLI prints and the attempt row keeps).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from resywatch.db.models.booking import Outcome
from resywatch.errors import ResywatchError
from resywatch.resy import errors as resy_errors

if TYPE_CHECKING:
    from resywatch.services.booking.quote import Quote
    from resywatch.services.vocabulary import OpenSlot

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
    warnings: tuple[str, ...] = ()  # e.g. a snipe that could not keep its interval

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.BOOKED, Outcome.DRY_RUN)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]

    def error(self) -> BookingFailed:
        return BookingFailed(self)


@dataclass
class Verdict:
    """What one step of the path concluded."""

    outcome: Outcome
    message: str
    slot: OpenSlot | None = None
    resy_status: int | None = None
    reservation_id: int | None = None
    quote: Quote | None = None


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
