"""The fast search-page reader (msgspec, `resy.search_page`) against the pydantic reading
(`models.SearchResponse`): the same hits, slots and page counts on the sandbox's pages (every
search variant it serves) and on the real-shape samples, as tolerant of missing, null and
wrapped fields, and failing on the same broken pages with the same kind of error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from resywatch.resy import errors
from resywatch.resy.models import SearchResponse
from resywatch.resy.responses import parse
from resywatch.resy.search_page import parse_search_page
from resywatch.sandbox import DEMO_API_KEY, SandboxConfig, SandboxHandle, run_in_thread
from resywatch.sandbox.venues import MANHATTAN_BBOX

START = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parents[1] / "contract" / "fixtures"
SLOT = {
    "config": {"id": 1, "type": "Dining Room", "token": "rgs://resy/5/1/2/2026-12-01/x/2/D"},
    "date": {"start": "2026-12-01 19:00:00", "end": "2026-12-01 20:45:00"},
    "size": {"min": 2, "max": 2},
    "payment": {"is_paid": False},
    "unknown_future_field": {"x": 1},
}


def kept(slot: Any) -> tuple[Any, ...]:
    """What both readings keep of a slot: a `SlotRef` dict (pydantic), a `SearchSlot`."""
    if isinstance(slot, dict):
        exclusive = slot.get("exclusive")
        return (
            slot["config"]["token"],
            slot["config"].get("type"),
            slot["date"]["start"],
            slot.get("is_global_dining_access"),
            None if exclusive is None else exclusive.get("is_eligible"),
        )
    exclusive = slot.exclusive
    return (
        slot.config.token,
        slot.seating,
        slot.date.start,
        slot.is_global_dining_access,
        None if exclusive is None else exclusive.is_eligible,
    )


def reference(body: bytes) -> tuple[Any, ...]:
    """What the pydantic reading keeps of a page, in plain values."""
    found = parse(SearchResponse, body, "/3/venuesearch/search")
    hits = [
        (
            h.id,
            h.name,
            h.url_slug,
            h.neighborhood,
            h.locality,
            h.cuisine,
            (h.rating.average, h.rating.count) if h.rating else None,
            h.price_range_id,
            (h.geoloc.lat, h.geoloc.lng) if h.geoloc else None,
            h.location.model_dump() if h.location else None,
            [kept(slot) for slot in h.slots],
        )
        for h in found.search.hits
    ]
    return hits, found.total_pages, found.total_hits


def fast(body: bytes) -> tuple[Any, ...]:
    page = parse_search_page(body, 1)
    loc = ("time_zone", "neighborhood", "url_slug", "code", "name")
    hits = [
        (
            h.id,
            h.name,
            h.url_slug,
            h.neighborhood,
            h.locality,
            h.cuisine,
            (h.rating.average, h.rating.count) if h.rating else None,
            h.price_range_id,
            (h.geoloc.lat, h.geoloc.lng) if h.geoloc else None,
            {k: getattr(h.location, k) for k in loc} if h.location else None,
            [kept(slot) for slot in h.slots],
        )
        for h in page.hits
    ]
    return hits, page.total_pages, page.total_hits


def same_reading(body: bytes) -> tuple[Any, ...]:
    expected = reference(body)
    assert fast(body) == expected
    return expected


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with run_in_thread(SandboxConfig(start=START, speed=0)) as handle:
        yield handle


@pytest.mark.parametrize(
    "variants",
    [
        {},
        {"search_slotless_hits": False},
        {"search_slotless_hits": True, "search_null_slots": True},
        {"restricted_slots": True},
    ],
)
def test_the_sandboxs_pages_read_the_same(sandbox: SandboxHandle, variants: dict[str, Any]) -> None:
    sandbox.state.configure_variants(**variants)
    day = START.date() + timedelta(days=3)
    slots = 0
    with httpx.Client(
        base_url=sandbox.base_url,
        headers={"Authorization": f'ResyAPI api_key="{DEMO_API_KEY}"'},
        timeout=30,
    ) as http:
        for party, page in ((2, 1), (2, 2), (4, 1)):
            body = {
                "query": "",
                "page": page,
                "per_page": 50,
                "types": ["venue"],
                "availability": True,
                "order_by": "availability",
                "slot_filter": {
                    "day": day.isoformat(),
                    "party_size": party,
                    "time_filter": "19:00",
                },
                "geo": {"bounding_box": list(MANHATTAN_BBOX)},
            }
            answer = http.post("/3/venuesearch/search", json=body)
            answer.raise_for_status()
            hits, _, _ = same_reading(answer.content)
            slots += sum(len(hit[-1]) for hit in hits)
    sandbox.state.configure_variants(
        search_slotless_hits=True, search_null_slots=False, restricted_slots=False
    )
    assert slots > 100  # real pages, not empty ones


@pytest.mark.parametrize(
    "name", ["search_namesakes", "search_page1_slotless_first", "search_page2_open"]
)
def test_the_real_shape_samples_read_the_same(name: str) -> None:
    sample = json.loads((FIXTURES / f"{name}.json").read_text())
    hits, _, _ = same_reading(json.dumps(sample["response"]["json"]).encode())
    assert hits


TOLERATED_HITS = [
    {"id": {"resy": 834}, "name": "Dame", "cuisine": "Seafood", "rating": 4.7},
    {"id": {"id": {"resy": 835}}, "name": "Wrapped twice", "rating": 4},
    {"id": {"id": 836}, "name": "Id object", "rating": {"average": 4.1, "count": None}},
    {"id": "837", "name": "Id as text", "price_range_id": "2", "rating": {"average": "4.5"}},
    {"id": 838.0, "name": "Id as a whole float"},
    {"id": 839, "name": "Nothing else"},
    {
        "id": 840,
        "name": "Every optional null",
        "url_slug": None,
        "neighborhood": None,
        "locality": None,
        "cuisine": None,
        "rating": None,
        "price_range_id": None,
        "_geoloc": None,
        "location": None,
        "availability": None,
    },
    {"id": 841, "name": "Null slots", "availability": {"slots": None}},
    {"id": 842, "name": "No slots key", "availability": {}},
    {
        "id": 843,
        "name": "Partial objects",
        "_geoloc": {"lat": 40.7},
        "location": {"url_slug": None, "time_zone": "EST5EDT", "extra": [1]},
        "cuisine": ["Thai", "Lao"],
    },
    {
        "id": 844,
        "name": "Slots of every shape",
        "availability": {
            "slots": [
                SLOT,
                {"config": {"token": "t-no-type"}, "date": {"start": "2026-12-01 19:15:00"}},
                {
                    "config": {"token": "t2", "type": None, "id": None},
                    "date": {"start": "2026-12-01 19:30:00"},
                    "is_global_dining_access": True,
                    "exclusive": None,
                },
                {
                    "config": {"token": "t3", "type": "Bar"},
                    "date": {"start": "2026-12-01 20:00:00"},
                    "exclusive": {"id": 0, "is_eligible": False},
                },
            ]
        },
    },
]


@pytest.mark.parametrize(
    "envelope",
    [
        {"search": {"hits": TOLERATED_HITS, "nbPages": 3, "nbHits": 11}},
        {"search": {"hits": TOLERATED_HITS}, "meta": {"total_pages": 2, "total": 11}},
        {"search": {"hits": TOLERATED_HITS, "pagination": {"total_pages": 4}}},
        {"search": {"hits": TOLERATED_HITS, "total_pages": 5}},
        {"search": {"hits": TOLERATED_HITS}, "total_pages": 6, "extra": None},
        {"search": {"hits": TOLERATED_HITS}},
        {"search": {}},
    ],
)
def test_missing_null_and_wrapped_fields_read_the_same(envelope: dict[str, Any]) -> None:
    hits, pages, total = same_reading(json.dumps(envelope).encode())
    if envelope["search"].get("hits"):
        assert [h[0] for h in hits] == list(range(834, 845))
        assert hits[0][5:7] == (["Seafood"], (4.7, None))
        assert [len(h[-1]) for h in hits][-4:] == [0, 0, 0, 4]
    assert (pages, total) != (None, None) or len(envelope) == 1


@pytest.mark.parametrize(
    ("body", "kind", "where"),
    [
        (b"<html>not json</html>", errors.ServerError, None),
        (b'{"hits": []}', errors.ResyError, "search"),
        (b'{"search": {"hits": [{"id": 1}]}}', errors.ResyError, "search.hits.0"),
        (b'{"search": {"hits": [{"id": 1, "name": null}]}}', errors.ResyError, "hits.0.name"),
        (b'{"search": {"hits": [{"id": "x", "name": "a"}]}}', errors.ResyError, "hits.0.id"),
        (
            b'{"search": {"hits": [{"id": 1, "name": "a", "availability": '
            b'{"slots": [{"date": {"start": "2026-12-01 19:00:00"}}]}}]}}',
            errors.ResyError,
            "config",
        ),
    ],
)
def test_a_broken_page_fails_as_the_pydantic_reading_does(
    body: bytes, kind: type[errors.ResyError], where: str | None
) -> None:
    with pytest.raises(kind) as pydantic_error:
        reference(body)
    with pytest.raises(kind) as fast_error:
        fast(body)
    assert type(fast_error.value) is type(pydantic_error.value)
    if where is not None:
        assert where in str(fast_error.value)
        assert str(fast_error.value).startswith("unexpected response from /3/venuesearch/search")
