"""Scheduled snipes: what to book and when its day is released, saved for a runner
(`resywatch run snipes`, `run-forever`, or the foreground `book snipe`); listed and cancelled.

The release instant is `--at`, or the date minus the lead days at the release time, each
given or learned (Resy's /2/config for the lead days, the drops discovery saw for both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import col, select

from resywatch.accounts import DEFAULT_ACCOUNT, stored_name
from resywatch.db.models import ScheduledSnipe, SnipeStatus
from resywatch.errors import InvalidInput, NotFound
from resywatch.ids import may_name_a_row
from resywatch.resy import errors as resy_errors
from resywatch.services.booking import series
from resywatch.services.booking.outcomes import rate_limits_stop_the_booking
from resywatch.services.booking.plan import BookingRequest, find_venue, today
from resywatch.services.discovery.patterns import patterns
from resywatch.services.vocabulary import local_moment, times_text, window_text

if TYPE_CHECKING:
    from resywatch.config import Settings
    from resywatch.db.engine import Database
    from resywatch.db.models import Venue
    from resywatch.resy.client import ResyClient
    from resywatch.runtime import Runtime

#: Wait before a snipe counts as missed, beyond its deadline, and the lease beyond that.
LEASE_MARGIN = timedelta(minutes=2)


@dataclass(frozen=True)
class Release:
    """When the day is released: `at`, or the date minus `lead_days` at `time`."""

    at: datetime | None = None  # --at: aware, or naive = the venue's local time
    lead_days: int | None = None  # --lead-days N
    auto_lead: bool = False  # --lead-days auto: /2/config, else the learned pattern
    time_of_day: time | None = None  # --release-time: else the learned pattern's


@dataclass(frozen=True)
class Pacing:
    """How the snipe polls; None: the `[book]` settings."""

    lead_s: float | None = None
    poll_interval_s: float | None = None
    deadline_s: float | None = None
    late_s: float | None = None
    request_budget: int | None = None


@dataclass(frozen=True)
class Recurrence:
    """`book schedule add --repeat RULE --days-ahead N`: the request's date is the first day;
    each day the rule names is sniped N days before it, at the release time."""

    repeat: str  # daily | weekly | weekly:mon,fri (checked with the first day)
    days_ahead: int


@dataclass(frozen=True)
class SnipeSpec:
    """`book snipe` / `book schedule add`: what to book (the same request as `book now`),
    when it is released, how to poll, and whether it repeats."""

    request: BookingRequest
    release: Release
    pacing: Pacing = field(default_factory=Pacing)
    recurrence: Recurrence | None = None


@dataclass(frozen=True)
class SnipeView:
    id: int
    venue_id: int
    venue_name: str
    day: date
    party_size: int
    window: str | None
    preferred_time: str | None
    preferred_times: list[str]  # the --time list, best first; [] for none
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
    repeat: str | None  # daily | weekly:mon,fri; None for a one-off snipe
    days_ahead: int | None
    series_id: int | None  # the first occurrence's id
    next_run: datetime | None  # the release instant it waits for, while scheduled or running
    account: str = DEFAULT_ACCOUNT  # the Resy account it books for


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
        preferred_times=list(row.preferred_times or []),
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
        repeat=row.repeat,
        days_ahead=row.days_ahead,
        series_id=row.series_id,
        next_run=row.release_at if row.status in _UNFINISHED else None,
        account=row.account or DEFAULT_ACCOUNT,
    )


_UNFINISHED = (SnipeStatus.SCHEDULED, SnipeStatus.RUNNING)


async def schedule_snipe(rt: Runtime, spec: SnipeSpec, *, owner: str | None = None) -> SnipeView:
    """Validate (exit 2, nothing written), resolve the venue (exit 3) and the release
    instant, then save the snipe. With `owner`, it is saved already taken by that runner (the
    foreground `book snipe`), so that no supervisor starts it too."""
    settings, now, request = rt.settings, rt.clock.now(), spec.request
    want, preferred = request.want(today(rt))
    _check_timing(spec, settings)
    venue = await find_venue(rt, request)
    release = spec.release
    if spec.recurrence is not None:
        release = Release(lead_days=spec.recurrence.days_ahead, time_of_day=release.time_of_day)
    with rate_limits_stop_the_booking():
        release_at, source, zone = await _release_instant(rt, venue, release, request.day)
    plan = request.plan(venue, want, preferred, settings)
    pacing = spec.pacing
    row = ScheduledSnipe(
        venue_id=plan.venue_id,
        venue_name=plan.venue_name,
        slot_date=plan.day,
        party_size=want.party_size,
        time_from=want.time_from,
        time_to=want.time_to,
        preferred_time=preferred,
        preferred_times=times_text(want.times),
        seating_types=list(want.seating_types),
        release_at=release_at,
        release_source=source,
        payment_method_id=plan.payment_method_id,
        max_total=plan.max_total,
        max_cancel_fee=plan.max_cancel_fee,
        lead_s=_or(pacing.lead_s, settings.book_lead_s),
        poll_interval_s=_or(pacing.poll_interval_s, settings.book_poll_interval_s),
        deadline_s=_or(pacing.deadline_s, settings.book_deadline_s),
        late_s=_or(pacing.late_s, settings.book_late_s),
        request_budget=pacing.request_budget or settings.book_request_budget,
        dry_run=plan.dry_run,
        account=stored_name(rt.account),
        created_at=now,
        updated_at=now,
    )
    if spec.recurrence is not None:
        series.start(row, spec.recurrence.repeat, spec.recurrence.days_ahead, zone.key, now)
    if give_up_at(row) <= now:
        released = local_moment(release_at, settings.timezone)
        raise InvalidInput(
            f"{venue.name} released {request.day} at {released}, too long ago to snipe: "
            "use `resywatch book now`"
        )
    if owner is not None:
        row.status, row.claimed_by = SnipeStatus.RUNNING, owner
        row.claimed_until, row.runs = lease_until(row), 1
    with rt.db.write() as session:
        session.add(row)
        session.flush()
        if spec.recurrence is not None:
            row.series_id = row.id  # the series is named by its first occurrence
            session.flush()
        return view(row)


def _check_timing(spec: SnipeSpec, settings: Settings) -> None:
    """The release and the pacing make sense (exit 2), before anything is looked up."""
    release, day = spec.release, spec.request.day
    if spec.recurrence is not None:
        _check_recurrence(spec.recurrence, release, day)
    elif release.at is None and release.lead_days is None and not release.auto_lead:
        raise InvalidInput("say when the day is released: --at 'YYYY-MM-DD HH:MM' or --lead-days")
    if release.lead_days is not None and not 0 <= release.lead_days <= 365:
        raise InvalidInput("--lead-days is a number of days (0-365) or auto")
    _check_limits(spec.pacing, settings)
    if release.at is not None and release.at.date() > day + timedelta(days=1):
        # Past the date in any zone; refused before the venue is looked up (and remembered).
        raise InvalidInput(f"--at {release.at} is after the reservation date {day}")


def _check_recurrence(recurrence: Recurrence, release: Release, day: date) -> None:
    if release.at is not None or release.lead_days is not None or release.auto_lead:
        raise InvalidInput(
            "a repeating snipe's days are released --days-ahead N days before them: "
            "give --days-ahead, not --at or --lead-days"
        )
    series.check_days_ahead(recurrence.days_ahead)
    rule = series.parse_repeat(recurrence.repeat, day)
    if not rule.matches(day):
        raise InvalidInput(
            f"--date {day} is a {day:%A}, not a day --repeat {rule.text} snipes: "
            "give the series' first day"
        )


# The bounds of the `[book]` settings, which the flags override: a snipe polls at most every
# 10 ms, for at most an hour after the drop, within at most 100,000 requests.
_LIMITS = {
    "--lead": ("lead_s", "book_lead_s", 0.0, 300.0, "s"),
    "--interval": ("poll_interval_s", "book_poll_interval_s", 0.01, 60.0, "s"),
    "--deadline": ("deadline_s", "book_deadline_s", 0.001, 3600.0, "s"),
    "--late": ("late_s", "book_late_s", 0.0, 3600.0, "s"),
    "--budget": ("request_budget", "book_request_budget", 10, 100_000, ""),
}


def _check_limits(pacing: Pacing, settings: Settings) -> None:
    for flag, (name, setting, low, high, unit) in _LIMITS.items():
        value = getattr(pacing, name)
        value = getattr(settings, setting) if value is None else value
        if not low <= value <= high:
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            raise InvalidInput(
                f"{flag} {shown}{unit} is out of range: {low:g}{unit} to {high:g}{unit}"
            )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


async def _release_instant(
    rt: Runtime, venue: Venue, release: Release, day: date
) -> tuple[datetime, str, ZoneInfo]:
    """The release instant (UTC), where it came from (at | lead-days | config | pattern) and
    the venue's zone."""
    resy, settings = rt.resy, rt.settings
    zone = await _zone(resy, venue, settings)
    if release.at is not None:
        at = release.at if release.at.tzinfo else release.at.replace(tzinfo=zone)
        try:
            local, utc = at.astimezone(zone), at.astimezone(UTC)
        except OverflowError:  # a zone pushed it off the calendar
            raise InvalidInput(f"--at {release.at} is out of range") from None
        if local.date() > day:
            raise InvalidInput(f"--at {release.at} is after the reservation date {day}")
        return utc, "at", zone
    with rt.db.read() as session:
        learned = patterns(session, default_timezone=settings.timezone, venue_id=venue.id)
    pattern = learned[0] if learned else None
    lead, source = release.lead_days, "lead-days"
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
    release_time = release.time_of_day
    if release_time is None:
        if pattern is None or pattern.release_time is None:
            raise InvalidInput(
                f"no release time is known for {venue.name}: pass --release-time HH:MM (its "
                "Resy page often says, e.g. 'released 14 days ahead at 10 AM') or --at; "
                "`resywatch discover patterns` learns it from the drops it sees"
            )
        hours, minutes = (int(part) for part in pattern.release_time.split(":"))
        release_time, source = time(hours, minutes), "pattern"
    local = datetime.combine(day - timedelta(days=lead), release_time, tzinfo=zone)
    return local.astimezone(UTC), source, zone


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
            query = query.where(col(ScheduledSnipe.status).in_(_UNFINISHED))
        rows = session.exec(
            query.order_by(col(ScheduledSnipe.release_at), col(ScheduledSnipe.id))
        ).all()
        return [view(r) for r in rows]


