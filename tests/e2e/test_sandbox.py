"""The sandbox over real loopback HTTP: Resy's contract (RESY_API.md §2-7) and the controls."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from resywatch.sandbox import (
    DEMO_EMAIL,
    DEMO_PASSWORD,
    DEMO_PAYMENT_METHOD_ID,
    TIME_FILTER_WINDOW_MIN,
    SandboxConfig,
    SandboxHandle,
    SandboxState,
    run_in_thread,
)
from resywatch.sandbox.venues import MANHATTAN_BBOX, Venue

UNAUTHORIZED: dict[str, Any] = {"status": 419, "code": None, "message": "Unauthorized", "data": {}}
TOKEN_RE = re.compile(
    r"^rgs://resy/(\d+)/(\d+)/(\d+)/(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})/(\d{2}:\d{2}:\d{2})/(\d+)/(.+)$"
)
LOCAL_STAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
PAYMENT_METHOD = json.dumps({"id": DEMO_PAYMENT_METHOD_ID})
Headers = Callable[..., dict[str, str]]


# -- helpers --------------------------------------------------------------------------------------


def pick(
    sandbox: SandboxHandle,
    accept: Callable[[Venue], bool] = lambda v: True,
    party: int = 2,
    min_slots: int = 1,
) -> tuple[int, str]:
    """(venue id, day) of the first venue passing ``accept`` with ``min_slots`` slots open."""
    world, now = sandbox.state.world, sandbox.state.clock.now()
    for venue in world.venues:
        if not accept(venue):
            continue
        for ahead in range(2, 10):
            day = world.local_today(venue, now) + timedelta(days=ahead)
            if len(world.snapshot(venue, day, now).open_for(party)) >= min_slots:
                return venue.id, day.isoformat()
    raise AssertionError("no venue with free tables")


def plain(venue: Venue) -> bool:
    return not venue.payment_required and not venue.cannot_take_payment


def find_slots(
    client: httpx.Client, venue_id: int, day: str, party: int = 2
) -> list[dict[str, Any]]:
    response = client.get(
        "/4/find",
        params={"venue_id": venue_id, "day": day, "party_size": party, "lat": 0, "long": 0},
    )
    assert response.status_code == 200, response.text
    venues = response.json()["results"]["venues"]
    assert len(venues) == 1
    slots: list[dict[str, Any]] = venues[0]["slots"]
    return slots


def book_token(client: httpx.Client, slot: dict[str, Any], day: str, party: int = 2) -> str:
    response = client.post(
        "/3/details", json={"config_id": slot["config"]["token"], "day": day, "party_size": party}
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["book_token"]["value"]
    return value


def book(client: httpx.Client, token: str, payment: str | None = PAYMENT_METHOD) -> httpx.Response:
    form = {"book_token": token, "source_id": "resy.com-venue-details"}
    if payment is not None:
        form["struct_payment_method"] = payment
    return client.post("/3/book", data=form)


def control(client: httpx.Client, path: str, body: dict[str, Any] | None = None) -> Any:
    response = client.post(f"/__sandbox/{path}", json=body or {})
    assert response.status_code == 200, response.text
    return response.json()


def set_fault(client: httpx.Client, **rule: Any) -> None:
    control(client, "faults", rule)


# -- authentication -------------------------------------------------------------------------------


def test_missing_or_wrong_api_key_is_419(sandbox: SandboxHandle, resy_headers: Headers) -> None:
    params: dict[str, str | int] = {"venue_id": 6194, "day": "2026-03-10", "party_size": 2}
    with httpx.Client(base_url=sandbox.base_url) as client:
        assert client.get("/4/find", params=params).json() == UNAUTHORIZED
        wrong = client.get("/4/find", params=params, headers=resy_headers(api_key="not-the-key"))
        assert wrong.status_code == 419
        assert wrong.json() == UNAUTHORIZED
        bare = client.get(
            "/4/find", params=params, headers={"Authorization": "resywatch-sandbox-key"}
        )
        assert bare.status_code == 419
        ok = client.get("/4/find", params=params, headers=resy_headers(auth_token=None))
        assert ok.status_code == 200


def test_user_routes_need_a_valid_token(sandbox: SandboxHandle, resy_headers: Headers) -> None:
    with httpx.Client(base_url=sandbox.base_url) as client:
        assert client.get("/2/user", headers=resy_headers(auth_token=None)).json() == UNAUTHORIZED
        assert client.get("/2/user", headers=resy_headers(auth_token="a.b.c")).status_code == 419
        headers = resy_headers()
        del headers["X-Resy-Auth-Token"]  # the universal header alone is enough
        me = client.get("/2/user", headers=headers)
        assert me.status_code == 200
        assert me.json()["payment_methods"][0]["id"] == DEMO_PAYMENT_METHOD_ID


def test_password_login_mints_tokens_that_expire_by_the_sandbox_clock(
    resy_http: httpx.Client,
) -> None:
    bad = resy_http.post("/3/auth/password", data={"email": DEMO_EMAIL, "password": "nope"})
    assert bad.status_code == 419
    v3 = resy_http.post("/3/auth/password", data={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
    assert v3.status_code == 200
    assert v3.json()["em_address"] == DEMO_EMAIL
    control(resy_http, "auth", {"token_lifetime_s": 600})
    v4 = resy_http.post("/4/auth/password", data={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
    token = v4.json()["token"]
    assert "production_refresh_token" in v4.headers["set-cookie"]
    claims = json.loads(_b64(token.split(".")[1]))
    assert claims["gt"] == "consumer" and "uid" in claims
    assert claims["exp"] == int(resy_http.get("/__sandbox/time").json()["epoch"]) + 600
    as_user = {"X-Resy-Auth-Token": token, "X-Resy-Universal-Auth": token}
    assert resy_http.get("/2/user", headers=as_user).status_code == 200
    control(resy_http, "time", {"advance": 601})
    assert resy_http.get("/2/user", headers=as_user).json() == UNAUTHORIZED
    # The client's cookie jar kept the refresh cookie from /4/auth/password.
    assert resy_http.cookies.get("production_refresh_token") == _cookie(v4)
    refreshed = resy_http.post("/3/auth/refresh")
    assert refreshed.status_code == 200
    fresh = refreshed.json()["token"]
    assert resy_http.get("/2/user", headers={"X-Resy-Auth-Token": fresh}).status_code == 200
    resy_http.cookies.clear()
    assert resy_http.post("/3/auth/refresh").json() == UNAUTHORIZED


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cookie(response: httpx.Response) -> str:
    match = re.search(r"production_refresh_token=([^;]+)", response.headers["set-cookie"])
    assert match
    return match.group(1)


def test_expired_tokens_and_302_mode(resy_http: httpx.Client) -> None:
    control(resy_http, "auth", {"expire_tokens": True})
    assert resy_http.get("/2/user").json() == UNAUTHORIZED
    control(resy_http, "auth", {"redirect_on_failure": True})
    redirected = resy_http.get("/3/user/reservations")
    assert redirected.status_code == 302
    assert "/login" in redirected.headers["location"]
    # The stale token still sent (resy_http sends it everywhere) also breaks the login.
    credentials = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    assert resy_http.post("/3/auth/password", data=credentials).status_code == 302
    key_only = {"authorization": resy_http.headers["authorization"]}
    login = httpx.post(f"{resy_http.base_url}/3/auth/password", data=credentials, headers=key_only)
    token = login.json()["token"]
    assert resy_http.get("/2/user", headers={"X-Resy-Auth-Token": token}).status_code == 200
    control(resy_http, "auth", {"expire_tokens": False, "redirect_on_failure": False})
    assert resy_http.get("/2/user").status_code == 200


@pytest.mark.parametrize("redirect_on_failure", [False, True])
def test_a_sent_stale_token_breaks_key_only_routes_too(
    sandbox: SandboxHandle, resy_http: httpx.Client, redirect_on_failure: bool
) -> None:
    """S1: real Resy answered an expired token on a /4/find with a redirect to its login
    page. Without a token the same key-only routes answer; user routes refuse either way
    (419 or 302: both are seen in public clients, hence the switch)."""
    venue_id, day = pick(sandbox)
    control(resy_http, "auth", {"expire_tokens": True, "redirect_on_failure": redirect_on_failure})
    key_only = httpx.Client(
        base_url=sandbox.base_url,
        headers={k: v for k, v in resy_http.headers.items() if not k.startswith("x-resy-")},
    )
    routes = [
        ("GET", "/4/find", {"params": {"venue_id": venue_id, "day": day, "party_size": 2}}),
        ("GET", "/3/venue", {"params": {"id": venue_id}}),
        ("GET", "/2/config", {"params": {"venue_id": venue_id}}),
        ("POST", "/3/venuesearch/search", {"json": {"query": "", "per_page": 1}}),
    ]
    for method, path, options in routes:
        stale = resy_http.request(method, path, **options)
        assert stale.status_code == 302, path
        assert "/login" in stale.headers["location"]
        assert key_only.request(method, path, **options).status_code == 200
    key_only.close()
    refused = resy_http.get("/2/user")
    assert refused.status_code == (302 if redirect_on_failure else 419)


# -- find, details, book, cancel ------------------------------------------------------------------


def test_find_shape(sandbox: SandboxHandle, resy_http: httpx.Client) -> None:
    venue_id, day = pick(sandbox)
    slots = find_slots(resy_http, venue_id, day)
    assert slots
    body = resy_http.get(
        "/4/find", params={"venue_id": venue_id, "day": day, "party_size": 2}
    ).json()
    assert body["query"] == {"day": day, "party_size": 2}
    venue = body["results"]["venues"][0]["venue"]
    assert venue["id"] == {"resy": venue_id}
    assert venue["location"]["time_zone"] in ("America/New_York", "EST5EDT")
    for slot in slots:
        match = TOKEN_RE.match(slot["config"]["token"])
        assert match, slot["config"]["token"]
        assert int(match.group(1)) == venue_id
        assert match.group(4) == match.group(5) == day
        assert match.group(7) == "2"
        assert match.group(8) == slot["config"]["type"]
        assert int(match.group(2)) == slot["template"]["id"]
        assert int(match.group(3)) == slot["shift"]["service"]["type"]["id"]
        assert LOCAL_STAMP_RE.match(slot["date"]["start"]) and LOCAL_STAMP_RE.match(
            slot["date"]["end"]
        )
        assert slot["date"]["start"].startswith(day)
        assert slot["date"]["start"][11:] == match.group(6)
        assert slot["quantity"] >= 1
        assert slot["size"]["min"] <= 2 <= slot["size"]["max"]
        assert isinstance(slot["market"]["date"]["on"], int)
        assert slot["market"]["date"]["off"] > slot["market"]["date"]["on"]
        assert slot["payment"]["service_charge"] is None
        assert isinstance(slot["config"]["id"], int)
    post = resy_http.post(
        "/4/find", json={"venue_id": venue_id, "day": day, "party_size": 2, "lat": 0, "long": 0}
    )
    assert post.json()["results"]["venues"][0]["slots"] == slots
    unknown = resy_http.get("/4/find", params={"venue_id": 1, "day": day, "party_size": 2})
    assert unknown.status_code == 400  # S3: see test_find_for_an_unknown_venue
    assert (
        resy_http.get(
            "/4/find", params={"venue_id": venue_id, "day": "soon", "party_size": 2}
        ).status_code
        == 400
    )


def test_find_details_book_list_cancel(sandbox: SandboxHandle, resy_http: httpx.Client) -> None:
    venue_id, day = pick(sandbox, plain)
    slot = find_slots(resy_http, venue_id, day)[0]
    details = resy_http.post(
        "/3/details",
        json={"config_id": slot["config"]["token"], "day": day, "party_size": "2", "commit": 1},
    )
    assert details.status_code == 200
    body = details.json()
    assert "|" in body["book_token"]["value"]
    expires = datetime.fromisoformat(body["book_token"]["date_expires"].replace("Z", "+00:00"))
    assert expires.timestamp() == pytest.approx(sandbox.state.clock.now() + 300, abs=1)
    assert body["payment"]["config"]["type"] == "free"
    assert body["payment"]["amounts"]["total"] == 0
    assert body["cancellation"]["fee"] is None
    assert body["user"]["payment_methods"][0]["id"] == DEMO_PAYMENT_METHOD_ID
    # The older GET form of /3/details answers the same way.
    legacy = resy_http.get(
        "/3/details", params={"config_id": slot["config"]["token"], "day": day, "party_size": 2}
    )
    assert legacy.status_code == 200 and legacy.json()["book_token"]["value"]

    booked = book(resy_http, body["book_token"]["value"])
    assert booked.status_code == 201, booked.text
    reservation = booked.json()
    assert set(reservation) == {"resy_token", "reservation_id", "venue_opt_in"}
    left = {s["config"]["token"]: s["quantity"] for s in find_slots(resy_http, venue_id, day)}
    assert left.get(slot["config"]["token"], 0) == slot["quantity"] - 1

    upcoming = resy_http.get(
        "/3/user/reservations", params={"type": "upcoming", "limit": 10, "offset": 0}
    ).json()
    assert [r["reservation_id"] for r in upcoming["reservations"]] == [
        reservation["reservation_id"]
    ]
    listed = upcoming["reservations"][0]
    assert listed["day"] == day and listed["time_slot"] == slot["date"]["start"][11:]
    assert listed["venue"]["id"] == venue_id and listed["num_seats"] == 2
    assert upcoming["venues"][str(venue_id)]["name"]
    assert (
        resy_http.get("/3/user/reservations", params={"type": "past"}).json()["reservations"] == []
    )

    cancelled = resy_http.post("/3/cancel", data={"resy_token": reservation["resy_token"]})
    assert cancelled.status_code == 200
    assert cancelled.json() == {"payment": {"refund": 1}}
    assert resy_http.get("/3/user/reservations").json()["reservations"] == []
    again = {s["config"]["token"]: s["quantity"] for s in find_slots(resy_http, venue_id, day)}
    assert again[slot["config"]["token"]] == slot["quantity"]
    assert (
        resy_http.post("/3/cancel", data={"resy_token": reservation["resy_token"]}).status_code
        == 419
    )


def test_book_a_slot_taken_after_details_is_404(
    sandbox: SandboxHandle, resy_http: httpx.Client
) -> None:
    venue_id, day = pick(sandbox, plain)
    slot = find_slots(resy_http, venue_id, day)[0]
    token = book_token(resy_http, slot, day)
    time_slot, seating = slot["date"]["start"][11:16], slot["config"]["type"]
    # Someone else takes every free table between /3/details and /3/book.
    control(
        resy_http,
        "slots",
        {
            "venue_id": venue_id,
            "day": day,
            "time": time_slot,
            "seating": seating,
            "delta": -slot["quantity"],
        },
    )
    gone = book(resy_http, token)
    assert gone.status_code == 404
    assert gone.json()["status"] == 404
    # Resy still hands out a book token for the gone slot.
    assert book_token(resy_http, slot, day)


def test_second_booking_same_venue_and_day_is_412(
    sandbox: SandboxHandle, resy_http: httpx.Client
) -> None:
    venue_id, day = pick(sandbox, plain, min_slots=2)
    first, second = find_slots(resy_http, venue_id, day)[:2]
    held = book(resy_http, book_token(resy_http, first, day)).json()
    conflict = book(resy_http, book_token(resy_http, second, day))
    assert conflict.status_code == 412
    specs = conflict.json()["specs"]
    assert specs["reservation_id"] == held["reservation_id"]
    assert specs["venue_id"] == venue_id and specs["day"] == day


def test_card_required_venue_is_402_without_a_card(
    sandbox: SandboxHandle, resy_http: httpx.Client
) -> None:
    venue_id, day = pick(sandbox, lambda v: v.payment_required)
    slots = find_slots(resy_http, venue_id, day)
    details = resy_http.post(
        "/3/details", json={"config_id": slots[0]["config"]["token"], "day": day, "party_size": 2}
    )
    assert details.json()["payment"]["config"]["type"] != "free"
    assert details.json()["cancellation"]["fee"]["amount"] > 0
    assert book(resy_http, book_token(resy_http, slots[0], day), payment=None).status_code == 402
    control(resy_http, "auth", {"has_card": False})
    assert resy_http.get("/2/user").json()["payment_method_id"] is None
    assert book(resy_http, book_token(resy_http, slots[0], day)).status_code == 402
    control(resy_http, "auth", {"has_card": True})
    assert book(resy_http, book_token(resy_http, slots[0], day)).status_code == 201


def test_venue_that_cannot_take_payment_is_403_with_a_card(
    sandbox: SandboxHandle, resy_http: httpx.Client
) -> None:
    venue_id, day = pick(sandbox, lambda v: v.cannot_take_payment)
    slot = find_slots(resy_http, venue_id, day)[0]
    refused = book(resy_http, book_token(resy_http, slot, day))
    assert refused.status_code == 403
    assert refused.json()["status"] == 403
    assert refused.json()["message"] == (
        "This venue is not set up to accept payment methods. "
        "Please contact the venue for assistance."
    )
    assert book(resy_http, book_token(resy_http, slot, day), payment=None).status_code == 201


def test_book_token_expires_after_five_minutes(
    sandbox: SandboxHandle, resy_http: httpx.Client
) -> None:
    venue_id, day = pick(sandbox, plain)
    slot = find_slots(resy_http, venue_id, day)[0]
    token = book_token(resy_http, slot, day)
    control(resy_http, "time", {"advance": 301})
    expired = book(resy_http, token)
    assert expired.status_code == 412
    assert "specs" not in expired.json()


# -- search ---------------------------------------------------------------------------------------


def search(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/3/venuesearch/search", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_search_pagination_covers_every_hit_once(resy_http: httpx.Client) -> None:
    first = search(resy_http, query="", per_page=25, page=1, types=["venue"])
    total, pages = first["meta"]["total"], first["meta"]["total_pages"]
    assert total == 300 and pages == 12
    assert first["search"]["nbHits"] == total and first["search"]["nbPages"] == pages
    assert first["search"]["hitsPerPage"] == 25
    seen: list[int] = []
    for page in range(1, pages + 1):
        body = search(resy_http, query="", per_page=25, page=page)
        assert body["meta"]["page"] == page
        seen += [hit["id"]["resy"] for hit in body["search"]["hits"]]
    assert len(seen) == len(set(seen)) == total
    assert search(resy_http, per_page=25, page=pages + 1)["search"]["hits"] == []
    hit = first["search"]["hits"][0]
    assert hit["objectID"] == str(hit["id"]["resy"])
    assert {
        "name",
        "url_slug",
        "neighborhood",
        "cuisine",
        "rating",
        "price_range_id",
        "_geoloc",
    } <= set(hit)
    assert hit["location"]["url_slug"] == "new-york-ny"
    assert set(hit["rating"]) == {"average", "count"}


def test_search_query_matches_names(resy_http: httpx.Client) -> None:
    hits = search(resy_http, query="carbone")["search"]["hits"]
    assert [h["name"] for h in hits] == ["Carbone"]
    assert [h["name"] for h in search(resy_http, query="rezdora")["search"]["hits"]] == ["Rezdôra"]


def test_search_bounding_box_and_radius(resy_http: httpx.Client) -> None:
    south, west, north, east = MANHATTAN_BBOX
    inside = search(resy_http, per_page=100, geo={"bounding_box": [south, west, north, east]})
    everywhere = search(resy_http, per_page=100)
    assert 0 < inside["meta"]["total"] < everywhere["meta"]["total"]
    for page in range(1, inside["meta"]["total_pages"] + 1):
        body = search(
            resy_http, per_page=100, page=page, geo={"bounding_box": [south, west, north, east]}
        )
        for hit in body["search"]["hits"]:
            assert south <= hit["_geoloc"]["lat"] <= north and west <= hit["_geoloc"]["lng"] <= east
    near = search(
        resy_http, per_page=100, geo={"latitude": 40.7358, "longitude": -74.0036, "radius": 800}
    )
    assert 0 < near["meta"]["total"] < inside["meta"]["total"]


def test_search_time_filter_window(sandbox: SandboxHandle, resy_http: httpx.Client) -> None:
    day = (sandbox.state.clock.now_datetime() + timedelta(days=3)).date().isoformat()
    base = {"per_page": 100, "availability": True, "geo": {"bounding_box": list(MANHATTAN_BBOX)}}
    windowed = search(
        resy_http, **base, slot_filter={"day": day, "party_size": 2, "time_filter": "19:00"}
    )
    whole_day = search(resy_http, **base, slot_filter={"day": day, "party_size": 2})
    assert windowed["meta"]["total"] > 0
    starts = [slot["date"]["start"] for hit in windowed["search"]["hits"] for slot in slots(hit)]
    assert starts
    for start in starts:
        minute = int(start[11:13]) * 60 + int(start[14:16])
        assert abs(minute - 19 * 60) <= TIME_FILTER_WINDOW_MIN
        assert start.startswith(day)
    all_starts = {
        slot["date"]["start"][11:16] for hit in whole_day["search"]["hits"] for slot in slots(hit)
    }
    assert any(
        abs(int(t[:2]) * 60 + int(t[3:]) - 19 * 60) > TIME_FILTER_WINDOW_MIN for t in all_starts
    )
    slot = next(slot for hit in windowed["search"]["hits"] for slot in slots(hit))
    assert TOKEN_RE.match(slot["config"]["token"])


def slots(hit: dict[str, Any]) -> list[dict[str, Any]]:
    """A hit's slots: real hits may have `availability: null` or no slots (S4)."""
    found: list[dict[str, Any]] = (hit.get("availability") or {}).get("slots") or []
    return found


