"""Venue saving lives in the venues service (both backends): what a search saw is inserted
once, written again only when it changed, and a field Resy did not send never erases one
it sent before."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from resywatch.db.engine import Database
from resywatch.db.models import Venue
from resywatch.resy.models import SearchHit
from resywatch.services.venues import SeenVenue, upsert_venues

NOW = datetime(2026, 12, 1, 15, tzinfo=UTC)


def aware(moment: datetime) -> datetime:
    """SQLite keeps no zone: its timestamps are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seen(venue_id: int, **fields: object) -> SeenVenue:
    hit = {"id": venue_id, "name": f"Venue {venue_id}", "neighborhood": "Soho", **fields}
    return SeenVenue.from_hit(SearchHit.model_validate(hit))


def test_new_venues_are_inserted_and_unchanged_ones_are_not_written(db: Database) -> None:
    first = [seen(1, cuisine=["Italian"]), seen(2)]
    assert upsert_venues(db, first, NOW) == 2
    assert upsert_venues(db, first, NOW + timedelta(minutes=1)) == 0
    renamed = replace(first[1], name="Venue Two")
    assert upsert_venues(db, [first[0], renamed], NOW + timedelta(minutes=2)) == 1
    with db.read() as session:
        one, two = session.get(Venue, 1), session.get(Venue, 2)
    assert one is not None and two is not None
    assert one.cuisine == "Italian" and two.name == "Venue Two"
    assert aware(one.updated_at) == NOW  # never rewritten
    assert aware(two.updated_at) == NOW + timedelta(minutes=2)


def test_a_field_resy_did_not_send_keeps_its_known_value(db: Database) -> None:
    upsert_venues(db, [seen(3, cuisine=["Thai"])], NOW)
    # A venue page tells no cuisine: it must not erase the one a search told.
    assert upsert_venues(db, [replace(seen(3), cuisine=None)], NOW) == 0
    with db.read() as session:
        venue = session.get(Venue, 3)
    assert venue is not None and venue.cuisine == "Thai"
