"""Snipes without and with speculation (findings 5 and 10, sandbox S7): how Resy answers a
book request for a slot not released yet is unseen, so speculative books are opt-in, and
when on, their refusals never end the snipe nor count toward the shared breaker. The sandbox
clock runs 20 times faster than real time; the snipe runs on it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

import pytest
from booking_support import SandboxTime, unreleased

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models.booking import Outcome
from resywatch.resy import errors
from resywatch.resy.client import client_from_settings
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN, SandboxConfig, SandboxHandle
from resywatch.services.booking import runs, schedule
from resywatch.services.booking.plan import BookingRequest
from resywatch.services.politeness import PolitenessPolicy, SharedPoliteness

START = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(seed=42, speed=20.0, start=START, cancellations=False)


def settings_for(sandbox: SandboxHandle, database_url: str, **extra: str) -> Settings:
    return load_settings(
        environ={
            "RESYWATCH_DATABASE_URL": database_url,
            "RESYWATCH_RESY_BASE_URL": sandbox.base_url,
            "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
            "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
            "RESYWATCH_RESY_MAX_RPS": "10000",
            **extra,
        }
    )


class RecordingGate(SharedPoliteness):
    """The shared politeness, remembering every failure reported to it."""

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, PolitenessPolicy.from_settings(settings))
        self.reported: list[errors.ResyError] = []

    async def after_call(self, host: str, error: errors.ResyError | None) -> None:
        if error is not None:
            self.reported.append(error)
        await super().after_call(host, error)


def run_snipe(
    sandbox: SandboxHandle,
    settings: Settings,
    db: Database,
    gate: RecordingGate,
    *,
    late_s: float = 2.0,
) -> tuple[runs.SnipeRun, float]:
    venue, day = unreleased(sandbox)
    instant = sandbox.state.clock.now() + 20  # within the prepare window: due at once
    dropped = instant + late_s  # a little late: the snipe polls for a while first
    sandbox.state.force_release(venue, day, dropped)
    spec = schedule.SnipeSpec(
        BookingRequest(venue=str(venue.id), day=day, party_size=2, window=(time(18), time(21))),
        schedule.Release(at=datetime.fromtimestamp(instant, UTC)),
    )
    clock = SandboxTime(sandbox.state)

    async def go() -> runs.SnipeRun:
        async with client_from_settings(settings, gate=gate) as resy:
            rt = Runtime(settings, db, resy, clock)
            await schedule.schedule_snipe(rt, spec)
            (ran,) = await runs.run_due_snipes(rt)
            return ran

    return asyncio.run(go()), dropped


def test_speculation_is_off_by_default_no_book_before_the_drop(
    sandbox: SandboxHandle, database_url: str, db: Database
) -> None:
    settings = settings_for(sandbox, database_url)
    assert settings.book_speculate is False
    ran, dropped = run_snipe(sandbox, settings, db, RecordingGate(db, settings))
    assert ran.result is not None and ran.result.outcome is Outcome.BOOKED, ran.result
    books = sandbox.state.traffic.requests("/3/book")
    assert books and all(b["at"] >= dropped for b in books)  # no blind book requests
    # Booked soon after the drop (20 sandbox seconds are 1 s of real time; how soon is
    # bench/snipe.py's to measure, not a loaded test machine's).
    assert 0 <= books[0]["at"] - dropped < 20.0


@pytest.mark.parametrize("refusal", [404, 412, 400, 500])
def test_speculative_refusals_never_end_the_snipe_nor_count_for_the_breaker(
    sandbox: SandboxHandle, database_url: str, db: Database, refusal: int
) -> None:
    sandbox.state.configure_variants(unreleased_book_status=refusal)
    settings = settings_for(sandbox, database_url, RESYWATCH_BOOK_SPECULATE="true")
    gate = RecordingGate(db, settings)
    # Late enough that more refusals come before the drop than used to end a snipe (3).
    ran, dropped = run_snipe(sandbox, settings, db, gate, late_s=8.0)
    assert ran.result is not None and ran.result.outcome is Outcome.BOOKED, ran.result
    books = sandbox.state.traffic.requests("/3/book")
    early = [b for b in books if b["at"] < dropped]
    # A book that arrived just before the drop may be handled just after it (the sandbox's
    # clock runs 20x faster than the request's trip): the one that booked is no refusal.
    refused = [b for b in early if b["status"] != 201]
    assert len(refused) > 3 and {b["status"] for b in refused} == {refusal}  # speculation ran
    assert len(early) - len(refused) <= 1 and [b["status"] for b in books].count(201) == 1
    assert not [e for e in gate.reported if e.status == refusal]  # none reported to it
