"""The sandbox's world: venues, when each day is released, and who holds which table when.

Everything that changes with time is a pure function of (seed, venue, day, instant), so a test
that sets the clock sees the same world every run:

- Day D of a venue is released at ``(D - lead_time_in_days)`` at the venue's local release
  time, plus a per-day jitter from 2 s early to 90 s late (unless a control forces the
  instant).
- Each slot (time x seating) has a few tables. Other diners take each table a seeded delay
  after the release: seconds for hot venues (they look sold out almost at once), days for
  warm ones, weeks for cool ones.
- Cancellations: every 15 minutes of sandbox time, each released venue-day may see a few
  tables come back for a few minutes, after which someone else takes them again.
- The sandbox user's bookings and control adjustments are the only stored state.

Availability is computed per venue-day into a `Snapshot` that stays valid until the next
instant anything in it can change, so requests in between cost a dictionary lookup.
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from resywatch.sandbox.venues import Seating, Service, Venue, build_venues

#: A slot closes to bookings one hour before it starts (Resy's ``market.date.off``).
MARKET_OFF_S = 3600
#: Length of a cancellation epoch and the longest a cancelled table stays free.
CANCEL_EPOCH_S = 900
MAX_CANCEL_S = 2700
#: Expected cancellations per released venue-day per epoch, and how long they stay open.
_CANCEL_RATE = {"hot": 0.15, "warm": 0.10, "cool": 0.05}
_CANCEL_SPAN = {"hot": (60.0, 600.0), "warm": (300.0, 1800.0), "cool": (600.0, 2700.0)}
#: Release jitter bounds (seconds; negative = early).
JITTER_EARLY_S = 2.0
JITTER_LATE_S = 90.0
#: Materialised venue-days kept before past days are dropped, and how far back they go.
_EVICT_AT = 20_000
_KEEP_PAST_DAYS = 2

_MASK = (1 << 64) - 1


_MIX_START = 0x9E3779B97F4A7C15


def mix(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): fast, stable across runs and platforms."""
    return mix_on(_MIX_START, *values)


