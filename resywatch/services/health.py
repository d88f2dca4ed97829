"""`resywatch health`: what a monitor or a shell script trusts.

Nagios semantics: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the database cannot be read or
is not migrated). Every check is one line; the worst decides the exit code. Resy is asked
once, with a short deadline, so the answer comes within 2 s even when Resy is down; and not
at all when it accepted the token in the last few minutes (`recent_token_check`), so a
monitor asking every minute costs Resy one call in ten and the box no HTTP stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import DateTime, func, or_
from sqlmodel import Session, col, select

from resywatch.config import Settings
from resywatch.db.models import (
    ApiCallLog,
    BookingAttempt,
    DiscoveryBucket,
    JobHeartbeat,
    JobRun,
    JobStatus,
    Notification,
    NotificationStatus,
    NotifyRequest,
    RequestStatus,
    ResyHost,
    ScheduledSnipe,
    SnipeStatus,
    Watch,
    WatchStatus,
)
from resywatch.db.models.booking import failed_attempt
from resywatch.errors import DatabaseNotReady, DatabaseUnavailable
from resywatch.redact import redact_text
from resywatch.resy import errors as resy_errors
from resywatch.services.auth import EXPIRY_WARNING, token_expiry
from resywatch.services.discovery.feed import BucketState, bucket_states
from resywatch.services.politeness import LAST_ERROR_CHARS, host_states

if TYPE_CHECKING:
    from resywatch.db.engine import Database
    from resywatch.resy.client import ResyClient
    from resywatch.runtime import Runtime

# How long Resy's acceptance of the token is taken as still true (`health --live` asks now).
TOKEN_CHECK_REUSE = timedelta(minutes=10)
LOGIN_ENDPOINTS = ("/3/auth/password", "/4/auth/password")

FAILURES_LOOKBACK = timedelta(hours=24)
# Work due for this many of its job's intervals, with every pass since reporting ok and
# none of it done: the job is stuck while saying ok (one interval to pick the work up, one
# more for a pass that was already under way).
IDLE_INTERVALS = 2
IDLE_RUNS_READ = 20  # the newest passes since the work became due that are looked at


class Status(IntEnum):
    OK = 0
    WARN = 1
    CRIT = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class JobSchedule:
    """What health judges a scheduled job by. The scheduler's side passes these in (from
    its job registry): services sit below the scheduler and never import it."""

    name: str
    interval: timedelta
    # The counts of a pass that say it did some of the job's work (see `_idle_reason`).
    work: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str
    value: float | None = None  # the measured figure (seconds, a count), for perfdata


@dataclass(frozen=True)
class BucketHealth:
    bucket_id: str
    date: str
    anchor: str
    last_scan_at: datetime | None
    baseline_count: int
    stale: bool


@dataclass
class HealthReport:
    status: Status
    checks: list[Check]
    next_scan_at: datetime | None = None
    fast_checks: dict[str, bool] = field(default_factory=dict)
    bucket_health: list[BucketHealth] = field(default_factory=list)


def database_unknown(error: DatabaseNotReady | DatabaseUnavailable) -> HealthReport:
    """UNKNOWN: without the database nothing else can be judged."""
    return HealthReport(Status.UNKNOWN, [Check("database", Status.UNKNOWN, str(error))])


async def health(
    rt: Runtime, *, jobs: Sequence[JobSchedule], token_checked_at: datetime | None = None
) -> HealthReport:
    """Every check, from the database's view of `jobs` plus one call to Resy (none when
    `token_checked_at` says when Resy last accepted the token)."""
    return await judge(
        rt.settings,
        rt.db,
        rt.clock.now(),
        jobs=jobs,
        resy=rt.resy,
        token_checked_at=token_checked_at,
    )


async def judge(
    settings: Settings,
    db: Database,
    now: datetime,
    *,
    jobs: Sequence[JobSchedule],
    resy: ResyClient | None,
    token_checked_at: datetime | None = None,
) -> HealthReport:
    """`health` from its parts: without a client (`resy` None) Resy is not asked."""
    checks = [Check("database", Status.OK, f"{db.backend} reachable and at the current schema")]
    with db.read() as session:
        beats = {row.job_name: row for row in session.exec(select(JobHeartbeat))}
        idle = _idle_jobs(session, jobs, settings, now)
    checks += _job_checks(jobs, beats, settings, now, idle)
    with db.read() as session:
        states = bucket_states(session, now)
        pending_since = _oldest_pending_notification(session)
        failed_notes = _failed_notifications(session, now)
        failed_books = _failed_bookings(session, now)
    checks += _bucket_checks(states, settings, now)
    host = urlsplit(settings.resy_base_url).netloc
    politeness = next((h for h in host_states(db) if h.host == host), None)
    breaker = _breaker_check(politeness, settings, now)
    # Resy is not asked while every worker is told to keep away (and health answers fast).
    held_back = _held_back(politeness, now)
    checks.append(await _auth_check(resy, settings, now, held_back, token_checked_at))
    checks.append(breaker)
    checks.append(_backlog_check(pending_since, failed_notes, settings, now))
    checks.append(_bookings_check(failed_books))
    discovery = beats.get("discovery")
    return HealthReport(
        status=max(c.status for c in checks),
        checks=checks,
        next_scan_at=discovery.next_run_at if discovery else None,
        fast_checks=fast_checks(discovery, states, settings, now),
        bucket_health=[_bucket_health(state, settings) for state in states],
    )


def _idle_jobs(
    session: Session, jobs: Sequence[JobSchedule], settings: Settings, now: datetime
) -> dict[str, str]:
    """The jobs that look stuck while their passes say ok, with why (`_idle_reason`)."""
    return {
        job.name: reason
        for job in jobs
        if (reason := _idle_reason(session, job, settings, now)) is not None
    }


def _oldest_pending_notification(session: Session) -> datetime | None:
    return session.scalar(
        select(func.min(Notification.created_at)).where(
            col(Notification.status) == NotificationStatus.PENDING
        )
    )


def _failed_notifications(session: Session, now: datetime) -> int:
    """Notifications given up on within the lookback."""
    return (
        session.scalar(
            select(func.count()).where(
                col(Notification.status) == NotificationStatus.FAILED,
                col(Notification.created_at) >= now - FAILURES_LOOKBACK,
            )
        )
        or 0
    )


def _failed_bookings(session: Session, now: datetime) -> int:
    """Booking attempts that failed within the lookback (one in flight has not failed)."""
    return (
        session.scalar(
            select(func.count()).where(
                failed_attempt(),
                col(BookingAttempt.created_at) >= now - FAILURES_LOOKBACK,
            )
        )
        or 0
    )


def _bookings_check(failed: int) -> Check:
    return Check(
        "bookings",
        Status.WARN if failed else Status.OK,
        f"{failed} failed booking attempts in the last 24 h"
        if failed
        else "no failed booking attempt in the last 24 h",
        float(failed),
    )


def fast_checks(
    discovery: JobHeartbeat | None, states: list[BucketState], settings: Settings, now: datetime
) -> dict[str, bool]:
    """The seed's two yes/no answers (in `--json`): the discovery job is alive, the feed
    is updating."""
    scans = [s.last_scan_at for s in states if s.last_scan_at]
    crit_after = timedelta(
        seconds=settings.discovery_interval_s * settings.health_job_crit_intervals
    )
    return {
        "job_alive": discovery is not None
        and discovery.last_started_at is not None
        and now - discovery.last_started_at < crit_after,
        "feed_updating": bool(scans)
        and now - max(scans) < timedelta(seconds=settings.health_feed_warn_s),
    }


def _bucket_health(state: BucketState, settings: Settings) -> BucketHealth:
    return BucketHealth(
        state.id,
        str(state.date),
        state.anchor,
        state.last_scan_at,
        state.baseline_size,
        state.age_s is None or state.age_s > settings.health_bucket_warn_s,
    )


def _job_checks(
    jobs: Sequence[JobSchedule],
    beats: dict[str, JobHeartbeat],
    settings: Settings,
    now: datetime,
    idle: dict[str, str],
) -> list[Check]:
    checks = []
    for job in jobs:
        beat = beats.get(job.name)
        interval = job.interval
        name = f"job:{job.name}"
        last = (beat.last_finished_at or beat.last_started_at) if beat else None
        if last is None:
            checks.append(Check(name, Status.WARN, "has never run: start `resywatch run-forever` "
                                "or a crontab line"))  # fmt: skip
            continue
        age = (now - last).total_seconds()
        if age > interval.total_seconds() * settings.health_job_crit_intervals:
            status, text = (
                Status.CRIT,
                f"last pass {age:.0f} s ago (every {interval.total_seconds():.0f} s)",
            )
        elif beat and beat.last_status == JobStatus.FAILED:
            status, text = Status.WARN, f"last pass failed: {beat.last_error}"
        elif job.name in idle:
            status, text = Status.WARN, idle[job.name]
        else:
            status, text = (
                Status.OK,
                f"last pass {age:.0f} s ago, {beat.last_status if beat else ''}",
            )
        checks.append(Check(name, status, text, age))
    return checks


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
    runs = session.exec(
        select(JobRun)
        .where(col(JobRun.job_name) == job.name, col(JobRun.started_at) >= since)
        .order_by(col(JobRun.started_at).desc())
        .limit(IDLE_RUNS_READ)
    ).all()
    if not runs or any(r.status != JobStatus.OK or _work_done(r, job) for r in runs):
        return None  # no pass yet (the heartbeat check speaks), a failure, or progress
    return (
        f"passes report ok but do nothing: {what} due since {since.astimezone(UTC):%H:%M:%S} UTC "
        f"(every {interval.total_seconds():g} s), and the last {len(runs)} passes reported "
        + ", ".join(f"{name}: 0" for name in job.work)
    )


def _work_done(run: JobRun, job: JobSchedule) -> bool:
    return any(int(run.counts.get(name, 0)) > 0 for name in job.work)


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
    b = DiscoveryBucket
    last = func.coalesce(col(b.last_attempt_at), col(b.created_at))
    not_held = or_(col(b.lease_until).is_(None), col(b.lease_until) < late.now)  # not in a scan
    count, oldest = session.execute(
        select(func.count(), func.min(last, type_=_TIMESTAMP)).where(
            last < late.due_before - late.interval, not_held
        )
    ).one()
    return (f"{count} buckets", _aware(oldest) + late.interval) if count else None


def _overdue_watches(session: Session, settings: Settings, late: _Late) -> Overdue:
    due = [
        # Due one interval after its last check, but not before it was (re)activated: the
        # passes while it was paused rightly checked nothing.
        max(
            _aware(w.last_checked_at or w.created_at) + timedelta(seconds=w.interval_s),
            _aware(w.updated_at),
        )
        for w in session.exec(select(Watch).where(col(Watch.status) == WatchStatus.ACTIVE))
    ]
    overdue = [at for at in due if at < late.due_before]
    return (f"{len(overdue)} watches", min(overdue)) if overdue else None


def _overdue_requests(session: Session, settings: Settings, late: _Late) -> Overdue:
    r = NotifyRequest
    last = func.coalesce(col(r.last_checked_at), col(r.created_at))
    count, oldest = session.execute(
        select(func.count(), func.min(last, type_=_TIMESTAMP)).where(
            col(r.status) == RequestStatus.PENDING, last < late.due_before - late.interval
        )
    ).one()
    return (f"{count} notify requests", _aware(oldest) + late.interval) if count else None


def _overdue_notifications(session: Session, settings: Settings, late: _Late) -> Overdue:
    n = Notification
    count, oldest = session.execute(
        select(func.count(), func.min(col(n.next_attempt_at), type_=_TIMESTAMP)).where(
            col(n.status) == NotificationStatus.PENDING,
            col(n.next_attempt_at) < late.due_before,
            or_(col(n.claimed_until).is_(None), col(n.claimed_until) < late.now),
        )
    ).one()
    return (f"{count} notifications", _aware(oldest)) if count else None


def _overdue_snipes(session: Session, settings: Settings, late: _Late) -> Overdue:
    prepare = timedelta(seconds=settings.book_prepare_s)  # taken this long before release
    due = [
        max(_aware(s.release_at) - prepare, _aware(s.created_at))
        for s in session.exec(
            select(ScheduledSnipe).where(
                col(ScheduledSnipe.status) == SnipeStatus.SCHEDULED,
                col(ScheduledSnipe.release_at) < late.due_before + prepare,
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
_TIMESTAMP = DateTime(timezone=True)  # what an aggregate of timestamps reads back as


def _aware(moment: datetime) -> datetime:
    """SQLite keeps no zone: its timestamps are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _bucket_checks(states: list[BucketState], settings: Settings, now: datetime) -> list[Check]:
    warn, crit = settings.health_bucket_warn_s, settings.health_bucket_crit_s
    ages = [float("inf") if state.age_s is None else state.age_s for state in states]
    if not ages:
        return [
            Check("buckets", Status.WARN, "no discovery bucket yet: run `resywatch discover scan`")
        ]
    stale_crit = sum(a > crit for a in ages)
    stale_warn = sum(a > warn for a in ages)
    oldest: float | None = max(ages) if max(ages) != float("inf") else None  # never scanned
    if stale_crit:
        bucket = Check(
            "buckets",
            Status.CRIT,
            f"{stale_crit} of {len(ages)} buckets not scanned for over {crit} s",
            oldest,
        )
    elif stale_warn:
        bucket = Check(
            "buckets",
            Status.WARN,
            f"{stale_warn} of {len(ages)} buckets not scanned for over {warn} s",
            oldest,
        )
    else:
        bucket = Check(
            "buckets", Status.OK, f"all {len(ages)} buckets scanned within {warn} s", oldest
        )
    newest = min(ages)
    feed = Check(
        "feed",
        Status.WARN if newest > settings.health_feed_warn_s else Status.OK,
        f"last successful scan {newest:.0f} s ago" if newest != float("inf") else "never scanned",
        newest if newest != float("inf") else None,
    )
    return [bucket, feed]


