"""Drop -> webhook latency: how soon a user hears of a table that just opened.

`resywatch run-forever` runs in its own process on SQLite with the default settings (discovery
every 30 s, delivery every 10 s) and one `json://` webhook channel, pointed at a sandbox in a
process of its own (real-time clock, background cancellations off). Before it starts, a few
evening slots at Manhattan venues are closed (every seating at that time), so they are not in
any bucket's baseline. Once the first cycle has baselined the window, the slots are reopened
one by one at random moments: each is a drop. Latency = the webhook's arrival time minus the
reopening. Reported beside the discovery interval, whose half is what scanning alone costs on
average (a drop waits for the next pass).

Targets (issue 16), not met yet: random drops p50 <= interval/2 + 1.5 s.

Prints one JSON object as its last line. Usage: python bench/latency.py [--drops 8]
[--span 150] [--seed 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
from sandbox_process import free_port, start_sandbox

from resywatch.config import load_settings
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN

PARTY = 2
EVENING = ("18:00", "20:00")  # inside the 19:00 anchor's window (+-2 h)
BASELINE_TIMEOUT_S = 120.0
TAIL_S = 60.0  # after the last drop, how long its webhook may take


@dataclass(frozen=True)
class Drop:
    venue_id: int
    day: date
    time: str  # HH:MM local
    seatings: tuple[str, ...]  # every seating at that time (all closed, one reopened)

    @property
    def starts_at(self) -> str:
        return f"{self.day.isoformat()}T{self.time}:00"


class Hook(BaseHTTPRequestHandler):
    """The webhook: records each drop document with its arrival time."""

    received: ClassVar[list[tuple[float, dict[str, Any]]]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        arrived = time.time()
        with self.lock:
            self.received.append((arrived, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def headers() -> dict[str, str]:
    return {
        "Authorization": f'ResyAPI api_key="{DEMO_API_KEY}"',
        "X-Resy-Auth-Token": DEMO_AUTH_TOKEN,
        "User-Agent": "Mozilla/5.0",
    }


def pick_drops(base_url: str, count: int, rng: random.Random) -> list[Drop]:
    """Evening slots for two at Manhattan venues, on days inside the 14-day window, one per
    venue, each time with all its seatings open now (they are closed before discovery)."""
    venues = httpx.get(f"{base_url}/__sandbox/venues", timeout=10).json()["venues"]
    venues = [v for v in venues if v["in_manhattan_bbox"]]
    rng.shuffle(venues)
    drops: list[Drop] = []
    with httpx.Client(base_url=base_url, headers=headers(), timeout=10) as http:
        for venue in venues:
            if len(drops) >= count:
                break
            today = datetime.now(ZoneInfo(venue["time_zone"])).date()
            day = today + timedelta(days=rng.randint(1, 10))
            found = http.get(
                "/4/find",
                params={"venue_id": venue["id"], "day": day.isoformat(), "party_size": PARTY,
                        "lat": 0, "long": 0},
            ).json()  # fmt: skip
            slots = [s for v in found["results"]["venues"] for s in v.get("slots", [])]
            by_time: dict[str, set[str]] = {}
            for slot in slots:
                start = slot["date"]["start"]
                if start.startswith(day.isoformat()) and EVENING[0] <= start[11:16] <= EVENING[1]:
                    by_time.setdefault(start[11:16], set()).add(slot["config"]["type"])
            if by_time:
                at = rng.choice(sorted(by_time))
                drops.append(Drop(venue["id"], day, at, tuple(sorted(by_time[at]))))
    if len(drops) < count:
        raise SystemExit(f"only {len(drops)} slots to drop, {count} wanted")
    return drops


def set_open(base_url: str, drop: Drop, seating: str, tables: int) -> None:
    """Set the free tables of one seating at the drop's time to `tables`."""
    body = {"venue_id": drop.venue_id, "day": drop.day.isoformat(), "time": drop.time,
            "seating": seating}  # fmt: skip
    url = f"{base_url}/__sandbox/slots"
    now_open = httpx.post(url, json=body | {"delta": 0}, timeout=5).json()["open"]
    httpx.post(url, json=body | {"delta": tables - now_open}, timeout=5).raise_for_status()


