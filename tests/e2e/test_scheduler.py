"""`resywatch run` and `run-forever` as real processes with real signals, against the
sandbox and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sandbox_tools import control, live_config
from sqlmodel import col, select

from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket, JobHeartbeat
from resywatch.sandbox import DEMO_API_KEY, SandboxConfig, SandboxHandle


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


@pytest.fixture
def env(sandbox: SandboxHandle, database_url: str) -> Iterator[dict[str, str]]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")}
    values.update(
        RESYWATCH_DATABASE_URL=database_url,
        RESYWATCH_RESY_BASE_URL=sandbox.base_url,
        RESYWATCH_RESY_API_KEY=DEMO_API_KEY,
        RESYWATCH_RESY_MAX_RPS="1000",
        RESYWATCH_DISCOVERY_DAYS="2",
    )
    yield values


def slow_searches(sandbox: SandboxHandle, ms: int = 1500) -> None:
    """Every search answers after `ms`: a discovery pass then lasts a few seconds."""
    control(sandbox, "/faults", {"route": "/3/venuesearch/search", "latency_ms": ms})


def resywatch(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "resywatch", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_until_running(db: Database, job: str, timeout: float = 20) -> JobHeartbeat:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as session:
            beat = session.get(JobHeartbeat, job)
        if beat is not None and beat.running_since is not None:
            return beat
        time.sleep(0.05)
    raise AssertionError(f"{job} never started")


def running_jobs(db: Database) -> list[str]:
    with db.read() as session:
        return [
            b.job_name for b in session.exec(select(JobHeartbeat)) if b.running_since is not None
        ]


def leased_buckets(db: Database) -> list[str]:
    with db.read() as session:
        held = select(DiscoveryBucket.id).where(col(DiscoveryBucket.lease_owner).is_not(None))
        return list(session.exec(held))


def searches(sandbox: SandboxHandle) -> int:
    counters = httpx.get(f"{sandbox.base_url}/__sandbox/counters", timeout=5).json()
    return int(counters["counters"].get("/3/venuesearch/search", 0))


def test_a_second_pass_of_a_running_job_is_skipped_quickly_and_calls_nothing(
    env: dict[str, str], sandbox: SandboxHandle, db: Database
) -> None:
    slow_searches(sandbox)
    first = resywatch("run", "discovery", "--json", env=env)
    wait_until_running(db, "discovery")
    code, out, err = finish(resywatch("run", "discovery", "--json", env=env))
    assert code == 0, err
    [skipped] = json.loads(out)["passes"]
    assert skipped["status"] == "skipped"
    # Timed by the pass itself: the skip takes milliseconds, not the running pass's seconds
    # (a fresh interpreter's start-up, seconds on a busy box, is no part of it).
    assert skipped["duration_s"] < 3
    control(sandbox, "/faults", {"route": "/3/venuesearch/search", "latency_ms": 0})
    code, out, err = finish(first)  # its searches still to come need not wait now
    assert code == 0, err
    made = json.loads(out)["passes"][0]["counts"]["requests"]
    assert searches(sandbox) == made  # every search came from the first pass


def test_after_kill_9_the_next_pass_runs(
    env: dict[str, str], sandbox: SandboxHandle, db: Database
) -> None:
    slow_searches(sandbox)
    victim = resywatch("run", "discovery", env=env)
    wait_until_running(db, "discovery")
    victim.kill()
    victim.wait(timeout=10)
    victim.stdout and victim.stdout.close()
    victim.stderr and victim.stderr.close()
    control(sandbox, "/faults", {"route": "/3/venuesearch/search", "latency_ms": 0})
    code, out, err = finish(resywatch("run", "discovery", "--json", env=env))
    assert code == 0, err
    assert json.loads(out)["passes"][0]["status"] == "ok"
    assert running_jobs(db) == []


def test_run_forever_stops_cleanly_on_sigterm(
    env: dict[str, str], sandbox: SandboxHandle, db: Database
) -> None:
    slow_searches(sandbox, ms=800)
    supervisor = resywatch("run-forever", env=env)
    wait_until_running(db, "discovery")
    started = time.monotonic()
    supervisor.send_signal(signal.SIGTERM)
    code, _, err = finish(supervisor, timeout=20)
    assert code == 0, err
    assert time.monotonic() - started < 8
    assert running_jobs(db) == []
    with db.read() as session:  # buckets it was scanning are handed back, not left leased
        assert (
            session.exec(
                select(DiscoveryBucket).where(col(DiscoveryBucket.lease_owner).is_not(None))
            ).all()
            == []
        )
    assert "job=watches status=ok" in err  # one log line per pass, on stderr


def test_a_second_signal_stops_at_once(
    env: dict[str, str], sandbox: SandboxHandle, db: Database
) -> None:
    slow_searches(sandbox, ms=5000)
    supervisor = resywatch("run-forever", "--job", "discovery", "--json-logs", env=env)
    wait_until_running(db, "discovery")
    supervisor.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    started = time.monotonic()
    supervisor.send_signal(signal.SIGINT)
    code, _, err = finish(supervisor, timeout=20)
    assert time.monotonic() - started < 1.5
    assert code == 130, err
    assert running_jobs(db) == []
    assert leased_buckets(db) == []  # the scans it dropped are free for other workers now
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [entry["status"] for entry in logs] == ["interrupted"]


def test_run_due_runs_each_due_job_once(cli: Any, env: dict[str, str]) -> None:
    # Discovery is due again at each cycle start on the clock: a day-long cycle keeps the two
    # passes inside one (with 30 s, they would straddle a boundary one run in ten).
    env = env | {"RESYWATCH_DISCOVERY_INTERVAL_S": "86400"}
    first = json.loads(cli("run", "due", "--json", env=env).stdout)["passes"]
    assert {p["job"] for p in first} >= {"discovery", "watches", "notify", "retention"}
    assert all(p["status"] == "ok" for p in first)
    again = json.loads(cli("run", "due", "--json", env=env).stdout)["passes"]
    assert again == []  # nothing is due until its interval has passed


def test_unknown_job_is_a_usage_error(cli: Any, env: dict[str, str]) -> None:
    result = cli("run", "everything", "--json", env=env, expect=2)
    assert "unknown job" in json.loads(result.stdout)["error"]["message"]


def test_run_json_keeps_stdout_for_its_document(
    cli: Any, env: dict[str, str], db: Database
) -> None:
    from resywatch.db.models import Notification

    with db.write() as session:
        session.add(Notification(dedupe_key="t:1", kind="test", title="Hello", body="A table"))
    result = cli("run", "delivery", "--json", env=env)
    [delivered] = json.loads(result.stdout)["passes"]  # one document, nothing else
    assert delivered["counts"]["sent"] == 1
    assert "Hello" in result.stderr  # no channel configured: the message went to stderr
