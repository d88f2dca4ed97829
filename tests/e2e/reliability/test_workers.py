"""Several discovery workers on one database, as real processes against the sandbox:
every (bucket, cycle) scanned exactly once, a killed worker's buckets rescanned in time
with one drop for a slot that opened meanwhile, and a paused worker's writes refused.
Both backends (the `database_url` fixture)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sandbox_tools import ClosedSlot, control, live_config
from sqlmodel import select

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.leases import host_label
from resywatch.db.models import DiscoveryBucket, DropEvent, JobRun, Notification, SlotSnapshot
from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import local_today

CYCLE_S = 2.0
LEASE_TTL_S = 5  # the shortest the settings allow
SEARCH = "/3/venuesearch/search"


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    # Real time (speed 1), so the sandbox stamps each request with the time it arrived; a
    # small city, so a whole cycle is scanned well inside its 2 s.
    return live_config(speed=1.0, venue_count=60)


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")},
        **cli_env,
        "RESYWATCH_DISCOVERY_INTERVAL_S": str(CYCLE_S),
        "RESYWATCH_JOBS_LEASE_TTL_S": str(LEASE_TTL_S),
    }


@pytest.fixture
def workers() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts `resywatch ARGS...` processes; any still running at the end is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "resywatch", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        process.communicate(timeout=30)


def owner_of(process: subprocess.Popen[str]) -> str:
    """The worker name of `process` up to its nonce (which only the process knows)."""
    return f"{host_label()}:{process.pid}:"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def searches(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    response = httpx.get(f"{sandbox.base_url}/__sandbox/requests", params={"route": SEARCH})
    return list(response.json()["requests"])


def buckets(db: Database) -> dict[str, DiscoveryBucket]:
    with db.read() as session:
        return {b.id: b for b in session.exec(select(DiscoveryBucket))}


def leased_by(db: Database, owner: str) -> list[str]:
    return [b.id for b in buckets(db).values() if (b.lease_owner or "").startswith(owner)]


def sleep_until_next_cycle(offset: float = 0.0) -> int:
    """Sleep into the next cycle (plus `offset` seconds); that cycle's number."""
    cycle = math.floor(time.time() / CYCLE_S) + 1
    time.sleep(max(0.0, cycle * CYCLE_S + offset - time.time()))
    return cycle


