"""Drop -> webhook latency: how soon a user hears of a table that just opened (issue 16).

`resywatch run-forever` runs in its own process with the default settings (discovery every
30 s, delivery woken by each commit, `resy.max_rps` 10) and one `json://` webhook channel,
pointed at a sandbox in a process of its own (real-time clock, background cancellations off),
on SQLite or on PostgreSQL (`--database-url`, or RESYWATCH_BENCH_DATABASE_URL: an empty
database). Two kinds of drop are measured side by side in one run:

- **Random drops.** Before discovery starts, evening slots for two at Manhattan venues, on
  days 1-10 ahead, are closed (every seating at that time), so no baseline holds them. Once
  the first cycle has baselined the window they are reopened one by one: each is a drop.
  The moments are stratified so that the median is precise enough to judge a 1.5 s margin.
  Each bucket's phase (when in the cycle its scan is applied) is read from the database
  after the first pass that follows the baseline (the baseline pass, writing every slot, is
  slower); drop i (of n, over k whole intervals) then opens (i + U)/n of an interval before
  its bucket's next scan (U uniform in [0, 1)), in cycle i mod k (shuffled). The waits for
  the next scan, uniform over the interval for a drop at a random moment, are so sampled
  one per n-th of the interval: their median is within interval/n of the true one (0.6 s
  at the default 48 drops), where the median of 8 independent moments has a standard
  deviation near interval/(2 sqrt 8) = 5.3 s. Stratifying the moment alone would not do: a
  bucket's scan comes anywhere in the first 20 s of a cycle. The figures also split the
  median delay into the wait for the scan that recorded the drop and the rest (commit,
  delivery woken by it, the webhook's POST).
  A drop the scan misses (it opened after its page was read) waits a cycle more, as it would
  at a random moment.
- **Learned releases.** `--releases` venues (quiet ones, in the area, whose next day is not
  released yet and falls inside the 14-day window) are given a release habit: ten past drops
  opened at the same local time, `lead` days ahead of their slot, so `discover patterns`
  is sure of it (confidence 1.0 >= discovery.release_confidence). The sandbox then releases
  that day at the predicted instant (`POST /__sandbox/release`, as a venue releasing its new
  day N days ahead at a fixed local time, RESY_API.md section 8). Habits are learned on a
  quarter-hour grid (venues release on the hour or quarter), so the instant is the first
  quarter hour at least PREP_S after the window is baselined, and the random phase is
  stretched (whole intervals) to cover the wait: a default run takes 4 to 19 minutes
  depending on the wall clock (`--releases 0`: about 4).

Latency = the webhook's arrival minus the reopening (random) or the release instant (the
first drop of the venue's new day). Reported beside the discovery interval, whose half is
what scanning alone costs on average, with what the run cost Resy: requests by route, the
discovery passes' duration and requests, and health's discovery-pace check.

Targets (issue 16): random drops p50 <= interval/2 + 1.5 s; learned releases p50 <= 2 s;
the passes keep their interval (no discovery-pace warning).

Prints one JSON object as its last line. Usage: python bench/latency.py [--drops 48]
[--intervals 4] [--releases 3] [--seed 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
from sandbox_process import free_port, start_sandbox
from sqlmodel import col, select

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket, DropEvent, JobRun
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN

PARTY = 2
EVENING = ("18:00", "20:00")  # inside the 19:00 anchor's window (+-2 h)
BASELINE_TIMEOUT_S = 180.0
TAIL_S = 60.0  # after the last drop, how long its webhook may take
WAITS: dict[tuple[int, str], float] = {}  # each drop's planned wait for its bucket's scan
REPLAN_S = 10.0  # a drop's moment is worked out again this long before it
PREP_S = 75.0  # from the baselined window to a release: the releases job looks 62 s ahead
HABIT_DAYS = 10  # past drops that teach a venue's habit (full confidence)
ZONE = "America/New_York"


@dataclass(frozen=True)
class Drop:
    venue_id: int
    day: date
    time: str  # HH:MM local
    seatings: tuple[str, ...]  # every seating at that time (all closed, one reopened)

    @property
    def starts_at(self) -> str:
        return f"{self.day.isoformat()}T{self.time}:00"


@dataclass(frozen=True)
class Release:
    venue_id: int
    name: str
    day: date  # the venue's next day, released at the bench's instant


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


def local_today(now: float | None = None) -> date:
    return datetime.fromtimestamp(now or time.time(), ZoneInfo(ZONE)).date()


def pick_drops(
    base_url: str, venues: list[dict[str, Any]], count: int, rng: random.Random
) -> list[Drop]:
    """Evening slots for two at Manhattan venues, on days inside the 14-day window, one per
    venue, each time with all its seatings open now (they are closed before discovery)."""
    drops: list[Drop] = []
    with httpx.Client(base_url=base_url, headers=headers(), timeout=10) as http:
        for venue in venues:
            if len(drops) >= count:
                break
            day = local_today() + timedelta(days=rng.randint(1, 10))
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


def pick_releases(
    base_url: str, venues: list[dict[str, Any]], count: int, settings: Settings
) -> list[Release]:
    """Quiet venues whose next day (lead days + 1 ahead) is not released yet, is open, and
    falls inside the discovery window with a day to spare."""
    found: list[Release] = []
    for venue in venues:
        if len(found) >= count:
            break
        if venue["popularity"] == "hot" or venue["time_zone"] != ZONE:
            continue  # a hot venue's tables go in seconds; the habit is learned in ZONE
        day = local_today() + timedelta(days=venue["lead_time_in_days"] + 1)
        if (day - local_today()).days > settings.discovery_days - 2:
            continue
        if day.weekday() in venue["closed_weekdays"]:
            continue
        described = httpx.get(
            f"{base_url}/__sandbox/release",
            params={"venue_id": venue["id"], "day": day.isoformat()},
            timeout=10,
        ).json()
        if not described["released"]:
            found.append(Release(venue["id"], venue["name"], day))
    if len(found) < count:
        raise SystemExit(f"only {len(found)} venues to release, {count} wanted")
    return found


def set_open(base_url: str, drop: Drop, seating: str, tables: int) -> None:
    """Set the free tables of one seating at the drop's time to `tables`."""
    body = {"venue_id": drop.venue_id, "day": drop.day.isoformat(), "time": drop.time,
            "seating": seating}  # fmt: skip
    url = f"{base_url}/__sandbox/slots"
    now_open = httpx.post(url, json=body | {"delta": 0}, timeout=5).json()["open"]
    httpx.post(url, json=body | {"delta": tables - now_open}, timeout=5).raise_for_status()


