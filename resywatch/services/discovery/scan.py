"""One discovery pass: ask Resy what is open in each bucket, then record what changed.

The rule is the seed's: a slot just opened when it is in C − (P ∪ B), where C is this scan,
P the bucket's last successful scan and B its baseline (its first successful scan). Guards
against the seed's faults:

- only a complete scan (every party size, every page) is applied: a failed or partial one
  replaces nothing, so it can neither close open drops nor make them fire again later;
- one slot opening is one drop event, however many buckets see it and however often a scan
  is replayed (a partial unique index backs this up);
- a slot that closes and reopens within the quiet period re-opens its old event instead of
  alerting again;
- a change of search area, window or party sizes re-baselines the bucket.

A bucket's snapshot, its drop events and their notification rows commit in one transaction;
Resy is never called inside a transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from resywatch.config import Settings
from resywatch.db.engine import Database, insert_unless_present
from resywatch.db.leases import this_process
from resywatch.db.models import DiscoveryBucket, DropEvent, SlotSnapshot, Venue
from resywatch.errors import InvalidInput, ResywatchError
from resywatch.redact import redact_text
from resywatch.resy.client import ResyClient
from resywatch.resy.models import SearchHit, VenueResponse, slot_seating, slot_start
from resywatch.services.curated import HotspotMatcher, normalize_name
from resywatch.services.discovery import buckets as bucket_rules
from resywatch.services.discovery import claims
from resywatch.services.discovery.buckets import Bucket
from resywatch.services.vocabulary import slot_id

QUIET_PERIOD = timedelta(minutes=30)
MAX_PAGES = 50  # a safety stop: a Manhattan evening is a handful of 100-venue pages


@dataclass
class SeenSlot:
    """A slot as one bucket scan saw it, merged across party sizes and seating types."""

    slot_id: str
    venue_id: int
    venue_name: str
    starts_at: datetime
    party_sizes: set[int] = field(default_factory=set)
    seating_types: set[str] = field(default_factory=set)

    @property
    def offered(self) -> str:
        """The party sizes and seating types as one comparable string: "2,4|Bar,Patio"."""
        sizes = ",".join(map(str, sorted(self.party_sizes)))
        return f"{sizes}|{','.join(sorted(self.seating_types))}"


@dataclass(frozen=True)
class SeenVenue:
    id: int
    name: str
    url_slug: str | None
    location_slug: str | None
    neighborhood: str | None
    cuisine: str | None
    price_range: int | None
    rating: float | None
    rating_count: int | None
    latitude: float | None
    longitude: float | None

    @classmethod
    def from_hit(cls, hit: SearchHit) -> SeenVenue:
        return cls(
            id=hit.id,
            name=hit.name,
            url_slug=hit.url_slug,
            location_slug=hit.location.url_slug if hit.location else None,
            neighborhood=hit.neighborhood,
            cuisine=", ".join(hit.cuisine) or None,
            price_range=hit.price_range_id,
            rating=hit.rating.average if hit.rating else None,
            rating_count=hit.rating.count if hit.rating else None,
            latitude=hit.geoloc.lat if hit.geoloc else None,
            longitude=hit.geoloc.lng if hit.geoloc else None,
        )

    @classmethod
    def from_venue(cls, info: VenueResponse) -> SeenVenue:
        location = info.location
        return cls(
            id=info.id,
            name=info.name,
            url_slug=info.url_slug,
            location_slug=location.url_slug if location else None,
            neighborhood=location.neighborhood if location else None,
            cuisine=None,
            price_range=None,
            rating=None,
            rating_count=None,
            latitude=None,
            longitude=None,
        )


@dataclass
class BucketScan:
    """What one bucket's searches returned; `error` set means incomplete, apply nothing."""

    bucket: Bucket
    slots: dict[str, SeenSlot] = field(default_factory=dict)
    venues: dict[int, SeenVenue] = field(default_factory=dict)
    error: str | None = None
    # (venue id, Resy's start string) -> slot, so repeats across party sizes cost a lookup.
    by_start: dict[tuple[int, str], SeenSlot] = field(default_factory=dict, repr=False)


