"""Soak: `resywatch run-forever` for a day and more of simulated time, on SQLite.

The sandbox runs in a process of its own with its background cancellations on (drops
happen), and `resywatch run-forever --clock-speed S --clock-origin O` runs every job on a
clock S times faster than real time from the same wall instant O as the sandbox's, so both
sides live the same simulated hours. Settings are the defaults except:
- RESYWATCH_RESY_MAX_RPS=10000: the client's rate limit is in real seconds, so at S times
  the speed the default 5 a second would hold a cycle's requests back S times over;
- discovery over one anchor and one party size (`--full` keeps 15:00,19:00 x 2,4): the 14
  days, the 30 s interval and the hot buckets stay, so a day is 2,880 cycles either way;
- every retention window at its minimum, 1 day (RESYWATCH_RETENTION_*_DAYS=1), the retention
  pass daily as by default: the first pass runs at the start, the second after 24 h plus up
  to 10 % jitter (the supervisor's), which deletes what is older than a day. That is why the
  default run is 27 h of simulated time: it includes that second, pruning, pass;
- RESYWATCH_NOTIFY_URLS: one json:// webhook, a local HTTP server in this process.

Sampled every --sample seconds of wall time: the resident set size of run-forever
(/proc/PID/status VmRSS), the SQLite file and its WAL. Figures, each beside its target:
- max RSS <= 120 MB;
- no growth over the last half: the largest RSS of the last quarter of simulated time is at
  most the largest of the second quarter + 2 MB (allocator noise), also shown as the slope of
  a least-squares line over the second half (MB per simulated hour);
- the database bounded by retention: the second retention pass ran and deleted rows, and
  after it no row older than the retention window (1 day) is left in the tables it prunes,
  so each of them holds at most window + retention interval x 1.1 of rows (50.4 h) whatever
  the run's length. The file's size (+ WAL) at the middle and end and rows per table at the
  middle and the end are reported; the tables retention does not prune must not grow with
  time (end <= middle x 1.5 + 100 rows: they follow the 14-day window and the world).

Also reported: the discovery cycles a pass actually scanned in (of hours x 120) and the
median real duration of a full pass, and run-forever's CPU seconds per simulated hour. At
160x a 30 s cycle is 0.19 s of real time: every job's pass must fit in its share of one core
for the run to be a day of all its cycles. On a 2-core box shared with other work it is not
(Dec 2026: 65 of 3,240 cycles scanned, a full pass 7.8 s; even at 20x only 62 of 120 an
hour, run-forever using 160 CPU-s a simulated hour). Soaking every cycle of 27 h at today's
discovery cost takes over an hour of one core: lower --speed (10: 2.7 h). --hours shortens
the run, but below 26.4 h the database figures stay unmet (no second retention pass).

Prints one JSON object as its last line. Usage:
    python bench/soak.py [--hours 27] [--speed 160] [--sample 2] [--full]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
from sandbox_process import free_port, start_sandbox

from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN

RSS_TARGET_MB = 120.0
CYCLE_S = 30  # the default discovery interval
GROWTH_TOLERANCE_MB = 2.0
RETENTION_DAYS = 1
# Tables retention prunes: the timestamp it judges each by, and which rows it may delete
# (open drops and undelivered messages stay whatever their age).
PRUNED = {
    "drop_event": ("closed_at", "closed_at IS NOT NULL"),
    "notification": ("created_at", "status IN ('sent', 'failed')"),
    "api_call_log": ("at", "1 = 1"),
    "job_run": ("started_at", "1 = 1"),
}
# Deleted with the rows of another table (ON DELETE CASCADE): at most one per channel (one).
FOLLOWS = {"notification_delivery": "notification"}


class Hook(BaseHTTPRequestHandler):
    """The json:// webhook: counts what it is sent."""

    received: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            type(self).received += 1
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def file_mb(path: Path) -> float:
    return path.stat().st_size / 2**20 if path.exists() else 0.0


