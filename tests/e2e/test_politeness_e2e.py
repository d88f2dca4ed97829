"""Shared politeness over real loopback HTTP: a 429's pause, the request budget and the
circuit breaker hold across clients and CLI invocations that share only the database.

The sandbox runs at real speed here, so its request log's timestamps are real seconds.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sandbox_tools import control, live_config
from sqlalchemy import update

from resywatch.config import MANHATTAN
from resywatch.db.engine import Database
from resywatch.db.models import ResyHost
from resywatch.db.plain import host_states
from resywatch.resy import errors
from resywatch.resy.client import ResyClient
from resywatch.resy.transport import RetryPolicy
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN, SandboxConfig, SandboxHandle
from resywatch.services.politeness import PolitenessPolicy, SharedPoliteness
from resywatch.services.vocabulary import local_today

SEARCH = "/3/venuesearch/search"


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config(speed=1.0)


def searches(sandbox: SandboxHandle) -> list[dict[str, Any]]:
    return sandbox.state.traffic.requests(SEARCH)


def policy(**changes: Any) -> PolitenessPolicy:
    values: dict[str, Any] = {
        "rate": 20.0,
        "burst": 5,
        "retry_after_cap_s": 8.0,
        "breaker_failures": 5,
        "breaker_cooldown_s": 30.0,
        "probe_s": 15.0,
    }
    return PolitenessPolicy(**(values | changes))


def client(sandbox: SandboxHandle, db: Database, **options: Any) -> ResyClient:
    """A client as another process would have it: its own gate over its own DB handle."""
    options.setdefault("gate", SharedPoliteness(db, policy()))
    return ResyClient(
        base_url=sandbox.base_url,
        api_key=DEMO_API_KEY,
        auth_token=DEMO_AUTH_TOKEN,
        max_rps=1000.0,  # only the shared budget limits these clients
        **options,
    )


async def search(resy: ResyClient) -> None:
    day = local_today(datetime.now(UTC), "America/New_York") + timedelta(days=2)
    await resy.search(day=day, party_size=2, bounding_box=MANHATTAN, per_page=20)


def test_a_429_seen_by_one_client_pauses_another(sandbox: SandboxHandle, database_url: str) -> None:
    control(
        sandbox, "/faults", {"route": SEARCH, "fail_next": 1, "fail_status": 429, "retry_after": 2}
    )
    first_db, second_db = Database(database_url), Database(database_url)
    let_go: list[float] = []

    async def scenario() -> None:
        async with (
            client(sandbox, first_db, gate=RecordedPoliteness(first_db, let_go)) as told,
            client(sandbox, second_db, gate=RecordedPoliteness(second_db, let_go)) as other,
        ):

            async def other_worker() -> None:
                while not any(h.paused_until for h in host_states(second_db)):
                    await asyncio.sleep(0.02)
                await asyncio.gather(*(search(other) for _ in range(6)))

            await asyncio.gather(search(told), other_worker())

    try:
        asyncio.run(scenario())
    finally:
        first_db.dispose()
        second_db.dispose()
    log = searches(sandbox)
    [refused] = [entry for entry in log if entry["status"] == 429]
    after = [entry["at"] - refused["at"] for entry in log if entry["seq"] > refused["seq"]]
    assert len(after) == 7  # the retry and the other client's six searches
    assert min(after) >= 2.0 - 0.02, after  # nobody called during the pause
    assert min(after) < 2.5  # and the pause was not overdone
    # After the pause the shared budget (20/s) spaces the seven requests out, no burst: judged
    # on the instants their admissions were decided (arrivals bunch on a busy event loop).
    resumed = sorted(t for t in let_go if t > refused["at"] + 1.0)
    assert len(resumed) == 7
    assert resumed[-1] - resumed[0] >= 6 / 20 - 0.1  # a burst would take 2 intervals


class RecordedPoliteness(SharedPoliteness):
    """Notes the instant at which the shared budget let each request go: the time its
    admission was decided on, so neither a busy event loop (which bunches arrivals at the
    sandbox) nor a thread paused after the decision (on a loaded machine) can move it."""

    def __init__(self, db: Database, let_go: list[float]) -> None:
        super().__init__(db, policy())
        self.let_go = let_go
        self._decided = threading.local()

    def _now(self) -> datetime:
        self._decided.at = super()._now()
        return self._decided.at

    def _admit(self, host: str) -> float:
        wait = super()._admit(host)
        if wait <= 0:
            self.let_go.append(self._decided.at.timestamp())
        return wait


def test_two_clients_share_one_budget(sandbox: SandboxHandle, database_url: str) -> None:
    dbs = [Database(database_url), Database(database_url)]
    let_go: list[float] = []

    async def hammer() -> None:
        async with (
            client(sandbox, dbs[0], gate=RecordedPoliteness(dbs[0], let_go)) as one,
            client(sandbox, dbs[1], gate=RecordedPoliteness(dbs[1], let_go)) as two,
        ):
            await asyncio.gather(*(search(resy) for resy in [one, two] * 20))

    try:
        asyncio.run(hammer())
    finally:
        for db in dbs:
            db.dispose()
    assert len(searches(sandbox)) == len(let_go) == 40
    times = sorted(let_go)
    for window in (0.0, 0.1, 0.5, 1.0):
        busiest = max(bisect.bisect_right(times, t + window) - i for i, t in enumerate(times))
        assert busiest <= 20 * window + 5 + 1, (window, busiest)  # +1: clock granularity
    arrived = sorted(entry["at"] for entry in searches(sandbox))
    # Resy saw the last request 35 intervals after the burst began, counted from the first
    # admission (the first arrival itself may be late on a loaded machine).
    assert arrived[-1] - times[0] >= (40 - 5) / 20 - 0.1


def resywatch_search(cli: Any, env: dict[str, str], expect: int) -> Any:
    day = local_today(datetime.now(UTC), "America/New_York") + timedelta(days=2)
    result = cli("search", "--date", str(day), "--party", "2", "--json", env=env, expect=expect)
    return json.loads(result.stdout)


def health_checks(cli: Any, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each check by name (WARN overall: in these tests no job has run yet)."""
    report = json.loads(cli("health", "--json", env=env, expect=1).stdout)
    return {check["name"]: check for check in report["checks"]}


