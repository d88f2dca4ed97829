"""Snipes: book at a release instant T, faster than a find -> details -> book loop.

How one runs:

- T - prepare_s: wake up. Check the credentials and card (`/2/user`) and the upcoming
  reservations (already booked there that day: stop), and look at the day itself (already
  out: book now). Predict the target day's config tokens from slots seen on days already
  released (`rgs://resy/<venue>/<template>/<service>/<day>/<day>/<time>/<party>/<type>` is
  deterministic), then fetch the book token and quote of the best predicted slot: a quote
  above the ceilings stops the snipe now rather than at T, and the token (good ~5 minutes)
  is refreshed while waiting.
- Until T - lead_s: sleep, with a cheap request every few seconds so the connection is open
  and warm at T (a cold TLS handshake costs a round trip or two).
- From T - lead_s, one tick every poll_interval_s. Until the drop is seen (for SPECULATE_S
  past T at most: one find a tick after that), each tick sends FIND_FANOUT finds staggered
  across it (reads, safe to overlap), so the drop is seen within a fraction of the
  interval; once it is, the best open slot is booked with the token made ready before T
  when the prediction was right (a find -> details -> book loop needs a poll and a round
  trip more), else its token is fetched first.
- Speculation (opt-in: `book.speculate`, `book snipe --speculate`): until the drop is seen
  (and for SPECULATE_S past T at most), ticks send the ready book request for the best
  predicted slot instead, every FIND_EVERY-th with a find beside it. How Resy answers a book
  for a slot not yet released is unseen in any public client, so these refusals never end
  the snipe and are never reported to the shared breaker.
- Stops when booked or refused for good, at T + late_s if the drop never came, deadline_s
  after the drop was seen, or when the request budget is spent.

Scheduled snipes persist (`scheduled_snipe`); `run_due_snipes` (what `resywatch run snipes`
and `run-forever` call) takes the due ones with a lease, so two workers never run the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, and_, col, or_, select

from resywatch.db import leases
from resywatch.db.models import ScheduledSnipe, SnipeStatus, Venue
from resywatch.errors import InvalidInput, NotFound, ResywatchError
from resywatch.ids import may_name_a_row
from resywatch.resy import errors as resy_errors
from resywatch.resy.models import FindResponse
from resywatch.services import outbox
from resywatch.services.booking import (
    Booker,
    BookingPlan,
    BookingResult,
    Outcome,
    Quote,
    Steps,
    Verdict,
    already_booked,
    check_time_in_window,
    finish_attempt,
    held_at,
    no_slot_message,
    over_ceiling,
    quote_of,
    rank,
    rate_limits_stop_the_booking,
    result_of,
    start_attempt,
    verdict_for_error,
    want_for,
)
from resywatch.services.discovery.patterns import patterns
from resywatch.services.vocabulary import (
    OpenSlot,
    describe_slot,
    local_today,
    slot_id,
    validate_want,
    window_text,
)

if TYPE_CHECKING:
    from resywatch.config import Settings
    from resywatch.db.engine import Database
    from resywatch.resy.client import ResyClient

T = TypeVar("T")

#: Every FIND_EVERY-th tick also looks (a find) beside the ready book request.
FIND_EVERY = 5
#: Without speculation, finds sent per tick (staggered) until the drop is seen.
FIND_FANOUT = 4
#: Book requests are sent blind (before the drop is seen) up to this long past T at most;
#: later, a late drop is caught by finds (Resy needn't see minutes of unanswerable books).
SPECULATE_S = 15.0
#: A cheap request this often while waiting keeps the connection open (httpx drops idle
#: connections after 5 s).
WARM_EVERY_S = 4.0
#: A book token is fetched again when it expires within this (Resy's last about 5 minutes).
TOKEN_MARGIN_S = 30.0
#: Days before the target searched for slots to predict its tokens from (same weekday first).
REFERENCE_OFFSETS = (7, 1, 14, 2)
#: While snipes run, a pass looks this often for more coming due.
ADOPT_EVERY_S = 1.0
#: Wait before a snipe counts as missed, beyond its deadline, and the lease beyond that.
LEASE_MARGIN = timedelta(minutes=2)
#: Book requests refused as conflicts (412) or bad (400) before the snipe gives up; at drop
#: time Resy answers some 412s that a fresh token fixes (RESY_API.md §5.3, Alkaar #168).
MAX_REFUSALS = 3
#: Open slots tried in one tick when the better ones turn out taken.
MAX_TRIES_PER_TICK = 3

_TOKEN = re.compile(
    r"^rgs://resy/(?P<venue>\d+)/(?P<template>\d+)/(?P<service>\d+)/\d{4}-\d{2}-\d{2}/"
    r"\d{4}-\d{2}-\d{2}/(?P<time>\d{2}:\d{2}:\d{2})/\d+/(?P<type>.+)$"
)


class Clock(Protocol):
    """The snipe's time: tests run it on the sandbox's (possibly sped-up) clock."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def predict_token(token: str, day: date, party_size: int) -> str | None:
    """The config token of the same slot on another day and party size, if `token` has the
    known `rgs://` form."""
    found = _TOKEN.match(token)
    if found is None:
        return None
    return (
        f"rgs://resy/{found['venue']}/{found['template']}/{found['service']}/{day}/{day}/"
        f"{found['time']}/{party_size}/{found['type']}"
    )


