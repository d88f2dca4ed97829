"""Politeness towards Resy that every worker process and every cron pass obeys together.

The state is one `resy_host` row per host, so it holds across processes and machines where an
in-memory limiter or breaker would not (each cron pass is a new process):

- **Budget** (GCRA): `next_free_at` is the virtual time at which the next request would be
  exactly on schedule. A request may go when it is at most `burst - 1` intervals ahead of
  it, and moves it on by one interval. Over any window of T seconds, all processes together
  make at most `rate * T + burst` requests.
- **Pause**: a 429's Retry-After (up to the client's retry cap) holds every caller back until
  `paused_until`; afterwards requests resume at the steady rate, without a burst.
- **Snipe windows**: while a snipe's window is open (`services/booking/lane.py`), every caller
  of this budget waits until it closes: the snipe's requests go by a lane of their own.
- **Breaker**: `breaker_failures` transient failures in a row (timeouts, refused connections,
  5xx, 429, firewall blocks) open it for `breaker_cooldown_s`, as does a Retry-After longer
  than the cap (for that long, at most 6 h). While it is open no request is made; then one
  caller, across all processes, wins the trial call by a conditional UPDATE of
  `probe_until`. Any answer from Resy closes it, errors that prove Resy is up (auth, 404,
  412...) included; a failed trial opens it for another cooldown.

Each request costs one short write transaction on the row (SQLite: BEGIN IMMEDIATE;
PostgreSQL: the row `FOR UPDATE`, under the connection's lock timeout), run in a thread so
the event loop never waits on the database. A success costs nothing more unless it ends a
run of failures.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from resywatch.clock import SYSTEM_CLOCK, Clock
from resywatch.config import Settings
from resywatch.db.engine import Database, rows_changed
from resywatch.db.models import ResyHost, SnipeWindow
from resywatch.db.plain import LAST_ERROR_CHARS
from resywatch.errors import DatabaseUnavailable
from resywatch.redact import redact_text
from resywatch.resy import errors

_HOST = ResyHost.__table__  # type: ignore[attr-defined]
MAX_PAUSE = timedelta(hours=6)  # urllib3's cap: no server keeps us away longer than this
PROBE_MARGIN_S = 5.0  # the trial call's lease outlives its deadline by this much
YIELD_RECHECK_S = 1.0  # a caller yielding to a snipe window looks again this often


@dataclass(frozen=True)
class PolitenessPolicy:
    """The shared limits, from the settings."""

    rate: float  # requests a second to the host, every process together
    burst: int  # requests that may go at once after a quiet spell
    retry_after_cap_s: float  # a longer Retry-After opens the breaker instead of pausing
    breaker_failures: int
    breaker_cooldown_s: float
    probe_s: float  # how long the trial call holds the half-open breaker
    secrets: tuple[str, ...] = field(default=(), repr=False)  # masked in last_error

    @classmethod
    def from_settings(cls, settings: Settings) -> PolitenessPolicy:
        from resywatch.resy.transport import RetryPolicy  # the HTTP stack: only when asking

        return cls(
            rate=settings.resy_max_rps,
            burst=settings.resy_burst,
            retry_after_cap_s=RetryPolicy().cap_s,  # what the client waits out itself
            breaker_failures=settings.resy_breaker_failures,
            breaker_cooldown_s=settings.resy_breaker_cooldown_s,
            probe_s=settings.resy_timeout_s + PROBE_MARGIN_S,
            secrets=tuple(settings.secrets()),
        )

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=1 / self.rate)

    @property
    def tolerance(self) -> timedelta:
        """How far ahead of the schedule a request may go: `burst` requests at once."""
        return self.interval * (self.burst - 1)


class SharedPoliteness:
    """The database-backed `HostGate` for `ResyClient` (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        policy: PolitenessPolicy,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.db, self.policy, self.clock = db, policy, clock
        # Hosts whose row looked closed with no failure when last seen: a success there
        # needs no write (the common case).
        self._clean: dict[str, bool] = {}

    async def before_call(self, host: str) -> None:
        while (wait := await asyncio.to_thread(self._admit, host)) > 0:
            await self.clock.sleep(wait)

    async def after_call(self, host: str, error: errors.ResyError | None) -> None:
        try:
            if error is None or error.permanent:  # Resy answered: it is up
                if not self._clean.get(host, False):
                    await asyncio.to_thread(self._record_answer, host)
            else:
                await asyncio.to_thread(self._record_failure, host, error)
        except SQLAlchemyError as exc:
            # The call's own outcome matters more than its bookkeeping: never mask it.
            logging.getLogger(__name__).warning(
                "could not record the outcome of a Resy call: %s", type(exc).__name__
            )

    # -- transactions (each runs in a worker thread) -------------------------------------------

    def _admit(self, host: str) -> float:
        """Take one request from the budget: 0 when it may go now, else seconds to wait."""
        policy = self.policy
        try:
            with self.db.write() as session:
                now = self._now()
                row = locked_host_row(session, host, now)
                self._clean[host] = row.consecutive_failures == 0 and row.opened_at is None
                trial = row.opened_at is not None
                if trial:
                    if row.open_until is not None and now < row.open_until:
                        raise _open(row)
                    if row.probe_until is not None and now < row.probe_until:
                        raise _open(row, trial=True)
                if row.paused_until is not None and now < row.paused_until:
                    return (row.paused_until - now).total_seconds()
                if (window := _open_window_until(session, host, now)) is not None:
                    return min((window - now).total_seconds(), YIELD_RECHECK_S)
                due = max(row.next_free_at or now, now)
                if due - policy.tolerance > now:
                    return (due - policy.tolerance - now).total_seconds()
                claim = update(_HOST).where(_HOST.c.host == host)
                if trial:  # half-open: whoever moves probe_until first makes the one trial
                    claim = claim.where(
                        or_(_HOST.c.probe_until.is_(None), _HOST.c.probe_until <= now)
                    ).values(probe_until=now + timedelta(seconds=policy.probe_s))
                claim = claim.values(next_free_at=due + policy.interval, updated_at=now)
                taken = rows_changed(session.execute(claim))
                if not taken:
                    raise _open(row, trial=True)
                return 0.0
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(
                f"cannot read Resy's shared request budget: {type(exc).__name__}"
            ) from None

    def _record_answer(self, host: str) -> None:
        """Resy answered: the failure run ends and the breaker closes."""
        c = _HOST.c
        with self.db.write() as session:
            session.execute(
                update(_HOST)
                .where(c.host == host, or_(c.consecutive_failures > 0, c.opened_at.is_not(None)))
                .values(
                    consecutive_failures=0,
                    opened_at=None,
                    open_until=None,
                    probe_until=None,
                    updated_at=self._now(),
                )
            )
        self._clean[host] = True

    def _record_failure(self, host: str, error: errors.ResyError) -> None:
        """A transient failure: count it, pause for a Retry-After, open the breaker."""
        policy = self.policy
        self._clean[host] = False
        with self.db.write() as session:
            now = self._now()
            row = locked_host_row(session, host, now)
            failures = row.consecutive_failures + 1
            values: dict[str, Any] = {
                "consecutive_failures": failures,
                "last_error": redact_text(_error_text(error), policy.secrets)[:LAST_ERROR_CHARS],
                "updated_at": now,
            }
            open_for: timedelta | None = None
            retry_after = error.retry_after if isinstance(error, errors.RateLimited) else None
            if retry_after is not None and retry_after > policy.retry_after_cap_s:
                open_for = min(timedelta(seconds=retry_after), MAX_PAUSE)  # told to stay away
            elif retry_after:
                paused_until = max(row.paused_until or now, now + timedelta(seconds=retry_after))
                values["paused_until"] = paused_until
                # Resume at the steady rate when the pause ends, not with a burst.
                values["next_free_at"] = max(
                    row.next_free_at or now, paused_until + policy.tolerance
                )
            if row.opened_at is None:
                if failures >= policy.breaker_failures:
                    open_for = max(open_for or timedelta(0), self._cooldown)
            elif row.open_until is None or row.open_until <= now:
                open_for = max(open_for or timedelta(0), self._cooldown)  # the trial failed
            if open_for is not None:
                values.update(
                    opened_at=row.opened_at or now,
                    open_until=max(row.open_until or now, now + open_for),
                    probe_until=None,
                )
            session.execute(update(_HOST).where(_HOST.c.host == host).values(**values))

    @property
    def _cooldown(self) -> timedelta:
        return timedelta(seconds=self.policy.breaker_cooldown_s)

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)