# -- venue, config, calendar ----------------------------------------------------------------------


def test_config_and_venue(resy_http: httpx.Client) -> None:
    config = resy_http.get("/2/config", params={"venue_id": 1505}).json()
    assert config["lead_time_in_days"] == 7
    assert config["venue"]["name"] == "Don Angie"
    assert config["service_types"][0]["filters"]
    venue = resy_http.get("/3/venue", params={"id": 6194}).json()
    assert venue["id"]["resy"] == 6194 and venue["url_slug"] == "carbone"
    assert venue["locale"] == {"currency": "USD", "time_zone": "America/New_York"}
    assert any(c["name"] == "need_to_know" for c in venue["content"])
    wrong_param = resy_http.get("/3/venue", params={"venue_id": 6194})
    assert wrong_param.json()["data"] == {"id": "missing"}
    assert resy_http.get("/2/config", params={"venue_id": 1}).status_code == 404
    assert resy_http.get("/3/geoip").json()["success"] is True


def test_calendar(sandbox: SandboxHandle, resy_http: httpx.Client) -> None:
    venue = sandbox.state.world.by_id[pick(sandbox, lambda v: v.popularity == "cool")[0]]
    now = sandbox.state.clock.now()
    today = sandbox.state.world.local_today(venue, now)
    params: dict[str, str | int] = {
        "venue_id": venue.id,
        "num_seats": 2,
        "start_date": today.isoformat(),
        "end_date": (today + timedelta(days=60)).isoformat(),
    }
    body = resy_http.get("/4/venue/calendar", params=params).json()
    last = date.fromisoformat(body["last_calendar_day"])
    assert (
        today + timedelta(days=venue.lead_time_days - 1)
        <= last
        <= today + timedelta(days=venue.lead_time_days + 1)
    )
    days = [entry["date"] for entry in body["scheduled"]]
    assert days == [(today + timedelta(days=i)).isoformat() for i in range((last - today).days + 1)]
    allowed = {"available", "sold-out", "closed", "not available"}
    for entry in body["scheduled"]:
        assert entry["inventory"]["reservation"] in allowed
        assert set(entry["inventory"]) == {"reservation", "event", "walk-in"}
    v3 = resy_http.get("/3/venue/calendar", params=params).json()
    assert v3["events"] == [] and v3["scheduled"] == body["scheduled"]
    assert resy_http.get("/4/venue/calendar", params={**params, "venue_id": 1}).status_code == 404


