"""`admin db-info` carries the seed's db-debug fields: next scan, the discovery job's
heartbeat (secrets masked), the bucket summary, the fast checks and hints."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket, DropEvent, JobHeartbeat, SlotSnapshot
from resywatch.services.admin import DbInfo, db_info, with_discovery

SECRET = "sekrit-api-key-4242"
NOW = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)


def debug(db: Database, settings: Settings, now: datetime) -> DbInfo:
    return with_discovery(db, db_info(db), settings, now)


def seed_state(db: Database, now: datetime) -> None:
    day = date(2026, 12, 3)
    with db.write() as session:
        session.add(
            JobHeartbeat(
                job_name="discovery",
                last_started_at=now - timedelta(seconds=10),
                last_finished_at=now - timedelta(seconds=8),
                last_status="failed",
                last_error=f"401 from Resy with api key {SECRET}",
                next_run_at=now + timedelta(seconds=20),
                owner="host:1:abc",
            )
        )
        fresh = DiscoveryBucket(
            id="2026-12-03_19:00", slot_date=day, anchor="19:00", baselined_at=now,
            last_scan_at=now - timedelta(seconds=30), baseline_count=1, slot_count=2,
        )  # fmt: skip
        stale = DiscoveryBucket(
            id="2026-12-03_15:00", slot_date=day, anchor="15:00", baselined_at=now,
            last_scan_at=now - timedelta(hours=5), consecutive_failures=3, slot_count=1,
        )  # fmt: skip
        never = DiscoveryBucket(id="2026-12-04_19:00", slot_date=day, anchor="19:00")
        session.add_all([fresh, stale, never])
        session.flush()
        starts = datetime(2026, 12, 3, 19, 0)
        for slot, venue in (("a" * 32, 1), ("b" * 32, 2)):
            session.add(
                SlotSnapshot(bucket_id=fresh.id, slot_id=slot, venue_id=venue, starts_at=starts,
                             in_baseline=slot == "a" * 32, in_previous=True)
            )  # fmt: skip
        session.add(
            SlotSnapshot(bucket_id=stale.id, slot_id="c" * 32, venue_id=2, starts_at=starts,
                         in_previous=True)
        )  # fmt: skip
        session.add(
            DropEvent(slot_id="b" * 32, bucket_id=fresh.id, venue_id=2, venue_name="V",
                      starts_at=starts, slot_date=day, opened_at=now)
        )  # fmt: skip


def test_db_info_has_the_seeds_debug_fields_with_secrets_masked(db: Database) -> None:
    seed_state(db, NOW)
    settings = load_settings(environ={"RESYWATCH_RESY_API_KEY": SECRET})
    info = debug(db, settings, NOW)
    assert info.next_scan_at == NOW + timedelta(seconds=20)
    beat = info.job_heartbeat
    assert beat is not None and beat.last_status == "failed" and beat.owner == "host:1:abc"
    assert beat.last_error is not None and SECRET not in beat.last_error
    summary = info.bucket_summary
    assert summary is not None
    assert (summary.total, summary.baselined) == (3, 2)
    assert summary.stale == ["2026-12-03_15:00", "2026-12-04_19:00"]
    assert summary.failing == ["2026-12-03_15:00"]
    assert summary.last_scan_at == NOW - timedelta(seconds=30)
    assert (summary.slots_in_last_scans, summary.venues_in_last_scans) == (3, 2)
    assert summary.open_drops == 1
    assert info.fast_checks == {"job_alive": True, "feed_updating": True}
    hints = "\n".join(info.hints)
    assert "the last discovery pass failed" in hints and SECRET not in hints
    assert "1 bucket(s) have no baseline yet" in hints
    assert "2 bucket(s) not scanned for 4 h" in hints and "1 bucket(s) failing" in hints
    assert "discover explain" in hints


def test_a_quiet_database_says_what_to_run(db: Database) -> None:
    info = debug(db, load_settings(environ={}), NOW)
    assert info.job_heartbeat is None and info.next_scan_at is None
    assert info.fast_checks == {"job_alive": False, "feed_updating": False}
    assert any("never run" in h for h in info.hints)
    assert any("no bucket yet" in h for h in info.hints)


def test_db_info_cli_json_and_pipe_never_show_the_secret(cli: Any, database_url: str) -> None:
    db = Database(database_url)
    try:
        seed_state(db, datetime.now(UTC))
    finally:
        db.dispose()
    env = {"RESYWATCH_DATABASE_URL": database_url, "RESYWATCH_RESY_API_KEY": SECRET}
    result = cli("admin", "db-info", "--json", env=env)
    document = json.loads(result.stdout)
    assert document["job_heartbeat"]["last_status"] == "failed"
    assert document["bucket_summary"]["total"] == 3 and document["next_scan_at"].endswith("Z")
    assert set(document["fast_checks"]) == {"job_alive", "feed_updating"}
    assert document["hints"]
    piped = cli("admin", "db-info", env=env)
    assert "buckets\tbaselined\tstale" in piped.stdout and "hint: " in piped.stderr
    for output in (result.stdout + result.stderr, piped.stdout + piped.stderr):
        assert SECRET not in output
    if database_url.startswith("postgresql"):
        password = database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert password not in result.stdout + piped.stdout