def test_a_breaker_opened_by_5xx_stops_every_invocation_until_a_trial_closes_it(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, database_url: str
) -> None:
    control(sandbox, "/faults", {"route": SEARCH, "error_rate": 1.0})
    # 4 attempts (3 retries) fail; the 5th failure, in the next invocation, opens it.
    assert resywatch_search(cli, env, expect=1)["error"]["code"] == "server_error"
    opened = resywatch_search(cli, env, expect=1)["error"]
    assert opened["code"] == "circuit_open" and "after 5 failures" in opened["message"]
    assert len(searches(sandbox)) == 5

    control(sandbox, "/faults", {"route": SEARCH, "error_rate": 0.0})  # Resy is back...
    refused = resywatch_search(cli, env, expect=1)["error"]
    assert refused["code"] == "circuit_open"
    assert "server_error" in refused["message"]  # says why
    checks = health_checks(cli, env)
    breaker, auth = checks["resy_breaker"], checks["resy_auth"]
    assert breaker["status"] == "WARN"
    assert breaker["message"].startswith("Resy circuit breaker open until ")
    assert "after 5 failures: server_error" in breaker["message"]
    assert DEMO_API_KEY not in breaker["message"]
    assert auth["status"] == "WARN" and "breaker is open" in auth["message"]
    assert len(searches(sandbox)) == 5  # ...but nobody asked it during the cooldown
    assert not [e for e in sandbox.state.traffic.requests() if e["route"] == "/2/user"]

    db = Database(database_url)  # the cooldown passes
    try:
        with db.write() as session:
            session.execute(
                update(ResyHost).values(open_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert resywatch_search(cli, env, expect=0)["venues"] is not None  # the trial
        [state] = host_states(db)
        assert (state.consecutive_failures, state.opened_at) == (0, None)
    finally:
        db.dispose()
    after_trial = [e["status"] for e in searches(sandbox)][5:]
    assert after_trial and set(after_trial) == {200}  # the trial, then the next pages
    checks = health_checks(cli, env)
    assert checks["resy_breaker"]["status"] == checks["resy_auth"]["status"] == "OK"


def test_circuit_open_in_the_client_sends_nothing(
    sandbox: SandboxHandle, database_url: str
) -> None:
    db = Database(database_url)

    async def scenario() -> tuple[Any, Any]:
        async with client(sandbox, db, retry=RetryPolicy(max_retries=0)) as resy:
            for _ in range(5):
                with pytest.raises(errors.ServerError):
                    await search(resy)
            with pytest.raises(errors.CircuitOpen) as raised:
                await search(resy)
            return raised.value, resy.calls

    control(sandbox, "/faults", {"route": SEARCH, "fail_next": 5, "fail_status": 502})
    try:
        refused, calls = asyncio.run(scenario())
    finally:
        db.dispose()
    assert refused.failures == 5 and refused.until is not None
    assert len(calls) == len(searches(sandbox)) == 5  # recorded calls are real requests only
