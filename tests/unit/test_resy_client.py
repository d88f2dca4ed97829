"""The Resy client against httpx.MockTransport: headers, shapes, every error mapping, and
the retry policy (with a recorded sleep: nothing here really waits)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from resywatch.resy import errors
from resywatch.resy.client import ResyClient
from resywatch.resy.transport import RateLimiter, RetryPolicy

API_KEY = "test-api-key-0123456789"
TOKEN = "eyJ0ZXN0LXRva2VuLWFiY2RlZg"
Handler = Callable[[httpx.Request], httpx.Response]


class Sleeps:
    """An injected sleep that records how long it was asked to wait and moves a virtual
    clock forward instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = 0.0

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def make_client(handler: Handler, **options: Any) -> tuple[ResyClient, Sleeps]:
    sleeps = Sleeps()
    client = ResyClient(
        base_url="https://resy.test",
        api_key=options.pop("api_key", API_KEY),
        auth_token=options.pop("auth_token", TOKEN),
        transport=httpx.MockTransport(handler),
        sleep=sleeps,
        clock=sleeps.clock,
        max_rps=options.pop("max_rps", 1000.0),
        **options,
    )
    return client, sleeps


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def json_response(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


SLOT = {
    "config": {
        "id": 842503,
        "type": "Dining Room",
        "token": "rgs://resy/5192/1124043/2/2026-12-01/2026-12-01/19:00:00/2/Dining Room",
    },
    "date": {"start": "2026-12-01 19:00:00", "end": "2026-12-01 20:45:00"},
    "size": {"min": 2, "max": 2},
    "market": {"date": {"on": 1685592000, "off": 1686772800}},
    "payment": {"is_paid": False, "cancellation_fee": None},
    "unknown_future_field": {"x": 1},
}


def test_find_sends_the_web_app_headers_and_parses_local_times() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        venue = {"id": {"resy": 5192}, "name": "Carbone", "rating": 4.8, "type": "Italian"}
        return json_response(200, {"results": {"venues": [{"venue": venue, "slots": [SLOT]}]}})

    client, _ = make_client(handler)
    found = run(client.find(5192, date(2026, 12, 1), 2))
    request = seen[0]
    assert request.method == "GET"
    assert request.url.path == "/4/find"
    assert dict(request.url.params) == {
        "venue_id": "5192",
        "day": "2026-12-01",
        "party_size": "2",
        "lat": "0",
        "long": "0",
    }
    assert request.headers["authorization"] == f'ResyAPI api_key="{API_KEY}"'
    # A find needs only the API key: the user's token stays home (see the test below).
    assert "x-resy-auth-token" not in request.headers
    assert "Mozilla/5.0" in request.headers["user-agent"]
    assert request.headers["origin"] == "https://resy.com"
    assert request.headers["referer"] == "https://resy.com/"
    entry = found.results.venues[0]
    assert entry.venue.id == 5192
    assert entry.venue.rating is not None and entry.venue.rating.average == 4.8
    slot = found.slots[0]
    assert slot.starts_at == datetime(2026, 12, 1, 19, 0)  # venue-local, no zone
    assert slot.starts_at.tzinfo is None
    assert slot.seating_type == "Dining Room"


KEY_ONLY_CALLS: list[Callable[[ResyClient], Any]] = [
    lambda c: c.find(1, date(2026, 12, 1), 2),
    lambda c: c.find(1, date(2026, 12, 1), 2, method="POST"),
    lambda c: c.search(day=date(2026, 12, 1), party_size=2),
    lambda c: c.venue(1),
    lambda c: c.venue_config(1),
    lambda c: c.calendar(1, 2, date(2026, 12, 1), date(2026, 12, 2)),
    lambda c: c.login("me@example.com", "pw"),
]
USER_CALLS: list[Callable[[ResyClient], Any]] = [
    lambda c: c.details("rgs://t", date(2026, 12, 1), 2),
    lambda c: c.book("book-token", 7),
    lambda c: c.cancel("rr://t"),
    lambda c: c.user(),
    lambda c: c.reservations(),
]


@pytest.mark.parametrize("call", KEY_ONLY_CALLS)
def test_key_only_calls_never_carry_the_users_token(call: Callable[[ResyClient], Any]) -> None:
    """Finding 1: Resy answers a stale token on a find with a redirect to its login page, so
    a call that needs no login must not send one (Cierge's token-less clients)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"location": "/login"})

    client, _ = make_client(handler)
    with pytest.raises(errors.AuthError):
        run(call(client))
    assert seen[0].headers["authorization"] == f'ResyAPI api_key="{API_KEY}"'
    assert "x-resy-auth-token" not in seen[0].headers
    assert "x-resy-universal-auth" not in seen[0].headers


@pytest.mark.parametrize("call", USER_CALLS)
def test_user_calls_carry_the_token_twice(call: Callable[[ResyClient], Any]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(419, {"status": 419, "message": "Unauthorized"})

    client, _ = make_client(handler)
    with pytest.raises(errors.AuthExpired, match="run `resywatch auth login`"):
        run(call(client))
    assert seen[0].headers["x-resy-auth-token"] == TOKEN
    assert seen[0].headers["x-resy-universal-auth"] == TOKEN


@pytest.mark.parametrize("status", [302, 419])
def test_refusals_say_what_to_fix(status: int) -> None:
    """A refused token on a user call means log in again; a 419 on the login itself means a
    wrong password (not "run auth login", the command just run); on a key-only call, only
    the API key was sent, so it is the key."""

    def refuse(request: httpx.Request) -> httpx.Response:
        if status == 302:
            return httpx.Response(302, headers={"location": "https://resy.com/login"})
        return json_response(419, {"status": 419, "code": None, "message": "Unauthorized"})

    client, _ = make_client(refuse)
    with pytest.raises(errors.AuthExpired, match="run `resywatch auth login`") as expired:
        run(client.user())
    assert expired.value.code == "auth_expired" and expired.value.status == status
    with pytest.raises(errors.AuthError, match="API key") as key:
        run(client.find(1, date(2026, 12, 1), 2))
    assert not isinstance(key.value, errors.AuthExpired)
    if status == 419:
        with pytest.raises(errors.LoginRefused, match="wrong email or password") as login:
            run(client.login("me@example.com", "pw"))
        assert "auth login" not in str(login.value)


def test_find_as_post_json() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.method, json.loads(request.content)))
        return json_response(200, {"results": {"venues": []}})

    client, _ = make_client(handler)
    assert run(client.find(1, date(2026, 12, 1), 4, method="POST")).slots == []
    assert bodies == [
        ("POST", {"venue_id": 1, "day": "2026-12-01", "party_size": 4, "lat": 0, "long": 0})
    ]


def test_details_posts_json_with_commit_and_parses_the_quote() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == {
            "config_id": SLOT["config"]["token"],  # type: ignore[index]
            "day": "2026-12-01",
            "party_size": 2,
            "commit": 1,
        }
        return json_response(
            200,
            {
                "book_token": {"value": "abc|def", "date_expires": "2026-12-01T00:05:00Z"},
                "user": {"payment_methods": [{"id": 7, "is_default": True}]},
                "cancellation": {"fee": {"amount": 25.0}},
                "payment": {"amounts": {"total": 0.0}, "config": {"type": "free"}},
            },
        )

    client, _ = make_client(handler)
    details = run(client.details(SLOT["config"]["token"], date(2026, 12, 1), 2))  # type: ignore[index]
    assert details.book_token.value == "abc|def"
    assert details.cancellation_fee == 25.0
    assert details.total == 0.0


def test_book_sends_a_form_with_the_payment_method() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        form = dict(httpx.QueryParams(request.content.decode()))
        assert form == {
            "book_token": "abc|def",
            "source_id": "resy.com-venue-details",
            "struct_payment_method": '{"id": 7}',
        }
        return json_response(201, {"resy_token": "rr://x", "reservation_id": 99})

    client, _ = make_client(handler)
    booked = run(client.book("abc|def", 7))
    assert (booked.reservation_id, booked.resy_token) == (99, "rr://x")


def test_shape_variations_are_absorbed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/3/user/reservations":
            return json_response(
                200,
                {
                    "reservations": [
                        {"reservation_id": 1, "day": "2026-12-01", "venue": {"id": 12}},
                        {"reservation_id": 2, "day": "2026-12-02", "venue": {"id": {"resy": 13}}},
                    ],
                    "venues": {"12": {"name": "Lilia"}},
                },
            )
        hit = {
            "id": {"resy": 834},
            "name": "Dame",
            "cuisine": "Seafood",
            "rating": {"average": 4.7, "count": 900},
            "_geoloc": {"lat": 40.73, "lng": -74.0},
            "availability": {"slots": [SLOT]},
        }
        return json_response(
            200, {"search": {"hits": [hit, {"id": 5, "name": "Bare"}], "nbPages": 3}}
        )

    client, _ = make_client(handler)
    page = run(client.search(day=date(2026, 12, 1), party_size=2))
    assert page.total_pages == 3
    dame, bare = page.hits
    assert (dame.id, dame.cuisine, dame.rating.average if dame.rating else None) == (
        834,
        ["Seafood"],
        4.7,
    )
    assert dame.geoloc is not None and dame.geoloc.lat == 40.73
    assert len(dame.slots) == 1
    assert (bare.id, bare.slots, bare.rating) == (5, [], None)
    reservations = run(client.reservations())
    assert [(r.reservation_id, r.venue_id, r.venue_name) for r in reservations] == [
        (1, 12, "Lilia"),
        (2, 13, None),
    ]


def test_search_follows_pagination_until_the_last_page() -> None:
    pages: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        pages.append(payload["page"])
        assert payload["geo"] == {"bounding_box": [40.7, -74.0, 40.8, -73.9]}
        assert payload["slot_filter"] == {
            "day": "2026-12-01",
            "party_size": 2,
            "time_filter": "19:00",
        }
        hits = [{"id": payload["page"] * 10 + i, "name": f"V{i}"} for i in range(2)]
        return json_response(200, {"search": {"hits": hits}, "meta": {"total_pages": 3}})

    client, _ = make_client(handler)
    hits = run(
        client.search_all(
            day=date(2026, 12, 1),
            party_size=2,
            bounding_box=(40.7, -74.0, 40.8, -73.9),
            time_filter="19:00",
            per_page=2,
            availability=False,
        )
    )
    assert pages == [1, 2, 3]
    assert [h.id for h in hits] == [10, 11, 20, 21, 30, 31]


def test_search_without_a_page_count_stops_at_a_short_page() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = json.loads(request.content)["page"]
        count = 2 if page < 3 else 1
        return json_response(
            200, {"search": {"hits": [{"id": i, "name": "x"} for i in range(count)]}}
        )

    client, _ = make_client(handler)
    hits = run(
        client.search_all(day=date(2026, 12, 1), party_size=2, per_page=2, availability=False)
    )
    assert len(hits) == 5


def test_search_reads_past_venues_without_slots_until_the_hits_run_out() -> None:
    """Finding 7/13: hits with `availability: null`, `slots: null` or no slots are mixed in
    with the rest on any page; they stop nothing and break nothing."""
    pages: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = json.loads(request.content)["page"]
        pages.append(page)
        hits = {
            1: [{"id": 1, "name": "full", "availability": None}, {"id": 2, "name": "open",
                "availability": {"slots": [SLOT]}}],
            2: [{"id": 3, "name": "null", "availability": {"slots": None}},
                {"id": 4, "name": "open", "availability": {"slots": [SLOT]}}],
            3: [{"id": 5, "name": "open", "availability": {"slots": [SLOT]}}],
        }.get(page, [])  # fmt: skip
        return json_response(200, {"search": {"hits": hits, "nbHits": 5}})

    client, _ = make_client(handler)
    hits = run(client.search_all(day=date(2026, 12, 1), party_size=2, per_page=2))
    assert pages == [1, 2, 3]  # no page count: the hit count says when to stop
    assert [h.id for h in hits if h.slots] == [2, 4, 5]
    assert [h.slots for h in hits if h.id in (1, 3)] == [[], []]


def test_search_paging_stops_at_an_empty_page_and_at_the_cap() -> None:
    pages: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = json.loads(request.content)["page"]
        pages.append(page)
        hits = [{"id": page, "name": "x", "availability": None}] * 2 if page < 3 else []
        return json_response(200, {"search": {"hits": hits}, "meta": {"total_pages": 9}})

    client, _ = make_client(handler)
    run(client.search_all(day=date(2026, 12, 1), party_size=2, per_page=2))
    assert pages == [1, 2, 3]  # Resy said 9 pages, but page 3 was empty
    pages.clear()
    run(client.search_all(day=date(2026, 12, 1), party_size=2, per_page=2, max_pages=2))
    assert pages == [1, 2]


IMPERVA_HTML = "<html><head><title>Incapsula incident</title></head></html>"
UNAUTHORIZED = {"status": 419, "code": None, "message": "Unauthorized", "data": {}}
NO_PAYMENT = {"status": 403, "message": "This venue is not set up to accept payment methods."}
IMPERVA = {"x-cdn": "Imperva", "content-type": "text/html"}
E = errors

STATUS_CASES = [
    ("/2/user", json_response(419, UNAUTHORIZED), E.AuthError, True),
    ("/2/user", httpx.Response(302, headers={"location": "/login"}), E.AuthError, True),
    ("/3/book", json_response(402, {"message": "Payment required"}), E.PaymentRequired, True),
    ("/3/book", json_response(403, NO_PAYMENT), E.PaymentNotAccepted, True),
    ("/3/book", httpx.Response(403, text=IMPERVA_HTML, headers=IMPERVA), E.Blocked, False),
    ("/3/book", json_response(404, {"message": "gone"}), E.SlotGone, True),
    ("/3/venue", json_response(404, {"message": "no venue"}), E.NotFound, True),
    ("/3/book", json_response(412, {"specs": {"venue_id": 1}}), E.Conflict, True),
    ("/2/user", json_response(429, {}, **{"retry-after": "3"}), E.RateLimited, False),
    ("/2/user", httpx.Response(500, text=IMPERVA_HTML, headers=IMPERVA), E.ServerError, False),
    # Resy's own answers carry the CDN header too: its JSON decides, not the header.
    ("/3/book", json_response(403, NO_PAYMENT, **{"x-cdn": "Imperva"}), E.PaymentNotAccepted, True),
    ("/3/book", httpx.Response(403, text="Forbidden"), E.Blocked, False),
    # Resy's 502 means malformed input: permanent. A challenge page with 502 is the firewall.
    ("/2/user", json_response(502, {"message": "bad gateway"}), E.BadRequest, True),
    ("/2/user", json_response(502, {}, **{"x-cdn": "Imperva"}), E.BadRequest, True),
    ("/2/user", httpx.Response(502, text="Bad Gateway"), E.BadRequest, True),
    ("/2/user", httpx.Response(502, text=IMPERVA_HTML, headers=IMPERVA), E.ServerError, False),
    ("/2/user", json_response(500, {}, **{"x-cdn": "Imperva"}), E.ServerError, False),
    ("/2/user", json_response(503, {}), E.ServerError, False),
    ("/2/user", json_response(400, {"message": "bad"}), E.BadRequest, True),
]


@pytest.mark.parametrize(("path", "response", "error", "permanent"), STATUS_CASES)
def test_status_codes_become_typed_errors(
    path: str, response: httpx.Response, error: type[errors.ResyError], permanent: bool
) -> None:
    client, _ = make_client(lambda request: response, retry=RetryPolicy(max_retries=0))
    with pytest.raises(error) as raised:
        run(client._call("POST" if path == "/3/book" else "GET", path, user=True))
    assert raised.value.permanent is permanent
    assert raised.value.status == response.status_code
    assert client.calls[-1].error_kind == error.kind
    if isinstance(raised.value, errors.ServerError):
        challenge = "html" in response.headers.get("content-type", "")
        assert ("firewall challenge" in str(raised.value)) is challenge


@pytest.mark.parametrize(
    "body",
    [
        {"reservation_id": 4242, "resy_token": "rr://t"},
        # Finding 4: Resy's own shape puts the held reservation under `specs`.
        {
            "status": 412,
            "message": "Conflict",
            "specs": {"reservation_id": 4242, "resy_token": "rr://t"},
        },
    ],
)
def test_a_412_that_carries_a_reservation_means_booked(body: dict[str, Any]) -> None:
    response = json_response(412, body)
    client, _ = make_client(lambda request: response)
    with pytest.raises(errors.Conflict) as raised:
        run(client.book("tok", None))
    assert raised.value.reservation_id == 4242
    assert raised.value.resy_token == "rr://t"


def flaky(failures: list[httpx.Response], final: httpx.Response) -> tuple[Handler, list[int]]:
    count = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        count[0] += 1
        return failures.pop(0) if failures else final

    return handler, count


def test_transient_errors_are_retried_with_full_jitter_and_a_cap() -> None:
    handler, count = flaky(
        [
            json_response(503, {}),
            json_response(500, {}),
            httpx.Response(502, text=IMPERVA_HTML, headers=IMPERVA),  # the firewall's 502
        ],
        json_response(200, {"id": 1}),
    )
    client, sleeps = make_client(handler, retry=RetryPolicy(max_retries=3, base_s=1.0, cap_s=3.0))
    assert run(client.user()).id == 1
    assert count[0] == 4
    assert len(sleeps.waits) == 3
    for attempt, wait in enumerate(sleeps.waits, start=1):
        assert 0 <= wait <= min(3.0, 1.0 * 2 ** (attempt - 1))
    assert [c.attempt for c in client.calls] == [1, 2, 3, 4]


def test_retries_stop_after_the_limit() -> None:
    handler, count = flaky([], json_response(503, {}))
    client, sleeps = make_client(handler, retry=RetryPolicy(max_retries=2))
    with pytest.raises(errors.ServerError):
        run(client.user())
    assert count[0] == 3
    assert len(sleeps.waits) == 2


def test_full_jitter_spans_the_whole_window() -> None:
    handler, _ = flaky([], json_response(503, {}))
    client, sleeps = make_client(handler, retry=RetryPolicy(max_retries=1, base_s=1.0, cap_s=60))
    for _ in range(400):
        with pytest.raises(errors.ServerError):
            run(client.user())
    # The first retry waits a uniform draw from [0, base]: its mean is half the window.
    assert all(0 <= w <= 1.0 for w in sleeps.waits)
    assert 0.45 <= sum(sleeps.waits) / len(sleeps.waits) <= 0.55


def test_permanent_errors_are_not_retried() -> None:
    handler, count = flaky([], json_response(419, {"status": 419, "message": "Unauthorized"}))
    client, sleeps = make_client(handler)
    with pytest.raises(errors.AuthError, match="resywatch auth login"):
        run(client.user())
    assert count[0] == 1
    assert sleeps.waits == []


@pytest.mark.parametrize("delay", [7, "http-date"])
def test_retry_after_is_waited_out(delay: int | str) -> None:
    if delay == "http-date":
        when = datetime.now(UTC) + timedelta(seconds=7)
        header = format_datetime(when, usegmt=True)
    else:
        header = str(delay)
    handler, count = flaky(
        [json_response(429, {}, **{"retry-after": header})], json_response(200, {"id": 3})
    )
    client, sleeps = make_client(handler, retry=RetryPolicy(max_retries=3, cap_s=30))
    assert run(client.user()).id == 3
    assert count[0] == 2
    # The retry waits out Retry-After; the host-wide pause covers the same seconds.
    assert 6.0 <= sum(sleeps.waits) <= 7.5


def test_retry_after_beyond_the_cap_gives_up_at_once() -> None:
    handler, count = flaky([], json_response(429, {}, **{"retry-after": "900"}))
    client, _ = make_client(handler, retry=RetryPolicy(max_retries=3, cap_s=30))
    with pytest.raises(errors.RateLimited) as raised:
        run(client.user())
    assert raised.value.retry_after == 900
    assert count[0] == 1


def test_book_is_never_retried() -> None:
    handler, count = flaky([], json_response(503, {}))
    client, sleeps = make_client(handler)
    with pytest.raises(errors.ServerError):
        run(client.book("tok", 1))
    assert count[0] == 1
    assert sleeps.waits == []


def test_a_slow_answer_is_cut_at_the_deadline() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return json_response(200, {})

    client = ResyClient(
        base_url="https://resy.test",
        api_key=API_KEY,
        auth_token=TOKEN,
        transport=httpx.MockTransport(slow),
        timeout_s=0.05,
        retry=RetryPolicy(max_retries=0),
    )
    with pytest.raises(errors.ResyTimeout):
        run(client.user())
    assert client.calls[0].error_kind == "timeout"
    assert client.calls[0].latency_ms < 1000


def test_connection_failures_are_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    client, _ = make_client(refuse, retry=RetryPolicy(max_retries=1))
    with pytest.raises(errors.ConnectionFailed):
        run(client.user())
    assert [c.error_kind for c in client.calls] == ["connection", "connection"]


def test_missing_credentials_are_clear_and_send_nothing() -> None:
    handler, count = flaky([], json_response(200, {}))
    client, _ = make_client(handler, api_key=None)
    with pytest.raises(errors.MissingCredentials, match="RESYWATCH_RESY_API_KEY"):
        run(client.user())
    client, _ = make_client(handler, auth_token=None)
    with pytest.raises(errors.MissingCredentials, match="resywatch auth login"):
        run(client.user())
    assert count[0] == 0


def test_unexpected_shapes_are_a_clear_error() -> None:
    client, _ = make_client(lambda request: json_response(200, {"book_token": "not an object"}))
    with pytest.raises(errors.ResyError, match=r"unexpected response from /3/details: book_token"):
        run(client.details("t", date(2026, 12, 1), 2))


def test_details_without_a_book_token_is_a_captcha() -> None:
    """Finding 2: a venue with `feature_recaptcha` answers details (commit=1) without one."""
    client, _ = make_client(lambda request: json_response(200, {"user": {"payment_methods": []}}))
    with pytest.raises(errors.CaptchaRequired, match="book it in the Resy app") as raised:
        run(client.details("t", date(2026, 12, 1), 2))
    assert raised.value.permanent


def test_recorded_calls_hold_no_secrets() -> None:
    client, _ = make_client(lambda request: json_response(200, {"id": 1, "token": TOKEN}))
    run(client.user())
    run(client.find(1, date(2026, 12, 1), 2))
    recorded = repr(client.calls)
    assert API_KEY not in recorded and TOKEN not in recorded
    assert [c.endpoint for c in client.calls] == ["/2/user", "/4/find"]


def test_rate_limiter_spaces_requests_and_honours_pauses() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0], sleep=sleep)

    async def take(n: int) -> None:
        for _ in range(n):
            await limiter.acquire()

    asyncio.run(take(6))  # a burst of 2, then one every 0.5 s
    assert now[0] == pytest.approx(2.0)
    limiter.pause(10)
    asyncio.run(take(1))
    assert now[0] >= 12.0


def test_clients_share_one_tls_context() -> None:
    """Loading the CA bundle costs about 50 ms of CPU: a process does it once, not once a
    client (a cron pass, a health check and every test's CLI run build clients)."""
    from resywatch.resy.transport import ResyTransport, tls_context

    async def contexts() -> list[Any]:
        found = []
        for _ in range(2):
            async with ResyTransport("https://api.resy.com", api_key="k") as transport:
                pool = transport._http._transport._pool  # type: ignore[attr-defined]
                found.append(pool._ssl_context)
        return found

    first, second = run(contexts())
    assert first is second is tls_context()
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname  # still verified
