"""The words every feature uses, in one place: a slot's identity, "today" where the user
lives, what someone wants (days, party, window, seating), an open slot that matches it, and
how slots are described in messages. Discovery, watches, notify requests, booking and snipes
all speak these; none of them owns them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from resywatch.errors import InvalidInput

if TYPE_CHECKING:  # a type only: `health` reads slot ids without Resy's models
    from resywatch.resy.models import Slot

PROVIDER = "resy"


def slot_id(venue_id: int, starts_at: datetime) -> str:
    """The seed's stable slot id: provider, venue and local start (party size excluded)."""
    # isoformat writes a naive start as strftime's "%Y-%m-%d %H:%M:%S" would, five times
    # faster: a discovery pass makes ~20,000 ids. An aware start keeps strftime (no offset).
    if starts_at.tzinfo is None:
        local = starts_at.isoformat(" ", "seconds")
    else:
        local = f"{starts_at:%Y-%m-%d %H:%M:%S}"
    return hashlib.sha256(f"{PROVIDER}|{venue_id}|{local}".encode()).hexdigest()[:32]


def local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def local_moment(moment: datetime, timezone: str) -> str:
    """An instant as people in `timezone` read it: `2026-12-04 09:00:00 EST`."""
    return f"{moment.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M:%S %Z}"


MAX_PARTY = 20
MAX_RANGE_DAYS = 60
MAX_AHEAD_DAYS = 730  # Resy's booking horizons are weeks, a year at most
#: `--time 19:00` alone accepts slots this close to it (a list: to its earliest and latest).
TIME_SLACK = timedelta(minutes=30)
#: The most times one `--time` list ranks.
MAX_TIMES = 12


@dataclass(frozen=True)
class Want:
    """Dates, party, local window and seating types someone is waiting for, and the exact
    times they rank first (`--time 19:30,19:00`): those rank a booking's candidates; the
    window alone decides what matches."""

    date_from: date
    date_to: date
    party_size: int
    time_from: time | None = None
    time_to: time | None = None
    seating_types: tuple[str, ...] = ()
    times: tuple[time, ...] = ()  # best first

    def days(self) -> list[date]:
        return [
            self.date_from + timedelta(days=n)
            for n in range((self.date_to - self.date_from).days + 1)
        ]

    def matches(self, slot: Slot) -> bool:
        start = slot.starts_at.time()
        if self.time_from is not None and start < self.time_from:
            return False
        if self.time_to is not None and start > self.time_to:
            return False
        wanted = {s.casefold() for s in self.seating_types}
        return not wanted or (slot.seating_type or "").casefold() in wanted


def window_text(start: time | None, end: time | None) -> str | None:
    """A local window as people write it, `18:00-21:00`; None for any time."""
    return f"{start:%H:%M}-{end:%H:%M}" if start and end else None


def with_times(want: Want, times: Sequence[time]) -> Want:
    """`want` ranking `times` first (`--time`); with no window of its own, it accepts the
    window around them (`--time` alone), as `book now` does."""
    if times and want.time_from is None and want.time_to is None:
        low, high = window_around(times)
        return replace(want, times=tuple(times), time_from=low, time_to=high)
    return replace(want, times=tuple(times))


def window_around(times: Sequence[time]) -> tuple[time, time]:
    """The window `--time` alone accepts: TIME_SLACK before the earliest listed time to
    TIME_SLACK after the latest, kept within the day."""
    day = date(2000, 1, 1)  # any day: only the clipping at midnight needs one
    low = datetime.combine(day, min(times)) - TIME_SLACK
    high = datetime.combine(day, max(times)) + TIME_SLACK
    return (
        low.time() if low.date() == day else time(0, 0),
        high.time() if high.date() == day else time(23, 59),
    )


def times_text(times: Sequence[time]) -> list[str] | None:
    """The wanted times as stored (HH:MM, best first; None for none). One time is kept
    too: a watch or a notify request has no other place for it."""
    return [f"{t:%H:%M}" for t in times] if times else None


