"""Release-aware discovery: a venue whose release habit is learned with confidence (`discover
patterns`: N days ahead at HH:MM local) is looked at around its predicted instant, so that its
new day is seen within seconds of the release instead of at the next bucket scan.

From BEFORE_S before the instant to AFTER_S past it, one `/4/find` a party size every POLL_S
(through the shared budget, so snipe windows and the breaker hold it back like any scan);
the first answer with slots is applied to the day's baselined buckets by the seed's rule
restricted to that venue (`apply.apply_release`): the same drop events, with the same ids, as
the bucket scan would have opened, and the scan then finds them in P.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from resywatch.db.models import DropEvent
from resywatch.resy.errors import ResyError
from resywatch.resy.transport import URGENT_PRIORITY
from resywatch.services.curated import HotspotMatcher
from resywatch.services.discovery.apply import apply_release
from resywatch.services.discovery.fetch import SeenSlot
from resywatch.services.discovery.patterns import patterns
from resywatch.services.vocabulary import local_today, slot_id

if TYPE_CHECKING:
    from resywatch.runtime import Runtime

BEFORE_S = 2.0  # a release comes a little early at times (RESY_API.md §7)
AFTER_S = 20.0  # ... or late; later than this, the bucket scan sees it
POLL_S = 1.0


@dataclass(frozen=True)
class Release:
    """A predicted release: `day` at the venue opens at `instant` (UTC)."""

    venue_id: int
    venue_name: str
    day: date
    instant: datetime
    confidence: float


def upcoming(session: Session, rt: Runtime, until: datetime) -> list[Release]:
    """The confident venues' releases from AFTER_S ago to `until`, of days inside the
    discovery window (a day outside it has no bucket to record a drop in), not seen yet (no
    drop of the venue on that day opened since the release's watch began)."""
    settings, now = rt.settings, rt.clock.now()
    last_day = local_today(now, settings.timezone) + timedelta(days=settings.discovery_days - 1)
    found = []
    for pattern in patterns(session, default_timezone=settings.timezone):
        if pattern.confidence < settings.discovery_release_confidence:
            continue
        if pattern.lead_days is None or pattern.release_time is None:
            continue
        zone = ZoneInfo(pattern.time_zone)
        hour, minute = map(int, pattern.release_time.split(":"))
        today = now.astimezone(zone).date()
        for offset in (-1, 0, 1):  # around midnight, the release of either side of it
            local = datetime.combine(today + timedelta(days=offset), datetime.min.time(), zone)
            instant = local.replace(hour=hour, minute=minute)
            day = instant.date() + timedelta(days=pattern.lead_days)
            if not now - timedelta(seconds=AFTER_S) <= instant <= until or day > last_day:
                continue
            if not _seen(session, pattern.venue_id, day, instant):
                found.append(
                    Release(
                        pattern.venue_id, pattern.venue_name,
                        day, instant, pattern.confidence,
                    )
                )  # fmt: skip
    return sorted(found, key=lambda r: (r.instant, r.venue_id))


def _seen(session: Session, venue_id: int, day: date, instant: datetime) -> bool:
    since = instant - timedelta(seconds=BEFORE_S)
    return (
        session.exec(
            select(DropEvent.id).where(
                col(DropEvent.venue_id) == venue_id,
                col(DropEvent.slot_date) == day,
                col(DropEvent.opened_at) >= since,
            )
        ).first()
        is not None
    )


async def watch_releases(
    rt: Runtime, releases: Sequence[Release], matcher: HotspotMatcher | None = None
) -> dict[str, int]:
    """Watch each release (at once); the counts a job pass records."""
    matcher = matcher or HotspotMatcher.default()
    opened = await asyncio.gather(*(watch_release(rt, r, matcher) for r in releases))
    return {
        "watched": len(releases),
        "seen": sum(1 for n in opened if n is not None),
        "drops_opened": sum(n or 0 for n in opened),
    }


async def watch_release(rt: Runtime, release: Release, matcher: HotspotMatcher) -> int | None:
    """Look at the venue's new day around its instant until it shows slots: the drops that
    opened (None: it did not show by AFTER_S past the instant)."""
    clock = rt.clock
    start = release.instant - timedelta(seconds=BEFORE_S)
    end = release.instant + timedelta(seconds=AFTER_S)
    if (wait := (start - clock.now()).total_seconds()) > 0:
        await clock.sleep(wait)
    while clock.now() < end:
        seen = await _look(rt, release)
        if seen:
            outcome = apply_release(
                rt.db, release.day, seen, matcher, clock.now(), settings=rt.settings
            )
            return outcome.opened
        await clock.sleep(POLL_S)
    return None


async def _look(rt: Runtime, release: Release) -> dict[str, SeenSlot]:
    """The venue's slots on the day, merged across the discovery's party sizes."""
    sizes = sorted(set(rt.settings.discovery_party_sizes))
    resy = rt.resy.ranked(URGENT_PRIORITY)  # ahead of the scans' queued pages
    answers = await asyncio.gather(
        *(resy.find(release.venue_id, release.day, size) for size in sizes),
        return_exceptions=True,
    )
    seen: dict[str, SeenSlot] = {}
    for size, answer in zip(sizes, answers, strict=True):
        if isinstance(answer, ResyError):
            continue  # this size is asked again next poll
        if isinstance(answer, BaseException):
            raise answer
        for slot in answer.slots_at(release.venue_id):
            if slot.starts_at.date() != release.day:
                continue
            key = slot_id(release.venue_id, slot.starts_at)
            merged = seen.setdefault(
                key, SeenSlot(key, release.venue_id, release.venue_name, slot.starts_at)
            )
            merged.party_sizes.add(size)
            if slot.seating_type:
                merged.seating_types.add(slot.seating_type)
    return seen