@dataclass
class BucketOutcome:
    bucket_id: str
    ok: bool
    stale: bool = False  # the lease was lost: nothing was written
    baselined: bool = False
    slots: int = 0
    opened: int = 0
    reopened: int = 0
    closed: int = 0
    error: str | None = None


@dataclass
class PassSummary:
    buckets_scanned: int = 0
    buckets_failed: int = 0
    buckets_baselined: int = 0
    buckets_skipped: int = 0  # leased by another worker, or already scanned this cycle
    buckets_claimed: int = 0
    buckets_stale: int = 0  # scans refused because their lease was taken over
    buckets_pruned: int = 0
    slots_seen: int = 0
    drops_opened: int = 0
    drops_reopened: int = 0
    drops_closed: int = 0
    requests: int = 0
    duration_s: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)


async def fetch_bucket(resy: ResyClient, bucket: Bucket, settings: Settings) -> BucketScan:
    """Search the area for the bucket's date around its anchor, for every party size."""
    scan = BucketScan(bucket)
    queries = [
        (party, time_filter)
        for party in sorted(set(settings.discovery_party_sizes))
        for time_filter in bucket_rules.time_filters(bucket.anchor, settings.discovery_window_hours)
    ]
    results = await asyncio.gather(
        *(
            resy.search_all(
                day=bucket.day,
                party_size=party,
                time_filter=time_filter,
                bounding_box=settings.discovery_bounding_box,
                per_page=settings.discovery_page_size,
                max_pages=MAX_PAGES,
            )
            for party, time_filter in queries
        ),
        return_exceptions=True,
    )
    for (party, _), result in zip(queries, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, ResywatchError):
                raise result
            scan.error = f"party {party}: {result}"
            continue
        _merge(scan, result, party, settings.discovery_window_hours)
    return scan


def _merge(scan: BucketScan, hits: list[SearchHit], party: int, window_hours: int) -> None:
    """Fold one party size's hits into the bucket's slots. A slot shows up once per party
    size and seating type, so its id and start are worked out once per (venue, start)."""
    for hit in hits:
        for slot in hit.slots:
            start = slot["date"]["start"]
            seen = scan.by_start.get((hit.id, start))
            if seen is None:
                starts = slot_start(slot)
                if not bucket_rules.in_window(starts, scan.bucket, window_hours):
                    continue
                if hit.id not in scan.venues:
                    scan.venues[hit.id] = SeenVenue.from_hit(hit)
                key = slot_id(hit.id, starts)
                seen = scan.slots.get(key) or scan.slots.setdefault(
                    key, SeenSlot(key, hit.id, hit.name, starts)
                )
                scan.by_start[(hit.id, start)] = seen
            seen.party_sizes.add(party)
            if seating := slot_seating(slot):
                seen.seating_types.add(seating)


@dataclass(frozen=True)
class ScanContext:
    """The collaborators of a pass."""

    db: Database
    resy: ResyClient
    settings: Settings
    matcher: HotspotMatcher
    clock: Callable[[], datetime]
    owner: str = field(default_factory=this_process)  # whose bucket leases these are


