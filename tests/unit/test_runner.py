"""A job pass on its own: cadence from the start of a pass, and the outcome recorded."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
import pytest
from sqlmodel import select

from resywatch.clock import ManualClock
from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.models import ApiCallLog
from resywatch.resy.client import ResyClient
from resywatch.resy.transport import ApiCall, CallLog
from resywatch.scheduler.jobs import JOBS, Job, JobContext
from resywatch.scheduler.lease import heartbeats
from resywatch.scheduler.runner import run_job, run_passes
from resywatch.services import retention


def aware(moment: datetime) -> datetime:
    """SQLite keeps no zone: its timestamps are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def clock_at_noon() -> ManualClock:
    return ManualClock(datetime(2026, 12, 1, 12, tzinfo=UTC))


def test_the_next_run_counts_from_the_start_of_a_pass(db: Database) -> None:
    clock = clock_at_noon()

    async def slow(ctx: JobContext) -> dict[str, int]:
        clock.at += timedelta(seconds=20)  # a pass that takes 20 s of a 30 s interval
        return {"done": 1}

    async def main() -> None:
        async with ResyClient(base_url="http://127.0.0.1:1", api_key=None) as resy:
            ctx = JobContext(db, resy, load_settings(environ={}), clock)
            job = Job("slow", slow, lambda settings: timedelta(seconds=30))
            result = await run_job(job, ctx, owner="test:1")
            assert (result.status, result.counts) == ("ok", {"done": 1})

    started = clock.at
    asyncio.run(main())
    beat = heartbeats(db)["slow"]
    assert beat.next_run_at == started + timedelta(seconds=30)
    assert beat.running_since is None and beat.last_status == "ok"


def test_repeated_passes_run_every_interval_apart(db: Database) -> None:
    """`run JOB --repeat 3 --every 0.2s`: three passes, each one the pause after the last."""
    clock, began = clock_at_noon(), []

    async def tick(ctx: JobContext) -> dict[str, int]:
        began.append(time.monotonic())
        return {"done": 1}

    async def main() -> list[str]:
        async with ResyClient(base_url="http://127.0.0.1:1", api_key=None) as resy:
            ctx = JobContext(db, resy, load_settings(environ={}), clock)
            job = Job("tick", tick, lambda settings: timedelta(seconds=30))
            every = timedelta(seconds=0.2)
            results = await run_passes(ctx, job, owner="test:1", repeat=3, every=every)
            return [r.status for r in results]

    assert asyncio.run(main()) == ["ok", "ok", "ok"]
    assert all(later - earlier >= 0.2 for earlier, later in pairwise(began))


def test_a_failing_pass_is_recorded_and_frees_the_job(db: Database) -> None:
    clock = clock_at_noon()

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


def test_a_daily_job_runs_once_a_day_however_many_workers_ask(db: Database) -> None:
    clock, ran = clock_at_noon(), []

    async def prune(ctx: JobContext) -> dict[str, int]:
        ran.append(clock.at)
        return {}

    async def main() -> list[str]:
        async with ResyClient(base_url="http://127.0.0.1:1", api_key=None) as resy:
            ctx = JobContext(db, resy, load_settings(environ={}), clock)
            job = Job("retention", prune, lambda settings: timedelta(days=1))
            statuses = []
            for hours in (0, 1, 23, 24, 25):  # three workers' loops and cron passes
                clock.at = datetime(2026, 12, 1, 3, tzinfo=UTC) + timedelta(hours=hours)
                for worker in ("a:1", "b:2", "c:3"):
                    result = await run_job(job, ctx, owner=worker, due_only=True)
                    statuses.append(result.status)
            return statuses

    statuses = asyncio.run(main())
    assert statuses.count("ok") == 2 and len(ran) == 2  # at hour 0 and hour 24
    assert ran[1] - ran[0] == timedelta(days=1)