def wait_for_baseline(env: dict[str, str], expected: int) -> float:
    """Seconds until every bucket of the window has a baseline (the first cycle is done)."""
    started = time.monotonic()
    while time.monotonic() - started < BASELINE_TIMEOUT_S:
        listed = subprocess.run(
            [sys.executable, "-m", "resywatch", "discover", "buckets", "--json"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if listed.returncode == 0:
            buckets = json.loads(listed.stdout)["buckets"]
            if len(buckets) >= expected and all(b["baselined"] for b in buckets):
                return time.monotonic() - started
        time.sleep(1.0)
    raise SystemExit("discovery did not baseline the window in time")


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drops", type=int, default=8)
    parser.add_argument("--span", type=float, default=150.0, help="seconds the drops spread over")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    sandbox_port, hook_port = free_port(), free_port()
    sandbox = start_sandbox(sandbox_port, speed=1)
    base_url = f"http://127.0.0.1:{sandbox_port}"
    hook = ThreadingHTTPServer(("127.0.0.1", hook_port), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    workdir = tempfile.mkdtemp(prefix="rw-latency-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")} | {
        "RESYWATCH_DATABASE_URL": f"sqlite:///{workdir}/latency.db",
        "RESYWATCH_RESY_BASE_URL": base_url,
        "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
        "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        "RESYWATCH_NOTIFY_URLS": f"json://127.0.0.1:{hook_port}/hook",
    }
    settings = load_settings(environ=env)
    supervisor: subprocess.Popen[bytes] | None = None
    try:
        httpx.post(f"{base_url}/__sandbox/world", json={"cancellations": False}, timeout=5)
        drops = pick_drops(base_url, args.drops, rng)
        for drop in drops:
            for seating in drop.seatings:
                set_open(base_url, drop, seating, 0)
        subprocess.run(
            [sys.executable, "-m", "resywatch", "admin", "migrate"], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "resywatch", "run-forever"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        expected = settings.discovery_days * len(set(settings.discovery_time_slots))
        baseline_s = wait_for_baseline(env, expected)
        moments = sorted(rng.uniform(0, args.span) for _ in drops)
        start = time.time()
        opened: dict[tuple[int, str], float] = {}
        for drop, moment in zip(drops, moments, strict=True):
            time.sleep(max(0.0, start + moment - time.time()))
            set_open(base_url, drop, drop.seatings[0], 1)
            opened[(drop.venue_id, drop.starts_at)] = time.time()
        deadline = time.time() + TAIL_S
        while time.time() < deadline and len(heard(opened)) < len(opened):
            time.sleep(0.5)
    finally:
        if supervisor is not None:
            supervisor.terminate()
            supervisor.wait(timeout=30)
        sandbox.terminate()
        sandbox.wait(timeout=10)
        hook.shutdown()

    delays = sorted(heard(opened).values())
    interval = settings.discovery_interval_s
    p50 = percentile(delays, 0.5)
    target = round(interval / 2 + 1.5, 2)
    print(
        json.dumps(
            {
                "benchmark": "latency",
                "drops": len(opened),
                "heard": len(delays),
                "discovery_interval_s": interval,
                "delivery_interval_s": settings.jobs_delivery_interval_s,
                "baseline_s": round(baseline_s, 1),
                "random_drops": {
                    "p50_s": p50,
                    "p95_s": percentile(delays, 0.95),
                    "max_s": round(max(delays), 2) if delays else None,
                    "mean_s": round(statistics.fmean(delays), 2) if delays else None,
                    "delays_s": [round(d, 2) for d in delays],
                },
                "scanning_alone_mean_s": interval / 2,
                "target_p50_s": target,
                "target_met": p50 is not None and p50 <= target and len(delays) == len(opened),
            }
        )
    )


def heard(opened: dict[tuple[int, str], float]) -> dict[tuple[int, str], float]:
    """Each reopened slot's delay to its first drop webhook."""
    found: dict[tuple[int, str], float] = {}
    with Hook.lock:
        received = list(Hook.received)
    for arrived, document in received:
        payload = document.get("payload") or {}
        key = (payload.get("venue_id"), payload.get("starts_at"))
        if document.get("kind") == "drop" and key in opened and key not in found:
            found[key] = arrived - opened[key]
    return found


if __name__ == "__main__":
    main()