async def run_pass(
    ctx: ScanContext,
    *,
    only: Iterable[str] = (),
    due_only: bool = False,
    rebaseline: bool = False,
    on_bucket: Callable[[BucketOutcome], None] | None = None,
) -> PassSummary:
    """Sync the window, then lease, scan and apply buckets (all, the named ones, or those
    not yet scanned this cycle) a few at a time until none is left for this worker.

    Leasing as it goes, rather than all at once, is what spreads one cycle over several
    workers: each takes the next free buckets as soon as it has room.
    """
    started = ctx.clock()
    settings = ctx.settings
    summary = PassSummary()
    wanted = bucket_rules.window(settings, started)
    summary.buckets_pruned = sync_window(ctx.db, wanted, started)
    by_id = {b.id: b for b in _candidates(wanted, list(only))}
    pending = list(by_id)
    cycle = claims.cycle_of(started, settings.discovery_interval_s)
    ttl = timedelta(seconds=settings.jobs_lease_ttl_s)
    calls_before = len(ctx.resy.calls)
    key = bucket_rules.search_key(settings)
    slots_seen: set[str] = set()
    venues_recorded: set[int] = set()
    running: dict[asyncio.Task[BucketScan], claims.BucketLease] = {}
    dead = claims.dead_holders(ctx.db, started)  # killed workers of this machine

    async def scan_one(bucket: Bucket) -> BucketScan:
        try:
            return await fetch_bucket(ctx.resy, bucket, settings)
        except ResywatchError as exc:
            return BucketScan(bucket, error=str(exc))

    renewer = asyncio.create_task(_keep_renewing(ctx, running, ttl))
    try:
        while True:
            room = settings.discovery_concurrency - len(running)
            if room > 0 and pending:
                now = ctx.clock()
                leases = claims.claim(
                    ctx.db,
                    pending,
                    owner=ctx.owner,
                    now=now,
                    ttl=ttl,
                    limit=room,
                    cycle=cycle,
                    due_only=due_only,
                    stamp=claims.cycle_of(now, settings.discovery_interval_s),
                    dead=dead,
                )
                taken = {lease.bucket_id for lease in leases}
                # Fewer than asked for: the rest is leased elsewhere or done this cycle.
                pending = [b for b in pending if b not in taken] if len(leases) == room else []
                for lease in leases:
                    running[asyncio.create_task(scan_one(by_id[lease.bucket_id]))] = lease
                summary.buckets_claimed += len(leases)
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                lease = running[task]  # until applied: released below if anything fails
                if task.cancelled():  # the renewer found the lease taken over
                    outcome = BucketOutcome(lease.bucket_id, ok=False, stale=True, error=LOST)
                else:
                    scan = task.result()
                    fresh = {i: v for i, v in scan.venues.items() if i not in venues_recorded}
                    outcome = apply_scan(
                        ctx.db,
                        scan,
                        key,
                        ctx.matcher,
                        ctx.clock(),
                        lease=lease,
                        venues=fresh.values(),
                        rebaseline=rebaseline,
                        settings=settings,
                    )
                    if not outcome.stale:
                        venues_recorded.update(fresh)
                        slots_seen.update(scan.slots)
                del running[task]
                _count(summary, outcome, settings)
                if on_bucket:
                    on_bucket(outcome)
    finally:
        renewer.cancel()
        if running:  # stopped or failed mid-pass: hand the buckets back to other workers
            for task in running:
                task.cancel()
            claims.release(ctx.db, running.values())

    summary.buckets_skipped = len(by_id) - summary.buckets_claimed
    summary.slots_seen = len(slots_seen)
    summary.requests = len(ctx.resy.calls) - calls_before
    summary.duration_s = round((ctx.clock() - started).total_seconds(), 3)
    return summary


LOST = "lease lost: another worker took the bucket over, this scan was not applied"


async def _keep_renewing(
    ctx: ScanContext, running: dict[asyncio.Task[BucketScan], claims.BucketLease], ttl: timedelta
) -> None:
    """Renew the leases of the scans in flight; stop a scan whose lease was lost (its
    result would be refused anyway, so it should not spend more Resy requests)."""
    while True:
        await asyncio.sleep(ttl.total_seconds() / 3)
        held = dict(running)
        lost = set(claims.renew(ctx.db, held.values(), now=ctx.clock(), ttl=ttl))
        for task, lease in held.items():
            if lease.bucket_id in lost:
                task.cancel()


