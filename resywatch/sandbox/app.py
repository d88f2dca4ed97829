"""The sandbox as an ASGI app: Resy's routes, plus `/__sandbox/` control routes for tests.

Every Resy route goes through `_ResyRoute`, which in order: counts and logs the request,
applies the route's fault rule (latency, Imperva-style failures, 429, the User-Agent check),
checks the API key (419), checks the user token on user routes (419 or 302) and any token
sent to a key-only route (302), runs the handler, and finally trickles the body out if a
drip-feed fault is set.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Literal
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from resywatch.sandbox.config import SandboxConfig
from resywatch.sandbox.control import control_routes
from resywatch.sandbox.faults import (
    IMPERVA_HTML,
    FaultRule,
    is_browser_user_agent,
    retry_after_value,
)
from resywatch.sandbox.http import (
    JSON_TYPE,
    ApiError,
    date_param,
    form_body,
    int_param,
    json_body,
    json_response,
    query_or_json,
)
from resywatch.sandbox.payloads import Payloads, dumps, error_body
from resywatch.sandbox.state import SandboxState
from resywatch.sandbox.tokens import BookTokenClaims, mint_book_token, parse_book_token
from resywatch.sandbox.venues import Venue
from resywatch.sandbox.world import BookingError, Reservation, Snapshot

#: With ``slot_filter.time_filter``, search returns slots starting within this many minutes of
#: it, inclusive on both sides (paystub-service documents +-2 h; the discovery window default).
TIME_FILTER_WINDOW_MIN = 120
#: A book token from `/3/details` is good for five minutes of sandbox time (per Cierge).
BOOK_TOKEN_TTL_S = 300
SEARCH_MAX_PER_PAGE = 100
CALENDAR_MAX_DAYS = 120

UNAUTHORIZED = dumps(error_body(419, "Unauthorized"))
PAYMENT_NOT_ACCEPTED = (
    "This venue is not set up to accept payment methods. Please contact the venue for assistance."
)
_TOKEN_RE = re.compile(
    r"^rgs://resy/(\d+)/(\d+)/(\d+)/(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})/(\d{2}:\d{2}:\d{2})/(\d+)/(.+)$"
)
_API_KEY_RE = re.compile(r'^ResyAPI\s+api_key="([^"]*)"$')
#: Messages of `/3/book` failures (also used when a fault forces one of these statuses).
_BOOK_ERRORS = {
    402: "A payment method is required to book this reservation.",
    403: PAYMENT_NOT_ACCEPTED,
    404: "Sorry, this reservation is no longer available.",
    412: "You already have a reservation at this venue on this day.",
}
_REASONS = {
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
    now: float
    uid: int
    params: dict[str, Any]

    def note(self, **params: Any) -> None:
        """Record the request's key parameters in the request log."""
        self.params.update(params)


Handler = Callable[[Request, Call], Awaitable[Response]]
Auth = Literal["none", "key", "user"]


def _venue(call: Call, venue_id: int) -> Venue:
    venue = call.state.world.by_id.get(venue_id)
    if venue is None:
        raise ApiError(404, "Venue not found")
    return venue


def _minute(text: str) -> int:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::\d{2})?", text.strip())
    if match is None:
        raise ApiError(400, "Invalid time_filter")
    return int(match.group(1)) * 60 + int(match.group(2))


# -- Resy routes ------------------------------------------------------------------------------


