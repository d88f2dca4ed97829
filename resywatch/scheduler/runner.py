"""One pass of a job, whoever calls it (cron through `resywatch run`, or the supervisor).

A pass claims the job's lease first: when another live pass holds it, this one is
`skipped` at once, having made no Resy call. The lease is renewed while the job works and
released with the outcome, so `health` can see every job's heartbeat. A shared job
(discovery) runs without the job lease too: the passes split its work through their own
leases, and one that finds nothing left to take is `skipped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from resywatch.db.models import JobRun, JobStatus
from resywatch.errors import ResywatchError
from resywatch.redact import redact_text
from resywatch.scheduler import due, lease
from resywatch.scheduler.due import DUE_SLACK
from resywatch.scheduler.jobs import CLAIMED, JOBS, Job, JobContext


@dataclass
class PassResult:
    job: str
    status: JobStatus
    duration_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == JobStatus.FAILED


async def run_job(
    job: Job,
    ctx: JobContext,
    *,
    owner: str,
    lock_timeout: float = 0.0,
    due_only: bool = False,
) -> PassResult:
    """Run one pass of `job` unless another pass holds it or, with `due_only`, another
    worker already ran it this period (then: skipped)."""
    started = time.monotonic()
    ttl = timedelta(seconds=ctx.settings.jobs_lease_ttl_s)

    def claim() -> lease.Lease | None:
        due_by = ctx.clock.now() + DUE_SLACK if due_only else None
        return lease.claim(ctx.db, job.name, ctx.clock.now(), ttl, owner, due_by=due_by)

    held = claim()
    while held is None and not job.shared and time.monotonic() - started < lock_timeout:
        await asyncio.sleep(min(0.5, lock_timeout))
        held = claim()
    if held is None and not job.shared:
        return PassResult(job.name, JobStatus.SKIPPED, round(time.monotonic() - started, 3))

    began = ctx.clock.now()
    renewer = asyncio.create_task(_keep_renewing(ctx, held, ttl)) if held else None
    result = PassResult(job.name, JobStatus.FAILED)
    try:
        result.counts = await job.run(ctx)
        result.status = JobStatus.OK
        if held is None and result.counts.get(CLAIMED) == 0:
            result.status = JobStatus.SKIPPED  # the other passes had it all in hand
    except asyncio.CancelledError:
        result.status, result.error = JobStatus.INTERRUPTED, "stopped before the pass finished"
        raise
    except ResywatchError as exc:
        result.error = redact_text(str(exc), ctx.secrets())
    except Exception as exc:  # one job's bug must not take the supervisor down
        result.error = redact_text(f"{type(exc).__name__}: {exc}", ctx.secrets())
    finally:
        if renewer is not None:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        result.duration_s = round(time.monotonic() - started, 3)
        if result.status != JobStatus.SKIPPED:
            run = JobRun(
                job_name=job.name,
                started_at=began,
                finished_at=ctx.clock.now(),
                status=result.status,
                error=result.error,
                counts=result.counts,
                owner=owner,
            )
            if held is None:
                lease.record(ctx.db, run)
            else:
                # From the start, not the end: `run due --repeat 2 --every 30s` then keeps a
                # 30 s job on its 30 s cadence however long a pass takes.
                lease.release(ctx.db, held, run, next_run_at=job.next_run_at(began, ctx.settings))
        _record_calls(ctx)
    return result


def _record_calls(ctx: JobContext) -> None:
    """Write the Resy calls made so far (by this pass and any running beside it) to
    `api_call_log`, and forget them: a supervisor's client lives for months, so its calls
    cannot wait for the process to end (they would pile up in memory and be lost to a kill).
    A log that cannot be written is dropped: it is diagnostics, and must not stop the job."""
    from resywatch.services import api_log

    calls = ctx.resy.calls.drain()
    if calls:
        with contextlib.suppress(ResywatchError, SQLAlchemyError):
            api_log.record_calls(ctx.db, calls)


async def _keep_renewing(ctx: JobContext, held: lease.Lease, ttl: timedelta) -> None:
    while True:
        await asyncio.sleep(ttl.total_seconds() / 3)
        lease.renew(ctx.db, held, ctx.clock.now())


def due_jobs(ctx: JobContext, names: Iterable[str] | None = None) -> list[Job]:
    """The jobs whose next run has come (or that never ran)."""
    chosen = list(names) if names else list(JOBS)
    return [JOBS[name] for name in due.due_names(due.next_runs(ctx.db), chosen, ctx.clock.now())]


async def run_due(
    ctx: JobContext,
    *,
    owner: str,
    lock_timeout: float = 0.0,
    written: threading.Event | None = None,
) -> list[PassResult]:
    """One pass of every due job, one after another (what a crontab line every minute runs).
    `written` is cleared as a job woken by notifications (delivery) starts: it then has
    what was committed so far."""
    results = []
    for job in due_jobs(ctx):
        if written is not None and job.wakes_on_outbox:
            written.clear()
        results.append(
            await run_job(job, ctx, owner=owner, lock_timeout=lock_timeout, due_only=True)
        )
    return results


# How long the delivery after a cron pass waits for another worker's delivery pass to end.
DELIVER_WAIT_S = 5.0


async def run_passes(
    ctx: JobContext,
    job: Job | None,
    *,
    owner: str,
    repeat: int = 1,
    every: timedelta = timedelta(0),
    lock_timeout: float = 0.0,
) -> list[PassResult]:
    """`repeat` passes of `job` (None: of every due job), `every` apart: the loop of
    `resywatch run JOB|due --repeat N --every 30s`, which lets a crontab line that fires
    once a minute run a job every 30 s.

    A pass that committed notifications is followed by a delivery pass (the delivery job,
    with its lease and the rows' own leases and keys), so a cron entry tells the user
    before it exits instead of leaving it to the next delivery run."""
    results: list[PassResult] = []
    deliver = next(j for j in JOBS.values() if j.wakes_on_outbox)
    for number in range(repeat):
        if number:
            await asyncio.sleep(every.total_seconds())
        written = threading.Event()
        with ctx.db.outbox.listening(written.set):
            if job is None:
                results += await run_due(
                    ctx, owner=owner, lock_timeout=lock_timeout, written=written
                )
            else:
                results.append(await run_job(job, ctx, owner=owner, lock_timeout=lock_timeout))
        if written.is_set() and job is not deliver and not ctx.stop.is_set():
            wait = max(lock_timeout, DELIVER_WAIT_S)
            results.append(await run_job(deliver, ctx, owner=owner, lock_timeout=wait))
    return results
