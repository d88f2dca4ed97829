"""One discovery pass (`discover scan`, the discovery job): sync the window, then lease,
scan and apply buckets a few at a time until none is left for this worker.

Leasing as it goes, rather than all at once, is what spreads one cycle over several
workers: each takes the next free buckets as soon as it has room. The asking is `fetch`'s,
the recording (the C − (P ∪ B) rule) `apply`'s, the leases `claims`'.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from resywatch.config import Settings
from resywatch.errors import InvalidInput, ResywatchError
from resywatch.redact import redact_text
from resywatch.runtime import Runtime
from resywatch.services.curated import HotspotMatcher
from resywatch.services.discovery import buckets as bucket_rules
from resywatch.services.discovery import claims, hot
from resywatch.services.discovery.apply import LOST, BucketOutcome, apply_scan, sync_window
from resywatch.services.discovery.buckets import Bucket
from resywatch.services.discovery.fetch import BucketScan, fetch_bucket


@dataclass
class PassSummary:
    buckets_scanned: int = 0
    buckets_failed: int = 0
    buckets_baselined: int = 0
    buckets_skipped: int = 0  # leased by another worker, or already scanned this cycle
    buckets_claimed: int = 0
    buckets_stale: int = 0  # scans refused because their lease was taken over
    buckets_pruned: int = 0
    buckets_hot: int = 0  # due at every part of the cycle (recent drops)
    slots_seen: int = 0
    drops_opened: int = 0
    drops_reopened: int = 0
    drops_closed: int = 0
    requests: int = 0
    duration_s: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)


async def run_pass(
    rt: Runtime,
    *,
    matcher: HotspotMatcher | None = None,
    only: Iterable[str] = (),
    due_only: bool = False,
    rebaseline: bool = False,
    on_bucket: Callable[[BucketOutcome], None] | None = None,
) -> PassSummary:
    """Sync the window, then lease (as `rt.worker`), scan and apply buckets: all, the named
    ones, or (`due_only`) those not yet scanned this cycle. Drops are flagged as hotspots by
    `matcher` (the curated list by default)."""
    started = rt.clock.now()
    summary = PassSummary()
    wanted = bucket_rules.window(rt.settings, started)
    summary.buckets_pruned = sync_window(rt.db, wanted, started)
    chosen = _candidates(wanted, list(only))
    # Counted, not measured by the log's length: other jobs' passes drain the log meanwhile.
    made_before = rt.resy.calls.made
    work = _Pass(
        rt,
        matcher or HotspotMatcher.default(),
        chosen,
        summary,
        started=started,
        due_only=due_only,
        rebaseline=rebaseline,
        on_bucket=on_bucket,
    )
    with fewer_collections():
        await work.run()
    summary.buckets_hot = len(work.cycle.hot)
    summary.buckets_skipped = len(work.buckets) - summary.buckets_claimed
    summary.slots_seen = len(work.slots_seen)
    summary.requests = rt.resy.calls.made - made_before
    summary.duration_s = round((rt.clock.now() - started).total_seconds(), 3)
    return summary


# A pass builds a few hundred thousand objects that live until it ends (pages, slots,
# scans). At the interpreter's default, a collection every 700 of them, the collector walks
# them again and again to find nothing to free: a quarter of a dense pass's CPU. While a
# pass runs, it collects every PASS_GC_THRESHOLD instead (young garbage waits a little).
PASS_GC_THRESHOLD = 50_000


class _Collector:
    """The collector's first threshold, raised while any pass runs in this process (the
    threshold is the process's: passes in several tasks or threads share one hold, and the
    last to end puts back what it was)."""

    lock = threading.Lock()
    holders = 0
    saved = 0


@contextmanager
def fewer_collections(threshold: int = PASS_GC_THRESHOLD) -> Iterator[None]:
    with _Collector.lock:
        if _Collector.holders == 0:
            first, *rest = gc.get_threshold()
            _Collector.saved = first
            gc.set_threshold(max(first, threshold), *rest)
        _Collector.holders += 1
    try:
        yield
    finally:
        with _Collector.lock:
            _Collector.holders -= 1
            if _Collector.holders == 0:
                gc.set_threshold(_Collector.saved, *gc.get_threshold()[1:])


class _Pass:
    """One pass's moving parts: the buckets not yet claimed, the scans in flight with their
    leases, and what the applied scans saw."""

    def __init__(
        self,
        rt: Runtime,
        matcher: HotspotMatcher,
        chosen: list[Bucket],
        summary: PassSummary,
        *,
        started: datetime,
        due_only: bool,
        rebaseline: bool,
        on_bucket: Callable[[BucketOutcome], None] | None,
    ) -> None:
        settings = rt.settings
        self.rt, self.matcher, self.summary = rt, matcher, summary
        self.due_only, self.rebaseline, self.on_bucket = due_only, rebaseline, on_bucket
        self.buckets = {b.id: b for b in chosen}
        self.pending = list(self.buckets)  # not claimed yet, as far as this worker knows
        # Buckets with recent drops are due again at each part of the cycle.
        self.parts = settings.discovery_hot_factor
        with rt.db.read() as session:
            self.cycle = claims.Cycle(
                claims.cycle_of(started, settings.discovery_interval_s),
                set(hot.recent_drops(session, chosen, settings, started)),
                claims.cycle_of(started, settings.discovery_interval_s, self.parts),
            )
        self.ttl = timedelta(seconds=settings.jobs_lease_ttl_s)
        self.key = bucket_rules.search_key(settings)
        self.slots_seen: set[str] = set()
        self.venues_recorded: set[int] = set()
        self.running: dict[asyncio.Task[BucketScan], claims.BucketLease] = {}
        self.started = 0  # scans started: each one's requests go before the later ones'
        self.dead = claims.dead_holders(rt.db, started)  # killed workers of this machine

    async def run(self) -> None:
        renewer = asyncio.create_task(self._keep_renewing())
        try:
            while True:
                self._claim_more()
                if not self.running:
                    break
                done, _ = await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    self._collect(task)
        finally:
            renewer.cancel()
            if self.running:  # stopped or failed mid-pass: hand the buckets back to other workers
                for task in self.running:
                    task.cancel()
                claims.release(self.rt.db, self.running.values())

    def _claim_more(self) -> None:
        """Lease as many pending buckets as there is room for, and start scanning them."""
        settings = self.rt.settings
        room = settings.discovery_concurrency - len(self.running)
        if room <= 0 or not self.pending:
            return
        now = self.rt.clock.now()
        leases = claims.claim(
            self.rt.db,
            self.pending,
            owner=str(self.rt.worker),
            now=now,
            ttl=self.ttl,
            limit=room,
            cycle=self.cycle,
            due_only=self.due_only,
            stamp=claims.cycle_of(now, settings.discovery_interval_s, self.parts),
            dead=self.dead,
        )
        taken = {lease.bucket_id for lease in leases}
        # Fewer than asked for: the rest is leased elsewhere or done this cycle.
        self.pending = [b for b in self.pending if b not in taken] if len(leases) == room else []
        for lease in leases:
            self.started += 1
            task = asyncio.create_task(self._scan(self.buckets[lease.bucket_id], self.started))
            self.running[task] = lease
        self.summary.buckets_claimed += len(leases)

    async def _scan(self, bucket: Bucket, rank: int) -> BucketScan:
        """Scan one bucket, its requests queued behind those of the scans started before it:
        a bucket's pages then go together, and its drops are applied (and delivered) as soon
        as they can be, not when every scan in flight has had its later pages."""
        try:
            return await fetch_bucket(self.rt.resy.ranked(rank), bucket, self.rt.settings)
        except ResywatchError as exc:
            return BucketScan(bucket, error=str(exc))

    def _collect(self, task: asyncio.Task[BucketScan]) -> None:
        """Apply a finished scan (its lease stays in `running`, to be released if this
        fails), count it and report it."""
        lease = self.running[task]
        if task.cancelled():  # the renewer found the lease taken over
            outcome = BucketOutcome(lease.bucket_id, ok=False, stale=True, error=LOST)
        else:
            scan = task.result()
            fresh = {i: v for i, v in scan.venues.items() if i not in self.venues_recorded}
            outcome = apply_scan(
                self.rt.db,
                scan,
                self.key,
                self.matcher,
                self.rt.clock.now(),
                lease=lease,
                venues=fresh.values(),
                rebaseline=self.rebaseline,
                settings=self.rt.settings,
            )
            if not outcome.stale:
                self.venues_recorded.update(fresh)
                self.slots_seen.update(scan.slots)
        del self.running[task]
        _count(self.summary, outcome, self.rt.settings)
        if self.on_bucket:
            self.on_bucket(outcome)

    async def _keep_renewing(self) -> None:
        """Renew the leases of the scans in flight; stop a scan whose lease was lost (its
        result would be refused anyway, so it should not spend more Resy requests)."""
        while True:
            # asyncio's sleep, not the clock's: this paces real requests in flight, and a
            # manual clock's sleep would only move its time and spin.
            await asyncio.sleep(self.ttl.total_seconds() / 3)
            held = dict(self.running)
            lost = set(
                claims.renew(self.rt.db, held.values(), now=self.rt.clock.now(), ttl=self.ttl)
            )
            for task, lease in held.items():
                if lease.bucket_id in lost:
                    task.cancel()


def _candidates(wanted: list[Bucket], only: list[str]) -> list[Bucket]:
    if not only:
        return wanted
    by_id = {b.id: b for b in wanted}
    unknown = [name for name in only if bucket_rules.parse_bucket_id(name).id not in by_id]
    if unknown:
        raise InvalidInput(
            f"not a bucket of the current window: {', '.join(unknown)} "
            f"(the window is {wanted[0].id} to {wanted[-1].id})"
        )
    return [by_id[bucket_rules.parse_bucket_id(name).id] for name in dict.fromkeys(only)]


def _count(summary: PassSummary, outcome: BucketOutcome, settings: Settings) -> None:
    if outcome.stale:
        summary.buckets_stale += 1
        return
    if not outcome.ok:
        summary.buckets_failed += 1
        summary.errors[outcome.bucket_id] = redact_text(outcome.error or "", settings.secrets())
        return
    summary.buckets_scanned += 1
    summary.buckets_baselined += outcome.baselined
    summary.drops_opened += outcome.opened
    summary.drops_reopened += outcome.reopened
    summary.drops_closed += outcome.closed
