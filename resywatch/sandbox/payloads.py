"""Resy's JSON, written from the sandbox world (shapes per shared/reference/RESY_API.md §4-6).

This module deliberately knows nothing about resywatch's client models: a shape mistake on
either side then shows up as a failing end-to-end test instead of cancelling out.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from json.encoder import encode_basestring
from typing import Any

from resywatch.sandbox.state import DEMO_PAYMENT_METHOD_ID, DemoUser, iso_z
from resywatch.sandbox.venues import SERVICE_NAMES, Venue
from resywatch.sandbox.world import MARKET_OFF_S, Reservation, SlotDef, Snapshot, World, mix

#: Deposit per guest at venues that require a card (402 without one).
DEPOSIT_PER_GUEST = 25.0
CANCELLATION_FEE_PER_GUEST = 50.0
#: A slot's values that depend on the day, party or snapshot, in the order its JSON has them.
_SLOT_HOLES = ("config_id", "token", "start", "end", "quantity", "on", "off", "day")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    """Resy's error shape: ``{status, code, message, data}`` (plus e.g. ``specs`` on 412)."""
    return {"status": status, "code": None, "message": message, "data": {}, **extra}


def slot_token(venue: Venue, slot: SlotDef, day: str, party_size: int) -> str:
    return (
        f"rgs://resy/{venue.id}/{slot.template_id}/{slot.service.type_id}/{day}/{day}/"
        f"{slot.time}/{party_size}/{slot.seating.name}"
    )


