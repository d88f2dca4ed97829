"""A contract-faithful fake Resy server for tests, benchmarks and the demo.

It writes Resy's JSON from its own seeded world (it never imports `resywatch.resy`), runs on a
controllable clock, releases days on a schedule with jitter, simulates other diners and
cancellations, and injects faults on demand through `/__sandbox/` control routes.
"""

from __future__ import annotations

from resywatch.sandbox.app import create_app
from resywatch.sandbox.config import (
    DEFAULT_TOKEN_LIFETIME_S,
    DEMO_API_KEY,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    SandboxConfig,
)
from resywatch.sandbox.control import CONTROL_PREFIX
from resywatch.sandbox.faults import FaultRule
from resywatch.sandbox.search_routes import TIME_FILTER_WINDOW_MIN
from resywatch.sandbox.server import SandboxHandle, run_in_thread, serve
from resywatch.sandbox.state import DEMO_PAYMENT_METHOD_ID, SandboxState
from resywatch.sandbox.tokens import DEMO_AUTH_TOKEN, DEMO_USER_ID

__all__ = [
    "CONTROL_PREFIX",
    "DEFAULT_TOKEN_LIFETIME_S",
    "DEMO_API_KEY",
    "DEMO_AUTH_TOKEN",
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "DEMO_PAYMENT_METHOD_ID",
    "DEMO_USER_ID",
    "TIME_FILTER_WINDOW_MIN",
    "FaultRule",
    "SandboxConfig",
    "SandboxHandle",
    "SandboxState",
    "create_app",
    "run_in_thread",
    "serve",
]
