"""How the Resy client talks to its host: connection, rate, deadline, retries, budget.

Every call goes through the host's rate limiter, has a deadline per attempt (a server that
drips its answer cannot hang a pass), is retried with full-jitter exponential backoff when it
is an idempotent read and the failure is transient, honours `Retry-After`, and is recorded in
`calls` (no secrets: the path only). A `gate`, when given, holds the politeness every process
shares: the host's request budget, a 429's pause and the circuit breaker. `POST /3/book` is
never retried: a booking that timed out may have gone through, so the caller checks the
user's reservations instead. The endpoints themselves are in `resy.client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import heapq
import http.cookiejar
import itertools
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from resywatch.resy import errors
from resywatch.resy.gate import HostGate
from resywatch.resy.pages import WEB_ORIGIN
from resywatch.resy.responses import error_for

# Resy answers 500 to clients without a browser User-Agent (RESY_API.md §2).
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
KEEPALIVE_S = 60.0


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings httpx would build (its CA bundle, SSL_CERT_* honoured), built once a
    process: building them loads the bundle, about 50 ms of CPU, for every client."""
    return httpx.create_ssl_context()


REFRESH_COOKIE = "production_refresh_token"
#: Request priorities (lower first): a look at a predicted release goes before everything
#: else of the process; a bucket scan's requests go by the order the scans were started in.
URGENT_PRIORITY = -1.0
DEFAULT_PRIORITY = 0.0


