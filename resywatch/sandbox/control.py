"""Control routes under `/__sandbox/` (a prefix real Resy does not use), for tests and demos.

Each is a thin JSON layer over `SandboxState`; bodies are validated strictly (unknown keys are a
400) so that a typo in a test fails loudly instead of silently doing nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from resywatch.sandbox.faults import ANY_ROUTE, FaultRule
from resywatch.sandbox.http import ApiError, date_param, int_param, json_response
from resywatch.sandbox.payloads import error_body
from resywatch.sandbox.state import SandboxState, parse_instant
from resywatch.sandbox.venues import Venue

CONTROL_PREFIX = "/__sandbox"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimeBody(_Body):
    set: float | str | None = None
    advance: float | None = None
    speed: float | None = None


class FaultBody(FaultRule):
    route: str = ANY_ROUTE


class ReleaseBody(_Body):
    venue_id: int
    day: date
    at: float | str | None = None


class AuthBody(_Body):
    expire_tokens: bool | None = None
    redirect_on_failure: bool | None = None
    token_lifetime_s: float | None = None
    has_card: bool | None = None
    refuse_refresh: bool | None = None


class UserBody(_Body):
    email: str
    password: str
    first_name: str = "Second"


class VariantsBody(_Body):
    book_success_as_412: bool | None = None
    find_per_table: bool | None = None
    find_other_venue: bool | None = None
    search_slotless_hits: bool | None = None
    search_null_slots: bool | None = None
    captcha_venue_ids: list[int] | None = None
    captcha_flag_shown: bool | None = None
    restricted_slots: bool | None = None
    unreleased_book_status: Literal[400, 404, 412, 500] | None = None
    find_unknown_venue_error: bool | None = None
    reservations_offset_base: Literal[0, 1] | None = None
    details_checks_ids: bool | None = None
    namesakes_elsewhere: bool | None = None
    fee_per_guest: bool | None = None
    details_get_fails: bool | None = None
    fuzzy_search: bool | None = None
    time_filter_window_min: Literal[60, 120, 180] | None = None


class WorldBody(_Body):
    cancellations: bool | None = None


class ResetBody(_Body):
    faults: bool = False


class SlotBody(_Body):
    """Add (`delta`) or set (`tables`: as many as at the release, before anyone takes one)
    the free tables of one slot."""

    venue_id: int
    day: date
    time: str
    seating: str
    delta: int = 0
    tables: int | None = Field(default=None, ge=0)


def _control(
    handler: Callable[[Request, SandboxState], Awaitable[Any]], state: SandboxState
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return json_response(await handler(request, state))
        except ValidationError as exc:
            return json_response(
                error_body(400, "Invalid control body", errors=exc.errors(include_url=False)), 400
            )
        except ApiError as exc:
            return json_response(exc.body, exc.status)

    return endpoint


_Model = TypeVar("_Model", bound=BaseModel)


async def _model_body(request: Request, model: type[_Model]) -> _Model:
    raw = await request.body()
    return model.model_validate_json(raw or b"{}")


def _parse_time(value: float | str) -> float:
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise ApiError(400, f"Invalid instant: {value!r}") from exc


async def control_time(request: Request, state: SandboxState) -> Any:
    if request.method == "GET":
        return state.describe_time()
    body = await _model_body(request, TimeBody)
    if body.speed is not None and body.speed < 0:
        raise ApiError(400, "speed must be >= 0")
    return state.control_time(
        set_to=None if body.set is None else _parse_time(body.set),
        advance=body.advance,
        speed=body.speed,
    )


async def control_counters(request: Request, state: SandboxState) -> Any:
    return state.traffic.snapshot()


async def control_requests(request: Request, state: SandboxState) -> Any:
    params = request.query_params
    limit = int_param(dict(params), "limit", 0)
    return {"requests": state.traffic.requests(params.get("route"), limit or None)}


async def control_reset(request: Request, state: SandboxState) -> Any:
    body = await _model_body(request, ResetBody)
    state.reset(faults=body.faults)
    return {"reset": True, "faults_cleared": body.faults}


async def control_faults(request: Request, state: SandboxState) -> Any:
    if request.method == "POST":
        body = await _model_body(request, FaultBody)
        state.faults.set(body.route, FaultRule.model_validate(body.model_dump(exclude={"route"})))
    elif request.method == "DELETE":
        state.faults.clear(request.query_params.get("route"))
    return {"faults": state.faults.describe()}


async def control_release(request: Request, state: SandboxState) -> Any:
    if request.method == "GET":
        params = dict(request.query_params)
        venue = _control_venue(state, int_param(params, "venue_id"))
        return state.describe_release(venue, date_param(params, "day"))
    body = await _model_body(request, ReleaseBody)
    venue = _control_venue(state, body.venue_id)
    return state.force_release(venue, body.day, None if body.at is None else _parse_time(body.at))


async def control_auth(request: Request, state: SandboxState) -> Any:
    if request.method == "GET":
        return state.describe_auth()
    body = await _model_body(request, AuthBody)
    return state.configure_auth(**body.model_dump())


async def control_users(request: Request, state: SandboxState) -> Any:
    """Another diner who can log in (a second account), or the diners there are."""
    if request.method == "POST":
        body = await _model_body(request, UserBody)
        user = state.add_user(body.email, body.password, body.first_name)
        return {"uid": user.uid, "email": user.email}
    return {"users": [{"uid": u.uid, "email": u.email} for u in state.users.values()]}


async def control_variants(request: Request, state: SandboxState) -> Any:
    if request.method == "GET":
        return state.variants.describe()
    body = await _model_body(request, VariantsBody)
    return state.configure_variants(**body.model_dump())


async def control_world(request: Request, state: SandboxState) -> Any:
    if request.method == "POST":
        body = await _model_body(request, WorldBody)
        if body.cancellations is not None:
            state.world.set_cancellations(body.cancellations)
    world = state.world
    return {"seed": world.seed, "venues": len(world.venues), "cancellations": world.cancellations}


async def control_venues(request: Request, state: SandboxState) -> Any:
    params = request.query_params
    name = (params.get("name") or "").lower()
    flag = params.get("flag")
    venues = [state.describe_venue(v) for v in state.world.venues if name in v.name.lower()]
    if flag:
        venues = [v for v in venues if v.get(flag) in (True, flag)]
    return {"venues": venues}


async def control_slots(request: Request, state: SandboxState) -> Any:
    body = await _model_body(request, SlotBody)
    venue = _control_venue(state, body.venue_id)
    if not state.world.is_open_day(venue, body.day):
        raise ApiError(400, f"Venue {venue.id} is closed on {body.day.isoformat()}")
    index = state.world.slot_index(venue, body.time, body.seating)
    if index is None:
        raise ApiError(404, f"No {body.seating!r} slot at {body.time} at venue {venue.id}")
    if body.tables is not None:
        state.world.set_tables(venue, body.day, index, body.tables)
    state.world.adjust(venue, body.day, index, body.delta)
    snap = state.world.snapshot(venue, body.day, state.clock.now())
    return {
        "venue_id": venue.id,
        "day": body.day.isoformat(),
        "open": snap.avail[index] if snap.avail else 0,
    }


def _control_venue(state: SandboxState, venue_id: int) -> Venue:
    venue = state.venue(venue_id)
    if venue is None:
        raise ApiError(404, f"Unknown venue {venue_id}")
    return venue


CONTROL_ROUTES: tuple[
    tuple[str, Callable[[Request, SandboxState], Awaitable[Any]], tuple[str, ...]], ...
] = (
    ("/time", control_time, ("GET", "POST")),
    ("/counters", control_counters, ("GET",)),
    ("/requests", control_requests, ("GET",)),
    ("/reset", control_reset, ("POST",)),
    ("/faults", control_faults, ("GET", "POST", "DELETE")),
    ("/release", control_release, ("GET", "POST")),
    ("/auth", control_auth, ("GET", "POST")),
    ("/users", control_users, ("GET", "POST")),
    ("/world", control_world, ("GET", "POST")),
    ("/variants", control_variants, ("GET", "POST")),
    ("/venues", control_venues, ("GET",)),
    ("/slots", control_slots, ("POST",)),
)


def control_routes(state: SandboxState) -> list[Route]:
    return [
        Route(CONTROL_PREFIX + path, _control(handler, state), methods=list(methods))
        for path, handler, methods in CONTROL_ROUTES
    ]
