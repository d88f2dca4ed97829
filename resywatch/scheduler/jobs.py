"""The job registry: every scheduled job, its interval and the service it runs.

`resywatch run JOB`, `run due` and `run-forever` all call these same functions; only the
loop around them differs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING

from resywatch.accounts import TokenStore
from resywatch.clock import Clock
from resywatch.config import Settings

if TYPE_CHECKING:
    # Types only: `run due` reads the job names to find nothing due, without the client.
    from resywatch.db.engine import Database
    from resywatch.resy.client import ResyClient
    from resywatch.runtime import Runtime
    from resywatch.services.health import JobSchedule


@dataclass(frozen=True)
class JobContext:
    """What a job pass may use: the Runtime's parts, and where notifications go."""

    db: Database
    resy: ResyClient
    settings: Settings
    # The jobs' time: a pass under a test's or the demo's clock runs on that time.
    clock: Clock
    # Where notifications go when no channel is configured (stdout, unless stdout is
    # reserved for a --json document).
    default_stream: IO[str] | None = None
    # Set when the process is stopping: work a job runs in a thread (which cancelling its
    # task cannot reach) watches it and returns early.
    stop: threading.Event = field(default_factory=threading.Event)
    # Every account's tokens, read fresh each pass (None: as the settings hold them).
    tokens: TokenStore | None = None

    def secrets(self) -> list[str]:
        """What a pass's error must never show (tokens refreshed since the start too)."""
        return self.runtime().secrets()

    def runtime(self) -> Runtime:
        """What a service is handed first, read off this context (this process's worker)."""
        from resywatch.runtime import Runtime

        return Runtime(
            self.settings, self.db, self.resy, self.clock, stop=self.stop, tokens=self.tokens
        )


JobFunction = Callable[[JobContext], Awaitable[dict[str, int]]]


