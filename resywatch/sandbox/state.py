"""Everything one running sandbox holds, and the operations its control routes expose.

Tests may call these methods directly on the handle that `run_in_thread` yields instead of
going through `/__sandbox/` over HTTP; both paths are thread-safe.
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from resywatch.sandbox.clock import SandboxClock
from resywatch.sandbox.config import SandboxConfig
from resywatch.sandbox.faults import FaultBook, Traffic
from resywatch.sandbox.tokens import (
    DEMO_GUEST_ID,
    DEMO_USER_ID,
    jwt_claims,
    mint_jwt,
    mint_refresh_token,
    parse_refresh_token,
    unverified_exp,
)
from resywatch.sandbox.venues import Venue
from resywatch.sandbox.world import World

DEMO_PAYMENT_METHOD_ID = 9013579
REFRESH_TOKEN_LIFETIME_S = 90 * 24 * 3600


def iso_z(instant: float) -> str:
    """``2026-03-01T17:00:00Z``: how Resy writes UTC instants such as ``date_expires``."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(value: float | str) -> float:
    """POSIX seconds from a number or an ISO-8601 string (naive strings are taken as UTC)."""
    if isinstance(value, int | float):
        return float(value)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass
class DemoUser:
    uid: int = DEMO_USER_ID
    guest_id: int = DEMO_GUEST_ID
    first_name: str = "Demo"
    last_name: str = "Diner"
    email: str = ""
    mobile_number: str = "+12125550123"
    has_card: bool = True

    @property
    def payment_method_ids(self) -> list[int]:
        return [DEMO_PAYMENT_METHOD_ID] if self.has_card else []


@dataclass
class AuthState:
    """Which tokens the sandbox accepts, and how it answers one it does not."""

    config_token: str
    signing_key: bytes
    token_lifetime_s: float
    redirect_on_failure: bool = False
    #: `POST /3/auth/refresh` refuses every refresh cookie (419), as Resy does for one it
    #: revoked: clients must fall back to telling their user to log in again.
    refuse_refresh: bool = False
    revoked: set[str] = field(default_factory=set)
    minted: set[str] = field(default_factory=set)
    used_refresh: set[str] = field(default_factory=set)
    nonce: int = 0


@dataclass
class Variants:
    """Switches for what real Resy may do one way or the other: no public sample decides, so
    the sandbox offers both and tests run both (REAL_RESY_FINDINGS.md, "Sandbox shapes")."""

    #: A booking that went through is answered 412 with `specs` naming it (AbhiSivaprasad's
    #: client: "the server returns 412 but the request is successful"); off: 201.
    book_success_as_412: bool = False
    #: /4/find lists a slot once per free table (several `config.id`s, one token), as a
    #: capture-based client plan records; off: once.
    find_per_table: bool = True
    #: /4/find's `venues[]` also holds another venue's entry after the one asked for
    #: (chi-chi looks for the asked venue among them); off: only the venue asked for.
    find_other_venue: bool = False
    #: With availability on, search also lists venues without a slot in the window, in
    #: result order among the rest: `availability: null` when the day is closed or not out,
    #: `{"slots": []}` otherwise (paystub-service: hits include availability=null / no
    #: slots). Off: only venues with slots, as the sandbox used to answer.
    search_slotless_hits: bool = True
    #: Such hits say `{"slots": null}` instead of `[]` (paystub-service guards with `or []`;
    #: no sample shows it).
    search_null_slots: bool = False
    #: Venues that ask for a captcha to book: /3/details answers them without a book token
    #: (a 2026 public booking script: "No token for ... captcha likely blocking").
    captcha_venue_ids: list[int] = field(default_factory=list)
    #: Their /4/find and /3/venue answers say `feature_recaptcha: true` (public TypeScript
    #: types of /4/find; the 2026 script reads it from /3/venue); off: only details tells.
    captcha_flag_shown: bool = True
    #: /4/find also lists slots ordinary accounts cannot book: every fifth from the third is
    #: `is_global_dining_access`, every fifth from the fifth an `exclusive` the account is not
    #: eligible for (a capture-based client plan). Off: such slots are not listed at all, as
    #: Alkaar #84 saw for Amex-only seating.
    restricted_slots: bool = False
    #: How /3/book answers a token for a slot of a day not released yet: no public client
    #: books before a find shows slots, so it is unseen. 404 (as a taken slot), 412, 400 or
    #: 500 (Alkaar #168/#102 saw those at drop time).
    unreleased_book_status: int = 404
    #: /4/find for an unknown venue is an error (400; Cierge's live test expects one); off:
    #: 200 with no venues.
    find_unknown_venue_error: bool = True
    #: Where /3/user/reservations offsets start: 0 (Cierge's live test) or 1 (ez-resy).
    reservations_offset_base: int = 0
    #: /3/details checks a config token's template and service ids against the slot's (a
    #: made-up token is refused, 404); off: the time and seating alone find the slot.
    details_checks_ids: bool = True
    #: A name search without an area also finds namesakes in Miami (real search is fuzzy
    #: and not limited to one city: lgrees tells hits apart by "neighborhood, locality").
    namesakes_elsewhere: bool = False
    #: `cancellation.fee.amount` in /3/details is per guest (raymondyou97/resybot-open
    #: multiplies it by the party); off: the party's total. No sample decides (S11).
    fee_per_guest: bool = False
    #: GET /3/details answers 500, as Alkaar #154 saw in Feb 2024; off: GET works as POST
    #: (a 2026 note uses GET again). resywatch only POSTs (S14).
    details_get_fails: bool = False
    #: Search also finds names a typo away from the query (real search is fuzzy: "amori"
    #: finds "Mori"); off: a substring of name, cuisine or neighbourhood (S13).
    fuzzy_search: bool = False
    #: Search's `time_filter` keeps slots this many minutes either side of it: paystub's
    #: docs say 2 h, its code comment 3 h (S5, unverified).
    time_filter_window_min: int = 120  # app.TIME_FILTER_WINDOW_MIN, the default

    def describe(self) -> dict[str, Any]:
        return {name: list(v) if isinstance(v, list) else v for name, v in vars(self).items()}


