"""Discovery and search against search answers shaped like real Resy's (REAL_RESY_FINDINGS.md
findings 7 and 13, sandbox S4): venues with `availability: null` or no slots come in among
the others, on any page."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sandbox_tools import live_config

from resywatch.sandbox import SandboxConfig, SandboxHandle


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    # Small pages: slot-less hits land on the first page, open venues on later ones.
    return cli_env | {"RESYWATCH_DISCOVERY_DAYS": "2", "RESYWATCH_DISCOVERY_PAGE_SIZE": "10"}


def scan(cli: Any, env: dict[str, str]) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(cli("discover", "scan", "--json", env=env).stdout)
    assert summary["buckets_failed"] == 0, summary["errors"]
    return summary


@pytest.mark.parametrize("null_slots", [False, True])
def test_slot_less_hits_stop_no_paging_and_break_no_page(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, null_slots: bool
) -> None:
    state = sandbox.state
    state.configure_variants(search_slotless_hits=False)
    alone = scan(cli, env)
    assert alone["slots_seen"] > 0
    state.configure_variants(search_slotless_hits=True, search_null_slots=null_slots)
    before = len(state.traffic.requests("/3/venuesearch/search"))
    mixed = scan(cli, env)
    # The same slots (the world is frozen), read over more pages, and nothing "just opened".
    assert mixed["slots_seen"] == alone["slots_seen"]
    assert mixed["drops_opened"] == 0
    assert len(state.traffic.requests("/3/venuesearch/search")) - before > alone["requests"]


@pytest.mark.parametrize("listed", [True, False])
def test_search_marks_times_only_restricted_slots_offer(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, listed: bool
) -> None:
    """Finding 12: Global Dining Access and ineligible exclusive slots are listed, marked,
    never booked; with the variant off (Alkaar #84: not shown at all) nothing is marked."""
    sandbox.state.configure_variants(restricted_slots=listed)
    day = datetime.now(UTC).date() + timedelta(days=2)
    found = json.loads(
        cli("search", "--date", str(day), "--party", "2", "--window", "18:00-21:00", "--json",
            env=env).stdout
    )["venues"]  # fmt: skip
    marked = [v for v in found if v["restricted_times"]]
    assert bool(marked) is listed
    world = sandbox.state.world
    for venue in marked:
        assert set(venue["restricted_times"]) <= set(venue["times"])
        snap = world.snapshot(world.by_id[venue["venue_id"]], day, sandbox.state.clock.now())
        for hhmm in venue["restricted_times"]:
            at = [i for i in snap.open_for(2) if snap.slots[i].time[:5] == hhmm]
            assert at and all(i % 5 in (2, 4) for i in at), (venue["name"], hhmm)


def test_discovery_sees_the_same_slots_whether_resys_window_is_2_or_3_hours(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    """S5: paystub documents a +-2 h time_filter window, its code says +-3 h. resywatch keeps
    the slots within its own +-2 h of an anchor, so a wider window changes nothing. (A
    narrower one would lose slots silently: that case stays unknowable offline.)"""
    state = sandbox.state
    state.configure_variants(time_filter_window_min=120)
    two_hours = scan(cli, env)
    state.configure_variants(time_filter_window_min=180)
    three_hours = scan(cli, env)
    assert three_hours["slots_seen"] == two_hours["slots_seen"] > 0
    assert three_hours["drops_opened"] == 0
