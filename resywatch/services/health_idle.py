"""`health`'s view of jobs that say ok while doing nothing: work due for IDLE_INTERVALS of
its job's intervals while every pass since reported ok and did none of it (a stuck job that
does not know it is stuck). Measured from when the work was last done, not from the job's own
bookkeeping, so that a fault in that bookkeeping shows here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, func, or_, select
from sqlmodel import Session

from resywatch.config import Settings
from resywatch.db import plain
from resywatch.db.statuses import (
    JobStatus,
    NotificationStatus,
    RequestStatus,
    SnipeStatus,
    WatchStatus,
)

if TYPE_CHECKING:
    from resywatch.services.health import JobSchedule

# Work due for this many of its job's intervals, with every pass since reporting ok and
# none of it done: the job is stuck while saying ok (one interval to pick the work up, one
# more for a pass that was already under way).
IDLE_INTERVALS = 2
IDLE_RUNS_READ = 20  # the newest passes since the work became due that are looked at


def idle_jobs(
    session: Session, jobs: Sequence[JobSchedule], settings: Settings, now: datetime
) -> dict[str, str]:
    """The jobs that look stuck while their passes say ok, with why (`_idle_reason`)."""
    return {
        job.name: reason
        for job in jobs
        if (reason := _idle_reason(session, job, settings, now)) is not None
    }


def _idle_reason(
    session: Session, job: JobSchedule, settings: Settings, now: datetime
) -> str | None:
    """Why `job` looks stuck while its passes say ok: work has been due for longer than
    its interval allows and every pass since did none of it. None when it is not."""
    probe = _DUE_WORK.get(job.name)
    if probe is None or not job.work:
        return None
    interval = job.interval
    due = probe(session, settings, _Late(now, interval))
    if due is None:
        return None
    what, since = due
    r = plain.job_run.c
    runs = session.execute(
        select(r.status, r.counts)
        .where(r.job_name == job.name, r.started_at >= since)
        .order_by(r.started_at.desc())
        .limit(IDLE_RUNS_READ)
    ).all()
    if not runs or any(
        status != JobStatus.OK or _work_done(counts, job) for status, counts in runs
    ):
        return None  # no pass yet (the heartbeat check speaks), a failure, or progress
    return (
        f"passes report ok but do nothing: {what} due since {since.astimezone(UTC):%H:%M:%S} UTC "
        f"(every {interval.total_seconds():g} s), and the last {len(runs)} passes reported "
        + ", ".join(f"{name}: 0" for name in job.work)
    )


def _work_done(counts: dict[str, int], job: JobSchedule) -> bool:
    return any(int(counts.get(name, 0)) > 0 for name in job.work)


@dataclass(frozen=True)
class _Late:
    """Work counts as overdue once it has been due for IDLE_INTERVALS of its job's interval."""

    now: datetime
    interval: timedelta

    @property
    def due_before(self) -> datetime:
        return self.now - IDLE_INTERVALS * self.interval


# Per job: what is overdue and since when it has been due (None: nothing). Measured from
# when the work was last done, not from the job's own bookkeeping (a bucket's cycle, a
# watch's next check), so that a fault in that bookkeeping shows here.
Overdue = tuple[str, datetime] | None


def _overdue_buckets(session: Session, settings: Settings, late: _Late) -> Overdue:
    b = plain.discovery_bucket.c
    last = func.coalesce(b.last_attempt_at, b.created_at)
    not_held = or_(b.lease_until.is_(None), b.lease_until < late.now)  # not in a scan
    count, oldest = session.execute(
        select(func.count(), func.min(last, type_=TIMESTAMP)).where(
            last < late.due_before - late.interval, not_held
        )
    ).one()
    return (f"{count} buckets", aware(oldest) + late.interval) if count else None


def _overdue_watches(session: Session, settings: Settings, late: _Late) -> Overdue:
    watches = plain.watch
    due = [
        # Due one interval after its last check, but not before it was (re)activated: the
        # passes while it was paused rightly checked nothing.
        max(
            aware(w.last_checked_at or w.created_at) + timedelta(seconds=w.interval_s),
            aware(w.updated_at),
        )
        for w in session.execute(select(watches).where(watches.c.status == WatchStatus.ACTIVE))
    ]
    overdue = [at for at in due if at < late.due_before]
    return (f"{len(overdue)} watches", min(overdue)) if overdue else None


def _overdue_requests(session: Session, settings: Settings, late: _Late) -> Overdue:
    r = plain.notify_request.c
    last = func.coalesce(r.last_checked_at, r.created_at)
    count, oldest = session.execute(
        select(func.count(), func.min(last, type_=TIMESTAMP)).where(
            r.status == RequestStatus.PENDING, last < late.due_before - late.interval
        )
    ).one()
    return (f"{count} notify requests", aware(oldest) + late.interval) if count else None


def _overdue_notifications(session: Session, settings: Settings, late: _Late) -> Overdue:
    n = plain.notification.c
    count, oldest = session.execute(
        select(func.count(), func.min(n.next_attempt_at, type_=TIMESTAMP)).where(
            n.status == NotificationStatus.PENDING,
            n.next_attempt_at < late.due_before,
            or_(n.claimed_until.is_(None), n.claimed_until < late.now),
        )
    ).one()
    return (f"{count} notifications", aware(oldest)) if count else None


def _overdue_snipes(session: Session, settings: Settings, late: _Late) -> Overdue:
    prepare = timedelta(seconds=settings.book_prepare_s)  # taken this long before release
    s = plain.scheduled_snipe.c
    due = [
        max(aware(release_at) - prepare, aware(created_at))
        for release_at, created_at in session.execute(
            select(s.release_at, s.created_at).where(
                s.status == SnipeStatus.SCHEDULED, s.release_at < late.due_before + prepare
            )
        )
    ]
    overdue = [at for at in due if at < late.due_before]
    return (f"{len(overdue)} scheduled snipes", min(overdue)) if overdue else None


_DUE_WORK: dict[str, Callable[[Session, Settings, _Late], Overdue]] = {
    "discovery": _overdue_buckets,
    "watches": _overdue_watches,
    "notify": _overdue_requests,
    "delivery": _overdue_notifications,
    "snipes": _overdue_snipes,
}
TIMESTAMP = DateTime(timezone=True)  # what an aggregate of timestamps reads back as


def aware(moment: datetime) -> datetime:
    """SQLite keeps no zone: its timestamps are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
