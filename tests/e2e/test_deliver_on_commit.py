"""Deliver on commit (issue 16), as real processes against the sandbox with a webhook sink:
a drop reaches the webhook within seconds although the delivery timer is a minute; on
PostgreSQL the worker that runs delivery hears another worker's commit (LISTEN/NOTIFY); a
cron `run discovery` delivers what it found before it exits. Both backends where they apply.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sandbox_tools import ClosedSlot, live_config
from sqlmodel import select
from test_delivery import Sink

from resywatch.config import load_settings
from resywatch.db.engine import Database
from resywatch.db.models import JobRun
from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import local_today

DELIVERY_TIMER_S = 60  # far longer than any bound below: only a wake can beat it
BOUND_S = 15.0  # a 1 s discovery cycle, a scan and a send, on a loaded 2-core machine


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config(speed=1.0, venue_count=60)


@pytest.fixture
def sink() -> Iterator[Sink]:
    sink = Sink()
    sink.thread.start()
    yield sink
    sink.server.shutdown()
    sink.server.server_close()


@pytest.fixture
def env(cli_env: dict[str, str], sink: Sink) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")},
        **cli_env,
        "RESYWATCH_DISCOVERY_DAYS": "2",
        "RESYWATCH_DISCOVERY_INTERVAL_S": "1",
        "RESYWATCH_JOBS_DELIVERY_INTERVAL_S": str(DELIVERY_TIMER_S),
        "RESYWATCH_NOTIFY_URLS": sink.url(),
    }


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[str]]]:
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
            process.kill()
        process.communicate(timeout=30)


def resywatch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "resywatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def baseline_then_closed_slot(env: dict[str, str], sandbox: SandboxHandle) -> ClosedSlot:
    """A first pass (every bucket's baseline, no drop, so nothing to deliver), then a
    sold-out slot tomorrow for the test to open."""
    first = json.loads(resywatch("run", "discovery", "--json", env=env).stdout)["passes"]
    assert [p["job"] for p in first] == ["discovery"]
    settings = load_settings(environ=env)
    tomorrow = local_today(datetime.now(UTC), settings.timezone) + timedelta(days=1)
    return ClosedSlot(sandbox, tomorrow, settings)


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def delivery_passes(db: Database) -> int:
    with db.read() as session:
        return len(session.exec(select(JobRun).where(JobRun.job_name == "delivery")).all())


def drops_received(sink: Sink) -> list[str]:
    return [key for key in sink.received_keys() if key.startswith("drop:")]


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    return err


@pytest.mark.timed  # heard within BOUND_S, well before the delivery timer
def test_run_forever_delivers_a_drop_without_waiting_for_the_delivery_timer(
    env: dict[str, str], sandbox: SandboxHandle, db: Database, sink: Sink, processes: Any
) -> None:
    slot = baseline_then_closed_slot(env, sandbox)
    worker = processes("run-forever", "--job", "discovery", "--job", "delivery", env=env)
    wait_for("the first delivery pass", lambda: delivery_passes(db) >= 1, timeout=30)
    opened = time.monotonic()
    slot.change(+1)
    wait_for("the drop at the webhook", lambda: drops_received(sink), timeout=BOUND_S)
    heard_s = time.monotonic() - opened
    print(f"drop -> webhook in {heard_s:.2f} s (delivery timer {DELIVERY_TIMER_S} s)")
    stop(worker)
    assert heard_s < BOUND_S < DELIVERY_TIMER_S
    assert len(drops_received(sink)) == 1
    assert max(sink.attempts.values()) == 1  # sent once


@pytest.mark.postgres
@pytest.mark.timed  # heard within BOUND_S, well before the delivery timer
def test_the_delivery_worker_hears_another_workers_commit_through_listen_notify(
    env: dict[str, str],
    sandbox: SandboxHandle,
    db: Database,
    sink: Sink,
    processes: Any,
) -> None:
    if db.backend != "postgresql":
        pytest.skip("SQLite has no signal between processes: the delivery timer stays")
    slot = baseline_then_closed_slot(env, sandbox)
    deliverer = processes("run-forever", "--job", "delivery", env=env)
    wait_for("the first delivery pass", lambda: delivery_passes(db) >= 1, timeout=30)
    time.sleep(1.0)  # its LISTEN connection is up well before this
    finder = processes("run-forever", "--job", "discovery", env=env)
    opened = time.monotonic()
    slot.change(+1)
    wait_for("the drop at the webhook", lambda: drops_received(sink), timeout=BOUND_S)
    heard_s = time.monotonic() - opened
    print(f"drop -> webhook across workers in {heard_s:.2f} s")
    stop(finder)
    stop(deliverer)
    assert heard_s < BOUND_S < DELIVERY_TIMER_S
    assert len(drops_received(sink)) == 1
    with db.read() as session:
        runs = session.exec(select(JobRun).where(JobRun.job_name == "delivery")).all()
    assert any(run.counts.get("sent") == 1 for run in runs)  # the deliverer sent it


def test_a_cron_discovery_pass_delivers_its_drop_before_it_exits(
    env: dict[str, str], sandbox: SandboxHandle, db: Database, sink: Sink
) -> None:
    slot = baseline_then_closed_slot(env, sandbox)
    slot.change(+1)
    time.sleep(1.1)  # the baseline's 1 s cycle is over: every bucket is due again
    passes = json.loads(resywatch("run", "discovery", "--json", env=env).stdout)["passes"]
    assert [(p["job"], p["status"]) for p in passes] == [("discovery", "ok"), ("delivery", "ok")]
    assert passes[0]["counts"]["drops_opened"] == 1
    assert passes[1]["counts"]["sent"] == 1
    assert len(drops_received(sink)) == 1  # there already when the command returned

    # Its bucket now has a recent drop: `discover buckets` shows it scanned 3 times as often.
    states = json.loads(resywatch("discover", "buckets", "--json", env=env).stdout)["buckets"]
    by_id = {state["id"]: state for state in states}
    hot = by_id[f"{slot.day.isoformat()}_19:00"]
    assert (hot["hot"], hot["recent_drops"], hot["interval_s"]) == (True, 1, 1 / 3)
    assert {s["interval_s"] for s in states if s is not hot} == {1.0}
