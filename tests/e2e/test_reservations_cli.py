"""`resywatch reservations list|show|cancel` through the CLI against the sandbox (frozen at
the real time, no background cancellations): what is booked is listed; a cancel says what it
costs, is refused after the venue's cut-off without --yes (nothing sent), and is confirmed
through the list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sandbox_tools import live_config, run_json

from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.sandbox.venues import Venue


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


@dataclass(frozen=True)
class Table:
    venue: Venue
    day: date
    time: str  # HH:MM, venue-local


def table_starting(sandbox: SandboxHandle, after_s: float, before_s: float) -> Table:
    """A table for two at a venue that charges for late cancels, starting in the window."""
    world, now = sandbox.state.world, sandbox.state.clock.now()
    for venue in world.venues:
        if not venue.payment_required or venue.cannot_take_payment:
            continue
        today = datetime.fromtimestamp(now, world.zone(venue)).date()
        for day in (today + timedelta(days=n) for n in range(5)):
            if not world.is_open_day(venue, day) or not world.is_released(venue, day, now):
                continue
            snapshot = world.snapshot(venue, day, now)
            for i in snapshot.open_for(2):
                if now + after_s < snapshot.starts[i] < now + before_s:
                    return Table(venue, day, snapshot.slots[i].time[:5])
    raise AssertionError("no table starting in that window")


def book(cli: Any, env: dict[str, str], table: Table) -> int:
    booked = run_json(
        cli, "book", "now", "--venue", str(table.venue.id), "--date", str(table.day),
        "--party", "2", "--time", table.time, "--max-cancel-fee", "500", "--max-total", "500",
        env=env,
    )  # fmt: skip
    assert booked["outcome"] == "booked", booked
    return int(booked["reservation_id"])


def cancels(sandbox: SandboxHandle) -> int:
    return len(sandbox.state.traffic.requests("/3/cancel"))


def test_list_show_and_a_free_cancel_confirmed_through_the_list(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    table = table_starting(sandbox, 2 * 86400, 4 * 86400)  # before its 24 h cut-off
    reservation_id = book(cli, env, table)

    (listed,) = run_json(cli, "reservations", "list", env=env)["reservations"]
    assert listed["reservation_id"] == reservation_id
    assert (listed["venue_id"], listed["venue_name"]) == (table.venue.id, table.venue.name)
    assert (listed["day"], listed["time"], listed["party_size"]) == (str(table.day), table.time, 2)
    assert listed["upcoming"] and listed["cancellable"] and listed["cancel_fee"] == 100.0
    cut_off = datetime.fromisoformat(listed["cancel_cut_off"])
    assert cut_off > datetime.now(UTC)  # free until then
    assert "resy_token" not in listed  # it cancels the table: never shown
    assert run_json(cli, "reservations", "show", str(reservation_id), env=env) == listed
    assert run_json(cli, "reservations", "list", "--past", env=env)["reservations"] == []
    header, row = cli("reservations", "list", env=env).stdout.splitlines()  # a pipe: plain
    assert header.split("\t") == ["id", "venue", "date", "time", "party", "seating", "cancel"]
    assert row.startswith(f"{reservation_id}\t{table.venue.name}\t{table.day}\t{table.time}\t2")
    assert row.endswith("then $100.00") and "\tfree until " in row

    # Free now: without a terminal it goes ahead, and the list confirms it.
    done = run_json(cli, "reservations", "cancel", str(reservation_id), env=env)
    assert done == {"reservation_id": reservation_id, "cancelled": True, "fee": 0.0,
                    "refunded": True}  # fmt: skip
    assert cancels(sandbox) == 1
    assert run_json(cli, "reservations", "list", env=env)["reservations"] == []
    gone = run_json(cli, "reservations", "cancel", str(reservation_id), env=env, expect=3)
    assert gone["error"]["code"] == "not_found" and cancels(sandbox) == 1


def test_a_cancel_past_the_cut_off_is_refused_without_yes_and_says_the_fee(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    table = table_starting(sandbox, 3600, 20 * 3600)  # inside its 24 h cut-off
    reservation_id = book(cli, env, table)

    refused = cli("reservations", "cancel", str(reservation_id), "--json", env=env, expect=2)
    assert "costs $100.00 now" in refused.stderr and "--yes" in refused.stderr
    assert cancels(sandbox) == 0  # nothing sent
    (still,) = run_json(cli, "reservations", "list", env=env)["reservations"]
    assert still["reservation_id"] == reservation_id

    done = run_json(cli, "reservations", "cancel", str(reservation_id), "--yes", env=env)
    assert (done["cancelled"], done["fee"]) == (True, 100.0)
    assert cancels(sandbox) == 1
    assert run_json(cli, "reservations", "list", env=env)["reservations"] == []


def test_a_cancel_never_sent_for_a_reservation_not_upcoming(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    missing = run_json(cli, "reservations", "cancel", "424242", "--yes", env=env, expect=3)
    assert "no upcoming reservation 424242" in missing["error"]["message"]
    assert run_json(cli, "reservations", "show", "424242", env=env, expect=3)["error"]
    bad = cli("reservations", "cancel", "12x", env=env, expect=2)
    assert "reservation id '12x' is not an id" in bad.stderr
    clash = cli("reservations", "list", "--past", "--all", env=env, expect=2)
    assert "choose one" in clash.stderr
    assert cancels(sandbox) == 0
