"""Sandbox settings and the demo credentials it accepts out of the box."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from resywatch.sandbox.tokens import DEMO_AUTH_TOKEN, DEMO_SIGNING_KEY

#: The API key the sandbox accepts unless configured otherwise. Real Resy uses one public key
#: scraped from its web bundle; the sandbox makes the client send *some* key the same way.
DEMO_API_KEY = "resywatch-sandbox-key"

#: Login accepted by `POST /3/auth/password` and `POST /4/auth/password`.
DEMO_EMAIL = "demo@resywatch.test"
DEMO_PASSWORD = "sandbox"

#: Lifetime of tokens minted by the login routes (Cierge: Resy auth tokens last 45 days).
DEFAULT_TOKEN_LIFETIME_S = 45 * 24 * 3600


@dataclass(frozen=True)
class SandboxConfig:
    """How to build one sandbox: its world (seed, venue_count), its clock and its credentials.

    ``start`` is the sandbox time at start-up (None: the real current time) and ``speed`` the
    factor by which sandbox time runs (0 freezes it, 60 makes a real second a sandbox minute).
    """

    seed: int = 42
    speed: float = 1.0
    start: datetime | None = None
    api_key: str = DEMO_API_KEY
    auth_token: str = DEMO_AUTH_TOKEN
    control_enabled: bool = True
    venue_count: int = 300
    #: Diners cancel now and then, reopening single slots for a few minutes. Off: a world that
    #: changes only by releases, other diners booking, the sandbox user and the controls.
    cancellations: bool = True
    email: str = DEMO_EMAIL
    password: str = DEMO_PASSWORD
    token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S
    #: `POST /3/auth/refresh` refuses every refresh cookie (419).
    refuse_refresh: bool = False
    signing_key: bytes = field(default=DEMO_SIGNING_KEY, repr=False)
    #: Most recent requests kept for `/__sandbox/requests` (older entries are dropped).
    request_log_size: int = 50_000