async def find(request: Request, call: Call) -> Response:
    params = await query_or_json(request)
    venue_id, day, party = (
        int_param(params, "venue_id"),
        date_param(params, "day"),
        int_param(params, "party_size"),
    )
    call.note(venue_id=venue_id, day=day.isoformat(), party_size=party)
    if party < 1:
        raise ApiError(400, "Invalid parameter: party_size")
    venue = call.state.world.by_id.get(venue_id)
    if venue is None:
        if call.state.variants.find_unknown_venue_error:
            # Cierge's live test expects an error (ErrBadRequest) for an unknown venue (S3).
            raise ApiError(400, "Invalid venue_id")
        return json_response(Payloads.find_unknown_venue(day.isoformat(), party))
    world, variants = call.state.world, call.state.variants
    snap = world.snapshot(venue, day, call.now)
    body = call.payloads.find(venue, snap, party, per_table=variants.find_per_table)
    captcha = venue.id in variants.captcha_venue_ids and variants.captcha_flag_shown
    if not (variants.find_other_venue or variants.restricted_slots or captcha):
        return Response(body, media_type=JSON_TYPE)  # the fast path: memoised bytes
    answer = json.loads(body)
    if variants.find_other_venue:
        other = next(v for v in world.venues if v.id != venue.id)
        extra = call.payloads.find(
            other, world.snapshot(other, day, call.now), party, per_table=variants.find_per_table
        )
        answer["results"]["venues"] += json.loads(extra)["results"]["venues"]
    entry = answer["results"]["venues"][0]
    if captcha:
        entry["venue"]["feature_recaptcha"] = True
    if variants.restricted_slots:
        for slot in entry["slots"]:
            _restrict(
                slot,
                call.state.world.slot_index(
                    venue, slot["date"]["start"][11:], slot["config"]["type"]
                ),
            )
    return json_response(answer)


def _restrict(slot: dict[str, Any], index: int | None) -> None:
    """Mark a slot ordinary accounts cannot book (the `restricted_slots` variant)."""
    if index is not None and index % 5 == 2:
        slot["is_global_dining_access"] = True
    elif index is not None and index % 5 == 4:
        slot["exclusive"] = {"id": 7000 + index, "is_eligible": False}


async def details(request: Request, call: Call) -> Response:
    if request.method == "GET" and call.state.variants.details_get_fails:
        # Alkaar #154: GET /3/details gave 500 after the Feb-2024 switch to POST (S14).
        raise ApiError(500, "Internal Server Error")
    params = await query_or_json(request)
    config_id = str(params.get("config_id") or "")
    match = _TOKEN_RE.match(config_id)
    call.note(config_id=config_id, day=params.get("day"), party_size=params.get("party_size"))
    if match is None:
        raise ApiError(400, "Invalid config_id")
    venue = _venue(call, int(match.group(1)))
    day = date.fromisoformat(match.group(4))
    party = int_param(params, "party_size", int(match.group(7)))
    index = call.state.world.slot_index(venue, match.group(6), match.group(8))
    if index is None:
        raise ApiError(404, "Slot not found")
    slot = call.state.world.slot_defs(venue)[index]
    template, service = int(match.group(2)), int(match.group(3))
    if call.state.variants.details_checks_ids and (
        template != slot.template_id or service != slot.service.type_id
    ):
        # A token is Resy's own, not a guess: the template and service must be the slot's
        # (S6). Cierge's live test expects an error for an invalid config (400 or 404).
        raise ApiError(404, "Slot not found")
    # Resy issues a book token even for a slot that is gone; only /3/book tells.
    expires = call.now + BOOK_TOKEN_TTL_S
    claims = BookTokenClaims(
        venue.id, day.isoformat(), slot.time, party, slot.seating.name, call.uid, expires
    )
    token = mint_book_token(call.state.auth.signing_key, claims)
    start = call.state.world.slot_start(venue, day, slot)
    body = call.payloads.details(
        venue, slot, day, party, start, token, expires, call.state.user,
        fee_per_guest=call.state.variants.fee_per_guest,
    )  # fmt: skip
    if str(params.get("commit", "1")) == "0" or venue.id in call.state.variants.captcha_venue_ids:
        # A captcha venue gives no token until its captcha is solved (2026 public script).
        # dwatch/AbhiSivaprasad: commit=0 "will not return a booking token".
        del body["book_token"]
    return json_response(body)


