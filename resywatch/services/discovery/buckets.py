"""Buckets: the (date, anchor) units of the discovery scan, and the window they cover.

"Today" is the date in the configured time zone, so a UTC host at 21:00 in New York is still
on New York's day. A bucket's `search_key` is a hash of everything its scan asks Resy; when
it changes (another area, window or party sizes), the bucket re-baselines instead of
reporting everything newly in scope as drops.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from resywatch.config import Settings
from resywatch.errors import InvalidInput
from resywatch.services.vocabulary import local_today

# Resy answers a search's time_filter with the slots within about two hours of it
# (paystub-service's docs; the sandbox does the same). A wider window takes more searches.
RESY_TIME_FILTER_RADIUS = timedelta(hours=2)


@dataclass(frozen=True, order=True)
class Bucket:
    day: date
    anchor: time

    @property
    def id(self) -> str:
        return bucket_id(self.day, self.anchor)


def bucket_id(day: date, anchor: time) -> str:
    return f"{day.isoformat()}_{anchor:%H:%M}"


def parse_bucket_id(text: str) -> Bucket:
    try:
        day, anchor = text.strip().split("_")
        return Bucket(date.fromisoformat(day), time.fromisoformat(anchor))
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a bucket: use DATE_HH:MM, e.g. 2026-12-01_19:00"
        ) from None


def window(settings: Settings, now: datetime) -> list[Bucket]:
    """Every bucket of the rolling window: days from today × anchors, in date order."""
    today = local_today(now, settings.timezone)
    return [
        Bucket(today + timedelta(days=offset), anchor)
        for offset in range(settings.discovery_days)
        for anchor in sorted(set(settings.discovery_time_slots))
    ]


def search_key(settings: Settings) -> str:
    """What a bucket's scan asks Resy, beyond its own date and anchor."""
    asked = {
        "box": list(settings.discovery_bounding_box),
        "window_hours": settings.discovery_window_hours,
        "party_sizes": sorted(set(settings.discovery_party_sizes)),
        "radius_min": RESY_TIME_FILTER_RADIUS.total_seconds() / 60,
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:16]


def time_filters(anchor: time, window_hours: int) -> list[str]:
    """The fewest time_filter values whose answers together cover anchor ± window (within
    the day: a search is for one day)."""
    radius = int(RESY_TIME_FILTER_RADIUS.total_seconds() // 60)
    centre = anchor.hour * 60 + anchor.minute
    low, high = max(0, centre - window_hours * 60), min(24 * 60 - 1, centre + window_hours * 60)
    count = max(1, -(-(high - low) // (2 * radius)))
    if count == 1:
        minutes = [(low + high) // 2]
    else:  # n searches of radius r cover 2·n·r minutes: spread them evenly
        step = (high - low - 2 * radius) / (count - 1)
        minutes = [round(low + radius + step * i) for i in range(count)]
    return [f"{m // 60:02d}:{m % 60:02d}" for m in minutes]


def in_window(starts_at: datetime, bucket: Bucket, window_hours: int) -> bool:
    """Whether a venue-local start time belongs to the bucket (same day, anchor ± window)."""
    if starts_at.date() != bucket.day:
        return False
    anchor = datetime.combine(bucket.day, bucket.anchor)
    return abs(starts_at - anchor) <= timedelta(hours=window_hours)
