"""Debugging discovery: why a slot is (or is not) in the feed, and what one bucket holds.

The seed's feed-item-debug answered "why is this in the feed?" for a drop. This answers it
for any slot, drop or not, from what the database keeps: the buckets' snapshots (B and P,
with when each slot was first seen and last changed) and the drop events (opened, closed,
reopened within the quiet period). No Resy call: it explains what discovery saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from sqlmodel import Session, col, select

from resywatch.config import Settings
from resywatch.db.models import DiscoveryBucket, DropEvent, SlotSnapshot, Venue
from resywatch.errors import InvalidInput, NotFound
from resywatch.ids import is_id, may_name_a_row, parse_id
from resywatch.services.curated import name_filter, normalize_name
from resywatch.services.discovery import buckets as bucket_rules
from resywatch.services.discovery.apply import QUIET_PERIOD
from resywatch.services.discovery.states import STALE_AFTER, BucketState, bucket_states
from resywatch.services.vocabulary import slot_id as make_slot_id

_SLOT_ID = re.compile(r"[0-9a-f]{32}")


class Verdict:
    """What `explain` concluded (plain strings: they are JSON values)."""

    OPEN_DROP = "open_drop"  # in the feed, still open
    CLOSED_DROP = "closed_drop"  # in the feed, closed since
    BASELINE = "baseline"  # not in the feed: open when its bucket started
    SEEN_WITHOUT_DROP = "seen_without_drop"  # seen as new, its drop event no longer kept
    NOT_SEEN = "not_seen"  # no scan has seen it open


@dataclass(frozen=True)
class SlotInBucket:
    """The slot as one bucket's snapshot knows it."""

    bucket_id: str
    in_baseline: bool
    in_last_scan: bool
    first_seen_at: datetime
    changed_at: datetime
    bucket_baselined_at: datetime | None
    bucket_last_scan_at: datetime | None
    bucket_stale: bool


@dataclass(frozen=True)
class DropRecord:
    id: int
    bucket_id: str  # the bucket that saw it open first
    opened_at: datetime
    closed_at: datetime | None
    duration_s: int | None
    reopen_count: int
    reopened_at: datetime | None
    open: bool


@dataclass(frozen=True)
class Explanation:
    slot_id: str
    venue_id: int | None
    venue_name: str | None
    starts_at: datetime | None  # venue-local
    verdict: str
    in_feed: bool
    reason: str
    first_seen_at: datetime | None
    first_seen_by: str | None  # bucket id
    first_seen_in_baseline: bool | None
    covering_buckets: list[str]  # buckets of today's window whose date and anchor ± window hold it
    buckets: list[SlotInBucket] = field(default_factory=list)
    drops: list[DropRecord] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  # what happened, oldest first


def parse_slot_id(text: str) -> str:
    slot = text.strip().lower()
    if not _SLOT_ID.fullmatch(slot):
        raise InvalidInput(
            f"{text!r} is not a slot id: 32 hex digits, as `discover feed --json` and "
            "`discover buckets --show` give them (or use --venue, --date and --time)"
        )
    return slot


def known_venue(session: Session, text: str) -> Venue:
    """A venue discovery or a search has saved, by Resy id or name (no Resy call)."""
    if is_id(text):
        venue_id = parse_id(text, what="venue")
        venue = session.get(Venue, venue_id) if may_name_a_row(venue_id) else None
        if venue is None:
            raise NotFound(f"no venue {venue_id} has been seen by a scan or a search")
        return venue
    wanted = name_filter(text, what="--venue")
    named = [v for v in session.exec(select(Venue)) if wanted in normalize_name(v.name)]
    exact = [v for v in named if normalize_name(v.name) == wanted]
    if len(exact) == 1 or len(named) == 1:
        return (exact or named)[0]
    if not named:
        raise NotFound(f"no venue named {text!r} has been seen by a scan or a search")
    names = ", ".join(sorted(f"{v.name} ({v.id})" for v in named)[:8])
    raise InvalidInput(f"{text!r} names several venues: {names}; give the venue id")


def slot_of(session: Session, venue: str, day: date, at: time) -> tuple[str, Venue, datetime]:
    """The slot id of (venue, local date, local time), as discovery derives it."""
    found = known_venue(session, venue)
    starts_at = datetime.combine(day, at)
    return make_slot_id(found.id, starts_at), found, starts_at