async def book(request: Request, call: Call) -> Response:
    form = await form_body(request)
    raw_token = form.get("book_token", "")
    call.note(book_token=raw_token[:24], struct_payment_method=form.get("struct_payment_method"))
    claims = parse_book_token(call.state.auth.signing_key, raw_token)
    if claims is None or claims.uid != call.uid:
        raise ApiError(400, "Invalid book token")
    if claims.expires <= call.now:
        raise ApiError(412, "Book token has expired")
    venue = _venue(call, claims.venue_id)
    payment_method_id: int | None = None
    if form.get("struct_payment_method"):
        try:
            payment_method_id = int(json.loads(form["struct_payment_method"])["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(400, "Invalid struct_payment_method") from exc
    if venue.cannot_take_payment and payment_method_id is not None:
        raise ApiError(403, _BOOK_ERRORS[403])
    if venue.payment_required and payment_method_id not in call.state.user.payment_method_ids:
        raise ApiError(402, _BOOK_ERRORS[402])
    world = call.state.world
    index = world.slot_index(venue, claims.time, claims.seating)
    if index is None:
        raise ApiError(404, _BOOK_ERRORS[404])
    if not world.is_released(venue, date.fromisoformat(claims.day), call.now):
        status = call.state.variants.unreleased_book_status  # unseen: a switch (S7)
        raise ApiError(status, _BOOK_ERRORS.get(status, _REASONS.get(status, "Error")))
    try:
        reservation = world.book(
            uid=call.uid,
            venue=venue,
            day=date.fromisoformat(claims.day),
            slot_index=index,
            party_size=claims.party_size,
            payment_method_id=payment_method_id,
            now=call.now,
        )
    except BookingError as exc:
        if exc.kind == "conflict" and exc.existing is not None:
            raise ApiError(412, _BOOK_ERRORS[412], specs=_specs(exc.existing)) from exc
        raise ApiError(404, _BOOK_ERRORS[404]) from exc
    if call.state.variants.book_success_as_412:
        raise ApiError(412, _BOOK_ERRORS[412], specs=_specs(reservation))
    body = {
        "resy_token": reservation.resy_token,
        "reservation_id": reservation.reservation_id,
        "venue_opt_in": form.get("venue_marketing_opt_in") == "1",
    }
    return json_response(body, 201)


def _specs(held: Reservation) -> dict[str, Any]:
    """A 412's `specs`: the reservation the user holds (AbhiSivaprasad; a zod schema)."""
    return {
        "reservation_id": held.reservation_id,
        "resy_token": held.resy_token,
        "venue_id": held.venue_id,
        "day": held.day.isoformat(),
        "time_slot": held.slot.time,
        "party_size": held.party_size,
        "config": {"type": held.slot.seating.name},
    }


async def cancel(request: Request, call: Call) -> Response:
    form = await form_body(request)
    token = form.get("resy_token", "")
    call.note(resy_token=token)
    reservation = call.state.world.cancel(call.uid, token, call.now)
    if reservation is None:
        # Resy answers an unknown resy_token with its generic 419.
        return Response(UNAUTHORIZED, 419, media_type=JSON_TYPE)
    return json_response({"payment": {"refund": 1}})


async def venue_config(request: Request, call: Call) -> Response:
    venue_id = int_param(dict(request.query_params), "venue_id")
    call.note(venue_id=venue_id)
    return json_response(call.payloads.config(_venue(call, venue_id)))


async def venue_detail(request: Request, call: Call) -> Response:
    params = dict(request.query_params)
    if "url_slug" in params and "id" not in params:
        # A venue page's slug and city (a 2026 public note: /3/venue?url_slug=&location=).
        slug, location = params["url_slug"].lower(), params.get("location", "").lower()
        call.note(url_slug=slug, location=location)
        found = next((v for v in call.state.world.venues if v.url_slug == slug), None)
        if found is None or location not in ("new-york-ny", "ny"):
            raise ApiError(404, "Venue not found")
        venue_id = found.id
    elif "id" not in params:
        # The quirk from the reference note: `venue_id` is not this route's parameter.
        raise ApiError(400, "Bad Request", data={"id": "missing"})
    else:
        venue_id = int_param(params, "id")
        call.note(id=venue_id)
    venue = _venue(call, venue_id)
    body = call.payloads.venue(venue)
    variants = call.state.variants
    if venue.id in variants.captcha_venue_ids and variants.captcha_flag_shown:
        body["feature_recaptcha"] = True
    return json_response(body)


async def calendar(request: Request, call: Call) -> Response:
    params = dict(request.query_params)
    venue_id = int_param(params, "venue_id")
    num_seats = int_param(params, "num_seats", 2)
    call.note(
        venue_id=venue_id,
        num_seats=num_seats,
        start_date=params.get("start_date"),
        end_date=params.get("end_date"),
    )
    venue = _venue(call, venue_id)
    world, now = call.state.world, call.now
    last = world.last_calendar_day(venue, now)
    start = date_param(params, "start_date", world.local_today(venue, now))
    # Days after the horizon are left out, as Resy does (resybot-open relies on it).
    end = min(
        date_param(params, "end_date", last), last, start + timedelta(days=CALENDAR_MAX_DAYS - 1)
    )
    scheduled = []
    day = start
    while day <= end:
        status = world.calendar_status(venue, day, num_seats, now)
        walk_in = venue.walk_in and status != "closed"
        scheduled.append(
            {
                "date": day.isoformat(),
                "inventory": {
                    "reservation": status,
                    "event": "not available",
                    "walk-in": "available" if walk_in else "not available",
                },
            }
        )
        day += timedelta(days=1)
    body: dict[str, Any] = {"last_calendar_day": last.isoformat(), "scheduled": scheduled}
    if request.url.path.startswith("/3/"):
        body["events"] = []
    return json_response(body)


def _geo_filter(geo: Any) -> tuple[Hashable, Callable[[Venue], bool]]:
    """(a hashable key for the area, a test whether a venue is inside it)."""
    if not geo:
        return None, lambda venue: True
    if not isinstance(geo, dict):
        raise ApiError(400, "Invalid geo")
    try:
        if "bounding_box" in geo:
            south, west, north, east = (float(x) for x in geo["bounding_box"])
            return (
                ("box", south, west, north, east),
                lambda v: south <= v.lat <= north and west <= v.lng <= east,
            )
        lat, lng = float(geo["latitude"]), float(geo["longitude"])
        radius = float(geo.get("radius", 5000))
    except (KeyError, TypeError, ValueError) as exc:
        raise ApiError(400, "Invalid geo") from exc
    return ("radius", lat, lng, radius), lambda v: _distance_m(lat, lng, v.lat, v.lng) <= radius


def _distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


async def search(request: Request, call: Call) -> Response:
    body = await json_body(request)
    query = str(body.get("query") or "").strip().lower()
    per_page = min(max(int_param(body, "per_page", 20), 1), SEARCH_MAX_PER_PAGE)
    page = max(int_param(body, "page", 1), 1)
    geo = body.get("geo")
    slot_filter = body.get("slot_filter") or {}
    if not isinstance(slot_filter, dict):
        raise ApiError(400, "Invalid slot_filter")
    world, now, payloads = call.state.world, call.now, call.payloads
    default_day = world.local_today(world.venues[0], now) if world.venues else date.today()
    day = date_param(slot_filter, "day", default_day)
    party = int_param(slot_filter, "party_size", 2)
    time_filter = slot_filter.get("time_filter")
    availability = bool(body.get("availability", False))
    call.note(
        query=query,
        day=day.isoformat(),
        party_size=party,
        time_filter=time_filter,
        page=page,
        per_page=per_page,
        availability=availability,
        geo=geo,
    )
    low, high = -math.inf, math.inf
    if time_filter:
        anchor, half = _minute(str(time_filter)), call.state.variants.time_filter_window_min
        low, high = anchor - half, anchor + half
    area, in_area = _geo_filter(geo)
    # Already in result order: rating, then id.
    fuzzy = call.state.variants.fuzzy_search
    candidates = payloads.search_candidates(query, area, in_area, fuzzy=fuzzy)
    if call.state.variants.namesakes_elsewhere and query and not availability:
        # Real search is not limited to one city: a name may be a venue's in Miami too (S13).
        everywhere = payloads.search_candidates(query, None, lambda v: True, fuzzy=fuzzy)
        twins = (_namesake(v) for v in everywhere)
        candidates = candidates + tuple(t for t in twins if in_area(t))
    first = (page - 1) * per_page
    hits: list[bytes] = []
    if not availability:
        total = len(candidates)
        hits = [payloads.search_hit_json(v) for v in candidates[first : first + per_page]]
    else:
        # Which venues have an open slot in the window is all the count needs; slots are
        # encoded only for the hits on this page (and each once per snapshot).
        # Real hits include venues with `availability: null` or no slots, in among the rest
        # (paystub-service): the `search_slotless_hits` variant, on by default.
        variants = call.state.variants
        matches: list[tuple[Venue, Snapshot | None, list[int]]] = []
        for venue in candidates:
            snap = world.snapshot(venue, day, now)
            chosen: list[int] = []
            if snap.avail:  # else closed, past or not released yet
                minutes, indexes = payloads.open_slots(snap, party)
                # Minutes are in time order (slot definitions are).
                lo, hi = bisect_left(minutes, low), bisect_right(minutes, high)
                chosen = indexes[lo:hi]
            if chosen:
                matches.append((venue, snap, chosen))
            elif variants.search_slotless_hits:
                matches.append((venue, snap if snap.avail else None, []))
        total = len(matches)
        empty = b"null" if variants.search_null_slots else b"[]"
        for venue, found, chosen in matches[first : first + per_page]:
            shown = b"null"
            if found is not None and not chosen:
                shown = b'{"slots":' + empty + b"}"
            elif found is not None and variants.restricted_slots:
                marked = [payloads.slot(found, i, party) for i in chosen]
                for index, slot in zip(chosen, marked, strict=True):
                    _restrict(slot, index)
                shown = b'{"slots":' + dumps(marked) + b"}"
            elif found is not None:
                shown = b'{"slots":' + payloads.slots_json(found, party, chosen) + b"}"
            hits.append(payloads.search_hit_json(venue)[:-1] + b',"availability":' + shown + b"}")
    pages = math.ceil(total / per_page)
    # The body is joined from pre-encoded hits; `tail` and `meta` close it as `dumps` would.
    tail = dumps({"nbHits": total, "page": page, "nbPages": pages, "hitsPerPage": per_page})
    meta = dumps(
        {
            "meta": {"page": page, "per_page": per_page, "total": total, "total_pages": pages},
            "suggestions": [],
        }
    )
    # One join: each concatenation would copy the (up to megabytes of) hits again.
    parts = [b'{"search":{"hits":[']
    for hit in hits:
        parts += (hit, b",")
    if hits:
        parts.pop()
    parts += (b"],", tail[1:], b",", meta[1:])
    return Response(b"".join(parts), media_type=JSON_TYPE)


#: Namesakes elsewhere (S13) take the venue's id plus this, so they never clash.
NAMESAKE_ID_OFFSET = 50_000_000


def _namesake(venue: Venue) -> Venue:
    """The same name in Miami: only search lists it (no find, details or book)."""
    return replace(
        venue, id=venue.id + NAMESAKE_ID_OFFSET, lat=25.7617, lng=-80.1918,
        neighborhood="Brickell", postal_code="33131", url_slug=venue.url_slug + "-miami",
    )  # fmt: skip


async def user(request: Request, call: Call) -> Response:
    active = [r for r in call.state.world.user_reservations(call.uid) if r.cancelled_at is None]
    return json_response(call.payloads.user(call.state.user, len(active)))


async def reservations(request: Request, call: Call) -> Response:
    params = dict(request.query_params)
    kind = params.get("type", "upcoming")
    limit = int_param(params, "limit", 20)
    base = call.state.variants.reservations_offset_base
    offset = int_param(params, "offset", base)
    call.note(type=kind, limit=limit, offset=offset)
    if kind not in ("upcoming", "past"):
        raise ApiError(400, "Invalid parameter: type")
    active = [r for r in call.state.world.user_reservations(call.uid) if r.cancelled_at is None]
    if kind == "upcoming":
        chosen = sorted((r for r in active if r.start >= call.now), key=lambda r: r.start)
    else:
        chosen = sorted(
            (r for r in active if r.start < call.now), key=lambda r: r.start, reverse=True
        )
    # Cierge's live test pages from offset=0; ez-resy asks for its first upcoming one with
    # offset=1: where offsets start is a variant (S12), 0 by default.
    first = max(offset - base, 0)
    page = chosen[first : first + max(limit, 0)]
    venues = {str(r.venue_id): {"name": call.state.world.by_id[r.venue_id].name} for r in page}
    return json_response(
        {"reservations": [call.payloads.reservation(r, call.now) for r in page], "venues": venues}
    )


async def _login(request: Request, call: Call) -> str:
    form = await form_body(request)
    call.note(email=form.get("email"))
    if not call.state.check_password(form.get("email", ""), form.get("password", "")):
        raise ApiError(419, "Unauthorized")
    return call.state.mint_token()


def _refresh_cookie(state: SandboxState) -> dict[str, str]:
    cookie = f"production_refresh_token={state.mint_refresh()}; Path=/; HttpOnly; SameSite=Lax"
    return {"set-cookie": cookie}


async def auth_password_v3(request: Request, call: Call) -> Response:
    token = await _login(request, call)
    active = [
        r for r in call.state.world.user_reservations(call.state.user.uid) if r.cancelled_at is None
    ]
    return json_response({**call.payloads.user(call.state.user, len(active)), "token": token})


async def auth_password_v4(request: Request, call: Call) -> Response:
    token = await _login(request, call)
    return json_response({"token": token}, headers=_refresh_cookie(call.state))


async def auth_refresh(request: Request, call: Call) -> Response:
    if not call.state.refresh_valid(request.cookies.get("production_refresh_token")):
        raise ApiError(419, "Unauthorized")
    return json_response({"token": call.state.mint_token()}, headers=_refresh_cookie(call.state))


async def geoip(request: Request, call: Call) -> Response:
    return json_response(
        {
            "ip": request.client.host if request.client else "127.0.0.1",
            "latitude": 40.7128,
            "longitude": -74.006,
            "country_iso_code": "US",
            "in_eu": False,
            "source": "sandbox",
            "success": True,
        }
    )


async def login_page(request: Request, call: Call) -> Response:
    """Where the 302 mode sends clients with an expired token (a stand-in for resy.com)."""
    return Response("<html><body><h1>Log in to Resy</h1></body></html>", media_type="text/html")


# -- the route wrapper ---------------------------------------------------------------------------


def _fault_response(route: str, status: int, rule: FaultRule, state: SandboxState) -> Response:
    if route == "/3/book" and status in _BOOK_ERRORS:
        return json_response(error_body(status, _BOOK_ERRORS[status]), status)
    if rule.answer == "resy":
        # Resy's own error (its JSON shape), e.g. the 502 Cierge sees for malformed input.
        return json_response(error_body(status, _REASONS.get(status, "Error")), status)
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
    return json_response(error_body(status, _REASONS.get(status, "Error")), status)


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


class _ResyRoute:
    """Wraps one handler with counting, faults and authentication (see the module docstring)."""

    def __init__(
        self, path: str, handler: Handler, auth: Auth, state: SandboxState, payloads: Payloads
    ):
        self.path, self.handler, self.auth = path, handler, auth
        self.state, self.payloads = state, payloads

    async def __call__(self, request: Request) -> Response:
        state = self.state
        entry = state.traffic.start(request.method, self.path, state.clock.now())
        response = await self._respond(request, entry["params"])
        # Imperva fronts all of api.resy.com: its header comes on ordinary answers too (a 200
        # from /3/auth/password, Resy's JSON 403), not only on its own challenge pages.
        response.headers.setdefault("x-cdn", "Imperva")
        state.traffic.finish(entry, response.status_code)
        return response

    async def _respond(self, request: Request, params: dict[str, Any]) -> Response:
        found = self.state.faults.rule_for(self.path)
        if found is None:
            return await self._authorized(request, params)
        key, rule = found
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        response = self._fault(request, key, rule) or await self._authorized(request, params)
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

    async def _authorized(self, request: Request, params: dict[str, Any]) -> Response:
        state = self.state
        if self.auth != "none" and not _api_key_ok(request, state.config.api_key):
            return Response(UNAUTHORIZED, 419, media_type=JSON_TYPE)
        uid = 0
        if self.auth == "user":
            uid = self._user(request) or 0
            if not uid:
                return self._auth_failure(request)
        elif self.auth == "key" and self._token_sent(request) and not self._user(request):
            # Real Resy answered an expired token on a /4/find, which needs no login, with a
            # redirect to its login page (paystub-service's find sample): a stale token breaks
            # every route it is sent to, not only the user routes.
            return self._auth_failure(request, redirect=True)
        try:
            return await self.handler(
                request, Call(state, self.payloads, state.clock.now(), uid, params)
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


# -- the app ------------------------------------------------------------------------------------

_RESY_ROUTES: tuple[tuple[str, Handler, tuple[str, ...], Auth], ...] = (
    ("/4/find", find, ("GET", "POST"), "key"),
    ("/3/details", details, ("GET", "POST"), "user"),
    ("/3/book", book, ("POST",), "user"),
    ("/3/cancel", cancel, ("POST",), "user"),
    ("/2/config", venue_config, ("GET",), "key"),
    ("/3/venue", venue_detail, ("GET",), "key"),
    ("/4/venue/calendar", calendar, ("GET",), "key"),
    ("/3/venue/calendar", calendar, ("GET",), "key"),
    ("/3/venuesearch/search", search, ("POST",), "key"),
    ("/2/user", user, ("GET",), "user"),
    ("/3/user/reservations", reservations, ("GET",), "user"),
    ("/3/auth/password", auth_password_v3, ("POST",), "key"),
    ("/4/auth/password", auth_password_v4, ("POST",), "key"),
    ("/3/auth/refresh", auth_refresh, ("POST",), "key"),
    ("/3/geoip", geoip, ("GET",), "key"),
    ("/login", login_page, ("GET",), "none"),
)


async def _not_found(request: Request, exc: Exception) -> Response:
    return json_response(error_body(404, "Not Found"), 404)


async def _wrong_method(request: Request, exc: Exception) -> Response:
    # Resy answers a wrong HTTP method with a 500, not a 405 (RESY_API.md §6).
    return json_response(error_body(500, "Internal Server Error"), 500)


def create_app(
    config: SandboxConfig | None = None, *, state: SandboxState | None = None
) -> Starlette:
    """The sandbox ASGI app; its `SandboxState` is at ``app.state.sandbox``."""
    state = state or SandboxState(config or SandboxConfig())
    payloads = Payloads(state.world)
    routes: list[BaseRoute] = [
        # A bound method, so that Starlette wraps it as a request -> response endpoint.
        Route(
            path, _ResyRoute(path, handler, auth, state, payloads).__call__, methods=list(methods)
        )
        for path, handler, methods, auth in _RESY_ROUTES
    ]
    if state.config.control_enabled:
        routes += control_routes(state)
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _wrong_method})
    app.state.sandbox = state
    return app
