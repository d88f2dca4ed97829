"""The gate every sandbox Resy route goes through, and what its handlers are given.

Every Resy route goes through `ResyRoute`, which in order: counts and logs the request,
applies the route's fault rule (latency, Imperva-style failures, 429, the User-Agent check),
checks the API key (419), checks the user token on user routes (419 or 302) and any token
sent to a key-only route (302), runs the handler, and finally trickles the body out if a
drip-feed fault is set.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from resywatch.sandbox.faults import (
    IMPERVA_HTML,
    FaultRule,
    is_browser_user_agent,
    retry_after_value,
)
from resywatch.sandbox.http import JSON_TYPE, ApiError, json_response
from resywatch.sandbox.payloads import Payloads, dumps, error_body
from resywatch.sandbox.search_index import SearchIndex
from resywatch.sandbox.state import SandboxState
from resywatch.sandbox.venues import Venue

UNAUTHORIZED = dumps(error_body(419, "Unauthorized"))
PAYMENT_NOT_ACCEPTED = (
    "This venue is not set up to accept payment methods. Please contact the venue for assistance."
)
_API_KEY_RE = re.compile(r'^ResyAPI\s+api_key="([^"]*)"$')
#: Messages of `/3/book` failures (also used when a fault forces one of these statuses).
BOOK_ERRORS = {
    402: "A payment method is required to book this reservation.",
    403: PAYMENT_NOT_ACCEPTED,
    404: "Sorry, this reservation is no longer available.",
    412: "You already have a reservation at this venue on this day.",
}
REASONS = {
    400: "Bad Request",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    412: "Precondition Failed",
    419: "Unauthorized",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class Call:
    """What a handler gets besides the request: the state, its caller and the log entry."""

    state: SandboxState
    payloads: Payloads
    index: SearchIndex
    now: float
    uid: int
    params: dict[str, Any]

    def note(self, **params: Any) -> None:
        """Record the request's key parameters in the request log."""
        self.params.update(params)

    def venue(self, venue_id: int) -> Venue:
        """The venue with this id, or Resy's 404."""
        venue = self.state.world.by_id.get(venue_id)
        if venue is None:
            raise ApiError(404, "Venue not found")
        return venue


Handler = Callable[[Request, Call], Awaitable[Response]]
Auth = Literal["none", "key", "user"]


def _fault_response(route: str, status: int, rule: FaultRule, state: SandboxState) -> Response:
    if route == "/3/book" and status in BOOK_ERRORS:
        return json_response(error_body(status, BOOK_ERRORS[status]), status)
    if rule.answer == "resy":
        # Resy's own error (its JSON shape), e.g. the 502 Cierge sees for malformed input.
        return json_response(error_body(status, REASONS.get(status, "Error")), status)
    headers: dict[str, str] = {}
    if status == 429:
        retry = retry_after_value(rule, 1)
        if retry is not None:
            headers["retry-after"] = retry
        return json_response(error_body(429, "Too Many Requests"), 429, headers)
    if status >= 500 or status == 403:
        retry = retry_after_value(rule, None) if status == 503 else None
        if retry is not None:
            headers["retry-after"] = retry
        incident = state.traffic.incident()
        headers["x-cdn"] = "Imperva"
        headers["x-iinfo"] = f"13-{incident}-0 NNNN CT(0 0 0) RT(0 0) q(0 0 0 -1) r(0 0) U5"
        headers["set-cookie"] = f"incap_ses_1000_2548=sandbox{incident}; path=/"
        html = IMPERVA_HTML.format(incident=incident)
        return Response(html, status, headers, media_type="text/html")
    return json_response(error_body(status, REASONS.get(status, "Error")), status)


def _drip(response: Response, rule: FaultRule) -> Response:
    body = bytes(response.body)
    chunk, pause = max(rule.drip_chunk_bytes, 1), rule.drip_interval_ms / 1000

    async def trickle() -> AsyncIterator[bytes]:
        for offset in range(0, len(body), chunk):
            if offset:
                await asyncio.sleep(pause)
            yield body[offset : offset + chunk]

    dripping = StreamingResponse(trickle(), response.status_code)
    # Keep the original headers, Content-Length included: the client knows how much is coming.
    dripping.raw_headers = list(response.raw_headers)
    return dripping


