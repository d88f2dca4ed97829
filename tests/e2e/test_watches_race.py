"""Two checks of one watch at the same moment announce a hit once, and neither fails."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sandbox_tools import SoldOutVenue, live_config
from sqlmodel import select

from resywatch.clock import ManualClock
from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.models import Notification, Watch
from resywatch.resy.client import client_from_settings
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY, SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import local_today
from resywatch.services.watches import check_watches


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


def test_the_loser_of_a_race_on_a_hit_steps_back(db: Database, sandbox: SandboxHandle) -> None:
    settings = load_settings(
        environ={
            "RESYWATCH_RESY_BASE_URL": sandbox.base_url,
            "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
        }
    )
    now = datetime.now(UTC)
    day = local_today(now, settings.timezone) + timedelta(days=1)
    target = SoldOutVenue(sandbox, day, settings)
    with db.write() as session:
        watch = Watch(kind="venues", venue_ids=[target.venue.id], date_from=day, date_to=day,
                      party_size=2, created_at=now, updated_at=now)  # fmt: skip
        session.add(watch)
        session.flush()
        watch_id = watch.id
    target.open_one()

    # What a concurrent check committed a moment earlier: the same hit, under its key.
    async def slot_keys() -> list[str]:
        from resywatch.services.availability import open_slots
        from resywatch.services.vocabulary import Want

        async with client_from_settings(settings) as resy:
            slots = await open_slots(resy, target.venue.id, Want(day, day, 2), day)
        return sorted(f"{s.slot_id}:{s.seating_type or ''}" for s in slots)

    keys = asyncio.run(slot_keys())
    digest = hashlib.sha256("|".join(keys).encode()).hexdigest()[:16]
    with db.write() as session:
        session.add(Notification(dedupe_key=f"watch:{watch_id}:{target.venue.id}:{day}:{digest}",
                                 kind="watch_hit", title="t", body="b"))  # fmt: skip

    async def check() -> list[int]:
        async with client_from_settings(settings) as resy:
            results = await check_watches(Runtime(settings, db, resy, ManualClock(now)))
        return [len(r.hits) for r in results]

    assert asyncio.run(check()) == [0]
    with db.read() as session:
        assert len(session.exec(select(Notification)).all()) == 1
