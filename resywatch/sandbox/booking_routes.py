"""The sandbox's booking routes: `/4/find`, `/3/details`, `/3/book` and `/3/cancel`."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from resywatch.sandbox.gateway import BOOK_ERRORS, REASONS, UNAUTHORIZED, Call
from resywatch.sandbox.http import (
    JSON_TYPE,
    ApiError,
    date_param,
    form_body,
    int_param,
    json_response,
    query_or_json,
)
from resywatch.sandbox.payloads import Payloads, restrict_slot
from resywatch.sandbox.tokens import BookTokenClaims, mint_book_token, parse_book_token
from resywatch.sandbox.world import BookingError, Reservation

#: A book token from `/3/details` is good for five minutes of sandbox time (per Cierge).
BOOK_TOKEN_TTL_S = 300
_TOKEN_RE = re.compile(
    r"^rgs://resy/(\d+)/(\d+)/(\d+)/(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})/(\d{2}:\d{2}:\d{2})/(\d+)/(.+)$"
)


async def find(request: Request, call: Call) -> Response:
    params = await query_or_json(request)
    venue_id, day, party = (
        int_param(params, "venue_id"),
        date_param(params, "day"),
        int_param(params, "party_size"),
    )
    call.note(venue_id=venue_id, day=day.isoformat(), party_size=party)
    if party < 1:
        raise ApiError(400, "Invalid parameter: party_size")
    venue = call.state.world.by_id.get(venue_id)
    if venue is None:
        if call.state.variants.find_unknown_venue_error:
            # Cierge's live test expects an error (ErrBadRequest) for an unknown venue (S3).
            raise ApiError(400, "Invalid venue_id")
        return json_response(Payloads.find_unknown_venue(day.isoformat(), party))
    world, variants = call.state.world, call.state.variants
    snap = world.snapshot(venue, day, call.now)
    body = call.payloads.find(venue, snap, party, per_table=variants.find_per_table)
    captcha = venue.id in variants.captcha_venue_ids and variants.captcha_flag_shown
    if not (variants.find_other_venue or variants.restricted_slots or captcha):
        return Response(body, media_type=JSON_TYPE)  # the fast path: memoised bytes
    answer = json.loads(body)
    if variants.find_other_venue:
        other = next(v for v in world.venues if v.id != venue.id)
        extra = call.payloads.find(
            other, world.snapshot(other, day, call.now), party, per_table=variants.find_per_table
        )
        answer["results"]["venues"] += json.loads(extra)["results"]["venues"]
    entry = answer["results"]["venues"][0]
    if captcha:
        entry["venue"]["feature_recaptcha"] = True
    if variants.restricted_slots:
        for slot in entry["slots"]:
            restrict_slot(
                slot,
                call.state.world.slot_index(
                    venue, slot["date"]["start"][11:], slot["config"]["type"]
                ),
            )
    return json_response(answer)


async def details(request: Request, call: Call) -> Response:
    if request.method == "GET" and call.state.variants.details_get_fails:
        # Alkaar #154: GET /3/details gave 500 after the Feb-2024 switch to POST (S14).
        raise ApiError(500, "Internal Server Error")
    params = await query_or_json(request)
    config_id = str(params.get("config_id") or "")
    match = _TOKEN_RE.match(config_id)
    call.note(config_id=config_id, day=params.get("day"), party_size=params.get("party_size"))
    if match is None:
        raise ApiError(400, "Invalid config_id")
    venue = call.venue(int(match.group(1)))
    day = date.fromisoformat(match.group(4))
    party = int_param(params, "party_size", int(match.group(7)))
    index = call.state.world.slot_index(venue, match.group(6), match.group(8))
    if index is None:
        raise ApiError(404, "Slot not found")
    slot = call.state.world.slot_defs(venue)[index]
    template, service = int(match.group(2)), int(match.group(3))
    if call.state.variants.details_checks_ids and (
        template != slot.template_id or service != slot.service.type_id
    ):
        # A token is Resy's own, not a guess: the template and service must be the slot's
        # (S6). Cierge's live test expects an error for an invalid config (400 or 404).
        raise ApiError(404, "Slot not found")
    # Resy issues a book token even for a slot that is gone; only /3/book tells.
    expires = call.now + BOOK_TOKEN_TTL_S
    claims = BookTokenClaims(
        venue.id, day.isoformat(), slot.time, party, slot.seating.name, call.uid, expires
    )
    token = mint_book_token(call.state.auth.signing_key, claims)
    start = call.state.world.slot_start(venue, day, slot)
    body = call.payloads.details(
        venue, slot, day, party, start, token, expires, call.state.user_by_uid(call.uid),
        fee_per_guest=call.state.variants.fee_per_guest,
    )  # fmt: skip
    if str(params.get("commit", "1")) == "0" or venue.id in call.state.variants.captcha_venue_ids:
        # A captcha venue gives no token until its captcha is solved (2026 public script).
        # dwatch/AbhiSivaprasad: commit=0 "will not return a booking token".
        del body["book_token"]
    return json_response(body)


async def book(request: Request, call: Call) -> Response:
    form = await form_body(request)
    raw_token = form.get("book_token", "")
    call.note(book_token=raw_token[:24], struct_payment_method=form.get("struct_payment_method"))
    claims = parse_book_token(call.state.auth.signing_key, raw_token)
    if claims is None or claims.uid != call.uid:
        raise ApiError(400, "Invalid book token")
    call.note(venue_id=claims.venue_id)
    if claims.expires <= call.now:
        raise ApiError(412, "Book token has expired")
    venue = call.venue(claims.venue_id)
    payment_method_id: int | None = None
    if form.get("struct_payment_method"):
        try:
            payment_method_id = int(json.loads(form["struct_payment_method"])["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(400, "Invalid struct_payment_method") from exc
    if venue.cannot_take_payment and payment_method_id is not None:
        raise ApiError(403, BOOK_ERRORS[403])
    user = call.state.user_by_uid(call.uid)
    if venue.payment_required and payment_method_id not in user.payment_method_ids:
        raise ApiError(402, BOOK_ERRORS[402])
    world = call.state.world
    index = world.slot_index(venue, claims.time, claims.seating)
    if index is None:
        raise ApiError(404, BOOK_ERRORS[404])
    if not world.is_released(venue, date.fromisoformat(claims.day), call.now):
        status = call.state.variants.unreleased_book_status  # unseen: a switch (S7)
        raise ApiError(status, BOOK_ERRORS.get(status, REASONS.get(status, "Error")))
    try:
        reservation = world.book(
            uid=call.uid,
            venue=venue,
            day=date.fromisoformat(claims.day),
            slot_index=index,
            party_size=claims.party_size,
            payment_method_id=payment_method_id,
            now=call.now,
        )
    except BookingError as exc:
        if exc.kind == "conflict" and exc.existing is not None:
            raise ApiError(412, BOOK_ERRORS[412], specs=_specs(exc.existing)) from exc
        raise ApiError(404, BOOK_ERRORS[404]) from exc
    if call.state.variants.book_success_as_412:
        raise ApiError(412, BOOK_ERRORS[412], specs=_specs(reservation))
    body = {
        "resy_token": reservation.resy_token,
        "reservation_id": reservation.reservation_id,
        "venue_opt_in": form.get("venue_marketing_opt_in") == "1",
    }
    return json_response(body, 201)


def _specs(held: Reservation) -> dict[str, Any]:
    """A 412's `specs`: the reservation the user holds (AbhiSivaprasad; a zod schema)."""
    return {
        "reservation_id": held.reservation_id,
        "resy_token": held.resy_token,
        "venue_id": held.venue_id,
        "day": held.day.isoformat(),
        "time_slot": held.slot.time,
        "party_size": held.party_size,
        "config": {"type": held.slot.seating.name},
    }


async def cancel(request: Request, call: Call) -> Response:
    form = await form_body(request)
    token = form.get("resy_token", "")
    call.note(resy_token=token)
    reservation = call.state.world.cancel(call.uid, token, call.now)
    if reservation is None:
        # Resy answers an unknown resy_token with its generic 419.
        return Response(UNAUTHORIZED, 419, media_type=JSON_TYPE)
    return json_response({"payment": {"refund": 1}})