def teach_habits(db: Database, releases: list[Release], instant: datetime) -> None:
    """Ten past drops at each venue, each opened at `instant`'s local time on a past day,
    for a slot `lead` days after it: the habit `discover patterns` learns."""
    local = instant.astimezone(ZoneInfo(ZONE))
    with db.write() as session:
        for release in releases:
            lead = (release.day - local.date()).days
            for n in range(1, HABIT_DAYS + 1):
                opened = local - timedelta(days=n)
                day = opened.date() + timedelta(days=lead)
                session.add(
                    DropEvent(
                        slot_id=f"habit-{release.venue_id}-{n}", bucket_id=f"{day}_19:00",
                        venue_id=release.venue_id, venue_name=release.name,
                        starts_at=datetime.combine(day, datetime.min.time()) + timedelta(hours=19),
                        slot_date=day, opened_at=opened.astimezone(UTC),
                        closed_at=opened.astimezone(UTC) + timedelta(minutes=3),
                    )
                )  # fmt: skip


def next_quarter(after: float) -> datetime:
    """The first quarter hour (local) at or after `after`."""
    step = 15 * 60
    return datetime.fromtimestamp(math.ceil(after / step) * step, UTC)


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


def scan_phases(db: Database, interval: float) -> dict[str, float]:
    """Each bucket's phase in the cycle: when (seconds after a cycle starts) its last scan
    was applied. Buckets are scanned in turn, so the phases spread over a pass."""
    with db.read() as session:
        rows = session.exec(select(DiscoveryBucket)).all()
    return {r.id: aware(r.last_scan_at).timestamp() % interval for r in rows if r.last_scan_at}


def steady_phases(db: Database, interval: float) -> dict[str, float]:
    """The buckets' phases in a pass after the baseline (the baseline pass, which writes
    every slot, is slower: its phases would be off by seconds)."""
    baselined = time.time()
    while True:
        phases = scan_phases(db, interval)
        with db.read() as session:
            rows = session.exec(select(DiscoveryBucket)).all()
        if rows and all(
            r.last_scan_at and aware(r.last_scan_at).timestamp() > baselined for r in rows
        ):
            return phases
        time.sleep(1.0)


