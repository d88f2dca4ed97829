"""Outbox delivery: pending notifications to every channel, at least once and, in practice,
exactly once.

Claiming. A relay claims a batch of due rows in one write transaction: it selects them
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent relays take different rows; on SQLite
the transaction is BEGIN IMMEDIATE, so claimers take turns), then sets a lease with an UPDATE
that repeats the "due and free" condition (`claimed_by` = a token unique to this batch,
`claimed_until`), and reads back only the rows carrying its token. A row is therefore held by
one relay at a time, and a relay that dies leaves its rows claimable once the lease expires
(at once, when it was killed on this machine).

Sending. Each notification goes to each configured channel that does not have it yet
(`notification_delivery`: channels marked sent, or failed for good, are skipped). The
channels work through a batch side by side, each one send at a time with its own deadline
(`[notify] timeout_s`, over the whole send), so a slow or silent channel delays only itself;
one that misses a deadline is not tried again in that pass (its rows wait for their retry).
Every send is recorded in its own transaction as soon as it ends, before that channel's
next send. That transaction writes the row only `WHERE claimed_by = <token>` and checks the
count (a fence: a relay that lost its lease writes nothing and stops), and renews the
batch's lease once half of it has gone. So a crash between a send and its record re-sends
exactly that message to that channel (at most one per channel), once the lease expires (or
at once, when the relay could still release its batch or was killed on this machine);
receivers can drop it by `dedupe_key` (webhooks also get it as `Idempotency-Key`). On
`stop` the sends under way are abandoned unrecorded and the unsettled rows released, so a
hung channel cannot keep a relay from stopping; the abandoned sends come again later.

Retrying. Each channel's state is its own `notification_delivery` row (status, attempts,
last error): a channel that has a notification is never sent it again because another
channel failed. The retry schedule is the notification's: a transient failure on any
channel reschedules the row (`next_attempt_at`) with an exponential, jittered delay, and the
next round sends only to the channels still missing it; after `max_attempts` rounds, or
once every channel still missing it has refused for good (an HTTP 4xx), the row is `failed`
with its `last_error`. A channel skipped for being down counts no attempt of its own.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import and_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from resywatch.db import leases
from resywatch.db.base import utcnow
from resywatch.db.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationStatus,
)
from resywatch.services.channels.base import (
    STOP_POLL_S,
    Channel,
    DeadlineMissed,
    Message,
    SendError,
    send_error,
    start_send,
)

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

    from resywatch.config import Settings
    from resywatch.db.engine import Database

BATCH_SIZE = 50
PROBLEMS_KEPT = 50  # the report lists at most this many failed or retried rows
_ERROR_LIMIT = 1000

State = Literal["sent", "transient", "permanent"]
#: A channel's row after a send that ended so.
_DELIVERY_STATUS: dict[State, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "permanent": DeliveryStatus.FAILED,
    "transient": DeliveryStatus.PENDING,
}


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard to try: rounds per notification, the retry delays, the claim lease."""

    max_attempts: int = 8
    retry_base_s: float = 15.0
    retry_max_s: float = 900.0
    # Renewed after every send, so it only has to outlast one send (HTTP deadline included).
    lease_s: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            max_attempts=settings.notify_max_attempts,
            retry_base_s=settings.notify_retry_base_s,
            retry_max_s=settings.notify_retry_max_s,
            lease_s=max(120.0, 4 * settings.notify_timeout_s),
        )

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        """The wait after `attempts` failed rounds: base x 2^(attempts-1), capped, then
        jittered into its upper half so relays that failed together do not retry together."""
        window = min(self.retry_max_s, self.retry_base_s * 2.0 ** min(attempts - 1, 60))
        return timedelta(seconds=window / 2 + rng.uniform(0, window / 2))


@dataclass(frozen=True)
class Problem:
    """A notification that failed this run: retried later (`pending`) or given up (`failed`)."""

    id: int
    dedupe_key: str
    status: NotificationStatus
    attempts: int
    error: str | None

    @property
    def will_retry(self) -> bool:
        return self.status == NotificationStatus.PENDING


@dataclass
class DeliveryReport:
    """What one run did. `skipped`: due rows that another relay held (leased)."""

    sent: int = 0  # notifications now on every channel
    failed: int = 0  # given up: permanent refusal or out of attempts
    retried: int = 0  # failed transiently, rescheduled
    skipped: int = 0
    deliveries: int = 0  # successful sends to one channel
    batches: int = 0
    duration_s: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.sent + self.failed + self.retried

    def add(self, other: DeliveryReport) -> None:
        """Fold in another pass (a loop): counts add up; skipped is the most seen at once."""
        self.sent += other.sent
        self.failed += other.failed
        self.retried += other.retried
        self.skipped = max(self.skipped, other.skipped)
        self.deliveries += other.deliveries
        self.batches += other.batches
        self.problems = (self.problems + other.problems)[-PROBLEMS_KEPT:]


