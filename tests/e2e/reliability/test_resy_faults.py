"""Goals 11-14 of RELIABILITY.md §6: `resywatch run discovery` as a real process against
each fault a Resy behind a CDN shows (5xx bursts, 429 with Retry-After, silence, a drip-fed
body, a refused token), with the budget, pause and breaker shared through the database.

For each fault: the pass exits 0 or 1, never with a traceback; health reports the right
state; Resy sees at most rate * T + burst requests in any window of T seconds; and once the
fault is gone the following passes scan every bucket again (nothing is lost). The long
form (`make reliability`) waits out a 7 s Retry-After, uses an 8 s deadline, and runs three
supervisors for two minutes against a budget of one request a second.
"""

from __future__ import annotations

import bisect
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sandbox_tools import control, live_config
from sqlalchemy import update
from sqlmodel import col, select
from typer.testing import CliRunner

from resywatch.cli.app import app
from resywatch.db.engine import Database
from resywatch.db.models import ApiCallLog, DiscoveryBucket, ResyHost
from resywatch.db.plain import host_states
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN, SandboxConfig, SandboxHandle
from resywatch.services.vocabulary import local_today

SEARCH = "/3/venuesearch/search"
RATE, BURST, FAILURES = 20.0, 5, 5
CYCLE_S = 0.5
IN_FLIGHT = 4  # a pass's searches at once (2 buckets x 2 party sizes): may be out as it opens


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config(speed=1.0)  # request timestamps in real seconds


@pytest.fixture
def env(sandbox: SandboxHandle, database_url: str) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("RESYWATCH_")}
    values.update(
        RESYWATCH_DATABASE_URL=database_url,
        RESYWATCH_RESY_BASE_URL=sandbox.base_url,
        RESYWATCH_RESY_API_KEY=DEMO_API_KEY,
        RESYWATCH_RESY_AUTH_TOKEN=DEMO_AUTH_TOKEN,
        RESYWATCH_RESY_MAX_RPS=str(RATE),
        RESYWATCH_RESY_BURST=str(BURST),
        RESYWATCH_RESY_BREAKER_FAILURES=str(FAILURES),
        RESYWATCH_RESY_BREAKER_COOLDOWN_S="1",
        RESYWATCH_DISCOVERY_DAYS="1",
        RESYWATCH_DISCOVERY_INTERVAL_S=str(CYCLE_S),  # short cycles: passes do not wait
    )
    return values


