"""Sending. Each notification goes to each configured channel that does not have it yet
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
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from resywatch.clock import Clock
from resywatch.db.models import DeliveryStatus, Notification
from resywatch.services.channels.base import (
    STOP_POLL_S,
    Channel,
    DeadlineMissed,
    Message,
    SendError,
    send_error,
    start_send,
)
from resywatch.services.delivery import records
from resywatch.services.delivery.claims import Claim, release
from resywatch.services.delivery.policy import DeliveryPolicy, DeliveryReport
from resywatch.services.delivery.records import Final, Outcome, outcome_of, settle, tally

if TYPE_CHECKING:
    from resywatch.db.engine import Database


@dataclass
class Pass:
    """What every batch of one `deliver` call shares."""

    db: Database
    channels: Sequence[Channel]
    policy: DeliveryPolicy
    clock: Clock
    rng: random.Random
    report: DeliveryReport
    stop: threading.Event | None = None
    #: Channel key -> the deadline it missed in this pass (its other rows wait for a retry).
    down: dict[str, str] = field(default_factory=dict)


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
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    unrecorded: list[tuple[Channel, Outcome]] = field(default_factory=list)


class Batch:
    """The rows of one claim, sent to every channel at once.

    Each channel goes through the batch in order on its own, one send at a time, each send
    in its own thread with the channel's deadline, so a slow or silent channel holds up only
    itself. A channel that misses a deadline is `down` for the rest of the pass: its other
    rows are not tried (they are retried with the row's backoff), so one dead webhook costs
    one deadline per pass, not one per notification. A send is recorded as soon as it ends,
    before that channel's next send, so a crash repeats at most one send per channel; the
    row's final state is written with the last of its channels."""

    def __init__(self, run: Pass, claim: Claim) -> None:
        self.db, self.channels, self.claim, self.policy = run.db, run.channels, claim, run.policy
        self.clock, self.rng, self.report, self.down = run.clock, run.rng, run.report, run.down
        self.lease = timedelta(seconds=run.policy.lease_s)
        channels = run.channels
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
                future = start_send(channel, Message.from_row(state.row), self.clock.now())
                deadline = time.monotonic() + channel.timeout_s
                self.flights[channel.key] = _Flight(channel, state, future, deadline)
                return True
            reason = f"not tried: {self.down[channel.key]} earlier in this pass"
            skipped = Outcome("transient", channel.describe(SendError(reason)), tried=False)
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
            outcome = outcome_of(flight.channel, error)
            self.report.deliveries += outcome.state == "sent"
            if not self._finish(flight.channel, flight.state, outcome):
                return False
        return True

    def _finish(self, channel: Channel, state: _Row, outcome: Outcome) -> bool:
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
        now = self.clock.now()
        final = settle(row, self.channels, done, state.outcomes, self.policy, now, self.rng)
        if not self._write(state, final):
            return False
        self.claim.held.remove(row.id)
        tally(self.report, row, final)
        return True

    def _write(self, state: _Row, final: Final | None) -> bool:
        assert state.row.id is not None
        sends, state.unrecorded = state.unrecorded, []
        now = self.clock.now()
        if records.record(self.db, self.claim, state.row.id, sends, final, now, self.lease):
            return True
        self.claim.held = []  # lease lost: the rows are someone else's now
        return False


def deliver_batch(run: Pass, claim: Claim) -> None:
    """Send one claimed batch; whatever it leaves unsettled is released (claimable again)."""
    try:
        Batch(run, claim).run(run.stop)
    finally:
        if claim.held:
            release(run.db, claim)
