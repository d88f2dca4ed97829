"""The Resy HTTP client: the only code that knows Resy's URLs, headers and status codes.

One client per invocation (it keeps its connections warm). Every call goes through the
host's rate limiter, has a deadline per attempt (a server that drips its answer cannot hang
a pass), is retried with full-jitter exponential backoff when it is an idempotent read and
the failure is transient, honours `Retry-After`, and is recorded in `calls` (no secrets:
the path only). A `gate`, when given, holds the politeness every process shares: the host's
request budget, a 429's pause and the circuit breaker. `POST /3/book` is never retried: a
booking that timed out may have gone through, so the caller checks the user's reservations
instead.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from resywatch.redact import redact_text, secret_forms
from resywatch.resy import errors
from resywatch.resy.gate import HostGate
from resywatch.resy.models import (
    BookResponse,
    CalendarResponse,
    DetailsResponse,
    FindResponse,
    LoginResponse,
    Reservation,
    ReservationsResponse,
    SearchHit,
    SearchPage,
    SearchResponse,
    User,
    VenueConfigResponse,
    VenueResponse,
)

if TYPE_CHECKING:
    from resywatch.config import Settings

# Resy answers 500 to clients without a browser User-Agent (RESY_API.md §2).
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
WEB_ORIGIN = "https://resy.com"
VENUE_PAGE = WEB_ORIGIN + "/cities/{city}/venues/{slug}?date={day}&seats={party}"
BoundingBox = tuple[float, float, float, float]
Model = TypeVar("Model", bound=BaseModel)


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


@dataclass
class RetryPolicy:
    """How transient failures of idempotent reads are retried."""

    max_retries: int = 3
    base_s: float = 0.25  # the first wait is drawn from [0, base_s]
    cap_s: float = 8.0  # no single wait is longer (a longer Retry-After is not waited out)


class RateLimiter:
    """A token bucket for one host: `rate` requests a second on average, `burst` at once.

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
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self.rate)