def explain(
    session: Session,
    settings: Settings,
    now: datetime,
    slot: str,
    *,
    venue: Venue | None = None,
    starts_at: datetime | None = None,
) -> Explanation:
    """Why `slot` is or is not in the feed. Without `venue`/`starts_at` (a bare slot id) a
    slot no snapshot or drop names is NotFound: nothing is known about it."""
    rows = session.exec(
        select(SlotSnapshot, DiscoveryBucket)
        .join(DiscoveryBucket, col(DiscoveryBucket.id) == SlotSnapshot.bucket_id)
        .where(SlotSnapshot.slot_id == slot)
        .order_by(col(SlotSnapshot.first_seen_at), col(SlotSnapshot.bucket_id))
    ).all()
    events = session.exec(
        select(DropEvent).where(DropEvent.slot_id == slot).order_by(col(DropEvent.opened_at))
    ).all()
    if not rows and not events and starts_at is None:
        raise NotFound(f"no scan has seen slot {slot} (no bucket snapshot or drop event names it)")
    if venue is None:
        venue_id = events[0].venue_id if events else rows[0][0].venue_id
        venue = session.get(Venue, venue_id)
    if starts_at is None:
        starts_at = events[0].starts_at if events else rows[0][0].starts_at
    in_buckets = [_in_bucket(snap, bucket, now) for snap, bucket in rows]
    drops = [_record(e) for e in events]
    covering = [
        b.id
        for b in bucket_rules.window(settings, now)
        if bucket_rules.in_window(starts_at, b, settings.discovery_window_hours)
    ]
    first = _first_seen(in_buckets, drops)
    verdict, reason = _verdict(session, settings, now, starts_at, in_buckets, drops, covering)
    return Explanation(
        slot_id=slot,
        venue_id=venue.id if venue else (events[0].venue_id if events else None),
        venue_name=venue.name if venue else (events[0].venue_name if events else None),
        starts_at=starts_at,
        verdict=verdict,
        in_feed=bool(drops),
        reason=reason,
        first_seen_at=first[0] if first else None,
        first_seen_by=first[1] if first else None,
        first_seen_in_baseline=first[2] if first else None,
        covering_buckets=covering,
        buckets=in_buckets,
        drops=drops,
        history=_history(in_buckets, drops),
    )


def _in_bucket(snap: SlotSnapshot, bucket: DiscoveryBucket, now: datetime) -> SlotInBucket:
    return SlotInBucket(
        bucket_id=bucket.id,
        in_baseline=snap.in_baseline,
        in_last_scan=snap.in_previous,
        first_seen_at=snap.first_seen_at,
        changed_at=snap.changed_at,
        bucket_baselined_at=bucket.baselined_at,
        bucket_last_scan_at=bucket.last_scan_at,
        bucket_stale=bucket.last_scan_at is None or now - bucket.last_scan_at > STALE_AFTER,
    )


def _record(event: DropEvent) -> DropRecord:
    assert event.id is not None
    return DropRecord(
        id=event.id,
        bucket_id=event.bucket_id,
        opened_at=event.opened_at,
        closed_at=event.closed_at,
        duration_s=event.duration_s,
        reopen_count=event.reopen_count,
        reopened_at=event.reopened_at,
        open=event.closed_at is None,
    )


def _first_seen(
    in_buckets: list[SlotInBucket], drops: list[DropRecord]
) -> tuple[datetime, str, bool] | None:
    """The earliest scan known to have seen it: a snapshot's first sighting or a drop's
    opening (a new slot's snapshot row goes when it closes; its drop event stays)."""
    seen = [(b.first_seen_at, b.bucket_id, b.in_baseline) for b in in_buckets]
    seen += [(d.opened_at, d.bucket_id, False) for d in drops]
    return min(seen, key=lambda s: s[0]) if seen else None