@dataclass(frozen=True)
class Job:
    name: str
    run: JobFunction
    interval: Callable[[Settings], timedelta]
    # Shared: every worker's pass takes part, the work being split by leases on the job's
    # own rows (discovery's buckets), one cycle per interval on the clock. The job lease then
    # only says which pass keeps the heartbeat; a pass that found nothing to claim (its
    # counts say CLAIMED: 0) is a skip.
    shared: bool = False
    # The counts of a pass that say it did some of the job's work: `health` warns when the
    # passes report ok with all of these at 0 while work stays due.
    work: tuple[str, ...] = ()
    # Woken at once by committed notifications (delivery), not only by its timer.
    wakes_on_outbox: bool = False
    # A shared job's cycle cut into this many parts, some of its work being due at each
    # (discovery's hot buckets): while its passes report such work (a HOT count above 0),
    # the supervisor runs a pass at every part, else once a cycle.
    parts: Callable[[Settings], int] | None = None

    def next_run_at(self, started: datetime, settings: Settings) -> datetime:
        """When the pass after one started at `started` is due: a shared job's next cycle
        starts on the clock; any other job's one interval after this pass started."""
        interval = self.interval(settings)
        if not self.shared:
            return started + interval
        seconds = interval.total_seconds()
        return datetime.fromtimestamp((started.timestamp() // seconds + 1) * seconds, UTC)

    def next_pass_at(self, now: datetime, settings: Settings) -> datetime:
        """When the supervisor runs this job next: the next part of a shared job's cycle
        when it has parts, else `next_run_at`."""
        parts = self.parts(settings) if self.parts else 1
        if not self.shared or parts <= 1:
            return self.next_run_at(now, settings)
        seconds = self.interval(settings).total_seconds()
        cycle = now.timestamp() // seconds * seconds
        part = (now.timestamp() - cycle) // (seconds / parts) + 1
        later = cycle + seconds if part >= parts else cycle + part * seconds / parts
        return datetime.fromtimestamp(later, UTC)


CLAIMED = "claimed"  # the count a shared job's pass reports for the work it took
HOT = "hot"  # the count of its work due at every part of the cycle


async def _discovery(ctx: JobContext) -> dict[str, int]:
    from resywatch.services.discovery.scan import run_pass

    summary = await run_pass(ctx.runtime(), due_only=True)
    return {
        CLAIMED: summary.buckets_claimed,
        "buckets": summary.buckets_scanned,
        "failed": summary.buckets_failed,
        "drops_opened": summary.drops_opened,
        "drops_closed": summary.drops_closed,
        "stale": summary.buckets_stale,
        "requests": summary.requests,
        HOT: summary.buckets_hot,
    }


async def _watches(ctx: JobContext) -> dict[str, int]:
    from resywatch.services.watches import check_watches

    results = await check_watches(ctx.runtime(), due_only=True)
    return {
        "checked": len(results),
        "hits": sum(len(r.hits) for r in results),
        "errors": sum(1 for r in results if r.error),
    }


async def _notify(ctx: JobContext) -> dict[str, int]:
    from resywatch.db.models import RequestStatus
    from resywatch.services.notify_requests import check_requests

    results = await check_requests(ctx.runtime())
    return {
        "checked": len(results),
        "satisfied": sum(1 for r in results if r.status == RequestStatus.SATISFIED),
        "errors": sum(1 for r in results if r.error),
    }


async def _delivery(ctx: JobContext) -> dict[str, int]:
    from resywatch.services.channels.registry import channels_from_settings
    from resywatch.services.delivery.policy import DeliveryPolicy
    from resywatch.services.delivery.relay import deliver

    channels = channels_from_settings(ctx.settings, stdout=ctx.default_stream)
    try:
        # The relay blocks (database and HTTP sends): keep the supervisor's loop free. It
        # watches `stop`, so a hung channel cannot keep the thread (and the process) alive.
        report = await asyncio.to_thread(
            deliver,
            ctx.db,
            list(channels),
            policy=DeliveryPolicy.from_settings(ctx.settings),
            clock=ctx.clock,
            stop=ctx.stop,
        )
    finally:
        channels.close()
    return {
        "sent": report.sent,
        "failed": report.failed,
        "retried": report.retried,
        "skipped": report.skipped,
    }


async def _snipes(ctx: JobContext) -> dict[str, int]:
    from resywatch.services.booking.runs import run_due_snipes, snipe_counts

    return snipe_counts(await run_due_snipes(ctx.runtime()))


async def _releases(ctx: JobContext) -> dict[str, int]:
    from resywatch.services.discovery import releases

    rt = ctx.runtime()  # the pass waits for the releases of the interval ahead
    horizon = ctx.settings.jobs_releases_interval_s + releases.BEFORE_S
    with rt.db.read() as session:
        due = releases.upcoming(session, rt, rt.clock.now() + timedelta(seconds=horizon))
    return await releases.watch_releases(rt, due)


async def _retention(ctx: JobContext) -> dict[str, int]:
    from resywatch.services.retention import prune

    # Batches of deletes can take a while on a big backlog: off the loop, so the other jobs
    # and the signal handlers keep running, and stopping between batches.
    return await asyncio.to_thread(prune, ctx.db, ctx.settings, ctx.clock.now(), stop=ctx.stop)


async def _tokens(ctx: JobContext) -> dict[str, int]:
    from resywatch.services.auth import RefreshStatus, refresh_tokens

    results = await refresh_tokens(ctx.runtime())
    return {
        "accounts": len(results),
        "refreshed": sum(1 for r in results if r.status == RefreshStatus.REFRESHED),
        "not_refreshed": sum(
            1
            for r in results
            if r.status in (RefreshStatus.REFUSED, RefreshStatus.NO_COOKIE, RefreshStatus.FAILED)
        ),
        "notified": sum(1 for r in results if r.notified),
    }


def _seconds(field: str) -> Callable[[Settings], timedelta]:
    return lambda settings: timedelta(seconds=getattr(settings, field))


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job(
            "discovery",
            _discovery,
            _seconds("discovery_interval_s"),
            True,
            (CLAIMED,),
            parts=lambda settings: settings.discovery_hot_factor,
        ),
        Job("watches", _watches, _seconds("jobs_watches_interval_s"), work=("checked",)),
        Job("notify", _notify, _seconds("jobs_notify_interval_s"), work=("checked",)),
        Job(
            "delivery",
            _delivery,
            _seconds("jobs_delivery_interval_s"),
            work=("sent", "failed", "retried"),
            wakes_on_outbox=True,
        ),
        Job("snipes", _snipes, _seconds("jobs_snipes_interval_s"), work=("snipes",)),
        Job("retention", _retention, _seconds("jobs_retention_interval_s")),
        Job("tokens", _tokens, _seconds("jobs_tokens_interval_s")),
        Job("releases", _releases, _seconds("jobs_releases_interval_s")),
    )
}


def health_schedules(settings: Settings) -> list[JobSchedule]:
    """Every job as `health` judges it: its name, its interval under `settings` and the
    counts that say a pass did work (health, a service, cannot read this registry)."""
    from resywatch.services.health import JobSchedule

    return [JobSchedule(job.name, job.interval(settings), job.work) for job in JOBS.values()]
