"""Release patterns read every drop kept (the releases job does it every minute in
run-forever), so their working set must not grow with the table (both backends): one
venue's drops at a time, as columns, not every drop of every venue as objects at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from resywatch.db.engine import Database
from resywatch.db.models import DropEvent, Venue
from resywatch.services.discovery.patterns import patterns
from tests.memory_peak import peak_bytes

VENUES, DROPS = 20, 300  # 6,000 drops: a quiet city's month


def drop(venue: int, n: int) -> dict[str, Any]:
    # Released 14 days ahead at 10:00 New York time (15:00 UTC in winter), day after day.
    opened = datetime(2026, 1, 1, 15, tzinfo=UTC) + timedelta(days=n % 60, seconds=n)
    day = opened.date() + timedelta(days=14)
    return {
        "slot_id": f"{venue}-{n}",
        "bucket_id": f"{day.isoformat()}_19:00",
        "venue_id": venue,
        "venue_name": f"Venue {venue} with a name of ordinary length",
        "starts_at": datetime.combine(day, datetime.min.time()).replace(hour=19),
        "slot_date": day,
        "party_sizes": [2, 4],
        "seating_types": ["Dining Room"],
        "opened_at": opened,
        "closed_at": opened + timedelta(minutes=5),
        "duration_s": 300,
    }


def test_patterns_stream_one_venue_at_a_time(db: Database) -> None:
    with db.write() as session:
        session.execute(
            insert(Venue.__table__),  # type: ignore[attr-defined]
            [{"id": v, "name": f"Venue {v}", "time_zone": "America/New_York"}
             for v in range(1, VENUES + 1)],
        )  # fmt: skip
        session.execute(
            insert(DropEvent.__table__),  # type: ignore[attr-defined]
            [drop(v, n) for v in range(1, VENUES + 1) for n in range(DROPS)],
        )
    with db.read() as session:
        patterns(session, default_timezone="UTC")  # warm: statements compiled, pools open
        found, grown = peak_bytes(lambda: patterns(session, default_timezone="UTC"))

    assert len(found) == VENUES
    first = next(p for p in found if p.venue_id == 1)
    assert (first.samples, first.lead_days, first.release_time) == (DROPS, 14, "10:00")
    assert first.time_zone == "America/New_York" and first.median_duration_s == 300
    assert first.first_seen < first.last_seen
    # Every drop as an object (with its venue) held at once took about 2.5 kB a drop, 15 MB
    # here and growing with the table; a venue's rows at a time stay a small fraction of it.
    assert grown < 3 * 2**20, f"{(grown) / 2**20:.1f} MB for {VENUES * DROPS}"