def _verdict(
    session: Session,
    settings: Settings,
    now: datetime,
    starts_at: datetime,
    in_buckets: list[SlotInBucket],
    drops: list[DropRecord],
    covering: list[str],
) -> tuple[str, str]:
    quiet = int(QUIET_PERIOD.total_seconds() // 60)
    if drops:
        last = drops[-1]
        flicker = (
            f"; it closed and reopened {last.reopen_count} time(s) within the {quiet}-minute "
            "quiet period (the same drop, not news again)"
            if last.reopen_count
            else ""
        )
        opened = (
            f"opened {_utc(last.opened_at)}: bucket {last.bucket_id}'s scan saw it and it was "
            "neither in that bucket's baseline nor in its previous scan"
        )
        if last.open:
            fresh = any(b.in_last_scan and not b.bucket_stale for b in in_buckets)
            still = "a fresh bucket still sees it" if fresh else "no fresh bucket sees it now"
            return Verdict.OPEN_DROP, f"in the feed, open: {opened}; {still}{flicker}"
        minutes = (last.duration_s or 0) // 60
        return (
            Verdict.CLOSED_DROP,
            f"in the feed, closed: {opened}; it closed {_utc(last.closed_at)} after "
            f"{minutes} min, when a scan no longer saw it{flicker}",
        )
    baseline = [b for b in in_buckets if b.in_baseline]
    if baseline:
        b = baseline[0]
        state = (
            "still open in its last scan"
            if b.in_last_scan
            else f"gone from its last scan since {_utc(b.changed_at)}"
        )
        return (
            Verdict.BASELINE,
            f"not in the feed: it is in bucket {b.bucket_id}'s baseline (open at the bucket's "
            f"first scan, {_utc(b.bucket_baselined_at)}), and what is open when a bucket starts "
            f"is not news, nor is its coming back; {state}",
        )
    if in_buckets:
        b = in_buckets[0]
        return (
            Verdict.SEEN_WITHOUT_DROP,
            f"not in the feed: bucket {b.bucket_id} has seen it open since "
            f"{_utc(b.first_seen_at)}, but its drop event is no longer kept "
            "(`admin prune` retention or `admin clear`)",
        )
    return Verdict.NOT_SEEN, _unseen(session, settings, now, starts_at, covering)


def _unseen(
    session: Session, settings: Settings, now: datetime, starts_at: datetime, covering: list[str]
) -> str:
    """Why no scan has seen it: outside the window, not scanned yet, or not offered."""
    window = bucket_rules.window(settings, now)
    first, last = window[0].day, window[-1].day
    if not first <= starts_at.date() <= last:
        return (
            f"not in the feed: no scan has seen it, and {starts_at.date()} is outside the "
            f"discovery window ({first} to {last})"
        )
    if not covering:
        spans = ", ".join(
            f"{anchor:%H:%M} ± {settings.discovery_window_hours} h"
            for anchor in sorted(set(settings.discovery_time_slots))
        )
        return (
            f"not in the feed: no scan has seen it, and {starts_at:%H:%M} is outside every "
            f"bucket's hours ({spans})"
        )
    states = {
        b.id: b
        for b in session.exec(select(DiscoveryBucket).where(col(DiscoveryBucket.id).in_(covering)))
    }
    unscanned = [i for i in covering if i not in states or states[i].last_scan_at is None]
    if unscanned:
        return (
            f"not in the feed: no scan has seen it; bucket(s) {', '.join(unscanned)} "
            "have not been scanned yet (`resywatch discover scan`)"
        )
    scans = ", ".join(f"{i} at {_utc(states[i].last_scan_at)}" for i in covering)
    parties = ", ".join(map(str, sorted(set(settings.discovery_party_sizes))))
    return (
        f"not in the feed: the bucket(s) that cover it were scanned ({scans}) and Resy did "
        f"not offer it open for the party sizes scanned ({parties})"
    )


def _history(in_buckets: list[SlotInBucket], drops: list[DropRecord]) -> list[str]:
    events: list[tuple[datetime, str]] = []
    for b in in_buckets:
        what = "in the baseline scan" if b.in_baseline else "in a scan"
        events.append((b.first_seen_at, f"first seen {what} of bucket {b.bucket_id}"))
        if not b.in_last_scan:
            events.append((b.changed_at, f"gone from bucket {b.bucket_id}'s scans"))
    for d in drops:
        events.append((d.opened_at, f"drop {d.id} opened (bucket {d.bucket_id})"))
        if d.reopened_at is not None:
            events.append((d.reopened_at, f"drop {d.id} reopened ({d.reopen_count} time(s))"))
        if d.closed_at is not None:
            events.append(
                (d.closed_at, f"drop {d.id} closed after {(d.duration_s or 0) // 60} min")
            )
    return [f"{_utc(at)}  {text}" for at, text in sorted(events, key=lambda e: e[0])]


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"{aware.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


@dataclass(frozen=True)
class BucketSlot:
    slot_id: str
    venue_id: int
    venue_name: str | None
    starts_at: datetime  # venue-local
    offered: str  # party sizes | seating types
    in_baseline: bool
    in_last_scan: bool
    first_seen_at: datetime
    changed_at: datetime


@dataclass(frozen=True)
class BucketContents:
    bucket: BucketState
    baseline: list[BucketSlot]  # B: open at its first scan
    last_scan: list[BucketSlot]  # P: open in its last successful scan


def bucket_contents(session: Session, bucket_text: str, now: datetime) -> BucketContents:
    """One bucket's baseline and last-scan slots (`discover buckets --show ID`)."""
    wanted = bucket_rules.parse_bucket_id(bucket_text).id
    state = next((s for s in bucket_states(session, now) if s.id == wanted), None)
    if state is None:
        raise NotFound(f"no bucket {wanted} (`resywatch discover buckets` lists them)")
    rows = session.exec(
        select(SlotSnapshot, Venue)
        .join(Venue, col(Venue.id) == SlotSnapshot.venue_id, isouter=True)
        .where(SlotSnapshot.bucket_id == wanted)
        .order_by(col(SlotSnapshot.starts_at), col(SlotSnapshot.venue_id))
    ).all()
    slots = [
        BucketSlot(
            slot_id=snap.slot_id,
            venue_id=snap.venue_id,
            venue_name=venue.name if venue else None,
            starts_at=snap.starts_at,
            offered=snap.offered,
            in_baseline=snap.in_baseline,
            in_last_scan=snap.in_previous,
            first_seen_at=snap.first_seen_at,
            changed_at=snap.changed_at,
        )
        for snap, venue in rows
    ]
    return BucketContents(
        state, [s for s in slots if s.in_baseline], [s for s in slots if s.in_last_scan]
    )