def discovery_pass(env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """One `resywatch run discovery --json`: its pass document and its wall time."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "resywatch", "run", "discovery", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    elapsed = time.monotonic() - started
    assert done.returncode in (0, 1), done.stderr  # the documented exit codes
    assert "Traceback" not in done.stderr, done.stderr
    [result] = json.loads(done.stdout)["passes"]  # stdout holds exactly one document
    assert (result["status"] == "failed") == (done.returncode == 1)
    return result, elapsed


def run_in_process(env: dict[str, str], *args: str) -> dict[str, Any]:
    """A command's --json document, run in this process (no interpreter start-up)."""
    outcome = CliRunner().invoke(app, [*args, "--json"], env=env, catch_exceptions=False)
    document: dict[str, Any] = json.loads(outcome.stdout)
    return document


def health(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each health check by name."""
    report = run_in_process(env, "health")
    return {check["name"]: check for check in report["checks"]}


def clear_faults(sandbox: SandboxHandle) -> None:
    httpx.delete(f"{sandbox.base_url}/__sandbox/faults", timeout=5).raise_for_status()


def next_cycle(db: Database) -> None:
    """Sleep past the breaker's cooldown, if it is open, and into the next discovery cycle."""
    state = host_states(db)
    until = state[0].open_until if state and state[0].open_until else None
    wait = (until - datetime.now(UTC)).total_seconds() if until else 0.0
    now = time.time() + max(0.0, wait)
    time.sleep(max(0.0, wait) + CYCLE_S - now % CYCLE_S + 0.01)


def recover(env: dict[str, str], db: Database) -> int:
    """Passes until every bucket has been scanned successfully again (the first pass after a
    cooldown may see only the trial call through, the others refused); how many it took."""
    next_cycle(db)
    since = datetime.now(UTC)
    for number in range(1, 4):
        [result] = run_in_process(env, "run", "discovery")["passes"]
        assert result["status"] == "ok"
        with db.read() as session:
            buckets = session.exec(select(DiscoveryBucket)).all()
        if len(buckets) == 2 and all(b.last_scan_at and b.last_scan_at >= since for b in buckets):
            assert all(b.baselined_at is not None for b in buckets)
            return number
        next_cycle(db)
    raise AssertionError("the buckets were not all scanned again after the fault cleared")


def busiest(sandbox: SandboxHandle) -> tuple[int, float, int]:
    """Checks that every window of T seconds saw at most rate * T + burst requests; returns
    (requests, their span in s, the most seen in any 1 s window)."""
    times = sorted(entry["at"] for entry in sandbox.state.traffic.requests())
    span = times[-1] - times[0] if times else 0.0

    def most_within(window: float) -> int:
        return max(
            (bisect.bisect_right(times, t + window) - i for i, t in enumerate(times)), default=0
        )

    for window in (0.0, 0.25, 1.0, 5.0, span):
        # One request of slack: the sandbox stamps arrival, not when the budget let it go.
        assert most_within(window) <= RATE * window + BURST + 1, (window, most_within(window))
    return len(times), round(span, 3), most_within(1.0)


def attempt_latencies_ms(db: Database) -> list[float]:
    with db.read() as session:
        return list(
            session.exec(select(ApiCallLog.latency_ms).where(col(ApiCallLog.status).is_(None)))
        )


def breaker_state(db: Database) -> ResyHost:
    [state] = host_states(db)
    return state


# -- the faults -------------------------------------------------------------------------------


def test_a_5xx_burst_opens_the_breaker_and_the_next_passes_recover(
    env: dict[str, str], sandbox: SandboxHandle, db: Database, figures: Any
) -> None:
    control(sandbox, "/faults", {"route": SEARCH, "fail_next": 100, "fail_status": 503})
    first, took = discovery_pass(env)
    assert first["counts"]["failed"] == 2 and first["counts"]["buckets"] == 0
    made = len(sandbox.state.traffic.requests(SEARCH))
    assert FAILURES <= made <= FAILURES + IN_FLIGHT - 1  # then nobody asks
    state = breaker_state(db)
    assert state.opened_at is not None and state.consecutive_failures >= FAILURES
    checks = health(env)
    assert checks["resy_breaker"]["status"] == "WARN"
    assert (
        "after" in checks["resy_breaker"]["message"]
        and "server_error" in (checks["resy_breaker"]["message"])
    )

    clear_faults(sandbox)
    passes = recover(env, db)
    assert health(env)["resy_breaker"]["status"] == "OK"
    requests, span, most = busiest(sandbox)
    figures.report(
        "5xx burst: breaker opens, 0 calls while open, recovery",
        requests_while_failing=made,
        first_pass_s=round(took, 2),
        passes_to_recover=passes,
        requests=requests,
        span_s=span,
        busiest_1s=most,
    )


def test_a_429_pauses_every_request_for_its_retry_after(
    env: dict[str, str], sandbox: SandboxHandle, db: Database, figures: Any, full_run: bool
) -> None:
    pause = 7 if full_run else 2
    control(
        sandbox,
        "/faults",
        {"route": SEARCH, "fail_next": 1, "fail_status": 429, "retry_after": pause},
    )
    result, took = discovery_pass(env)
    assert result["status"] == "ok" and result["counts"]["failed"] == 0  # waited, not failed
    # Requests the budget let go before the 429 was recorded may still arrive (they were on
    # their way); every request let go after it waits until the pause ends. So what arrives
    # during the pause is at most what the budget could have let go before it was recorded.
    paused_until = breaker_state(db).paused_until
    assert paused_until is not None
    recorded = paused_until.timestamp() - pause
    log = sandbox.state.traffic.requests()
    [refused] = [entry for entry in log if entry["status"] == 429]
    earlier = [e["at"] for e in log if e["seq"] <= refused["seq"]]
    later = [e["at"] for e in log if e["seq"] > refused["seq"]]
    on_their_way = [t for t in later if t < paused_until.timestamp() - 0.02]
    let_go_before = BURST + RATE * (recorded - min(earlier))
    assert len(earlier) + len(on_their_way) <= let_go_before + 1, (earlier, on_their_way)
    resumed = min(t for t in later if t not in on_their_way) - refused["at"]
    assert pause - 0.02 <= resumed <= pause + 0.5
    assert took >= pause
    checks = health(env)
    assert checks["resy_breaker"]["status"] == "OK"  # one 429 is a pause, not an outage
    requests, span, most = busiest(sandbox)
    figures.report(
        "429 Retry-After shared by every request",
        retry_after_s=pause,
        already_on_their_way=len(on_their_way),
        resumed_after_s=round(resumed, 3),
        pass_s=round(took, 2),
        requests=requests,
        span_s=span,
        busiest_1s=most,
    )


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"latency_ms": 3000}, id="silence"),
        pytest.param({"drip_chunk_bytes": 16, "drip_interval_ms": 300}, id="drip-feed"),
    ],
)
def test_a_silent_or_dripping_server_is_cut_at_the_deadline(
    env: dict[str, str],
    sandbox: SandboxHandle,
    db: Database,
    figures: Any,
    full_run: bool,
    fault: dict[str, Any],
) -> None:
    deadline = 8.0 if full_run else 0.5
    env["RESYWATCH_RESY_TIMEOUT_S"] = str(deadline)
    if full_run and "latency_ms" in fault:
        fault = {"latency_ms": 10_000}
    control(sandbox, "/faults", {"route": SEARCH, **fault})
    first, took = discovery_pass(env)
    assert first["counts"]["failed"] == 2
    latencies = attempt_latencies_ms(db)
    assert FAILURES <= len(latencies) <= FAILURES + IN_FLIGHT - 1
    assert max(latencies) <= (deadline + 0.5) * 1000  # the overall deadline, not per read
    # The breaker stops the retries: the pass lasts about one deadline, not four. Timed by
    # the pass itself (`duration_s`): the interpreter's start-up, seconds on a busy box
    # running tests in parallel, is not part of the pass.
    assert first["duration_s"] < 2 * deadline + 5
    assert health(env)["resy_breaker"]["status"] == "WARN"

    clear_faults(sandbox)
    passes = recover(env, db)
    assert health(env)["resy_breaker"]["status"] == "OK"
    requests, span, most = busiest(sandbox)
    figures.report(
        f"{'silence' if 'latency_ms' in fault else 'drip-feed'} cut by the per-request deadline",
        deadline_s=deadline,
        attempts_cut=len(latencies),
        longest_attempt_ms=round(max(latencies)),
        first_pass_s=round(first["duration_s"], 2),
        process_s=round(took, 2),
        passes_to_recover=passes,
        requests=requests,
        span_s=span,
        busiest_1s=most,
    )


