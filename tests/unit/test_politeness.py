"""The politeness every process shares through the database (budget, Retry-After pause,
circuit breaker), on SQLite and PostgreSQL, with a virtual clock: nothing here really waits.

Two `SharedPoliteness` instances on their own `Database` handles stand for two processes.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import select

from resywatch.config import Settings
from resywatch.db.engine import Database
from resywatch.db.models import ResyHost
from resywatch.db.plain import host_states
from resywatch.errors import DatabaseUnavailable
from resywatch.resy import errors
from resywatch.resy.client import ResyClient
from resywatch.resy.transport import RetryPolicy
from resywatch.services.politeness import MAX_PAUSE, PolitenessPolicy, SharedPoliteness

HOST = "resy.test"
START = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
SECRET = "test-api-key-0123456789"


class VirtualTime:
    """A `Clock` that only moves when someone sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.at = START
        self.elapsed = 0.0  # exact, where a datetime rounds to microseconds
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        self.elapsed += seconds


def policy(**changes: Any) -> PolitenessPolicy:
    values: dict[str, Any] = {
        "rate": 10.0,
        "burst": 5,
        "retry_after_cap_s": 8.0,
        "breaker_failures": 5,
        "breaker_cooldown_s": 30.0,
        "probe_s": 15.0,
        "secrets": (SECRET,),
    }
    return PolitenessPolicy(**(values | changes))


@pytest.fixture
def time_() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def workers(database_url: str, time_: VirtualTime) -> Iterator[Callable[..., SharedPoliteness]]:
    """`workers()` builds one more "process": its own Database handle, same database."""
    opened: list[Database] = []

    def make(**changes: Any) -> SharedPoliteness:
        db = Database(database_url)
        opened.append(db)
        return SharedPoliteness(db, policy(**changes), clock=time_)

    yield make
    for db in opened:
        db.dispose()


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def admitted(gate: SharedPoliteness) -> bool:
    """Whether a call may go now (False: CircuitOpen)."""
    try:
        run(gate.before_call(HOST))
    except errors.CircuitOpen:
        return False
    return True


def fail(gate: SharedPoliteness, times: int = 1, error: errors.ResyError | None = None) -> None:
    for _ in range(times):
        run(gate.after_call(HOST, error or errors.ServerError("/x answered 503", status=503)))


def row(gate: SharedPoliteness) -> ResyHost:
    [state] = host_states(gate.db)
    return state


# -- budget ----------------------------------------------------------------------------------


def test_the_budget_holds_across_instances_over_any_window(
    workers: Callable[..., SharedPoliteness], time_: VirtualTime
) -> None:
    """GCRA: over any window of T seconds, at most rate * T + burst requests, all instances
    together; after a quiet spell a burst goes at once, then the steady rate."""
    gates = [workers(), workers()]
    sent: list[float] = []
    for number in range(240):
        if number % 60 == 0 and number:
            time_.advance(4.0)  # a quiet spell: the burst is available again
        run(gates[number % 2].before_call(HOST))
        sent.append(time_.monotonic())
    rate, burst = 10.0, 5
    for window in (0.0, 0.25, 1.0, 3.0, 10.0, 60.0):
        busiest = max(
            bisect.bisect_right(sent, start + window + 1e-9) - index
            for index, start in enumerate(sent)
        )
        assert busiest <= rate * window + burst, (window, busiest)
    assert sent[:burst] == [0.0] * burst  # the budget is used, not only bounded
    assert sent[burst] == pytest.approx(0.1)
    assert sent[59] == pytest.approx((59 - burst + 1) * 0.1)


# -- Retry-After -----------------------------------------------------------------------------