@dataclass(frozen=True)
class Planned:
    """A drop's moment: `wait` seconds before its bucket's scan in the cycle from `cycle`."""

    drop: Drop
    cycle: float  # epoch second a cycle starts
    wait: float
    at: float  # the moment by the phases known when planned

    def moment(self, phase: float, interval: float) -> float:
        return self.cycle + (phase - self.wait) % interval


def moments(
    drops: list[Drop], phases: dict[str, float], cycles: int, interval: float, rng: random.Random
) -> list[Planned]:
    """From the next cycle on, drop i opens (i + U)/n of an interval before its bucket's
    scan, in cycle i mod `cycles` (shuffled): the waits for the next scan are spread evenly
    over the interval, whatever each bucket's place in the pass (stratifying the moment
    alone would not do: a bucket's scan comes anywhere in the first 20 s of a cycle)."""
    count = len(drops)
    order = [i % cycles for i in range(count)]
    rng.shuffle(order)
    first = math.ceil(time.time() / interval + 0.5) * interval  # a cycle start ahead
    planned = []
    for i, drop in enumerate(drops):
        wait = (i + rng.random()) / count * interval
        cycle = first + order[i] * interval
        at = cycle + (phases.get(bucket_of(drop), 0.0) - wait) % interval
        planned.append(Planned(drop, cycle, wait, at))
    return sorted(planned, key=lambda p: p.at)


def bucket_of(drop: Drop) -> str:
    return f"{drop.day.isoformat()}_19:00"  # the evening is in the 19:00 anchor's window


def open_at(
    base_url: str,
    db: Database,
    plan: Planned,
    interval: float,
    opened: dict[tuple[int, str], float],
) -> None:
    """Reopen the drop's slot at its planned wait before its bucket's scan, by the bucket's
    phase read again REPLAN_S before (passes drift by seconds over a run: a phase read once
    at the start would skew every wait the same way)."""
    time.sleep(max(0.0, plan.at - REPLAN_S - time.time()))
    phase = scan_phases(db, interval).get(bucket_of(plan.drop))
    moment = plan.at
    if phase is not None:  # the same wait before the same scan (across a cycle's edge too)
        moved = plan.moment(phase, interval)
        moment = min((moved - interval, moved, moved + interval), key=lambda m: abs(m - plan.at))
    time.sleep(max(0.0, moment - time.time()))
    set_open(base_url, plan.drop, plan.drop.seatings[0], 1)
    opened[(plan.drop.venue_id, plan.drop.starts_at)] = time.time()
    WAITS[(plan.drop.venue_id, plan.drop.starts_at)] = plan.wait


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))], 2)


def figures(delays: list[float], expected: int) -> dict[str, Any]:
    return {
        "drops": expected,
        "heard": len(delays),
        "p50_s": round(statistics.median(delays), 2) if delays else None,
        "p95_s": percentile(delays, 0.95),
        "max_s": round(max(delays), 2) if delays else None,
        "mean_s": round(statistics.fmean(delays), 2) if delays else None,
        "delays_s": [round(d, 2) for d in sorted(delays)],
    }


def heard(opened: dict[tuple[int, str], float]) -> dict[tuple[int, str], float]:
    """Each reopened slot's delay to its first drop webhook."""
    found: dict[tuple[int, str], float] = {}
    for arrived, document in received():
        payload = document.get("payload") or {}
        key = (payload.get("venue_id"), payload.get("starts_at"))
        if document.get("kind") == "drop" and key in opened and key not in found:
            found[key] = arrived - opened[key]
    return found


