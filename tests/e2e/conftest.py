"""End-to-end fixtures: a real sandbox over loopback HTTP, one per test.

The default sandbox starts frozen (speed 0) at `SANDBOX_START`, so tests that care about time
move the clock themselves and see the same world every run. Override `sandbox_config` in a
test module to change that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from resywatch.sandbox import (
    DEMO_API_KEY,
    DEMO_AUTH_TOKEN,
    SandboxConfig,
    SandboxHandle,
    run_in_thread,
)

#: A Monday, 16:00 in New York: no venue releases a day within hours of it (releases happen
#: at 00:00-14:00 local), so only cancellations and the test itself change the world.
SANDBOX_START = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)


def _resy_headers(
    api_key: str = DEMO_API_KEY, auth_token: str | None = DEMO_AUTH_TOKEN
) -> dict[str, str]:
    """The header set Resy's web app sends (API key, both token headers, browser UA, origin)."""
    headers = {
        "Authorization": f'ResyAPI api_key="{api_key}"',
        "User-Agent": BROWSER_UA,
        "Origin": "https://resy.com",
        "Referer": "https://resy.com/",
        "Accept": "application/json, text/plain, */*",
    }
    if auth_token is not None:
        headers["X-Resy-Auth-Token"] = auth_token
        headers["X-Resy-Universal-Auth"] = auth_token
    return headers


@pytest.fixture
def resy_headers() -> Callable[..., dict[str, str]]:
    """Builds Resy's header set: ``resy_headers(api_key=..., auth_token=None)``."""
    return _resy_headers


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(seed=42, speed=0.0, start=SANDBOX_START, control_enabled=True)


@pytest.fixture(scope="session")
def sandbox_stoppers() -> Iterator[list[threading.Thread]]:
    """Threads stopping the sandboxes of finished tests; all joined at the end."""
    stoppers: list[threading.Thread] = []
    yield stoppers
    for stopper in stoppers:
        stopper.join(timeout=30)
        assert not stopper.is_alive(), "a sandbox did not stop within 30 s"


@pytest.fixture
def sandbox(
    sandbox_config: SandboxConfig, sandbox_stoppers: list[threading.Thread]
) -> Iterator[SandboxHandle]:
    """A running sandbox on a free 127.0.0.1 port, stopped after the test.

    Stopping waits for uvicorn's next tick (about 0.1 s): it happens on a thread of its
    own while the next test runs."""
    running = run_in_thread(sandbox_config)
    handle = running.__enter__()
    try:
        yield handle
    finally:
        stopper = threading.Thread(
            target=running.__exit__, args=(None, None, None), name="sandbox-stop", daemon=True
        )
        stopper.start()
        sandbox_stoppers.append(stopper)


@pytest.fixture
def resy_http(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    """An httpx client for the sandbox sending the demo credentials."""
    with httpx.Client(base_url=sandbox.base_url, headers=_resy_headers(), timeout=10) as client:
        yield client


@pytest.fixture
def cli_env(sandbox: SandboxHandle, database_url: str) -> dict[str, str]:
    """Settings for commands run against the sandbox: a fresh database, the sandbox's URL,
    the demo API key and no rate cap. Modules add what they need (a token, fewer days)."""
    return {
        "RESYWATCH_DATABASE_URL": database_url,
        "RESYWATCH_RESY_BASE_URL": sandbox.base_url,
        "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
        "RESYWATCH_RESY_MAX_RPS": "1000",
    }


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    """`cli_env` logged in as the sandbox's demo user (modules needing less override it)."""
    return cli_env | {"RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN}