def locked_host_row(session: Session, host: str, now: datetime) -> ResyHost:
    """The host's row, locked for this transaction; created on first use."""
    query = orm_select(ResyHost).where(col(ResyHost.host) == host).with_for_update()
    row = session.exec(query).one_or_none()
    if row is None:
        try:
            with session.begin_nested():
                session.execute(
                    insert(_HOST).values(host=host, consecutive_failures=0, updated_at=now)
                )
        except IntegrityError:
            pass  # another process created it first; its row is read below
        row = session.exec(query).one()
    return row


def _open_window_until(session: Session, host: str, now: datetime) -> datetime | None:
    """When the snipe windows open on `host` now close (None: none is open)."""
    closes = session.exec(
        orm_select(func.max(SnipeWindow.closes_at)).where(
            col(SnipeWindow.host) == host,
            col(SnipeWindow.opens_at) <= now,
            col(SnipeWindow.closes_at) > now,
        )
    ).one()
    return closes if closes is None or closes.tzinfo else closes.replace(tzinfo=UTC)


def _error_text(error: errors.ResyError) -> str:
    """`last_error`: the kind first, so that the breaker can tell what opened it."""
    return f"{error.kind}: {error}"


def _open(row: ResyHost, trial: bool = False) -> errors.CircuitOpen:
    # Opened by a 429 (the failure that tipped it): callers are told they are rate limited.
    rate_limiting = (row.last_error or "").startswith(f"{errors.RateLimited.kind}:")
    if trial:
        return errors.CircuitOpen(
            "Resy circuit breaker half-open: another caller's trial call is testing Resy "
            f"after {row.consecutive_failures} failures: {row.last_error}",
            until=row.open_until,
            failures=row.consecutive_failures,
            reason=row.last_error,
            rate_limiting=rate_limiting,
        )
    return errors.CircuitOpen(
        until=row.open_until,
        failures=row.consecutive_failures,
        reason=row.last_error,
        rate_limiting=rate_limiting,
    )