def recent_token_check(
    db: Database, now: datetime, within: timedelta = TOKEN_CHECK_REUSE
) -> datetime | None:
    """When Resy last accepted the token (a 2xx answer to `/2/user` in the last `within`),
    or None. A login since then may have changed the token: then None, and health asks."""
    with db.read() as session:
        accepted = session.exec(
            select(func.max(col(ApiCallLog.at), type_=_TIMESTAMP)).where(
                ApiCallLog.endpoint == "/2/user",
                col(ApiCallLog.status) >= 200,
                col(ApiCallLog.status) < 300,
                ApiCallLog.at >= now - within,
            )
        ).one()
        login = session.exec(
            select(func.max(col(ApiCallLog.at), type_=_TIMESTAMP)).where(
                col(ApiCallLog.endpoint).in_(LOGIN_ENDPOINTS)
            )
        ).one()
    if accepted is None or (login is not None and _aware(login) >= _aware(accepted)):
        return None
    return _aware(accepted)


async def _auth_check(
    resy: ResyClient | None,
    settings: Settings,
    now: datetime,
    held_back: str | None = None,
    checked_at: datetime | None = None,
) -> Check:
    token = settings.resy_auth_token.get_secret_value() if settings.resy_auth_token else None
    if not token:
        return Check(
            "resy_auth", Status.WARN, "not logged in: booking needs `resywatch auth login`"
        )
    expires = token_expiry(token)
    if expires is not None and expires <= now:
        return Check(
            "resy_auth", Status.CRIT, "the Resy token has expired: run `resywatch auth login`"
        )
    if held_back:
        return Check("resy_auth", Status.WARN, f"cannot check the token with Resy: {held_back}")
    if checked_at is None and resy is not None:
        try:
            await resy.user()
        except resy_errors.AuthError:
            return Check(
                "resy_auth", Status.CRIT, "Resy refuses the token: run `resywatch auth login`"
            )
        except resy_errors.ResyError as exc:
            return Check("resy_auth", Status.WARN, f"cannot check the token with Resy: {exc.kind}")
    if expires is not None and expires - now < EXPIRY_WARNING:
        days = (expires - now) / timedelta(days=1)
        return Check("resy_auth", Status.WARN, f"the Resy token expires in {days:.1f} days", days)
    if checked_at is not None:
        ago = max(0.0, (now - checked_at).total_seconds())
        return Check(
            "resy_auth",
            Status.OK,
            f"Resy accepted the token {ago:.0f} s ago (`health --live` asks it now)",
        )
    return Check("resy_auth", Status.OK, "Resy accepts the token")


