"""Discovery and search against search answers shaped like real Resy's (REAL_RESY_FINDINGS.md
findings 7 and 13, sandbox S4): venues with `availability: null` or no slots come in among
the others, on any page."""

from __future__ import annotations

import json
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