def test_a_retry_after_pause_holds_back_every_instance(
    workers: Callable[..., SharedPoliteness], time_: VirtualTime
) -> None:
    told, other = workers(), workers()
    run(told.before_call(HOST))
    fail(told, error=errors.RateLimited("429", retry_after=7))
    paused_at = time_.monotonic()
    sent = []
    for _ in range(4):
        run(other.before_call(HOST))
        sent.append(time_.monotonic())
    # Nobody goes before the pause ends; then the steady rate resumes, without a burst.
    assert sent[0] == pytest.approx(paused_at + 7)
    assert sent[1:] == pytest.approx([paused_at + 7 + 0.1 * n for n in (1, 2, 3)])
    assert row(told).consecutive_failures == 1 and row(told).opened_at is None


def test_a_retry_after_beyond_the_cap_opens_the_breaker_instead_of_sleeping(
    workers: Callable[..., SharedPoliteness], time_: VirtualTime
) -> None:
    told, other = workers(), workers()
    fail(told, error=errors.RateLimited("429", retry_after=900))
    with pytest.raises(errors.CircuitOpen) as raised:
        run(other.before_call(HOST))
    assert time_.slept == []  # refused at once, not waited out
    assert raised.value.until == START + timedelta(seconds=900)
    assert "rate_limited" in str(raised.value) and "21:15:00 UTC" in str(raised.value)
    time_.advance(900)
    assert admitted(other)  # the trial call

    fail(told, error=errors.RateLimited("429", retry_after=10**7))  # bounded at 6 h
    assert row(told).open_until == time_.at + MAX_PAUSE


# -- breaker ---------------------------------------------------------------------------------


def test_five_failures_in_a_row_open_it_and_then_no_call_is_made(
    workers: Callable[..., SharedPoliteness], time_: VirtualTime
) -> None:
    gate = workers()
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        return httpx.Response(503, text="<html>down</html>", headers={"x-cdn": "Imperva"})

    client = ResyClient(
        base_url=f"https://{HOST}",
        api_key=SECRET,
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_retries=3),
        sleep=time_.sleep,
        clock=time_.monotonic,
        max_rps=1000.0,
        gate=gate,
    )

    async def searches(n: int) -> list[BaseException | None]:
        outcomes: list[BaseException | None] = []
        for _ in range(n):
            try:
                await client.search(day=START.date(), party_size=2)
                outcomes.append(None)
            except errors.ResyError as exc:
                outcomes.append(exc)
        return outcomes

    first, second = run(searches(2))
    assert isinstance(first, errors.ServerError)  # 4 attempts, 4 failures
    assert isinstance(second, errors.CircuitOpen)  # the 5th opened it, the 6th was refused
    assert len(requests) == 5
    assert row(gate).consecutive_failures == 5
    assert row(gate).open_until == row(gate).opened_at + timedelta(seconds=30)  # type: ignore[operator]

    time_.advance(29)
    later = run(searches(10))
    assert all(isinstance(o, errors.CircuitOpen) for o in later)
    assert len(requests) == 5  # 0 calls while open, and CircuitOpen is never retried
    assert row(gate).consecutive_failures == 5  # refusals are not failures of Resy's


def test_exactly_one_trial_call_across_instances_and_success_closes(
    workers: Callable[..., SharedPoliteness], time_: VirtualTime
) -> None:
    first, second = workers(), workers()
    fail(first, 5)
    time_.advance(30)
    assert admitted(first)  # the trial call
    assert not admitted(second)
    assert not admitted(first)  # one trial per host, not per instance
    with pytest.raises(errors.CircuitOpen, match="half-open"):
        run(second.before_call(HOST))
    run(first.after_call(HOST, None))
    state = row(first)
    assert (state.consecutive_failures, state.opened_at, state.open_until) == (0, None, None)
    assert state.probe_until is None
    assert admitted(second) and admitted(first)


def test_a_failed_trial_opens_it_for_another_cooldown(
    workers: Callable[..., SharedPoliteness], time_: VirtualTime
) -> None:
    first, second = workers(), workers()
    fail(first, 5)
    time_.advance(31)
    assert admitted(second)
    fail(second, error=errors.ResyTimeout("/x: Resy did not answer within 10 s"))
    assert row(first).open_until == time_.at + timedelta(seconds=30)
    assert not admitted(first)
    time_.advance(30)
    assert admitted(first)


