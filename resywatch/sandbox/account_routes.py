"""The sandbox's account routes: the user, their reservations, logging in, geoip."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from resywatch.sandbox.gateway import Call
from resywatch.sandbox.http import ApiError, form_body, int_param, json_response
from resywatch.sandbox.state import REFRESH_TOKEN_LIFETIME_S, SandboxState


async def user(request: Request, call: Call) -> Response:
    active = [r for r in call.state.world.user_reservations(call.uid) if r.cancelled_at is None]
    return json_response(call.payloads.user(call.state.user_by_uid(call.uid), len(active)))


async def reservations(request: Request, call: Call) -> Response:
    params = dict(request.query_params)
    kind = params.get("type", "upcoming")
    limit = int_param(params, "limit", 20)
    base = call.state.variants.reservations_offset_base
    offset = int_param(params, "offset", base)
    call.note(type=kind, limit=limit, offset=offset)
    if kind not in ("upcoming", "past"):
        raise ApiError(400, "Invalid parameter: type")
    active = [r for r in call.state.world.user_reservations(call.uid) if r.cancelled_at is None]
    if kind == "upcoming":
        chosen = sorted((r for r in active if r.start >= call.now), key=lambda r: r.start)
    else:
        chosen = sorted(
            (r for r in active if r.start < call.now), key=lambda r: r.start, reverse=True
        )
    # Cierge's live test pages from offset=0; ez-resy asks for its first upcoming one with
    # offset=1: where offsets start is a variant (S12), 0 by default.
    first = max(offset - base, 0)
    page = chosen[first : first + max(limit, 0)]
    venues = {str(r.venue_id): {"name": call.state.world.by_id[r.venue_id].name} for r in page}
    return json_response(
        {"reservations": [call.payloads.reservation(r, call.now) for r in page], "venues": venues}
    )


async def _login(request: Request, call: Call) -> int:
    form = await form_body(request)
    call.note(email=form.get("email"))
    uid = call.state.check_password(form.get("email", ""), form.get("password", ""))
    if uid is None:
        raise ApiError(419, "Unauthorized")
    return uid


def _refresh_cookie(state: SandboxState, uid: int) -> dict[str, str]:
    """Resy's refresh cookie (RESY_API.md §3: set by the login, ~90 days)."""
    value = state.mint_refresh(uid)
    cookie = (
        f"production_refresh_token={value}; Path=/; Max-Age={REFRESH_TOKEN_LIFETIME_S}; "
        "HttpOnly; SameSite=Lax"
    )
    return {"set-cookie": cookie}


async def auth_password_v3(request: Request, call: Call) -> Response:
    uid = await _login(request, call)
    user = call.state.user_by_uid(uid)
    active = [r for r in call.state.world.user_reservations(uid) if r.cancelled_at is None]
    token = call.state.mint_token(uid)
    return json_response({**call.payloads.user(user, len(active)), "token": token})


async def auth_password_v4(request: Request, call: Call) -> Response:
    uid = await _login(request, call)
    return json_response(
        {"token": call.state.mint_token(uid)}, headers=_refresh_cookie(call.state, uid)
    )


async def auth_refresh(request: Request, call: Call) -> Response:
    uid = call.state.refresh_user(request.cookies.get("production_refresh_token"))
    if uid is None:
        raise ApiError(419, "Unauthorized")
    token = call.state.mint_token(uid)
    return json_response({"token": token}, headers=_refresh_cookie(call.state, uid))


async def geoip(request: Request, call: Call) -> Response:
    return json_response(
        {
            "ip": request.client.host if request.client else "127.0.0.1",
            "latitude": 40.7128,
            "longitude": -74.006,
            "country_iso_code": "US",
            "in_eu": False,
            "source": "sandbox",
            "success": True,
        }
    )


async def login_page(request: Request, call: Call) -> Response:
    """Where the 302 mode sends clients with an expired token (a stand-in for resy.com)."""
    return Response("<html><body><h1>Log in to Resy</h1></body></html>", media_type="text/html")