def _held_back(state: ResyHost | None, now: datetime) -> str | None:
    """Why no worker may call Resy right now, if none may."""
    if state is None:
        return None
    if state.open_until is not None and state.open_until > now:
        return "its circuit breaker is open"
    if state.paused_until is not None and state.paused_until > now:
        return "paused by Retry-After"
    return None


def _breaker_check(state: ResyHost | None, settings: Settings, now: datetime) -> Check:
    """The shared circuit breaker and Retry-After pause (`resy_host`)."""
    failures = state.consecutive_failures if state else 0
    reason = redact_text(
        (state.last_error if state else None) or "no error recorded", settings.secrets()
    )[:LAST_ERROR_CHARS]
    if state is not None and state.opened_at is not None:
        until = state.open_until or now
        if until > now:
            text = f"Resy circuit breaker open until {until:%H:%M:%S} UTC"
        else:
            text = f"Resy circuit breaker half-open since {until:%H:%M:%S} UTC (one trial call)"
        return Check("resy_breaker", Status.WARN, f"{text} after {failures} failures: {reason}",
                     float(failures))  # fmt: skip
    if state is not None and state.paused_until is not None and state.paused_until > now:
        return Check(
            "resy_breaker",
            Status.WARN,
            f"Resy paused by Retry-After until {state.paused_until:%H:%M:%S} UTC: {reason}",
            float(failures),
        )
    text = f", {failures} failures in a row" if failures else ""
    return Check("resy_breaker", Status.OK, f"Resy circuit breaker closed{text}", float(failures))


def _backlog_check(
    pending_since: datetime | None, failed: int, settings: Settings, now: datetime
) -> Check:
    waiting = (now - pending_since).total_seconds() if pending_since else 0.0
    if waiting > settings.health_backlog_warn_s:
        return Check(
            "notifications", Status.WARN, f"a notification has waited {waiting:.0f} s", waiting
        )
    if failed:
        return Check(
            "notifications",
            Status.WARN,
            f"{failed} notifications failed in the last 24 h",
            float(failed),
        )
    return Check("notifications", Status.OK, "no backlog", waiting)
