"""Deliver on commit (issue 16): a committed notification wakes delivery at once, rings
coalesce, a ring during a pass makes exactly one more pass, and a cron pass delivers what
it wrote before it exits. Both backends; the LISTEN/NOTIFY test needs PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlmodel import select

from resywatch.clock import SYSTEM_CLOCK
from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.models import JobRun, JobStatus, Notification, NotificationStatus
from resywatch.db.signals import listen_outbox
from resywatch.resy.client import ResyClient
from resywatch.scheduler.jobs import JOBS, Job, JobContext
from resywatch.scheduler.runner import PassResult, run_passes
from resywatch.scheduler.supervisor import Supervisor
from resywatch.scheduler.wake import Wake
from resywatch.services import outbox

HOUR = timedelta(hours=1)


def add_notifications(db: Database, count: int = 1) -> None:
    with db.write() as session:
        for _ in range(count):
            session.add(outbox.test_message(datetime.now(UTC)))


def statuses(db: Database) -> list[NotificationStatus]:
    with db.read() as session:
        return [n.status for n in session.exec(select(Notification))]


def test_only_a_committed_write_of_notifications_rings(db: Database) -> None:
    rings: list[int] = []
    with db.outbox.listening(lambda: rings.append(1)):
        add_notifications(db, 3)  # one transaction, three rows: one ring
        assert len(rings) == 1
        with db.write() as session:  # other tables: no ring
            session.add(JobRun(job_name="x", started_at=datetime.now(UTC), status=JobStatus.OK))
        assert len(rings) == 1
        with pytest.raises(RuntimeError), db.write() as session:  # rolled back: no ring
            session.add(outbox.test_message(datetime.now(UTC)))
            session.flush()
            raise RuntimeError("the pass failed after writing")
        assert len(rings) == 1
        row = outbox.test_message(datetime.now(UTC)).model_dump(exclude={"id"})
        with db.write() as session:  # a Core insert counts as much as an ORM add
            session.exec(insert(Notification).values(**row))
        assert len(rings) == 2
    add_notifications(db)  # no longer listening
    assert len(rings) == 2


@pytest.mark.postgres
def test_a_commit_in_another_process_reaches_a_listener_through_notify(
    postgres_db: Database,
) -> None:
    """Another engine is another connection (another worker, as far as PostgreSQL knows):
    its commit reaches the LISTEN session; its rollback does not."""
    other = Database(postgres_db.url.render_as_string(hide_password=False))
    heard: list[float] = []

    async def main() -> None:
        connected = asyncio.Event()
        listener = asyncio.create_task(
            listen_outbox(
                postgres_db.url,
                lambda: heard.append(time.monotonic()),
                connected=connected,
                ignore=postgres_db.outbox.source,
            )
        )
        try:
            await asyncio.wait_for(connected.wait(), 10)
            add_notifications(postgres_db)  # this process's own commits: skipped
            await asyncio.sleep(0.5)
            on_connect = len(heard)
            assert on_connect == 0
            with pytest.raises(RuntimeError), other.write() as session:
                session.add(outbox.test_message(datetime.now(UTC)))
                raise RuntimeError("rolled back")
            await asyncio.sleep(0.5)
            assert len(heard) == on_connect
            committed = time.monotonic()
            add_notifications(other, 5)
            for _ in range(100):
                if len(heard) > on_connect:
                    break
                await asyncio.sleep(0.05)
            assert len(heard) == on_connect + 1  # one NOTIFY per transaction
            assert heard[-1] - committed < 2
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        other.dispose()


def test_rings_coalesce_and_a_ring_during_a_pass_makes_one_more(db: Database) -> None:
    """A delivery-like job every hour: 100 notifications committed during its first pass
    make one more pass, not 100; 100 rings from another thread while it sleeps make one;
    then it sleeps (its timer is an hour away)."""
    began: list[float] = []

    async def pass_(ctx: JobContext) -> dict[str, int]:
        began.append(time.monotonic())
        if len(began) == 1:
            for _ in range(100):
                add_notifications(ctx.db)  # 100 commits, 100 rings, during the pass
        return {"sent": 0}

    job = Job("delivery-like", pass_, lambda settings: HOUR, wakes_on_outbox=True)

    async def main() -> None:
        async with ResyClient(base_url="http://127.0.0.1:1", api_key=None) as resy:
            ctx = JobContext(db, resy, load_settings(environ={}), SYSTEM_CLOCK)
            supervisor = Supervisor(ctx, [job], "test:1", lambda result: None)
            running = asyncio.create_task(supervisor.run())
            await wait_until(lambda: len(began) >= 2)
            await asyncio.sleep(1.0)
            assert len(began) == 2
            assert supervisor.wake is not None and supervisor.wake.rings >= 100
            ringer = threading.Thread(target=lambda: [supervisor.wake.ring() for _ in range(100)])  # type: ignore[union-attr]
            rung = time.monotonic()
            ringer.start()
            ringer.join()
            await wait_until(lambda: len(began) >= 3)
            assert began[2] - rung < 1.0  # at once, not after the hour
            await asyncio.sleep(1.0)
            assert len(began) == 3
            supervisor.stop()
            assert await running == 0

    asyncio.run(main())


async def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_a_wake_owned_by_a_stopped_loop_is_a_no_op() -> None:
    loop = asyncio.new_event_loop()
    wake = Wake(loop)
    loop.close()
    wake.ring()  # the supervisor has gone: nobody to wake, and no error
    assert wake.rings == 1


def run_with(db: Database, job: Job, stream: io.StringIO) -> list[PassResult]:
    async def main() -> list[PassResult]:
        async with ResyClient(base_url="http://127.0.0.1:1", api_key=None) as resy:
            ctx = JobContext(
                db, resy, load_settings(environ={}), SYSTEM_CLOCK, default_stream=stream
            )
            return await run_passes(ctx, job, owner="test:1", repeat=1)

    return asyncio.run(main())


def test_a_cron_pass_that_wrote_notifications_delivers_them_before_it_returns(
    db: Database,
) -> None:
    async def writes(ctx: JobContext) -> dict[str, int]:
        add_notifications(ctx.db, 2)
        return {"drops_opened": 2}

    stream = io.StringIO()
    results = run_with(db, Job("finds", writes, lambda settings: HOUR), stream)
    assert [(r.job, r.status) for r in results] == [("finds", "ok"), ("delivery", "ok")]
    assert results[1].counts["sent"] == 2
    assert statuses(db) == [NotificationStatus.SENT] * 2
    assert stream.getvalue().count("resywatch: test notification") == 2


def test_a_cron_pass_that_wrote_nothing_runs_no_delivery(db: Database) -> None:
    async def quiet(ctx: JobContext) -> dict[str, int]:
        return {"drops_opened": 0}

    add_notifications(db)  # an older backlog is the delivery job's, on its own schedule
    results = run_with(db, Job("finds", quiet, lambda settings: HOUR), io.StringIO())
    assert [r.job for r in results] == ["finds"]
    assert statuses(db) == [NotificationStatus.PENDING]
    assert JOBS["delivery"].wakes_on_outbox
