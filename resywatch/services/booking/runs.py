"""Running snipes: `run_due_snipes` (what `resywatch run snipes` and `run-forever` call)
takes the due ones with a lease, so two workers never run the same, runs each to its end
with a `Sniper`, and marks the ones nobody ran in time as missed. `snipe_now` is the
foreground `book snipe`: saved already taken by this process, then run here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, and_, col, or_, select

from resywatch.db import leases
from resywatch.db.models import ScheduledSnipe, SnipeStatus
from resywatch.db.models.booking import Outcome
from resywatch.errors import ResywatchError
from resywatch.services import outbox
from resywatch.services.booking import series
from resywatch.services.booking.attempts import finish_attempt, result_of, start_attempt
from resywatch.services.booking.lane import SnipeLane
from resywatch.services.booking.outcomes import BookingResult, Verdict
from resywatch.services.booking.plan import BookingPlan, want_for
from resywatch.services.booking.schedule import (
    SnipeSpec,
    SnipeView,
    give_up_at,
    lease_until,
    schedule_snipe,
    view_of,
)
from resywatch.services.booking.sniper import Sniper
from resywatch.services.vocabulary import stored_times

if TYPE_CHECKING:
    from resywatch.config import Settings
    from resywatch.db.engine import Database
    from resywatch.runtime import Runtime

#: While snipes run, a pass looks this often for more coming due.
ADOPT_EVERY_S = 1.0


@dataclass(frozen=True)
class SnipeRun:
    """What one due snipe ended as."""

    snipe_id: int
    status: str  # done | missed | cancelled
    result: BookingResult | None


async def snipe_now(
    rt: Runtime, spec: SnipeSpec, *, on_scheduled: Callable[[SnipeView], None] | None = None
) -> tuple[SnipeView, BookingResult]:
    """`book snipe`: save the snipe already taken by this process (no supervisor starts it
    too), then run it here to its end."""
    saved = await schedule_snipe(rt, spec, owner=str(rt.worker))
    if on_scheduled is not None:
        on_scheduled(saved)
    with rt.db.read() as session:
        row = session.get(ScheduledSnipe, saved.id)
    assert row is not None
    ran = await run_snipe(rt, row, SnipeLane(rt), 0.0)
    if ran.result is None:
        raise ResywatchError(f"snipe {saved.id} was taken over by another runner")
    return view_of(rt.db, saved.id), ran.result


async def run_due_snipes(rt: Runtime) -> list[SnipeRun]:
    """Run the snipes whose release instant is within `book_prepare_s`, each to its end, at
    once, on the runtime's clock; mark the ones nobody ran in time as missed. A snipe
    another worker holds is left to it.

    While some run, snipes coming due are taken too (every ADOPT_EVERY_S), so one snipe's
    minutes never make the next one late; the pass returns when none is left running. If
    the pass is stopped (the supervisor's SIGTERM), its snipes go back to the schedule for
    another runner.
    """
    owner, at = str(rt.worker), rt.clock.now()
    runs = _mark_missed(rt.db, at)
    running: set[asyncio.Task[SnipeRun]] = set()
    lane = SnipeLane(rt)  # one client, one lane limiter for every snipe of the pass
    try:
        while True:
            taken = _take_due(rt.db, rt.settings, owner, at)
            for row, phase in zip(taken, _phases(taken), strict=True):
                running.add(asyncio.create_task(run_snipe(rt, row, lane, phase, release=True)))
            if not running:
                return runs
            nap = asyncio.create_task(rt.clock.sleep(ADOPT_EVERY_S))
            waiting: set[asyncio.Future[Any]] = {*running, nap}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            nap.cancel()
            for task in [t for t in running if t in done]:
                running.discard(task)
                runs.append(task.result())
            at = rt.clock.now()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def _phases(rows: Sequence[ScheduledSnipe]) -> list[float]:
    """Snipes sharing an instant stagger their finds evenly across the interval: the k-th of
    n gets phase k/n."""
    sharing: dict[datetime, int] = {}
    for row in rows:
        sharing[row.release_at] = sharing.get(row.release_at, 0) + 1
    seen: dict[datetime, int] = {}
    phases = []
    for row in rows:
        k = seen[row.release_at] = seen.get(row.release_at, -1) + 1
        phases.append(k / sharing[row.release_at])
    return phases


def snipe_counts(runs: Sequence[SnipeRun]) -> dict[str, int]:
    """A pass's figures, as the job log records them."""
    booked = sum(1 for r in runs if r.result is not None and r.result.outcome is Outcome.BOOKED)
    return {
        "snipes": len(runs),
        "booked": booked,
        "missed": sum(1 for r in runs if r.status == SnipeStatus.MISSED),
        "not_booked": sum(1 for r in runs if r.status == SnipeStatus.DONE) - booked,
    }


def _take_due(db: Database, settings: Settings, owner: str, now: datetime) -> list[ScheduledSnipe]:
    horizon = now + timedelta(seconds=settings.book_prepare_s)
    with db.read() as session:
        ids = [
            row.id
            for row in session.exec(
                select(ScheduledSnipe)
                .where(
                    col(ScheduledSnipe.status) == SnipeStatus.SCHEDULED,
                    col(ScheduledSnipe.release_at) <= horizon,
                )
                .order_by(col(ScheduledSnipe.release_at))
            )
            if row.id is not None
        ]
    return [row for row in (_claim(db, i, owner, now) for i in ids) if row is not None]


_LEASES = leases.LeaseColumns(
    ScheduledSnipe.__table__,  # type: ignore[attr-defined]
    key="id",
    owner="claimed_by",
    until="claimed_until",
)


def _claim(db: Database, snipe_id: int, owner: str, now: datetime) -> ScheduledSnipe | None:
    """Take the snipe if it is still scheduled (one UPDATE: two workers cannot both
    succeed). Its lease lasts until the snipe is missed anyway, so it is never renewed."""
    with db.write() as session:
        row = session.get(ScheduledSnipe, snipe_id)
        if row is None:
            return None
        taken = leases.claim(
            session,
            _LEASES,
            where=and_(
                col(ScheduledSnipe.id) == snipe_id,
                col(ScheduledSnipe.status) == SnipeStatus.SCHEDULED,
            ),
            owner=owner,
            values={
                "status": SnipeStatus.RUNNING,
                "claimed_until": lease_until(row),
                "runs": col(ScheduledSnipe.runs) + 1,
                "updated_at": now,
            },
        )
        if not taken:
            return None
        session.expire(row)
        return session.get(ScheduledSnipe, snipe_id)


def _mark_missed(db: Database, now: datetime) -> list[SnipeRun]:
    """Snipes past their deadline that no runner took, or whose runner died (its lease ran
    out, which happens only after the deadline): missed, and said so."""
    runs: list[SnipeRun] = []
    with db.write() as session:
        rows = session.exec(
            select(ScheduledSnipe).where(
                or_(
                    col(ScheduledSnipe.status) == SnipeStatus.SCHEDULED,
                    and_(
                        col(ScheduledSnipe.status) == SnipeStatus.RUNNING,
                        col(ScheduledSnipe.claimed_until) < now,
                    ),
                )
            )
        ).all()
        for row in rows:
            if give_up_at(row) > now or row.id is None:
                continue
            row.message = (
                "no runner took this snipe before its deadline: is `resywatch run-forever` (or "
                "the `resywatch run snipes` cron line) running?"
                if row.status == SnipeStatus.SCHEDULED
                else "its runner stopped before the snipe ended"
            )
            row.status, row.updated_at, row.finished_at = SnipeStatus.MISSED, now, now
            session.add(outbox.snipe_missed(row, row.message))
            series.follow_up(session, row, now)  # a missed occurrence does not end its series
            runs.append(SnipeRun(row.id, SnipeStatus.MISSED, None))
    return runs


async def run_snipe(
    rt: Runtime, row: ScheduledSnipe, lane: SnipeLane, phase: float, *, release: bool = False
) -> SnipeRun:
    """Run one snipe this runner holds, to its end; its attempt and notification are
    written when it ends. Interrupted, it is cancelled (the user's Ctrl-C), or with
    `release` given back to the schedule for another runner (a supervisor stopping)."""
    assert row.id is not None
    plan = _plan_of(row)
    attempt_id = start_attempt(
        rt.db, source="snipe", source_id=row.id, plan=plan, slot=None,
        claim_key=f"snipe:{row.id}:{row.runs}", now=rt.clock.now(),
    )  # fmt: skip
    if attempt_id is None:  # another runner took this very run over
        return SnipeRun(row.id, SnipeStatus.RUNNING, None)
    try:
        rt = rt.for_account(row.account)  # its account's token, as it is now
    except ResywatchError as exc:  # the account was logged out since
        failed = Verdict(Outcome.AUTH_EXPIRED, str(exc))
        result = _finish(
            rt, row, plan, Sniper(rt, row, plan, lane, phase), failed, attempt_id, SnipeStatus.DONE
        )
        return SnipeRun(row.id, SnipeStatus.DONE, result)
    sniper = Sniper(rt, row, plan, lane, phase)
    status = SnipeStatus.DONE
    try:
        verdict = await sniper.run()
    except asyncio.CancelledError:
        if release:
            message = "its runner stopped before it could book: back in the schedule"
            status = SnipeStatus.SCHEDULED
        else:
            message, status = "interrupted before it could book", SnipeStatus.CANCELLED
        _finish(rt, row, plan, sniper, Verdict(Outcome.FAILED, message), attempt_id, status)
        raise
    if verdict.outcome is Outcome.DECLINED:  # cancelled by `book schedule cancel`
        status = SnipeStatus.CANCELLED
    result = _finish(rt, row, plan, sniper, verdict, attempt_id, status)
    return SnipeRun(row.id, status, result)


def _plan_of(row: ScheduledSnipe) -> BookingPlan:
    """The saved snipe's plan (its ceilings were merged with the settings when saved)."""
    return BookingPlan(
        venue_id=row.venue_id,
        venue_name=row.venue_name,
        want=want_for(
            row.slot_date, row.party_size, at=stored_times(row.preferred_times),
            window=(row.time_from, row.time_to) if row.time_from and row.time_to else None,
            seating_types=row.seating_types,
        )[0],
        preferred=row.preferred_time,
        payment_method_id=row.payment_method_id,
        max_total=row.max_total,
        max_cancel_fee=row.max_cancel_fee,
        dry_run=row.dry_run,
    )  # fmt: skip


def _finish(
    rt: Runtime,
    row: ScheduledSnipe,
    plan: BookingPlan,
    sniper: Sniper,
    verdict: Verdict,
    attempt_id: int,
    status: str,
) -> BookingResult:
    result = result_of(verdict, plan, sniper.steps, rt.settings, attempt_id)
    warning = sniper.pacing_warning()
    if warning is not None:
        logging.getLogger(__name__).warning("%s", warning)
    result = replace(
        result,
        latency_ms=result.latency_ms | sniper.timeline(),
        warnings=(warning,) if warning else (),
    )
    now = rt.clock.now()
    snipe_id = row.id

    def close(session: Session) -> None:
        snipe = session.get(ScheduledSnipe, snipe_id)
        if snipe is None:
            return
        snipe.attempt_id, snipe.updated_at, snipe.message = attempt_id, now, result.message
        snipe.claimed_by, snipe.claimed_until = None, None
        if status == SnipeStatus.SCHEDULED:  # given back: no outcome yet
            if snipe.status == SnipeStatus.RUNNING:
                snipe.status = status
            return
        if snipe.status == SnipeStatus.RUNNING:
            snipe.status = status
        snipe.outcome, snipe.finished_at = result.outcome.value, now
        if snipe.status == SnipeStatus.DONE:  # booked or not; a cancelled one has no next
            series.follow_up(session, snipe, now)

    finish_attempt(rt.db, attempt_id, result, notify=True, now=now, then=close)
    return result