def seen_and_sent(db: Database, opened: dict[tuple[int, str], float]) -> dict[str, float | None]:
    """Where a random drop's time went (medians): from the reopening to the scan that
    recorded it, and from that commit to the webhook."""
    with db.read() as session:
        events = session.exec(
            select(DropEvent).where(col(DropEvent.venue_id).in_({v for v, _ in opened}))
        ).all()
    recorded = {
        (e.venue_id, e.starts_at.strftime("%Y-%m-%dT%H:%M:%S")): aware(e.opened_at).timestamp()
        for e in events
    }
    arrived = {key: opened[key] + delay for key, delay in heard(opened).items()}
    seen = [recorded[k] - t for k, t in opened.items() if k in recorded]
    # How far each scan came from the planned wait: about a page's worth of a scan, or a
    # cycle more (missed), or less (a hot bucket's extra scan).
    off = [recorded[k] - t - WAITS[k] for k, t in opened.items() if k in recorded and k in WAITS]
    sent = [arrived[k] - recorded[k] for k in arrived if k in recorded]
    return {
        "to_scan_s": round(statistics.median(seen), 2) if seen else None,
        "planned_wait_s": round(statistics.median(WAITS.values()), 2) if WAITS else None,
        "scan_minus_plan_s": sorted(round(x, 1) for x in off),
        "scan_to_webhook_s": round(statistics.median(sent), 2) if sent else None,
        "scan_to_webhook_max_s": round(max(sent), 2) if sent else None,
    }


def heard_releases(releases: list[Release], instant: float) -> dict[int, float]:
    """Each released venue's delay from the instant to the first drop of its new day."""
    days = {r.venue_id: r.day.isoformat() for r in releases}
    found: dict[int, float] = {}
    for arrived, document in received():
        payload = document.get("payload") or {}
        venue = payload.get("venue_id")
        starts = str(payload.get("starts_at") or "")
        if document.get("kind") == "drop" and venue in days and starts.startswith(days[venue]):
            found.setdefault(venue, arrived - instant)
    return found


def received() -> list[tuple[float, dict[str, Any]]]:
    with Hook.lock:
        return sorted(Hook.received, key=lambda r: r[0])


def passes(db: Database, since: datetime) -> dict[str, Any]:
    """The discovery and releases passes of the measured span: what they took and asked."""
    with db.read() as session:
        runs = session.exec(
            select(JobRun)
            .where(col(JobRun.job_name).in_(["discovery", "releases"]))
            .where(col(JobRun.finished_at).is_not(None))
        ).all()
    runs = [r for r in runs if aware(r.started_at) >= since]
    scans = [r for r in runs if r.job_name == "discovery" and r.counts.get("buckets", 0) > 0]
    took = [(r.finished_at - r.started_at).total_seconds() for r in scans if r.finished_at]
    full = [r for r in scans if r.counts.get("buckets", 0) >= 20]
    watched = [r for r in runs if r.job_name == "releases" and r.counts.get("watched", 0)]
    return {
        "discovery_passes": len(scans),
        "full_passes": len(full),
        "full_pass_requests": sorted({r.counts.get("requests", 0) for r in full}),
        "full_pass_s_median": round(statistics.median(took_full(full)), 1) if full else None,
        "full_pass_s_max": round(max(took_full(full)), 1) if full else None,
        "any_pass_s_max": round(max(took), 1) if took else None,
        "hot_buckets_max": max((r.counts.get("hot", 0) for r in scans), default=0),
        "release_passes": [r.counts for r in watched],
    }


def took_full(runs: list[JobRun]) -> list[float]:
    return [(r.finished_at - r.started_at).total_seconds() for r in runs if r.finished_at]