class _KeepNoRefreshCookie(http.cookiejar.DefaultCookiePolicy):
    """The client's jar never keeps a refresh cookie: it belongs to one account, is kept
    beside that account's token, and is sent only with that account's refresh."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return cookie.name != REFRESH_COOKIE and super().set_ok(cookie, request)


@dataclass(frozen=True)
class ApiCall:
    """One HTTP attempt, as written to `api_call_log`."""

    at: datetime
    method: str
    endpoint: str
    status: int | None
    latency_ms: float
    error_kind: str | None
    attempt: int


class CallLog(list[ApiCall]):
    """The calls not yet written to `api_call_log`, and how many were ever made (`made`):
    a long-lived client (run-forever's) has its calls taken after every pass (`drain`), so
    the list stays short while counts of requests made stay true across drains."""

    made: int = 0

    def append(self, call: ApiCall) -> None:
        self.made += 1
        super().append(call)

    def drain(self) -> list[ApiCall]:
        """The calls so far, removed from the log (in place: a client's twins share it)."""
        taken = self[:]
        del self[: len(taken)]
        return taken


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Try:
    """One try of a call: the request to send, and what its record names."""

    method: str
    path: str
    number: int  # 1 for the first try
    send: Callable[[], Awaitable[httpx.Response]]
    user: bool  # the request carries the user's token
    on_answer: Callable[[httpx.Response], None] | None = None  # sees a successful answer


@dataclass
class RetryPolicy:
    """How transient failures of idempotent reads are retried."""

    max_retries: int = 3
    base_s: float = 0.25  # the first wait is drawn from [0, base_s]
    cap_s: float = 8.0  # no single wait is longer (a longer Retry-After is not waited out)


class TakeTurns:
    """A semaphore whose waiters go by priority (lower first), then in arrival order.

    The client's requests queue twice (for a place in flight, then for the rate); in
    arrival order, a bucket scan's later pages would wait behind every other bucket's first
    pages, and a release watch's find behind a whole pass. By priority, the scan started
    first finishes first (its drops are reported sooner) and the urgent look goes next.
    """

    def __init__(self, value: int) -> None:
        self._free = value  # above 0 only while nobody waits
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    async def acquire(self, priority: float = 0.0) -> None:
        if self._free > 0:
            self._free -= 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._arrivals), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the turn as it was cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():  # else its waiter was cancelled
                turn.set_result(None)
                return
        self._free += 1

    @contextlib.asynccontextmanager
    async def turn(self, priority: float = 0.0) -> AsyncIterator[None]:
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()


class RateLimiter:
    """A token bucket for one host: `rate` requests a second on average, `burst` at once.
    Waiters take their tokens by priority (`TakeTurns`).

    `pause` holds every caller back (a 429's Retry-After applies to the whole host).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._turns = TakeTurns(1)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(
        self, priority: float = 0.0, then: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Take a token, by priority; `then` (the shared gate) is awaited before the next
        waiter's turn, so the process's requests reach the gate one at a time, in order,
        instead of racing each other for it."""
        async with self._turns.turn(priority):
            await self._take()
            if then is not None:
                await then()

    async def _take(self) -> None:
        while True:
            now = self._clock()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1 - 1e-9:  # a float's rounding is no reason to sleep again
                self._tokens = max(0.0, self._tokens - 1)
                return
            await self._sleep((1 - self._tokens) / self.rate)


@dataclass
class ResyTransport:
    """The connection to one Resy host and the rules every request keeps (the module
    docstring); `ResyClient` adds the endpoints."""

    base_url: str
    api_key: str | None = field(repr=False)
    auth_token: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    max_rps: float = 5.0
    max_in_flight: int = 8  # requests on the wire at once
    # Lower goes first where requests queue (a view's: `ranked`); equal ones in order.
    priority: float = DEFAULT_PRIORITY
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: httpx.AsyncBaseTransport | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic  # must advance with `sleep`
    calls: CallLog = field(default_factory=CallLog)
    # When each call is stamped as having been made: the jobs' clock (a sped-up one too).
    stamp: Callable[[], datetime] = _utc_now
    # Politeness shared with every other client of the host (other workers, cron passes).
    gate: HostGate | None = None
    # Seconds this client's requests waited for their budget (its own limiter and the gate).
    budget_wait_s: float = 0.0
    _passwords: list[str] = field(default_factory=list, repr=False)  # sent by `login`

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(
            self.max_rps, max(1, int(self.max_rps)), clock=self.clock, sleep=self.sleep
        )
        self._in_flight = TakeTurns(self.max_in_flight)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=self.transport,
            timeout=httpx.Timeout(self.timeout_s),
            # Idle connections are kept a minute (httpx's default is 5 s), so that a snipe's
            # connection is still open at its instant without requests to keep it warm.
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_S),
            verify=tls_context(),
            follow_redirects=False,  # a redirect means "log in again", never follow it
            cookies=http.cookiejar.CookieJar(policy=_KeepNoRefreshCookie()),
            headers={
                "User-Agent": USER_AGENT,
                "Origin": WEB_ORIGIN,
                "Referer": f"{WEB_ORIGIN}/",
                "X-Origin": WEB_ORIGIN,
                "Accept": "application/json, text/plain, */*",
                "Accept-Encoding": "gzip, deflate",
            },
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def in_lane(self, limiter: RateLimiter, gate: HostGate | None) -> Self:
        """This client's connections and credentials, its requests admitted by `limiter`
        and `gate` instead (a snipe's own budget): neither the shared budget nor the queue
        of requests in flight holds them back. Closing the view is closing this client."""
        view = copy.copy(self)
        view.limiter, view.gate, view.budget_wait_s = limiter, gate, 0.0
        view._in_flight = TakeTurns(self.max_in_flight)
        return view

    def ranked(self, priority: float) -> Self:
        """This client, its requests queued at `priority` (lower first) among the others of
        this process: the same connections, budget, gate and call log."""
        view = copy.copy(self)
        view.priority = priority
        return view

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    def with_token(self, auth_token: str | None) -> Self:
        """This client for another account: the same connections, rate, budget, gate and
        call log, with `auth_token` on user calls. Close only the original."""
        twin = copy.copy(self)
        twin.auth_token = auth_token
        return twin

    def secrets(self) -> list[str]:
        """What this client sent and must never repeat: its key, its token, passwords."""
        return [s for s in (self.api_key, self.auth_token, *self._passwords) if s]

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        user: bool = False,
        retry: bool = True,
        counted: bool = True,
        cookies: Mapping[str, str] | None = None,
        on_answer: Callable[[httpx.Response], None] | None = None,
    ) -> bytes:
        """The body of a successful answer, as bytes (parsed by the caller's model).
        `cookies` go with this request only; `on_answer` sees the answer's headers."""
        headers = self._auth_headers(user=user)
        if cookies:
            # A header, not httpx's per-request cookies (deprecated: they would also be
            # ambiguous about the jar, which must never keep a refresh cookie).
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        attempts = AsyncRetrying(
            stop=stop_after_attempt(1 + (self.retry.max_retries if retry else 0)),
            wait=self._wait,
            retry=retry_if_exception(self._should_retry),
            sleep=self.sleep,
            reraise=True,
        )
        send = functools.partial(
            self._http.request,
            method,
            path,
            params=params,
            json=json,
            data=data,
            headers=headers,
        )
        async for attempt in attempts:
            with attempt:
                number = attempt.retry_state.attempt_number
                try_ = _Try(method, path, number, send, user, on_answer)
                return await self._attempt(try_, counted)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _attempt(self, attempt: _Try, counted: bool = True) -> bytes:
        async with self._in_flight.turn(self.priority):
            asked = self.clock()
            # The shared budget, pause and breaker (CircuitOpen: no request) in turn.
            gate = self.gate
            await self.limiter.acquire(
                self.priority, None if gate is None else lambda: gate.before_call(self.host)
            )
            self.budget_wait_s += self.clock() - asked
            try:
                body = await self._exchange(attempt)
            except errors.ResyError as exc:
                if self.gate is not None and counted:
                    await self.gate.after_call(self.host, exc)
                raise
            if self.gate is not None:
                await self.gate.after_call(self.host, None)
            return body

    async def _exchange(self, attempt: _Try) -> bytes:
        """One request and its answer, recorded in `calls`; any failure is a ResyError."""
        path = attempt.path
        status: int | None = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await attempt.send()
        except (TimeoutError, httpx.TimeoutException):
            self._record(attempt, status, started, errors.ResyTimeout.kind)
            raise errors.ResyTimeout(
                f"{path}: Resy did not answer within {self.timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            self._record(attempt, status, started, errors.ConnectionFailed.kind)
            raise errors.ConnectionFailed(
                f"{path}: cannot reach {self.host}: {type(exc).__name__}"
            ) from None
        status = response.status_code
        try:
            if status >= 300:
                raise error_for(response, path, self.secrets(), user=attempt.user)
            if "json" not in response.headers.get("content-type", "json"):
                # A firewall challenge page served with 200: worth another try later.
                raise errors.ServerError(
                    f"{path} answered {status} with a body that is not JSON", status=status
                )
        except errors.ResyError as exc:
            if isinstance(exc, errors.RateLimited) and exc.retry_after:
                self.limiter.pause(min(exc.retry_after, self.retry.cap_s))
            self._record(attempt, status, started, exc.kind)
            raise
        self._record(attempt, status, started, None)
        if attempt.on_answer is not None:
            attempt.on_answer(response)
        return response.content

    def _auth_headers(self, *, user: bool) -> dict[str, str]:
        if not self.api_key:
            raise errors.MissingCredentials()
        headers = {"Authorization": f'ResyAPI api_key="{self.api_key}"'}
        if not user:
            # Key-only calls (find, search, venue, config, calendar, login) never carry the
            # user's token: Resy answers a stale one with a redirect to its login page even
            # where no login is needed, and an expired token must not stop discovery.
            return headers
        if not self.auth_token:
            raise errors.MissingCredentials(
                "not logged in: run `resywatch auth login` (or set RESYWATCH_RESY_AUTH_TOKEN)"
            )
        # The web app sends the token twice; some endpoints read one, some the other.
        headers["X-Resy-Auth-Token"] = self.auth_token
        headers["X-Resy-Universal-Auth"] = self.auth_token
        return headers

    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, errors.ResyError) or exc.permanent:
            return False
        # Told to stay away longer than we would ever wait: give up now.
        return not (
            isinstance(exc, errors.RateLimited) and (exc.retry_after or 0) > self.retry.cap_s
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, errors.RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        jitter = wait_random_exponential(multiplier=self.retry.base_s, max=self.retry.cap_s)
        return float(jitter(state))

    def _record(
        self, attempt: _Try, status: int | None, started: float, error_kind: str | None
    ) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        self.calls.append(
            ApiCall(
                self.stamp(),
                attempt.method,
                attempt.path,
                status,
                latency_ms,
                error_kind,
                attempt.number,
            )
        )