# -- time and releases ----------------------------------------------------------------------------


def test_advancing_time_releases_the_next_day(
    sandbox: SandboxHandle, resy_http: httpx.Client
) -> None:
    venue_id, _ = pick(sandbox, lambda v: v.popularity == "cool" and plain(v))
    calendar = resy_http.get(
        "/4/venue/calendar", params={"venue_id": venue_id, "num_seats": 2}
    ).json()
    last = date.fromisoformat(calendar["last_calendar_day"])
    venue = sandbox.state.world.by_id[venue_id]
    nxt = last + timedelta(days=1)
    while nxt.weekday() in venue.closed_weekdays:
        nxt += timedelta(days=1)
    assert find_slots(resy_http, venue_id, nxt.isoformat()) == []
    release = resy_http.get(
        "/__sandbox/release", params={"venue_id": venue_id, "day": nxt.isoformat()}
    ).json()
    assert release["released"] is False
    control(resy_http, "time", {"set": release["release_epoch"] - 1})
    assert find_slots(resy_http, venue_id, nxt.isoformat()) == []
    control(resy_http, "time", {"advance": 1.5})
    assert find_slots(resy_http, venue_id, nxt.isoformat())
    calendar = resy_http.get(
        "/4/venue/calendar", params={"venue_id": venue_id, "num_seats": 2}
    ).json()
    assert calendar["last_calendar_day"] == nxt.isoformat()