def aware(moment: datetime) -> datetime:
    """SQLite keeps no zone: its timestamps are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def pace_check(env: dict[str, str]) -> dict[str, Any]:
    """Health's discovery-pace check (absent: the passes keep their interval)."""
    out = subprocess.run(
        [sys.executable, "-m", "resywatch", "health", "--json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        checks = json.loads(out.stdout).get("checks", [])
    except json.JSONDecodeError:
        return {"error": out.stderr[-300:]}
    pace = [c for c in checks if c.get("name") == "discovery-pace"]
    return {"warned": bool(pace), "message": pace[0].get("message") if pace else None}


def environment(workdir: str, base_url: str, hook_port: int, url: str | None) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")} | {
        "RESYWATCH_DATABASE_URL": url or f"sqlite:///{workdir}/latency.db",
        "RESYWATCH_RESY_BASE_URL": base_url,
        "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
        "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        "RESYWATCH_NOTIFY_URLS": f"json://127.0.0.1:{hook_port}/hook",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drops", type=int, default=48)
    parser.add_argument(
        "--intervals",
        type=int,
        default=4,
        help="discovery intervals (at least) the random drops spread over",
    )
    parser.add_argument(
        "--releases", type=int, default=3, help="venues with a learned release habit (0: none)"
    )
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("RESYWATCH_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    rng = random.Random(args.seed)

    sandbox_port, hook_port = free_port(), free_port()
    sandbox = start_sandbox(sandbox_port, speed=1)
    base_url = f"http://127.0.0.1:{sandbox_port}"
    hook = ThreadingHTTPServer(("127.0.0.1", hook_port), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    env = environment(
        tempfile.mkdtemp(prefix="rw-latency-"), base_url, hook_port, args.database_url
    )
    settings = load_settings(environ=env)
    interval = settings.discovery_interval_s
    supervisor: subprocess.Popen[bytes] | None = None
    db = Database(env["RESYWATCH_DATABASE_URL"])
    started = datetime.now(UTC)
    try:
        httpx.post(f"{base_url}/__sandbox/world", json={"cancellations": False}, timeout=5)
        venues = httpx.get(f"{base_url}/__sandbox/venues", timeout=10).json()["venues"]
        venues = [v for v in venues if v["in_manhattan_bbox"]]
        rng.shuffle(venues)
        releases = pick_releases(base_url, venues, args.releases, settings) if args.releases else []
        taken = {r.venue_id for r in releases}
        drops = pick_drops(base_url, [v for v in venues if v["id"] not in taken], args.drops, rng)
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
        measured_from = datetime.now(UTC)
        instant = next_quarter(time.time() + PREP_S) if releases else None
        if instant is not None:
            teach_habits(db, releases, instant)
            for release in releases:
                httpx.post(
                    f"{base_url}/__sandbox/release",
                    json={"venue_id": release.venue_id, "day": release.day.isoformat(),
                          "at": instant.timestamp()},
                    timeout=5,
                ).raise_for_status()  # fmt: skip
        cycles = args.intervals
        if instant is not None:  # the random drops cover the wait for the release
            cycles = max(cycles, math.ceil((instant.timestamp() - time.time()) / interval))
        opened: dict[tuple[int, str], float] = {}
        phases = steady_phases(db, interval)
        openers = [
            threading.Thread(target=open_at, args=(base_url, db, plan, interval, opened))
            for plan in moments(drops, phases, cycles, interval, rng)
        ]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
        deadline = max(time.time(), instant.timestamp() if instant else 0.0) + TAIL_S
        while time.time() < deadline and (
            len(heard(opened)) < len(opened)
            or (
                instant is not None
                and len(heard_releases(releases, instant.timestamp())) < len(releases)
            )
        ):
            time.sleep(0.5)
        spent = passes(db, measured_from)
        split = seen_and_sent(db, opened)
        counters = httpx.get(f"{base_url}/__sandbox/counters", timeout=10).json()
        if supervisor is not None:
            supervisor.terminate()
            supervisor.wait(timeout=30)
        pace = pace_check(env)
    finally:
        if supervisor is not None and supervisor.poll() is None:
            supervisor.terminate()
            supervisor.wait(timeout=30)
        sandbox.terminate()
        sandbox.wait(timeout=10)
        hook.shutdown()
    elapsed = (datetime.now(UTC) - started).total_seconds()
    delays = list(heard(opened).values())
    random_figures = figures(delays, len(opened)) | {"medians": split}
    target = round(interval / 2 + 1.5, 2)
    release_figures = (
        figures(list(heard_releases(releases, instant.timestamp()).values()), len(releases))
        if instant is not None
        else None
    )
    print(
        json.dumps(
            {
                "benchmark": "latency",
                "backend": db.backend,
                "discovery_interval_s": interval,
                "delivery_interval_s": settings.jobs_delivery_interval_s,
                "resy_max_rps": settings.resy_max_rps,
                "baseline_s": round(baseline_s, 1),
                "run_s": round(elapsed),
                "span_intervals": cycles,
                "random_drops": random_figures,
                "scanning_alone_mean_s": interval / 2,
                "target_random_p50_s": target,
                "release_instant": instant.isoformat() if instant else None,
                "learned_releases": release_figures,
                "target_release_p50_s": 2.0,
                "passes": spent,
                "requests_by_route": counters.get("counters"),
                "discovery_pace": pace,
                "target_met": {
                    "random": random_figures["p50_s"] is not None
                    and random_figures["p50_s"] <= target
                    and len(delays) == len(opened),
                    "releases": None
                    if release_figures is None
                    else release_figures["p50_s"] is not None
                    and release_figures["p50_s"] <= 2.0
                    and release_figures["heard"] == len(releases),
                    "pace": pace.get("warned") is False,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
