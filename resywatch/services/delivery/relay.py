"""Outbox delivery: pending notifications to every channel, at least once and, in practice,
exactly once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from resywatch.clock import SYSTEM_CLOCK, Clock
from resywatch.db import leases
from resywatch.services.channels.base import Channel
from resywatch.services.delivery.claims import batch_token, claim_batch
from resywatch.services.delivery.policy import DeliveryPolicy, DeliveryReport
from resywatch.services.delivery.sending import Pass, deliver_batch

if TYPE_CHECKING:
    from resywatch.db.engine import Database

BATCH_SIZE = 50


def deliver(
    db: Database,
    channels: Sequence[Channel],
    *,
    policy: DeliveryPolicy | None = None,
    clock: Clock = SYSTEM_CLOCK,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    worker: str | None = None,
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Deliver due notifications, batch after batch, until none is left (or `limit` rows
    were handled, or `stop` is set: the rows not started yet are released at once).

    `clock` dates the claims, sends and retries; the channels' deadlines are wall time
    (a send is a real request, however the clock is moved)."""
    if not channels:
        raise ValueError("deliver needs at least one channel")
    policy = policy or DeliveryPolicy()
    worker = worker or leases.this_process()
    started = time.monotonic()
    report = DeliveryReport()
    run = Pass(db, channels, policy, clock, rng or random.Random(), report, stop)
    busy: set[int] = set()
    handled: set[int] = set()
    while limit is None or report.processed < limit:
        if stop is not None and stop.is_set():
            break
        size = batch_size if limit is None else min(batch_size, limit - report.processed)
        token = batch_token(worker)
        claim = claim_batch(db, size, token, clock.now(), timedelta(seconds=policy.lease_s))
        busy |= claim.busy
        if not claim.rows:
            break
        report.batches += 1
        handled.update(row.id for row in claim.rows if row.id is not None)
        deliver_batch(run, claim)
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
    clock: Clock = SYSTEM_CLOCK,
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
            db, channels, policy=policy, clock=clock, limit=budget, batch_size=batch_size, stop=stop
        )
        total.add(report)
        left = None if duration_s is None else duration_s - (time.monotonic() - started)
        if left is not None and left <= 0:
            break
        if report.batches == 0:
            stop.wait(interval_s if left is None else min(interval_s, left))
    total.duration_s = time.monotonic() - started
    return total
