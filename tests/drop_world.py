"""A discovery history written straight into the database, for the board and metrics tests:
buckets with their last scan, the slots their last scan saw, and drop events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket, DropEvent, SlotSnapshot, Venue
from resywatch.services.vocabulary import slot_id


class DropWorld:
    def __init__(self, db: Database, now: datetime) -> None:
        self.db, self.now = db, now

    def bucket(
        self,
        day: date,
        anchor: str = "19:00",
        *,
        scanned_ago: timedelta | None = timedelta(minutes=1),
        baselined_ago: timedelta = timedelta(days=1),
    ) -> str:
        bucket_id = f"{day}_{anchor}"
        with self.db.write() as session:
            session.add(
                DiscoveryBucket(
                    id=bucket_id,
                    slot_date=day,
                    anchor=anchor,
                    baselined_at=self.now - baselined_ago,
                    last_scan_at=None if scanned_ago is None else self.now - scanned_ago,
                )
            )
        return bucket_id

    def venue(self, venue_id: int, name: str, neighborhood: str = "West Village") -> None:
        with self.db.write() as session:
            session.add(Venue(id=venue_id, name=name, neighborhood=neighborhood))

    def drop(
        self,
        venue_id: int,
        day: date,
        hhmm: str,
        *,
        opened_ago: timedelta,
        open_for: timedelta | None = None,
        name: str | None = None,
        party: Sequence[int] = (2,),
        hotspot: bool = False,
        seen_by: Sequence[str] = (),
    ) -> int:
        """A drop `opened_ago`, closed after `open_for` (None: still open); the buckets in
        `seen_by` saw its slot in their last scan."""
        starts = datetime.combine(day, time.fromisoformat(hhmm))
        key = slot_id(venue_id, starts)
        opened = self.now - opened_ago
        closed = None if open_for is None else opened + open_for
        with self.db.write() as session:
            event = DropEvent(
                slot_id=key,
                bucket_id=seen_by[0] if seen_by else f"{day}_19:00",
                venue_id=venue_id,
                venue_name=name or f"Venue {venue_id}",
                starts_at=starts,
                slot_date=day,
                party_sizes=list(party),
                is_hotspot=hotspot,
                opened_at=opened,
                closed_at=closed,
                duration_s=None if open_for is None else int(open_for.total_seconds()),
            )
            session.add(event)
            for bucket_id in seen_by:
                session.add(
                    SlotSnapshot(
                        bucket_id=bucket_id,
                        slot_id=key,
                        venue_id=venue_id,
                        starts_at=starts,
                        in_previous=True,
                    )
                )
            session.flush()
            assert event.id is not None
            return event.id
