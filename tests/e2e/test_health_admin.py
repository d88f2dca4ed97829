"""`resywatch health` exit codes 0/1/2/3, each from the state that should cause it, its
documented --json and --prometheus output, and the admin commands."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sandbox_tools import live_config
from sqlalchemy import update

from resywatch.db.engine import Database
from resywatch.db.models import ApiCallLog, DiscoveryBucket, DropEvent, JobHeartbeat, JobRun
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN, SandboxConfig, SandboxHandle


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env | {"RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN, "RESYWATCH_DISCOVERY_DAYS": "2"}


def health(cli: Any, env: dict[str, str], expect: int) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(cli("health", "--json", env=env, expect=expect).stdout)
    return document


def test_ok_when_every_job_ran_and_resy_accepts_the_token(cli: Any, env: dict[str, str]) -> None:
    cli("run", "due", env=env)
    report = health(cli, env, expect=0)
    assert report["status"] == "OK" and report["exit_code"] == 0
    assert set(report) == {
        "status", "exit_code", "checks", "next_scan_at", "fast_checks", "bucket_health",
    }  # fmt: skip
    assert report["fast_checks"] == {"job_alive": True, "feed_updating": True}
    assert report["next_scan_at"].endswith("Z")
    assert len(report["bucket_health"]) == 4
    assert {"bucket_id", "last_scan_at", "stale"} <= set(report["bucket_health"][0])
    names = {c["name"] for c in report["checks"]}
    assert {"database", "job:discovery", "buckets", "feed", "resy_auth", "notifications"} <= names
    assert all(set(c) == {"name", "status", "message", "value"} for c in report["checks"])
    human = cli("health", env=env).stdout
    assert human.splitlines()[-1].startswith("HEALTH OK")


def test_warning_when_not_logged_in(cli: Any, env: dict[str, str]) -> None:
    del env["RESYWATCH_RESY_AUTH_TOKEN"]
    cli("run", "due", env=env)
    report = health(cli, env, expect=1)
    assert [c["name"] for c in report["checks"] if c["status"] == "WARN"] == ["resy_auth"]


def test_critical_when_a_job_stopped_beating(
    cli: Any, env: dict[str, str], database_url: str
) -> None:
    cli("run", "due", env=env)
    db = Database(database_url)
    try:
        with db.write() as session:
            session.execute(
                update(JobHeartbeat)
                .where(JobHeartbeat.job_name == "watches")  # type: ignore[arg-type]
                .values(last_finished_at=datetime.now(UTC) - timedelta(hours=1))
            )
    finally:
        db.dispose()
    report = health(cli, env, expect=2)
    assert [c["name"] for c in report["checks"] if c["status"] == "CRIT"] == ["job:watches"]
    prometheus = cli("health", "--prometheus", env=env, expect=2).stdout
    assert "resywatch_health_status 2" in prometheus
    assert 'resywatch_check_status{check="job:watches"} 2' in prometheus


def test_warning_when_discovery_passes_say_ok_but_claim_nothing_while_buckets_are_due(
    cli: Any, env: dict[str, str], database_url: str
) -> None:
    env = env | {"RESYWATCH_DISCOVERY_INTERVAL_S": "1"}
    cli("run", "discovery", env=env)
    db = Database(database_url)
    try:
        with db.write() as session:  # a bookkeeping fault: every bucket looks done for good
            session.execute(
                update(DiscoveryBucket).values(last_cycle_start=datetime.now(UTC) + timedelta(1))
            )
    finally:
        db.dispose()
    started = time.monotonic()
    while time.monotonic() - started < 3.5:  # past two intervals of due work
        passed = json.loads(cli("run", "discovery", "--json", env=env).stdout)
        assert passed["passes"][0]["status"] == "ok"
        assert passed["passes"][0]["counts"]["claimed"] == 0
    checks = {c["name"]: c for c in health(cli, env, expect=1)["checks"]}
    assert checks["job:discovery"]["status"] == "WARN"
    assert "4 buckets due" in checks["job:discovery"]["message"]
    assert "claimed: 0" in checks["job:discovery"]["message"]


def test_unknown_when_the_database_is_missing(cli: Any, tmp_path: Path) -> None:
    env = {"RESYWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.db'}"}
    report = health(cli, env, expect=3)
    assert report["status"] == "UNKNOWN"
    assert "resywatch admin migrate" in report["checks"][0]["message"]
    assert not (tmp_path / "absent.db").exists()


def test_admin_clear_logs_booking_errors_and_prune(
    cli: Any, env: dict[str, str], database_url: str
) -> None:
    cli("discover", "scan", env=env)
    logs = json.loads(cli("admin", "logs", "--endpoint", "venuesearch", "--json", env=env).stdout)
    assert logs["calls"] and all("venuesearch" in c["endpoint"] for c in logs["calls"])
    assert DEMO_API_KEY not in json.dumps(logs)
    assert json.loads(cli("admin", "logs", "--errors", "--json", env=env).stdout)["calls"] == []
    assert json.loads(cli("admin", "booking-errors", "--json", env=env).stdout) == {
        "booking_errors": []
    }

    refused = cli("admin", "clear", "--json", env=env, expect=2)
    assert "--yes" in json.loads(refused.stdout)["error"]["message"]
    cleared = json.loads(cli("admin", "clear", "--yes", "--json", env=env).stdout)
    assert cleared["buckets"] == 4 and cleared["snapshots"] > 0

    # Old rows go, recent ones stay.
    db = Database(database_url)
    old = datetime.now(UTC) - timedelta(days=90)
    try:
        with db.write() as session:
            session.add(ApiCallLog(at=old, method="GET", endpoint="/2/user", latency_ms=1.0))
            session.add(JobRun(job_name="watches", started_at=old, status="ok"))
            session.add(
                DropEvent(
                    slot_id="s",
                    bucket_id="b",
                    venue_id=1,
                    venue_name="v",
                    starts_at=datetime(2026, 1, 1, 19),
                    slot_date=old.date(),
                    opened_at=old,
                    closed_at=old,
                )
            )
    finally:
        db.dispose()
    pruned = json.loads(cli("admin", "prune", "--json", env=env).stdout)["deleted"]
    assert pruned == {"drop_events": 1, "notifications": 0, "api_calls": 1, "job_runs": 1}
    counts = json.loads(cli("admin", "db-info", "--json", env=env).stdout)["row_counts"]
    assert counts["api_call_log"] > 0  # today's calls are kept


def test_health_answers_within_2_s_when_resy_is_silent(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    import time

    import httpx

    cli("run", "due", env=env)
    httpx.post(
        f"{sandbox.base_url}/__sandbox/faults",
        json={"route": "/2/user", "latency_ms": 10_000},
        timeout=5,
    ).raise_for_status()
    started = time.monotonic()
    report = health(cli, env, expect=1)
    assert time.monotonic() - started < 2
    [auth] = [c for c in report["checks"] if c["name"] == "resy_auth"]
    assert auth["status"] == "WARN" and "timeout" in auth["message"]