def test_a_job_asked_for_by_name_runs_even_before_it_is_due(db: Database) -> None:
    clock = clock_at_noon()

    async def work(ctx: JobContext) -> dict[str, int]:
        return {"done": 1}

    async def main() -> list[str]:
        async with ResyClient(base_url="http://127.0.0.1:1", api_key=None) as resy:
            ctx = JobContext(db, resy, load_settings(environ={}), clock)
            job = Job("retention", work, lambda settings: timedelta(days=1))
            first = await run_job(job, ctx, owner="a:1", due_only=True)
            again = await run_job(job, ctx, owner="a:1")  # `resywatch run retention`
            return [first.status, again.status]

    assert asyncio.run(main()) == ["ok", "ok"]


def test_retention_runs_off_the_loop_and_stops_between_batches(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 5)
    monkeypatch.setattr(retention, "BATCH_PAUSE_S", 0.05)  # 40 batches: 2 s at least
    clock = clock_at_noon()
    with db.write() as session:
        for _ in range(200):
            old = clock.at - timedelta(days=30)
            session.add(ApiCallLog(at=old, method="GET", endpoint="/2/user", latency_ms=1.0))

    async def main() -> tuple[dict[str, int], float]:
        async with ResyClient(base_url="http://127.0.0.1:1", api_key=None) as resy:
            ctx = JobContext(db, resy, load_settings(environ={}), clock)
            gaps: list[float] = []

            async def ticker() -> None:
                last = time.monotonic()
                while True:
                    await asyncio.sleep(0.01)
                    gaps.append(time.monotonic() - last)
                    last = time.monotonic()

            ticking = asyncio.create_task(ticker())
            asyncio.get_running_loop().call_later(0.3, ctx.stop.set)  # SIGTERM, as it were
            counts = await JOBS["retention"].run(ctx)
            ticking.cancel()
            return counts, max(gaps, default=float("inf"))  # none: the loop was blocked

    counts, longest_gap = asyncio.run(main())
    assert longest_gap < 1  # the other jobs (and signal handlers) kept running
    assert 0 < counts["api_calls"] < 200  # stopped between batches; the rest waits


def test_a_pass_writes_the_resy_calls_it_made_to_the_log_and_keeps_none(db: Database) -> None:
    """run-forever's client lives for months: its calls are written after every pass (in
    the jobs' time), not held in memory until the process ends (a leak, lost to a kill)."""
    clock = clock_at_noon()  # far from the wall clock: the stamps must be the clock's
    answer = httpx.Response(200, json={"id": 1, "first_name": "Ada"})

    async def two_calls(ctx: JobContext) -> dict[str, int]:
        for _ in range(2):
            await ctx.resy.user()
        return {"calls": 2}

    async def main() -> list[int]:
        async with ResyClient(
            base_url="http://127.0.0.1:1",
            api_key="k",
            auth_token="t",
            transport=httpx.MockTransport(lambda request: answer),
            stamp=clock.now,
        ) as resy:
            ctx = JobContext(db, resy, load_settings(environ={}), clock)
            job = Job("caller", two_calls, lambda settings: timedelta(seconds=30))
            held = []
            for _ in range(3):
                await run_job(job, ctx, owner="test:1")
                held.append(len(resy.calls))
                clock.advance(60)
            assert resy.calls.made == 6  # still counted, for the passes' request counts
            return held

    assert asyncio.run(main()) == [0, 0, 0]
    with db.read() as session:
        stamps = sorted(aware(row.at) for row in session.exec(select(ApiCallLog)))
    noon = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert stamps == [noon + timedelta(minutes=m) for m in (0, 0, 1, 1, 2, 2)]


def test_a_drained_call_log_keeps_counting_what_was_made() -> None:
    """A discovery pass counts its requests while other passes drain the shared log."""
    log = CallLog()
    call = ApiCall(datetime(2026, 12, 1, tzinfo=UTC), "GET", "/2/user", 200, 1.0, None, 1)
    log.append(call)
    before = log.made
    log.append(call)
    assert log.drain() == [call, call] and log == []
    log.append(call)
    assert log.made - before == 2 and len(log) == 1
