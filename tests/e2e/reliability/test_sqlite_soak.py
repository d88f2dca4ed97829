"""Goal 2: one SQLite file shared by a supervisor and overlapping cron passes, for minutes.

`resywatch run-forever` runs every job on a 1 s cadence (discovery cycles of 1 s), while a
new cron pass starts every 0.75 s, `resywatch run due` and `resywatch run discovery` in
turn, each overlapping the ones still running. Meanwhile the test opens a sold-out slot in
the sandbox about every 0.8 s. Afterwards every opened slot must be exactly one drop event
(0 lost, 0 doubled) with exactly one delivered notification; no process may have printed
"database is locked" or a traceback; every cron pass exits 0 with its passes ok or skipped;
and no bucket was scanned more than once a cycle.

SQLite only (PostgreSQL does not lock the database file). 30 s by default; 5 minutes under
`make reliability`. Every wait has a deadline.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sandbox_tools import control, live_config
from sqlmodel import col, select

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket, DropEvent, Notification
from resywatch.sandbox import DEMO_API_KEY, SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import local_today, slot_id

SHORT_S, FULL_S = 20.0, 300.0
CYCLE_S = 1  # the discovery interval, and every other job's (retention's minimum is 60 s)
CRON_EVERY_S = 0.75  # a new cron pass this often, `run due` and `run discovery` in turn
CRON_AT_ONCE = 4  # at most this many cron passes alive at once (the host has few cores)
OPEN_EVERY_S = 0.8  # a sold-out slot opens this often
DAYS = 2  # buckets: today and tomorrow, 15:00 and 19:00
LOCKED = re.compile("database is locked", re.IGNORECASE)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()  # frozen at the real time, no cancellations: only our slots open


@dataclass(frozen=True)
class Opening:
    """A sold-out evening slot (no seating free at its time) that the test opens."""

    venue_id: int
    day: date
    time: str
    seating: str
    slot_id: str

    def open(self, sandbox: SandboxHandle) -> None:
        control(
            sandbox,
            "/slots",
            {
                "venue_id": self.venue_id,
                "day": self.day.isoformat(),
                "time": self.time,
                "seating": self.seating,
                "delta": 1,
            },
        )


def sold_out_slots(sandbox: SandboxHandle, day: date, settings: Settings) -> list[Opening]:
    """Slots between 18:00 and 20:00 (inside the 19:00 bucket only) where no seating has a
    table, each fitting a party of 2; one per venue in turn, so openings spread out."""
    world, now = sandbox.state.world, sandbox.state.clock.now()
    south, west, north, east = settings.discovery_bounding_box
    per_venue: list[list[Opening]] = []
    for venue in world.venues:
        inside = south <= venue.lat <= north and west <= venue.lng <= east
        if (
            not inside
            or not world.is_open_day(venue, day)
            or not world.is_released(venue, day, now)
        ):
            continue
        snapshot = world.snapshot(venue, day, now)
        by_minute: dict[int, list[int]] = {}
        for index, slot in enumerate(snapshot.slots):
            by_minute.setdefault(slot.minute, []).append(index)
        openings = []
        for minute, indexes in sorted(by_minute.items()):
            if not 18 * 60 <= minute <= 20 * 60 or any(snapshot.avail[i] for i in indexes):
                continue
            fitting = [
                snapshot.slots[i]
                for i in indexes
                if snapshot.slots[i].seating.min_size <= 2 <= snapshot.slots[i].seating.max_size
            ]
            if fitting:
                starts = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
                openings.append(
                    Opening(
                        venue.id,
                        day,
                        fitting[0].time,
                        fitting[0].seating.name,
                        slot_id(venue.id, starts),
                    )
                )
        if openings:
            per_venue.append(openings)
    return [
        row[i]
        for i in range(max(map(len, per_venue), default=0))
        for row in per_venue
        if i < len(row)
    ]


@dataclass
class Process:
    """A resywatch process whose output goes to files (no pipe can fill up)."""

    args: tuple[str, ...]
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(cls, args: tuple[str, ...], env: dict[str, str], logs: Path, name: str) -> Process:
        stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            popen = subprocess.Popen(
                [sys.executable, "-m", "resywatch", *args], env=env, stdout=out, stderr=err
            )
        return cls(args, popen, stdout, stderr)

    def output(self) -> tuple[str, str]:
        return self.stdout.read_text(), self.stderr.read_text()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Every process the test starts; any still running at the end is killed."""
    started: list[Process] = []
    yield started
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait(timeout=10)


