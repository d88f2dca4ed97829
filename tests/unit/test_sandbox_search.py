"""The sandbox's search route and slot JSON: pre-encoded fast paths equal the plain encoding."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from resywatch.sandbox import (
    DEMO_API_KEY,
    TIME_FILTER_WINDOW_MIN,
    SandboxConfig,
    SandboxHandle,
    run_in_thread,
)
from resywatch.sandbox.payloads import Payloads, dumps
from resywatch.sandbox.search_index import haystack
from resywatch.sandbox.state import SandboxState
from resywatch.sandbox.venues import MANHATTAN_BBOX, Venue
from resywatch.sandbox.world import World

START = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
NOW = START.timestamp()
HEADERS = {"Authorization": f'ResyAPI api_key="{DEMO_API_KEY}"'}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with run_in_thread(SandboxConfig(start=START, speed=0)) as handle:
        yield handle


@pytest.fixture
def client(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, headers=HEADERS, timeout=30) as http:
        yield http


def _in_area(venue: Venue, geo: dict[str, Any] | None) -> bool:
    if not geo:
        return True
    south, west, north, east = geo["bounding_box"]
    return bool(south <= venue.lat <= north and west <= venue.lng <= east)


def reference_search(state: SandboxState, body: dict[str, Any]) -> bytes:
    """The search body built the plain way: dicts of every hit and slot, then one `dumps`."""
    payloads, world, now = Payloads(state.world), state.world, state.clock.now()
    query = str(body.get("query") or "").strip().lower()
    per_page = min(max(int(body.get("per_page", 20)), 1), 100)
    page = max(int(body.get("page", 1)), 1)
    slot_filter = body.get("slot_filter") or {}
    day = date.fromisoformat(slot_filter["day"])
    party = int(slot_filter.get("party_size", 2))
    window = None
    if slot_filter.get("time_filter"):
        hours, minutes = slot_filter["time_filter"].split(":")[:2]
        anchor = int(hours) * 60 + int(minutes)
        window = (anchor - TIME_FILTER_WINDOW_MIN, anchor + TIME_FILTER_WINDOW_MIN)
    matches: list[tuple[Venue, Any]] = []
    slots: list[dict[str, Any]] | None
    variants = state.variants
    for venue in world.venues:
        if (query and query not in haystack(venue)) or not _in_area(venue, body.get("geo")):
            continue
        if not body.get("availability"):
            matches.append((venue, None))
            continue
        snap = world.snapshot(venue, day, now)
        slots = [
            payloads.slot(snap, i, party)
            for i in snap.open_for(party)
            if window is None or window[0] <= snap.slots[i].minute <= window[1]
        ]
        if slots:
            matches.append((venue, {"slots": slots}))
        elif variants.search_slotless_hits:  # S4: slot-less hits in among the rest
            empty = None if variants.search_null_slots else []
            matches.append((venue, {"slots": empty} if snap.avail else None))
    matches.sort(key=lambda m: (-m[0].rating_average, m[0].id))
    total, pages = len(matches), math.ceil(len(matches) / per_page)
    hits = []
    for venue, availability in matches[(page - 1) * per_page : page * per_page]:
        hit = dict(payloads.search_hit(venue))
        if body.get("availability"):
            hit["availability"] = availability
        hits.append(hit)
    return dumps(
        {
            "search": {
                "hits": hits,
                "nbHits": total,
                "page": page,
                "nbPages": pages,
                "hitsPerPage": per_page,
            },
            "meta": {"page": page, "per_page": per_page, "total": total, "total_pages": pages},
            "suggestions": [],
        }
    )


BOX = {"bounding_box": list(MANHATTAN_BBOX)}


@pytest.mark.parametrize(
    "body",
    [
        {
            "availability": True,
            "per_page": 100,
            "geo": BOX,
            "slot_filter": {"time_filter": "19:00"},
        },
        {"availability": True, "per_page": 100, "page": 2, "slot_filter": {"time_filter": "19:00"}},
        {"availability": True, "per_page": 7, "page": 3, "slot_filter": {"party_size": 4}},
        {"availability": True, "per_page": 10, "page": 99, "slot_filter": {"time_filter": "12:00"}},
        {"availability": True, "query": "pizza", "slot_filter": {"party_size": 1}},
        {"availability": True, "slot_filter": {"party_size": 20, "time_filter": "19:00"}},
        {"availability": False, "per_page": 25, "page": 2, "geo": BOX, "slot_filter": {}},
        {"query": "carbone", "slot_filter": {}},
    ],
)
@pytest.mark.parametrize("ahead", [-1, 0, 2, 9, 40])
@pytest.mark.parametrize("slotless", ["interleaved", "null", "omitted"])
def test_search_equals_the_plain_encoding(
    sandbox: SandboxHandle, client: httpx.Client, body: dict[str, Any], ahead: int, slotless: str
) -> None:
    state = sandbox.state
    state.configure_variants(
        search_slotless_hits=slotless != "omitted", search_null_slots=slotless == "null"
    )
    day = (datetime.fromtimestamp(NOW, UTC) + timedelta(days=ahead)).date().isoformat()
    body = {**body, "slot_filter": {"day": day, **body["slot_filter"]}}
    response = client.post("/3/venuesearch/search", json=body)
    assert response.status_code == 200
    assert response.content == reference_search(state, body)


def test_search_follows_the_world_as_it_changes(
    sandbox: SandboxHandle, client: httpx.Client
) -> None:
    state = sandbox.state
    day = (datetime.fromtimestamp(NOW, UTC) + timedelta(days=3)).date()
    body = {
        "availability": True,
        "per_page": 100,
        "slot_filter": {"day": day.isoformat(), "time_filter": "19:00"},
    }
    before = client.post("/3/venuesearch/search", json=body)
    hit = before.json()["search"]["hits"][0]
    slot = hit["availability"]["slots"][0]
    venue = state.world.by_id[hit["id"]["resy"]]
    index = state.world.slot_index(venue, slot["date"]["start"][11:], slot["config"]["type"])
    assert index is not None
    state.world.adjust(venue, day, index, 3)
    after = client.post("/3/venuesearch/search", json=body).content
    assert after != before.content
    assert after.count(b'"quantity":') == before.content.count(b'"quantity":')
    assert after == reference_search(state, body)
    state.clock.advance(4 * 86400)  # the day is past: nothing left to offer
    gone = client.post("/3/venuesearch/search", json=body).json()
    assert gone["meta"]["total"] == 0 and gone["search"]["hits"] == []
    state.clock.set(NOW)


def test_slot_json_equals_dumps_of_the_slot() -> None:
    world = World(seed=42, venue_count=300)
    payloads = Payloads(world)
    now = NOW
    for venue in world.venues[::3]:
        for ahead in (0, 3, 6):
            day = world.local_today(venue, now) + timedelta(days=ahead)
            snap = world.snapshot(venue, day, now)
            for party in (1, 2, 5):
                for i in range(len(snap.slots)):
                    assert payloads.slot_json(snap, i, party) == dumps(
                        payloads.slot(snap, i, party)
                    )


@pytest.mark.parametrize("seed", [42, 7])
def test_slot_definitions_are_in_time_order(seed: int) -> None:
    # Search picks a venue's slots in the time window by bisecting their start minutes.
    world = World(seed=seed, venue_count=300)
    for venue in world.venues:
        minutes = [slot.minute for slot in world.slot_defs(venue)]
        assert minutes == sorted(minutes)


def test_snapshot_fast_path_never_serves_a_past_day() -> None:
    world = World(seed=42, venue_count=300)
    for venue in world.venues[:60]:
        day = world.local_today(venue, NOW) + timedelta(days=1)
        snap = world.snapshot(venue, day, NOW + 86400)
        if not snap.slots:
            continue
        midnight = datetime(day.year, day.month, day.day, tzinfo=world.zone(venue)) + timedelta(
            days=1
        )
        assert snap.valid_until <= midnight.timestamp()
        assert world.snapshot(venue, day, midnight.timestamp()).slots == ()


@pytest.mark.parametrize(
    "geo", ["nearby", {"bounding_box": [40.7, -74.0]}, {"latitude": "x", "longitude": 1}]
)
def test_invalid_geo_is_a_400(client: httpx.Client, geo: Any) -> None:
    response = client.post("/3/venuesearch/search", json={"geo": geo})
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid geo"
