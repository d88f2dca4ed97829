"""`/3/venuesearch/search` pages read with msgspec into exactly the fields resywatch keeps.

A dense evening is a hundred pages of a thousand slots of a kilobyte each a discovery
cycle: built as pydantic models, reading them cost more CPU than the network cost time.
msgspec reads the page in one pass into typed structs, skipping (never building) what no
field names; a slot is a `SearchSlot` of four small structs. The shape is as tolerant as
the pydantic reading in `models.SearchResponse` (the reference the tests hold this one to):
missing or null fields, ids as `{"resy": N}`, a rating as a number or an object, cuisine as
a string or a list, `availability` or its `slots` null, numbers as strings (lax mode).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from resywatch.resy import errors
from resywatch.resy.models import local_time

ENDPOINT = "/3/venuesearch/search"


class HitRating(msgspec.Struct, frozen=True):
    average: float | None = None
    count: int | None = None


class HitGeo(msgspec.Struct, frozen=True):
    lat: float | None = None
    lng: float | None = None


class HitLocation(msgspec.Struct, frozen=True):
    time_zone: str | None = None
    neighborhood: str | None = None
    url_slug: str | None = None
    code: str | None = None
    name: str | None = None


# A slot holds strings and flags only, so its structs are not tracked by the garbage
# collector (gc=False): a pass's 60,000 slots would otherwise be walked at each collection.


class SlotConfig(msgspec.Struct, frozen=True, gc=False):
    token: str
    type: str | None = None  # the seating: "Dining Room", "Bar", "Patio"...


class SlotDate(msgspec.Struct, frozen=True, gc=False):
    start: str  # venue-local "YYYY-MM-DD HH:MM:SS"


class SlotExclusive(msgspec.Struct, frozen=True, gc=False):
    is_eligible: bool | None = None


class SearchSlot(msgspec.Struct, frozen=True, gc=False):
    """A slot in search results: only what discovery and booking read. Structs, not dicts:
    a page's thousand slots are read in half the time (`models.SlotRef` is the same shape
    in the pydantic reference reading)."""

    config: SlotConfig
    date: SlotDate
    is_global_dining_access: bool | None = None
    exclusive: SlotExclusive | None = None

    @property
    def starts_at(self) -> datetime:
        """The venue-local start."""
        start: datetime = local_time(self.date.start)
        return start

    @property
    def seating(self) -> str | None:
        return self.config.type

    @property
    def restricted(self) -> bool:
        """Whether ordinary accounts cannot book it (see `models.Slot.restricted`)."""
        exclusive = self.exclusive
        return bool(self.is_global_dining_access) or (
            exclusive is not None and exclusive.is_eligible is False
        )


class SearchHit(msgspec.Struct, frozen=True):
    """A venue in search results, with its slots when availability was asked for."""

    id: int
    name: str
    url_slug: str | None = None
    neighborhood: str | None = None
    locality: str | None = None  # the city, e.g. "New York"
    cuisine: list[str] = []
    rating: HitRating | None = None
    price_range_id: int | None = None
    geoloc: HitGeo | None = None
    location: HitLocation | None = None
    slots: list[SearchSlot] = []


@dataclass(frozen=True)
class SearchPage:
    """One page of search hits and how many pages (or hits) there are in all."""

    hits: list[SearchHit]
    page: int
    total_pages: int | None  # None when Resy did not say
    total_hits: int | None = None


# The wire shape: only the fields kept, everything else skipped while reading.


class _Availability(msgspec.Struct):
    slots: list[SearchSlot] | None = None  # `null` is read as no slots


class _Hit(msgspec.Struct):
    id: int | str | dict[str, Any]  # 123, "123", {"resy": 123}, {"id": {"resy": 123}}
    name: str
    url_slug: str | None = None
    neighborhood: str | None = None
    locality: str | None = None
    cuisine: list[str] | str | None = None
    rating: HitRating | float | None = None
    price_range_id: int | None = None
    geoloc: HitGeo | None = msgspec.field(default=None, name="_geoloc")
    location: HitLocation | None = None
    availability: _Availability | None = None


class _Pagination(msgspec.Struct):
    total_pages: int | None = None
    total: int | None = None  # hits in all pages


class _Results(msgspec.Struct):
    hits: list[_Hit] = []
    nbPages: int | None = None  # Resy's (Algolia's) spelling
    nbHits: int | None = None
    total_pages: int | None = None
    pagination: _Pagination | None = None


class _Response(msgspec.Struct):
    search: _Results
    meta: _Pagination | None = None
    total_pages: int | None = None


@functools.cache
def _decoder() -> msgspec.json.Decoder[_Response]:
    # Built on first use, not at import: most commands never read a search page.
    # strict=False: numbers and booleans sent as strings are read, as pydantic's lax mode does.
    return msgspec.json.Decoder(_Response, strict=False)


def parse_search_page(body: bytes, page: int, endpoint: str = ENDPOINT) -> SearchPage:
    """A search answer as a `SearchPage`; a body that is not JSON is a `ServerError`, one
    of another shape a `ResyError` naming where (as `responses.parse` says it)."""
    try:
        found = _decoder().decode(body)
    except msgspec.ValidationError as exc:
        raise errors.ResyError(f"unexpected response from {endpoint}: {_where(exc)}") from None
    except msgspec.DecodeError:
        raise errors.ServerError(f"{endpoint} answered with a body that is not JSON") from None
    results = found.search
    hits = [_hit(raw, n, endpoint) for n, raw in enumerate(results.hits)]
    candidates = (
        found.meta.total_pages if found.meta else None,
        results.nbPages,
        results.total_pages,
        results.pagination.total_pages if results.pagination else None,
        found.total_pages,
    )
    totals = (found.meta.total if found.meta else None, results.nbHits)
    return SearchPage(
        hits=hits,
        page=page,
        total_pages=next((c for c in candidates if c is not None), None),
        total_hits=next((c for c in totals if c is not None), None),
    )


def _hit(raw: _Hit, n: int, endpoint: str) -> SearchHit:
    rating = raw.rating
    cuisine = raw.cuisine
    availability = raw.availability
    return SearchHit(
        id=_venue_id(raw.id, n, endpoint),
        name=raw.name,
        url_slug=raw.url_slug,
        neighborhood=raw.neighborhood,
        locality=raw.locality,
        cuisine=[] if cuisine is None else [cuisine] if isinstance(cuisine, str) else cuisine,
        rating=HitRating(average=float(rating)) if isinstance(rating, float | int) else rating,
        price_range_id=raw.price_range_id,
        geoloc=raw.geoloc,
        location=raw.location,
        slots=(availability.slots or []) if availability is not None else [],
    )


def _venue_id(value: Any, n: int, endpoint: str) -> int:
    """A hit's id however Resy wrapped it, as an int (as `models.ResyId` reads it)."""
    while isinstance(value, dict):
        value = value.get("resy", value.get("id"))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise errors.ResyError(
        f"unexpected response from {endpoint}: search.hits.{n}.id: not a venue id ({value!r})"
    )


_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


def _where(exc: msgspec.ValidationError) -> str:
    """msgspec's "Expected `str`, got `null` - at `$.search.hits[0].name`" as
    "search.hits.0.name: Expected `str`, got `null`"."""
    text = str(exc)
    match = _AT.search(text)
    if match is None:
        return f"body: {text}"
    path = re.sub(r"\[(\d+)\]", r".\1", match["path"]) or "body"
    return f"{path}: {text[: match.start()]}"
