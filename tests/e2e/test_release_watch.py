"""Release-aware discovery against the sandbox (its clock frozen, moved by the test): a venue
whose release habit is learned with confidence is looked at around its predicted instant, its
new day's slots become drops within a poll of the release, and the bucket scan that follows
finds them already known (the same drop events, no second one)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from booking_support import unreleased
from sqlmodel import col, select

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models import DropEvent
from resywatch.resy.client import client_from_settings
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY, SandboxHandle
from resywatch.sandbox.venues import Venue
from resywatch.services.curated import HotspotMatcher
from resywatch.services.discovery import buckets as bucket_rules
from resywatch.services.discovery import releases
from resywatch.services.discovery.scan import run_pass


class SandboxSteps:
    """A Clock over the frozen sandbox: sleeping moves the sandbox's time."""

    def __init__(self, sandbox: SandboxHandle) -> None:
        self.clock = sandbox.state.clock

    def now(self) -> datetime:
        return self.clock.now_datetime()

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(max(0.0, seconds))
        await asyncio.sleep(0)


def settings_for(sandbox: SandboxHandle) -> Settings:
    return load_settings(
        environ={
            "RESYWATCH_RESY_BASE_URL": sandbox.base_url,
            "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
            "RESYWATCH_RESY_MAX_RPS": "1000",
        }
    )


def a_venue_within_the_window(sandbox: SandboxHandle) -> tuple[Venue, object]:
    for skip in range(40):
        venue, day = unreleased(sandbox, skip=skip)
        if venue.lead_time_days + 1 <= 12 and venue.time_zone == "America/New_York":
            return venue, day
    raise AssertionError("no venue releasing a day inside the discovery window")


def learned_habit(db: Database, venue: Venue, lead: int, local_time: datetime) -> None:
    """Ten past drops at the venue, each `lead` days ahead, opened at `local_time`'s hour."""
    with db.write() as session:
        for n in range(1, 11):
            opened = (local_time - timedelta(days=n)).astimezone(UTC)
            day = (local_time - timedelta(days=n)).date() + timedelta(days=lead)
            session.add(
                DropEvent(
                    slot_id=f"past-{venue.id}-{n}", bucket_id=f"{day}_19:00", venue_id=venue.id,
                    venue_name=venue.name, starts_at=datetime.combine(day, datetime.min.time())
                    + timedelta(hours=19), slot_date=day, opened_at=opened,
                    closed_at=opened + timedelta(minutes=3),
                )
            )  # fmt: skip


def test_a_learned_release_is_seen_within_a_poll_and_the_scan_adds_no_second_drop(
    sandbox: SandboxHandle, db: Database
) -> None:
    venue, day = a_venue_within_the_window(sandbox)
    zone = ZoneInfo(venue.time_zone)
    now_local = sandbox.state.clock.now_datetime().astimezone(zone)
    quarter = now_local.replace(second=0, microsecond=0) + timedelta(
        minutes=15 - now_local.minute % 15
    )
    sandbox.state.clock.advance((quarter - now_local).total_seconds() - 10)  # 10 s before
    lead = (day - quarter.date()).days  # type: ignore[operator]
    sandbox.state.force_release(venue, day, quarter.timestamp())
    learned_habit(db, venue, lead, quarter)
    settings = settings_for(sandbox)
    clock = SandboxSteps(sandbox)

    async def go() -> tuple[list[releases.Release], dict[str, int], int]:
        async with client_from_settings(settings) as resy:
            rt = Runtime(settings, db, resy, clock)
            ids = [bucket_rules.bucket_id(day, a) for a in settings.discovery_time_slots]  # type: ignore[arg-type]
            await run_pass(rt, matcher=HotspotMatcher.default(), only=ids)  # baselines
            with db.read() as session:
                due = releases.upcoming(session, rt, clock.now() + timedelta(seconds=15))
            counts = await releases.watch_releases(rt, due)
            after = await run_pass(rt, matcher=HotspotMatcher.default(), only=ids)
            return due, counts, after.drops_opened

    due, counts, opened_by_scan = asyncio.run(go())
    assert [(r.venue_id, r.day) for r in due] == [(venue.id, day)]
    assert counts["seen"] == 1 and counts["drops_opened"] >= 1
    with db.read() as session:
        drops = session.exec(
            select(DropEvent).where(col(DropEvent.venue_id) == venue.id, DropEvent.slot_date == day)
        ).all()
    assert len(drops) == counts["drops_opened"]
    assert all(
        0 <= (d.opened_at.replace(tzinfo=UTC) - quarter).total_seconds() <= 2 for d in drops
    )  # seen within 2 s of the release
    assert opened_by_scan == 0  # the scan knew them: no second drop
    with db.read() as session:
        assert releases.upcoming(session, Runtime(settings, db, None, clock), clock.now()) == []  # type: ignore[arg-type]