# --- scheduling -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SnipeSpec:
    """`book snipe` / `book schedule add`: what to book, when it is released, how to poll."""

    venue: str
    day: date
    party_size: int
    at: time | None = None
    window: tuple[time, time] | None = None
    seating_types: tuple[str, ...] = ()
    release_at: datetime | None = None  # --at: aware, or naive = the venue's local time
    lead_days: int | None = None  # --lead-days N
    auto_lead: bool = False  # --lead-days auto: /2/config, else the learned pattern
    release_time: time | None = None  # --release-time: else the learned pattern's
    payment_method_id: int | None = None
    max_total: float | None = None  # None: the settings' ceilings and polling
    max_cancel_fee: float | None = None
    dry_run: bool = False
    lead_s: float | None = None
    poll_interval_s: float | None = None
    deadline_s: float | None = None
    late_s: float | None = None
    request_budget: int | None = None


@dataclass(frozen=True)
class SnipeView:
    id: int
    venue_id: int
    venue_name: str
    day: date
    party_size: int
    window: str | None
    preferred_time: str | None
    seating_types: list[str]
    release_at: datetime
    release_source: str
    status: str
    outcome: str | None
    message: str | None
    attempt_id: int | None
    dry_run: bool
    lead_s: float
    poll_interval_s: float
    deadline_s: float
    late_s: float
    request_budget: int
    created_at: datetime
    finished_at: datetime | None