def mix_on(h: int, *values: int) -> int:
    """`mix` continued from state ``h``: ``mix(*a, *b) == mix_on(mix(*a), *b)``."""
    for value in values:
        h = (h ^ (value & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & _MASK
        h ^= h >> 31
    return h


def unit(h: int) -> float:
    """A float in [0, 1) from a hash."""
    return (h >> 11) * (1.0 / (1 << 53))


@dataclass(frozen=True, slots=True)
class SlotDef:
    """One bookable time at a venue for one seating type (same every open day)."""

    index: int
    service: Service
    seating: Seating
    seating_index: int
    minute: int
    time: str
    template_id: int
    shift_id: int


@dataclass(slots=True)
class Snapshot:
    """Open tables per slot of one venue-day, valid for instants in [valid_from, valid_until).

    ``memo`` lets the HTTP layer cache what it builds from the snapshot (JSON bytes per party
    size); it lives exactly as long as the availability it was built from.
    """

    venue: Venue
    day: date
    slots: tuple[SlotDef, ...]
    starts: tuple[float, ...]
    avail: tuple[int, ...]
    #: Scheduled release instant, for ``market.date.on`` (the jitter is not announced).
    market_on: float
    valid_from: float
    valid_until: float
    version: int
    memo: dict[Any, Any] = field(default_factory=dict)

    def open_for(self, party_size: int) -> list[int]:
        """Indexes of slots with a free table that seats ``party_size``."""
        return [
            i
            for i, slot in enumerate(self.slots)
            if self.avail[i] > 0 and slot.seating.min_size <= party_size <= slot.seating.max_size
        ]


@dataclass(slots=True)
class Reservation:
    reservation_id: int
    resy_token: str
    uid: int
    venue_id: int
    day: date
    slot: SlotDef
    party_size: int
    start: float
    booked_at: float
    payment_method_id: int | None
    cancelled_at: float | None = None


class BookingError(Exception):
    """Why a booking failed: ``kind`` is "conflict" (412) or "gone" (404)."""

    def __init__(self, kind: str, existing: Reservation | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.existing = existing


class _Day:
    """Mutable per venue-day state plus its static table-taking schedule."""

    __slots__ = ("booked", "day", "delays", "delta", "snapshot", "starts", "venue", "version")

    def __init__(
        self, venue: Venue, day: date, starts: tuple[float, ...], delays: list[tuple[float, ...]]
    ):
        self.venue = venue
        self.day = day
        self.starts = starts
        self.delays = delays
        self.booked = [0] * len(starts)
        self.delta = [0] * len(starts)
        self.version = 0
        self.snapshot: Snapshot | None = None

    def fresh(self, now: float) -> Snapshot | None:
        """The day's snapshot while it still holds at ``now``: same version, inside its interval."""
        cached = self.snapshot
        if (
            cached is not None
            and cached.version == self.version
            and cached.valid_from <= now < cached.valid_until
        ):
            return cached
        return None


class World:
    """The seeded catalogue plus all mutable sandbox state; safe to use from several threads."""

    def __init__(
        self, seed: int = 42, venue_count: int = 300, *, cancellations: bool = True
    ) -> None:
        self.seed = seed
        self._cancellations_on = cancellations
        self.venues = build_venues(seed, venue_count)
        self.by_id = {v.id: v for v in self.venues}
        self._zones: dict[str, ZoneInfo] = {}
        self._slot_defs = {v.id: self._build_slot_defs(v) for v in self.venues}
        self._slot_lookup = {
            vid: {(s.time[:5], s.seating.name.lower()): s.index for s in defs}
            for vid, defs in self._slot_defs.items()
        }
        self._lock = threading.RLock()
        self._days: dict[tuple[int, int], _Day] = {}
        self._evict_at = _EVICT_AT
        self._releases: dict[tuple[int, int], tuple[float, float]] = {}
        self._forced: dict[int, dict[int, float]] = {}
        self.reservations: list[Reservation] = []
        self._by_token: dict[str, Reservation] = {}
        self._next_reservation = 610_000_000 + mix(seed, 1) % 1_000_000

    # -- static catalogue -------------------------------------------------------------------

    def _build_slot_defs(self, venue: Venue) -> tuple[SlotDef, ...]:
        """Every time x seating of the venue, in time order (services do not overlap)."""
        defs: list[SlotDef] = []
        for service in venue.services:
            shift_id = 100_000 + mix(self.seed, venue.id, service.type_id) % 899_999
            for minute in range(service.start_min, service.last_min + 1, service.step_min):
                for seating_index, seating in enumerate(venue.seatings):
                    template_id = (
                        1_000_000
                        + mix(self.seed, venue.id, service.type_id, seating_index) % 8_999_999
                    )
                    defs.append(
                        SlotDef(
                            index=len(defs),
                            service=service,
                            seating=seating,
                            seating_index=seating_index,
                            minute=minute,
                            time=f"{minute // 60:02d}:{minute % 60:02d}:00",
                            template_id=template_id,
                            shift_id=shift_id,
                        )
                    )
        return tuple(defs)

    def zone(self, venue: Venue) -> ZoneInfo:
        tz = self._zones.get(venue.time_zone)
        if tz is None:
            tz = self._zones[venue.time_zone] = ZoneInfo(venue.time_zone)
        return tz

    def local_today(self, venue: Venue, now: float) -> date:
        return datetime.fromtimestamp(now, self.zone(venue)).date()

    def slot_defs(self, venue: Venue) -> tuple[SlotDef, ...]:
        return self._slot_defs[venue.id]

    def slot_index(self, venue: Venue, time: str, seating: str) -> int | None:
        """The slot at local ``HH:MM[:SS]`` for a seating name (case-insensitive)."""
        return self._slot_lookup[venue.id].get((time[:5], seating.lower()))

    def slot_start(self, venue: Venue, day: date, slot: SlotDef) -> float:
        """The POSIX instant a slot starts (its local time in the venue's zone)."""
        minute = slot.minute
        return datetime(
            day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.zone(venue)
        ).timestamp()

    def is_open_day(self, venue: Venue, day: date) -> bool:
        return day.weekday() not in venue.closed_weekdays

    # -- release rule -----------------------------------------------------------------------

    def jitter(self, venue: Venue, day: date) -> float:
        """Seconds the release of ``day`` runs late (negative: early); mostly small."""
        u = unit(mix(self.seed, venue.id, day.toordinal(), 0x7E1))
        return -JITTER_EARLY_S + (JITTER_EARLY_S + JITTER_LATE_S) * u**2

    def _natural_release(self, venue: Venue, day: date) -> tuple[float, float]:
        """(scheduled instant, actual instant with jitter) of the natural release of ``day``."""
        key = (venue.id, day.toordinal())
        cached = self._releases.get(key)
        if cached is None:
            release_day = day - timedelta(days=venue.lead_time_days)
            local = datetime(
                release_day.year,
                release_day.month,
                release_day.day,
                venue.release_min // 60,
                venue.release_min % 60,
                tzinfo=self.zone(venue),
            )
            scheduled = local.timestamp()
            cached = self._releases[key] = (scheduled, scheduled + self.jitter(venue, day))
        return cached

    def scheduled_release(self, venue: Venue, day: date) -> float:
        """The announced release instant (forced instant if a control set one)."""
        forced = self._forced.get(venue.id, {}).get(day.toordinal())
        return forced if forced is not None else self._natural_release(venue, day)[0]

    def release_instant(self, venue: Venue, day: date) -> float:
        """When inventory for ``day`` actually appears."""
        forced = self._forced.get(venue.id, {}).get(day.toordinal())
        return forced if forced is not None else self._natural_release(venue, day)[1]

    def is_released(self, venue: Venue, day: date, now: float) -> bool:
        return now >= self.release_instant(venue, day)

    def last_calendar_day(self, venue: Venue, now: float) -> date:
        """The furthest day released by ``now`` (the calendar's horizon)."""
        today = self.local_today(venue, now)
        # A midnight release jittered early lands on the evening before, hence the +1.
        horizon = today - timedelta(days=1)
        for ahead in range(venue.lead_time_days + 1, -1, -1):
            candidate = today + timedelta(days=ahead)
            if self.is_released(venue, candidate, now):
                horizon = candidate
                break
        for ordinal, instant in self._forced.get(venue.id, {}).items():
            if ordinal > horizon.toordinal() and instant <= now:
                horizon = date.fromordinal(ordinal)
        return horizon

    def force_release(self, venue: Venue, day: date, instant: float | None) -> None:
        """Release ``day`` at ``instant`` instead of by the rule (None restores the rule)."""
        with self._lock:
            forced = self._forced.setdefault(venue.id, {})
            if instant is None:
                forced.pop(day.toordinal(), None)
            else:
                forced[day.toordinal()] = instant
            self._touch(venue, day)

    # -- inventory ---------------------------------------------------------------------------

    def _table_delays(self, venue: Venue, day_hash: int, slot: SlotDef) -> tuple[float, ...]:
        """Seconds after the release at which other diners take each table of a slot.

        ``day_hash`` is ``mix(seed, venue.id, day.toordinal())``, shared by the day's slots.
        """
        slot_hash = mix_on(day_hash, slot.index)
        delays = []
        for table in range(slot.seating.tables):
            h = mix_on(slot_hash, table, 0xD1)
            u = unit(h)
            if venue.popularity == "hot":
                # Most tables go in seconds; a few linger for hours.
                mean = 6.0 if unit(mix(h, 1)) < 0.9 else 4 * 3600.0
            elif venue.popularity == "warm":
                mean = 3 * 86400.0
            else:
                mean = 25 * 86400.0
            delays.append(-mean * math.log(1.0 - u))
        return tuple(sorted(delays))

    def _day(self, venue: Venue, day: date, today: date | None = None) -> _Day:
        key = (venue.id, day.toordinal())
        state = self._days.get(key)
        if state is None:
            if today is not None and len(self._days) >= self._evict_at:
                self._evict_before(today.toordinal() - _KEEP_PAST_DAYS)
                # If most days are still current, wait for the set to double before rescanning.
                self._evict_at = max(_EVICT_AT, 2 * len(self._days))
            defs = self._slot_defs[venue.id] if self.is_open_day(venue, day) else ()
            starts = tuple(self.slot_start(venue, day, d) for d in defs)
            day_hash = mix(self.seed, venue.id, day.toordinal())
            delays = [self._table_delays(venue, day_hash, d) for d in defs]
            state = _Day(venue, day, starts, delays)
            self._days[key] = state
        return state

    @property
    def cancellations(self) -> bool:
        """Whether diners cancel (tables coming back for a while); off makes a quieter world."""
        return self._cancellations_on

    def set_cancellations(self, enabled: bool) -> None:
        with self._lock:
            self._cancellations_on = enabled
            for state in self._days.values():
                state.version += 1

    def _cancellations(
        self, venue: Venue, day: date, n_slots: int, now: float
    ) -> list[tuple[int, float, float]]:
        """(slot index, start, end) of the cancellation windows that can touch ``now``."""
        windows: list[tuple[int, float, float]] = []
        if n_slots == 0 or not self._cancellations_on:
            return windows
        rate = _CANCEL_RATE[venue.popularity]
        low, high = _CANCEL_SPAN[venue.popularity]
        first = math.floor((now - MAX_CANCEL_S) / CANCEL_EPOCH_S)
        last = math.floor(now / CANCEL_EPOCH_S)
        ordinal = day.toordinal()
        for epoch in range(first, last + 1):
            h = mix(self.seed, venue.id, ordinal, epoch, 0xCA)
            # Poisson draw of the number of cancellations in this epoch.
            u, p, n = unit(h), math.exp(-rate), 0
            cdf = p
            while u > cdf and n < 4:
                n += 1
                p *= rate / n
                cdf += p
            for j in range(n):
                hj = mix(h, j)
                start = epoch * CANCEL_EPOCH_S + unit(mix(hj, 1)) * CANCEL_EPOCH_S
                windows.append((hj % n_slots, start, start + low + (high - low) * unit(mix(hj, 2))))
        return windows

    def snapshot(self, venue: Venue, day: date, now: float) -> Snapshot:
        """Open tables of every slot of ``venue`` on ``day`` as of sandbox instant ``now``."""
        # Fast path, without the lock: the venue-day's current snapshot while it is valid. Only
        # a released, not yet past day gets one, and none outlives its day: validity ends by
        # the next cancellation epoch, and local midnight is an epoch boundary (a 900 s grid,
        # whole-quarter-hour zone offsets). A version bump or a clock moved outside
        # [valid_from, valid_until) takes the slow path.
        state = self._days.get((venue.id, day.toordinal()))
        fresh = state.fresh(now) if state is not None else None
        if fresh is not None:
            return fresh
        with self._lock:
            today = self.local_today(venue, now)
            release = self.release_instant(venue, day)
            if day < today or now < release:
                # Past or unreleased: nothing to book, nothing worth materialising or caching.
                market_on = self.scheduled_release(venue, day)
                return Snapshot(venue, day, (), (), (), market_on, now, now, -1)
            state = self._day(venue, day, today)
            fresh = state.fresh(now)
            if fresh is not None:
                return fresh
            cached = state.snapshot
            avail, valid_until = self._compute(state, release, now)
            if cached is not None and cached.version == state.version and cached.avail == avail:
                # Same tables free: keep the snapshot (and the JSON built from it) for the new
                # interval, which starts now: nothing is known about the instants in between.
                cached.valid_from, cached.valid_until = now, valid_until
                return cached
            defs = self._slot_defs[venue.id] if state.starts else ()
            state.snapshot = Snapshot(
                venue,
                day,
                defs,
                state.starts,
                avail,
                self.scheduled_release(venue, day),
                now,
                valid_until,
                state.version,
            )
            return state.snapshot

    def _compute(self, state: _Day, release: float, now: float) -> tuple[tuple[int, ...], float]:
        starts = state.starts
        elapsed = now - release
        next_change = float((math.floor(now / CANCEL_EPOCH_S) + 1) * CANCEL_EPOCH_S)
        counts = []
        for i, start in enumerate(starts):
            off = start - MARKET_OFF_S
            if now >= off:
                counts.append(0)
                continue
            next_change = min(next_change, off)
            delays = state.delays[i]
            taken = bisect.bisect_right(delays, elapsed)
            if taken < len(delays):
                next_change = min(next_change, release + delays[taken])
            counts.append(len(delays) - taken + state.delta[i] - state.booked[i])
        for i, begin, end in self._cancellations(state.venue, state.day, len(starts), now):
            if begin < release or now >= starts[i] - MARKET_OFF_S:
                continue
            if begin <= now < end:
                counts[i] += 1
                next_change = min(next_change, end)
            elif begin > now:
                next_change = min(next_change, begin)
        return tuple(max(0, c) for c in counts), next_change

    def _touch(self, venue: Venue, day: date) -> None:
        state = self._days.get((venue.id, day.toordinal()))
        if state is not None:
            state.version += 1

    def adjust(self, venue: Venue, day: date, slot_index: int, delta: int) -> None:
        """Add (or with a negative delta, remove) free tables at one slot; a control hook."""
        with self._lock:
            state = self._day(venue, day)
            state.delta[slot_index] += delta
            state.version += 1

    def set_tables(self, venue: Venue, day: date, slot_index: int, tables: int) -> None:
        """Give one slot `tables` free tables at its release (a contested drop: 1)."""
        with self._lock:
            state = self._day(venue, day)
            state.delta[slot_index] = tables - len(state.delays[slot_index])
            state.version += 1

    def _evict_before(self, ordinal: int) -> None:
        """Forget venue-days before ``ordinal``: nothing in them can be booked any more."""
        for key in [k for k in self._days if k[1] < ordinal]:
            del self._days[key]

    # -- bookings -------------------------------------------------------------------------

    def book(
        self,
        *,
        uid: int,
        venue: Venue,
        day: date,
        slot_index: int,
        party_size: int,
        payment_method_id: int | None,
        now: float,
    ) -> Reservation:
        """Take one table for the user, or raise `BookingError` ("conflict" or "gone")."""
        with self._lock:
            for held in self.reservations:
                if (
                    held.uid == uid
                    and held.venue_id == venue.id
                    and held.day == day
                    and held.cancelled_at is None
                ):
                    raise BookingError("conflict", held)
            snap = self.snapshot(venue, day, now)
            if slot_index >= len(snap.slots) or slot_index not in snap.open_for(party_size):
                raise BookingError("gone")
            state = self._day(venue, day)
            state.booked[slot_index] += 1
            state.version += 1
            self._next_reservation += 1
            reservation_id = self._next_reservation
            token = f"rr://resy/{reservation_id}/{mix(self.seed, reservation_id, 0x70):016x}"
            reservation = Reservation(
                reservation_id=reservation_id,
                resy_token=token,
                uid=uid,
                venue_id=venue.id,
                day=day,
                slot=snap.slots[slot_index],
                party_size=party_size,
                start=snap.starts[slot_index],
                booked_at=now,
                payment_method_id=payment_method_id,
            )
            self.reservations.append(reservation)
            self._by_token[token] = reservation
            return reservation

    def cancel(self, uid: int, resy_token: str, now: float) -> Reservation | None:
        """Cancel the user's reservation and free its table; None if there is none to cancel."""
        with self._lock:
            reservation = self._by_token.get(resy_token)
            if (
                reservation is None
                or reservation.uid != uid
                or reservation.cancelled_at is not None
            ):
                return None
            reservation.cancelled_at = now
            state = self._days.get((reservation.venue_id, reservation.day.toordinal()))
            if state is not None:
                state.booked[reservation.slot.index] -= 1
                state.version += 1
            return reservation

    def user_reservations(self, uid: int) -> list[Reservation]:
        with self._lock:
            return [r for r in self.reservations if r.uid == uid]

    # -- calendar ----------------------------------------------------------------------------

    def calendar_status(self, venue: Venue, day: date, num_seats: int, now: float) -> str:
        """`available`, `sold-out`, `closed` or `not available`, as `/4/venue/calendar` says."""
        if not self.is_open_day(venue, day):
            return "closed"
        if not venue.min_party_size <= num_seats <= venue.max_party_size:
            return "not available"
        if day < self.local_today(venue, now) or not self.is_released(venue, day, now):
            return "not available"
        return "available" if self.snapshot(venue, day, now).open_for(num_seats) else "sold-out"
