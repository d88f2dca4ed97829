"""An expired Resy token (about 45 days after login) stops only what needs a login.

Finding 1 of the real-Resy audit: Resy answered a stale token on a /4/find with a redirect to
its login page, so a client that sends the token everywhere loses discovery, watches and
venue lookups the day it expires. The sandbox now answers a stale token that way on every
route (S1), and resywatch sends the token only on user calls.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sandbox_tools import control, live_config

from resywatch.sandbox import DEMO_AUTH_TOKEN, SandboxConfig, SandboxHandle


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return live_config()


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env | {"RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN, "RESYWATCH_DISCOVERY_DAYS": "2"}


def run_json(cli: Any, *args: str, env: dict[str, str], expect: int = 0) -> Any:
    return json.loads(cli(*args, "--json", env=env, expect=expect).stdout)


@pytest.mark.parametrize("redirect_on_failure", [False, True])
def test_discovery_and_venue_lookups_survive_an_expired_token(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle, redirect_on_failure: bool
) -> None:
    control(sandbox, "/auth", {"expire_tokens": True, "redirect_on_failure": redirect_on_failure})
    venue = next(v for v in sandbox.state.world.venues if v.in_manhattan_bbox)
    shown = run_json(cli, "venue", "show", str(venue.id), env=env)
    assert shown["venue_id"] == venue.id and shown["calendar"]
    scan = run_json(cli, "discover", "scan", env=env)
    assert scan["buckets_failed"] == 0 and scan["buckets_scanned"] > 0, scan["errors"]
    assert scan["slots_seen"] > 0
    # A user call says what to do, whichever way Resy refuses the token.
    error = run_json(cli, "auth", "status", env=env, expect=1)["error"]
    assert error["code"] == "auth_expired"
    assert "run `resywatch auth login`" in error["message"]


def test_health_warns_a_week_before_the_token_expires(
    cli: Any, env: dict[str, str], sandbox: SandboxHandle
) -> None:
    control(sandbox, "/auth", {"token_lifetime_s": 6 * 86400})
    env["RESYWATCH_RESY_AUTH_TOKEN"] = sandbox.state.mint_token()
    cli("run", "due", env=env)
    report = run_json(cli, "health", env=env, expect=1)
    auth = next(c for c in report["checks"] if c["name"] == "resy_auth")
    assert auth["status"] == "WARN" and "expires in 6.0 days" in auth["message"]
    status = run_json(cli, "auth", "status", env=env)
    assert status["expiring_soon"] is True and status["expires_at"]

    control(sandbox, "/auth", {"token_lifetime_s": 8 * 86400})
    env["RESYWATCH_RESY_AUTH_TOKEN"] = sandbox.state.mint_token()
    report = run_json(cli, "health", env=env, expect=0)
    auth = next(c for c in report["checks"] if c["name"] == "resy_auth")
    assert auth["status"] == "OK"
