"""Discovery scale-out: buckets scanned per minute by 1, 2 and 3 workers sharing one database.

Each worker is a `resywatch run-forever --job discovery` process; they share the window's
buckets through the leases in discovery_bucket (FOR UPDATE SKIP LOCKED on PostgreSQL), so
each added worker should add its throughput. Target: >= 2.7x the 1-worker figure at 3
workers, measured in the same run, against the same sandbox, with the same settings.

The run is latency-bound, not CPU-bound (the machine may have 2 cores, and parsing a search
page costs milliseconds): the sandbox (its own process, frozen clock) answers every search
after --latency-ms; the area is a few blocks of Midtown (about ten venues: small pages);
one party size; --concurrency buckets in flight per worker. One sweep of the window (--days
x --time-slots buckets) takes far longer than a cycle (--interval-s), so a worker never runs
out of due buckets and only waits for the next cycle start between its passes: the figure is
bounded by the workers, not by the cycle. RESYWATCH_RESY_MAX_RPS and RESYWATCH_RESY_BURST
are set far above the bench's rate (about 25 requests/s at 3 workers): the request budget is
shared by every worker through the database and must never be what limits the figure.

For each worker count: a fresh PostgreSQL database (`resywatch admin migrate`), N workers,
a warm-up until every bucket has its baseline (its first scan, the costly one), then
--window-s of measurement, then SIGTERM. A scan counts when its result is applied:
discovery_bucket is polled every 50 ms and each new (bucket, last_scan_at) is one applied
scan (only a successful scan sets it, in the transaction that settles its lease). The
sandbox's search counter and the buckets' lease epochs (one per claim) cross-check it.

Scans are not all equal: a bucket scanned again less than half a sweep after its previous
scan (a "quick rescan") repeats another worker's work instead of sharing the window, so
buckets/min would grow with the workers while no bucket is fresher. Hence a second figure,
useful buckets/min (scans that are not quick rescans), and the mean age of the buckets'
last scans (about half a sweep when the window is shared evenly). `met` needs both ratios
>= the target, and no double scan (a bucket applied twice with the same cycle number).
CPU (cores busy) is sampled from /proc: workers, sandbox, PostgreSQL backends, machine.

Needs PostgreSQL: RESYWATCH_BENCH_DATABASE_URL or RESYWATCH_TEST_DATABASE_URL names a server
(and a database to connect to) whose role may CREATE DATABASE; throw-away databases are
created beside it and dropped. About 3 minutes. Prints one JSON object as its last line.
Usage: python bench/scaleout.py [--workers 1,2,3] [--window-s 20] [--latency-ms 250]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sandbox_process import free_port, start_sandbox
from sqlalchemy import create_engine, make_url, text

from resywatch.sandbox import DEMO_API_KEY

SEARCH = "/3/venuesearch/search"
TICK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.05


def server_url() -> str:
    url = os.environ.get("RESYWATCH_BENCH_DATABASE_URL") or os.environ.get(
        "RESYWATCH_TEST_DATABASE_URL"
    )
    if not url or not url.startswith(("postgresql", "postgres")):
        raise SystemExit(
            "scaleout needs PostgreSQL: set RESYWATCH_BENCH_DATABASE_URL (or "
            "RESYWATCH_TEST_DATABASE_URL) to postgresql+psycopg://USER:PW@HOST:PORT/DB, a role "
            "that may CREATE DATABASE"
        )
    return url


class Databases:
    """Throw-away databases on the server (like tests/conftest.py's PostgresDatabases)."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url).set(drivername="postgresql+psycopg")
        self.prefix = f"rw_bench_scaleout_{os.getpid()}"

    def _admin(self) -> psycopg.Connection[Any]:
        conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(conninfo, autocommit=True)

    def create(self, suffix: str) -> str:
        name = f"{self.prefix}_{suffix}"
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        for attempt in range(20):  # an autovacuum worker may hold on for a moment
            try:
                with self._admin() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except psycopg.errors.InsufficientPrivilege:
                if attempt == 19:
                    raise
                time.sleep(0.25)


def environment(args: argparse.Namespace, base_url: str, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")}
    env.update(
        RESYWATCH_CONFIG=os.devnull,  # no user config file may change the settings
        RESYWATCH_DATABASE_URL=database_url,
        RESYWATCH_RESY_BASE_URL=base_url,
        RESYWATCH_RESY_API_KEY=DEMO_API_KEY,
        RESYWATCH_RESY_MAX_RPS="10000",
        RESYWATCH_RESY_BURST="1000",
        RESYWATCH_DISCOVERY_DAYS=str(args.days),
        RESYWATCH_DISCOVERY_TIME_SLOTS=args.time_slots,
        RESYWATCH_DISCOVERY_PARTY_SIZES="2",
        RESYWATCH_DISCOVERY_BOUNDING_BOX=args.box,
        RESYWATCH_DISCOVERY_PAGE_SIZE=str(args.page_size),
        RESYWATCH_DISCOVERY_CONCURRENCY=str(args.concurrency),
        RESYWATCH_DISCOVERY_INTERVAL_S=str(args.interval_s),
    )
    return env


def cpu_ticks(pid: int) -> int:
    """User + system time of a process so far, in clock ticks (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU of the machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(values[:8])
    return total - values[3] - values[4], total


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Observed:
    """What polling discovery_bucket saw: every applied scan, by bucket, and how stale the
    buckets were meanwhile."""

    last: dict[str, tuple[datetime, int]] = field(default_factory=dict)  # (scanned, cycle)
    scans: dict[str, list[tuple[datetime, int]]] = field(default_factory=dict)  # in window
    gaps: list[float] = field(default_factory=list)  # s since the bucket's previous scan
    ages: list[float] = field(default_factory=list)  # mean bucket age at each poll
    epochs: int = 0
    doubled: int = 0  # applied with a cycle not above the bucket's previous one

    def poll(self, conn: Any, *, record: bool) -> None:
        now, epochs, ages = datetime.now(UTC), 0, []
        for bucket, scanned_at, cycle, epoch in conn.execute(
            text("SELECT id, last_scan_at, last_cycle_start, lease_epoch FROM discovery_bucket")
        ):
            epochs += epoch
            if scanned_at is None:
                continue
            scanned_at = utc(scanned_at)
            ages.append((now - scanned_at).total_seconds())
            before = self.last.get(bucket)
            if before is not None and before[0] == scanned_at:
                continue
            self.last[bucket] = (scanned_at, cycle)
            if record:
                self.scans.setdefault(bucket, []).append((scanned_at, cycle))
                if before is not None:
                    self.gaps.append((scanned_at - before[0]).total_seconds())
                    self.doubled += cycle is None or cycle <= before[1]
        self.epochs = epochs
        if record and ages:
            self.ages.append(sum(ages) / len(ages))

    @property
    def count(self) -> int:
        return sum(len(scans) for scans in self.scans.values())


def search_count(base_url: str) -> int:
    counters = httpx.get(f"{base_url}/__sandbox/counters", timeout=5).json()["counters"]
    return int(counters.get(SEARCH, 0))


def measure(
    workers: int, args: argparse.Namespace, base_url: str, sandbox_pid: int, dbs: Databases
) -> dict[str, Any]:
    database_url = dbs.create(f"w{workers}")
    engine = create_engine(database_url, pool_size=1)
    logs = Path(tempfile.mkdtemp(prefix="rw-bench-scaleout-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        env = environment(args, base_url, database_url)
        subprocess.run(
            [sys.executable, "-m", "resywatch", "admin", "migrate"], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        for i in range(workers):
            with (logs / f"worker{i}.log").open("wb") as log:
                command = [sys.executable, "-m", "resywatch", "run-forever", "--json-logs"]
                command += ["--job", "discovery"]
                processes.append(
                    subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
                )
        expected = args.days * len(args.time_slots.split(","))
        observed = Observed()
        warm_started = time.monotonic()
        with engine.connect() as conn:
            # Warm-up: every bucket's first scan is its baseline (the costly one, and not
            # what a running system does every cycle).
            while True:
                conn.commit()
                baselined = conn.execute(
                    text("SELECT count(*) FROM discovery_bucket WHERE baselined_at IS NOT NULL")
                ).scalar_one()
                if baselined >= expected:
                    break
                if time.monotonic() - warm_started > args.warmup_timeout_s:
                    raise SystemExit(
                        f"{workers} worker(s): only {baselined}/{expected} buckets baselined "
                        f"after {args.warmup_timeout_s} s (see {logs})"
                    )
                if any(p.poll() is not None for p in processes):
                    raise SystemExit(f"a worker exited during the warm-up (see {logs})")
                time.sleep(0.2)
            warmup_s = time.monotonic() - warm_started
            time.sleep(args.settle_s)

            # The database's own processes serving this database (the workers' connections).
            backends = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                     "AND pid <> pg_backend_pid()")
            ).scalars().all()  # fmt: skip
            observed.poll(conn, record=False)
            conn.commit()
            epochs0, searches0 = observed.epochs, search_count(base_url)
            pids = {"workers": [p.pid for p in processes], "sandbox": [sandbox_pid],
                    "postgres": list(backends)}  # fmt: skip
            cpu0 = {k: [cpu_ticks(pid) for pid in v] for k, v in pids.items()}
            machine0 = machine_ticks()
            window_from = datetime.now(UTC)
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < args.window_s:
                time.sleep(min(POLL_S, args.window_s - elapsed))
                observed.poll(conn, record=True)
                conn.commit()
            window_s = time.monotonic() - started
            window_to = datetime.now(UTC)
            cpu1 = {k: [cpu_ticks(pid) for pid in v] for k, v in pids.items()}
            machine1 = machine_ticks()
            epochs1, searches1 = observed.epochs, search_count(base_url)
        exit_codes = stop(processes)
        with engine.connect() as conn:
            runs = conn.execute(
                text("SELECT status, counts, error, finished_at FROM job_run "
                     "WHERE job_name = 'discovery'")
            ).all()  # fmt: skip
    finally:
        stop(processes)
        engine.dispose()
        dbs.drop(database_url)
    shutil.rmtree(logs, ignore_errors=True)  # kept only when the run failed

    def in_window(finished: datetime | None) -> bool:
        if finished is None:
            return False
        finished = finished if finished.tzinfo else finished.replace(tzinfo=UTC)
        return window_from <= finished <= window_to

    def total(key: str) -> int:
        return sum(int((run.counts or {}).get(key, 0)) for run in runs)

    def cores(part: str) -> list[float]:
        spent = zip(cpu0[part], cpu1[part], strict=True)
        return [round((b - a) / TICK / window_s, 3) for a, b in spent]

    scans = observed.count
    sweep = expected / (scans / window_s) if scans else 0.0
    # A scan of a bucket scanned less than half a sweep before repeats another worker's
    # work (the same bucket twice in quick succession) instead of sharing the window.
    quick = sum(1 for gap in observed.gaps if gap < sweep / 2)
    searches = searches1 - searches0
    # What the latency alone allows: `concurrency` buckets in flight a worker, each taking
    # its searches (pages, one after another) times the injected latency.
    ideal = workers * args.concurrency / (searches / scans * args.latency_ms / 1000) if scans else 0
    busy, ticks = machine1[0] - machine0[0], machine1[1] - machine0[1]
    machine = busy / ticks * (os.cpu_count() or 1) if ticks else 0.0
    ours = sum(sum(cores(part)) for part in pids)
    failed = [run for run in runs if run.status == "failed"]
    return {
        "workers": workers,
        "buckets": expected,
        "warmup_s": round(warmup_s, 1),
        "window_s": round(window_s, 2),
        "bucket_scans": scans,
        "buckets_per_min": round(scans / window_s * 60, 1),
        "sweep_s": round(sweep, 2),
        "quick_rescans": quick,
        "useful_buckets_per_min": round((scans - quick) / window_s * 60, 1),
        "median_gap_s": round(statistics.median(observed.gaps), 2) if observed.gaps else None,
        "mean_age_s": round(statistics.fmean(observed.ages), 2) if observed.ages else None,
        "ideal_buckets_per_min": round(ideal * 60, 1),
        "vs_ideal": round(scans / window_s / ideal, 3) if ideal else None,
        "claims": epochs1 - epochs0,
        "searches": searches,
        "searches_per_scan": round(searches / scans, 2) if scans else None,
        "double_scans": observed.doubled,
        "passes": len(runs),
        "passes_failed": len(failed),
        "passes_failed_in_window": sum(1 for run in failed if in_window(run.finished_at)),
        "pass_errors": sorted({short(run.error) for run in failed if run.error}),
        "buckets_failed": total("failed"),
        "buckets_stale": total("stale"),
        "cpu_workers": cores("workers"),
        "cpu_sandbox": sum(cores("sandbox")),
        "cpu_postgres": round(sum(cores("postgres")), 3),
        "cpu_machine": round(machine, 2),
        "cpu_others": round(max(0.0, machine - ours), 2),  # whatever else ran meanwhile
        "exit_codes": exit_codes,
    }


def short(error: str) -> str:
    """The telling line of a pass's error (the driver's own message when it has one)."""
    lines = error.splitlines()
    driver = [line for line in lines if line.startswith("(psycopg.")]
    return (driver or lines or [""])[0][:160]


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> list[int]:
    """SIGTERM every worker (they finish or hand back their passes), then wait."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=15))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
    return codes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2,3", help="worker counts, the first the base")
    parser.add_argument("--window-s", type=float, default=20.0, help="measurement per count")
    parser.add_argument("--latency-ms", type=float, default=250.0, help="added to every search")
    parser.add_argument("--concurrency", type=int, default=2, help="buckets in flight a worker")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument(
        "--time-slots", default=",".join(f"{h}:00" for h in range(11, 23)), help="anchors"
    )
    parser.add_argument("--box", default="40.745,-74.0,40.755,-73.98", help="S,W,N,E")
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--interval-s", type=float, default=0.5, help="discovery cycle")
    parser.add_argument("--settle-s", type=float, default=2.0, help="after the warm-up")
    parser.add_argument("--warmup-timeout-s", type=float, default=120.0)
    parser.add_argument("--target", type=float, default=2.7, help="ratio at the largest count")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    dbs = Databases(server_url())
    port = free_port()
    sandbox = start_sandbox(port, speed=0)  # a frozen clock: every cycle sees the same slots
    base_url = f"http://127.0.0.1:{port}"
    results = []
    try:
        httpx.post(
            f"{base_url}/__sandbox/faults",
            json={"route": SEARCH, "latency_ms": args.latency_ms},
            timeout=5,
        ).raise_for_status()
        for workers in counts:
            r = measure(workers, args, base_url, sandbox.pid, dbs)
            results.append(r)
            print(
                f"{workers} worker(s): {r['buckets_per_min']} buckets/min ({r['bucket_scans']} "
                f"scans in {r['window_s']} s; {r['vs_ideal']} of the latency-bound "
                f"{r['ideal_buckets_per_min']}; a sweep of the {r['buckets']} buckets every "
                f"{r['sweep_s']} s, {r['searches_per_scan']} searches a scan)",
                flush=True,
            )
            print(
                f"  useful {r['useful_buckets_per_min']} buckets/min ({r['quick_rescans']} quick "
                f"rescans: the bucket scanned < half a sweep before; median gap between a "
                f"bucket's scans {r['median_gap_s']} s, mean bucket age {r['mean_age_s']} s)",
                flush=True,
            )
            print(
                f"  CPU (cores): workers {r['cpu_workers']}, sandbox {r['cpu_sandbox']}, "
                f"postgres {r['cpu_postgres']}, whole machine {r['cpu_machine']} of "
                f"{os.cpu_count()} (others {r['cpu_others']}); double scans {r['double_scans']}, "
                f"failed passes {r['passes_failed']} ({r['passes_failed_in_window']} in the "
                f"window) {r['pass_errors'] or ''}, stale scans {r['buckets_stale']}",
                flush=True,
            )
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)

    def ratios(key: str) -> dict[str, float | None]:
        base = results[0][key]
        return {str(r["workers"]): round(r[key] / base, 2) if base else None for r in results}

    raw, useful = ratios("buckets_per_min"), ratios("useful_buckets_per_min")
    top = str(counts[-1])
    doubled = sum(r["double_scans"] for r in results)
    met = (raw[top] or 0) >= args.target and (useful[top] or 0) >= args.target and not doubled
    print(
        f"ratios vs {counts[0]} worker(s): buckets/min {raw}, useful buckets/min {useful}; "
        f"target >= {args.target}x at {top} worker(s): {'met' if met else 'NOT met'}"
    )
    settings = {
        k: getattr(args, k)
        for k in ("latency_ms", "concurrency", "days", "time_slots", "box", "page_size",
                  "interval_s", "window_s")
    }  # fmt: skip
    summary = {
        "benchmark": "scaleout",
        "settings": settings | {"buckets": results[0]["buckets"], "cpus": os.cpu_count()},
        "buckets_per_min": {str(r["workers"]): r["buckets_per_min"] for r in results},
        "ratios": raw,
        "useful_buckets_per_min": {str(r["workers"]): r["useful_buckets_per_min"] for r in results},
        "useful_ratios": useful,
        "target_ratio": args.target,
        "double_scans": doubled,
        "met": met,
        "runs": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
