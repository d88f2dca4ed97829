"""Every status and kind the tables keep as a string, in one module of its own: the
plain-SQL readers (`db/plain.py`, health, `run due`) use them without defining the SQLModel
tables, which costs a short command more than the rest of its work."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ColumnElement


class JobStatus(StrEnum):
    """How a pass of a job went: `job_run.status`, `job_heartbeat.last_status`."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # another pass held the job, or had all its work in hand
    INTERRUPTED = "interrupted"  # stopped before the pass finished


class NotificationKind(StrEnum):
    """What a notification is about (`notification.kind`; the webhook document's `kind`).
    Every one is built in `services/outbox.py`."""

    DROP = "drop"  # a slot nobody had seen opened (discovery)
    WATCH_HIT = "watch_hit"  # a watch found slots, or a new venue
    NOTIFY_HIT = "notify_hit"  # a notify request was satisfied
    BOOKING = "booking"  # a booking try ended (book now, auto-book, snipe), or a snipe missed
    ACCOUNT = "account"  # an account's token lapses soon, or lapsed, and was not refreshed
    TEST = "test"  # `notify test`: sent straight to the channels, never stored


class NotificationStatus(StrEnum):
    """`notification.status`: `pending` until every channel has it (`sent`) or the relay
    gives up (`failed`)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class DeliveryStatus(StrEnum):
    """`notification_delivery.status`: one notification on one channel."""

    PENDING = "pending"  # will retry
    SENT = "sent"
    FAILED = "failed"  # refused for good, or out of attempts


class WatchKind(StrEnum):
    VENUES = "venues"  # these venues have a slot
    NEW_VENUES = "new-venues"  # a venue this search did not return last time


class WatchStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"  # its dates are past


class RequestStatus(StrEnum):
    """`notify_request.status`: a request is checked until satisfied or its dates pass."""

    PENDING = "pending"
    SATISFIED = "satisfied"
    EXPIRED = "expired"


class Outcome(StrEnum):
    """How a booking try ended (`booking_attempt.outcome`). Each has its own message and
    exit code (`services.booking.outcomes.EXIT_CODES`)."""

    BOOKED = "booked"
    DRY_RUN = "dry_run"
    NO_SLOT = "no_slot"
    SLOT_GONE = "slot_gone"  # 404 on book
    CONFLICT = "conflict"  # 412 on book
    ALREADY_BOOKED = "already_booked"  # the upcoming-reservations check
    PAYMENT_REQUIRED = "payment_required"  # 402
    PAYMENT_NOT_ACCEPTED = "payment_not_accepted"  # 403 from the venue
    BLOCKED = "blocked"  # 403 from Resy's firewall
    FEE_TOO_HIGH = "fee_too_high"
    CAPTCHA = "captcha"  # the venue asks for a captcha (feature_recaptcha)
    AUTH_EXPIRED = "auth_expired"  # 419
    RATE_LIMITED = "rate_limited"  # 429
    UNCONFIRMED = "unconfirmed"  # no clear answer and not (yet) in the reservations
    DECLINED = "declined"  # the user said no at the prompt
    CLAIMED = "claimed"  # another worker holds the claim: nothing sent
    FAILED = "failed"
    PENDING = "pending"  # the row while its try is under way


class SnipeStatus(StrEnum):
    """`scheduled_snipe.status` (and how one run of a snipe ended)."""

    SCHEDULED = "scheduled"
    RUNNING = "running"  # a runner holds it (`claimed_by`, `claimed_until`)
    DONE = "done"  # tried: its booking outcome is in `outcome`
    MISSED = "missed"  # no runner in time, or its runner died
    CANCELLED = "cancelled"


NOT_FAILED = frozenset({Outcome.BOOKED, Outcome.DRY_RUN, Outcome.PENDING, Outcome.DECLINED})


def failed_outcome(outcome: ColumnElement[str]) -> ColumnElement[bool]:
    """The one definition of a failed booking attempt, on its `outcome` column (of the
    table class or of the plain view): `health`, `admin booking-errors` and
    `book attempts --failed` all use it."""
    return outcome.not_in(sorted(o.value for o in NOT_FAILED))