@dataclass
class ResyClient:
    """Async client for one Resy host. Use as `async with ResyClient(...) as resy:`."""

    base_url: str
    api_key: str | None = field(repr=False)
    auth_token: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    max_rps: float = 5.0
    max_in_flight: int = 8  # requests on the wire at once
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: httpx.AsyncBaseTransport | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic  # must advance with `sleep`
    calls: list[ApiCall] = field(default_factory=list)
    # Politeness shared with every other client of the host (other workers, cron passes).
    gate: HostGate | None = None
    _passwords: list[str] = field(default_factory=list, repr=False)  # sent by `login`

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(
            self.max_rps, max(1, int(self.max_rps)), clock=self.clock, sleep=self.sleep
        )
        self._in_flight = asyncio.Semaphore(self.max_in_flight)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=self.transport,
            timeout=httpx.Timeout(self.timeout_s),
            follow_redirects=False,  # a redirect means "log in again", never follow it
            headers={
                "User-Agent": USER_AGENT,
                "Origin": WEB_ORIGIN,
                "Referer": f"{WEB_ORIGIN}/",
                "X-Origin": WEB_ORIGIN,
                "Accept": "application/json, text/plain, */*",
                "Accept-Encoding": "gzip, deflate",
            },
        )

    async def __aenter__(self) -> ResyClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    def secrets(self) -> list[str]:
        """What this client sent and must never repeat: its key, its token, passwords."""
        return [s for s in (self.api_key, self.auth_token, *self._passwords) if s]

    # -- endpoints -----------------------------------------------------------------

    async def find(
        self,
        venue_id: int,
        day: date,
        party_size: int,
        *,
        method: Literal["GET", "POST"] = "GET",
    ) -> FindResponse:
        """A venue's slots for a day and party size (`/4/find`, GET query or POST JSON)."""
        query = {
            "venue_id": venue_id,
            "day": day.isoformat(),
            "party_size": party_size,
            "lat": 0,
            "long": 0,
        }
        if method == "GET":
            body = await self._call("GET", "/4/find", params=query)
        else:
            body = await self._call("POST", "/4/find", json=query)
        return _parse(FindResponse, body, "/4/find")

    async def details(self, config_token: str, day: date, party_size: int) -> DetailsResponse:
        """The book token and the quote for one slot (`POST /3/details`)."""
        payload = {
            "config_id": config_token,
            "day": day.isoformat(),
            "party_size": party_size,
            "commit": 1,  # without it Resy returns no book token
        }
        body = await self._call("POST", "/3/details", json=payload, user=True)
        details = _parse(DetailsResponse, body, "/3/details")
        if details.book_token is None:
            # commit=1 was sent: no token means the venue wants a captcha solved first.
            raise errors.CaptchaRequired(
                "this venue asks for a captcha: book it in the Resy app (/3/details gave no "
                "book token)"
            )
        return details

    async def book(
        self, book_token: str, payment_method_id: int | None, *, counted: bool = True
    ) -> BookResponse:
        """Book with a token from `details`. Sent once: never retried. `counted=False`: a
        failure is not reported to the shared breaker (a speculative book on a predicted
        token, whose refusals say nothing about Resy's health)."""
        form = {"book_token": book_token, "source_id": "resy.com-venue-details"}
        if payment_method_id is not None:
            form["struct_payment_method"] = json.dumps({"id": payment_method_id})
        body = await self._call(
            "POST", "/3/book", data=form, user=True, retry=False, counted=counted
        )
        return _parse(BookResponse, body, "/3/book")

    async def cancel(self, resy_token: str) -> dict[str, Any]:
        """Cancel a reservation by its `resy_token`. Not retried: it changes state."""
        body = await self._call(
            "POST", "/3/cancel", data={"resy_token": resy_token}, user=True, retry=False
        )
        answer = json.loads(body)
        return answer if isinstance(answer, dict) else {}

    async def venue(self, venue_id: int) -> VenueResponse:
        body = await self._call("GET", "/3/venue", params={"id": venue_id})
        return _parse(VenueResponse, body, "/3/venue")

    async def venue_by_slug(self, url_slug: str, location: str) -> VenueResponse:
        """A venue from its resy.com page's slug and city (`/3/venue?url_slug=&location=`,
        as a 2026 public note on Resy's API gives it)."""
        params = {"url_slug": url_slug, "location": location}
        body = await self._call("GET", "/3/venue", params=params)
        return _parse(VenueResponse, body, "/3/venue")

    async def venue_config(self, venue_id: int) -> VenueConfigResponse:
        body = await self._call("GET", "/2/config", params={"venue_id": venue_id})
        return _parse(VenueConfigResponse, body, "/2/config")

    async def calendar(
        self, venue_id: int, party_size: int, start: date, end: date
    ) -> CalendarResponse:
        params = {
            "venue_id": venue_id,
            "num_seats": party_size,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
        }
        body = await self._call("GET", "/4/venue/calendar", params=params)
        return _parse(CalendarResponse, body, "/4/venue/calendar")

    async def search(
        self,
        *,
        day: date,
        party_size: int,
        query: str = "",
        bounding_box: BoundingBox | None = None,
        time_filter: str | None = None,
        page: int = 1,
        per_page: int = 100,
        availability: bool = True,
    ) -> SearchPage:
        """One page of venue search, with each venue's slots when `availability` is on."""
        slot_filter: dict[str, Any] = {"day": day.isoformat(), "party_size": party_size}
        if time_filter:
            slot_filter["time_filter"] = time_filter
        payload: dict[str, Any] = {
            "query": query,
            "page": page,
            "per_page": per_page,
            "types": ["venue"],
            "availability": availability,
            "order_by": "availability",
            "slot_filter": slot_filter,
        }
        if bounding_box is not None:
            payload["geo"] = {"bounding_box": list(bounding_box)}
        body = await self._call("POST", "/3/venuesearch/search", json=payload)
        found = _parse(SearchResponse, body, "/3/venuesearch/search")
        return SearchPage(
            hits=found.search.hits,
            page=page,
            total_pages=found.total_pages,
            total_hits=found.total_hits,
        )

    async def search_all(
        self, *, max_pages: int = 10, per_page: int = 100, **query: Any
    ) -> list[SearchHit]:
        """Every page of a search (up to `max_pages`). Any page failing fails the whole.

        Pages are read until the hits run out (an empty or short page, the page count or the
        hit count Resy gives): nothing says venues with slots come first (hits with
        `availability: null` or no slots are mixed in), so a slot-less hit stops nothing.
        """
        first = await self.search(page=1, per_page=per_page, **query)
        hits, page = list(first.hits), first
        while page.page < max_pages and _more_pages(page, len(hits), per_page):
            page = await self.search(page=page.page + 1, per_page=per_page, **query)
            hits.extend(page.hits)
        return hits

    async def user(self) -> User:
        body = await self._call("GET", "/2/user", user=True)
        return _parse(User, body, "/2/user")

    async def reservations(self, *, kind: str = "upcoming", limit: int = 100) -> list[Reservation]:
        body = await self._call(
            "GET",
            "/3/user/reservations",
            params={"type": kind, "limit": limit, "offset": 0},
            user=True,
        )
        found = _parse(ReservationsResponse, body, "/3/user/reservations")
        return [
            r.model_copy(update={"venue_name": found.venues[str(r.venue_id)].name})
            if str(r.venue_id) in found.venues
            else r
            for r in found.reservations
        ]

    async def login(self, email: str, password: str) -> LoginResponse:
        """Exchange email and password for an auth token (`POST /3/auth/password`)."""
        # Masked in any error built from the answer, as sent (form-encoded) or decoded.
        self._passwords += secret_forms(password)
        body = await self._call(
            "POST", "/3/auth/password", data={"email": email, "password": password}
        )
        return _parse(LoginResponse, body, "/3/auth/password")

    # -- transport -----------------------------------------------------------------

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
    ) -> bytes:
        """The body of a successful answer, as bytes (parsed by the caller's model)."""
        headers = self._auth_headers(user=user)
        attempts = AsyncRetrying(
            stop=stop_after_attempt(1 + (self.retry.max_retries if retry else 0)),
            wait=self._wait,
            retry=retry_if_exception(self._should_retry),
            sleep=self.sleep,
            reraise=True,
        )
        send = functools.partial(
            self._http.request, method, path, params=params, json=json, data=data, headers=headers
        )
        async for attempt in attempts:
            with attempt:
                number = attempt.retry_state.attempt_number
                return await self._attempt(method, path, number, send, user=user, counted=counted)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _attempt(
        self,
        method: str,
        path: str,
        number: int,
        send: Callable[[], Awaitable[httpx.Response]],
        *,
        user: bool,
        counted: bool = True,
    ) -> bytes:
        async with self._in_flight:
            await self.limiter.acquire()
            if self.gate is not None:  # shared budget, pause, breaker: CircuitOpen, no request
                await self.gate.before_call(self.host)
            try:
                body = await self._exchange(method, path, number, send, user=user)
            except errors.ResyError as exc:
                if self.gate is not None and counted:
                    await self.gate.after_call(self.host, exc)
                raise
            if self.gate is not None:
                await self.gate.after_call(self.host, None)
            return body

    async def _exchange(
        self,
        method: str,
        path: str,
        number: int,
        send: Callable[[], Awaitable[httpx.Response]],
        *,
        user: bool,
    ) -> bytes:
        """One request and its answer, recorded in `calls`; any failure is a ResyError."""
        status: int | None = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await send()
        except (TimeoutError, httpx.TimeoutException):
            self._record(method, path, status, started, errors.ResyTimeout.kind, number)
            raise errors.ResyTimeout(
                f"{path}: Resy did not answer within {self.timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            self._record(method, path, status, started, errors.ConnectionFailed.kind, number)
            raise errors.ConnectionFailed(
                f"{path}: cannot reach {self.host}: {type(exc).__name__}"
            ) from None
        status = response.status_code
        try:
            if status >= 300:
                raise _error_for(response, path, self.secrets(), user=user)
            if "json" not in response.headers.get("content-type", "json"):
                # A firewall challenge page served with 200: worth another try later.
                raise errors.ServerError(
                    f"{path} answered {status} with a body that is not JSON", status=status
                )
        except errors.ResyError as exc:
            if isinstance(exc, errors.RateLimited) and exc.retry_after:
                self.limiter.pause(min(exc.retry_after, self.retry.cap_s))
            self._record(method, path, status, started, exc.kind, number)
            raise
        self._record(method, path, status, started, None, number)
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
        self,
        method: str,
        path: str,
        status: int | None,
        started: float,
        error_kind: str | None,
        attempt: int,
    ) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        self.calls.append(
            ApiCall(datetime.now(UTC), method, path, status, latency_ms, error_kind, attempt)
        )


