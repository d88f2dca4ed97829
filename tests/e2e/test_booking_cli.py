"""`resywatch book now` and `book attempts` through the CLI against the sandbox (its clock
frozen at the real time, no background cancellations): it books and confirms, never books
twice, and each Resy refusal has its own outcome, message and exit code."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from booking_support import Bookable, book_requests, bookable, fault, held, soon
from sandbox_tools import live_config

from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN, SandboxConfig, SandboxHandle


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


def book(cli: Any, env: dict[str, str], target: Bookable, *extra: str, expect: int = 0) -> Any:
    result = cli(
        "book", "now", "--venue", str(target.venue.id), "--date", str(target.day),
        "--party", "2", "--window", "18:00-21:00", *extra, "--json", env=env, expect=expect,
    )  # fmt: skip
    return json.loads(result.stdout)


def test_book_now_books_confirms_and_never_books_twice(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = bookable(sandbox, soon(env))
    booked = book(cli, env, target)
    assert booked["outcome"] == "booked" and booked["reservation_id"]
    assert f"{booked['starts_at'][11:16]}" in target.times
    assert set(booked["latency_ms"]) >= {"reservations", "find", "details", "book", "confirm"}
    # It is in the user's reservations, as Resy lists them.
    listed = httpx.get(
        f"{sandbox.base_url}/3/user/reservations",
        params={"type": "upcoming"},
        headers={
            "Authorization": f'ResyAPI api_key="{DEMO_API_KEY}"',
            "X-Resy-Auth-Token": DEMO_AUTH_TOKEN,
            "User-Agent": "Mozilla/5.0",
        },
        timeout=5,
    ).json()["reservations"]
    assert booked["reservation_id"] in [r["reservation_id"] for r in listed]

    again = book(cli, env, target, expect=12)["error"]
    assert again["code"] == "already_booked" and again["exit_code"] == 12
    assert f"reservation {booked['reservation_id']}" in again["message"]
    assert book_requests(sandbox) == 1 and len(held(sandbox, target.venue.id)) == 1

    attempts = json.loads(cli("book", "attempts", "--json", env=env).stdout)["attempts"]
    assert [a["outcome"] for a in attempts] == ["already_booked", "booked"]
    assert attempts[1]["reservation_id"] == booked["reservation_id"]
    assert attempts[1]["resy_status"] == 201 and attempts[1]["latency_ms"]["total"] > 0
    failed = json.loads(cli("book", "attempts", "--failed", "--json", env=env).stdout)
    assert [a["outcome"] for a in failed["attempts"]] == ["already_booked"]
    # A booking made at the terminal notifies too (the phone hears of it).
    notes = json.loads(cli("notify", "list", "--json", env=env).stdout)["notifications"]
    assert [n["kind"] for n in notes] == ["booking"]


def test_dry_run_stops_before_the_book_request(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = bookable(sandbox, soon(env))
    result = book(cli, env, target, "--dry-run")
    assert result["outcome"] == "dry_run" and result["dry_run"] is True
    assert result["total"] == 0.0 and "nothing was booked" in result["message"]
    counters = sandbox.state.traffic.snapshot()["counters"]
    assert counters.get("/3/details") == 1 and "/3/book" not in counters
    assert held(sandbox, target.venue.id) == []


@pytest.mark.parametrize(
    ("status", "code", "exit_code", "words"),
    [
        (402, "payment_required", 13, "needs a card on file"),
        (403, "payment_not_accepted", 14, "cannot take payment methods"),
        (404, "slot_gone", 11, "was taken before it could be booked"),
        (412, "conflict", 12, "as a conflict (412)"),
        (419, "auth_expired", 16, "run `resywatch auth login`"),
        (429, "rate_limited", 17, "rate limiting"),
    ],
)
def test_each_refusal_of_the_book_request_has_its_outcome_message_and_exit_code(
    cli: Any,
    env: dict[str, str],
    sandbox: SandboxHandle,
    status: int,
    code: str,
    exit_code: int,
    words: str,
) -> None:
    target = bookable(sandbox, soon(env))
    # Refuse every book request: a 404 moves on to the next best slot, up to three.
    fault(sandbox, "/3/book", fail_next=5, fail_status=status)
    error = book(cli, env, target, expect=exit_code)["error"]
    assert (error["code"], error["exit_code"]) == (code, exit_code)
    assert words in error["message"]
    sent = book_requests(sandbox)
    assert sent == (min(3, len(target.times)) if status == 404 else 1)
    assert held(sandbox, target.venue.id) == []
    attempt = json.loads(cli("book", "attempts", "--json", env=env).stdout)["attempts"][0]
    assert attempt["outcome"] == code and attempt["message"] == error["message"]
    assert attempt["resy_status"] == status


def test_an_expired_session_is_caught_before_anything_is_sent(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = bookable(sandbox, soon(env))
    sandbox.state.configure_auth(expire_tokens=True)
    error = book(cli, env, target, expect=16)["error"]
    assert error["code"] == "auth_expired" and "resywatch auth login" in error["message"]
    assert book_requests(sandbox) == 0


def test_a_slot_gone_moves_on_to_the_next_best(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    day = soon(env)
    skip = 0
    while len((target := bookable(sandbox, day, skip=skip)).times) < 2:
        skip += 1
    fault(sandbox, "/3/book", fail_next=1, fail_status=404)
    result = book(cli, env, target)
    assert result["outcome"] == "booked" and "taken first:" in result["message"]
    assert book_requests(sandbox) == 2 and len(held(sandbox, target.venue.id)) == 1


def test_fee_ceilings_refuse_a_deposit_until_raised(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = bookable(sandbox, soon(env), payment_required=True)
    error = book(cli, env, target, expect=15)["error"]
    assert error["code"] == "fee_too_high" and "--max-total" in error["message"]
    assert book_requests(sandbox) == 0
    booked = book(cli, env, target, "--max-total", "500", "--max-cancel-fee", "500")
    assert booked["outcome"] == "booked" and booked["total"] > 0
    # Booked with the user's default card, which the sandbox requires for this venue.
    assert held(sandbox, target.venue.id)[0].payment_method_id is not None


def test_no_card_on_file_is_a_402_with_its_fix(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = bookable(sandbox, soon(env), payment_required=True)
    sandbox.state.configure_auth(has_card=False)
    error = book(cli, env, target, "--max-total", "500", "--max-cancel-fee", "500", expect=13)
    assert error["error"]["code"] == "payment_required"
    assert "add one on resy.com" in error["error"]["message"]


def test_no_matching_slot_and_bad_input(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = bookable(sandbox, soon(env))
    error = book(cli, env, target, "--type", "No Such Room", expect=10)["error"]
    assert error["code"] == "no_slot" and "(No Such Room)" in error["message"]
    cli("book", "now", "--venue", "1", "--date", "2020-01-01", "--party", "2", env=env, expect=2)
    cli("book", "now", "--venue", str(target.venue.id), "--date", str(target.day), "--party",
        "2", "--time", "22:00", "--window", "18:00-21:00", env=env, expect=2)  # fmt: skip
    assert book_requests(sandbox) == 0
    text = cli("book", "now", "--help", env=env).stdout
    assert "11 slot gone (404)" in text and "16 auth expired (419)" in text


def test_a_book_request_without_an_answer_is_looked_up_never_retried(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = bookable(sandbox, soon(env))
    # The sandbox answers after 1.5 s: the client gives up after 0.5 s.
    fault(sandbox, "/3/book", latency_ms=1500)
    slow = env | {"RESYWATCH_RESY_TIMEOUT_S": "0.5"}
    error = book(cli, slow, target, expect=18)["error"]
    assert error["code"] == "unconfirmed" and "check resy.com" in error["message"]
    counters = sandbox.state.traffic.snapshot()["counters"]
    assert counters["/3/book"] == 1  # sent once, then the reservations were read
    assert counters["/3/user/reservations"] == 2  # the check before, the look after


def test_a_server_error_on_book_is_checked_against_the_reservations(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    target = bookable(sandbox, soon(env))
    fault(sandbox, "/3/book", fail_next=1, fail_status=503)
    error = book(cli, env, target, expect=1)["error"]
    assert error["code"] == "failed" and "not in your reservations" in error["message"]
    assert book_requests(sandbox) == 1 and held(sandbox, target.venue.id) == []