def test_racing_instances_get_exactly_one_trial(
    database_url: str, workers: Callable[..., SharedPoliteness], time_: VirtualTime
) -> None:
    """Eight callers in two instances race for the trial on real threads."""
    first, second = workers(), workers()
    fail(first, 5)
    time_.advance(30)

    async def race() -> list[BaseException | None]:
        return await asyncio.gather(
            *(gate.before_call(HOST) for gate in [first, second] * 4), return_exceptions=True
        )

    outcomes = run(race())
    assert sum(o is None for o in outcomes) == 1
    assert all(isinstance(o, errors.CircuitOpen) for o in outcomes if o is not None)


def test_a_trial_whose_caller_vanished_is_given_to_another_after_its_lease(
    workers: Callable[..., SharedPoliteness], time_: VirtualTime
) -> None:
    first, second = workers(), workers()
    fail(first, 5)
    time_.advance(30)
    assert admitted(first)  # ...and the process is killed before it reports
    time_.advance(14)
    assert not admitted(second)
    time_.advance(1)  # probe_s = 15
    assert admitted(second)


@pytest.mark.parametrize(
    "answer",
    [
        errors.AuthError("419", status=419),
        errors.NotFound("404", status=404),
        errors.Conflict("412"),
        errors.PaymentRequired(status=402),
    ],
)
def test_errors_that_prove_resy_is_up_do_not_trip_it(
    workers: Callable[..., SharedPoliteness], answer: errors.ResyError
) -> None:
    gate = workers()
    fail(gate, 10, error=answer)
    assert admitted(gate)
    assert row(gate).consecutive_failures == 0
    fail(gate, 4)
    fail(gate, error=answer)  # an answer ends the run of failures
    fail(gate, 4)
    assert admitted(gate) and row(gate).consecutive_failures == 4


@pytest.mark.parametrize(
    "failure",
    [
        errors.ResyTimeout("t"),
        errors.ConnectionFailed("c"),
        errors.ServerError("s", status=500),
        errors.Blocked("b", status=403),
        errors.RateLimited("r", retry_after=None),
    ],
)
def test_integration_failures_trip_it(
    workers: Callable[..., SharedPoliteness], failure: errors.ResyError
) -> None:
    gate = workers()
    fail(gate, 4, error=failure)
    assert admitted(gate)
    fail(gate, error=failure)
    assert not admitted(gate)


def test_the_last_error_is_redacted_and_bounded(workers: Callable[..., SharedPoliteness]) -> None:
    gate = workers()
    fail(gate, error=errors.ServerError(f"key {SECRET} leaked " + "x" * 900, status=500))
    state = row(gate)
    assert state.last_error is not None
    assert SECRET not in state.last_error and "***" in state.last_error
    assert len(state.last_error) == 500


# -- the client side -------------------------------------------------------------------------