def _more_pages(page: SearchPage, seen: int, per_page: int) -> bool:
    """Whether a search has hits after `page` (`seen` hits read so far)."""
    if not page.hits:
        return False
    if page.total_pages is not None:
        return page.page < page.total_pages
    if page.total_hits is not None:
        return seen < page.total_hits
    return len(page.hits) >= per_page  # Resy did not say: a full page means more


def _parse(model: type[Model], body: bytes, endpoint: str) -> Model:
    """Parse and validate in one pass: fields no model names are skipped, never built."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            raise errors.ServerError(f"{endpoint} answered with a body that is not JSON") from None
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise errors.ResyError(
            f"unexpected response from {endpoint}: {where}: {first['msg']}"
        ) from None


LOGIN_PATHS = frozenset({"/3/auth/password", "/4/auth/password"})


def _error_for(
    response: httpx.Response, path: str, secrets: list[str], *, user: bool = False
) -> errors.ResyError:
    """Resy's status codes (RESY_API.md §6) as typed errors. Resy's own words are quoted
    with every secret the request carried masked: an answer may echo the request back.
    `user`: the call carried the user's token, so a refusal means the token, not the API key."""
    status = response.status_code
    body = _json_or_none(response)
    message = body.get("message") if isinstance(body, dict) else None
    message = redact_text(str(message), secrets) if message else None
    # `X-CDN: Imperva` comes on Resy's ordinary answers too (200s, its JSON 403): only an
    # answer that is not Resy's JSON is the firewall's (chi-chi's isImpervaChallenge).
    waf = body is None
    detail = f"{path} answered {status}" + (f": {message}" if message else "")
    if status in (301, 302, 303, 307, 308) or status == 419:
        return _refusal(path, status, detail, user=user)
    if status == 402:
        return errors.PaymentRequired(status=status)
    if status == 403:
        if waf:
            return errors.Blocked(f"Resy's firewall blocked the request ({detail})", status=status)
        return errors.PaymentNotAccepted(message or None, status=status)
    if status == 404:
        if path == "/3/book":
            return errors.SlotGone(status=status)
        return errors.NotFound(detail, status=status)
    if status == 412:
        booked = body if isinstance(body, dict) else {}
        # "You already hold it": Resy names the reservation under `specs` (AbhiSivaprasad's
        # client, a public zod schema of the body); older samples put it at the top level.
        specs = booked.get("specs")
        held = specs if isinstance(specs, dict) and "reservation_id" in specs else booked
        token = held.get("resy_token")
        return errors.Conflict(
            detail,
            reservation_id=_int_or_none(held.get("reservation_id")),
            resy_token=token if isinstance(token, str) else None,
        )
    if status == 429:
        return errors.RateLimited(detail, retry_after=_retry_after(response))
    if status == 502 and not _challenge(response, waf):
        # Resy's 502 is its answer to malformed or unexpected input (Cierge's
        # ErrBadGateway): asking again the same way cannot help, and Resy is not down.
        return errors.BadRequest(f"Resy could not use the request ({detail})", status=status)
    if status >= 500:
        cause = " (firewall challenge)" if _challenge(response, waf) else ""
        return errors.ServerError(detail + cause, status=status)
    return errors.BadRequest(detail, status=status)


