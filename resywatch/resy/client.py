"""The Resy HTTP client: the only code that knows Resy's URLs, headers and status codes.

One client per invocation (it keeps its connections warm). This module holds the endpoints;
how a request is sent (rate, deadline, retries, the shared budget) is `resy.transport`, and
how an answer is read (models, typed errors) is `resy.responses`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import date
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any, Literal

import httpx

from resywatch.redact import secret_forms
from resywatch.resy import errors
from resywatch.resy.models import (
    BookResponse,
    CalendarResponse,
    DetailsResponse,
    FindResponse,
    LoginResponse,
    Reservation,
    ReservationsResponse,
    TokenResponse,
    User,
    VenueConfigResponse,
    VenueResponse,
)
from resywatch.resy.responses import REFRESH_PATH, parse
from resywatch.resy.search_page import SearchHit, SearchPage, parse_search_page
from resywatch.resy.transport import REFRESH_COOKIE, ResyTransport, RetryPolicy

if TYPE_CHECKING:
    from resywatch.config import Settings

BoundingBox = tuple[float, float, float, float]
#: Search pages asked for at once after the first (see `ResyClient.search_all`).
PAGES_AT_ONCE = 2


@dataclass
class ResyClient(ResyTransport):
    """Async client for one Resy host. Use as `async with ResyClient(...) as resy:`."""

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
        return parse(FindResponse, body, "/4/find")

    async def details(self, config_token: str, day: date, party_size: int) -> DetailsResponse:
        """The book token and the quote for one slot (`POST /3/details`)."""
        payload = {
            "config_id": config_token,
            "day": day.isoformat(),
            "party_size": party_size,
            "commit": 1,  # without it Resy returns no book token
        }
        body = await self._call("POST", "/3/details", json=payload, user=True)
        details = parse(DetailsResponse, body, "/3/details")
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
        return parse(BookResponse, body, "/3/book")

    async def cancel(self, resy_token: str) -> dict[str, Any]:
        """Cancel a reservation by its `resy_token`. Not retried: it changes state."""
        body = await self._call(
            "POST", "/3/cancel", data={"resy_token": resy_token}, user=True, retry=False
        )
        answer = json.loads(body)
        return answer if isinstance(answer, dict) else {}

    async def venue(self, venue_id: int) -> VenueResponse:
        body = await self._call("GET", "/3/venue", params={"id": venue_id})
        return parse(VenueResponse, body, "/3/venue")

    async def venue_by_slug(self, url_slug: str, location: str) -> VenueResponse:
        """A venue from its resy.com page's slug and city (`/3/venue?url_slug=&location=`,
        as a 2026 public note on Resy's API gives it)."""
        params = {"url_slug": url_slug, "location": location}
        body = await self._call("GET", "/3/venue", params=params)
        return parse(VenueResponse, body, "/3/venue")

    async def venue_config(self, venue_id: int) -> VenueConfigResponse:
        body = await self._call("GET", "/2/config", params={"venue_id": venue_id})
        return parse(VenueConfigResponse, body, "/2/config")

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
        return parse(CalendarResponse, body, "/4/venue/calendar")

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
        return parse_search_page(body, page)

    async def search_all(
        self, *, max_pages: int = 10, per_page: int = 100, **query: Any
    ) -> list[SearchHit]:
        """Every page of a search (up to `max_pages`). Any page failing fails the whole.

        Pages are read until the hits run out (an empty or short page, the page count or the
        hit count Resy gives): nothing says venues with slots come first (hits with
        `availability: null` or no slots are mixed in), so a slot-less hit stops nothing.
        Once Resy has said how many there are, the next `PAGES_AT_ONCE` pages are asked for
        together: a search takes fewer round trips, and a count that overstates costs one
        request at most (the pages after an empty one are not read).
        """
        page = await self.search(page=1, per_page=per_page, **query)
        hits = list(page.hits)
        while page.page < max_pages and _more_pages(page, len(hits), per_page):
            last = min(max_pages, _last_page(page, per_page) or page.page + 1)
            numbers = range(page.page + 1, min(last, page.page + PAGES_AT_ONCE) + 1)
            found = await asyncio.gather(
                *(self.search(page=n, per_page=per_page, **query) for n in numbers),
                return_exceptions=True,  # every request ends before the first error is raised
            )
            for page in _pages_or_raise(found):
                hits.extend(page.hits)
                if not page.hits:
                    break
        return hits

    async def user(self) -> User:
        body = await self._call("GET", "/2/user", user=True)
        return parse(User, body, "/2/user")

    async def reservations(self, *, kind: str = "upcoming", limit: int = 100) -> list[Reservation]:
        body = await self._call(
            "GET",
            "/3/user/reservations",
            params={"type": kind, "limit": limit, "offset": 0},
            user=True,
        )
        found = parse(ReservationsResponse, body, "/3/user/reservations")
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
        return parse(LoginResponse, body, "/3/auth/password")

    async def login_session(self, email: str, password: str) -> Session:
        """Log in as the web app does since 2024 (`POST /4/auth/password`, Cierge): a token,
        and the refresh cookie Resy sets beside it (`production_refresh_token`, ~90 days)."""
        self._passwords += secret_forms(password)
        cookie = _CookieCatcher()
        body = await self._call(
            "POST",
            "/4/auth/password",
            data={"email": email, "password": password},
            on_answer=cookie,
        )
        answer = parse(TokenResponse, body, "/4/auth/password")
        self._passwords += [answer.token, *([cookie.value] if cookie.value else [])]
        return Session(answer.token, cookie.value)

    async def refresh(self, refresh_token: str) -> Session:
        """A new token for a refresh cookie (`POST /3/auth/refresh`), and the new cookie.
        Sent once: a lost answer may have used the cookie up; the next pass tries again."""
        self._passwords += [refresh_token]
        cookie = _CookieCatcher()
        body = await self._call(
            "POST",
            REFRESH_PATH,
            cookies={REFRESH_COOKIE: refresh_token},
            retry=False,
            on_answer=cookie,
        )
        answer = parse(TokenResponse, body, REFRESH_PATH)
        self._passwords += [answer.token, *([cookie.value] if cookie.value else [])]
        return Session(answer.token, cookie.value or refresh_token)


@dataclass(frozen=True)
class Session:
    """What a login or a refresh gives: the token, and the refresh cookie (None if Resy set
    none). Never printed: repr hides both."""

    token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)


class _CookieCatcher:
    """Reads the refresh cookie off an answer's Set-Cookie headers."""

    value: str | None = None

    def __call__(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            if REFRESH_COOKIE in jar and jar[REFRESH_COOKIE].value:
                self.value = jar[REFRESH_COOKIE].value


def _pages_or_raise(answers: list[SearchPage | BaseException]) -> list[SearchPage]:
    pages = []
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
        pages.append(answer)
    return pages


def _last_page(page: SearchPage, per_page: int) -> int | None:
    """The last page number Resy's count gives, if it gave one."""
    if page.total_pages is not None:
        return page.total_pages
    if page.total_hits is not None:
        return -(-page.total_hits // per_page)
    return None


def _more_pages(page: SearchPage, seen: int, per_page: int) -> bool:
    """Whether a search has hits after `page` (`seen` hits read so far)."""
    if not page.hits:
        return False
    if page.total_pages is not None:
        return page.page < page.total_pages
    if page.total_hits is not None:
        return seen < page.total_hits
    return len(page.hits) >= per_page  # Resy did not say: a full page means more


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
