"""Asking Resy what is open in one bucket: every party size's searches, their pages merged
into one `BucketScan`. Nothing here touches the database (see `apply` for that)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from resywatch.config import Settings
from resywatch.errors import ResywatchError
from resywatch.resy.client import ResyClient
from resywatch.resy.search_page import SearchHit, SearchSlot
from resywatch.services.discovery import buckets as bucket_rules
from resywatch.services.discovery.buckets import Bucket
from resywatch.services.venues import SeenVenue
from resywatch.services.vocabulary import slot_id

MAX_PAGES = 50  # a safety stop: a Manhattan evening is a handful of 100-venue pages


@dataclass
class SeenSlot:
    """A slot as one bucket scan saw it, merged across party sizes and seating types."""

    slot_id: str
    venue_id: int
    venue_name: str
    starts_at: datetime
    party_sizes: set[int] = field(default_factory=set)
    seating_types: set[str] = field(default_factory=set)

    @property
    def offered(self) -> str:
        """The party sizes and seating types as one comparable string: "2,4|Bar,Patio"."""
        sizes = ",".join(map(str, sorted(self.party_sizes)))
        return f"{sizes}|{','.join(sorted(self.seating_types))}"


@dataclass
class BucketScan:
    """What one bucket's searches returned; `error` set means incomplete, apply nothing."""

    bucket: Bucket
    slots: dict[str, SeenSlot] = field(default_factory=dict)
    venues: dict[int, SeenVenue] = field(default_factory=dict)
    error: str | None = None
    # (venue id, Resy's start string) -> slot (None: outside the bucket's window), so
    # repeats across party sizes and seating types cost one lookup.
    by_start: dict[tuple[int, str], SeenSlot | None] = field(default_factory=dict, repr=False)


async def fetch_bucket(resy: ResyClient, bucket: Bucket, settings: Settings) -> BucketScan:
    """Search the area for the bucket's date around its anchor, for every party size."""
    scan = BucketScan(bucket)
    queries = [
        (party, time_filter)
        for party in sorted(set(settings.discovery_party_sizes))
        for time_filter in bucket_rules.time_filters(bucket.anchor, settings.discovery_window_hours)
    ]
    results = await asyncio.gather(
        *(
            resy.search_all(
                day=bucket.day,
                party_size=party,
                time_filter=time_filter,
                bounding_box=settings.discovery_bounding_box,
                per_page=settings.discovery_page_size,
                max_pages=MAX_PAGES,
            )
            for party, time_filter in queries
        ),
        return_exceptions=True,
    )
    for (party, _), result in zip(queries, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, ResywatchError):
                raise result
            scan.error = f"party {party}: {result}"
            continue
        merge_hits(scan, result, party, settings.discovery_window_hours)
    return scan


def merge_hits(scan: BucketScan, hits: list[SearchHit], party: int, window_hours: int) -> None:
    """Fold one party size's hits into the bucket's slots. A slot shows up once per party
    size and seating type, so its id and start are worked out once per (venue, start)."""
    by_start = scan.by_start
    for hit in hits:
        for slot in hit.slots:
            where = (hit.id, slot.date.start)
            if where in by_start:
                seen = by_start[where]
            else:
                seen = by_start[where] = _first_sight(scan, hit, slot, window_hours)
            if seen is None:  # outside the window
                continue
            seen.party_sizes.add(party)
            if seating := slot.config.type:
                seen.seating_types.add(seating)


def _first_sight(
    scan: BucketScan, hit: SearchHit, slot: SearchSlot, window_hours: int
) -> SeenSlot | None:
    """The slot a (venue, start) seen for the first time in this scan is, or None when it
    is outside the bucket's window."""
    starts = slot.starts_at
    if not bucket_rules.in_window(starts, scan.bucket, window_hours):
        return None
    if hit.id not in scan.venues:
        scan.venues[hit.id] = SeenVenue.from_hit(hit)
    key = slot_id(hit.id, starts)
    return scan.slots.get(key) or scan.slots.setdefault(
        key, SeenSlot(key, hit.id, hit.name, starts)
    )
