"""`resywatch health`: what a monitor or a shell script trusts.

Nagios semantics: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the database cannot be read or
is not migrated). Every check is one line; the worst decides the exit code. Resy is asked
once, with a short deadline, so the answer comes within 2 s even when Resy is down; and not
at all when it accepted the token in the last few minutes (`recent_token_check`), so a
monitor asking every minute costs Resy one call in ten and the box no HTTP stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlmodel import Session

from resywatch.accounts import EXPIRY_WARNING, AccountTokens, token_expiry, tokens_in_settings
from resywatch.config import Settings
from resywatch.db import plain
from resywatch.db.plain import LAST_ERROR_CHARS, HostState, host_states
from resywatch.db.statuses import JobStatus, NotificationStatus, failed_outcome
from resywatch.errors import DatabaseNotReady, DatabaseUnavailable
from resywatch.redact import redact_text
from resywatch.resy import errors as resy_errors
from resywatch.services.discovery.states import BucketState, bucket_states
from resywatch.services.health_idle import TIMESTAMP, aware, idle_jobs

if TYPE_CHECKING:
    from resywatch.db.engine import Database
    from resywatch.resy.client import ResyClient
    from resywatch.runtime import Runtime

# How long Resy's acceptance of the token is taken as still true (`health --live` asks now).
TOKEN_CHECK_REUSE = timedelta(minutes=10)
LOGIN_ENDPOINTS = ("/3/auth/password", "/4/auth/password")

FAILURES_LOOKBACK = timedelta(hours=24)


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
class Heartbeat:
    """A job's heartbeat as health reads it (`job_heartbeat`)."""

    job_name: str
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_status: str | None
    last_error: str | None
    next_run_at: datetime | None


class Started(Protocol):
    """What `fast_checks` reads of the discovery job's heartbeat (this module's, or the
    table's row that `admin db-info` holds)."""

    @property
    def last_started_at(self) -> datetime | None: ...


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
        accounts=rt.tokens.all() if rt.tokens is not None else None,
    )


async def judge(
    settings: Settings,
    db: Database,
    now: datetime,
    *,
    jobs: Sequence[JobSchedule],
    resy: ResyClient | None,
    token_checked_at: datetime | None = None,
    accounts: dict[str, AccountTokens] | None = None,
) -> HealthReport:
    """`health` from its parts: without a client (`resy` None) Resy is not asked; every
    account's tokens from `accounts` (None: as the settings hold them)."""
    checks = [Check("database", Status.OK, f"{db.backend} reachable and at the current schema")]
    with db.read() as session:
        rows = session.execute(select(plain.job_heartbeat))
        beats = {row.job_name: Heartbeat(**row._mapping) for row in rows}
        idle = idle_jobs(session, jobs, settings, now)
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
    table = accounts if accounts is not None else tokens_in_settings(settings)
    checks.append(_accounts_check(table, settings, now))
    checks.append(_backlog_check(pending_since, failed_notes, settings, now))
    checks.append(_bookings_check(failed_books))
    with db.read() as session:
        if (pace := _discovery_pace_check(session, settings)) is not None:
            checks.append(pace)
    discovery = beats.get("discovery")
    return HealthReport(
        status=max(c.status for c in checks),
        checks=checks,
        next_scan_at=discovery.next_run_at if discovery else None,
        fast_checks=fast_checks(discovery, states, settings, now),
        bucket_health=[_bucket_health(state, settings) for state in states],
    )


#: Passes the discovery pace check judges (the newest that scanned buckets).
PACE_PASSES = 3