def test_a_refused_token_is_critical_and_does_not_trip_the_breaker(
    env: dict[str, str], sandbox: SandboxHandle, db: Database, figures: Any
) -> None:
    control(sandbox, "/faults", {"route": "*", "error_rate": 1.0, "error_statuses": [419]})
    first, _ = discovery_pass(env)
    assert first["counts"]["failed"] == 2
    made = len(sandbox.state.traffic.requests(SEARCH))
    assert made == 2 * 2  # one search per bucket and party size: auth errors are not retried
    checks = health(env)
    assert checks["resy_auth"]["status"] == "CRIT"
    assert "resywatch auth login" in checks["resy_auth"]["message"]
    assert checks["resy_breaker"]["status"] == "OK"  # Resy answered: it is not down
    assert breaker_state(db).consecutive_failures == 0

    clear_faults(sandbox)
    passes = recover(env, db)
    assert health(env)["resy_auth"]["status"] == "OK"
    requests, _, most = busiest(sandbox)
    figures.report(
        "419 refused token: CRIT, breaker closed",
        requests_while_refused=made,
        passes_to_recover=passes,
        requests=requests,
        busiest_1s=most,
    )


def test_one_trial_call_across_processes_after_the_cooldown(
    env: dict[str, str], sandbox: SandboxHandle, db: Database, figures: Any
) -> None:
    """Goal 13: while the breaker is open separate processes make 0 calls; after the
    cooldown exactly one of them makes the trial call, and its success closes it."""
    with db.write() as session:
        session.add(
            ResyHost(
                host=urlsplit(sandbox.base_url).netloc,
                consecutive_failures=FAILURES,
                opened_at=datetime.now(UTC),
                open_until=datetime.now(UTC) + timedelta(seconds=60),
                last_error="server_error: /3/venuesearch/search answered 503",
            )
        )
    day = local_today(datetime.now(UTC), "America/New_York") + timedelta(days=2)
    search = [sys.executable, "-m", "resywatch", "search", "--date", str(day), "--json"]

    cron_pass, _ = discovery_pass(env)  # a separate invocation while the breaker is open
    assert cron_pass["counts"]["failed"] == 2 and cron_pass["counts"]["requests"] == 0
    assert sandbox.state.traffic.requests() == []

    # The cooldown ends. The trial answers slowly, so that the other process asks while it
    # is out; the other one is refused at once.
    control(sandbox, "/faults", {"route": SEARCH, "latency_ms": 2000})
    with db.write() as session:
        session.execute(update(ResyHost).values(open_until=datetime.now(UTC)))
    running = [
        subprocess.Popen(search, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    while all(p.poll() is None for p in running):
        time.sleep(0.02)
    clear_faults(sandbox)  # the winner's next pages need not wait
    outcomes = [(p.wait(timeout=60), *p.communicate()) for p in running]
    assert sorted(code for code, _, _ in outcomes) == [0, 1], outcomes
    [refused] = [json.loads(out)["error"] for code, out, _ in outcomes if code]
    assert refused["code"] == "circuit_open" and "half-open" in refused["message"]
    log = sandbox.state.traffic.requests()
    assert len([e for e in log if e["at"] < log[0]["at"] + 2.0]) == 1  # exactly one trial
    state = breaker_state(db)
    assert (state.consecutive_failures, state.opened_at) == (0, None)
    figures.report(
        "breaker shared by processes: one trial call",
        calls_while_open=0,
        trial_calls=1,
        refused_during_trial=1,
    )


SOAK_S = 120  # the long form; the short one (CI) runs 6 s


@pytest.mark.timeout(SOAK_S + 120)
def test_three_workers_stay_within_one_budget(
    env: dict[str, str], sandbox: SandboxHandle, figures: Any, full_run: bool
) -> None:
    """Goal 14: three supervisors that want more than the budget (56 searches a 30 s
    cycle against 1 request a second) together stay within rate * T + burst over the whole
    run and every window of it, and use it."""
    soak_s = SOAK_S if full_run else 6
    rate = 1.0
    env = env | {
        "RESYWATCH_RESY_MAX_RPS": str(rate),
        "RESYWATCH_DISCOVERY_DAYS": "14",
        "RESYWATCH_DISCOVERY_INTERVAL_S": "30",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "resywatch", "run-forever", "--job", "discovery"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        # The soak starts with the first request: the three interpreters' start-up takes
        # seconds on a busy box (tests in parallel), and is no part of the budget's test.
        deadline = time.monotonic() + 60
        while not sandbox.state.traffic.requests() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(soak_s)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            _, err = worker.communicate(timeout=30)
            assert "Traceback" not in err, err
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    times = sorted(entry["at"] for entry in sandbox.state.traffic.requests())
    span = times[-1] - times[0]
    # The budget holds on when requests are let go; the sandbox sees them arrive, which can
    # lag a few hundred ms on a busy loop: one request of slack at 1 a second.
    assert len(times) <= rate * span + BURST + 1
    for window in (1.0, 10.0, 60.0):
        most = max(bisect.bisect_right(times, t + window) - i for i, t in enumerate(times))
        assert most <= rate * window + BURST + 1, (window, most)
    assert len(times) >= rate * span * 0.8  # the budget is used, not starved
    figures.report(
        "3 workers share one budget",
        rate=rate,
        seconds=round(span, 1),
        requests=len(times),
        bound=round(rate * span + BURST, 1),
    )