def _challenge(response: httpx.Response, not_json: bool) -> bool:
    """A firewall page: not Resy's JSON, and HTML or a page marked by the CDN (the header
    alone proves nothing: Resy's own answers carry it, empty ones included)."""
    html = "html" in response.headers.get("content-type", "")
    marked = response.headers.get("x-cdn", "").lower() == "imperva" and bool(response.content)
    return not_json and (html or marked)


def _refusal(path: str, status: int, detail: str, *, user: bool) -> errors.AuthError:
    """A 419 or a redirect to the login page, said in terms of what the user can fix."""
    if path in LOGIN_PATHS and status == 419:
        # resolved-bot: "Resy servers return a 419 if the auth parameters were invalid".
        return errors.LoginRefused(
            f"Resy refused the login ({status}): wrong email or password (or a stale "
            "`[resy] api_key`, if you set one)",
            status=status,
        )
    if user:
        return errors.AuthExpired(
            f"Resy no longer accepts your auth token ({detail}; tokens last about 45 days): "
            "run `resywatch auth login`",
            status=status,
        )
    # No user token was sent: only the API key can have been refused.
    return errors.AuthError(
        f"Resy refused the API key ({detail}): check `[resy] api_key` or RESYWATCH_RESY_API_KEY",
        status=status,
    )


def _json_or_none(response: httpx.Response) -> Any:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds or as an HTTP date; anything else counts as absent."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def client_from_settings(settings: Settings, **options: Any) -> ResyClient:
    """The client the settings describe (base URL, credentials, deadline, rate, retries);
    `options` override any of it (health checks ask once, quickly)."""
    described: dict[str, Any] = {
        "base_url": settings.resy_base_url,
        "api_key": settings.resy_api_key.get_secret_value() if settings.resy_api_key else None,
        "auth_token": (
            settings.resy_auth_token.get_secret_value() if settings.resy_auth_token else None
        ),
        "timeout_s": settings.resy_timeout_s,
        "max_rps": settings.resy_max_rps,
        "max_in_flight": settings.discovery_concurrency,
        "retry": RetryPolicy(max_retries=settings.resy_max_retries),
    }
    return ResyClient(**(described | options))


def venue_page_url(city_slug: str | None, venue_slug: str, day: date, party_size: int) -> str:
    """The venue's booking page on resy.com for a date and party size."""
    return VENUE_PAGE.format(
        city=city_slug or "new-york-ny", slug=venue_slug, day=day.isoformat(), party=party_size
    )