def stored_times(texts: Sequence[str] | None) -> tuple[time, ...]:
    return tuple(time.fromisoformat(t) for t in texts or ())


def check_times(times: Sequence[time], window: tuple[time, time] | None) -> None:
    """A `--time` list that can be honoured (exit 2): no repeats, at most MAX_TIMES, each
    inside the window when there is one."""
    if len(times) > MAX_TIMES:
        raise InvalidInput(f"--time lists {len(times)} times: at most {MAX_TIMES}")
    seen: set[time] = set()
    for at in times:
        if at in seen:
            raise InvalidInput(f"--time lists {at:%H:%M} twice")
        seen.add(at)
        if window is not None and not window[0] <= at <= window[1]:
            raise InvalidInput(
                f"--time {at:%H:%M} is outside --window {window[0]:%H:%M}-{window[1]:%H:%M}"
            )


def validate_want(want: Want, today: date) -> Want:
    """Refuse what can never match (exit 2, nothing written); past days are dropped."""
    if not 1 <= want.party_size <= MAX_PARTY:
        raise InvalidInput(f"party size must be between 1 and {MAX_PARTY}, not {want.party_size}")
    if want.date_to < want.date_from:
        raise InvalidInput(f"--until {want.date_to} is before --date {want.date_from}")
    if want.date_to < today:
        raise InvalidInput(f"{want.date_to} is in the past")
    if (want.date_to - today).days > MAX_AHEAD_DAYS:  # also keeps date arithmetic in range
        raise InvalidInput(
            f"{want.date_to} is more than {MAX_AHEAD_DAYS} days ahead: Resy opens no table that far"
        )
    if (want.date_to - want.date_from).days >= MAX_RANGE_DAYS:
        raise InvalidInput(f"a date range is at most {MAX_RANGE_DAYS} days")
    if (want.time_from is None) != (want.time_to is None):
        raise InvalidInput("a time window needs both a start and an end")
    if want.time_from and want.time_to and want.time_to <= want.time_from:
        raise InvalidInput(f"the window ends ({want.time_to:%H:%M}) before it starts")
    window = (want.time_from, want.time_to) if want.time_from and want.time_to else None
    check_times(want.times, window)
    return want


@dataclass(frozen=True)
class OpenSlot:
    """A matching open slot."""

    venue_id: int
    venue_name: str
    day: date
    starts_at: datetime  # venue-local
    seating_type: str | None
    token: str
    slot_id: str
    #: Why an ordinary account cannot book it (Global Dining Access, exclusive), or None.
    restricted: str | None = None
    #: The venue asks for a captcha to book (`feature_recaptcha` on the find's venue).
    captcha: bool = False


def describe_slots(slots: Sequence[OpenSlot]) -> str:
    """`Tue Dec 1 19:00, 19:30 (Dining Room, Bar)`-style summary for messages."""
    by_day: dict[date, list[OpenSlot]] = {}
    for slot in slots:
        by_day.setdefault(slot.day, []).append(slot)
    parts = []
    for day, day_slots in sorted(by_day.items()):
        times = ", ".join(sorted({f"{s.starts_at:%H:%M}" for s in day_slots}))
        seating = sorted({s.seating_type for s in day_slots if s.seating_type})
        parts.append(
            f"{day:%a %b} {day.day} {times}" + (f" ({', '.join(seating)})" if seating else "")
        )
    return "; ".join(parts)


def describe_slot(venue_name: str, slot: OpenSlot | None) -> str:
    """`Don Angie, Fri Dec 4 19:00, Dining Room` for messages."""
    if slot is None:
        return venue_name
    seating = f", {slot.seating_type}" if slot.seating_type else ""
    return f"{venue_name}, {slot.starts_at:%a %b} {slot.day.day} {slot.starts_at:%H:%M}{seating}"
