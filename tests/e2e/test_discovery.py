"""Discovery against the sandbox over real HTTP, on SQLite and PostgreSQL: every rule of
the drop pipeline (baseline, dedupe, close, quiet period, failed-scan guard, re-baseline,
sliding window, pagination)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sandbox_tools import ClosedSlot, advance, control
from sqlmodel import col, select

from resywatch.clock import ManualClock
from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket, DropEvent, Notification, SlotSnapshot
from resywatch.resy.client import client_from_settings
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY, SandboxHandle
from resywatch.services.admin import clear_discovery
from resywatch.services.curated import HotspotMatcher
from resywatch.services.discovery import buckets as bucket_rules
from resywatch.services.discovery.scan import PassSummary, run_pass
from resywatch.services.vocabulary import local_today


def settings_for(sandbox: SandboxHandle, **env: str) -> Settings:
    values = {
        "RESYWATCH_RESY_BASE_URL": sandbox.base_url,
        "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
        "RESYWATCH_RESY_MAX_RPS": "1000",
        "RESYWATCH_DISCOVERY_DAYS": "2",
    }
    values.update({f"RESYWATCH_{k.upper()}": v for k, v in env.items()})
    return load_settings(environ=values)


def sandbox_now(sandbox: SandboxHandle) -> datetime:
    return sandbox.state.clock.now_datetime()


def scan(db: Database, sandbox: SandboxHandle, settings: Settings, **options: Any) -> PassSummary:
    async def main() -> PassSummary:
        async with client_from_settings(settings) as resy:
            # The sandbox's clock stands still (speed 0) while a test does not move it.
            rt = Runtime(settings, db, resy, ManualClock(sandbox_now(sandbox)))
            return await run_pass(rt, matcher=HotspotMatcher.default(), **options)

    return asyncio.run(main())


def events(db: Database, slot: str | None = None) -> list[DropEvent]:
    with db.read() as session:
        query = select(DropEvent)
        if slot:
            query = query.where(DropEvent.slot_id == slot)
        return list(session.exec(query.order_by(col(DropEvent.id))))


def notifications(db: Database) -> list[Notification]:
    with db.read() as session:
        return list(session.exec(select(Notification).where(Notification.kind == "drop")))


def today(sandbox: SandboxHandle, settings: Settings) -> date:
    return local_today(sandbox_now(sandbox), settings.timezone)


def test_first_scan_is_a_baseline_and_a_quiet_rescan_writes_only_metadata(
    db: Database, sandbox: SandboxHandle
) -> None:
    settings = settings_for(sandbox)
    first = scan(db, sandbox, settings)
    assert first.buckets_scanned == first.buckets_baselined == 4
    assert first.buckets_failed == 0
    assert first.slots_seen > 0
    assert first.drops_opened == 0
    with db.read() as session:
        before = {
            (r.bucket_id, r.slot_id): r.changed_at for r in session.exec(select(SlotSnapshot))
        }

    advance(sandbox, 1)
    second = scan(db, sandbox, settings)
    assert (second.buckets_baselined, second.drops_opened, second.drops_closed) == (0, 0, 0)
    with db.read() as session:
        after = {(r.bucket_id, r.slot_id): r.changed_at for r in session.exec(select(SlotSnapshot))}
        scanned = [b.last_scan_at for b in session.exec(select(DiscoveryBucket))]
    assert after == before  # nothing but the bucket rows' scan metadata was written
    assert all(at == sandbox_now(sandbox) for at in scanned)
    assert events(db) == [] and notifications(db) == []


def test_a_slot_that_opens_is_one_drop_with_one_notification(
    db: Database, sandbox: SandboxHandle
) -> None:
    settings = settings_for(sandbox)
    scan(db, sandbox, settings)
    slot = ClosedSlot(sandbox, today(sandbox, settings) + timedelta(days=1), settings)
    slot.change(+1)
    summary = scan(db, sandbox, settings)
    assert summary.drops_opened == 1
    [event] = events(db)
    assert event.slot_id == slot.slot_id
    assert event.venue_id == slot.venue.id
    assert event.closed_at is None
    assert 2 in event.party_sizes and slot.slot.seating.name in event.seating_types
    [note] = notifications(db)
    assert note.dedupe_key == f"drop:{event.id}"
    assert note.payload["venue_name"] == slot.venue.name

    # Replays and the next passes see the same open slot: no second event.
    for _ in range(2):
        assert scan(db, sandbox, settings).drops_opened == 0
    assert len(events(db)) == 1 and len(notifications(db)) == 1


def test_a_slot_seen_by_two_buckets_is_one_drop(db: Database, sandbox: SandboxHandle) -> None:
    # Anchors one hour apart with a 2-hour window: every evening slot is in both buckets.
    settings = settings_for(sandbox, discovery_time_slots="18:30,19:30")
    scan(db, sandbox, settings)
    slot = ClosedSlot(sandbox, today(sandbox, settings) + timedelta(days=1), settings)
    slot.change(+1)
    scan(db, sandbox, settings)
    assert len(events(db, slot.slot_id)) == 1
    with db.read() as session:
        holders = session.exec(
            select(SlotSnapshot.bucket_id).where(SlotSnapshot.slot_id == slot.slot_id)
        ).all()
    assert len(holders) == 2


def test_a_drop_closes_when_its_slot_goes_and_a_quick_reopen_is_not_news(
    db: Database, sandbox: SandboxHandle
) -> None:
    settings = settings_for(sandbox)
    scan(db, sandbox, settings)
    slot = ClosedSlot(sandbox, today(sandbox, settings) + timedelta(days=1), settings)
    slot.change(+1)
    scan(db, sandbox, settings)

    advance(sandbox, 120)
    slot.change(-1)
    assert scan(db, sandbox, settings).drops_closed == 1
    [event] = events(db, slot.slot_id)
    assert event.closed_at is not None and event.duration_s == 120

    # Back within the quiet period: the same event re-opens, and nobody is alerted again.
    # (Time passing also brings the sandbox's own cancellations: other drops may open.)
    advance(sandbox, 10 * 60)
    slot.change(+1)
    assert scan(db, sandbox, settings).drops_reopened >= 1
    [event] = events(db, slot.slot_id)
    assert event.closed_at is None
    assert [n.payload["drop_event_id"] for n in notifications(db)].count(event.id) == 1

    slot.change(-1)
    scan(db, sandbox, settings)
    advance(sandbox, 31 * 60)  # past the quiet period: a new opening, a new alert
    slot.change(+1)
    scan(db, sandbox, settings, only=[f"{slot.day}_19:00"])
    first, second = events(db, slot.slot_id)
    assert first.closed_at is not None and second.closed_at is None
    alerted = [n.payload["drop_event_id"] for n in notifications(db)]
    assert (alerted.count(first.id), alerted.count(second.id)) == (1, 1)


def test_a_failed_scan_changes_nothing_and_cannot_cause_a_burst_later(
    db: Database, sandbox: SandboxHandle
) -> None:
    settings = settings_for(sandbox, resy_max_retries="0")
    scan(db, sandbox, settings)
    slot = ClosedSlot(sandbox, today(sandbox, settings) + timedelta(days=1), settings)
    slot.change(+1)
    scan(db, sandbox, settings)
    with db.read() as session:
        before = sorted(
            (r.bucket_id, r.slot_id, r.in_previous) for r in session.exec(select(SlotSnapshot))
        )

    # The second page-1 request of each bucket fails: every bucket scan is partial.
    control(sandbox, "/faults", {"route": "/3/venuesearch/search", "error_rate": 1.0})
    failed = scan(db, sandbox, settings)
    assert failed.buckets_failed == 4 and failed.buckets_scanned == 0
    assert set(failed.errors) == {b.id for b in bucket_rules.window(settings, sandbox_now(sandbox))}
    with db.read() as session:
        after = sorted(
            (r.bucket_id, r.slot_id, r.in_previous) for r in session.exec(select(SlotSnapshot))
        )
        states = list(session.exec(select(DiscoveryBucket)))
    assert after == before
    assert all(b.consecutive_failures == 1 and b.last_error for b in states)
    assert events(db, slot.slot_id)[0].closed_at is None  # not closed by the failure

    httpx.delete(f"{sandbox.base_url}/__sandbox/faults", timeout=5)
    recovered = scan(db, sandbox, settings)
    assert (recovered.drops_opened, recovered.drops_closed, recovered.buckets_failed) == (0, 0, 0)
    with db.read() as session:
        assert all(b.consecutive_failures == 0 for b in session.exec(select(DiscoveryBucket)))


def test_changing_what_is_asked_rebaselines_instead_of_a_false_burst(
    db: Database, sandbox: SandboxHandle
) -> None:
    scan(db, sandbox, settings_for(sandbox, discovery_party_sizes="2"))
    wider = settings_for(sandbox, discovery_party_sizes="2,4,6", discovery_window_hours="3")
    summary = scan(db, sandbox, wider)
    assert summary.buckets_baselined == 4
    assert summary.drops_opened == 0
    assert scan(db, sandbox, wider).drops_opened == 0


def test_rebaseline_flag(db: Database, sandbox: SandboxHandle) -> None:
    settings = settings_for(sandbox)
    scan(db, sandbox, settings)
    slot = ClosedSlot(sandbox, today(sandbox, settings) + timedelta(days=1), settings)
    slot.change(+1)
    summary = scan(db, sandbox, settings, rebaseline=True)
    assert summary.buckets_baselined == 4 and summary.drops_opened == 0


def test_the_window_slides_with_the_local_day(db: Database, sandbox: SandboxHandle) -> None:
    settings = settings_for(sandbox)
    scan(db, sandbox, settings)
    first_day = today(sandbox, settings)
    advance(sandbox, 24 * 3600)
    summary = scan(db, sandbox, settings)
    assert summary.buckets_pruned == 2
    with db.read() as session:
        ids = sorted(session.exec(select(DiscoveryBucket.id)))
        old = session.exec(
            select(SlotSnapshot).where(col(SlotSnapshot.bucket_id).startswith(str(first_day)))
        ).all()
    new_day = first_day + timedelta(days=2)
    assert ids == sorted(
        f"{d}_{a}" for d in (first_day + timedelta(days=1), new_day) for a in ("15:00", "19:00")
    )
    assert old == []
    assert summary.buckets_baselined == 2  # the new day's buckets: baseline, no drops
    assert [e for e in events(db) if e.slot_date == new_day] == []


def test_pagination_gives_the_same_slots_as_one_big_page(
    database_url: str, sandbox: SandboxHandle, tmp_path: Any
) -> None:
    found: list[set[str]] = []
    for page_size in ("100", "20"):
        db = Database(database_url if page_size == "100" else f"sqlite:///{tmp_path / 'p.db'}")
        if page_size == "20":
            from resywatch.db.migrate import upgrade

            upgrade(db)
        scan(db, sandbox, settings_for(sandbox, discovery_page_size=page_size))
        with db.read() as session:
            found.append(set(session.exec(select(SlotSnapshot.slot_id))))
        db.dispose()
    log = httpx.get(f"{sandbox.base_url}/__sandbox/requests?route=/3/venuesearch/search", timeout=5)
    pages = {r.get("page") or r.get("params", {}).get("page") for r in log.json()["requests"]}
    assert found[0] == found[1] and found[0]
    assert max(p for p in pages if p) > 2


def test_only_named_buckets_and_bad_names(db: Database, sandbox: SandboxHandle) -> None:
    from resywatch.errors import InvalidInput

    settings = settings_for(sandbox)
    first = bucket_rules.window(settings, sandbox_now(sandbox))[0]
    summary = scan(db, sandbox, settings, only=[first.id])
    assert summary.buckets_scanned == 1
    with pytest.raises(InvalidInput, match="not a bucket of the current window"):
        scan(db, sandbox, settings, only=["2020-01-01_19:00"])
    with pytest.raises(InvalidInput, match="DATE_HH:MM"):
        scan(db, sandbox, settings, only=["tomorrow"])


def test_due_only_skips_buckets_scanned_within_the_interval(
    db: Database, sandbox: SandboxHandle
) -> None:
    settings = settings_for(sandbox)
    scan(db, sandbox, settings)
    assert scan(db, sandbox, settings, due_only=True).buckets_scanned == 0
    advance(sandbox, settings.discovery_interval_s + 1)
    assert scan(db, sandbox, settings, due_only=True).buckets_scanned == 4


def test_a_changed_interval_takes_effect_at_the_next_cycle(
    db: Database, sandbox: SandboxHandle
) -> None:
    # Buckets once kept a cycle number (start // interval): after raising the interval the
    # numbers in the new unit stayed below the recorded ones, and no bucket was due again.
    for interval in (30, 60, 30, 90):
        settings = settings_for(sandbox, discovery_interval_s=str(interval))
        assert scan(db, sandbox, settings, due_only=True).buckets_scanned == 4, interval
        assert scan(db, sandbox, settings, due_only=True).buckets_scanned == 0, interval
        advance(sandbox, 91)  # into the next cycle of whichever interval comes next


def test_after_admin_clear_the_next_drop_is_recorded_and_announced(
    db: Database, sandbox: SandboxHandle
) -> None:
    # SQLite once gave the cleared newest drop's id to the next drop: `drop:<id>` was taken
    # by the delivered message of the old one, and every later scan failed on it.
    settings = settings_for(sandbox)
    day = today(sandbox, settings) + timedelta(days=1)
    scan(db, sandbox, settings)
    first = ClosedSlot(sandbox, day, settings)
    first.change(+1)
    assert scan(db, sandbox, settings).drops_opened == 1
    with db.write() as session:  # delivered: history that stays
        session.exec(select(Notification)).one().status = "sent"
    assert clear_discovery(db).drop_events == 1

    assert scan(db, sandbox, settings).buckets_baselined == 4
    second = ClosedSlot(sandbox, day, settings, skip=frozenset({first.venue.id}))
    second.change(+1)
    summary = scan(db, sandbox, settings)
    assert (summary.drops_opened, summary.buckets_failed) == (1, 0)
    [event] = events(db)
    assert sorted(n.dedupe_key for n in notifications(db)) == sorted([f"drop:{event.id}", "drop:1"])
    assert event.id != 1


def test_admin_clear_retires_the_drop_messages_not_yet_delivered(
    db: Database, sandbox: SandboxHandle
) -> None:
    settings = settings_for(sandbox)
    scan(db, sandbox, settings)
    ClosedSlot(sandbox, today(sandbox, settings) + timedelta(days=1), settings).change(+1)
    assert scan(db, sandbox, settings).drops_opened == 1
    assert [n.status for n in notifications(db)] == ["pending"]
    assert clear_discovery(db).notifications == 1
    assert notifications(db) == []
