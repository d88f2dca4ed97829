"""Venue names and pages as real Resy serves them (finding 8, sandbox S13): search is not
limited to one city, so a name is looked for in the configured area first, namesakes are
told apart by neighbourhood and city, and a resy.com venue page URL names a venue too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sandbox_tools import live_config

from resywatch.sandbox import SandboxConfig, SandboxHandle
from resywatch.services.venues import name_closeness


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


def show(cli: Any, env: dict[str, str], venue: str, expect: int = 0) -> Any:
    return json.loads(
        cli("venue", "show", venue, "--days", "2", "--json", env=env, expect=expect).stdout
    )


def test_a_name_is_resolved_within_the_area_first_and_namesakes_are_told_apart(
    cli: Any, cli_env: dict[str, str], sandbox: SandboxHandle
) -> None:
    sandbox.state.configure_variants(namesakes_elsewhere=True)
    world = sandbox.state.world
    venue = next(
        v for v in world.venues
        if v.in_manhattan_bbox and sum(w.name == v.name for w in world.venues) == 1
    )  # fmt: skip
    # Configured somewhere else: both namesakes match, and the error tells them apart.
    elsewhere = cli_env | {"RESYWATCH_DISCOVERY_BOUNDING_BOX": "1,1,2,2"}
    error = show(cli, elsewhere, venue.name, expect=2)["error"]
    assert "matches several venues" in error["message"]
    assert "Brickell, Miami" in error["message"] and f"id {venue.id}" in error["message"]
    # In the configured area (Manhattan), the name is the Manhattan venue's.
    assert show(cli, cli_env, venue.name)["venue_id"] == venue.id


@pytest.mark.parametrize(
    "url",
    [
        "https://resy.com/cities/new-york-ny/venues/{slug}?date=2026-12-04&seats=2",
        "https://resy.com/cities/ny/{slug}",
    ],
)
def test_a_resy_venue_page_url_names_the_venue(
    cli: Any, cli_env: dict[str, str], sandbox: SandboxHandle, url: str
) -> None:
    venue = next(v for v in sandbox.state.world.venues if v.in_manhattan_bbox)
    assert show(cli, cli_env, url.format(slug=venue.url_slug))["venue_id"] == venue.id
    missing = url.format(slug="no-such-venue-anywhere")
    assert "no venue page" in show(cli, cli_env, missing, expect=3)["error"]["message"]


def test_fuzzy_matches_rank_the_closest_name_first() -> None:
    """Resy's search is fuzzy ("amori" finds "Mori", a capture-based client plan)."""
    names = ["Amorino Gelato", "Mori", "Lupa", "Via Carota"]
    ranked = sorted(names, key=lambda n: -name_closeness("amori", n))
    assert ranked[:2] == ["Mori", "Amorino Gelato"]  # the closer of the two that overlap
    assert name_closeness("carbone", "Carbone") == 1.0
    assert name_closeness("mori", "Mori") > name_closeness("mori", "Amorino Gelato")


@pytest.mark.parametrize("fuzzy", [True, False])
def test_a_name_a_typo_away_resolves_when_resy_finds_it(
    cli: Any, cli_env: dict[str, str], sandbox: SandboxHandle, fuzzy: bool
) -> None:
    """S13: real search is fuzzy. The one venue it finds for a misspelt name is taken; a
    search that finds nothing is exit 3."""
    sandbox.state.configure_variants(fuzzy_search=fuzzy)
    venue = sandbox.state.world.by_id[6194]  # Carbone
    typo = venue.name[:-1] + venue.name[-1] * 2  # "Carbonee"
    if fuzzy:
        assert show(cli, cli_env, typo)["venue_id"] == venue.id
    else:
        assert show(cli, cli_env, typo, expect=3)["error"]["code"] == "not_found"