def _candidates(wanted: list[Bucket], only: list[str]) -> list[Bucket]:
    if not only:
        return wanted
    by_id = {b.id: b for b in wanted}
    unknown = [name for name in only if bucket_rules.parse_bucket_id(name).id not in by_id]
    if unknown:
        raise InvalidInput(
            f"not a bucket of the current window: {', '.join(unknown)} "
            f"(the window is {wanted[0].id} to {wanted[-1].id})"
        )
    return [by_id[bucket_rules.parse_bucket_id(name).id] for name in dict.fromkeys(only)]


def _count(summary: PassSummary, outcome: BucketOutcome, settings: Settings) -> None:
    if outcome.stale:
        summary.buckets_stale += 1
        return
    if not outcome.ok:
        summary.buckets_failed += 1
        summary.errors[outcome.bucket_id] = redact_text(outcome.error or "", settings.secrets())
        return
    summary.buckets_scanned += 1
    summary.buckets_baselined += outcome.baselined
    summary.drops_opened += outcome.opened
    summary.drops_reopened += outcome.reopened
    summary.drops_closed += outcome.closed


def sync_window(db: Database, wanted: list[Bucket], now: datetime) -> int:
    """Drop buckets that left the window (their snapshots go with them), create the new
    ones (they baseline on their first scan), and close drops whose date has passed."""
    wanted_ids = {b.id for b in wanted}
    with db.write() as session:
        existing = set(session.exec(select(DiscoveryBucket.id)))
        stale = existing - wanted_ids
        if stale:
            session.execute(delete(SlotSnapshot).where(col(SlotSnapshot.bucket_id).in_(stale)))
            session.execute(delete(DiscoveryBucket).where(col(DiscoveryBucket.id).in_(stale)))
        new = [
            {"id": b.id, "slot_date": b.day, "anchor": f"{b.anchor:%H:%M}", "created_at": now}
            for b in wanted
            if b.id not in existing
        ]
        if new:  # every worker's first pass of a day adds the same buckets
            session.execute(insert_unless_present(session, _BUCKET), new)
        if wanted:
            past = session.exec(
                select(DropEvent).where(
                    col(DropEvent.closed_at).is_(None), DropEvent.slot_date < wanted[0].day
                )
            ).all()
            for event in past:
                _close(event, now)
    return len(stale)


def upsert_venues(db: Database, venues: Iterable[SeenVenue], now: datetime) -> int:
    """Insert venues not yet known and update changed ones; unchanged ones are not written."""
    with db.write() as session:
        return _upsert_venues(session, venues, now)


def _upsert_venues(session: Session, venues: Iterable[SeenVenue], now: datetime) -> int:
    seen = {v.id: v for v in venues}
    if not seen:
        return 0
    written = 0
    known = {v.id: v for v in session.exec(select(Venue).where(col(Venue.id).in_(seen)))}
    for venue_id, venue in seen.items():
        fields = {k: v for k, v in vars(venue).items() if v is not None}
        row = known.get(venue_id)
        if row is None:  # another worker may be adding it too
            values = fields | {"first_seen_at": now, "updated_at": now}
            session.execute(insert_unless_present(session, _VENUE).values(**values))
        elif any(getattr(row, k) != v for k, v in fields.items()):
            row.sqlmodel_update(fields | {"updated_at": now})
        else:
            continue
        written += 1
    return written