def view(row: ScheduledSnipe) -> SnipeView:
    assert row.id is not None
    return SnipeView(
        id=row.id,
        venue_id=row.venue_id,
        venue_name=row.venue_name,
        day=row.slot_date,
        party_size=row.party_size,
        window=window_text(row.time_from, row.time_to),
        preferred_time=f"{row.preferred_time:%H:%M}" if row.preferred_time else None,
        seating_types=list(row.seating_types),
        release_at=row.release_at,
        release_source=row.release_source,
        status=row.status,
        outcome=row.outcome,
        message=row.message,
        attempt_id=row.attempt_id,
        dry_run=row.dry_run,
        lead_s=row.lead_s,
        poll_interval_s=row.poll_interval_s,
        deadline_s=row.deadline_s,
        late_s=row.late_s,
        request_budget=row.request_budget,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


async def schedule_snipe(
    *,
    db: Database,
    resy: ResyClient,
    settings: Settings,
    spec: SnipeSpec,
    now: datetime,
    owner: str | None = None,
) -> SnipeView:
    """Validate (exit 2, nothing written), resolve the venue (exit 3) and the release
    instant, then save the snipe. With `owner`, it is saved already taken by that runner (the
    foreground `book snipe`), so that no supervisor starts it too."""
    from resywatch.services.venues import resolve_venue

    check_time_in_window(spec.at, spec.window)
    want, preferred = want_for(
        spec.day, spec.party_size, at=spec.at, window=spec.window, seating_types=spec.seating_types
    )
    validate_want(want, local_today(now, settings.timezone))
    if spec.release_at is None and spec.lead_days is None and not spec.auto_lead:
        raise InvalidInput("say when the day is released: --at 'YYYY-MM-DD HH:MM' or --lead-days")
    if spec.lead_days is not None and not 0 <= spec.lead_days <= 365:
        raise InvalidInput("--lead-days is a number of days (0-365) or auto")
    _check_limits(spec, settings)
    if spec.release_at is not None and spec.release_at.date() > spec.day + timedelta(days=1):
        # Past the date in any zone; refused before the venue is looked up (and remembered).
        raise InvalidInput(f"--at {spec.release_at} is after the reservation date {spec.day}")
    with rate_limits_stop_the_booking():
        venue = await resolve_venue(resy=resy, db=db, settings=settings, text=spec.venue, now=now)
        release_at, source = await _release_instant(resy, db, settings, venue, spec)
    row = ScheduledSnipe(
        venue_id=venue.id,
        venue_name=venue.name,
        slot_date=spec.day,
        party_size=spec.party_size,
        time_from=want.time_from,
        time_to=want.time_to,
        preferred_time=preferred,
        seating_types=list(spec.seating_types),
        release_at=release_at,
        release_source=source,
        payment_method_id=spec.payment_method_id,
        max_total=_or(spec.max_total, settings.book_max_total),
        max_cancel_fee=_or(spec.max_cancel_fee, settings.book_max_cancel_fee),
        lead_s=_or(spec.lead_s, settings.book_lead_s),
        poll_interval_s=_or(spec.poll_interval_s, settings.book_poll_interval_s),
        deadline_s=_or(spec.deadline_s, settings.book_deadline_s),
        late_s=_or(spec.late_s, settings.book_late_s),
        request_budget=spec.request_budget or settings.book_request_budget,
        dry_run=spec.dry_run,
        created_at=now,
        updated_at=now,
    )
    if _give_up_at(row) <= now:
        raise InvalidInput(
            f"{venue.name} released {spec.day} at {_local(release_at, settings)}, too long ago "
            "to snipe: use `resywatch book now`"
        )
    if owner is not None:
        row.status, row.claimed_by = SnipeStatus.RUNNING, owner
        row.claimed_until, row.runs = _lease(row), 1
    with db.write() as session:
        session.add(row)
        session.flush()
        return view(row)


# The bounds of the `[book]` settings, which the flags override: a snipe polls at most every
# 10 ms, for at most an hour after the drop, within at most 100,000 requests.
_LIMITS = {
    "--lead": ("lead_s", "book_lead_s", 0.0, 300.0, "s"),
    "--interval": ("poll_interval_s", "book_poll_interval_s", 0.01, 60.0, "s"),
    "--deadline": ("deadline_s", "book_deadline_s", 0.001, 3600.0, "s"),
    "--late": ("late_s", "book_late_s", 0.0, 3600.0, "s"),
    "--budget": ("request_budget", "book_request_budget", 10, 100_000, ""),
}


def _check_limits(spec: SnipeSpec, settings: Settings) -> None:
    for flag, (field, setting, low, high, unit) in _LIMITS.items():
        value = getattr(spec, field)
        value = getattr(settings, setting) if value is None else value
        if not low <= value <= high:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            raise InvalidInput(
                f"{flag} {shown}{unit} is out of range: {low:g}{unit} to {high:g}{unit}"
            )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _local(moment: datetime, settings: Settings) -> str:
    return f"{moment.astimezone(ZoneInfo(settings.timezone)):%Y-%m-%d %H:%M:%S %Z}"


async def _release_instant(
    resy: ResyClient, db: Database, settings: Settings, venue: Venue, spec: SnipeSpec
) -> tuple[datetime, str]:
    """The release instant (UTC) and where it came from: at | lead-days | config | pattern."""
    zone = await _zone(resy, venue, settings)
    if spec.release_at is not None:
        at = spec.release_at if spec.release_at.tzinfo else spec.release_at.replace(tzinfo=zone)
        try:
            local, utc = at.astimezone(zone), at.astimezone(UTC)
        except OverflowError:  # a zone pushed it off the calendar
            raise InvalidInput(f"--at {spec.release_at} is out of range") from None
        if local.date() > spec.day:
            raise InvalidInput(f"--at {spec.release_at} is after the reservation date {spec.day}")
        return utc, "at"
    with db.read() as session:
        learned = patterns(session, default_timezone=settings.timezone, venue_id=venue.id)
    pattern = learned[0] if learned else None
    lead, source = spec.lead_days, "lead-days"
    if lead is None:
        try:
            lead, source = (await resy.venue_config(venue.id)).lead_time_in_days, "config"
        except resy_errors.NotFound:
            lead = None
        if lead is None and pattern is not None and pattern.lead_days is not None:
            lead, source = pattern.lead_days, "pattern"
        if lead is None:
            raise InvalidInput(
                f"Resy does not say how many days ahead {venue.name} releases tables: "
                "pass --lead-days N, or --at"
            )
    release_time = spec.release_time
    if release_time is None:
        if pattern is None or pattern.release_time is None:
            raise InvalidInput(
                f"no release time is known for {venue.name}: pass --release-time HH:MM (its "
                "Resy page often says, e.g. 'released 14 days ahead at 10 AM') or --at; "
                "`resywatch discover patterns` learns it from the drops it sees"
            )
        hours, minutes = (int(part) for part in pattern.release_time.split(":"))
        release_time, source = time(hours, minutes), "pattern"
    local = datetime.combine(spec.day - timedelta(days=lead), release_time, tzinfo=zone)
    return local.astimezone(UTC), source


async def _zone(resy: ResyClient, venue: Venue, settings: Settings) -> ZoneInfo:
    name = venue.time_zone
    if not name:
        try:
            name = (await resy.venue(venue.id)).time_zone
        except resy_errors.ResyError:
            name = None
    try:
        return ZoneInfo(name or settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.timezone)


def list_snipes(db: Database, *, include_finished: bool = False) -> list[SnipeView]:
    with db.read() as session:
        query = select(ScheduledSnipe)
        if not include_finished:
            unfinished = (SnipeStatus.SCHEDULED, SnipeStatus.RUNNING)
            query = query.where(col(ScheduledSnipe.status).in_(unfinished))
        rows = session.exec(
            query.order_by(col(ScheduledSnipe.release_at), col(ScheduledSnipe.id))
        ).all()
        return [view(r) for r in rows]


def cancel_snipe(db: Database, snipe_id: int, now: datetime) -> SnipeView:
    """Cancel a snipe not yet finished; a runner that holds it stops before it polls."""
    with db.write() as session:
        row = session.get(ScheduledSnipe, snipe_id) if may_name_a_row(snipe_id) else None
        if row is None:
            raise NotFound(f"no scheduled snipe {snipe_id}")
        if row.status not in (SnipeStatus.SCHEDULED, SnipeStatus.RUNNING):
            raise InvalidInput(f"snipe {snipe_id} is already {row.status}")
        row.status, row.updated_at, row.finished_at = SnipeStatus.CANCELLED, now, now
        row.message = "cancelled"
        return view(row)


# --- running --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnipeRun:
    """What one due snipe ended as."""

    snipe_id: int
    status: str  # done | missed | cancelled
    result: BookingResult | None


async def snipe_now(
    *,
    db: Database,
    resy: ResyClient,
    settings: Settings,
    spec: SnipeSpec,
    now: datetime,
    clock: Clock | None = None,
    on_scheduled: Callable[[SnipeView], None] | None = None,
) -> tuple[SnipeView, BookingResult]:
    """`book snipe`: save the snipe already taken by this process (no supervisor starts it
    too), then run it here to its end."""
    owner = leases.this_process()
    saved = await schedule_snipe(
        db=db, resy=resy, settings=settings, spec=spec, now=now, owner=owner
    )
    if on_scheduled is not None:
        on_scheduled(saved)
    with db.read() as session:
        row = session.get(ScheduledSnipe, saved.id)
    assert row is not None
    ran = await run_snipe(db, resy, settings, row, clock or SystemClock())
    if ran.result is None:
        raise ResywatchError(f"snipe {saved.id} was taken over by another runner")
    return view_of(db, saved.id), ran.result


def view_of(db: Database, snipe_id: int) -> SnipeView:
    with db.read() as session:
        row = session.get(ScheduledSnipe, snipe_id)
        if row is None:
            raise NotFound(f"no scheduled snipe {snipe_id}")
        return view(row)


def _give_up_at(row: ScheduledSnipe) -> datetime:
    """Past this, the drop was missed: the late window and the deadline are both over."""
    return row.release_at + timedelta(seconds=row.late_s + row.deadline_s)


def _lease(row: ScheduledSnipe) -> datetime:
    return _give_up_at(row) + LEASE_MARGIN


async def run_due_snipes(
    db: Database,
    resy: ResyClient,
    settings: Settings,
    now: datetime,
    *,
    clock: Clock | None = None,
    owner: str | None = None,
) -> list[SnipeRun]:
    """Run the snipes whose release instant is within `book_prepare_s`, each to its end, at
    once; mark the ones nobody ran in time as missed. A snipe another worker holds is left
    to it.

    While some run, snipes coming due are taken too (every ADOPT_EVERY_S), so one snipe's
    minutes never make the next one late; the pass returns when none is left running. If
    the pass is stopped (the supervisor's SIGTERM), its snipes go back to the schedule for
    another runner.
    """
    clock = clock or SystemClock()
    owner = owner or leases.this_process()
    runs = _mark_missed(db, now)
    running: set[asyncio.Task[SnipeRun]] = set()
    at = now
    try:
        while True:
            for row in _take_due(db, settings, owner, at):
                running.add(
                    asyncio.create_task(run_snipe(db, resy, settings, row, clock, release=True))
                )
            if not running:
                return runs
            nap = asyncio.create_task(clock.sleep(ADOPT_EVERY_S))
            waiting: set[asyncio.Future[Any]] = {*running, nap}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            nap.cancel()
            for task in [t for t in running if t in done]:
                running.discard(task)
                runs.append(task.result())
            at = clock.now()
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


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
                "claimed_until": _lease(row),
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
            if _give_up_at(row) > now or row.id is None:
                continue
            row.message = (
                "no runner took this snipe before its deadline: is `resywatch run-forever` (or "
                "the `resywatch run snipes` cron line) running?"
                if row.status == SnipeStatus.SCHEDULED
                else "its runner stopped before the snipe ended"
            )
            row.status, row.updated_at, row.finished_at = SnipeStatus.MISSED, now, now
            session.add(outbox.snipe_missed(row, row.message))
            runs.append(SnipeRun(row.id, SnipeStatus.MISSED, None))
    return runs


async def run_snipe(
    db: Database,
    resy: ResyClient,
    settings: Settings,
    row: ScheduledSnipe,
    clock: Clock,
    *,
    release: bool = False,
) -> SnipeRun:
    """Run one snipe this runner holds, to its end; its attempt and notification are
    written when it ends. Interrupted, it is cancelled (the user's Ctrl-C), or with
    `release` given back to the schedule for another runner (a supervisor stopping)."""
    assert row.id is not None
    plan = BookingPlan(
        venue_id=row.venue_id,
        venue_name=row.venue_name,
        want=want_for(
            row.slot_date, row.party_size,
            window=(row.time_from, row.time_to) if row.time_from and row.time_to else None,
            seating_types=row.seating_types,
        )[0],
        preferred=row.preferred_time,
        payment_method_id=row.payment_method_id,
        max_total=row.max_total,
        max_cancel_fee=row.max_cancel_fee,
        dry_run=row.dry_run,
    )  # fmt: skip
    attempt_id = start_attempt(
        db, source="snipe", source_id=row.id, plan=plan, slot=None,
        claim_key=f"snipe:{row.id}:{row.runs}", now=clock.now(),
    )  # fmt: skip
    if attempt_id is None:  # another runner took this very run over
        return SnipeRun(row.id, SnipeStatus.RUNNING, None)
    steps = Steps()
    sniper = Sniper(db, resy, settings, row, plan, steps, clock)
    status = SnipeStatus.DONE
    try:
        verdict = await sniper.run()
    except asyncio.CancelledError:
        if release:
            message = "its runner stopped before it could book: back in the schedule"
            status = SnipeStatus.SCHEDULED
        else:
            message, status = "interrupted before it could book", SnipeStatus.CANCELLED
        verdict = Verdict(Outcome.FAILED, message)
        _finish(db, settings, row, plan, steps, sniper, verdict, attempt_id, status, clock)
        raise
    if verdict.outcome is Outcome.DECLINED:  # cancelled by `book schedule cancel`
        status = SnipeStatus.CANCELLED
    result = _finish(db, settings, row, plan, steps, sniper, verdict, attempt_id, status, clock)
    return SnipeRun(row.id, status, result)


def _finish(
    db: Database,
    settings: Settings,
    row: ScheduledSnipe,
    plan: BookingPlan,
    steps: Steps,
    sniper: Sniper,
    verdict: Verdict,
    attempt_id: int,
    status: str,
    clock: Clock,
) -> BookingResult:
    result = result_of(verdict, plan, steps, settings, attempt_id)
    result = replace(result, latency_ms=result.latency_ms | sniper.timeline())
    now = clock.now()
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

    finish_attempt(db, attempt_id, result, notify=True, now=now, then=close)
    return result


class Sniper:
    """The snipe loop for one snipe (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        resy: ResyClient,
        settings: Settings,
        row: ScheduledSnipe,
        plan: BookingPlan,
        steps: Steps,
        clock: Clock,
    ) -> None:
        self.db, self.resy, self.settings, self.clock = db, resy, settings, clock
        self.snipe_id = row.id
        self.plan, self.steps = plan, steps
        self.release = (
            row.release_at if row.release_at.tzinfo else row.release_at.replace(tzinfo=UTC)
        )
        self.lead = timedelta(seconds=row.lead_s)
        self.interval = row.poll_interval_s
        self.deadline = timedelta(seconds=row.deadline_s)
        self.late = timedelta(seconds=row.late_s)
        self.budget = row.request_budget
        self.booker = Booker(resy, plan, steps)
        self.seen_at: datetime | None = None
        self.predicted: list[OpenSlot] = []
        self.open: list[OpenSlot] = []
        self.gone: set[str] = set()
        self.ever_gone = False
        self.tokens: dict[str, tuple[Quote, datetime]] = {}
        self.trouble: Verdict | None = None  # the last transient failure
        self.refusals = 0
        self.speculate = settings.book_speculate
        self._finds_sent = 0  # finds overlap: an answer older than the last applied is stale
        self._finds_applied = -1
        self.ticks = 0
        self.last_request: datetime | None = None
        self.marks: dict[str, float] = {}

    # -- the phases ----------------------------------------------------------------------

    async def run(self) -> Verdict:
        await self._sleep_until(self.release - timedelta(seconds=self.settings.book_prepare_s))
        if self._cancelled():
            return Verdict(Outcome.DECLINED, "cancelled before the release")
        verdict = await self._prepare()
        self._mark("prepared", self.clock.now())
        if verdict is not None:
            return verdict
        if self.seen_at is None:
            await self._wait_warm(self.release - self.lead)
            if self._cancelled():
                return Verdict(Outcome.DECLINED, "cancelled before the release")
        self._mark("polling", self.clock.now())
        return await self._poll()

    async def _prepare(self) -> Verdict | None:
        plan, resy = self.plan, self.resy
        try:
            user, mine = await asyncio.gather(
                self._call("user", resy.user()), self._call("reservations", resy.reservations())
            )
        except resy_errors.ResyError as exc:
            return verdict_for_error(exc, plan)
        held = held_at(mine, plan.venue_id, plan.day)
        if held is not None:
            return already_booked(plan, held)
        if plan.payment_method_id is None and user.default_payment_method_id is not None:
            self.plan = replace(plan, payment_method_id=user.default_payment_method_id)
            self.booker = Booker(resy, self.plan, self.steps)
        today = local_today(self.clock.now(), self.settings.timezone)
        days = [plan.day - timedelta(days=n) for n in REFERENCE_OFFSETS]
        days = [d for d in days if d >= today]
        answers = await asyncio.gather(
            self._call("find", resy.find(plan.venue_id, plan.day, plan.want.party_size)),
            *(self._call("find", resy.find(plan.venue_id, d, plan.want.party_size)) for d in days),
            return_exceptions=True,
        )
        target, references = answers[0], answers[1:]
        if isinstance(target, resy_errors.AuthError):
            return verdict_for_error(target, plan)
        if isinstance(target, FindResponse):
            self._look(target)
        self.predicted = self._predict([a for a in references if isinstance(a, FindResponse)])
        if self.seen_at is not None:
            return None  # out already: straight to polling, nothing to predict
        if self.predicted and not plan.dry_run:
            # The ready book request: its quote is checked against the ceilings now.
            quote = await self._quote(self.predicted[0])
            if isinstance(quote, Verdict):
                return quote if quote.outcome is not Outcome.FAILED else None
        return None

    async def _wait_warm(self, until: datetime) -> None:
        """Sleep until `until`, keeping the connection warm and the ready token fresh."""
        while (left := (until - self.clock.now()).total_seconds()) > 0:
            idle = (
                (self.clock.now() - self.last_request).total_seconds()
                if self.last_request
                else WARM_EVERY_S
            )
            nap = min(left, WARM_EVERY_S - idle)
            if nap > 0:
                await self.clock.sleep(nap)
                continue
            target = self._target()
            speculating_until = self.release + timedelta(seconds=SPECULATE_S)
            if target is not None and self._needs_token(target, speculating_until):
                await self._quote(target)
            else:
                # Only a warm-up: the poll reports real trouble.
                with contextlib.suppress(resy_errors.ResyError):
                    await self._call("warm", self.resy.user())

    async def _poll(self) -> Verdict:
        next_tick = self.clock.now()
        while True:
            now = self.clock.now()
            if now >= self._stop_at():
                return self._give_up()
            if self.steps.requests >= self.budget:
                return self._give_up(budget=True)
            if next_tick > now:
                await self.clock.sleep((next_tick - now).total_seconds())
                continue  # the stop and budget checks again, then the tick
            next_tick = next_tick + timedelta(seconds=self.interval)
            if next_tick < now:
                next_tick = now  # behind (slow answers): never burst to catch up
            verdict = await self._tick(now)
            self.ticks += 1
            if verdict is not None:
                return verdict

    async def _tick(self, now: datetime) -> Verdict | None:
        target = self._target()
        if (
            self.speculate
            and target is not None
            and self.seen_at is None
            and not self.plan.dry_run
            and now < self.release + timedelta(seconds=SPECULATE_S)
        ):
            if self.ticks % FIND_EVERY != FIND_EVERY - 1:
                return await self._try(target)
            # A look alongside the ready book request (a read: safe to overlap), so the
            # book requests keep their cadence.
            booked, looked = await asyncio.gather(self._try(target), self._find())
            if booked is not None or looked is not None:
                return booked or looked
        else:
            # Staggered finds only around T, as speculation: a drop later than that is caught
            # by one find a tick (the request budget lasts through a late drop).
            close = now < self.release + timedelta(seconds=SPECULATE_S)
            looked = await (self._watch() if self.seen_at is None and close else self._find())
            if looked is not None:
                return looked
        for slot in self.open[:MAX_TRIES_PER_TICK]:
            verdict = await self._try(slot)
            if verdict is not None:
                return verdict
            if self._key(slot) not in self.gone:
                break  # trouble, not a taken slot: the next tick tries again
        return None

    async def _find(self) -> Verdict | None:
        """Look at the day (news in `seen_at` and `open`). A Verdict only to stop (auth)."""
        sent = self._finds_sent
        self._finds_sent += 1
        try:
            answer = await self._call(
                "find", self.resy.find(self.plan.venue_id, self.plan.day, self.plan.want.party_size)
            )
        except resy_errors.ResyError as exc:
            failed = verdict_for_error(exc, self.plan)
            return failed if failed.outcome is Outcome.AUTH_EXPIRED else self._transient(failed)
        if sent > self._finds_applied:  # an older answer arriving late is no news
            self._finds_applied = sent
            self._look(answer)
        return None

    async def _watch(self) -> Verdict | None:
        """One tick before the drop is seen: FIND_FANOUT finds staggered across the interval,
        done as soon as one sees the day (the others are cancelled)."""
        stagger = self.interval / FIND_FANOUT

        async def look_after(delay: float) -> Verdict | None:
            if delay > 0:
                await self.clock.sleep(delay)
            if self.steps.requests >= self.budget:
                return None
            return await self._find()

        pending = {asyncio.create_task(look_after(n * stagger)) for n in range(FIND_FANOUT)}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if (verdict := task.result()) is not None:
                        return verdict
                if self.seen_at is not None:
                    return None
            return None
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- steps -----------------------------------------------------------------------------

    async def _try(self, slot: OpenSlot) -> Verdict | None:
        """Book `slot` with its ready token (fetched if needed). None: keep polling."""
        if slot.captcha:  # the venue asks for a captcha: stop at once, never poll on
            return verdict_for_error(resy_errors.CaptchaRequired(), self.plan, slot)
        quote = await self._quote(slot)
        if isinstance(quote, Verdict):
            return quote if quote.outcome is not Outcome.FAILED else None
        if self.plan.dry_run:
            message = (
                f"dry run: would book {describe_slot(self.plan.venue_name, slot)} for "
                f"{self.plan.want.party_size} (${quote.total:.2f} up front, "
                f"{quote.fee_text()}); nothing was booked"
            )
            return Verdict(Outcome.DRY_RUN, message, slot, quote=quote)
        sent = self.clock.now()
        speculative = self.seen_at is None  # a predicted token, the day not seen out yet
        verdict = await self.booker.book(slot, quote, counted=not speculative)
        self.last_request = self.clock.now()
        verdict.quote = quote
        outcome = verdict.outcome
        if outcome is Outcome.BOOKED:
            self._mark("book_sent", sent)
            return verdict
        if outcome is Outcome.SLOT_GONE:
            if self.seen_at is not None:  # out, and taken: before the drop, it is not yet there
                self.gone.add(self._key(slot))
                self.open = [s for s in self.open if self._key(s) not in self.gone]
                self.ever_gone = True
            return None
        refused = outcome is Outcome.CONFLICT or (
            outcome is Outcome.FAILED and verdict.resy_status in (400, 502)  # malformed
        )
        if speculative and (refused or outcome in (Outcome.BLOCKED, Outcome.FAILED)):
            # How Resy refuses a slot not out yet is unknown: never a reason to stop.
            if refused:
                self.tokens.pop(self._key(slot), None)  # a fresh token next time
            return self._transient(verdict)
        if refused:
            self.refusals += 1
            self.tokens.pop(self._key(slot), None)  # a fresh token next time
            return verdict if self.refusals >= MAX_REFUSALS else self._transient(verdict)
        if outcome in (Outcome.BLOCKED, Outcome.RATE_LIMITED, Outcome.FAILED):
            return self._transient(verdict)
        return verdict  # booked-or-not unknown, payment or auth trouble: stop here

    async def _quote(self, slot: OpenSlot) -> Quote | Verdict:
        """The slot's ready quote, fetched when missing or about to expire. A Verdict when
        it cannot be had (FAILED: transient) or is above the ceilings (stop)."""
        key = self._key(slot)
        if not self._needs_token(slot, self.clock.now()):
            return self.tokens[key][0]
        try:
            details = await self._call(
                "details", self.resy.details(slot.token, slot.day, self.plan.want.party_size)
            )
        except resy_errors.ResyError as exc:
            verdict = verdict_for_error(exc, self.plan, slot)
            if verdict.outcome in (Outcome.AUTH_EXPIRED, Outcome.CAPTCHA):
                return verdict
            self._transient(verdict)
            return Verdict(Outcome.FAILED, verdict.message, slot)
        quote = quote_of(details, self.plan.payment_method_id, self.plan.want.party_size)
        expires = quote.expires_at or (self.clock.now() + timedelta(minutes=4))
        self.tokens[key] = (quote, expires if expires.tzinfo else expires.replace(tzinfo=UTC))
        refused = over_ceiling(quote, self.plan)
        if refused is not None:
            message = f"not booking {describe_slot(self.plan.venue_name, slot)}: {refused}"
            return Verdict(Outcome.FEE_TOO_HIGH, message, slot, quote=quote)
        return quote

    def _needs_token(self, slot: OpenSlot, at: datetime) -> bool:
        held = self.tokens.get(self._key(slot))
        return held is None or held[1] - timedelta(seconds=TOKEN_MARGIN_S) <= at

    async def _call(self, step: str, call: Awaitable[T]) -> T:
        """A Resy call on the snipe's budget; it also keeps the connection warm."""
        try:
            return await self.steps.run(step, call)
        finally:
            self.last_request = self.clock.now()

    # -- state ---------------------------------------------------------------------------

    def _look(self, answer: FindResponse) -> None:
        """A find's news: is the day out, and which matching slots are open (best first)."""
        plan = self.plan
        day_slots = [s for s in answer.slots_at(plan.venue_id) if s.starts_at.date() == plan.day]
        if day_slots and self.seen_at is None:
            self.seen_at = self.clock.now()
            self._mark("seen", self.seen_at)
        entry = answer.entry_for(plan.venue_id)
        name = entry.venue.name if entry is not None else plan.venue_name
        found = [
            OpenSlot(
                venue_id=plan.venue_id,
                venue_name=name,
                day=plan.day,
                starts_at=s.starts_at,
                seating_type=s.seating_type,
                token=s.config.token,
                slot_id=slot_id(plan.venue_id, s.starts_at),
                captcha=bool(entry is not None and entry.venue.feature_recaptcha),
            )
            for s in day_slots
            if plan.want.matches(s) and s.restricted is None  # never book what we may not
        ]
        self.gone.clear()  # a find is fresh news: what it lists is open now
        self.open = rank(found, plan.want, plan.preferred)

    def _predict(self, answers: Sequence[FindResponse]) -> list[OpenSlot]:
        """The target day's slots as predicted from other days' tokens, best first."""
        plan = self.plan
        predicted: dict[str, OpenSlot] = {}
        for answer in answers:
            for slot in answer.slots_at(plan.venue_id):
                if not plan.want.matches(slot) or slot.restricted is not None:
                    continue
                token = predict_token(slot.config.token, plan.day, plan.want.party_size)
                if token is None:
                    continue
                starts = datetime.combine(plan.day, slot.starts_at.time())
                candidate = OpenSlot(
                    venue_id=plan.venue_id,
                    venue_name=plan.venue_name,
                    day=plan.day,
                    starts_at=starts,
                    seating_type=slot.seating_type,
                    token=token,
                    slot_id=slot_id(plan.venue_id, starts),
                )
                predicted.setdefault(self._key(candidate), candidate)
        return rank(list(predicted.values()), plan.want, plan.preferred)

    def _target(self) -> OpenSlot | None:
        """The slot the ready book request is for: the best predicted one."""
        return self.predicted[0] if self.predicted else None

    @staticmethod
    def _key(slot: OpenSlot) -> str:
        return f"{slot.starts_at:%H:%M}|{(slot.seating_type or '').casefold()}"

    def _transient(self, verdict: Verdict) -> Verdict | None:
        """Remember a failure worth another try (reported if nothing better happens)."""
        self.trouble = verdict
        return None

    def _stop_at(self) -> datetime:
        if self.seen_at is not None:
            return self.seen_at + self.deadline
        return self.release + self.late

    def _give_up(self, *, budget: bool = False) -> Verdict:
        plan = self.plan
        spent = f"{self.steps.requests} requests"
        if budget:
            why = f"the request budget ({self.budget}) is spent"
        elif self.seen_at is None:
            why = f"the day was not released by {self.late.total_seconds():g} s after the instant"
        else:
            why = f"the deadline passed ({self.deadline.total_seconds():g} s after the drop)"
        trouble = self.trouble
        if trouble is not None and trouble.outcome in (Outcome.RATE_LIMITED, Outcome.BLOCKED):
            message = f"{trouble.message}; {why} ({spent})"
            return Verdict(trouble.outcome, message, resy_status=trouble.resy_status)
        if self.ever_gone:
            message = (
                f"every matching slot at {plan.venue_name} on {plan.day} was taken before it "
                f"could be booked; {why} ({spent})"
            )
            return Verdict(Outcome.SLOT_GONE, message, resy_status=404)
        return Verdict(Outcome.NO_SLOT, f"{no_slot_message(plan)}: {why} ({spent})")

    def _cancelled(self) -> bool:
        with self.db.read() as session:
            row = session.get(ScheduledSnipe, self.snipe_id)
            return row is None or row.status == SnipeStatus.CANCELLED

    async def _sleep_until(self, moment: datetime) -> None:
        """Sleep in slices, checking the clock again (a laptop that slept wakes up late)."""
        while (left := (moment - self.clock.now()).total_seconds()) > 0:
            await self.clock.sleep(min(left, 60.0))

    def _mark(self, name: str, at: datetime) -> None:
        self.marks.setdefault(name, (at - self.release).total_seconds() * 1000)

    def timeline(self) -> dict[str, float]:
        """When each phase began, in ms relative to the release instant (negative: before)."""
        return {f"{k}_ms": round(v, 1) for k, v in self.marks.items()} | {
            "requests": float(self.steps.requests),
            "ticks": float(self.ticks),
        }