def wait_until(done: Callable[[], bool], deadline: float, what: str) -> None:
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.timeout(FULL_S + 240)
def test_supervisor_and_overlapping_cron_passes_share_one_sqlite_file(
    sandbox: SandboxHandle,
    sqlite_template: Path,
    processes: list[Process],
    tmp_path: Path,
    cli: Any,
    figures: Any,
    full_run: bool,
) -> None:
    soak_s = FULL_S if full_run else SHORT_S
    path = tmp_path / "soak.db"
    shutil.copyfile(sqlite_template, path)
    logs = tmp_path / "logs"
    logs.mkdir()
    sink = tmp_path / "notifications.ndjson"
    env = dict(os.environ)  # RESYWATCH_* already scrubbed by the clean_environment fixture
    env.update(
        RESYWATCH_DATABASE_URL=f"sqlite:///{path}",
        RESYWATCH_RESY_BASE_URL=sandbox.base_url,
        RESYWATCH_RESY_API_KEY=DEMO_API_KEY,
        RESYWATCH_RESY_MAX_RPS="1000",
        RESYWATCH_DISCOVERY_DAYS=str(DAYS),
        RESYWATCH_DISCOVERY_INTERVAL_S=str(CYCLE_S),
        # Every bucket on the one interval: a bucket with a recent drop would otherwise be
        # due three times a cycle (hot buckets), and "one scan per bucket per cycle at most"
        # below is the bound that catches two processes scanning one bucket at once.
        RESYWATCH_DISCOVERY_HOT_FACTOR="1",
        RESYWATCH_JOBS_WATCHES_INTERVAL_S=str(CYCLE_S),
        RESYWATCH_JOBS_NOTIFY_INTERVAL_S=str(CYCLE_S),
        RESYWATCH_JOBS_DELIVERY_INTERVAL_S=str(CYCLE_S),
        RESYWATCH_JOBS_SNIPES_INTERVAL_S=str(CYCLE_S),
        RESYWATCH_JOBS_RETENTION_INTERVAL_S="60",
        RESYWATCH_NOTIFY_URLS=f"ndjson://{sink}",
    )
    settings = load_settings(environ=env)
    db = Database(env["RESYWATCH_DATABASE_URL"])
    tomorrow = local_today(datetime.now(UTC), settings.timezone) + timedelta(days=1)
    # Some work for the watches job too (on other hours than the slots the test opens).
    venue = str(sandbox.state.world.venues[0].id)
    cli(
        "watch", "add", "venues", "--venue", venue, "--date", tomorrow.isoformat(), "--party", "2",
        "--window", "12:00-14:00", "--every", "1m", env=env,
    )  # fmt: skip
    # Searches take 100 ms: passes last long enough to overlap.
    control(sandbox, "/faults", {"route": "/3/venuesearch/search", "latency_ms": 100})
    candidates = sold_out_slots(sandbox, tomorrow, settings)
    wanted = math.ceil(soak_s / OPEN_EVERY_S)
    assert len(candidates) >= wanted, f"only {len(candidates)} sold-out slots to open"

    try:
        started = time.monotonic()
        supervisor = Process.start(("run-forever", "--json-logs"), env, logs, "run-forever")
        processes.append(supervisor)
        buckets = DAYS * len(settings.discovery_time_slots)

        def baselined() -> bool:
            with db.read() as session:
                rows = session.exec(select(DiscoveryBucket)).all()
            return len(rows) == buckets and all(b.baselined_at is not None for b in rows)

        # Slots opened before their bucket's baseline would be part of it, not drops.
        wait_until(baselined, started + 30, "every bucket's baseline")

        opened: list[Opening] = []
        crons: list[Process] = []
        commands = [("run", "due", "--json"), ("run", "discovery", "--json")]
        most_at_once = 0  # cron passes alive together (besides the supervisor)
        next_cron = next_open = time.monotonic()
        while time.monotonic() - started < soak_s:
            now = time.monotonic()
            if now >= next_cron:
                next_cron += CRON_EVERY_S
                alive = sum(p.popen.poll() is None for p in crons)
                if alive < CRON_AT_ONCE:
                    command = commands[len(crons) % 2]
                    crons.append(Process.start(command, env, logs, f"cron-{len(crons):04d}"))
                    processes.append(crons[-1])
                    most_at_once = max(most_at_once, alive + 1)
            if now >= next_open and len(opened) < len(candidates):
                next_open += OPEN_EVERY_S
                opening = candidates[len(opened)]
                opening.open(sandbox)
                opened.append(opening)
            time.sleep(max(0.0, min(next_cron, next_open) - time.monotonic()))

        # Let the last openings be scanned, recorded and delivered.
        opened_ids = {o.slot_id for o in opened}

        def settled() -> bool:
            with db.read() as session:
                seen = set(session.exec(select(DropEvent.slot_id)))
                pending = session.exec(
                    select(Notification.id).where(col(Notification.status) == "pending")
                ).first()
            return opened_ids <= seen and pending is None

        wait_until(settled, time.monotonic() + 30, "the last drops to be recorded and sent")
        for cron in crons:
            cron.popen.wait(timeout=60)
        supervisor.popen.send_signal(signal.SIGTERM)
        supervisor_code = supervisor.popen.wait(timeout=15)
        duration = time.monotonic() - started

        with db.read() as session:
            events = list(session.exec(select(DropEvent)))
            notes = list(session.exec(select(Notification).where(Notification.kind == "drop")))
    finally:
        db.dispose()

    # --- what each process said ---
    texts: list[str] = []
    supervisor_out, supervisor_err = supervisor.output()
    texts += [supervisor_out, supervisor_err]
    supervisor_passes = [
        json.loads(line) for line in supervisor_err.splitlines() if line.startswith("{")
    ]
    cron_codes: Counter[int] = Counter()
    cron_passes: list[dict[str, Any]] = []
    bad_crons: list[str] = []
    for cron in crons:
        out, err = cron.output()
        texts += [out, err]
        cron_codes[cron.popen.returncode] += 1
        try:
            cron_passes += json.loads(out)["passes"]  # stdout holds one document
            parsed = True
        except (ValueError, KeyError):
            parsed = False
        if cron.popen.returncode != 0 or not parsed:
            bad_crons.append(f"{' '.join(cron.args)} exited {cron.popen.returncode}: {err[-2000:]}")
    locked = sum(len(LOCKED.findall(text)) for text in texts)
    tracebacks = sum(text.count("Traceback") for text in texts)
    every_pass = supervisor_passes + cron_passes
    discovery = [p for p in every_pass if p["job"] == "discovery" and p["status"] == "ok"]
    bucket_scans = sum(p["counts"].get("buckets", 0) for p in discovery)
    per_slot = Counter(e.slot_id for e in events)
    delivered = (
        Counter(json.loads(line)["dedupe_key"] for line in sink.read_text().splitlines() if line)
        if sink.exists()
        else Counter()
    )
    figures.report(
        "2: SQLite, run-forever plus overlapping cron passes",
        duration_s=round(duration, 1),
        supervisor_passes=dict(Counter(p["status"] for p in supervisor_passes)),
        cron_processes=len(crons),
        cron_processes_at_once_max=most_at_once,
        cron_passes=dict(Counter(f"{p['job']}:{p['status']}" for p in cron_passes)),
        cron_exit_codes=dict(cron_codes),
        drops_expected=len(opened),
        drops_recorded=len(events),
        drops_reported_by_passes=sum(p["counts"].get("drops_opened", 0) for p in discovery),
        notifications_delivered=sum(delivered.values()),
        bucket_scans=bucket_scans,
        bucket_cycles=buckets * math.ceil(duration / CYCLE_S),  # the most scans there can be
        database_is_locked=locked,
        tracebacks=tracebacks,
    )

    assert locked == 0
    assert tracebacks == 0
    assert supervisor_code == 0, supervisor_err[-3000:]
    assert not bad_crons, "\n".join(bad_crons[:5])
    assert {p["status"] for p in cron_passes} <= {"ok", "skipped"}
    assert {p["status"] for p in supervisor_passes} <= {"ok", "skipped"}, [
        p for p in supervisor_passes if p["status"] not in ("ok", "skipped")
    ][:5]
    # Every opened slot is exactly one drop, and nothing else opened.
    assert per_slot == Counter({o.slot_id: 1 for o in opened})
    assert sum(p["counts"].get("drops_opened", 0) for p in discovery) == len(opened)
    # Each drop's notification was delivered once.
    assert {n.dedupe_key for n in notes} == {f"drop:{e.id}" for e in events}
    assert all(n.status == "sent" for n in notes)
    assert {k: v for k, v in delivered.items() if k.startswith("drop:")} == {
        n.dedupe_key: 1 for n in notes
    }
    # One scan per bucket per cycle at most, whoever made it.
    assert bucket_scans <= buckets * (math.ceil(duration / CYCLE_S) + 1)