def test_forced_release_instant(sandbox: SandboxHandle, resy_http: httpx.Client) -> None:
    now = resy_http.get("/__sandbox/time").json()["epoch"]
    day = (sandbox.state.clock.now_datetime() + timedelta(days=40)).date()
    venue = sandbox.state.world.by_id[1505]
    while day.weekday() in venue.closed_weekdays:
        day += timedelta(days=1)
    forced = control(
        resy_http, "release", {"venue_id": 1505, "day": day.isoformat(), "at": now + 30}
    )
    assert forced["release_epoch"] == now + 30 and forced["released"] is False
    assert find_slots(resy_http, 1505, day.isoformat()) == []
    control(resy_http, "time", {"advance": 30})
    slots = find_slots(resy_http, 1505, day.isoformat())
    assert slots, "a hot venue has tables at the release instant"
    assert slots[0]["market"]["date"]["on"] == int(now + 30)
    control(resy_http, "time", {"advance": 120})
    assert len(find_slots(resy_http, 1505, day.isoformat())) < len(slots), (
        "and loses them within seconds"
    )


def test_world_control(resy_http: httpx.Client) -> None:
    assert resy_http.get("/__sandbox/world").json() == {
        "seed": 42,
        "venues": 300,
        "cancellations": True,
    }
    assert control(resy_http, "world", {"cancellations": False})["cancellations"] is False


