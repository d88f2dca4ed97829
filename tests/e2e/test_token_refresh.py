"""Staying logged in, on the sandbox's time: the `tokens` job refreshes a token before it
lapses, so a snipe after the first token's expiry still books; when the sandbox refuses the
refresh cookie, the user is told a week before the lapse and when it lapses, once each, and
`health` says which account."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from booking_support import SandboxTime, unreleased
from sqlmodel import select

from resywatch.accounts import TokenStore, token_expiry
from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.models import Notification
from resywatch.resy.client import client_from_settings
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY, SandboxConfig, SandboxHandle
from resywatch.sandbox.config import DEMO_EMAIL, DEMO_PASSWORD
from resywatch.scheduler.jobs import JOBS, JobContext
from resywatch.scheduler.supervisor import Supervisor
from resywatch.services import auth, health
from resywatch.services.booking import schedule
from resywatch.services.booking.plan import BookingRequest

SPEED = 120.0  # a real second is two sandbox minutes
START = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # no natural release for hours
DAY = 86400.0


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(seed=42, speed=SPEED, start=START, cancellations=False)


def settings_for(sandbox: SandboxHandle, database_url: str, **extra: str) -> Settings:
    return load_settings(
        environ={
            "RESYWATCH_DATABASE_URL": database_url,
            "RESYWATCH_RESY_BASE_URL": sandbox.base_url,
            "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
            "RESYWATCH_RESY_MAX_RPS": "10000",
            **extra,
        }
    )


async def log_in(settings: Settings, store: TokenStore) -> str:
    async with client_from_settings(settings) as resy:
        await auth.login(
            resy=resy, email=DEMO_EMAIL, password=DEMO_PASSWORD, store=store, account="default"
        )
    token = store.all()["default"].auth_token
    assert token is not None
    return token


def test_a_token_refreshed_before_it_lapses_misses_no_snipe(
    sandbox: SandboxHandle, database_url: str, db: Database, tmp_path: Path
) -> None:
    state = state_of(sandbox)
    state.configure_auth(token_lifetime_s=600)  # ten sandbox minutes
    settings = settings_for(
        sandbox,
        database_url,
        RESYWATCH_AUTH_REFRESH_MARGIN_DAYS=str(240 / DAY),  # the token's last 4 minutes
        RESYWATCH_JOBS_TOKENS_INTERVAL_S="1",
        RESYWATCH_JOBS_SNIPES_INTERVAL_S="1",
        RESYWATCH_BOOK_PREPARE_S="300",
    )
    store = TokenStore(tmp_path / "config.toml", environ={})
    clock = SandboxTime(state)
    venue, day = unreleased(sandbox)
    instant = state.clock.now() + 900  # 15 minutes: after the first token lapses
    state.force_release(venue, day, instant)

    async def go() -> tuple[str, Any]:
        first = await log_in(settings, store)
        async with client_from_settings(settings) as resy:
            spec = schedule.SnipeSpec(
                BookingRequest(
                    venue=str(venue.id), day=day, party_size=2, window=(time(18), time(21))
                ),
                schedule.Release(at=datetime.fromtimestamp(instant, UTC)),
            )
            added = await schedule.schedule_snipe(Runtime(settings, db, resy, clock), spec)
            ctx = JobContext(db, resy, settings, clock, tokens=store)
            supervisor = Supervisor(
                ctx, [JOBS["tokens"], JOBS["snipes"]], "test:1", lambda result: None
            )
            running = asyncio.create_task(supervisor.run())
            for _ in range(400):  # 40 s at most
                await asyncio.sleep(0.1)
                if schedule.view_of(db, added.id).status == "done":
                    break
            supervisor.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            return first, schedule.view_of(db, added.id)

    first, snipe = asyncio.run(go())
    assert (snipe.status, snipe.outcome) == ("done", "booked"), snipe.message
    expiry = token_expiry(first)
    assert expiry is not None and expiry.timestamp() < instant  # the login's token had lapsed
    now = store.all()["default"]
    assert now.auth_token != first and now.refresh_token
    # No user call was ever refused: every one carried a live token.
    refused = [r for r in state.traffic.requests() if r["status"] in (302, 419)]
    assert refused == []


def test_a_refused_refresh_is_told_a_week_before_and_at_the_lapse_once_each(
    sandbox: SandboxHandle, database_url: str, db: Database, tmp_path: Path
) -> None:
    state = state_of(sandbox)
    state.control_time(speed=0)  # the test moves the time
    state.configure_auth(token_lifetime_s=10 * DAY, refuse_refresh=True)
    settings = settings_for(sandbox, database_url)
    store = TokenStore(tmp_path / "config.toml", environ={})
    clock = SandboxTime(state)

    async def tokens_pass() -> tuple[dict[str, int], health.Check]:
        async with client_from_settings(settings) as resy:
            counts = await JOBS["tokens"].run(JobContext(db, resy, settings, clock, tokens=store))
            rt = Runtime(settings, db, resy, clock, tokens=store)
            report = await health.health(rt, jobs=[])
        (check,) = [c for c in report.checks if c.name == "accounts"]
        return counts, check

    token = asyncio.run(log_in(settings, store))
    counts, check = asyncio.run(tokens_pass())
    assert counts["refreshed"] == counts["notified"] == 0 and check.status == health.Status.OK
    state.control_time(advance=4 * DAY)  # six days left, and Resy refuses the cookie
    for _ in range(2):
        counts, check = asyncio.run(tokens_pass())
    assert counts["not_refreshed"] == 1 and check.status == health.Status.WARN
    assert "default" in check.message and "refresh" in check.message
    state.control_time(advance=7 * DAY)  # lapsed
    for _ in range(2):
        counts, check = asyncio.run(tokens_pass())
    assert check.status == health.Status.CRIT and "default" in check.message

    with db.read() as session:
        notes = session.exec(select(Notification).order_by(Notification.id)).all()
    assert [(n.kind, n.payload["event"]) for n in notes] == [
        ("account", "expiring"),
        ("account", "expired"),
    ]
    assert "resywatch auth login" in notes[0].body
    refresh_cookie = store.all()["default"].refresh_token
    assert refresh_cookie is not None
    for note in notes:
        text = f"{note.title} {note.body} {note.payload}"
        assert token not in text and refresh_cookie not in text
    assert store.all()["default"].auth_token == token  # a refused refresh keeps what it had


def state_of(sandbox: SandboxHandle) -> Any:
    return sandbox.state
