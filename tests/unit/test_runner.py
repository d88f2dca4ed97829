"""A job pass on its own: cadence from the start of a pass, and the outcome recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.resy.client import ResyClient
from resywatch.scheduler.jobs import Job, JobContext
from resywatch.scheduler.lease import heartbeats
from resywatch.scheduler.runner import run_job


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_the_next_run_counts_from_the_start_of_a_pass(db: Database) -> None:
    clock = Clock()

    async def slow(ctx: JobContext) -> dict[str, int]:
        clock.now += timedelta(seconds=20)  # a pass that takes 20 s of a 30 s interval
        return {"done": 1}

    async def main() -> None:
        async with ResyClient(base_url="http://127.0.0.1:1", api_key=None) as resy:
            ctx = JobContext(db, resy, load_settings(environ={}), clock)
            job = Job("slow", slow, lambda settings: timedelta(seconds=30))
            result = await run_job(job, ctx, owner="test:1")
            assert (result.status, result.counts) == ("ok", {"done": 1})

    started = clock.now
    asyncio.run(main())
    beat = heartbeats(db)["slow"]
    assert beat.next_run_at == started + timedelta(seconds=30)
    assert beat.running_since is None and beat.last_status == "ok"


def test_a_failing_pass_is_recorded_and_frees_the_job(db: Database) -> None:
    clock = Clock()

    async def broken(ctx: JobContext) -> dict[str, int]:
        raise RuntimeError("boom")

    async def main() -> str:
        async with ResyClient(base_url="http://127.0.0.1:1", api_key=None) as resy:
            ctx = JobContext(db, resy, load_settings(environ={}), clock)
            job = Job("broken", broken, lambda settings: timedelta(seconds=30))
            result = await run_job(job, ctx, owner="test:1")
            return f"{result.status}: {result.error}"

    assert asyncio.run(main()) == "failed: RuntimeError: boom"
    beat = heartbeats(db)["broken"]
    assert beat.running_since is None and beat.last_error == "RuntimeError: boom"