def test_three_workers_scan_every_bucket_exactly_once_a_cycle(
    env: dict[str, str],
    sandbox: SandboxHandle,
    db: Database,
    workers: Callable[..., subprocess.Popen[str]],
    full_run: bool,
    figures: Any,
) -> None:
    cycles = 20 if full_run else 4
    pool = [workers("run-forever", "--job", "discovery", env=env) for _ in range(3)]
    wait_for("three workers", lambda: len({r.owner for r in runs(db)}) == 3)
    first = sleep_until_next_cycle()  # every worker is in its loop from here on
    last = first + cycles - 1
    time.sleep(max(0.0, (last + 1) * CYCLE_S + 1.0 - time.time()))
    for process in pool:
        process.send_signal(signal.SIGTERM)
    for process in pool:
        _, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
        assert "Traceback" not in err

    # A bucket scan asks page 1 once per party size: count party 2's, by arrival time.
    scans: Counter[tuple[str, int]] = Counter()
    for request in searches(sandbox):
        params = request["params"]
        if params.get("page") == 1 and params.get("party_size") == 2:
            scans[f"{params['day']}_{params['time_filter']}", int(request["at"] // CYCLE_S)] += 1
    every = sorted(buckets(db))
    assert len(every) == 28
    counts = [scans[bucket, cycle] for bucket in every for cycle in range(first, last + 1)]
    duplicates = sum(n - 1 for n in counts if n > 1)
    gaps = counts.count(0)
    shares = Counter(r.owner for r in runs(db) for _ in range(r.counts.get("buckets", 0)))
    figures.report(
        "3 workers x cycles: each (bucket, cycle) once",
        cycles=cycles,
        scans=sum(counts),
        expected=len(every) * cycles,
        duplicates=duplicates,
        gaps=gaps,
        buckets_per_worker=sorted(shares.values()),
    )
    assert (duplicates, gaps) == (0, 0)
    assert len(shares) == 3 and min(shares.values()) > 0  # the work was shared


def runs(db: Database) -> list[JobRun]:
    with db.read() as session:
        return list(session.exec(select(JobRun).where(JobRun.job_name == "discovery")))


def baseline_then_closed_slot(
    env: dict[str, str], sandbox: SandboxHandle, workers: Callable[..., subprocess.Popen[str]]
) -> ClosedSlot:
    """A first pass (every bucket's baseline), then a sold-out slot tomorrow to open."""
    assert workers("run", "discovery", env=env).wait(timeout=60) == 0
    settings = load_settings(environ=env)
    tomorrow = local_today(datetime.now(UTC), settings.timezone) + timedelta(days=1)
    return ClosedSlot(sandbox, tomorrow, settings)


def drops_of(db: Database, slot_id: str) -> int:
    with db.read() as session:
        return len(session.exec(select(DropEvent).where(DropEvent.slot_id == slot_id)).all())


def test_a_worker_killed_mid_scan_loses_nothing(
    env: dict[str, str],
    sandbox: SandboxHandle,
    db: Database,
    workers: Callable[..., subprocess.Popen[str]],
    figures: Any,
) -> None:
    env = {**env, "RESYWATCH_DISCOVERY_DAYS": "2"}
    slot = baseline_then_closed_slot(env, sandbox, workers)
    bucket = f"{slot.day.isoformat()}_19:00"

    control(sandbox, "/faults", {"route": SEARCH, "latency_ms": 4000})
    sleep_until_next_cycle()  # the baseline's cycle is done: every bucket is due again
    victim = workers("run", "discovery", env=env)
    wait_for("the victim's leases", lambda: bucket in leased_by(db, owner_of(victim)))
    wait_for("the victim's searches", lambda: len(searches(sandbox)) >= 16)  # 8 baseline
    slot.change(+1)  # opens while the victim's scan is in flight
    victim.kill()
    killed = datetime.now(UTC)
    victim.wait(timeout=10)
    control(sandbox, "/faults", {"route": SEARCH, "latency_ms": 0})

    survivor = workers("run-forever", "--job", "discovery", env=env)
    rescanned = wait_for(
        "the rescan",
        lambda: (b := buckets(db)[bucket]).last_scan_at and b.last_scan_at > killed and b,
        timeout=LEASE_TTL_S + CYCLE_S + 10,
    )
    after_s = (rescanned.last_scan_at - killed).total_seconds()
    sleep_until_next_cycle(offset=CYCLE_S)  # two more cycles: nothing may open it again
    survivor.send_signal(signal.SIGTERM)
    _, err = survivor.communicate(timeout=20)
    assert survivor.returncode == 0, err
    drops = drops_of(db, slot.slot_id)
    figures.report(
        "kill -9 mid-scan",
        rescanned_after_s=round(after_s, 2),
        bound_s=LEASE_TTL_S + CYCLE_S,
        drop_events=drops,
    )
    assert after_s <= LEASE_TTL_S + CYCLE_S
    assert drops == 1


def discovery_state(db: Database) -> tuple[Any, ...]:
    """Everything a bucket scan may write."""
    with db.read() as session:
        return (
            sorted(
                (
                    b.id,
                    b.last_scan_at,
                    b.last_attempt_at,
                    b.last_cycle_start,
                    b.lease_epoch,
                    b.slot_count,
                )
                for b in session.exec(select(DiscoveryBucket))
            ),
            sorted(
                (s.bucket_id, s.slot_id, s.in_previous) for s in session.exec(select(SlotSnapshot))
            ),
            sorted((e.id, e.slot_id, e.closed_at) for e in session.exec(select(DropEvent))),
            sorted(n.dedupe_key for n in session.exec(select(Notification))),
        )


def test_a_worker_paused_past_its_lease_writes_nothing(
    env: dict[str, str],
    sandbox: SandboxHandle,
    db: Database,
    workers: Callable[..., subprocess.Popen[str]],
    figures: Any,
) -> None:
    env = {**env, "RESYWATCH_DISCOVERY_DAYS": "2", "RESYWATCH_RESY_TIMEOUT_S": "30"}
    slot = baseline_then_closed_slot(env, sandbox, workers)

    control(sandbox, "/faults", {"route": SEARCH, "latency_ms": 1500})
    sleep_until_next_cycle()
    slot.change(+1)  # the paused worker's answers will say it opened
    paused = workers("run", "discovery", "--json", env=env)
    wait_for("its leases", lambda: len(leased_by(db, owner_of(paused))) == 4)
    wait_for("its searches", lambda: len(searches(sandbox)) >= 16)
    os.kill(paused.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    control(sandbox, "/faults", {"route": SEARCH, "latency_ms": 0})

    time.sleep(LEASE_TTL_S + 0.5)  # its leases expire
    successor = workers("run", "discovery", "--json", env=env)
    out, err = successor.communicate(timeout=60)
    assert successor.returncode == 0, err
    took_over = json.loads(out)["passes"][0]["counts"]
    assert took_over["claimed"] == 4 and took_over["drops_opened"] == 1
    before = discovery_state(db)

    os.kill(paused.pid, signal.SIGCONT)  # its answers are waiting in its sockets
    out, err = paused.communicate(timeout=60)
    assert paused.returncode == 0, err
    stale = json.loads(out)["passes"][0]["counts"]
    figures.report(
        "SIGSTOP past the lease",
        paused_s=round(time.monotonic() - stopped, 1),
        leases_held=4,
        stale_writes_refused=stale["stale"],
        stale_writes_accepted=int(discovery_state(db) != before),
    )
    assert stale["stale"] == 4 and stale["buckets"] == 0
    assert discovery_state(db) == before  # not one row of the stale scans landed
    assert drops_of(db, slot.slot_id) == 1