class SandboxState:
    """The world, the clock, the credentials, the faults and the traffic log of one sandbox."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        start = config.start
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=UTC)  # a naive start is taken as UTC, not local time
        self.clock = SandboxClock(None if start is None else start.timestamp(), config.speed)
        self.world = World(config.seed, config.venue_count, cancellations=config.cancellations)
        self.faults = FaultBook(config.seed)
        self.traffic = Traffic(config.request_log_size)
        self.user = DemoUser(email=config.email)
        # Every diner who can log in: the demo user, and those `add_user` adds (a second
        # account holds its own reservations).
        self.users: dict[int, DemoUser] = {self.user.uid: self.user}
        self._passwords: dict[str, tuple[str, int]] = {
            config.email.lower(): (config.password, self.user.uid)
        }
        self.auth = AuthState(
            config.auth_token,
            config.signing_key,
            config.token_lifetime_s,
            refuse_refresh=config.refuse_refresh,
        )
        self.variants = Variants()
        self._lock = threading.Lock()

    # -- credentials ---------------------------------------------------------------------

    def user_for_token(self, token: str | None) -> int | None:
        """The uid a user token stands for, or None if it is unknown, expired or revoked."""
        if not token or token in self.auth.revoked:
            return None
        now = self.clock.now()
        if token == self.auth.config_token:
            exp = unverified_exp(token)
            return self.user.uid if exp is None or exp > now else None
        claims = jwt_claims(token, self.auth.signing_key)
        uid = claims.get("uid") if claims is not None else None
        if claims is None or claims.get("gt") != "consumer" or uid not in self.users:
            return None
        exp = claims.get("exp")
        return uid if isinstance(uid, int) and isinstance(exp, int | float) and exp > now else None

    def user_by_uid(self, uid: int | None) -> DemoUser:
        return self.users.get(uid or self.user.uid, self.user)

    def add_user(self, email: str, password: str, first_name: str = "Second") -> DemoUser:
        """Another diner who can log in (`/__sandbox/users`), with a card on file."""
        with self._lock:
            uid = DEMO_USER_ID + len(self.users)
            user = DemoUser(uid=uid, guest_id=DEMO_GUEST_ID + uid, first_name=first_name)
            user.email = email
            self.users[uid] = user
            self._passwords[email.strip().lower()] = (password, uid)
        return user

    def check_password(self, email: str, password: str) -> int | None:
        """The uid these credentials log in as, or None."""
        known = self._passwords.get(email.strip().lower())
        return known[1] if known is not None and hmac.compare_digest(known[0], password) else None

    def mint_token(self, uid: int | None = None) -> str:
        """A fresh auth token for a user (the demo user by default), expiring per the
        sandbox clock."""
        now = self.clock.now()
        user = self.user_by_uid(uid)
        with self._lock:
            self.auth.nonce += 1
            token = mint_jwt(
                self.auth.signing_key,
                uid=user.uid,
                guest_id=user.guest_id,
                iat=int(now),
                exp=int(now + self.auth.token_lifetime_s),
                jti=self.auth.nonce,
            )
            self.auth.minted.add(token)
        return token

    def mint_refresh(self, uid: int | None = None) -> str:
        with self._lock:
            self.auth.nonce += 1
            return mint_refresh_token(
                self.auth.signing_key,
                uid=self.user_by_uid(uid).uid,
                exp=int(self.clock.now() + REFRESH_TOKEN_LIFETIME_S),
                nonce=self.auth.nonce,
            )

    def refresh_user(self, token: str | None) -> int | None:
        """The uid a refresh cookie stands for, or None if it is forged, expired or used, or
        every refresh is refused. Resy hands a new cookie with each refresh (RESY_API.md §3);
        whether the old one stays good is unseen: the sandbox takes the strict reading, so
        a client that keeps the old cookie is caught."""
        parsed = parse_refresh_token(self.auth.signing_key, token or "")
        if self.auth.refuse_refresh or parsed is None or token in self.auth.used_refresh:
            return None
        uid, exp = parsed
        if uid not in self.users or exp <= self.clock.now():
            return None
        with self._lock:
            self.auth.used_refresh.add(token or "")
        return uid

    def configure_auth(
        self,
        *,
        expire_tokens: bool | None = None,
        redirect_on_failure: bool | None = None,
        token_lifetime_s: float | None = None,
        has_card: bool | None = None,
        refuse_refresh: bool | None = None,
    ) -> dict[str, Any]:
        """Revoke every token issued so far (True) or restore them (False); 302 mode; card;
        refusing refresh cookies."""
        with self._lock:
            if expire_tokens is True:
                self.auth.revoked |= self.auth.minted | {self.auth.config_token}
            elif expire_tokens is False:
                self.auth.revoked.clear()
            if redirect_on_failure is not None:
                self.auth.redirect_on_failure = redirect_on_failure
            if token_lifetime_s is not None:
                self.auth.token_lifetime_s = token_lifetime_s
            if has_card is not None:
                self.user.has_card = has_card
            if refuse_refresh is not None:
                self.auth.refuse_refresh = refuse_refresh
            return self.describe_auth()

    def describe_auth(self) -> dict[str, Any]:
        return {
            "redirect_on_failure": self.auth.redirect_on_failure,
            "token_lifetime_s": self.auth.token_lifetime_s,
            "revoked_tokens": len(self.auth.revoked),
            "has_card": self.user.has_card,
            "refuse_refresh": self.auth.refuse_refresh,
            "users": len(self.users),
        }

    def configure_variants(self, **changes: Any) -> dict[str, Any]:
        """Set the named variants (None leaves one as it is)."""
        with self._lock:
            for name, value in changes.items():
                if value is not None:
                    setattr(self.variants, name, value)
            return self.variants.describe()

    # -- time ----------------------------------------------------------------------------------

    def describe_time(self) -> dict[str, Any]:
        now = self.clock.now()
        return {"now": iso_z(now), "epoch": now, "speed": self.clock.speed}

    def control_time(
        self,
        *,
        set_to: float | None = None,
        advance: float | None = None,
        speed: float | None = None,
    ) -> dict[str, Any]:
        """Set, then advance, then re-speed the clock (any subset)."""
        if set_to is not None:
            self.clock.set(set_to)
        if advance is not None:
            self.clock.advance(advance)
        if speed is not None:
            self.clock.set_speed(speed)
        return self.describe_time()

    # -- releases and inventory -------------------------------------------------------------

    def venue(self, venue_id: int) -> Venue | None:
        return self.world.by_id.get(venue_id)

    def describe_release(self, venue: Venue, day: date) -> dict[str, Any]:
        now = self.clock.now()
        actual = self.world.release_instant(venue, day)
        return {
            "venue_id": venue.id,
            "day": day.isoformat(),
            "scheduled_at": iso_z(self.world.scheduled_release(venue, day)),
            "release_at": iso_z(actual),
            "release_epoch": actual,
            "jitter_s": round(self.world.jitter(venue, day), 3),
            "released": now >= actual,
            "last_calendar_day": self.world.last_calendar_day(venue, now).isoformat(),
        }

    def force_release(self, venue: Venue, day: date, at: float | None) -> dict[str, Any]:
        self.world.force_release(venue, day, at)
        return self.describe_release(venue, day)

    def describe_venue(self, venue: Venue) -> dict[str, Any]:
        """A venue with the attributes real Resy keeps to itself (for tests and demos)."""
        return {
            "id": venue.id,
            "name": venue.name,
            "url_slug": venue.url_slug,
            "neighborhood": venue.neighborhood,
            "cuisine": list(venue.cuisine),
            "lat": venue.lat,
            "lng": venue.lng,
            "in_manhattan_bbox": venue.in_manhattan_bbox,
            "time_zone": venue.time_zone,
            "lead_time_in_days": venue.lead_time_days,
            "release_time": f"{venue.release_min // 60:02d}:{venue.release_min % 60:02d}",
            "popularity": venue.popularity,
            "payment_required": venue.payment_required,
            "cannot_take_payment": venue.cannot_take_payment,
            "min_party_size": venue.min_party_size,
            "max_party_size": venue.max_party_size,
            "seatings": [s.name for s in venue.seatings],
            "closed_weekdays": sorted(venue.closed_weekdays),
        }

    # -- traffic ---------------------------------------------------------------------------------

    def reset(self, *, faults: bool = False) -> None:
        """Clear the counters and the request log (and the fault rules if asked)."""
        self.traffic.reset()
        if faults:
            self.faults.clear()