def local_stamp(day: date, minute: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in venue-local time, no zone, as Resy writes slot dates."""
    if 0 <= minute < 1440 and day.year >= 1000:  # the common case, without strftime
        return f"{day.isoformat()} {minute // 60:02d}:{minute % 60:02d}:00"
    return (datetime(day.year, day.month, day.day) + timedelta(minutes=minute)).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def _config_id(venue: Venue, day: date, slot: SlotDef) -> int:
    return 100_000 + mix(venue.id, day.toordinal(), slot.index) % 9_899_999


def _locality(postal_code: str) -> str:
    if postal_code.startswith("331"):
        return "Miami"  # a namesake elsewhere (the `namesakes_elsewhere` variant)
    return "Brooklyn" if postal_code.startswith("112") else "New York"


def _payment(venue: Venue) -> dict[str, Any]:
    fee = CANCELLATION_FEE_PER_GUEST if venue.payment_required else None
    cut_off = 86400 if venue.payment_required else None
    return {
        "is_paid": False,
        "cancellation_fee": fee,
        "deposit_fee": DEPOSIT_PER_GUEST if venue.payment_required else None,
        "service_charge": None,
        "venue_share": None,
        "payment_structure": None,
        "secs_cancel_cut_off": cut_off,
        "time_cancel_cut_off": None,
        "secs_change_cut_off": cut_off,
        "time_change_cut_off": None,
        "service_charge_options": [],
    }


def restrict_slot(slot: dict[str, Any], index: int | None) -> None:
    """Mark a slot ordinary accounts cannot book (the `restricted_slots` variant)."""
    if index is not None and index % 5 == 2:
        slot["is_global_dining_access"] = True
    elif index is not None and index % 5 == 4:
        slot["exclusive"] = {"id": 7000 + index, "is_eligible": False}


class Payloads:
    """Builds response bodies; caches what depends only on the static catalogue."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._venues: dict[int, dict[str, Any]] = {}
        self._hits: dict[int, dict[str, Any]] = {}
        self._hit_json: dict[int, bytes] = {}
        self._slot_templates: dict[tuple[int, int], tuple[str, ...]] = {}

    # -- /4/find --------------------------------------------------------------------------

    def find_venue(self, venue: Venue) -> dict[str, Any]:
        cached = self._venues.get(venue.id)
        if cached is None:
            cached = self._venues[venue.id] = {
                "id": {"resy": venue.id},
                "venue_group": {"id": 1000 + venue.id % 977, "name": venue.name, "venues": []},
                "name": venue.name,
                "type": venue.cuisine[0],
                "url_slug": venue.url_slug,
                "price_range": venue.price_range,
                "average_bill_size": 0.0,
                "currency_symbol": "$",
                "hospitality_included": 0,
                "resy_select": 0,
                "is_gdc": 0,
                "is_global_dining_access": False,
                "is_global_dining_access_only": False,
                "requires_reservation_transfers": 0,
                "is_rga": False,
                "tagline": "",
                "reopen": {"date": None},
                "inventory": {"type": {"id": 1}},
                "location": {
                    "id": 1,
                    "time_zone": venue.time_zone,
                    "neighborhood": venue.neighborhood,
                    "geo": {"lat": venue.lat, "lon": venue.lng},
                    "code": "ny",
                    "url_slug": "new-york-ny",
                },
                "rating": venue.rating_average,
                "total_ratings": venue.rating_count,
                "min_party_size": venue.min_party_size,
                "max_party_size": venue.max_party_size,
                "travel_time": {"distance": 0.0},
                "collections": [],
            }
        return cached

    def slot(self, snap: Snapshot, index: int, party_size: int) -> dict[str, Any]:
        venue, slot = snap.venue, snap.slots[index]
        day = snap.day.isoformat()
        return self._slot_body(
            venue,
            slot,
            config_id=_config_id(venue, snap.day, slot),
            token=slot_token(venue, slot, day, party_size),
            start=local_stamp(snap.day, slot.minute),
            end=local_stamp(snap.day, slot.minute + slot.service.turn_min),
            quantity=snap.avail[index],
            on=int(snap.market_on),
            off=int(snap.starts[index] - MARKET_OFF_S),
            day=day,
        )

    @staticmethod
    def _slot_body(
        venue: Venue,
        slot: SlotDef,
        *,
        config_id: Any,
        token: Any,
        start: Any,
        end: Any,
        quantity: Any,
        on: Any,
        off: Any,
        day: Any,
    ) -> dict[str, Any]:
        """A slot's JSON from its per-day values (the keywords, in the order they appear)."""
        turn_s = slot.service.turn_min * 60
        return {
            "config": {"id": config_id, "type": slot.seating.name, "token": token},
            "date": {"start": start, "end": end},
            "size": {"min": slot.seating.min_size, "max": slot.seating.max_size},
            "quantity": quantity,
            "market": {"date": {"on": on, "off": off}},
            "shift": {
                "id": slot.shift_id,
                "service": {"type": {"id": slot.service.type_id}},
                "day": day,
            },
            "template": {"id": slot.template_id},
            "availability": {"id": 3},
            "status": {"id": 1},
            "payment": _payment(venue),
            "is_global_dining_access": False,
            "exclusive": {"id": 0},
            "display_config": {"color": {"background": None, "font": None}},
            "reservation_config": {"badge": None},
            "gdc_perk": None,
            "time": {"turn": {"actual": turn_s, "estimated": turn_s}},
        }

    def _slot_template(self, venue: Venue, slot: SlotDef) -> tuple[str, ...]:
        """A slot's JSON text cut around its per-day values (``_SLOT_HOLES``), per slot."""
        key = (venue.id, slot.index)
        cached = self._slot_templates.get(key)
        if cached is None:
            holes = {name: f"\0{name}\0" for name in _SLOT_HOLES}
            rest = dumps(self._slot_body(venue, slot, **holes)).decode()
            pieces = []
            for name in _SLOT_HOLES:
                before, found, rest = rest.partition(encode_basestring(holes[name]))
                if not found:
                    raise AssertionError(f"slot JSON lost its {name!r} hole")
                pieces.append(before)
            pieces.append(rest)
            cached = self._slot_templates[key] = tuple(pieces)
        return cached

    def slot_json(self, snap: Snapshot, index: int, party_size: int) -> bytes:
        """``dumps(self.slot(snap, index, party_size))``, filled into the slot's template."""
        venue, slot = snap.venue, snap.slots[index]
        day = snap.day.isoformat()
        p = self._slot_template(venue, slot)
        return "".join(
            (
                p[0],
                str(_config_id(venue, snap.day, slot)),
                p[1],
                encode_basestring(slot_token(venue, slot, day, party_size)),
                p[2],
                encode_basestring(local_stamp(snap.day, slot.minute)),
                p[3],
                encode_basestring(local_stamp(snap.day, slot.minute + slot.service.turn_min)),
                p[4],
                str(snap.avail[index]),
                p[5],
                str(int(snap.market_on)),
                p[6],
                str(int(snap.starts[index] - MARKET_OFF_S)),
                p[7],
                encode_basestring(day),
                p[8],
            )
        ).encode()

    def timed_slots(self, snap: Snapshot, party_size: int) -> list[tuple[int, dict[str, Any]]]:
        """(local start minute, slot JSON) of the open slots for a party, memoised per snapshot."""
        key = ("slots", party_size)
        cached = snap.memo.get(key)
        if cached is None:
            cached = snap.memo[key] = [
                (snap.slots[i].minute, self.slot(snap, i, party_size))
                for i in snap.open_for(party_size)
            ]
        return cached

    def find(
        self, venue: Venue, snap: Snapshot, party_size: int, *, per_table: bool = False
    ) -> bytes:
        """`/4/find`'s body. `per_table`: a slot with more than one table free is listed once
        per table, each with its own `config.id` and the same token, as real answers do (a
        capture-based client plan: config ids 1829819/1829820, one token)."""
        key = ("find", party_size, per_table)
        cached = snap.memo.get(key)
        if cached is None:
            templates = {}
            slots = []
            for _, slot in self.timed_slots(snap, party_size):
                slots.append(slot)
                if per_table and slot["quantity"] >= 2:
                    table = slot["config"] | {"id": slot["config"]["id"] + 1}
                    slots.append(slot | {"config": table, "quantity": slot["quantity"] - 1})
                template_id = slot["template"]["id"]
                templates[str(template_id)] = {"id": template_id, "name": slot["config"]["type"]}
            cached = dumps(
                {
                    "query": {"day": snap.day.isoformat(), "party_size": party_size},
                    "bookmark": None,
                    "results": {
                        "venues": [
                            {
                                "venue": self.find_venue(venue),
                                "templates": templates,
                                "slots": slots,
                                "notifies": [],
                                "pickups": {"slots": [], "service_types": {}},
                            }
                        ]
                    },
                    "meta": {"offset": 1, "limit": None},
                }
            )
            snap.memo[key] = cached
        return cached

    @staticmethod
    def find_unknown_venue(day: str, party_size: int) -> dict[str, Any]:
        return {
            "query": {"day": day, "party_size": party_size},
            "bookmark": None,
            "results": {"venues": []},
            "meta": {"offset": 1, "limit": None},
        }

    # -- /3/details -----------------------------------------------------------------------------

    @staticmethod
    def payment_methods(user: DemoUser) -> list[dict[str, Any]]:
        return [
            {
                "id": pid,
                "is_default": True,
                "provider_name": "braintree",
                "provider_id": 1,
                "display": "4242",
                "type": "Visa",
                "exp_year": 2031,
                "exp_month": 12,
                "issuing_bank": None,
            }
            for pid in user.payment_method_ids
        ]

    def details(
        self,
        venue: Venue,
        slot: SlotDef,
        day: date,
        party_size: int,
        start: float,
        book_token: str,
        expires: float,
        user: DemoUser,
        *,
        fee_per_guest: bool = False,
    ) -> dict[str, Any]:
        """`/3/details`. `fee_per_guest`: `cancellation.fee.amount` is the fee per guest
        (raymondyou97's reading); otherwise the total for the party (S11: unverified)."""
        paid = venue.payment_required
        total = DEPOSIT_PER_GUEST * party_size if paid else 0.0
        charged = CANCELLATION_FEE_PER_GUEST * party_size  # what cancelling really costs
        fee = CANCELLATION_FEE_PER_GUEST if fee_per_guest else charged
        cut_off = iso_z(start - 86400) if paid else iso_z(start)
        policy = (
            [f"A ${charged:.0f} fee applies to cancellations within 24 hours of the reservation."]
            if paid
            else ["You may cancel your reservation at no charge."]
        )
        return {
            "book_token": {"value": book_token, "date_expires": iso_z(expires)},
            "user": {"payment_methods": self.payment_methods(user)},
            "cancellation": {
                "fee": (
                    {"amount": fee, "date_cut_off": cut_off, "display": {"amount": f"${fee:.0f}"}}
                    if paid
                    else None
                ),
                "refund": {"date_cut_off": cut_off},
                "credit": {"date_cut_off": cut_off},
                "display": {"policy": policy},
            },
            "change": {"date_cut_off": cut_off},
            "payment": {
                "amounts": {
                    "items": [],
                    "reservation_charge": total,
                    "subtotal": total,
                    "add_ons": 0.0,
                    "quantity": party_size,
                    "resy_fee": 0.0,
                    "service_fee": 0.0,
                    "service_charge": {"amount": 0.0, "value": "0%"},
                    "tax": 0.0,
                    "total": total,
                    "surcharge": 0.0,
                    "price_per_unit": DEPOSIT_PER_GUEST if paid else 0.0,
                },
                "config": {"type": "deposit" if paid else "free"},
                "comp": False,
                "display": {"balance": {"value": f"${total:.0f}", "modifier": ""}},
                "options": [],
            },
            "venue": {
                "id": {"resy": venue.id},
                "name": venue.name,
                "content": self.content(venue),
                "config": {"allow_bypass_payment_method": 0 if paid else 1},
            },
            "viewers": {"total": 1 + mix(venue.id, int(start)) % 40},
            "locale": {"currency": "USD"},
            "slot": {"day": day.isoformat(), "time_slot": slot.time, "type": slot.seating.name},
        }

    # -- venue, config, calendar -----------------------------------------------------------------

    @staticmethod
    def content(venue: Venue) -> list[dict[str, Any]]:
        hour, minute = divmod(venue.release_min, 60)
        clock = f"{(hour % 12) or 12}:{minute:02d} {'AM' if hour < 12 else 'PM'}"
        return [
            {
                "name": "need_to_know",
                "title": "Need to Know",
                "body": (
                    f"Reservations are released {venue.lead_time_days} days in advance at "
                    f"{clock} Eastern Time."
                ),
                "locale": {"language": "en-us"},
            },
            {
                "name": "about",
                "title": "About",
                "body": f"{venue.name} serves {venue.cuisine[0]} in {venue.neighborhood}.",
                "locale": {"language": "en-us"},
            },
        ]

    def location(self, venue: Venue) -> dict[str, Any]:
        return {
            "address_1": venue.address,
            "address_2": None,
            "locality": "Brooklyn" if venue.postal_code.startswith("112") else "New York",
            "region": "NY",
            "postal_code": venue.postal_code,
            "country": "United States",
            "neighborhood": venue.neighborhood,
            "latitude": venue.lat,
            "longitude": venue.lng,
            "time_zone": venue.time_zone,
            "code": "ny",
            "name": "New York",
            "url_slug": "new-york-ny",
        }

    def venue(self, venue: Venue) -> dict[str, Any]:
        return {
            "id": {"resy": venue.id, "google": None, "foursquare": None},
            "name": venue.name,
            "url_slug": venue.url_slug,
            "type": venue.cuisine[0],
            "price_range_id": venue.price_range,
            "rating": {"average": venue.rating_average, "count": venue.rating_count},
            "location": self.location(venue),
            "locale": {"currency": "USD", "time_zone": venue.time_zone},
            "content": self.content(venue),
            "notify_options": [],
            "reopen": {"date": None},
            "min_party_size": venue.min_party_size,
            "max_party_size": venue.max_party_size,
            "images": [],
        }

    def config(self, venue: Venue) -> dict[str, Any]:
        open_days = [d for d in range(7) if d not in venue.closed_weekdays]
        service_types = []
        for service in venue.services:
            key, value = SERVICE_NAMES[service.type_id]
            service_types.append(
                {
                    "id": service.type_id,
                    "key": key,
                    "value": value,
                    "filters": [
                        {
                            "start": f"{service.start_min // 60:02d}:{service.start_min % 60:02d}",
                            "end": f"{service.last_min // 60:02d}:{service.last_min % 60:02d}",
                            "days_of_week": open_days,
                        }
                    ],
                }
            )
        return {
            "lead_time_in_days": venue.lead_time_days,
            "venue": {
                "id": {"resy": venue.id},
                "name": venue.name,
                "min_party_size": venue.min_party_size,
                "max_party_size": venue.max_party_size,
                "time_zone": venue.time_zone,
            },
            "service_types": service_types,
        }

    # -- search -----------------------------------------------------------------------------------

    def search_hit(self, venue: Venue) -> dict[str, Any]:
        """The static part of a search hit (callers copy it before adding availability)."""
        cached = self._hits.get(venue.id)
        if cached is None:
            cached = self._hits[venue.id] = {
                "id": {"resy": venue.id},
                "objectID": str(venue.id),
                "name": venue.name,
                "url_slug": venue.url_slug,
                "locality": _locality(venue.postal_code),
                "region": "NY",
                "neighborhood": venue.neighborhood,
                "cuisine": list(venue.cuisine),
                "rating": {"average": venue.rating_average, "count": venue.rating_count},
                "price_range_id": venue.price_range,
                "_geoloc": {"lat": venue.lat, "lng": venue.lng},
                "location": {"name": "New York", "id": 1, "code": "ny", "url_slug": "new-york-ny"},
                "images": [],
                "max_party_size": venue.max_party_size,
                "min_party_size": venue.min_party_size,
                "time_zone": venue.time_zone,
            }
        return cached

    def search_hit_json(self, venue: Venue) -> bytes:
        """`search_hit` as JSON bytes."""
        cached = self._hit_json.get(venue.id)
        if cached is None:
            cached = self._hit_json[venue.id] = dumps(self.search_hit(venue))
        return cached

    @staticmethod
    def open_slots(snap: Snapshot, party_size: int) -> tuple[list[int], list[int]]:
        """(start minutes, indexes) of the slots open for a party, in time order; memoised."""
        key = ("open", party_size)
        cached: tuple[list[int], list[int]] | None = snap.memo.get(key)
        if cached is None:
            indexes = snap.open_for(party_size)
            cached = snap.memo[key] = ([snap.slots[i].minute for i in indexes], indexes)
        return cached

    def slots_json(self, snap: Snapshot, party_size: int, indexes: list[int]) -> bytes:
        """The JSON array of these slots; each slot is encoded once per snapshot and party."""
        key = ("slot_json", party_size)
        encoded: dict[int, bytes] | None = snap.memo.get(key)
        if encoded is None:
            encoded = snap.memo[key] = {}
        parts = []
        for i in indexes:
            part = encoded.get(i)
            if part is None:
                part = encoded[i] = self.slot_json(snap, i, party_size)
            parts.append(part)
        return b"[" + b",".join(parts) + b"]"

    # -- user -----------------------------------------------------------------------------------

    def user(self, user: DemoUser, num_bookings: int) -> dict[str, Any]:
        return {
            "id": user.uid,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "em_address": user.email,
            "mobile_number": user.mobile_number,
            "payment_method_id": DEMO_PAYMENT_METHOD_ID if user.has_card else None,
            "payment_methods": self.payment_methods(user),
            "num_bookings": num_bookings,
            "is_concierge": False,
            "resy_select": 0,
            "notify_wins": 0,
            "guest_id": user.guest_id,
            "feature_flags": {},
            "profile_image_url": None,
            "date_created": 1609459200,  # epoch seconds, as Cierge's User reads it (S12)
        }

    def reservation(self, r: Reservation, now: float) -> dict[str, Any]:
        venue = self.world.by_id[r.venue_id]
        paid = venue.payment_required
        fee = CANCELLATION_FEE_PER_GUEST * r.party_size if paid else 0.0
        return {
            "reservation_id": r.reservation_id,
            "resy_token": r.resy_token,
            "day": r.day.isoformat(),
            "time_slot": r.slot.time,
            "num_seats": r.party_size,
            "venue": {"id": venue.id, "currency": "USD"},
            "config": {"type": r.slot.seating.name},
            "service_type_id": r.slot.service.type_id,
            "status": {"finished": int(r.start <= now), "no_show": 0},
            "cancellation": {
                "fee": {
                    "amount": fee,
                    "date_cut_off": iso_z(r.start - 86400) if paid else None,
                    "applies": paid,
                },
                "allowed": r.start > now,
            },
            "payment_method": {"id": r.payment_method_id} if r.payment_method_id else None,
            # UTC "YYYY-MM-DD HH:MM:SS", as Cierge's Reservation reads it (S12).
            "when": datetime.fromtimestamp(r.start, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "booked_at": iso_z(r.booked_at),
        }