class RecordingGate:
    """A HostGate that records what it is told and may refuse."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.before: list[str] = []
        self.after: list[str | None] = []

    async def before_call(self, host: str) -> None:
        self.before.append(host)
        if self.refuse:
            raise errors.CircuitOpen(until=START, failures=5, reason="server_error: 503")

    async def after_call(self, host: str, error: errors.ResyError | None) -> None:
        self.after.append(error.kind if error else None)


def gated_client(
    handler: Callable[[httpx.Request], Any], gate: RecordingGate, time_: VirtualTime, **kw: Any
) -> ResyClient:
    return ResyClient(
        base_url=f"https://{HOST}",
        api_key=SECRET,
        auth_token="eyJ0ZXN0LXRva2VuLWFiY2RlZg",
        transport=httpx.MockTransport(handler),
        sleep=time_.sleep,
        clock=time_.monotonic,
        max_rps=1000.0,
        gate=gate,
        **kw,
    )


def test_circuit_open_is_not_retried_and_sends_nothing(time_: VirtualTime) -> None:
    sent: list[httpx.Request] = []
    gate = RecordingGate(refuse=True)
    client = gated_client(
        lambda r: sent.append(r) or httpx.Response(200, json={}),
        gate,
        time_,
        retry=RetryPolicy(max_retries=3),
    )
    with pytest.raises(errors.CircuitOpen, match="open until 21:00:00 UTC after 5 failures"):
        run(client.user())
    assert gate.before == [HOST]  # one attempt, no retry
    assert (sent, gate.after, client.calls, time_.slept) == ([], [], [], [])


def test_every_attempt_outcome_is_reported(time_: VirtualTime) -> None:
    answers: list[Any] = [
        httpx.Response(200, json={"id": 1}),
        httpx.Response(404, json={"message": "no"}),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.Response(503, json={}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    gate = RecordingGate()
    client = gated_client(handler, gate, time_, retry=RetryPolicy(max_retries=0))
    for _ in range(5):
        with contextlib.suppress(errors.ResyError):
            run(client.user())
    assert gate.after == [None, "not_found", "timeout", "connection", "server_error"]
    assert len(gate.before) == 5


def test_policy_from_settings() -> None:
    settings = Settings(
        resy_max_rps=2.0,
        resy_burst=3,
        resy_breaker_failures=7,
        resy_breaker_cooldown_s=45,
        resy_timeout_s=4,
        resy_api_key=SecretStr(SECRET),
    )
    made = PolitenessPolicy.from_settings(settings)
    assert (made.rate, made.burst, made.breaker_failures, made.breaker_cooldown_s) == (
        2.0,
        3,
        7,
        45.0,
    )
    assert made.retry_after_cap_s == RetryPolicy().cap_s
    assert made.probe_s > settings.resy_timeout_s
    assert SECRET not in repr(made)


def test_a_database_that_fails_never_masks_the_outcome(tmp_path: Any) -> None:
    broken = Database(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    gate = SharedPoliteness(broken, policy())
    with pytest.raises(DatabaseUnavailable, match="shared request budget"):
        run(gate.before_call(HOST))
    run(gate.after_call(HOST, None))  # logged, not raised
    run(gate.after_call(HOST, errors.ServerError("503")))
    broken.dispose()


def test_host_states_lists_every_host(workers: Callable[..., SharedPoliteness]) -> None:
    gate = workers()
    run(gate.before_call("b.test"))
    run(gate.before_call("a.test"))
    assert [h.host for h in host_states(gate.db)] == ["a.test", "b.test"]
    with gate.db.read() as session:
        assert len(session.exec(select(ResyHost)).all()) == 2


# -- health ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "status", "text"),
    [
        ({}, "OK", "Resy circuit breaker closed"),
        ({"consecutive_failures": 3}, "OK", "closed, 3 failures in a row"),
        (
            {
                "consecutive_failures": 5,
                "opened_at": START,
                "open_until": START + timedelta(seconds=30),
            },
            "WARN",
            "Resy circuit breaker open until 21:00:30 UTC after 5 failures: server_error: ***",
        ),
        (
            {"consecutive_failures": 6, "opened_at": START, "open_until": START},
            "WARN",
            "Resy circuit breaker half-open since 21:00:00 UTC (one trial call) after 6",
        ),
        (
            {"consecutive_failures": 1, "paused_until": START + timedelta(seconds=5)},
            "WARN",
            "Resy paused by Retry-After until 21:00:05 UTC: server_error",
        ),
    ],
)
def test_the_health_check_reads_the_shared_state(
    changes: dict[str, Any], status: str, text: str
) -> None:
    from resywatch.services.health import _breaker_check

    state = ResyHost(host=HOST, last_error=f"server_error: {SECRET} " + "y" * 600, **changes)
    settings = Settings(resy_api_key=SecretStr(SECRET))
    check = _breaker_check(state, settings, START + timedelta(seconds=1))
    assert (check.name, check.status.name) == ("resy_breaker", status)
    assert text in check.message
    assert SECRET not in check.message and len(check.message) < 700
    assert _breaker_check(None, Settings(), START).status.name == "OK"
