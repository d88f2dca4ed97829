"""The sandbox's venue search: `/3/venuesearch/search`, with or without availability."""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from resywatch.sandbox.gateway import Call
from resywatch.sandbox.http import JSON_TYPE, ApiError, date_param, int_param, json_body
from resywatch.sandbox.payloads import dumps, restrict_slot
from resywatch.sandbox.search_index import geo_filter
from resywatch.sandbox.venues import Venue
from resywatch.sandbox.world import Snapshot

#: With ``slot_filter.time_filter``, search returns slots starting within this many minutes of
#: it, inclusive on both sides (paystub-service documents +-2 h; the discovery window default).
TIME_FILTER_WINDOW_MIN = 120
SEARCH_MAX_PER_PAGE = 100
#: Namesakes elsewhere (S13) take the venue's id plus this, so they never clash.
NAMESAKE_ID_OFFSET = 50_000_000


def _minute(text: str) -> int:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::\d{2})?", text.strip())
    if match is None:
        raise ApiError(400, "Invalid time_filter")
    return int(match.group(1)) * 60 + int(match.group(2))


@dataclass(frozen=True, slots=True)
class _Search:
    """One search request, read: what to match, for which day and party, which page."""

    query: str
    day: date
    party: int
    page: int
    per_page: int
    availability: bool
    geo: Any
    #: Slot start minutes the time filter lets through (everything without one).
    low: float = -math.inf
    high: float = math.inf

    @property
    def first(self) -> int:
        """The index of the page's first hit."""
        return (self.page - 1) * self.per_page


async def search(request: Request, call: Call) -> Response:
    wanted = _read(await json_body(request), call)
    candidates = _candidates(wanted, call)
    first, per_page = wanted.first, wanted.per_page
    if not wanted.availability:
        total = len(candidates)
        hits = [call.payloads.search_hit_json(v) for v in candidates[first : first + per_page]]
    else:
        total, hits = _hits_with_slots(wanted, candidates, call)
    return Response(_body(hits, total, wanted), media_type=JSON_TYPE)


def _read(body: dict[str, Any], call: Call) -> _Search:
    """The request's parameters, checked and noted in the request log."""
    query = str(body.get("query") or "").strip().lower()
    per_page = min(max(int_param(body, "per_page", 20), 1), SEARCH_MAX_PER_PAGE)
    page = max(int_param(body, "page", 1), 1)
    geo = body.get("geo")
    slot_filter = body.get("slot_filter") or {}
    if not isinstance(slot_filter, dict):
        raise ApiError(400, "Invalid slot_filter")
    world = call.state.world
    default_day = world.local_today(world.venues[0], call.now) if world.venues else date.today()
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
    wanted = _Search(query, day, party, page, per_page, availability, geo)
    if not time_filter:
        return wanted
    anchor, half = _minute(str(time_filter)), call.state.variants.time_filter_window_min
    return replace(wanted, low=anchor - half, high=anchor + half)


def _candidates(wanted: _Search, call: Call) -> tuple[Venue, ...]:
    """The venues the query matches in its area, in result order: rating, then id."""
    area, in_area = geo_filter(wanted.geo)
    fuzzy, query = call.state.variants.fuzzy_search, wanted.query
    candidates = call.index.candidates(query, area, in_area, fuzzy=fuzzy)
    if call.state.variants.namesakes_elsewhere and query and not wanted.availability:
        # Real search is not limited to one city: a name may be a venue's in Miami too (S13).
        everywhere = call.index.candidates(query, None, lambda v: True, fuzzy=fuzzy)
        twins = (_namesake(v) for v in everywhere)
        candidates = candidates + tuple(t for t in twins if in_area(t))
    return candidates


def _hits_with_slots(
    wanted: _Search, candidates: tuple[Venue, ...], call: Call
) -> tuple[int, list[bytes]]:
    """(how many venues match, this page's hits with their slots in the time window).

    Which venues have an open slot in the window is all the count needs; slots are encoded
    only for the hits on this page (and each once per snapshot). Real hits include venues
    with `availability: null` or no slots, in among the rest (paystub-service): the
    `search_slotless_hits` variant, on by default.
    """
    world, payloads, variants = call.state.world, call.payloads, call.state.variants
    party = wanted.party
    matches: list[tuple[Venue, Snapshot | None, list[int]]] = []
    for venue in candidates:
        snap = world.snapshot(venue, wanted.day, call.now)
        chosen: list[int] = []
        if snap.avail:  # else closed, past or not released yet
            minutes, indexes = payloads.open_slots(snap, party)
            # Minutes are in time order (slot definitions are).
            lo, hi = bisect_left(minutes, wanted.low), bisect_right(minutes, wanted.high)
            chosen = indexes[lo:hi]
        if chosen:
            matches.append((venue, snap, chosen))
        elif variants.search_slotless_hits:
            matches.append((venue, snap if snap.avail else None, []))
    empty = b"null" if variants.search_null_slots else b"[]"
    hits = []
    for venue, found, chosen in matches[wanted.first : wanted.first + wanted.per_page]:
        shown = b"null"
        if found is not None and not chosen:
            shown = b'{"slots":' + empty + b"}"
        elif found is not None and variants.restricted_slots:
            marked = [payloads.slot(found, i, party) for i in chosen]
            for index, slot in zip(chosen, marked, strict=True):
                restrict_slot(slot, index)
            shown = b'{"slots":' + dumps(marked) + b"}"
        elif found is not None:
            shown = b'{"slots":' + payloads.slots_json(found, party, chosen) + b"}"
        hits.append(payloads.search_hit_json(venue)[:-1] + b',"availability":' + shown + b"}")
    return len(matches), hits


def _body(hits: list[bytes], total: int, wanted: _Search) -> bytes:
    """The answer, joined from pre-encoded hits; `tail` and `meta` close it as `dumps` would."""
    page, per_page = wanted.page, wanted.per_page
    pages = math.ceil(total / per_page)
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
    return b"".join(parts)


def _namesake(venue: Venue) -> Venue:
    """The same name in Miami: only search lists it (no find, details or book)."""
    return replace(
        venue, id=venue.id + NAMESAKE_ID_OFFSET, lat=25.7617, lng=-80.1918,
        neighborhood="Brickell", postal_code="33131", url_slug=venue.url_slug + "-miami",
    )  # fmt: skip
