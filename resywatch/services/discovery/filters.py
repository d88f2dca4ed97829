"""The filters every drop board and the feed share: which slot dates, which anchor's
window, party size, time of day, hotspots only, venue name."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time

from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from resywatch.db.models import DiscoveryBucket, DropEvent
from resywatch.errors import InvalidInput
from resywatch.services.curated import name_filter, normalize_name
from resywatch.services.discovery import buckets as bucket_rules


@dataclass(frozen=True)
class BoardFilter:
    """Which drops a board or the feed shows. Dates are the slot's (venue-local) date: the
    listed `dates`, or the range `date_from`..`date_until` (either end open); `anchor` keeps
    the slots a bucket of that anchor scans (anchor ± `window_hours`)."""

    dates: tuple[date, ...] = ()
    date_from: date | None = None
    date_until: date | None = None
    anchor: time | None = None
    window_hours: int = 2
    party_size: int | None = None
    after: time | None = None
    before: time | None = None
    hotspots_only: bool = False
    venue: str | None = None
    # The venue filter normalised, checked when the filter is made (not at the first row).
    venue_key: str | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.venue is not None:
            object.__setattr__(self, "venue_key", name_filter(self.venue))
        if self.dates and (self.date_from or self.date_until):
            raise InvalidInput("give --date or --from/--until, not both")
        if self.date_from and self.date_until and self.date_from > self.date_until:
            raise InvalidInput(f"--from {self.date_from} is after --until {self.date_until}")
        if self.after and self.before and self.after > self.before:
            raise InvalidInput(
                f"--after {self.after:%H:%M} is later than --before {self.before:%H:%M}"
            )

    def day_conditions(self) -> list[ColumnElement[bool]]:
        """The SQL conditions on the drop's slot date."""
        day = col(DropEvent.slot_date)
        conditions: list[ColumnElement[bool]] = []
        if self.dates:
            conditions.append(day.in_(sorted(set(self.dates))))
        if self.date_from is not None:
            conditions.append(day >= self.date_from)
        if self.date_until is not None:
            conditions.append(day <= self.date_until)
        return conditions

    def keeps(self, event: DropEvent) -> bool:
        """The conditions SQL cannot portably check: the party sizes (a JSON list), the
        time of day, the anchor's window and the venue's normalised name."""
        start = event.starts_at
        if self.party_size is not None and self.party_size not in event.party_sizes:
            return False
        if self.after is not None and start.time() < self.after:
            return False
        if self.before is not None and start.time() > self.before:
            return False
        if self.anchor is not None and not bucket_rules.in_window(
            start, bucket_rules.Bucket(event.slot_date, self.anchor), self.window_hours
        ):
            return False
        return not self.venue_key or self.venue_key in normalize_name(event.venue_name)

    def keeps_bucket(self, bucket: DiscoveryBucket) -> bool:
        if self.dates and bucket.slot_date not in self.dates:
            return False
        if self.date_from is not None and bucket.slot_date < self.date_from:
            return False
        if self.date_until is not None and bucket.slot_date > self.date_until:
            return False
        return self.anchor is None or bucket.anchor == f"{self.anchor:%H:%M}"