def apply_scan(
    db: Database,
    scan: BucketScan,
    key: str,
    matcher: HotspotMatcher,
    now: datetime,
    *,
    lease: claims.BucketLease | None,
    venues: Iterable[SeenVenue] = (),
    rebaseline: bool = False,
    settings: Settings,
) -> BucketOutcome:
    """Record one bucket scan (the failure, or the venues, the new snapshot and its drops
    with their notifications) in one transaction, if `lease` still stands. Without a lease
    the caller is the database's only writer (a benchmark, a test)."""
    outcome = BucketOutcome(scan.bucket.id, ok=scan.error is None, error=scan.error)
    with db.write() as session:
        if lease is not None and not claims.settle(session, lease):
            session.rollback()  # nothing of a stale scan may land
            return BucketOutcome(scan.bucket.id, ok=False, stale=True, error=LOST)
        bucket = session.get(DiscoveryBucket, scan.bucket.id)
        if bucket is None:  # pruned while we were asking Resy
            return BucketOutcome(scan.bucket.id, ok=False, error="bucket left the window")
        bucket.last_attempt_at = now
        if scan.error is not None:
            bucket.last_error = redact_text(scan.error, settings.secrets())[:500]
            bucket.consecutive_failures += 1
            return outcome
        _upsert_venues(session, venues, now)
        if rebaseline or bucket.baselined_at is None or bucket.search_key != key:
            _baseline(session, bucket, scan, now)
            bucket.search_key = key
            bucket.baseline_count = len(scan.slots)
            outcome.baselined = True
        else:
            _diff(session, bucket, scan, matcher, now, outcome, settings)
        bucket.last_scan_at = now
        bucket.last_error = None
        bucket.consecutive_failures = 0
        bucket.slot_count = len(scan.slots)
    outcome.slots = len(scan.slots)
    return outcome


# The snapshot is read and written with Core statements, not ORM objects: a dense city is
# tens of thousands of slots a pass, and an unchanged scan must cost next to nothing.
_SNAPSHOT = SlotSnapshot.__table__  # type: ignore[attr-defined]
_BUCKET = DiscoveryBucket.__table__  # type: ignore[attr-defined]
_VENUE = Venue.__table__  # type: ignore[attr-defined]


def _baseline(session: Session, bucket: DiscoveryBucket, scan: BucketScan, now: datetime) -> None:
    """B = P = C: what is open now is the starting point, not news."""
    session.execute(delete(_SNAPSHOT).where(_SNAPSHOT.c.bucket_id == bucket.id))
    if scan.slots:
        session.execute(
            insert(_SNAPSHOT),
            [_snapshot_row(bucket.id, seen, now, in_baseline=True) for seen in scan.slots.values()],
        )
    bucket.baselined_at = now


def _diff(
    session: Session,
    bucket: DiscoveryBucket,
    scan: BucketScan,
    matcher: HotspotMatcher,
    now: datetime,
    outcome: BucketOutcome,
    settings: Settings,
) -> None:
    """Apply C − (P ∪ B) as drops and P − C as closures; write only the rows that change."""
    columns = _SNAPSHOT.c
    rows = {
        slot: (in_baseline, in_previous, offered)
        for slot, in_baseline, in_previous, offered in session.execute(
            select(
                columns.slot_id, columns.in_baseline, columns.in_previous, columns.offered
            ).where(columns.bucket_id == bucket.id)
        )
    }
    current = scan.slots
    previous = {slot for slot, (_, in_previous, _) in rows.items() if in_previous}
    baseline = {slot for slot, (in_baseline, _, _) in rows.items() if in_baseline}
    opened = current.keys() - (previous | baseline)
    gone = previous - current.keys()

    new_rows, touched = [], []
    for slot, seen in current.items():
        known = rows.get(slot)
        if known is None:
            new_rows.append(_snapshot_row(bucket.id, seen, now, in_baseline=False))
        elif not known[1] or known[2] != seen.offered:
            touched.append({"b_slot": slot, "offered": seen.offered, "changed_at": now})
    if new_rows:
        session.execute(insert(_SNAPSHOT), new_rows)
    if touched:
        session.execute(
            update(_SNAPSHOT)
            .where(columns.bucket_id == bucket.id, columns.slot_id == bindparam("b_slot"))
            .values(
                in_previous=True, offered=bindparam("offered"), changed_at=bindparam("changed_at")
            ),
            touched,
        )
    if gone:
        in_bucket = columns.bucket_id == bucket.id
        session.execute(
            update(_SNAPSHOT)
            .where(in_bucket, columns.slot_id.in_(gone), columns.in_baseline)
            .values(in_previous=False, changed_at=now)
        )
        session.execute(
            delete(_SNAPSHOT).where(in_bucket, columns.slot_id.in_(gone), ~columns.in_baseline)
        )

    if opened:
        slots = [current[s] for s in sorted(opened)]
        _open_drops(session, bucket, slots, matcher, now, outcome, settings)
    if gone:
        for event in session.exec(
            select(DropEvent).where(
                col(DropEvent.slot_id).in_(gone), col(DropEvent.closed_at).is_(None)
            )
        ):
            _close(event, now)
            outcome.closed += 1


