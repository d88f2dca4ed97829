"""Discovery figures, each beside a baseline measured in the same run.

1. Cycle wall time: a full pass over 28 buckets against the sandbox (its own process) with
   50 ms injected into every request, against the ideal (request waves x latency at the
   configured concurrency) and against a sequential scan. Target: <= 1.25 x ideal. Beside
   them, what the machine allows at that moment: the fetch floor (the same requests sent
   by a bare HTTP/1.1 client on 8 kept-alive connections, bodies read and dropped: no HTTP
   library, parsing or database) and the sandbox's own CPU time during the cycle.
   The ideal assumes a server that answers requests sent together in parallel, as Resy's
   many machines do; the sandbox is one process on the same 2 cores, so the cycle runs
   with its `fleet` latency model (each route's work hidden in the second half of the
   delay). The same cycle and floor with the `first` model (the whole delay, then the work,
   answers to a wave of 8 made one after another) are printed beside it.
2. Requests per full cycle.
3. Discovery CPU against the parse floor: the search pages of the steady cycle are kept,
   then read again the way discovery reads them (parse into the kept fields, merge into the
   bucket scans) and, as the floor, only parsed by msgspec's plain JSON decoder. Target:
   discovery CPU <= 1.5 x the floor. The client process's whole CPU time during the cycle
   (HTTP, event loop, database) is printed beside it, against the same floor.
4. CPU time to ingest one cycle of a dense city (300 venues x 8 slots x 28 buckets) into
   SQLite and PostgreSQL (RESYWATCH_BENCH_DATABASE_URL names an empty database; without it
   PostgreSQL is left out), for the first (baseline) cycle and an unchanged one. Target:
   <= 0.5 s, and an unchanged cycle writes nothing but the buckets' scan metadata.

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
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import httpx
import msgspec
from sandbox_process import free_port, start_sandbox
from sqlalchemy import func, select

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.migrate import upgrade
from resywatch.db.models import DropEvent, Notification, SlotSnapshot, Venue
from resywatch.resy import client as resy_client
from resywatch.resy.client import client_from_settings
from resywatch.resy.pages import WEB_ORIGIN
from resywatch.resy.search_page import parse_search_page
from resywatch.resy.transport import USER_AGENT
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY
from resywatch.services.curated import HotspotMatcher
from resywatch.services.discovery import buckets
from resywatch.services.discovery.apply import apply_scan, sync_window
from resywatch.services.discovery.buckets import Bucket
from resywatch.services.discovery.fetch import BucketScan, SeenSlot, merge_hits
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


@dataclass
class Page:
    body: bytes
    asked: dict[str, Any]  # the request's JSON, as sent
    number: int
    party: int
    bucket: Bucket  # the default window (2 h) takes one search per bucket, at its anchor


class PageRecorder:
    """Keeps every search body the client receives (a reference appended: no copy, no CPU
    worth counting) with what was asked, to read them again the way discovery does."""

    def __init__(self) -> None:
        self.pages: list[Page] = []
        self.on = False

    def __enter__(self) -> PageRecorder:
        self.original = original = resy_client.ResyClient._call

        async def recording(client: Any, method: str, path: str, **options: Any) -> bytes:
            body: bytes = await original(client, method, path, **options)
            if self.on and path == "/3/venuesearch/search":
                asked = options["json"]
                where = asked["slot_filter"]
                bucket = Bucket(
                    date.fromisoformat(where["day"]), dtime.fromisoformat(where["time_filter"])
                )
                page = Page(body, asked, asked["page"], where["party_size"], bucket)
                self.pages.append(page)
            return body

        resy_client.ResyClient._call = recording  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        resy_client.ResyClient._call = self.original  # type: ignore[method-assign]


def timed_pass(settings: Settings, db: Database) -> tuple[float, float, PassSummary]:
    """Wall time and this process's CPU time of one pass."""

    async def main() -> PassSummary:
        async with client_from_settings(settings) as resy:
            return await run_pass(Runtime(settings, db, resy), matcher=HotspotMatcher.default())

    started, cpu = time.perf_counter(), time.process_time()
    summary = asyncio.run(main())
    return time.perf_counter() - started, time.process_time() - cpu, summary


def parse_figures(pages: list[Page], settings: Settings, cycle_cpu_s: float) -> dict[str, Any]:
    """The recorded pages read as discovery reads them, against msgspec's plain parse of
    the same bytes (best of 3 each: the machine is shared)."""
    bodies = [page.body for page in pages]

    def floor() -> None:
        for body in bodies:
            msgspec.json.decode(body)

    def discovery() -> None:
        scans: dict[Bucket, BucketScan] = {}
        for page in pages:
            scan = scans.get(page.bucket) or scans.setdefault(page.bucket, BucketScan(page.bucket))
            hits = parse_search_page(page.body, page.number).hits
            merge_hits(scan, hits, page.party, settings.discovery_window_hours)

    def best(work: Any) -> float:
        times = []
        for _ in range(3):
            started = time.process_time()
            work()
            times.append(time.process_time() - started)
        return min(times)

    floor_s, discovery_s = best(floor), best(discovery)
    return {
        "pages": len(bodies),
        "mean_page_bytes": round(sum(map(len, bodies)) / max(1, len(bodies))),
        "parse_floor_cpu_s": round(floor_s, 4),
        "discovery_cpu_s": round(discovery_s, 4),
        "discovery_vs_floor": round(discovery_s / floor_s, 3),
        "target_vs_floor": 1.5,
        "met": discovery_s / floor_s <= 1.5,
        "cycle_process_cpu_s": round(cycle_cpu_s, 3),
        "cycle_process_cpu_vs_floor": round(cycle_cpu_s / floor_s, 3),
    }