def _api_key_ok(request: Request, api_key: str) -> bool:
    match = _API_KEY_RE.match(request.headers.get("authorization", "").strip())
    return match is not None and match.group(1) == api_key


class ResyRoute:
    """Wraps one handler with counting, faults and authentication (see the module docstring)."""

    def __init__(
        self,
        path: str,
        handler: Handler,
        auth: Auth,
        state: SandboxState,
        payloads: Payloads,
        index: SearchIndex,
    ):
        self.path, self.handler, self.auth = path, handler, auth
        self.state, self.payloads, self.index = state, payloads, index
        # Injected latency is real time, whatever the sandbox clock's speed.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.monotonic: Callable[[], float] = time.monotonic

    async def __call__(self, request: Request) -> Response:
        state = self.state
        entry = state.traffic.start(request.method, self.path, state.clock.now())
        response = await self._respond(request, entry)
        # Imperva fronts all of api.resy.com: its header comes on ordinary answers too (a 200
        # from /3/auth/password, Resy's JSON 403), not only on its own challenge pages.
        response.headers.setdefault("x-cdn", "Imperva")
        state.traffic.finish(entry, response.status_code)
        return response

    async def _respond(self, request: Request, entry: dict[str, Any]) -> Response:
        found = self.state.faults.rule_for(self.path)
        if found is None:
            return await self._authorized(request, entry)
        key, rule = found
        delay = rule.latency_ms / 1000
        answer_at = self.monotonic() + delay
        if delay:
            await self.sleep(delay / 2 if rule.latency_model == "fleet" else delay)
        response = self._fault(request, key, rule) or await self._authorized(request, entry)
        if delay and rule.latency_model == "fleet":
            await self.sleep(max(0.0, answer_at - self.monotonic()))
        return _drip(response, rule) if rule.drip_chunk_bytes else response

    def _fault(self, request: Request, key: str, rule: FaultRule) -> Response | None:
        """The CDN's answer when the rule fails this request (it never reaches the API)."""
        status = self.state.faults.draw_failure(key, rule)
        if status is not None:
            return _fault_response(self.path, status, rule, self.state)
        if rule.require_browser_ua and not is_browser_user_agent(request.headers.get("user-agent")):
            # Resy's real failure mode without a browser User-Agent: a bare 500.
            return Response("Internal Server Error", 500, media_type="text/plain")
        return None

    async def _authorized(self, request: Request, entry: dict[str, Any]) -> Response:
        """The API's answer; the request log names the diner of a user route (`uid`)."""
        state = self.state
        if self.auth != "none" and not _api_key_ok(request, state.config.api_key):
            return Response(UNAUTHORIZED, 419, media_type=JSON_TYPE)
        uid = 0
        if self.auth == "user":
            uid = entry["uid"] = self._user(request) or 0
            if not uid:
                return self._auth_failure(request)
        elif self.auth == "key" and self._token_sent(request) and not self._user(request):
            # Real Resy answered an expired token on a /4/find, which needs no login, with a
            # redirect to its login page (paystub-service's find sample): a stale token breaks
            # every route it is sent to, not only the user routes.
            return self._auth_failure(request, redirect=True)
        try:
            return await self.handler(
                request,
                Call(state, self.payloads, self.index, state.clock.now(), uid, entry["params"]),
            )
        except ApiError as exc:
            return json_response(exc.body, exc.status)

    def _user(self, request: Request) -> int | None:
        headers = request.headers
        token = headers.get("x-resy-auth-token") or headers.get("x-resy-universal-auth")
        return self.state.user_for_token(token)

    @staticmethod
    def _token_sent(request: Request) -> bool:
        headers = request.headers
        return bool(headers.get("x-resy-auth-token") or headers.get("x-resy-universal-auth"))

    def _auth_failure(self, request: Request, *, redirect: bool = False) -> Response:
        if redirect or self.state.auth.redirect_on_failure:
            target = f"{str(request.base_url).rstrip('/')}/login?redirect={quote(request.url.path)}"
            return Response(b"", 302, {"location": target})
        return Response(UNAUTHORIZED, 419, media_type=JSON_TYPE)