def _discovery_pace_check(session: Session, settings: Settings) -> Check | None:
    """WARN when discovery's passes take longer than its interval: every bucket is then
    scanned every other cycle or later, and nothing else would say so. None while they keep
    it (or before PACE_PASSES passes scanned buckets)."""
    r = plain.job_run.c
    runs = session.execute(
        select(r.started_at, r.finished_at, r.counts)
        .where(r.job_name == "discovery", r.status == JobStatus.OK, r.finished_at.is_not(None))
        .order_by(r.started_at.desc())
        .limit(PACE_PASSES * 4)
    ).all()
    scanning = [r for r in runs if r.counts.get("buckets", 0) > 0][:PACE_PASSES]
    if len(scanning) < PACE_PASSES:
        return None
    took = sorted(
        (aware(r.finished_at) - aware(r.started_at)).total_seconds()
        for r in scanning
        if r.finished_at
    )
    typical = took[len(took) // 2]
    interval = settings.discovery_interval_s
    requests = sorted(r.counts.get("requests", 0) for r in scanning)[len(scanning) // 2]
    if typical <= interval:
        return None
    return Check(
        "discovery-pace",
        Status.WARN,
        f"a discovery pass takes {typical:.0f} s, longer than its {interval:g} s interval "
        f"({requests} requests at resy.max_rps {settings.resy_max_rps:g}): buckets are "
        "scanned a cycle late; raise resy.max_rps or discovery.interval_s, or scan fewer days "
        "or party sizes",
        typical,
    )


def _oldest_pending_notification(session: Session) -> datetime | None:
    n = plain.notification.c
    oldest: datetime | None = session.scalar(
        select(func.min(n.created_at, type_=TIMESTAMP)).where(
            n.status == NotificationStatus.PENDING
        )
    )
    return aware(oldest) if oldest else None


def _failed_notifications(session: Session, now: datetime) -> int:
    """Notifications given up on within the lookback."""
    n = plain.notification.c
    return (
        session.scalar(
            select(func.count()).where(
                n.status == NotificationStatus.FAILED, n.created_at >= now - FAILURES_LOOKBACK
            )
        )
        or 0
    )


def _failed_bookings(session: Session, now: datetime) -> int:
    """Booking attempts that failed within the lookback (one in flight has not failed)."""
    b = plain.booking_attempt.c
    return (
        session.scalar(
            select(func.count()).where(
                failed_outcome(b.outcome), b.created_at >= now - FAILURES_LOOKBACK
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
    discovery: Started | None, states: list[BucketState], settings: Settings, now: datetime
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
    beats: dict[str, Heartbeat],
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
    db: Database,
    now: datetime,
    within: timedelta = TOKEN_CHECK_REUSE,
    *,
    tokens_changed_at: datetime | None = None,
) -> datetime | None:
    """When Resy last accepted the token (a 2xx answer to `/2/user` in the last `within`),
    or None. A login since then, or a change to the file that keeps the tokens
    (`tokens_changed_at`: a refresh, a token edited by hand), may have changed the token:
    then None, and health asks."""
    log = plain.api_call_log.c
    with db.read() as session:
        accepted = session.scalar(
            select(func.max(log.at, type_=TIMESTAMP)).where(
                log.endpoint == "/2/user",
                log.status >= 200,
                log.status < 300,
                log.at >= now - within,
            )
        )
        login = session.scalar(
            select(func.max(log.at, type_=TIMESTAMP)).where(log.endpoint.in_(LOGIN_ENDPOINTS))
        )
    if accepted is None:
        return None
    changes = (aware(login) if login else None, tokens_changed_at)
    if any(changed is not None and changed >= aware(accepted) for changed in changes):
        return None
    return aware(accepted)


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


RELOGIN = "run `resywatch auth login [--account NAME]`"


def _accounts_check(table: dict[str, AccountTokens], settings: Settings, now: datetime) -> Check:
    """Every account's token, from its expiry: one that has lapsed is CRIT, one within the
    refresh margin is WARN (the `tokens` job renews tokens before that: one still there
    could not be refreshed). No Resy call: `resy_auth` asks Resy about the token in use."""
    margin = timedelta(days=settings.auth_refresh_margin_days)
    lapsed, lapsing = [], []
    for account in table.values():
        expires = account.expires_at
        if expires is None:
            continue
        if expires <= now:
            lapsed.append(f"{account.name} (expired {expires:%Y-%m-%d})")
        elif expires - now <= margin:
            how = "refresh refused or failing" if account.refresh_token else "no refresh cookie"
            days = (expires - now) / timedelta(days=1)
            lapsing.append(f"{account.name} (expires in {days:.1f} days, {how})")
    if lapsed:
        return Check(
            "accounts",
            Status.CRIT,
            f"login expired: {', '.join(lapsed + lapsing)}: {RELOGIN}",
            float(len(lapsed)),
        )
    if lapsing:
        return Check(
            "accounts",
            Status.WARN,
            f"login not refreshed: {', '.join(lapsing)}: {RELOGIN}",
            float(len(lapsing)),
        )
    return Check("accounts", Status.OK, f"{len(table)} accounts, none expiring unrefreshed")


def _held_back(state: HostState | None, now: datetime) -> str | None:
    """Why no worker may call Resy right now, if none may."""
    if state is None:
        return None
    if state.open_until is not None and state.open_until > now:
        return "its circuit breaker is open"
    if state.paused_until is not None and state.paused_until > now:
        return "paused by Retry-After"
    return None


def _breaker_check(state: HostState | None, settings: Settings, now: datetime) -> Check:
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