def process_cpu_s(pid: int) -> float:
    """User + system CPU time of another process (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fetch_floor(port: int, pages: list[Page], concurrency: int) -> tuple[float, float]:
    """Wall and CPU time of sending the recorded requests again with a bare HTTP/1.1 client
    (asyncio streams, one kept-alive connection per request in flight), each body read and
    dropped: the cycle's floor on this machine with this sandbox, beside any client work."""
    headers = (
        f"Host: 127.0.0.1:{port}\r\nUser-Agent: {USER_AGENT}\r\nOrigin: {WEB_ORIGIN}\r\n"
        f'Authorization: ResyAPI api_key="{DEMO_API_KEY}"\r\nContent-Type: application/json\r\n'
    ).encode()
    queue = [json.dumps(page.asked).encode() for page in pages]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            body = queue.pop()
            writer.write(
                b"POST /3/venuesearch/search HTTP/1.1\r\n"
                + headers
                + b"Content-Length: %d\r\n\r\n" % len(body)
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
        writer.close()

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(concurrency)))

    started, cpu = time.perf_counter(), time.process_time()
    asyncio.run(main())
    return time.perf_counter() - started, time.process_time() - cpu


def set_latency(base_url: str, latency_ms: float, model: str) -> None:
    rule = {"route": "*", "latency_ms": latency_ms, "latency_model": model}
    httpx.post(f"{base_url}/__sandbox/faults", json=rule, timeout=5).raise_for_status()


def fresh_sqlite() -> Database:
    db = Database(f"sqlite:///{tempfile.mkdtemp(prefix='rw-bench-')}/bench.db")
    upgrade(db)
    return db


def cycle_figures(latency_ms: float) -> dict[str, Any]:
    port = free_port()
    sandbox = start_sandbox(port, speed=0)
    base_url = f"http://127.0.0.1:{port}"
    try:
        set_latency(base_url, latency_ms, "fleet")
        concurrent = settings_for(base_url, concurrency=8)
        db = fresh_sqlite()
        with PageRecorder() as recorder:
            baseline_s, _, first = timed_pass(concurrent, db)  # the baseline cycle
            recorder.on = True
            sandbox_cpu = process_cpu_s(sandbox.pid)
            steady_s, steady_cpu_s, steady = timed_pass(concurrent, db)
            sandbox_cpu_s = process_cpu_s(sandbox.pid) - sandbox_cpu
            recorder.on = False
        floor_s, floor_cpu_s = fetch_floor(port, recorder.pages, concurrent.discovery_concurrency)
        sequential_s, _, _ = timed_pass(settings_for(base_url, concurrency=1), fresh_sqlite())
        # The same cycle with the sandbox's work after the whole delay, one answer at a time.
        set_latency(base_url, latency_ms, "first")
        one_process_s, _, _ = timed_pass(concurrent, db)
        one_process_floor_s, _ = fetch_floor(port, recorder.pages, concurrent.discovery_concurrency)
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
        "cycle_client_cpu_s": round(steady_cpu_s, 3),
        "cycle_sandbox_cpu_s": round(sandbox_cpu_s, 3),
        "fetch_floor_s": round(floor_s, 3),
        "fetch_floor_client_cpu_s": round(floor_cpu_s, 3),
        "fetch_floor_vs_ideal": round(floor_s / ideal_s, 3),
        "cycle_vs_fetch_floor": round(steady_s / floor_s, 3),
        "sandbox_latency_model": "fleet",
        "one_process_sandbox": {
            "latency_model": "first",
            "cycle_s": round(one_process_s, 3),
            "cycle_vs_ideal": round(one_process_s / ideal_s, 3),
            "fetch_floor_s": round(one_process_floor_s, 3),
            "fetch_floor_vs_ideal": round(one_process_floor_s / ideal_s, 3),
        },
        "target_vs_ideal": 1.25,
        "met": steady_s / ideal_s <= 1.25,
        "errors": first.buckets_failed + steady.buckets_failed,
        "parse": parse_figures(recorder.pages, concurrent, steady_cpu_s),
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
        "target_cpu_s": 0.5,
        "met": unchanged <= 0.5 and after == before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    result: dict[str, Any] = {"benchmark": "discovery", "cycle": cycle_figures(args.latency_ms)}
    sqlite = fresh_sqlite()
    result["ingest_sqlite"] = ingest_figures(sqlite)
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