def _open_drops(
    session: Session,
    bucket: DiscoveryBucket,
    slots: list[SeenSlot],
    matcher: HotspotMatcher,
    now: datetime,
    outcome: BucketOutcome,
    settings: Settings,
) -> None:
    ids = [s.slot_id for s in slots]
    already_open = set(
        session.exec(
            select(DropEvent.slot_id).where(
                col(DropEvent.slot_id).in_(ids), col(DropEvent.closed_at).is_(None)
            )
        )
    )
    recently_closed: dict[str, DropEvent] = {}
    for event in session.exec(
        select(DropEvent)
        .where(col(DropEvent.slot_id).in_(ids), col(DropEvent.closed_at) >= now - QUIET_PERIOD)
        .order_by(col(DropEvent.closed_at))
    ):
        recently_closed[event.slot_id] = event  # the latest wins
    # Here, not at the top: outbox imports availability, which imports this module.
    from resywatch.services import outbox

    venues = {
        v.id: v
        for v in session.exec(select(Venue).where(col(Venue.id).in_({s.venue_id for s in slots})))
    }
    for seen in slots:
        if seen.slot_id in already_open:  # another bucket saw it first
            continue
        if (flickered := recently_closed.get(seen.slot_id)) is not None:
            flickered.closed_at, flickered.duration_s = None, None  # a flicker, not news
            outcome.reopened += 1
            continue
        event = DropEvent(
            slot_id=seen.slot_id,
            bucket_id=bucket.id,
            venue_id=seen.venue_id,
            venue_name=seen.venue_name,
            starts_at=seen.starts_at,
            slot_date=seen.starts_at.date(),
            party_sizes=sorted(seen.party_sizes),
            seating_types=sorted(seen.seating_types),
            is_hotspot=matcher.matches(seen.venue_name),
            opened_at=now,
        )
        try:
            with session.begin_nested():  # the event's id names its notification
                session.add(event)
        except IntegrityError:  # another worker's bucket opened it a moment ago
            continue
        if wants_notification(event, settings):
            session.add(outbox.drop_opened(event, venues.get(seen.venue_id)))
        outcome.opened += 1


def wants_notification(event: DropEvent, settings: Settings) -> bool:
    """Whether this drop passes the configured filter (`[notify] drops`, `drop_venues`,
    `drop_party_sizes`, `drop_window`)."""
    if settings.notify_drops == "none" or (
        settings.notify_drops == "hotspots" and not event.is_hotspot
    ):
        return False
    if settings.notify_drop_venues and not any(
        normalize_name(v) in normalize_name(event.venue_name) for v in settings.notify_drop_venues
    ):
        return False
    if settings.notify_drop_party_sizes and not set(event.party_sizes) & set(
        settings.notify_drop_party_sizes
    ):
        return False
    if settings.notify_drop_window:
        start, end = settings.notify_drop_window.split("-")
        return start <= f"{event.starts_at:%H:%M}" <= end
    return True


def _close(event: DropEvent, now: datetime) -> None:
    event.closed_at = now
    event.duration_s = max(0, int((now - event.opened_at).total_seconds()))


def _snapshot_row(
    bucket_id: str, seen: SeenSlot, now: datetime, *, in_baseline: bool
) -> dict[str, Any]:
    return {
        "bucket_id": bucket_id,
        "slot_id": seen.slot_id,
        "venue_id": seen.venue_id,
        "starts_at": seen.starts_at,
        "offered": seen.offered,
        "in_baseline": in_baseline,
        "in_previous": True,
        "first_seen_at": now,
        "changed_at": now,
    }
