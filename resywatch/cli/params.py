"""Parsers for the values users type: ids, dates, times of day, windows and durations.

Each raises InvalidInput (exit 2) with a message that names the value and shows the
expected form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from resywatch.errors import InvalidInput
from resywatch.ids import parse_id

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|min|s|m|h|d|w)\s*$", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
#: The longest duration any option takes: beyond it a date falls off the calendar (`--since
#: 5000000w`) or a timedelta overflows; no watch, pause or look-back needs more.
MAX_DURATION = timedelta(days=3650)


def id_parser(what: str) -> Callable[[str], int]:
    """The `parser=` of every id argument and option (see resywatch.ids): the same digits,
    the same range and the same message everywhere."""

    def parse(text: str) -> int:
        return parse_id(text, what=what)

    return parse


def parse_day(text: str, *, what: str = "date") -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None


def parse_hhmm(text: str, *, what: str = "time") -> time:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise InvalidInput(f"{what} {text!r} is not a time of day: use HH:MM, e.g. 19:30")
    return time(int(match[1]), int(match[2]))


def parse_times(text: str, *, what: str = "--time") -> tuple[time, ...]:
    """`19:30,19:00,20:15` -> the times in the order given (best first). An empty item or a
    time listed twice is refused, not skipped: the list is the user's ranking."""
    items = text.split(",")
    if any(not item.strip() for item in items):
        raise InvalidInput(
            f"{what} {text!r} has an empty item: list times as HH:MM,HH:MM (best first)"
        )
    times = tuple(parse_hhmm(item, what=what) for item in items)
    for index, at in enumerate(times):
        if at in times[:index]:
            raise InvalidInput(f"{what} {text!r} lists {at:%H:%M} twice")
    return times


def parse_window(text: str) -> tuple[time, time]:
    """`18:00-21:00` -> (18:00, 21:00); the end must come after the start."""
    parts = text.split("-")
    if len(parts) != 2:
        raise InvalidInput(f"window {text!r} is not a time range: use HH:MM-HH:MM")
    start, end = parse_hhmm(parts[0], what="window start"), parse_hhmm(parts[1], what="window end")
    if end <= start:
        raise InvalidInput(f"window {text!r} ends before it starts")
    return start, end


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """`200ms`, `90s`, `10m`, `1h`, `2d`, `1w`; at most MAX_DURATION."""
    match = _DURATION.match(text)
    if not match:
        raise InvalidInput(
            f"{what} {text!r} is not a duration: use a number and ms, s, m, h, d or w (1h)"
        )
    seconds = float(match[1]) * _SECONDS[match[2].lower()]
    if seconds > MAX_DURATION.total_seconds():  # before timedelta(), which would overflow
        raise InvalidInput(f"{what} {text.strip()!r} is too long: at most 3650d (10 years)")
    return timedelta(seconds=seconds)


def parse_since(text: str, now: datetime) -> datetime:
    """A duration back from now (`1h`) or an ISO-8601 instant (UTC when no zone is given)."""
    if _DURATION.match(text):
        return now - parse_duration(text, what="--since")
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--since {text!r} is neither a duration (1h, 30m, 2d) nor an ISO time"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)  # as stored; a zone can push it off the calendar
    except OverflowError:
        raise InvalidInput(f"--since {text!r} is out of range in UTC") from None
