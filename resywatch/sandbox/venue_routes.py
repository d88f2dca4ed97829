"""The sandbox's venue routes: `/3/venue`, `/2/config` and the venue calendar."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from resywatch.sandbox.gateway import Call
from resywatch.sandbox.http import ApiError, date_param, int_param, json_response

CALENDAR_MAX_DAYS = 120


async def venue_config(request: Request, call: Call) -> Response:
    venue_id = int_param(dict(request.query_params), "venue_id")
    call.note(venue_id=venue_id)
    return json_response(call.payloads.config(call.venue(venue_id)))


async def venue_detail(request: Request, call: Call) -> Response:
    params = dict(request.query_params)
    if "url_slug" in params and "id" not in params:
        # A venue page's slug and city (a 2026 public note: /3/venue?url_slug=&location=).
        slug, location = params["url_slug"].lower(), params.get("location", "").lower()
        call.note(url_slug=slug, location=location)
        found = next((v for v in call.state.world.venues if v.url_slug == slug), None)
        if found is None or location not in ("new-york-ny", "ny"):
            raise ApiError(404, "Venue not found")
        venue_id = found.id
    elif "id" not in params:
        # The quirk from the reference note: `venue_id` is not this route's parameter.
        raise ApiError(400, "Bad Request", data={"id": "missing"})
    else:
        venue_id = int_param(params, "id")
        call.note(id=venue_id)
    venue = call.venue(venue_id)
    body = call.payloads.venue(venue)
    variants = call.state.variants
    if venue.id in variants.captcha_venue_ids and variants.captcha_flag_shown:
        body["feature_recaptcha"] = True
    return json_response(body)


async def calendar(request: Request, call: Call) -> Response:
    params = dict(request.query_params)
    venue_id = int_param(params, "venue_id")
    num_seats = int_param(params, "num_seats", 2)
    call.note(
        venue_id=venue_id,
        num_seats=num_seats,
        start_date=params.get("start_date"),
        end_date=params.get("end_date"),
    )
    venue = call.venue(venue_id)
    world, now = call.state.world, call.now
    last = world.last_calendar_day(venue, now)
    start = date_param(params, "start_date", world.local_today(venue, now))
    # Days after the horizon are left out, as Resy does (resybot-open relies on it).
    end = min(
        date_param(params, "end_date", last), last, start + timedelta(days=CALENDAR_MAX_DAYS - 1)
    )
    scheduled = []
    day = start
    while day <= end:
        status = world.calendar_status(venue, day, num_seats, now)
        walk_in = venue.walk_in and status != "closed"
        scheduled.append(
            {
                "date": day.isoformat(),
                "inventory": {
                    "reservation": status,
                    "event": "not available",
                    "walk-in": "available" if walk_in else "not available",
                },
            }
        )
        day += timedelta(days=1)
    body: dict[str, Any] = {"last_calendar_day": last.isoformat(), "scheduled": scheduled}
    if request.url.path.startswith("/3/"):
        body["events"] = []
    return json_response(body)
