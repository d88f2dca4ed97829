"""`resywatch run-forever`: every job on its interval until told to stop.

Each job has its own loop, so a slow or failing job never holds up another; a job that
fails backs off (its interval doubled per consecutive failure, up to 10 minutes) instead of
hammering Resy. Otherwise a job wakes when it is next due for every worker (the time the
last pass of any worker recorded), and a shared job (discovery) at the start of each cycle
on the clock, so several workers run a daily job once a day and join the same discovery
cycles; a little jitter keeps them from moving in lockstep. The first SIGTERM or
SIGINT stops new passes and lets running ones finish (cancelling them after a grace period,
so the process is gone within 8 s); a second signal cancels everything at once. Work a pass
runs in a thread cannot be cancelled, so the stop also sets `JobContext.stop`, which such
work watches (delivery abandons a send under way, unrecorded, and releases its rows). Leases
are released either way, so no job is left marked as running.

Delivery does not only wait for its timer: a commit of notifications in this process rings
its `Wake`, and on PostgreSQL so does a NOTIFY from another worker's commit (this worker
LISTENs when it runs delivery). A woken pass runs at once, due or not; rings coalesce, and
one that comes during a pass makes one more pass after it. The timer stays the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from resywatch.db.models import JobStatus
from resywatch.db.signals import listen_outbox
from resywatch.scheduler import lease
from resywatch.scheduler.jobs import HOT, Job, JobContext
from resywatch.scheduler.memory import Allocator
from resywatch.scheduler.runner import PassResult, run_job
from resywatch.scheduler.wake import Wake

GRACE = timedelta(seconds=6)  # leaves time to release leases inside docker's 10 s
MAX_BACKOFF = timedelta(minutes=10)
JITTER = 0.1


@dataclass
class Supervisor:
    ctx: JobContext
    jobs: Sequence[Job]
    owner: str
    on_pass: Callable[[PassResult], None]
    max_passes: int | None = None  # for tests and benchmarks: stop after this many passes
    # Rung when notifications are committed (None: the supervisor makes its own, on its loop).
    wake: Wake | None = None
    # Keeps the resident size flat across months of passes (None: this process's malloc).
    allocator: Allocator | None = None
    passes: int = 0
    signals: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _force: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self) -> int:
        """Run until stopped; the exit code (0 after a clean stop, 130 when forced)."""
        loop = asyncio.get_running_loop()
        if self.wake is None:
            self.wake = Wake(loop)
        if self.allocator is None:
            self.allocator = Allocator.of_this_process()
        self.allocator.limit_arenas()  # before the passes' worker threads allocate
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal)
        tasks = self._tasks = [asyncio.create_task(self._loop(job)) for job in self.jobs]
        listener = self._listen()
        try:
            with self.ctx.db.outbox.listening(self.wake.ring):
                await self._stop.wait()
                self.ctx.stop.set()  # reaches the passes' threads too (delivery's sends)
                await asyncio.wait(tasks, timeout=GRACE.total_seconds())  # let passes finish
        finally:
            self.ctx.stop.set()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if listener is not None:  # only a hint: whatever ended it must not fail the stop
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return 130 if self._force.is_set() else 0

    def _listen(self) -> asyncio.Task[None] | None:
        """On PostgreSQL, a worker running a job that wakes on notifications LISTENs for
        other workers' commits too (SQLite has no such signal between processes)."""
        if self.ctx.db.backend != "postgresql" or self.wake is None:
            return None
        if not any(job.wakes_on_outbox for job in self.jobs):
            return None
        signal = self.ctx.db.outbox
        return asyncio.create_task(
            listen_outbox(self.ctx.db.url, self.wake.ring, ignore=signal.source)
        )

    def stop(self) -> None:
        self._stop.set()

    def _on_signal(self) -> None:
        self.signals += 1
        self.ctx.stop.set()
        if self.signals > 1:  # the second signal: no more waiting
            self._force.set()
            for task in self._tasks:
                task.cancel()
        self._stop.set()

    async def _loop(self, job: Job) -> None:
        failures = 0
        woken = False
        wake = self.wake if job.wakes_on_outbox else None
        while not self._stop.is_set():
            began = self.ctx.clock.now()
            if wake is not None:
                wake.clear()  # rings from here on make one more pass after this one
            try:
                # Woken: notifications are waiting, so run now, due or not.
                result = await run_job(job, self.ctx, owner=self.owner, due_only=not woken)
            except asyncio.CancelledError:  # stopped mid-pass; run_job released the lease
                self.on_pass(PassResult(job.name, JobStatus.INTERRUPTED))
                raise
            self.on_pass(result)
            if self.allocator is not None:
                self.allocator.release()  # what the pass freed goes back to the system
            self.passes += 1
            if self.max_passes is not None and self.passes >= self.max_passes:
                self._stop.set()
            failures = failures + 1 if result.failed else 0
            # A failing job keeps its backoff: a ring does not cut it short.
            delay = self._delay(job, failures, began, hot=result.counts.get(HOT, 0) > 0)
            woken = await self._sleep(delay, None if failures else wake)

    def _delay(self, job: Job, failures: int, began: datetime, *, hot: bool = False) -> float:
        interval = job.interval(self.ctx.settings).total_seconds()
        jitter = random.uniform(0, JITTER)
        if failures:
            backoff = min(interval * 2.0**failures, max(MAX_BACKOFF.total_seconds(), interval))
            return backoff * (1 + jitter)
        now = self.ctx.clock.now()
        if job.shared and hot and job.parts:  # its hot work is due at the next part
            step = interval / max(job.parts(self.ctx.settings), 1)
            return (job.next_pass_at(now, self.ctx.settings) - now).total_seconds() + step * jitter
        if job.shared:  # its next cycle: always ahead
            return (
                job.next_run_at(now, self.ctx.settings) - now
            ).total_seconds() + interval * jitter
        # Whichever worker ran the job last set its next run for all of them. Never spin: a
        # job another worker is running stays due until that pass finishes.
        beat = lease.heartbeats(self.ctx.db).get(job.name)
        due = beat.next_run_at if beat and beat.next_run_at else now
        return max((due - now).total_seconds(), min(1.0, interval)) + interval * jitter

    async def _sleep(self, seconds: float, wake: Wake | None = None) -> bool:
        """Sleep `seconds` of the jobs' clock (the delays are reckoned on it, so a sped-up
        clock must also shorten the waits), but wake up at once when asked to stop or when
        `wake` rings (then True)."""
        waits: list[asyncio.Future[object]] = [
            asyncio.ensure_future(self.ctx.clock.sleep(seconds)),
            asyncio.ensure_future(self._stop.wait()),
        ]
        if wake is not None:
            waits.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return wake is not None and wake.rung and not self._stop.is_set()
