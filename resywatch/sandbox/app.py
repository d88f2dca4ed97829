"""The sandbox as an ASGI app: Resy's routes, plus `/__sandbox/` control routes for tests.

Each Resy route is a handler in a module of its area (booking, search, venues, account),
wrapped by `gateway.ResyRoute` (counting, faults, authentication; see there).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from resywatch.sandbox import account_routes as account
from resywatch.sandbox import booking_routes as booking
from resywatch.sandbox import search_routes, venue_routes
from resywatch.sandbox.config import SandboxConfig
from resywatch.sandbox.control import control_routes
from resywatch.sandbox.gateway import Auth, Handler, ResyRoute
from resywatch.sandbox.http import json_response
from resywatch.sandbox.payloads import Payloads, error_body
from resywatch.sandbox.search_index import SearchIndex
from resywatch.sandbox.state import SandboxState

_RESY_ROUTES: tuple[tuple[str, Handler, tuple[str, ...], Auth], ...] = (
    ("/4/find", booking.find, ("GET", "POST"), "key"),
    ("/3/details", booking.details, ("GET", "POST"), "user"),
    ("/3/book", booking.book, ("POST",), "user"),
    ("/3/cancel", booking.cancel, ("POST",), "user"),
    ("/2/config", venue_routes.venue_config, ("GET",), "key"),
    ("/3/venue", venue_routes.venue_detail, ("GET",), "key"),
    ("/4/venue/calendar", venue_routes.calendar, ("GET",), "key"),
    ("/3/venue/calendar", venue_routes.calendar, ("GET",), "key"),
    ("/3/venuesearch/search", search_routes.search, ("POST",), "key"),
    ("/2/user", account.user, ("GET",), "user"),
    ("/3/user/reservations", account.reservations, ("GET",), "user"),
    ("/3/auth/password", account.auth_password_v3, ("POST",), "key"),
    ("/4/auth/password", account.auth_password_v4, ("POST",), "key"),
    ("/3/auth/refresh", account.auth_refresh, ("POST",), "key"),
    ("/3/geoip", account.geoip, ("GET",), "key"),
    ("/login", account.login_page, ("GET",), "none"),
)


async def _not_found(request: Request, exc: Exception) -> Response:
    return json_response(error_body(404, "Not Found"), 404)


async def _wrong_method(request: Request, exc: Exception) -> Response:
    # Resy answers a wrong HTTP method with a 500, not a 405 (RESY_API.md §6).
    return json_response(error_body(500, "Internal Server Error"), 500)


def create_app(
    config: SandboxConfig | None = None, *, state: SandboxState | None = None
) -> Starlette:
    """The sandbox ASGI app; its `SandboxState` is at ``app.state.sandbox``."""
    state = state or SandboxState(config or SandboxConfig())
    payloads, index = Payloads(state.world), SearchIndex(state.world)
    routes: list[BaseRoute] = [
        # A bound method, so that Starlette wraps it as a request -> response endpoint.
        Route(
            path,
            ResyRoute(path, handler, auth, state, payloads, index).__call__,
            methods=list(methods),
        )
        for path, handler, methods, auth in _RESY_ROUTES
    ]
    if state.config.control_enabled:
        routes += control_routes(state)
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _wrong_method})
    app.state.sandbox = state
    return app
