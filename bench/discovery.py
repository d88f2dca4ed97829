"""Discovery figures, each beside a baseline measured in the same run.

1. Cycle wall time: a full pass over 28 buckets against the sandbox (its own process) with
   50 ms injected into every request, against the ideal (request waves x latency at the
   configured concurrency) and against a sequential scan. Target: <= 1.25 x ideal.
2. Requests per full cycle.
3. CPU time to ingest one cycle of a dense city (300 venues x 8 slots x 28 buckets) into
   SQLite (and PostgreSQL when RESYWATCH_BENCH_DATABASE_URL names an empty database), for
   the first (baseline) cycle and an unchanged one. Target: <= 0.5 s on SQLite, and an
   unchanged cycle writes nothing but the buckets' scan metadata.

Prints one JSON object as its last line. Usage: python bench/discovery.py [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sandbox_process import free_port, start_sandbox
from sqlalchemy import func, select

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.migrate import upgrade
from resywatch.db.models import DropEvent, Notification, SlotSnapshot, Venue
from resywatch.resy.client import client_from_settings
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY
from resywatch.services.curated import HotspotMatcher
from resywatch.services.discovery import buckets
from resywatch.services.discovery.apply import apply_scan, sync_window
from resywatch.services.discovery.fetch import BucketScan, SeenSlot
from resywatch.services.discovery.scan import PassSummary, run_pass
from resywatch.services.vocabulary import slot_id


def settings_for(base_url: str, concurrency: int) -> Settings:
    return load_settings(
        environ={
            "RESYWATCH_RESY_BASE_URL": base_url,
            "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
            "RESYWATCH_RESY_MAX_RPS": "10000",
            "RESYWATCH_DISCOVERY_CONCURRENCY": str(concurrency),
        }
    )


def timed_pass(settings: Settings, db: Database) -> tuple[float, PassSummary]:
    async def main() -> PassSummary:
        async with client_from_settings(settings) as resy:
            return await run_pass(Runtime(settings, db, resy), matcher=HotspotMatcher.default())

    started = time.perf_counter()
    summary = asyncio.run(main())
    return time.perf_counter() - started, summary


def fresh_sqlite() -> Database:
    db = Database(f"sqlite:///{tempfile.mkdtemp(prefix='rw-bench-')}/bench.db")
    upgrade(db)
    return db


def cycle_figures(latency_ms: float) -> dict[str, Any]:
    port = free_port()
    sandbox = start_sandbox(port, speed=0)
    base_url = f"http://127.0.0.1:{port}"
    try:
        httpx.post(
            f"{base_url}/__sandbox/faults", json={"route": "*", "latency_ms": latency_ms}, timeout=5
        ).raise_for_status()
        concurrent = settings_for(base_url, concurrency=8)
        db = fresh_sqlite()
        baseline_s, first = timed_pass(concurrent, db)  # the baseline cycle
        steady_s, steady = timed_pass(concurrent, db)
        sequential_s, _ = timed_pass(settings_for(base_url, concurrency=1), fresh_sqlite())
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    waves = math.ceil(steady.requests / concurrent.discovery_concurrency)
    ideal_s = waves * latency_ms / 1000
    return {
        "buckets": steady.buckets_scanned,
        "requests_per_cycle": steady.requests,
        "slots_seen": steady.slots_seen,
        "latency_ms": latency_ms,
        "concurrency": concurrent.discovery_concurrency,
        "ideal_s": round(ideal_s, 3),
        "cycle_s": round(steady_s, 3),
        "first_cycle_s": round(baseline_s, 3),
        "sequential_s": round(sequential_s, 3),
        "cycle_vs_ideal": round(steady_s / ideal_s, 3),
        "cycle_vs_sequential": round(steady_s / sequential_s, 3),
        "target_vs_ideal": 1.25,
        "errors": first.buckets_failed + steady.buckets_failed,
    }


def dense_city(settings: Settings, now: datetime) -> list[BucketScan]:
    """300 venues x 8 slots in every bucket (slots every 30 min across the window)."""
    scans = []
    for bucket in buckets.window(settings, now):
        scan = BucketScan(bucket)
        anchor = datetime.combine(bucket.day, bucket.anchor)
        for venue in range(300):
            for k in range(8):
                starts = anchor + timedelta(minutes=-120 + 30 * k + 15 * (venue % 2))
                key = slot_id(10_000 + venue, starts)
                scan.slots[key] = SeenSlot(
                    key, 10_000 + venue, f"Venue {venue}", starts, {2, 4}, {"Dining Room"}
                )
        scans.append(scan)
    return scans


def ingest_figures(db: Database) -> dict[str, Any]:
    settings = load_settings(environ={})
    now = datetime(2026, 12, 1, 15, tzinfo=UTC)
    scans = dense_city(settings, now)
    key, matcher = buckets.search_key(settings), HotspotMatcher.default()
    sync_window(db, buckets.window(settings, now), now)

    def ingest(at: datetime) -> float:
        started = time.process_time()
        for scan in scans:
            apply_scan(db, scan, key, matcher, at, lease=None, settings=settings)
        return time.process_time() - started

    def counts() -> tuple[int, ...]:
        with db.read() as session:
            changed = session.scalar(
                select(func.count()).select_from(SlotSnapshot).where(SlotSnapshot.changed_at > now)
            )
            totals = [
                session.scalar(select(func.count()).select_from(table))
                for table in (SlotSnapshot, DropEvent, Notification, Venue)
            ]
        return (changed or 0, *(t or 0 for t in totals))

    first = ingest(now)
    before = counts()
    unchanged = ingest(now + timedelta(seconds=30))
    after = counts()
    return {
        "slots_per_cycle": sum(len(s.slots) for s in scans),
        "first_cycle_cpu_s": round(first, 3),
        "unchanged_cycle_cpu_s": round(unchanged, 3),
        "unchanged_cycle_rows_written": after[0] - before[0] + sum(after[1:]) - sum(before[1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    result: dict[str, Any] = {"benchmark": "discovery", "cycle": cycle_figures(args.latency_ms)}
    sqlite = fresh_sqlite()
    result["ingest_sqlite"] = ingest_figures(sqlite) | {"target_cpu_s": 0.5}
    sqlite.dispose()
    if url := os.environ.get("RESYWATCH_BENCH_DATABASE_URL"):
        postgres = Database(url)
        upgrade(postgres)
        result["ingest_postgresql"] = ingest_figures(postgres)
        postgres.dispose()
    else:
        result["ingest_postgresql"] = None  # set RESYWATCH_BENCH_DATABASE_URL to measure
    print(json.dumps(result))


if __name__ == "__main__":
    main()
