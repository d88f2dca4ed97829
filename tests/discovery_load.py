"""How many Resy requests discovery needs a cycle, and the budget that keeps it on time:
the reckoning behind the default `resy.max_rps` (tests/unit/test_discovery_load.py holds
it to a real pass and to the default).

A bucket scan is one search per party size and time_filter, each read to its last page:
real search hits include venues with no slots in among the rest (REAL_RESY_FINDINGS.md,
finding 7), so no page can be skipped, and the pages a search takes is the venues in the
area over the page size. On top of the full pass come the hot buckets' extra scans (`hot`)
and the release watches (`releases`). All of it shares `resy.max_rps`: when the whole does
not fit in PACE_SHARE of the interval, a pass overruns and every bucket waits a cycle more
(`health` warns `discovery-pace`), and a drop waits a cycle more to be seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from resywatch.config import Settings
from resywatch.services.discovery import buckets as bucket_rules
from resywatch.services.discovery import releases

#: The share of the interval the planned requests may take: the rest absorbs Resy's slower
#: answers, retries, watches and a second release watch without delaying the next cycle.
PACE_SHARE = 0.8


@dataclass(frozen=True)
class CycleLoad:
    """Requests one discovery cycle makes at most (hot buckets and a release included)."""

    pass_requests: int  # every bucket once
    hot_requests: int  # the hot buckets' extra scans
    release_requests: int  # one release watch that sees its day at the instant

    @property
    def total(self) -> int:
        return self.pass_requests + self.hot_requests + self.release_requests


def pages_per_search(venues_in_area: int, page_size: int) -> int:
    """The pages a search of the area takes: every venue is a hit, with slots or without."""
    return max(1, math.ceil(venues_in_area / page_size))


def searches_per_day(settings: Settings) -> int:
    """Searches one day's buckets take (each anchor's time_filters × party sizes)."""
    filters = sum(
        len(bucket_rules.time_filters(anchor, settings.discovery_window_hours))
        for anchor in set(settings.discovery_time_slots)
    )
    return filters * len(set(settings.discovery_party_sizes))


def cycle_load(settings: Settings, venues_in_area: int) -> CycleLoad:
    """The requests of one cycle over an area of `venues_in_area` venues."""
    pages = pages_per_search(venues_in_area, settings.discovery_page_size)
    per_day = searches_per_day(settings) * pages
    hot_days = min(settings.discovery_hot_days, settings.discovery_days)
    extra_scans = settings.discovery_hot_factor - 1  # a hot bucket is due at each part
    sizes = len(set(settings.discovery_party_sizes))
    polls = math.floor(releases.BEFORE_S / releases.POLL_S) + 1  # the last one sees it
    return CycleLoad(
        pass_requests=per_day * settings.discovery_days,
        hot_requests=per_day * hot_days * extra_scans,
        release_requests=polls * sizes,
    )


def seconds_needed(load: CycleLoad, max_rps: float) -> float:
    """How long the cycle's requests take at the budget."""
    return load.total / max_rps


def fits(load: CycleLoad, settings: Settings) -> bool:
    """Whether the cycle's requests take at most PACE_SHARE of the interval at the budget."""
    return seconds_needed(load, settings.resy_max_rps) <= PACE_SHARE * (
        settings.discovery_interval_s
    )


def rps_needed(load: CycleLoad, settings: Settings) -> float:
    """The smallest `resy.max_rps` that fits the cycle."""
    return load.total / (PACE_SHARE * settings.discovery_interval_s)