@dataclass(frozen=True)
class _Outcome:
    state: State
    error: str | None = None
    tried: bool = True  # False: skipped, the channel being down (no attempt is counted)


@dataclass(frozen=True)
class _Final:
    status: NotificationStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None


@dataclass
class _Claim:
    token: str
    rows: list[Notification]
    deliveries: dict[int, dict[str, NotificationDelivery]]
    busy: set[int]
    renewed_at: datetime  # when the batch's lease was last set
    held: list[int] = field(default_factory=list)  # ids still under this claim's lease


class _LeaseLost(Exception):
    """Another relay took over the batch's rows (our lease had expired)."""


def deliver(
    db: Database,
    channels: Sequence[Channel],
    *,
    policy: DeliveryPolicy | None = None,
    now: Callable[[], datetime] = utcnow,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    worker: str | None = None,
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Deliver due notifications, batch after batch, until none is left (or `limit` rows
    were handled, or `stop` is set: the rows not started yet are released at once)."""
    if not channels:
        raise ValueError("deliver needs at least one channel")
    policy = policy or DeliveryPolicy()
    rng = rng or random.Random()
    worker = worker or leases.this_process()
    started = time.monotonic()
    report = DeliveryReport()
    busy: set[int] = set()
    handled: set[int] = set()
    down: dict[str, str] = {}  # channel key -> the deadline it missed in this pass
    while limit is None or report.processed < limit:
        if stop is not None and stop.is_set():
            break
        size = batch_size if limit is None else min(batch_size, limit - report.processed)
        token = batch_token(worker)
        claim = _claim(db, size, token, now(), timedelta(seconds=policy.lease_s))
        busy |= claim.busy
        if not claim.rows:
            break
        report.batches += 1
        handled.update(row.id for row in claim.rows if row.id is not None)
        _deliver_batch(db, channels, claim, policy, now, rng, stop, report, down)
    report.skipped = len(busy - handled)
    report.duration_s = time.monotonic() - started
    return report


def run_loop(
    db: Database,
    channels: Sequence[Channel],
    *,
    interval_s: float = 1.0,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    limit: int | None = None,
    policy: DeliveryPolicy | None = None,
    now: Callable[[], datetime] = utcnow,
    batch_size: int = BATCH_SIZE,
) -> DeliveryReport:
    """`deliver` again and again: at once while there is work, else every `interval_s`,
    until `stop` is set, `duration_s` has passed or `limit` rows were handled."""
    stop = stop or threading.Event()
    started = time.monotonic()
    total = DeliveryReport()
    while not stop.is_set():
        budget = None if limit is None else limit - total.processed
        if budget is not None and budget <= 0:
            break
        report = deliver(
            db, channels, policy=policy, now=now, limit=budget, batch_size=batch_size, stop=stop
        )
        total.add(report)
        left = None if duration_s is None else duration_s - (time.monotonic() - started)
        if left is not None and left <= 0:
            break
        if report.batches == 0:
            stop.wait(interval_s if left is None else min(interval_s, left))
    total.duration_s = time.monotonic() - started
    return total


# --- claiming ------------------------------------------------------------------------------


def _due(at: datetime) -> ColumnElement[bool]:
    due = col(Notification.next_attempt_at) <= at
    return and_(col(Notification.status) == NotificationStatus.PENDING, due)


def batch_token(worker: str) -> str:
    """A batch's name, the lease holder of its rows: the worker's name (a whole one fits the
    64 characters of `claimed_by`) and a suffix of its own, so the fence tells apart two
    batches of one process."""
    return f"{worker[:51]}:{secrets.token_hex(6)}"


_LEASES = leases.LeaseColumns(
    Notification.__table__,  # type: ignore[attr-defined]
    key="id",
    owner="claimed_by",
    until="claimed_until",
)


def _claim(db: Database, size: int, token: str, at: datetime, lease: timedelta) -> _Claim:
    """Lease up to `size` due rows to `token`, oldest first, in one write transaction."""
    rows: list[Notification] = []
    deliveries: dict[int, dict[str, NotificationDelivery]] = {}
    busy: set[int] = set()
    oldest_first = (col(Notification.next_attempt_at), col(Notification.id))
    with db.write() as session:
        # Rows of relays killed on this machine need not wait out the lease; the fence on
        # recording keeps a dead relay out anyway.
        dead = leases.dead_holders(session, _LEASES, at)
        taken = leases.claim(
            session,
            _LEASES,
            where=and_(_due(at), leases.free(_LEASES, at, dead)),
            owner=token,
            values={"claimed_until": at + lease},
            order_by=oldest_first,
            limit=size,
        )
        ids = [lease.key for lease in taken]
        if ids:
            rows = list(
                session.exec(
                    select(Notification)
                    .where(col(Notification.id).in_(ids))
                    .order_by(*oldest_first)
                )
            )
            for delivery in session.exec(
                select(NotificationDelivery).where(
                    col(NotificationDelivery.notification_id).in_(ids)
                )
            ):
                deliveries.setdefault(delivery.notification_id, {})[delivery.channel] = delivery
        if len(ids) < size:  # the free rows ran out: count the ones others hold
            held_by_others = (
                select(Notification.id)
                .where(_due(at), col(Notification.claimed_until) > at)
                .where(col(Notification.claimed_by) != token)
                .limit(10_000)
            )
            busy = {i for i in session.exec(held_by_others) if i is not None}
    claim = _Claim(token, rows, deliveries, busy, renewed_at=at)
    claim.held = [row.id for row in rows if row.id is not None]
    return claim


def _held(claim: _Claim, notification_id: int) -> leases.Lease:
    return leases.Lease(notification_id, claim.token)


def _release(db: Database, claim: _Claim) -> None:
    """Give back the rows not started (stop or error): claimable again at once."""
    with contextlib.suppress(SQLAlchemyError), db.write() as session:  # else the lease expires
        leases.release(session, _LEASES, [_held(claim, i) for i in claim.held])


# --- sending -------------------------------------------------------------------------------


@dataclass
class _Flight:
    """A send under way: one row to one channel, due back by `deadline` (time.monotonic)."""

    channel: Channel
    state: _Row
    future: Future[None]
    deadline: float


@dataclass
class _Row:
    """One row of the batch in this round: the channels still owing it, and the outcomes
    that are not written yet (skips are written with the row's final state)."""

    row: Notification
    waiting: set[str]
    outcomes: dict[str, _Outcome] = field(default_factory=dict)
    unrecorded: list[tuple[Channel, _Outcome]] = field(default_factory=list)


class _Batch:
    """The rows of one claim, sent to every channel at once.

    Each channel goes through the batch in order on its own, one send at a time, each send
    in its own thread with the channel's deadline, so a slow or silent channel holds up only
    itself. A channel that misses a deadline is `down` for the rest of the pass: its other
    rows are not tried (they are retried with the row's backoff), so one dead webhook costs
    one deadline per pass, not one per notification. A send is recorded as soon as it ends,
    before that channel's next send, so a crash repeats at most one send per channel; the
    row's final state is written with the last of its channels."""

    def __init__(
        self,
        db: Database,
        channels: Sequence[Channel],
        claim: _Claim,
        policy: DeliveryPolicy,
        now: Callable[[], datetime],
        rng: random.Random,
        report: DeliveryReport,
        down: dict[str, str],
    ) -> None:
        self.db, self.channels, self.claim, self.policy = db, channels, claim, policy
        self.now, self.rng, self.report, self.down = now, rng, report, down
        self.lease = timedelta(seconds=policy.lease_s)
        self.queues: dict[str, deque[_Row]] = {c.key: deque() for c in channels}
        self.flights: dict[str, _Flight] = {}
        self.rows: list[_Row] = []
        for row in claim.rows:
            assert row.id is not None
            done = claim.deliveries.get(row.id, {})
            todo = [
                c
                for c in channels
                if c.key not in done or done[c.key].status == DeliveryStatus.PENDING
            ]
            state = _Row(row, {c.key for c in todo})
            self.rows.append(state)
            for channel in todo:
                self.queues[channel.key].append(state)

    def run(self, stop: threading.Event | None) -> None:
        """Until every row is settled, the lease is lost or `stop` is set (then the sends
        under way are abandoned unrecorded, and their rows are released with the rest)."""
        for state in self.rows:
            if not state.waiting and not self._settle(state):  # nothing left to send
                return
        while True:
            if stop is not None and stop.is_set():
                self._land(time.monotonic(), only_finished=True)
                return
            for channel in self.channels:
                if channel.key not in self.flights and not self._start(channel):
                    return
            if not self.flights:
                return
            soonest = min(flight.deadline for flight in self.flights.values())
            wait(
                [flight.future for flight in self.flights.values()],
                timeout=min(max(0.0, soonest - time.monotonic()), STOP_POLL_S),
                return_when=FIRST_COMPLETED,
            )
            if not self._land(time.monotonic()):
                return

    def _start(self, channel: Channel) -> bool:
        """Start the channel's next send; while the channel is down, skip its rows instead.
        False when the lease is lost."""
        queue = self.queues[channel.key]
        while queue:
            state = queue.popleft()
            if channel.key not in self.down:
                future = start_send(channel, Message.from_row(state.row), self.now())
                deadline = time.monotonic() + channel.timeout_s
                self.flights[channel.key] = _Flight(channel, state, future, deadline)
                return True
            reason = f"not tried: {self.down[channel.key]} earlier in this pass"
            skipped = _Outcome("transient", channel.describe(SendError(reason)), tried=False)
            if not self._finish(channel, state, skipped):
                return False
        return True

    def _land(self, at: float, *, only_finished: bool = False) -> bool:
        """Handle the sends that ended or missed their deadline; False when the lease is
        lost."""
        for key, flight in list(self.flights.items()):
            if flight.future.done():
                error = send_error(flight.future)  # the channel may have timed itself out
            elif at >= flight.deadline and not only_finished:
                error = flight.channel.missed()
            else:
                continue
            if isinstance(error, DeadlineMissed):
                self.down[key] = str(error)
            del self.flights[key]
            outcome = _outcome(flight.channel, error)
            self.report.deliveries += outcome.state == "sent"
            if not self._finish(flight.channel, flight.state, outcome):
                return False
        return True

    def _finish(self, channel: Channel, state: _Row, outcome: _Outcome) -> bool:
        state.outcomes[channel.key] = outcome
        state.waiting.discard(channel.key)
        state.unrecorded.append((channel, outcome))
        if not state.waiting:
            return self._settle(state)
        if not outcome.tried:
            return True  # nothing happened outside: written with the row's final state
        return self._write(state, None)

    def _settle(self, state: _Row) -> bool:
        row = state.row
        assert row.id is not None
        done = self.claim.deliveries.get(row.id, {})
        final = _settle(row, self.channels, done, state.outcomes, self.policy, self.now(), self.rng)
        if not self._write(state, final):
            return False
        self.claim.held.remove(row.id)
        _tally(self.report, row, final)
        return True

    def _write(self, state: _Row, final: _Final | None) -> bool:
        assert state.row.id is not None
        sends, state.unrecorded = state.unrecorded, []
        if _record(self.db, self.claim, state.row.id, sends, final, self.now(), self.lease):
            return True
        self.claim.held = []  # lease lost: the rows are someone else's now
        return False


def _deliver_batch(
    db: Database,
    channels: Sequence[Channel],
    claim: _Claim,
    policy: DeliveryPolicy,
    now: Callable[[], datetime],
    rng: random.Random,
    stop: threading.Event | None,
    report: DeliveryReport,
    down: dict[str, str],
) -> None:
    try:
        _Batch(db, channels, claim, policy, now, rng, report, down).run(stop)
    finally:
        if claim.held:
            _release(db, claim)


def _outcome(channel: Channel, error: SendError | None) -> _Outcome:
    if error is None:
        return _Outcome("sent")
    return _Outcome("permanent" if error.permanent else "transient", channel.describe(error))


def _settle(
    row: Notification,
    channels: Sequence[Channel],
    done: dict[str, NotificationDelivery],
    outcomes: dict[str, _Outcome],
    policy: DeliveryPolicy,
    at: datetime,
    rng: random.Random,
) -> _Final:
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
        return _Final(NotificationStatus.SENT, attempts, last_error, row.next_attempt_at, at)
    if "transient" in states and attempts < policy.max_attempts:
        retry_at = at + policy.delay(attempts, rng)
        return _Final(NotificationStatus.PENDING, attempts, last_error, retry_at, None)
    return _Final(NotificationStatus.FAILED, attempts, last_error, row.next_attempt_at, None)


def _record(
    db: Database,
    claim: _Claim,
    notification_id: int,
    sends: list[tuple[Channel, _Outcome]],
    final: _Final | None,
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
            if not leases.fence(session, _LEASES, _held(claim, notification_id), **values):
                raise _LeaseLost
            others = [_held(claim, i) for i in claim.held if i != notification_id]
            if renew and leases.renew(session, _LEASES, others, claimed_until=at + lease):
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
    outcome: _Outcome,
    done: dict[str, NotificationDelivery],
    final: _Final | None,
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


def _final_values(final: _Final) -> dict[str, object]:
    return {
        "status": final.status,
        "attempts": final.attempts,
        "last_error": final.last_error,
        "next_attempt_at": final.next_attempt_at,
        "sent_at": final.sent_at,
        "claimed_by": None,
        "claimed_until": None,
    }


def _tally(report: DeliveryReport, row: Notification, final: _Final) -> None:
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
