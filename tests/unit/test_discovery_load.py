"""A default discovery cycle fits its interval at the default budget (issue 16).

The requests are counted from a real pass over the sandbox city at the default settings (its
venues in the default area, every search read to its last page), not written down: if the
city, the page size, the anchors or the party sizes change, so does the figure."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import discovery_load as load
import pytest

from resywatch.clock import ManualClock
from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.resy.client import client_from_settings
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY, SandboxConfig, SandboxHandle, run_in_thread
from resywatch.sandbox.search_index import geo_filter
from resywatch.services.discovery.scan import run_pass

START = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with run_in_thread(SandboxConfig(start=START, speed=0)) as handle:
        yield handle


def venues_in_area(sandbox: SandboxHandle, settings: Settings) -> int:
    _, inside = geo_filter({"bounding_box": list(settings.discovery_bounding_box)})
    return sum(1 for venue in sandbox.state.world.venues if inside(venue))


def test_a_default_pass_makes_the_requests_the_load_plans(
    sandbox: SandboxHandle, db: Database
) -> None:
    """The plan's pass figure is what a pass really asks the sandbox city for."""
    settings = load_settings(
        environ={
            "RESYWATCH_RESY_BASE_URL": sandbox.base_url,
            "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
            "RESYWATCH_RESY_MAX_RPS": "1000",  # only the count matters here, not the pace
        }
    )
    planned = load.cycle_load(settings, venues_in_area(sandbox, settings))

    async def go() -> int:
        async with client_from_settings(settings) as resy:
            rt = Runtime(settings, db, resy, ManualClock(START))
            return (await run_pass(rt)).requests

    assert asyncio.run(go()) == planned.pass_requests
    assert load.pages_per_search(venues_in_area(sandbox, settings), 100) > 1  # paged


def test_the_default_budget_is_the_smallest_whole_rate_that_fits(
    sandbox: SandboxHandle,
) -> None:
    """A full pass, the hot buckets' extra scans and a release watch take at most 80 % of
    the interval at the default `resy.max_rps`, and would not at one request a second less."""
    defaults = load_settings(environ={})
    planned = load.cycle_load(defaults, venues_in_area(sandbox, defaults))
    assert planned.hot_requests > 0 and planned.release_requests > 0
    assert load.fits(planned, defaults)
    slower = defaults.model_copy(update={"resy_max_rps": defaults.resy_max_rps - 1})
    assert not load.fits(planned, slower)
    assert defaults.resy_max_rps - 1 < load.rps_needed(planned, defaults) <= defaults.resy_max_rps


def test_the_plan_follows_the_settings() -> None:
    settings = load_settings(
        environ={
            "RESYWATCH_DISCOVERY_DAYS": "7",
            "RESYWATCH_DISCOVERY_PARTY_SIZES": "2",
            "RESYWATCH_DISCOVERY_HOT_FACTOR": "1",
            "RESYWATCH_DISCOVERY_PAGE_SIZE": "50",
        }
    )
    planned = load.cycle_load(settings, 120)  # 3 pages of 50
    assert planned.pass_requests == 7 * 2 * 1 * 3  # days x anchors x sizes x pages
    assert planned.hot_requests == 0  # every bucket on the one interval
    assert planned.release_requests == 3  # polls from 2 s before to the instant, one size
    wide = settings.model_copy(update={"discovery_window_hours": 4})
    assert load.searches_per_day(wide) == 2 * 2  # +-4 h takes two time_filters an anchor
