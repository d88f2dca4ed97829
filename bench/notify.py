"""Notification delivery figures, each beside its target.

1. Throughput: notifications delivered per second by one relay (`deliver`, one process,
   batches of 50) to a JSON webhook sink on 127.0.0.1 running in its own process. Every send
   is recorded in its own transaction (that is what bounds a crash's duplicates to one).
   Target: >= 200/s. On SQLite, and on PostgreSQL too when RESYWATCH_BENCH_DATABASE_URL names
   a database (it is migrated; the notification tables are emptied first).
2. Delay from event commit to delivery with a relay running `run_loop` (what
   `notify deliver --loop` runs) in its own process at its default 1 s poll interval, while
   this process commits notifications one by one at random moments. Target: p50 <= 1 s.

Prints one JSON object as its last line. Usage: python bench/notify.py [--count 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete

from resywatch.db.engine import Database
from resywatch.db.migrate import upgrade
from resywatch.db.models import Notification, NotificationDelivery
from resywatch.services.channels.registry import build_channels
from resywatch.services.delivery.relay import deliver, run_loop

THROUGHPUT_TARGET_PER_S = 200
LATENCY_TARGET_P50_S = 1.0


# --- the sink, in its own process ----------------------------------------------------------


def serve_sink(port: int) -> None:
    """POST: 200 and note (dedupe_key, arrival time); GET /stats: what arrived."""
    arrivals: dict[str, list[float]] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            arrived = time.time()
            key = json.loads(body)["dedupe_key"]
            with lock:
                arrivals.setdefault(key, []).append(arrived)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with lock:
                data = json.dumps(arrivals).encode()
                if self.path == "/reset":
                    arrivals.clear()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--sink", str(port)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1).raise_for_status()
            return process, port
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the sink did not start")


def arrivals(port: int, *, reset: bool = False) -> dict[str, list[float]]:
    path = "/reset" if reset else "/stats"
    result: dict[str, list[float]] = httpx.get(f"http://127.0.0.1:{port}{path}").json()
    return result


# --- figures -------------------------------------------------------------------------------


def empty(db: Database) -> None:
    with db.write() as session:
        session.exec(delete(NotificationDelivery))
        session.exec(delete(Notification))


def add(db: Database, keys: list[str]) -> None:
    now = datetime.now(UTC)
    with db.write() as session:
        for key in keys:
            session.add(
                Notification(
                    dedupe_key=key,
                    kind="drop",
                    title="Carbone: a table just opened",
                    body="Carbone in Greenwich Village: Fri Dec 4 at 7:30 PM, party of 2.",
                    url="https://resy.com/cities/ny/carbone?date=2026-12-04&seats=2",
                    payload={"drop_event_id": key},
                    created_at=now,
                    next_attempt_at=now,
                )
            )


def throughput(db: Database, port: int, count: int) -> dict[str, Any]:
    empty(db)
    arrivals(port, reset=True)
    add(db, [f"bench:{i}" for i in range(count)])
    channels = build_channels([f"json://127.0.0.1:{port}/hook"])
    try:
        report = deliver(db, channels.items)
    finally:
        channels.close()
    seen = arrivals(port)
    rate = report.sent / report.duration_s
    return {
        "notifications": count,
        "sent": report.sent,
        "received_once": sum(len(times) == 1 for times in seen.values()),
        "seconds": round(report.duration_s, 3),
        "per_s": round(rate, 1),
        "target_per_s": THROUGHPUT_TARGET_PER_S,
        "ok": rate >= THROUGHPUT_TARGET_PER_S and report.sent == count,
    }


def relay_process(url: str, port: int, interval: float, seconds: float) -> None:
    """The relay of the latency figure: run_loop, as `notify deliver --loop` runs it."""
    db = Database(url)
    channels = build_channels([f"json://127.0.0.1:{port}/hook"])
    try:
        report = run_loop(db, channels.items, interval_s=interval, duration_s=seconds)
    finally:
        channels.close()
        db.dispose()
    sys.stdout.write(json.dumps({"sent": report.sent}) + "\n")


def latency(db: Database, url: str, port: int, events: int, interval: float) -> dict[str, Any]:
    empty(db)
    arrivals(port, reset=True)
    rng = random.Random(7)
    spacing = [rng.uniform(0.05, 0.45) for _ in range(events)]
    seconds = sum(spacing) + 3 * interval + 2
    relay = subprocess.Popen(
        [sys.executable, __file__, "--relay", url, str(port), str(interval), str(seconds)],
        stdout=subprocess.PIPE,
    )
    time.sleep(1.5)  # let the relay import and start polling
    committed: dict[str, float] = {}
    for i, pause in enumerate(spacing):
        time.sleep(pause)
        key = f"event:{i}"
        add(db, [key])
        committed[key] = time.time()  # right after COMMIT returned
    out, _ = relay.communicate(timeout=seconds + 30)
    seen = arrivals(port)
    delays = sorted(seen[key][0] - at for key, at in committed.items() if key in seen)
    p50 = statistics.median(delays) if delays else float("inf")
    return {
        "events": events,
        "delivered": len(delays),
        "relay_sent": json.loads(out.decode().strip().splitlines()[-1])["sent"],
        "poll_interval_s": interval,
        "p50_s": round(p50, 3),
        "p95_s": round(delays[int(0.95 * (len(delays) - 1))], 3) if delays else None,
        "max_s": round(delays[-1], 3) if delays else None,
        "target_p50_s": LATENCY_TARGET_P50_S,
        "ok": p50 <= LATENCY_TARGET_P50_S and len(delays) == events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="notifications for throughput")
    parser.add_argument("--events", type=int, default=30, help="events for the delay figure")
    parser.add_argument("--interval", type=float, default=1.0, help="the relay's poll interval")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--relay", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        serve_sink(args.sink)
        return
    if args.relay:
        url, port, interval, seconds = args.relay
        relay_process(url, int(port), float(interval), float(seconds))
        return

    sink, port = start_sink()
    result: dict[str, Any] = {"benchmark": "notify"}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            url = f"sqlite:///{Path(scratch) / 'bench.db'}"
            sqlite = Database(url)
            upgrade(sqlite)
            result["throughput_sqlite"] = throughput(sqlite, port, args.count)
            print(f"throughput sqlite: {result['throughput_sqlite']}", file=sys.stderr)
            result["delay_sqlite"] = latency(sqlite, url, port, args.events, args.interval)
            print(f"delay sqlite: {result['delay_sqlite']}", file=sys.stderr)
            sqlite.dispose()
        if pg_url := os.environ.get("RESYWATCH_BENCH_DATABASE_URL"):
            postgres = Database(pg_url)
            upgrade(postgres)
            result["throughput_postgresql"] = throughput(postgres, port, args.count)
            result["delay_postgresql"] = latency(postgres, pg_url, port, args.events, args.interval)
            empty(postgres)
            postgres.dispose()
        else:
            result["throughput_postgresql"] = None  # set RESYWATCH_BENCH_DATABASE_URL
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
