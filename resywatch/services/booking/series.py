"""Recurring snipes (`book schedule add --repeat daily|weekly[:DAYS] --days-ahead N`).

A series is one `scheduled_snipe` row per occurrence, all with the same `series_id` (the
first occurrence's id). Each occurrence snipes one day (a day the rule names), released N
days before it at the series' release time of day in the venue's zone. When an occurrence
ends, booked or not, or is missed, the next one is added in the same transaction
(`follow_up`); the unique (series, day) index keeps that to one row whoever gets there
first. A cancelled occurrence has no next: cancelling stops the series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from resywatch.db.models import ScheduledSnipe, SnipeStatus
from resywatch.errors import InvalidInput

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS_AHEAD = 365
#: Occurrences looked at for the next one that is not already over (a year of days).
_HORIZON = 366


@dataclass(frozen=True)
class Repeat:
    """The days a series snipes: every day, or these weekdays (Monday = 0)."""

    weekdays: frozenset[int]

    @property
    def text(self) -> str:
        if len(self.weekdays) == 7:
            return "daily"
        return "weekly:" + ",".join(WEEKDAYS[d] for d in sorted(self.weekdays))

    def matches(self, day: date) -> bool:
        return day.weekday() in self.weekdays

    def after(self, day: date) -> date:
        """The first day the series snipes after `day`."""
        following = day + timedelta(days=1)
        while not self.matches(following):
            following += timedelta(days=1)
        return following


def parse_repeat(text: str, first_day: date) -> Repeat:
    """`daily`, `weekly` (the weekday of `first_day`) or `weekly:mon,fri` (exit 2 otherwise)."""
    rule, colon, days = text.strip().lower().partition(":")
    if rule == "daily" and not days:
        return Repeat(frozenset(range(7)))
    if rule != "weekly":
        raise InvalidInput(
            f"--repeat {text!r} is not a rule: use daily, weekly, or weekly:DAYS (weekly:mon,fri)"
        )
    if not colon:
        return Repeat(frozenset({first_day.weekday()}))
    chosen: list[int] = []
    for item in (part.strip() for part in days.split(",")):
        if item not in _WEEKDAY_NAMES:
            raise InvalidInput(
                f"--repeat {text!r}: {item!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"
            )
        if _WEEKDAY_NAMES[item] in chosen:
            raise InvalidInput(f"--repeat {text!r} names {WEEKDAYS[_WEEKDAY_NAMES[item]]} twice")
        chosen.append(_WEEKDAY_NAMES[item])
    return Repeat(frozenset(chosen))


_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_NAMES = {name: n for names in (WEEKDAYS, _FULL) for n, name in enumerate(names)}


def check_days_ahead(days_ahead: int) -> None:
    if not 0 <= days_ahead <= MAX_DAYS_AHEAD:
        raise InvalidInput(f"--days-ahead is a number of days, 0 to {MAX_DAYS_AHEAD}")


def release_for(row: ScheduledSnipe, day: date) -> datetime:
    """When `day` is released: N days before it, at the series' release time of day in
    the venue's zone (the wall-clock time, whatever the daylight-saving offset)."""
    assert row.days_ahead is not None and row.release_zone is not None
    zone = ZoneInfo(row.release_zone)
    at = row.release_at.astimezone(zone).time()
    local = datetime.combine(day - timedelta(days=row.days_ahead), at, tzinfo=zone)
    return local.astimezone(UTC)


def next_day(row: ScheduledSnipe, now: datetime) -> date | None:
    """The series' next day after `row`'s whose snipe is not already over at `now`
    (days that passed while nothing ran are skipped, not each recorded as missed)."""
    if row.repeat is None or row.days_ahead is None or row.release_zone is None:
        return None
    rule = parse_repeat(row.repeat, row.slot_date)
    late = timedelta(seconds=row.late_s + row.deadline_s)
    day = row.slot_date
    for _ in range(_HORIZON):
        day = rule.after(day)
        if release_for(row, day) + late > now:
            return day
    return None


def follow_up(session: Session, row: ScheduledSnipe, now: datetime) -> ScheduledSnipe | None:
    """Add the occurrence after `row` (which just ended, or was missed) in the caller's
    transaction; None for a one-off snipe, or when the next one exists already (another
    worker added it: the unique (series, day) index says so)."""
    day = next_day(row, now)
    if day is None or row.series_id is None:
        return None
    taken = session.exec(
        select(ScheduledSnipe.id).where(
            col(ScheduledSnipe.series_id) == row.series_id,
            col(ScheduledSnipe.slot_date) == day,
        )
    ).first()
    if taken is not None:
        return None
    following = ScheduledSnipe(
        **row.model_dump(
            exclude={
                "id", "slot_date", "release_at", "status", "runs", "claimed_by",
                "claimed_until", "outcome", "message", "attempt_id", "created_at",
                "updated_at", "finished_at",
            }
        ),
        slot_date=day,
        release_at=release_for(row, day),
        status=SnipeStatus.SCHEDULED,
        created_at=now,
        updated_at=now,
    )  # fmt: skip
    try:
        with session.begin_nested():  # a savepoint: losing the race keeps the caller's work
            session.add(following)
    except IntegrityError:
        return None
    return following


def start(row: ScheduledSnipe, repeat: str, days_ahead: int, zone: str, now: datetime) -> None:
    """Make `row` (not yet saved) a series' first occurrence: its rule, its N days and the
    venue's zone; if its own day's snipe is already over, the first day after it that is
    not (a series asked for today still starts)."""
    row.repeat = parse_repeat(repeat, row.slot_date).text
    row.days_ahead, row.release_zone = days_ahead, zone
    if row.release_at + timedelta(seconds=row.late_s + row.deadline_s) > now:
        return
    day = next_day(row, now)
    if day is None:  # a rule names some weekday every week: only a bad zone could do this
        raise InvalidInput(f"--repeat {repeat!r} names no day to snipe in the coming year")
    row.slot_date, row.release_at = day, release_for(row, day)
