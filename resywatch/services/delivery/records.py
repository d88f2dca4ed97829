"""What each send came to, written under the batch's lease, and each row's next state.

Recording. Every send is recorded in its own transaction as soon as it ends. That
transaction writes the row only `WHERE claimed_by = <token>` and checks the count (a fence:
a relay that lost its lease writes nothing and stops), and renews the batch's lease once
half of it has gone.

Retrying. Each channel's state is its own `notification_delivery` row (status, attempts,
last error): a channel that has a notification is never sent it again because another
channel failed. The retry schedule is the notification's: a transient failure on any
channel reschedules the row (`next_attempt_at`) with an exponential, jittered delay, and the
next round sends only to the channels still missing it; after `max_attempts` rounds, or
once every channel still missing it has refused for good (an HTTP 4xx), the row is `failed`
with its `last_error`. A channel skipped for being down counts no attempt of its own.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import update
from sqlmodel import Session, col

from resywatch.db import leases
from resywatch.db.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationStatus,
)
from resywatch.services.channels.base import Channel, SendError
from resywatch.services.delivery.claims import LEASES, Claim, held
from resywatch.services.delivery.policy import (
    PROBLEMS_KEPT,
    DeliveryPolicy,
    DeliveryReport,
    Problem,
)

if TYPE_CHECKING:
    from resywatch.db.engine import Database

_ERROR_LIMIT = 1000

State = Literal["sent", "transient", "permanent"]
#: A channel's row after a send that ended so.
_DELIVERY_STATUS: dict[State, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "permanent": DeliveryStatus.FAILED,
    "transient": DeliveryStatus.PENDING,
}


@dataclass(frozen=True)
class Outcome:
    state: State
    error: str | None = None
    tried: bool = True  # False: skipped, the channel being down (no attempt is counted)


@dataclass(frozen=True)
class Final:
    status: NotificationStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None


class _LeaseLost(Exception):
    """Another relay took over the batch's rows (our lease had expired)."""


def outcome_of(channel: Channel, error: SendError | None) -> Outcome:
    if error is None:
        return Outcome("sent")
    return Outcome("permanent" if error.permanent else "transient", channel.describe(error))


def settle(
    row: Notification,
    channels: Sequence[Channel],
    done: dict[str, NotificationDelivery],
    outcomes: dict[str, Outcome],
    policy: DeliveryPolicy,
    at: datetime,
    rng: random.Random,
) -> Final:
    """The row's state after this round, from every configured channel's state."""
    attempts = row.attempts + 1
    states: list[State] = [
        outcomes[c.key].state
        if c.key in outcomes
        else ("sent" if done[c.key].status == DeliveryStatus.SENT else "permanent")
        for c in channels
    ]
    errors = [o.error for o in outcomes.values() if o.error]
    last_error = "; ".join(errors)[:_ERROR_LIMIT] if errors else row.last_error
    if all(state == "sent" for state in states):
        return Final(NotificationStatus.SENT, attempts, last_error, row.next_attempt_at, at)
    if "transient" in states and attempts < policy.max_attempts:
        retry_at = at + policy.delay(attempts, rng)
        return Final(NotificationStatus.PENDING, attempts, last_error, retry_at, None)
    return Final(NotificationStatus.FAILED, attempts, last_error, row.next_attempt_at, None)


def record(
    db: Database,
    claim: Claim,
    notification_id: int,
    sends: list[tuple[Channel, Outcome]],
    final: Final | None,
    at: datetime,
    lease: timedelta,
) -> bool:
    """Write sends (and the row's final state) only if the batch still holds the row.

    The write to the row itself is the fence (`leases.fence`: `WHERE claimed_by = token`);
    the rest of the batch is renewed once half the lease has gone, which keeps a busy
    relay's rows from expiring without rewriting every held row after every send.
    """
    done = claim.deliveries.get(notification_id, {})
    renew = at - claim.renewed_at >= lease / 2
    try:
        with db.write() as session:
            values = {"claimed_until": at + lease} if final is None else _final_values(final)
            if not leases.fence(session, LEASES, held(claim, notification_id), **values):
                raise _LeaseLost
            others = [held(claim, i) for i in claim.held if i != notification_id]
            if renew and leases.renew(session, LEASES, others, claimed_until=at + lease):
                raise _LeaseLost
            for channel, outcome in sends:
                _write_delivery(session, notification_id, channel, outcome, done, final, at)
            if final is not None and final.status == NotificationStatus.FAILED:
                session.exec(  # channels recorded earlier in this round as pending
                    update(NotificationDelivery)
                    .where(col(NotificationDelivery.notification_id) == notification_id)
                    .where(col(NotificationDelivery.status) == DeliveryStatus.PENDING)
                    .values(status=DeliveryStatus.FAILED, updated_at=at)
                )
    except _LeaseLost:
        return False
    if renew:
        claim.renewed_at = at
    return True


def _write_delivery(
    session: Session,
    notification_id: int,
    channel: Channel,
    outcome: Outcome,
    done: dict[str, NotificationDelivery],
    final: Final | None,
    at: datetime,
) -> None:
    status = _DELIVERY_STATUS[outcome.state]
    out_of_attempts = final is not None and final.status == NotificationStatus.FAILED
    if status == DeliveryStatus.PENDING and out_of_attempts:
        status = DeliveryStatus.FAILED
    previous = done.get(channel.key)
    row = NotificationDelivery(
        notification_id=notification_id,
        channel=channel.key,
        status=status,
        attempts=(previous.attempts if previous else 0) + (1 if outcome.tried else 0),
        last_error=outcome.error or (previous.last_error if previous else None),
        sent_at=at if status == DeliveryStatus.SENT else None,
        updated_at=at,
    )
    if previous is None:
        session.add(row)
    else:
        session.exec(
            update(NotificationDelivery)
            .where(col(NotificationDelivery.id) == previous.id)
            .values(row.model_dump(exclude={"id", "notification_id", "channel"}))
        )


def _final_values(final: Final) -> dict[str, object]:
    return {
        "status": final.status,
        "attempts": final.attempts,
        "last_error": final.last_error,
        "next_attempt_at": final.next_attempt_at,
        "sent_at": final.sent_at,
        "claimed_by": None,
        "claimed_until": None,
    }


def tally(report: DeliveryReport, row: Notification, final: Final) -> None:
    if final.status == NotificationStatus.SENT:
        report.sent += 1
        return
    if final.status == NotificationStatus.FAILED:
        report.failed += 1
    else:
        report.retried += 1
    assert row.id is not None
    problem = Problem(row.id, row.dedupe_key, final.status, final.attempts, final.last_error)
    report.problems = [*report.problems, problem][-PROBLEMS_KEPT:]