def row_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name != "alembic_version" and not name.startswith("sqlite_")
        ]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def oldest(database: Path) -> dict[str, str | None]:
    """The oldest timestamp left in each table retention prunes."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        return {
            table: conn.execute(f"SELECT min({at}) FROM {table} WHERE {which}").fetchone()[0]
            for table, (at, which) in PRUNED.items()
        }


def environment(base_url: str, database: Path, hook_port: int, full: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")}
    env |= {
        "RESYWATCH_CONFIG": str(database.parent / "absent.toml"),
        "RESYWATCH_DATABASE_URL": f"sqlite:///{database}",
        "RESYWATCH_RESY_BASE_URL": base_url,
        "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
        "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
        "RESYWATCH_RESY_MAX_RPS": "10000",
        "RESYWATCH_NOTIFY_URLS": f"json://127.0.0.1:{hook_port}/hook",
    }
    if not full:
        env |= {"RESYWATCH_DISCOVERY_TIME_SLOTS": "19:00", "RESYWATCH_DISCOVERY_PARTY_SIZES": "2"}
    for table in ("DROP_EVENTS", "NOTIFICATIONS", "API_CALLS", "JOB_RUNS"):
        env[f"RESYWATCH_RETENTION_{table}_DAYS"] = str(RETENTION_DAYS)
    return env


class Passes:
    """What run-forever's JSON log lines say: passes per job and status, the simulated time
    of the last line, the retention passes' counts."""

    def __init__(self) -> None:
        self.by_job: dict[str, dict[str, int]] = {}
        self.retention: list[dict[str, Any]] = []
        self.last_at: datetime | None = None
        self.errors: dict[str, str] = {}
        self.cycles: set[int] = set()  # the discovery cycles (30 s each) a pass scanned in
        self.discovery_s: list[float] = []  # each full (not hot-only) pass's real duration
        self.lock = threading.Lock()

    def read(self, stream: Any) -> None:
        for line in stream:
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            with self.lock:
                self.last_at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
                job = self.by_job.setdefault(entry["job"], {})
                job[entry["status"]] = job.get(entry["status"], 0) + 1
                if entry["error"]:
                    self.errors.setdefault(entry["job"], entry["error"])
                counts = entry["counts"] or {}
                if entry["job"] == "discovery" and counts.get("buckets"):
                    self.cycles.add(int(self.last_at.timestamp() // CYCLE_S))
                    if counts["buckets"] > counts.get("hot", 0):
                        self.discovery_s.append(entry["duration_s"])
                if entry["job"] == "retention" and entry["status"] == "ok":
                    self.retention.append({"at": entry["at"], **entry["counts"]})


def slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points) or 1.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def max_in(samples: list[dict[str, float]], first: float, last: float, hours: float) -> float:
    return max(s["rss_mb"] for s in samples if first * hours <= s["hours"] <= last * hours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=27.0, help="simulated hours")
    parser.add_argument("--speed", type=float, default=160.0, help="simulated s per real s")
    parser.add_argument("--sample", type=float, default=2.0, help="real seconds between samples")
    parser.add_argument("--full", action="store_true", help="both anchors and party sizes")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="rw-soak-"))
    database = workdir / "soak.db"
    sandbox_port, hook_port = free_port(), free_port()
    sandbox = start_sandbox(sandbox_port, speed=args.speed)
    base_url = f"http://127.0.0.1:{sandbox_port}"
    hook = ThreadingHTTPServer(("127.0.0.1", hook_port), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    env = environment(base_url, database, hook_port, args.full)
    passes = Passes()
    samples: list[dict[str, float]] = []
    checkpoints: dict[str, dict[str, int]] = {}
    process: subprocess.Popen[str] | None = None
    started = time.monotonic()
    try:
        httpx.post(f"{base_url}/__sandbox/world", json={"cancellations": True}, timeout=5)
        subprocess.run(
            [sys.executable, "-m", "resywatch", "admin", "migrate"], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        # One origin for both clocks: at the wall instant `origin` each read the wall time.
        origin = time.time()
        httpx.post(
            f"{base_url}/__sandbox/time", json={"set": origin, "speed": args.speed}, timeout=5
        ).raise_for_status()
        at = datetime.fromtimestamp(origin, UTC).isoformat()
        process = subprocess.Popen(
            [sys.executable, "-m", "resywatch", "run-forever", "--json-logs",
             "--clock-speed", str(args.speed), "--clock-origin", at],
            env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        reader = threading.Thread(target=passes.read, args=(process.stderr,), daemon=True)
        reader.start()
        simulated = lambda: (time.time() - origin) * args.speed / 3600  # noqa: E731
        while simulated() < args.hours and process.poll() is None:
            time.sleep(args.sample)
            hours = simulated()
            samples.append(
                {
                    "hours": round(hours, 3),
                    "rss_mb": round(rss_mb(process.pid), 1),
                    "db_mb": round(file_mb(database), 2),
                    "wal_mb": round(file_mb(workdir / "soak.db-wal"), 2),
                }
            )
            if "middle" not in checkpoints and hours >= args.hours / 2:
                checkpoints["middle"] = row_counts(database)
        cpu_s = cpu_seconds(process.pid)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        sandbox.terminate()
        sandbox.wait(timeout=10)
        hook.shutdown()
    wall_s = time.monotonic() - started
    figures = report(args, passes, samples, checkpoints, database, code, wall_s)
    figures["run_forever_cpu_s"] = round(cpu_s, 1)
    figures["cpu_s_per_simulated_hour"] = round(cpu_s / args.hours, 1)
    print(json.dumps(figures))


def report(
    args: argparse.Namespace,
    passes: Passes,
    samples: list[dict[str, float]],
    checkpoints: dict[str, dict[str, int]],
    database: Path,
    exit_code: int,
    wall_s: float,
) -> dict[str, Any]:
    hours = args.hours
    end_rows = row_counts(database)
    middle_rows = checkpoints.get("middle", {})
    middle = min(samples, key=lambda s: abs(s["hours"] - hours / 2))
    end = samples[-1]
    second_half = [(s["hours"], s["rss_mb"]) for s in samples if s["hours"] >= hours / 2]
    second_quarter_max = max_in(samples, 0.25, 0.5, hours)
    last_quarter_max = max_in(samples, 0.75, 1.0, hours)
    max_rss = max(s["rss_mb"] for s in samples)
    # The last pruning retention pass: after it no row older than the window may be left.
    pruning = [p for p in passes.retention if sum(v for k, v in p.items() if k != "at")]
    left = oldest(database)
    bounded_tables = {}
    if pruning:
        last = datetime.fromisoformat(pruning[-1]["at"].replace("Z", "+00:00"))
        cutoff = last - timedelta(days=RETENTION_DAYS, minutes=30)  # the pass's own length
        for table, at in left.items():
            when = datetime.fromisoformat(at).replace(tzinfo=UTC) if at else None
            bounded_tables[table] = when is None or when >= cutoff
    growing = {
        t: {"middle": middle_rows.get(t, 0), "end": n}
        for t, n in end_rows.items()
        if t not in PRUNED and t not in FOLLOWS and n > middle_rows.get(t, 0) * 1.5 + 100
    }
    growing |= {
        t: {"end": end_rows.get(t, 0), "of": end_rows.get(owner, 0)}
        for t, owner in FOLLOWS.items()
        if end_rows.get(t, 0) > end_rows.get(owner, 0)
    }
    discovery = passes.by_job.get("discovery", {})
    return {
        "benchmark": "soak",
        "simulated_hours": hours,
        "speed": args.speed,
        "wall_s": round(wall_s, 1),
        "exit_code": exit_code,
        "discovery_cycles": int(hours * 3600 / CYCLE_S),
        "discovery_cycles_scanned": len(passes.cycles),
        "discovery_full_pass_median_s": round(statistics.median(passes.discovery_s), 2)
        if passes.discovery_s
        else None,
        "passes": passes.by_job,
        "discovery_ok_passes": discovery.get("ok", 0),
        "first_errors": passes.errors,
        "webhook_deliveries": Hook.received,
        "retention_passes": passes.retention,
        "rss": {
            "max_mb": max_rss,
            "target_max_mb": RSS_TARGET_MB,
            "middle_mb": middle["rss_mb"],
            "end_mb": end["rss_mb"],
            "second_quarter_max_mb": second_quarter_max,
            "last_quarter_max_mb": last_quarter_max,
            "growth_tolerance_mb": GROWTH_TOLERANCE_MB,
            "second_half_slope_mb_per_h": round(slope(second_half), 3),
            "met": max_rss <= RSS_TARGET_MB
            and last_quarter_max <= second_quarter_max + GROWTH_TOLERANCE_MB,
        },
        "database": {
            "middle_mb": round(middle["db_mb"] + middle["wal_mb"], 2),
            "end_mb": round(end["db_mb"] + end["wal_mb"], 2),
            "max_wal_mb": max(s["wal_mb"] for s in samples),
            "rows_middle": middle_rows,
            "rows_end": end_rows,
            "oldest_left": left,
            "pruned_within_window": bounded_tables,
            "unpruned_tables_growing": growing,
            "met": bool(pruning) and all(bounded_tables.values()) and not growing,
        },
        "samples": samples[:: max(1, len(samples) // 40)],
    }


if __name__ == "__main__":
    main()