def cancel_snipe(db: Database, snipe_id: int, now: datetime) -> SnipeView:
    """Cancel a snipe not yet finished; a runner that holds it stops before it polls. Any
    occurrence's id stops its series: the occurrence still to come is cancelled, and a
    cancelled occurrence has no next."""
    with db.write() as session:
        row = session.get(ScheduledSnipe, snipe_id) if may_name_a_row(snipe_id) else None
        if row is None:
            raise NotFound(f"no scheduled snipe {snipe_id}")
        if row.series_id is not None and row.status not in _UNFINISHED:
            row = (
                session.exec(
                    select(ScheduledSnipe).where(
                        col(ScheduledSnipe.series_id) == row.series_id,
                        col(ScheduledSnipe.status).in_(_UNFINISHED),
                    )
                ).first()
                or row
            )
        if row.status not in _UNFINISHED:
            stopped = ", and no day of its series is to come" if row.series_id else ""
            raise InvalidInput(f"snipe {snipe_id} is already {row.status}{stopped}")
        row.status, row.updated_at, row.finished_at = SnipeStatus.CANCELLED, now, now
        row.message = "cancelled"
        return view(row)


def view_of(db: Database, snipe_id: int) -> SnipeView:
    with db.read() as session:
        row = session.get(ScheduledSnipe, snipe_id)
        if row is None:
            raise NotFound(f"no scheduled snipe {snipe_id}")
        return view(row)


def give_up_at(row: ScheduledSnipe) -> datetime:
    """Past this, the drop was missed: the late window and the deadline are both over."""
    return row.release_at + timedelta(seconds=row.late_s + row.deadline_s)


def lease_until(row: ScheduledSnipe) -> datetime:
    return give_up_at(row) + LEASE_MARGIN
