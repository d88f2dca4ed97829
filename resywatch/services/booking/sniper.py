"""Snipes: book at a release instant T, faster than a find -> details -> book loop.

How one runs:

- T - prepare_s: wake up. Check the credentials and card (`/2/user`) and the upcoming
  reservations (already booked there that day: stop), and look at the day itself (already
  out: book now). Predict the target day's config tokens from slots seen on days already
  released (`rgs://resy/<venue>/<template>/<service>/<day>/<day>/<time>/<party>/<type>` is
  deterministic), then fetch the book token and quote of the best predicted slot: a quote
  above the ceilings stops the snipe now rather than at T, and the token (good ~5 minutes)
  is refreshed while waiting.
- Until EARLY_LOOK_S (or lead_s, if longer) before T: sleep. Idle connections are kept a
  minute, so the one made while preparing is still open (and warm) at T; a cheap request
  keeps it so over longer waits.
- Then, until the drop is seen, finds on a grid densest where the drop is expected: one
  early look (a drop that came well ahead), then FIND_FANOUT every interval from lead_s
  before T (how early the user expects it may come) until DENSE_TICKS intervals past T (or
  lead_s, if longer), then one every interval.
  Snipes of one process that share an instant stagger their grids (`phase`), and each find
  is a request of its own (reads, safe to overlap). Once the drop is seen, the best open
  slot is booked with the token made ready before T when the prediction was right (a find ->
  details -> book loop needs a poll and a round trip more), else its token is fetched first.
- Every request of the snipe draws on the snipe lane (`lane.py`): a budget of its own,
  reserved when the snipe prepares, with no database round trip on the way to the book
  request; the pacing it kept (effective interval, budget waits) is reported.
- Speculation (opt-in: `book.speculate`, `book snipe --speculate`): until the drop is seen
  (and for SPECULATE_S past T at most), ticks send the ready book request for the best
  predicted slot instead, every FIND_EVERY-th with a find beside it. How Resy answers a book
  for a slot not yet released is unseen in any public client, so these refusals never end
  the snipe and are never reported to the shared breaker.
- Stops when booked or refused for good, at T + late_s if the drop never came, deadline_s
  after the drop was seen, or when the request budget is spent.

The sniper shares the booking path of `book now`: `Booker.quote` and `Booker.book`, the fee
ceilings, the dry run and every message come from `booker.py` and `quote.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from resywatch.db.models import ScheduledSnipe, SnipeStatus
from resywatch.db.models.booking import Outcome
from resywatch.resy import errors as resy_errors
from resywatch.resy.models import FindResponse
from resywatch.services.booking.booker import TOKEN_MARGIN, Booker, Steps
from resywatch.services.booking.lane import Grant, SnipeLane, pacing_warning, window_for
from resywatch.services.booking.outcomes import Verdict
from resywatch.services.booking.plan import predict_token, rank, today
from resywatch.services.booking.quote import (
    Quote,
    already_booked,
    dry_run,
    fee_refused,
    held_at,
    no_slot_message,
    verdict_for_error,
)
from resywatch.services.vocabulary import OpenSlot, slot_id

if TYPE_CHECKING:
    from resywatch.runtime import Runtime
    from resywatch.services.booking.plan import BookingPlan

T = TypeVar("T")

#: Every FIND_EVERY-th tick also looks (a find) beside the ready book request.
FIND_EVERY = 5
#: Finds per interval around T (from lead_s before to DENSE_TICKS past it): 3 keeps
#: a rival on the same interval that polls at a lucky moment from booking first (bench/snipe.py
#: --contested: 2 lost about 1 drop in 20, 3 about 1 in 100) at 1.3x its requests.
FIND_FANOUT = 3
DENSE_TICKS = 5
#: Before that, one early look this long before T: a drop may come early, rarely by much.
EARLY_LOOK_S = 3.0
#: Book requests are sent blind (before the drop is seen) up to this long past T at most;
#: later, a late drop is caught by finds (Resy needn't see minutes of unanswerable books).
SPECULATE_S = 15.0
#: A cheap request this often while waiting keeps the connection open (the client keeps idle
#: connections KEEPALIVE_S, servers often a minute).
WARM_EVERY_S = 40.0
#: Days before the target searched for slots to predict its tokens from (same weekday first).
REFERENCE_OFFSETS = (7, 1, 14, 2)
#: Book requests refused as conflicts (412) or bad (400) before the snipe gives up; at drop
#: time Resy answers some 412s that a fresh token fixes (RESY_API.md §5.3, Alkaar #168).
MAX_REFUSALS = 3
#: Open slots tried in one tick when the better ones turn out taken.
MAX_TRIES_PER_TICK = 3


class Sniper:
    """The snipe loop for one snipe (see the module docstring)."""

    def __init__(
        self, rt: Runtime, row: ScheduledSnipe, plan: BookingPlan, lane: SnipeLane, phase: float
    ) -> None:
        """`phase` (0 to 1) shifts the grid of finds by that share of its spacing: snipes that
        share an instant stagger their requests instead of sending them together."""
        self.rt, self.db, self.clock = rt, rt.db, rt.clock
        self.resy = lane.client(rt.resy)
        self.settings = rt.settings
        assert row.id is not None
        self.snipe_id: int = row.id
        self.lane, self.phase = lane, phase
        self.plan, self.steps = plan, Steps()
        self.release = (
            row.release_at if row.release_at.tzinfo else row.release_at.replace(tzinfo=UTC)
        )
        self.lead = timedelta(seconds=row.lead_s)
        self.interval = row.poll_interval_s
        self.deadline = timedelta(seconds=row.deadline_s)
        self.late = timedelta(seconds=row.late_s)
        self.budget = row.request_budget
        self.booker = Booker(self.resy, plan, self.steps, self.clock)
        self.seen_at: datetime | None = None
        self.predicted: list[OpenSlot] = []
        self.open: list[OpenSlot] = []
        self.gone: set[str] = set()
        self.ever_gone = False
        self.tokens: dict[str, tuple[Quote, datetime]] = {}
        self.trouble: Verdict | None = None  # the last transient failure
        self.refusals = 0
        self.speculate = self.settings.book_speculate
        self._finds_sent = 0  # finds overlap: an answer older than the last applied is stale
        self._finds_when_seen = 0
        self._finds_applied = -1
        self.ticks = 0
        self.last_request: datetime | None = None
        self.marks: dict[str, float] = {}
        self.fresh = False  # `open` comes from a find no tick has acted on yet
        self.grant = Grant(self._wanted_rps(), self._wanted_rps())
        self.looks: list[datetime] = []  # when each find of the watch was sent

    # -- the phases ----------------------------------------------------------------------

    async def run(self) -> Verdict:
        await self._sleep_until(self.release - timedelta(seconds=self.settings.book_prepare_s))
        if self._cancelled():
            return Verdict(Outcome.DECLINED, "cancelled before the release")
        try:
            return await self._run()
        finally:
            self.lane.settle(self.snipe_id)

    async def _run(self) -> Verdict:
        self.grant = self.lane.reserve(
            self.snipe_id,
            *window_for(self.release, self.release - self._first_look()),
            self._wanted_rps(),
        )
        verdict = await self._prepare()
        self._mark("prepared", self.clock.now())
        if verdict is not None:
            return verdict
        if self.seen_at is None:
            await self._wait_warm(self._first_look())
            if self._cancelled():
                return Verdict(Outcome.DECLINED, "cancelled before the release")
        self._mark("polling", self.clock.now())
        return await self._poll()

    async def _prepare(self) -> Verdict | None:
        plan, resy = self.plan, self.resy
        try:
            user, mine = await asyncio.gather(
                self._call("user", resy.user()), self._call("reservations", resy.reservations())
            )
        except resy_errors.ResyError as exc:
            return verdict_for_error(exc, plan)
        held = held_at(mine, plan.venue_id, plan.day)
        if held is not None:
            return already_booked(plan, held)
        if plan.payment_method_id is None and user.default_payment_method_id is not None:
            self.plan = replace(plan, payment_method_id=user.default_payment_method_id)
            self.booker = Booker(resy, self.plan, self.steps, self.clock)
        first = today(self.rt)
        days = [plan.day - timedelta(days=n) for n in REFERENCE_OFFSETS]
        days = [d for d in days if d >= first]
        # The target day and the likeliest reference first; the other days only when that one
        # predicts nothing (each request counts against Resy's patience).
        target, *references = await asyncio.gather(
            self._call("find", resy.find(plan.venue_id, plan.day, plan.want.party_size)),
            *(
                self._call("find", resy.find(plan.venue_id, d, plan.want.party_size))
                for d in days[:1]
            ),
            return_exceptions=True,
        )
        if isinstance(target, resy_errors.AuthError):
            return verdict_for_error(target, plan)
        if isinstance(target, FindResponse):
            self._look(target)
        self.predicted = self._predict([a for a in references if isinstance(a, FindResponse)])
        if not self.predicted and self.seen_at is None and days[1:]:
            references = await asyncio.gather(
                *(
                    self._call("find", resy.find(plan.venue_id, d, plan.want.party_size))
                    for d in days[1:]
                ),
                return_exceptions=True,
            )
            self.predicted = self._predict([a for a in references if isinstance(a, FindResponse)])
        if self.seen_at is not None:
            return None  # out already: straight to polling, nothing to predict
        if self.predicted and not plan.dry_run:
            # The ready book request: its quote is checked against the ceilings now.
            quote = await self._quote(self.predicted[0])
            if isinstance(quote, Verdict):
                return quote if quote.outcome is not Outcome.FAILED else None
        return None

    async def _wait_warm(self, until: datetime) -> None:
        """Sleep until `until`, keeping the connection warm and the ready token fresh."""
        while (left := (until - self.clock.now()).total_seconds()) > 0:
            idle = (
                (self.clock.now() - self.last_request).total_seconds()
                if self.last_request
                else WARM_EVERY_S
            )
            nap = min(left, WARM_EVERY_S - idle)
            if nap > 0:
                await self.clock.sleep(nap)
                continue
            target = self._target()
            speculating_until = self.release + timedelta(seconds=SPECULATE_S)
            if target is not None and self._needs_token(target, speculating_until):
                await self._quote(target)
            else:
                # Only a warm-up: the poll reports real trouble.
                with contextlib.suppress(resy_errors.ResyError):
                    await self._call("warm", self.resy.user())

    async def _poll(self) -> Verdict:
        if self.seen_at is None and not self._speculating(self.clock.now()):
            verdict = await self._watch()
            if verdict is not None:
                return verdict
        next_tick = self.clock.now()
        while True:
            now = self.clock.now()
            if now >= self._stop_at():
                return self._give_up()
            if self.steps.requests >= self.budget:
                return self._give_up(budget=True)
            if next_tick > now:
                await self.clock.sleep((next_tick - now).total_seconds())
                continue  # the stop and budget checks again, then the tick
            next_tick = next_tick + timedelta(seconds=self.interval)
            if next_tick < now:
                next_tick = now  # behind (slow answers): never burst to catch up
            verdict = await self._tick(now)
            self.ticks += 1
            if verdict is not None:
                return verdict

    async def _tick(self, now: datetime) -> Verdict | None:
        target = self._target()
        if target is not None and self._speculating(now):
            if self.ticks % FIND_EVERY != FIND_EVERY - 1:
                return await self._try(target)
            # A look alongside the ready book request (a read: safe to overlap), so the
            # book requests keep their cadence.
            booked, looked = await asyncio.gather(self._try(target), self._find())
            if booked is not None or looked is not None:
                return booked or looked
        elif not self.fresh and (looked := await self._find()) is not None:
            return looked
        self.fresh = False
        for slot in self.open[:MAX_TRIES_PER_TICK]:
            verdict = await self._try(slot)
            if verdict is not None:
                return verdict
            if self._key(slot) not in self.gone:
                break  # trouble, not a taken slot: the next tick tries again
        return None

    def _speculating(self, now: datetime) -> bool:
        """Book requests sent blind on the ready token (opt-in) instead of finds."""
        return (
            self.speculate
            and self._target() is not None
            and self.seen_at is None
            and not self.plan.dry_run
            and now < self.release + timedelta(seconds=SPECULATE_S)
        )

    async def _find(self, *, unless_seen: bool = False) -> Verdict | None:
        """Look at the day (news in `seen_at` and `open`). A Verdict only to stop (auth).
        `unless_seen`: a look of the watch that starts once another saw the drop is not sent."""
        if unless_seen and self.seen_at is not None:
            return None
        sent = self._finds_sent
        self._finds_sent += 1
        try:
            answer = await self._call(
                "find", self.resy.find(self.plan.venue_id, self.plan.day, self.plan.want.party_size)
            )
        except resy_errors.ResyError as exc:
            failed = verdict_for_error(exc, self.plan)
            return failed if failed.outcome is Outcome.AUTH_EXPIRED else self._transient(failed)
        if sent > self._finds_applied:  # an older answer arriving late is no news
            self._finds_applied = sent
            self._look(answer)
        return None

    async def _watch(self) -> Verdict | None:
        """Finds on the grid (`_next_look`) until one sees the day: None then, else the
        Verdict that ends the snipe (its time or budget is up, or the token is refused)."""
        pending: set[asyncio.Task[Verdict | None]] = set()
        at = self.clock.now()
        try:
            while self.seen_at is None:
                now = self.clock.now()
                if now >= self._stop_at():
                    return self._give_up()
                if self.steps.requests >= self.budget:
                    return self._give_up(budget=True)
                if at <= now:
                    self.looks.append(now)
                    pending.add(asyncio.create_task(self._find(unless_seen=True)))
                    at = self._next_look(at)
                    if at <= now:  # behind (a slow loop): on from now, never a burst
                        at = self._next_look(now)
                nap = asyncio.create_task(self.clock.sleep((at - now).total_seconds()))
                done, _ = await asyncio.wait({*pending, nap}, return_when=asyncio.FIRST_COMPLETED)
                nap.cancel()
                for task in done & pending:
                    pending.discard(task)
                    if (verdict := task.result()) is not None:
                        return verdict
            return None
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _next_look(self, at: datetime) -> datetime:
        """The instant of the watch's next find after `at`: the early look, FIND_FANOUT an
        interval in the dense part (`_dense`, shifted by the phase), then one an interval;
        slower when the lane granted less."""
        # `at` is a datetime: its rounding to microseconds must never make a look twice.
        x = (at - self.release).total_seconds() + 1e-5
        interval = self.interval * self.grant.stretch
        dense = interval / FIND_FANOUT
        first, last = self._dense()
        start = first + self.phase * dense
        if x < start:
            nxt = min(x + max(EARLY_LOOK_S, interval), start)
        elif x < last:
            nxt = start + (math.floor((x - start) / dense) + 1) * dense
        else:
            nxt = x + interval
        return self.release + timedelta(seconds=nxt)

    def _dense(self) -> tuple[float, float]:
        """Where the finds are densest, in seconds from T: from lead_s before to DENSE_TICKS
        intervals past it (or lead_s, if longer: the user expects the drop that far off)."""
        lead = self.lead.total_seconds()
        return -lead, max(DENSE_TICKS * self.interval * self.grant.stretch, lead)

    def _first_look(self) -> datetime:
        """When the watch begins: the early look, or the dense part if it starts earlier."""
        return self.release - max(self.lead, timedelta(seconds=EARLY_LOOK_S))

    def _wanted_rps(self) -> float:
        """The lane's rate this snipe asks for: its densest finds, and a book request."""
        return FIND_FANOUT / self.interval + 1

    # -- steps -----------------------------------------------------------------------------

    async def _try(self, slot: OpenSlot) -> Verdict | None:
        """Book `slot` with its ready token (fetched if needed). None: keep polling."""
        if slot.captcha:  # the venue asks for a captcha: stop at once, never poll on
            return verdict_for_error(resy_errors.CaptchaRequired(), self.plan, slot)
        quote = await self._quote(slot)
        if isinstance(quote, Verdict):
            return quote if quote.outcome is not Outcome.FAILED else None
        if self.plan.dry_run:
            return dry_run(quote, self.plan, slot)
        sent = self.clock.now()
        speculative = self.seen_at is None  # a predicted token, the day not seen out yet
        verdict = await self.booker.book(slot, quote, counted=not speculative)
        self.last_request = self.clock.now()
        verdict.quote = quote
        outcome = verdict.outcome
        if outcome is Outcome.BOOKED:
            self._mark("book_sent", sent)
            return verdict
        if outcome is Outcome.SLOT_GONE:
            if self.seen_at is not None:  # out, and taken: before the drop, it is not yet there
                self.gone.add(self._key(slot))
                self.open = [s for s in self.open if self._key(s) not in self.gone]
                self.ever_gone = True
            return None
        refused = outcome is Outcome.CONFLICT or (
            outcome is Outcome.FAILED and verdict.resy_status in (400, 502)  # malformed
        )
        if speculative and (refused or outcome in (Outcome.BLOCKED, Outcome.FAILED)):
            # How Resy refuses a slot not out yet is unknown: never a reason to stop.
            if refused:
                self.tokens.pop(self._key(slot), None)  # a fresh token next time
            return self._transient(verdict)
        if refused:
            self.refusals += 1
            self.tokens.pop(self._key(slot), None)  # a fresh token next time
            return verdict if self.refusals >= MAX_REFUSALS else self._transient(verdict)
        if outcome in (Outcome.BLOCKED, Outcome.RATE_LIMITED, Outcome.FAILED):
            return self._transient(verdict)
        return verdict  # booked-or-not unknown, payment or auth trouble: stop here

    async def _quote(self, slot: OpenSlot) -> Quote | Verdict:
        """The slot's ready quote, fetched when missing or about to expire. A Verdict when
        it cannot be had (FAILED: transient) or is above the ceilings (stop)."""
        key = self._key(slot)
        if not self._needs_token(slot, self.clock.now()):
            return self.tokens[key][0]
        try:
            quote = await self._warming(self.booker.quote(slot))
        except resy_errors.ResyError as exc:
            verdict = verdict_for_error(exc, self.plan, slot)
            if verdict.outcome in (Outcome.AUTH_EXPIRED, Outcome.CAPTCHA):
                return verdict
            self._transient(verdict)
            return Verdict(Outcome.FAILED, verdict.message, slot)
        expires = quote.expires_at or (self.clock.now() + timedelta(minutes=4))
        self.tokens[key] = (quote, expires if expires.tzinfo else expires.replace(tzinfo=UTC))
        return fee_refused(quote, self.plan, slot) or quote

    def _needs_token(self, slot: OpenSlot, at: datetime) -> bool:
        held = self.tokens.get(self._key(slot))
        return held is None or held[1] - TOKEN_MARGIN <= at

    async def _call(self, step: str, call: Awaitable[T]) -> T:
        """A Resy call on the snipe's budget; it also keeps the connection warm."""
        return await self._warming(self.steps.run(step, call))

    async def _warming(self, call: Awaitable[T]) -> T:
        """A call (on the budget already) that keeps the connection warm."""
        try:
            return await call
        finally:
            self.last_request = self.clock.now()

    # -- state ---------------------------------------------------------------------------

    def _look(self, answer: FindResponse) -> None:
        """A find's news: is the day out, and which matching slots are open (best first)."""
        plan = self.plan
        day_slots = [s for s in answer.slots_at(plan.venue_id) if s.starts_at.date() == plan.day]
        if day_slots and self.seen_at is None:
            self.seen_at = self.clock.now()
            self._mark("seen", self.seen_at)
            self._finds_when_seen = self._finds_sent
        entry = answer.entry_for(plan.venue_id)
        name = entry.venue.name if entry is not None else plan.venue_name
        found = [
            OpenSlot(
                venue_id=plan.venue_id,
                venue_name=name,
                day=plan.day,
                starts_at=s.starts_at,
                seating_type=s.seating_type,
                token=s.config.token,
                slot_id=slot_id(plan.venue_id, s.starts_at),
                captcha=bool(entry is not None and entry.venue.feature_recaptcha),
            )
            for s in day_slots
            if plan.want.matches(s) and s.restricted is None  # never book what we may not
        ]
        self.gone.clear()  # a find is fresh news: what it lists is open now
        self.open = rank(found, plan.want, plan.preferred)
        self.fresh = True

    def _predict(self, answers: Sequence[FindResponse]) -> list[OpenSlot]:
        """The target day's slots as predicted from other days' tokens, best first."""
        plan = self.plan
        predicted: dict[str, OpenSlot] = {}
        for answer in answers:
            for slot in answer.slots_at(plan.venue_id):
                if not plan.want.matches(slot) or slot.restricted is not None:
                    continue
                token = predict_token(slot.config.token, plan.day, plan.want.party_size)
                if token is None:
                    continue
                starts = datetime.combine(plan.day, slot.starts_at.time())
                candidate = OpenSlot(
                    venue_id=plan.venue_id,
                    venue_name=plan.venue_name,
                    day=plan.day,
                    starts_at=starts,
                    seating_type=slot.seating_type,
                    token=token,
                    slot_id=slot_id(plan.venue_id, starts),
                )
                predicted.setdefault(self._key(candidate), candidate)
        return rank(list(predicted.values()), plan.want, plan.preferred)

    def _target(self) -> OpenSlot | None:
        """The slot the ready book request is for: the best predicted one."""
        return self.predicted[0] if self.predicted else None

    @staticmethod
    def _key(slot: OpenSlot) -> str:
        return f"{slot.starts_at:%H:%M}|{(slot.seating_type or '').casefold()}"

    def _transient(self, verdict: Verdict) -> Verdict | None:
        """Remember a failure worth another try (reported if nothing better happens)."""
        self.trouble = verdict
        return None

    def _stop_at(self) -> datetime:
        if self.seen_at is not None:
            return self.seen_at + self.deadline
        return self.release + self.late

    def _give_up(self, *, budget: bool = False) -> Verdict:
        plan = self.plan
        spent = f"{self.steps.requests} requests"
        if budget:
            why = f"the request budget ({self.budget}) is spent"
        elif self.seen_at is None:
            why = f"the day was not released by {self.late.total_seconds():g} s after the instant"
        else:
            why = f"the deadline passed ({self.deadline.total_seconds():g} s after the drop)"
        trouble = self.trouble
        if trouble is not None and trouble.outcome in (Outcome.RATE_LIMITED, Outcome.BLOCKED):
            message = f"{trouble.message}; {why} ({spent})"
            return Verdict(trouble.outcome, message, resy_status=trouble.resy_status)
        if self.ever_gone:
            message = (
                f"every matching slot at {plan.venue_name} on {plan.day} was taken before it "
                f"could be booked; {why} ({spent})"
            )
            return Verdict(Outcome.SLOT_GONE, message, resy_status=404)
        return Verdict(Outcome.NO_SLOT, f"{no_slot_message(plan)}: {why} ({spent})")

    def _cancelled(self) -> bool:
        with self.db.read() as session:
            row = session.get(ScheduledSnipe, self.snipe_id)
            return row is None or row.status == SnipeStatus.CANCELLED

    async def _sleep_until(self, moment: datetime) -> None:
        """Sleep in slices, checking the clock again (a laptop that slept wakes up late)."""
        while (left := (moment - self.clock.now()).total_seconds()) > 0:
            await self.clock.sleep(min(left, 60.0))

    def _mark(self, name: str, at: datetime) -> None:
        self.marks.setdefault(name, (at - self.release).total_seconds() * 1000)

    def timeline(self) -> dict[str, float]:
        """When each phase began, in ms relative to the release instant (negative: before),
        and how the snipe was paced (`pacing`)."""
        return {f"{k}_ms": round(v, 1) for k, v in self.marks.items()} | {
            "requests": float(self.steps.requests),
            "ticks": float(self.ticks),
            # 0: the slot was booked from the very find that saw the drop.
            "finds_after_seen": float(self._finds_sent - self._finds_when_seen)
            if self.seen_at is not None
            else 0.0,
            **self.pacing(),
        }

    def pacing(self) -> dict[str, float]:
        """The interval asked for and the one kept around T (FIND_FANOUT times the mean gap
        between the watch's finds there), the lane's rate granted, the budget waits."""
        interval = self.interval * self.grant.stretch
        first, last = self._dense()
        dense = [
            (t - self.release).total_seconds()
            for t in self.looks
            if first - 1e-3 <= (t - self.release).total_seconds() <= last
        ]
        kept = (dense[-1] - dense[0]) / (len(dense) - 1) * FIND_FANOUT if dense[1:] else interval
        return {
            "interval_ms": round(self.interval * 1000, 1),
            "effective_interval_ms": round(kept * 1000, 1),
            "lane_rps": round(self.grant.rps, 2),
            "budget_wait_ms": round(self.resy.budget_wait_s * 1000, 1),
        }

    def pacing_warning(self) -> str | None:
        """Why the snipe could not keep its interval, if it could not (None: it did)."""
        return pacing_warning(self.snipe_id, self.pacing(), self.grant, self.lane.rate)