def test_time_control(resy_http: httpx.Client) -> None:
    body = control(resy_http, "time", {"set": "2026-06-01T12:00:00Z", "speed": 0})
    assert body["now"] == "2026-06-01T12:00:00Z" and body["speed"] == 0
    assert control(resy_http, "time", {"advance": 90})["now"] == "2026-06-01T12:01:30Z"
    bad = resy_http.post("/__sandbox/time", json={"advance": "soon"})
    assert bad.status_code == 400


# -- faults ---------------------------------------------------------------------------------------


@pytest.mark.timed
def test_429_with_retry_after_seconds_and_http_date(resy_http: httpx.Client) -> None:
    set_fault(resy_http, route="/3/geoip", fail_next=1, fail_status=429, retry_after=7)
    limited = resy_http.get("/3/geoip")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["status"] == 429
    assert resy_http.get("/3/geoip").status_code == 200
    set_fault(
        resy_http,
        route="/3/geoip",
        fail_next=1,
        fail_status=429,
        retry_after=30,
        retry_after_format="http-date",
    )
    dated = resy_http.get("/3/geoip")
    assert dated.status_code == 429
    wait = parsedate_to_datetime(dated.headers["retry-after"]).timestamp() - time.time()
    assert 25 <= wait <= 31


def test_fail_next_is_count_based_and_looks_like_imperva(resy_http: httpx.Client) -> None:
    set_fault(resy_http, route="/4/find", fail_next=2, fail_status=503, retry_after=2)
    params: dict[str, str | int] = {"venue_id": 6194, "day": "2026-03-10", "party_size": 2}
    first, second, third = (resy_http.get("/4/find", params=params) for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["x-cdn"] == "Imperva"
    assert first.headers["retry-after"] == "2"
    assert first.headers["content-type"].startswith("text/html")
    assert "Incapsula" in first.text


def _error_pattern(config: SandboxConfig) -> list[int]:
    with run_in_thread(config) as handle, httpx.Client(base_url=handle.base_url) as client:
        control(
            client, "faults", {"route": "*", "error_rate": 0.4, "error_statuses": [500, 502, 503]}
        )
        return [client.get("/3/geoip").status_code for _ in range(40)]


def test_error_rate_is_seeded(sandbox_config: SandboxConfig) -> None:
    pattern = _error_pattern(sandbox_config)
    assert pattern == _error_pattern(sandbox_config), "same seed, same failures"
    failures = [s for s in pattern if s != 419]
    assert 5 <= len(failures) <= 30
    assert set(failures) <= {500, 502, 503} and len(set(failures)) >= 2
    # (419: no API key was sent; the CDN fails a request before the API looks at it.)
    assert set(pattern) - {500, 502, 503} == {419}


def test_book_can_be_forced_to_fail_with_resy_bodies(
    sandbox: SandboxHandle, resy_http: httpx.Client
) -> None:
    venue_id, day = pick(sandbox, plain)
    slot = find_slots(resy_http, venue_id, day)[0]
    set_fault(resy_http, route="/3/book", fail_next=1, fail_status=412)
    forced = book(resy_http, book_token(resy_http, slot, day))
    assert forced.status_code == 412 and forced.json()["status"] == 412
    assert book(resy_http, book_token(resy_http, slot, day)).status_code == 201


def test_missing_browser_user_agent_is_500(sandbox: SandboxHandle, resy_headers: Headers) -> None:
    with httpx.Client(base_url=sandbox.base_url) as client:
        control(client, "faults", {"route": "*", "require_browser_ua": True})
        headers = resy_headers()
        assert client.get("/3/geoip", headers=headers).status_code == 200
        headers["User-Agent"] = "python-requests/2.32"
        assert client.get("/3/geoip", headers=headers).status_code == 500
        del headers["User-Agent"]
        assert client.get("/3/geoip", headers=headers).status_code == 500


def test_latency_and_drip_feed(resy_http: httpx.Client) -> None:
    expected = resy_http.get("/3/geoip").content
    set_fault(resy_http, route="/3/geoip", latency_ms=150)
    started = time.perf_counter()
    assert resy_http.get("/3/geoip").content == expected
    assert time.perf_counter() - started >= 0.15
    # Work made half-way still answers at the full delay, never sooner.
    set_fault(resy_http, route="/3/geoip", latency_ms=150, latency_model="fleet")
    started = time.perf_counter()
    assert resy_http.get("/3/geoip").content == expected
    assert time.perf_counter() - started >= 0.15
    set_fault(resy_http, route="/3/geoip", drip_chunk_bytes=16, drip_interval_ms=25)
    chunks: list[bytes] = []
    started = time.perf_counter()
    with resy_http.stream("GET", "/3/geoip") as response:
        assert int(response.headers["content-length"]) == len(expected)
        chunks.extend(response.iter_raw())
    elapsed = time.perf_counter() - started
    assert b"".join(chunks) == expected
    pauses = (len(expected) - 1) // 16
    assert elapsed >= pauses * 0.025 * 0.9
    assert len(chunks) > 1
    resy_http.delete("/__sandbox/faults")
    assert resy_http.get("/__sandbox/faults").json() == {"faults": {}}


# -- traffic records ------------------------------------------------------------------------------


def test_counters_and_request_log(sandbox: SandboxHandle, resy_http: httpx.Client) -> None:
    day = "2026-03-05"
    for anchor in ("15:00", "19:00"):
        for page in (1, 2):
            search(
                resy_http,
                page=page,
                per_page=10,
                availability=True,
                slot_filter={"day": day, "party_size": 2, "time_filter": anchor},
            )
    resy_http.get("/4/find", params={"venue_id": 6194, "day": day, "party_size": 4})
    counts = resy_http.get("/__sandbox/counters").json()
    assert counts["counters"] == {"/3/venuesearch/search": 4, "/4/find": 1}
    assert counts["statuses"]["/4/find"] == {"200": 1}
    assert counts["total"] == 5
    log = resy_http.get("/__sandbox/requests", params={"route": "/3/venuesearch/search"}).json()[
        "requests"
    ]
    buckets = [(e["params"]["day"], e["params"]["time_filter"], e["params"]["page"]) for e in log]
    assert buckets == [(day, "15:00", 1), (day, "15:00", 2), (day, "19:00", 1), (day, "19:00", 2)]
    assert all(e["params"]["party_size"] == 2 and e["status"] == 200 for e in log)
    last = resy_http.get("/__sandbox/requests", params={"limit": 1}).json()["requests"]
    assert last[0]["route"] == "/4/find" and last[0]["params"]["party_size"] == 4
    assert sandbox.state.traffic.counters["/4/find"] == 1
    control(resy_http, "reset")
    assert resy_http.get("/__sandbox/counters").json() == {
        "counters": {},
        "statuses": {},
        "total": 0,
    }


# -- routing --------------------------------------------------------------------------------------


def test_unknown_route_and_wrong_method(resy_http: httpx.Client) -> None:
    missing = resy_http.get("/5/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"status": 404, "code": None, "message": "Not Found", "data": {}}
    assert resy_http.get("/3/book").status_code == 500


def test_control_routes_can_be_disabled(sandbox_config: SandboxConfig) -> None:
    config = SandboxConfig(
        seed=sandbox_config.seed, start=sandbox_config.start, control_enabled=False
    )
    with run_in_thread(config) as handle, httpx.Client(base_url=handle.base_url) as client:
        assert client.get("/__sandbox/time").status_code == 404


# -- shapes of the real samples (REAL_RESY_FINDINGS.md, "Sandbox shapes") -------------------


@pytest.mark.parametrize("base", [0, 1])
def test_reservations_page_from_either_offset_base_in_resys_formats(
    sandbox: SandboxHandle, resy_http: httpx.Client, base: int
) -> None:
    """S12: Cierge pages from offset 0 and reads `when` as UTC "YYYY-MM-DD HH:MM:SS" and the
    user's `date_created` as an int; ez-resy asks for its first reservation with offset 1."""
    control(resy_http, "variants", {"reservations_offset_base": base})
    venue_id, day = pick(sandbox)
    slots = find_slots(resy_http, venue_id, day)
    assert book(resy_http, book_token(resy_http, slots[0], day)).status_code == 201
    params = {"type": "upcoming", "limit": 5}
    first = resy_http.get("/3/user/reservations", params=params | {"offset": base}).json()
    (held,) = first["reservations"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", held["when"])
    after = resy_http.get("/3/user/reservations", params=params | {"offset": base + 1}).json()
    assert after["reservations"] == []
    assert isinstance(resy_http.get("/2/user").json()["date_created"], int)


@pytest.mark.parametrize("error", [True, False])
def test_find_for_an_unknown_venue(resy_http: httpx.Client, error: bool) -> None:
    """S3: Cierge's live test expects an error for an unknown venue (400 here); the other
    variant answers 200 with no venues, as the sandbox used to."""
    control(resy_http, "variants", {"find_unknown_venue_error": error})
    params = {"venue_id": 999_999_999, "day": "2026-03-05", "party_size": 2}
    answer = resy_http.get("/4/find", params=params)
    if error:
        assert answer.status_code == 400 and answer.json()["status"] == 400
    else:
        assert answer.status_code == 200 and answer.json()["results"]["venues"] == []


@pytest.mark.parametrize("checks", [True, False])
def test_details_checks_the_tokens_template_and_service(
    sandbox: SandboxHandle, resy_http: httpx.Client, checks: bool
) -> None:
    """S6: a guessed token with the wrong template or service is not a slot of Resy's."""
    control(resy_http, "variants", {"details_checks_ids": checks})
    venue_id, day = pick(sandbox)
    token = find_slots(resy_http, venue_id, day)[0]["config"]["token"]
    parts = token.split("/")  # rgs: / / resy / venue / template / service / ...
    for index in (4, 5):
        guessed = "/".join([*parts[:index], str(int(parts[index]) + 1), *parts[index + 1 :]])
        body = {"config_id": guessed, "day": day, "party_size": 2, "commit": 1}
        answer = resy_http.post("/3/details", json=body)
        assert answer.status_code == (404 if checks else 200), guessed
    body = {"config_id": token, "day": day, "party_size": 2, "commit": 1}
    assert resy_http.post("/3/details", json=body).status_code == 200


def test_refresh_cookies_are_per_diner_used_once_and_can_be_refused(
    resy_http: httpx.Client,
) -> None:
    friend = control(resy_http, "users", {"email": "friend@x.test", "password": "pw-friend"})
    login = resy_http.post(
        "/4/auth/password", data={"email": "friend@x.test", "password": "pw-friend"}
    )
    cookie = _cookie(login)
    resy_http.cookies.clear()  # each refresh below says which cookie it sends
    sent = {"Cookie": f"production_refresh_token={cookie}"}
    refreshed = resy_http.post("/3/auth/refresh", headers=sent)
    assert refreshed.status_code == 200
    claims = json.loads(_b64(refreshed.json()["token"].split(".")[1]))
    assert claims["uid"] == friend["uid"]  # the diner the cookie was set for
    assert "Max-Age=7776000" in refreshed.headers["set-cookie"]  # 90 days
    resy_http.cookies.clear()
    # Resy hands a new cookie with each refresh: the one used is spent.
    assert resy_http.post("/3/auth/refresh", headers=sent).json() == UNAUTHORIZED
    fresh = {"Cookie": f"production_refresh_token={_cookie(refreshed)}"}
    resy_http.cookies.clear()
    control(resy_http, "auth", {"refuse_refresh": True})
    assert resy_http.post("/3/auth/refresh", headers=fresh).status_code == 419
    control(resy_http, "auth", {"refuse_refresh": False})
    # The fault book reaches the route too (a 419 as Resy's own JSON).
    set_fault(resy_http, route="/3/auth/refresh", fail_next=1, fail_status=419, answer="resy")
    assert resy_http.post("/3/auth/refresh", headers=fresh).status_code == 419
    resy_http.cookies.clear()
    assert resy_http.post("/3/auth/refresh", headers=fresh).status_code == 200


def test_a_sandbox_set_to_refuse_refresh_refuses_every_cookie() -> None:
    state = SandboxState(SandboxConfig(refuse_refresh=True))  # `sandbox serve --refuse-refresh`
    cookie = state.mint_refresh()
    assert state.refresh_user(cookie) is None
    state.configure_auth(refuse_refresh=False)
    assert state.refresh_user(cookie) == state.user.uid
