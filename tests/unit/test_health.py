"""`health` on states built directly in the database (both backends): a job whose passes
say ok while doing none of the work that is due, and what counts as a failed booking."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest

from resywatch.clock import ManualClock
from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models import (
    BookingAttempt,
    DiscoveryBucket,
    JobHeartbeat,
    JobRun,
    Notification,
    NotifyRequest,
    ScheduledSnipe,
    Watch,
)
from resywatch.runtime import Runtime
from resywatch.scheduler.jobs import JOBS, health_schedules
from resywatch.services import admin
from resywatch.services.booking.attempts import list_attempts
from resywatch.services.health import Check, JobSchedule, Status, health

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
DAY = date(2026, 12, 4)
LONG_AGO = NOW - timedelta(hours=1)


def settings() -> Settings:
    return load_settings(environ={})


def runtime(db: Database) -> Runtime:
    """No Resy client: not logged in, health does not ask Resy."""
    return Runtime(settings(), db, None, ManualClock(NOW))  # type: ignore[arg-type]


def report(db: Database) -> dict[str, Check]:
    jobs = health_schedules(settings())
    result = asyncio.run(health(runtime(db), jobs=jobs))
    return {check.name: check for check in result.checks}


def passes(db: Database, job: str, counts: dict[str, int], *, every: timedelta) -> None:
    """Three ok passes of `job` over the last few intervals, each with `counts`, and the
    heartbeat they leave."""
    with db.write() as session:
        for n in range(3):
            started = NOW - every * (n + 1)
            session.add(
                JobRun(
                    job_name=job,
                    started_at=started,
                    finished_at=started,
                    status="ok",
                    counts=counts,
                )
            )
        session.add(
            JobHeartbeat(
                job_name=job,
                last_started_at=NOW - every,
                last_finished_at=NOW - every,
                last_status="ok",
            )
        )


def stale_bucket() -> DiscoveryBucket:
    return DiscoveryBucket(
        id="2026-12-04_19:00",
        slot_date=DAY,
        anchor="19:00",
        created_at=LONG_AGO,
        last_attempt_at=LONG_AGO,
        last_scan_at=LONG_AGO,
        last_cycle_start=NOW + timedelta(days=1),  # what the bug left: never due again
    )


def unchecked_watch() -> Watch:
    return Watch(
        kind="venues", venue_ids=[1], date_from=DAY, date_to=DAY, party_size=2, interval_s=300,
        last_checked_at=LONG_AGO, next_check_at=NOW + timedelta(days=1), updated_at=LONG_AGO,
    )  # fmt: skip


def unchecked_request() -> NotifyRequest:
    return NotifyRequest(
        venue_id=1,
        venue_name="Lilia",
        date_from=DAY,
        date_to=DAY,
        party_size=2,
        created_at=LONG_AGO,
    )


def undelivered() -> Notification:
    return Notification(
        dedupe_key="drop:1",
        kind="drop",
        title="t",
        body="b",
        next_attempt_at=LONG_AGO,
        created_at=LONG_AGO,
    )


def overdue_snipe() -> ScheduledSnipe:
    return ScheduledSnipe(
        venue_id=1,
        venue_name="Lilia",
        slot_date=DAY,
        party_size=2,
        release_at=LONG_AGO,
        release_source="at",
        max_total=0,
        max_cancel_fee=0,
        lead_s=3,
        poll_interval_s=0.2,
        deadline_s=60,
        late_s=120,
        request_budget=100,
        created_at=LONG_AGO,
    )


# Per job: the work that is due, and the count its passes report for doing it.
DUE: dict[str, tuple[Callable[[], object], str, str]] = {
    "discovery": (stale_bucket, "claimed", "1 buckets"),
    "watches": (unchecked_watch, "checked", "1 watches"),
    "notify": (unchecked_request, "checked", "1 notify requests"),
    "delivery": (undelivered, "sent", "1 notifications"),
    "snipes": (overdue_snipe, "snipes", "1 scheduled snipes"),
}


@pytest.mark.parametrize("job", sorted(DUE))
def test_passes_that_say_ok_but_do_nothing_while_work_is_due_warn_with_the_reason(
    db: Database, job: str
) -> None:
    make, work, what = DUE[job]
    with db.write() as session:
        session.add(make())
    passes(db, job, {work: 0}, every=JOBS[job].interval(settings()))
    check = report(db)[f"job:{job}"]
    assert check.status is Status.WARN, check
    assert "passes report ok but do nothing" in check.message
    assert what in check.message and f"{work}: 0" in check.message


@pytest.mark.parametrize("job", sorted(DUE))
def test_passes_that_do_some_of_the_work_are_ok(db: Database, job: str) -> None:
    make, work, _ = DUE[job]
    with db.write() as session:
        session.add(make())
    passes(db, job, {work: 1}, every=JOBS[job].interval(settings()))
    assert report(db)[f"job:{job}"].status is Status.OK


@pytest.mark.parametrize("job", sorted(DUE))
def test_passes_with_nothing_due_are_ok(db: Database, job: str) -> None:
    _, work, _ = DUE[job]
    passes(db, job, {work: 0}, every=JOBS[job].interval(settings()))
    assert report(db)[f"job:{job}"].status is Status.OK


def test_a_watch_just_resumed_is_not_overdue(db: Database) -> None:
    watch = unchecked_watch()
    watch.updated_at = NOW - timedelta(seconds=30)  # resumed: the passes before rightly skipped it
    with db.write() as session:
        session.add(watch)
    passes(db, "watches", {"checked": 0}, every=timedelta(seconds=60))
    assert report(db)["job:watches"].status is Status.OK


def test_buckets_being_scanned_are_not_overdue(db: Database) -> None:
    bucket = stale_bucket()
    bucket.lease_owner, bucket.lease_until = "host:1", NOW + timedelta(seconds=20)
    with db.write() as session:
        session.add(bucket)
    passes(db, "discovery", {"claimed": 0}, every=timedelta(seconds=30))
    assert report(db)["job:discovery"].status is Status.OK


def test_pending_and_declined_attempts_are_not_failures_anywhere(db: Database) -> None:
    # `health` once counted a pending attempt as failed: it warned during every snipe and
    # while `book now` waited at its prompt.
    with db.write() as session:
        for outcome in ("pending", "declined", "booked", "dry_run", "slot_gone"):
            session.add(
                BookingAttempt(
                    source="book-now",
                    venue_id=1,
                    slot_date=DAY,
                    party_size=2,
                    outcome=outcome,
                    created_at=NOW - timedelta(minutes=5),
                )
            )
    check = report(db)["bookings"]
    assert (check.status, check.value) == (Status.WARN, 1.0)
    assert [e.outcome for e in admin.booking_errors(db)] == ["slot_gone"]
    assert [a.outcome for a in list_attempts(db, failed_only=True)] == ["slot_gone"]


def test_a_pending_attempt_alone_is_no_warning(db: Database) -> None:
    with db.write() as session:
        session.add(
            BookingAttempt(
                source="snipe",
                venue_id=1,
                slot_date=DAY,
                party_size=2,
                outcome="pending",
                starts_at=datetime.combine(DAY, time(19)),
                created_at=NOW - timedelta(seconds=5),
            )
        )
    assert report(db)["bookings"].status is Status.OK


def test_a_snipe_scheduled_just_now_for_a_past_release_is_not_yet_overdue(db: Database) -> None:
    snipe = overdue_snipe()
    snipe.created_at = NOW - timedelta(seconds=5)
    with db.write() as session:
        session.add(snipe)
    passes(db, "snipes", {"snipes": 0}, every=timedelta(seconds=5))
    assert report(db)["job:snipes"].status is Status.OK


def test_every_job_that_reports_its_work_has_its_due_work_probed() -> None:
    from resywatch.services.health_idle import _DUE_WORK

    assert set(_DUE_WORK) == {job.name for job in JOBS.values() if job.work}
    assert set(DUE) == set(_DUE_WORK)  # and each is tested above


def test_health_judges_the_jobs_its_caller_passes_in(db: Database) -> None:
    """The job list comes from the caller (services cannot read the scheduler's registry):
    health checks those jobs, by the interval given, and no others."""
    passes(db, "custom", {"done": 1}, every=timedelta(minutes=10))
    jobs = [JobSchedule("custom", timedelta(minutes=1)), JobSchedule("fresh", timedelta(days=1))]
    result = asyncio.run(health(runtime(db), jobs=jobs))
    checks = {c.name: c for c in result.checks if c.name.startswith("job:")}
    assert set(checks) == {"job:custom", "job:fresh"}
    assert checks["job:custom"].status is Status.CRIT  # 10 min since, every 1 min
    assert checks["job:fresh"].status is Status.WARN  # has never run


@pytest.mark.parametrize(("took_s", "warned"), [(45.0, True), (20.0, False)])
def test_discovery_passes_longer_than_the_interval_warn(
    db: Database, took_s: float, warned: bool
) -> None:
    interval = settings().discovery_interval_s
    with db.write() as session:
        for n in range(3):
            started = NOW - timedelta(seconds=60 * (n + 1))
            session.add(
                JobRun(
                    job_name="discovery",
                    started_at=started,
                    finished_at=started + timedelta(seconds=took_s),
                    status="ok",
                    counts={"buckets": 14, "requests": 168},
                )
            )
    pace = report(db).get("discovery-pace")
    if not warned:
        assert pace is None  # a discovery that keeps its interval adds no line
        return
    assert pace is not None and pace.status is Status.WARN
    assert f"takes 45 s, longer than its {interval:g} s interval" in pace.message
    assert f"168 requests at resy.max_rps {settings().resy_max_rps:g}" in pace.message
