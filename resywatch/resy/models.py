"""Typed views of the Resy JSON we read (see RESY_API.md §5).

Resy changes shapes without notice, so every model ignores fields it does not know and
treats what it can live without as optional. Known variations are absorbed here, once:
a venue id is an int or `{"resy": id}`; a rating is a float or `{"average", "count"}`;
`date.start` is venue-local wall-clock time with no zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any, NotRequired

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

RESY_LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"


def _resy_id(value: Any) -> Any:
    """123, `{"resy": 123}`, `{"id": 123}` or `{"id": {"resy": 123}}` -> 123."""
    while isinstance(value, dict):
        value = value.get("resy", value.get("id"))
    return value


def local_time(value: Any) -> Any:
    """Resy's venue-local "YYYY-MM-DD HH:MM:SS" as a naive datetime (anything else as is)."""
    if isinstance(value, str):
        # fromisoformat reads Resy's "YYYY-MM-DD HH:MM:SS" ten times faster than strptime,
        # which matters with tens of thousands of slots a pass.
        try:
            return datetime.fromisoformat(value.strip()[:19])
        except ValueError:
            return datetime.strptime(value.strip()[:19], RESY_LOCAL_FORMAT)
    return value


ResyId = Annotated[int, BeforeValidator(_resy_id)]
LocalDateTime = Annotated[datetime, BeforeValidator(local_time)]


class ResyModel(BaseModel):
    # defer_build: most commands read two or three of these shapes; building all of them
    # at import would cost a short command (`health`) a tenth of a second.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True, defer_build=True)


class Rating(ResyModel):
    average: float | None = None
    count: int | None = None


def _rating(value: Any) -> Any:
    if isinstance(value, int | float):
        return {"average": float(value)}
    return value


class SlotConfig(ResyModel):
    id: int | str | None = None
    type: str | None = None  # seating type, e.g. "Dining Room"
    token: str  # rgs://resy/<venue>/<template>/<service>/<day>/<day>/<HH:MM:SS>/<party>/<type>


class SlotDate(ResyModel):
    start: LocalDateTime
    end: LocalDateTime | None = None


class SlotSize(ResyModel):
    min: int | None = None
    max: int | None = None


class MarketDate(ResyModel):
    on: int | None = None  # epoch seconds: when the slot was released (inferred)
    off: int | None = None


class Market(ResyModel):
    date: MarketDate | None = None


class SlotPayment(ResyModel):
    is_paid: bool | None = None
    cancellation_fee: float | None = None
    deposit_fee: float | None = None


class Exclusive(ResyModel):
    id: int | None = None
    is_eligible: bool | None = None


class Slot(ResyModel):
    """One bookable time at a venue."""

    config: SlotConfig
    date: SlotDate
    size: SlotSize | None = None
    quantity: int | None = None
    market: Market | None = None
    payment: SlotPayment | None = None
    is_global_dining_access: bool | None = None
    exclusive: Exclusive | None = None

    @property
    def restricted(self) -> str | None:
        """Why an ordinary account cannot book it (a capture-based client plan: "bookable
        (false if is_global_dining_access or exclusive.is_eligible is false)"), or None."""
        if self.is_global_dining_access:
            return "Global Dining Access only"
        if self.exclusive is not None and self.exclusive.is_eligible is False:
            return "exclusive: this account is not eligible"
        return None

    @property
    def starts_at(self) -> datetime:
        """Venue-local start, as Resy gives it."""
        return self.date.start

    @property
    def seating_type(self) -> str | None:
        return self.config.type


class Location(ResyModel):
    time_zone: str | None = None
    neighborhood: str | None = None
    url_slug: str | None = None
    code: str | None = None
    name: str | None = None


class FindVenue(ResyModel):
    id: ResyId
    name: str
    type: str | None = None  # cuisine
    url_slug: str | None = None
    price_range: int | None = None
    rating: Annotated[Rating | None, BeforeValidator(_rating)] = None
    location: Location | None = None
    feature_recaptcha: bool | None = None  # booking it needs a reCAPTCHA token


class FindEntry(ResyModel):
    venue: FindVenue
    slots: list[Slot] = Field(default_factory=list)


class FindResults(ResyModel):
    venues: list[FindEntry] = Field(default_factory=list)


class FindResponse(ResyModel):
    """`/4/find`: one entry per venue (usually exactly one), each with its slots."""

    results: FindResults = Field(default_factory=FindResults)

    @property
    def slots(self) -> list[Slot]:
        """Every entry's slots, each bookable slot once (see `distinct_slots`)."""
        return distinct_slots(slot for entry in self.results.venues for slot in entry.slots)

    def entry_for(self, venue_id: int) -> FindEntry | None:
        """The entry of the venue asked for: another venue's entry is never its slots."""
        return next((e for e in self.results.venues if e.venue.id == venue_id), None)

    def slots_at(self, venue_id: int) -> list[Slot]:
        """The asked venue's slots, each bookable slot once."""
        entry = self.entry_for(venue_id)
        return distinct_slots(entry.slots) if entry is not None else []


def distinct_slots(slots: Iterable[Slot]) -> list[Slot]:
    """One slot per config token, first seen kept: Resy lists a slot once per table (several
    `config.id`s) with one token, and a token books once (a capture-based client plan:
    "Dedupe slots by config_token")."""
    seen: set[str] = set()
    kept: list[Slot] = []
    for slot in slots:
        if slot.config.token not in seen:
            seen.add(slot.config.token)
            kept.append(slot)
    return kept


class BookToken(ResyModel):
    value: str
    date_expires: datetime | None = None


class PaymentMethod(ResyModel):
    id: int
    is_default: bool | None = None
    display: str | None = None
    type: str | None = None


class DetailsUser(ResyModel):
    payment_methods: list[PaymentMethod] = Field(default_factory=list)


class CancellationFee(ResyModel):
    amount: float | None = None
    # When a cancel starts to cost the fee. Kept as Resy's text: its format is seen in few
    # public samples, and a list must not fail on it (parsed leniently where used).
    date_cut_off: str | None = None
    applies: bool | None = None  # on reservations: whether the fee applies at all


class Cancellation(ResyModel):
    fee: CancellationFee | None = None


class PaymentAmounts(ResyModel):
    total: float | None = None


class PaymentConfig(ResyModel):
    type: str | None = None  # "free" when nothing is charged


class DetailsPayment(ResyModel):
    amounts: PaymentAmounts | None = None
    config: PaymentConfig | None = None


class DetailsResponse(ResyModel):
    """`/3/details`: the book token plus the quote (fees) and the user's cards. A venue that
    asks for a captcha answers without a book token (a 2026 public booking script)."""

    book_token: BookToken | None = None
    user: DetailsUser | None = None
    cancellation: Cancellation | None = None
    payment: DetailsPayment | None = None

    @property
    def total(self) -> float:
        amounts = self.payment.amounts if self.payment else None
        return (amounts.total if amounts else None) or 0.0

    @property
    def cancellation_fee(self) -> float:
        fee = self.cancellation.fee if self.cancellation else None
        return (fee.amount if fee else None) or 0.0


class BookResponse(ResyModel):
    resy_token: str | None = None
    reservation_id: int | None = None


class CalendarInventory(ResyModel):
    reservation: str | None = None  # available | sold-out | closed | not available


class CalendarDay(ResyModel):
    date: date
    inventory: CalendarInventory = Field(default_factory=CalendarInventory)


class CalendarResponse(ResyModel):
    """`/4/venue/calendar`: per-day inventory up to the booking horizon."""

    last_calendar_day: date | None = None
    scheduled: list[CalendarDay] = Field(default_factory=list)


class VenueConfigVenue(ResyModel):
    name: str | None = None
    min_party_size: int | None = None
    max_party_size: int | None = None


class VenueConfigResponse(ResyModel):
    """`/2/config`: how many days ahead the venue takes bookings."""

    lead_time_in_days: int | None = None
    venue: VenueConfigVenue | None = None


class Locale(ResyModel):
    time_zone: str | None = None
    currency: str | None = None


class VenueResponse(ResyModel):
    """`/3/venue?id=`: the venue's own record."""

    id: ResyId
    name: str
    url_slug: str | None = None
    location: Location | None = None
    locale: Locale | None = None
    feature_recaptcha: bool | None = None

    @property
    def time_zone(self) -> str | None:
        return (self.locale.time_zone if self.locale else None) or (
            self.location.time_zone if self.location else None
        )


class SlotConfigRef(TypedDict):
    token: str
    type: NotRequired[str | None]


class SlotDateRef(TypedDict):
    start: str  # venue-local "YYYY-MM-DD HH:MM:SS"


class ExclusiveRef(TypedDict):
    is_eligible: NotRequired[bool | None]


class SlotRef(TypedDict):
    """A slot in search results as the reference reading keeps it (the client reads pages
    into `search_page.SearchSlot`, the same fields)."""

    config: SlotConfigRef
    date: SlotDateRef
    is_global_dining_access: NotRequired[bool | None]
    exclusive: NotRequired[ExclusiveRef | None]


class GeoLoc(ResyModel):
    lat: float | None = None
    lng: float | None = None


class HitAvailability(ResyModel):
    # `slots: null` is read as no slots (paystub-service guards with `or []`).
    slots: Annotated[list[SlotRef], BeforeValidator(lambda v: [] if v is None else v)] = Field(
        default_factory=list
    )


class SearchHit(ResyModel):
    """A venue in `/3/venuesearch/search` results, with its slots when availability is on."""

    id: ResyId
    name: str
    url_slug: str | None = None
    neighborhood: str | None = None
    locality: str | None = None  # the city, e.g. "New York"
    cuisine: list[str] = Field(default_factory=list)
    rating: Annotated[Rating | None, BeforeValidator(_rating)] = None
    price_range_id: int | None = None
    geoloc: GeoLoc | None = Field(default=None, alias="_geoloc")
    location: Location | None = None
    availability: HitAvailability | None = None

    @field_validator("cuisine", mode="before")
    @classmethod
    def _cuisine_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @property
    def slots(self) -> list[SlotRef]:
        return self.availability.slots if self.availability else []


class Pagination(ResyModel):
    total_pages: int | None = None
    total: int | None = None  # hits in all pages


class SearchResults(ResyModel):
    hits: list[SearchHit] = Field(default_factory=list)
    nbPages: int | None = None  # Resy's (Algolia's) spelling
    nbHits: int | None = None
    total_pages: int | None = None
    pagination: Pagination | None = None


class SearchResponse(ResyModel):
    """`/3/venuesearch/search`. Resy has put the page count in several places (RESY_API.md
    §5.5): `total_pages` takes whichever is there.

    The reference reading of a search page: the client reads pages with `search_page`
    (msgspec, several times faster on a page of a thousand slots), and the tests hold that
    reading to this one's results on every shape they know."""

    search: SearchResults
    meta: Pagination | None = None
    total_pages_top: int | None = Field(default=None, alias="total_pages")

    @property
    def total_pages(self) -> int | None:
        candidates = (
            self.meta.total_pages if self.meta else None,
            self.search.nbPages,
            self.search.total_pages,
            self.search.pagination.total_pages if self.search.pagination else None,
            self.total_pages_top,
        )
        return next((c for c in candidates if c is not None), None)

    @property
    def total_hits(self) -> int | None:
        candidates = (self.meta.total if self.meta else None, self.search.nbHits)
        return next((c for c in candidates if c is not None), None)


class User(ResyModel):
    """`/2/user` (and the login response): who the token belongs to."""

    id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    em_address: str | None = None
    payment_method_id: int | None = None
    payment_methods: list[PaymentMethod] = Field(default_factory=list)

    @property
    def default_payment_method_id(self) -> int | None:
        if self.payment_method_id:
            return self.payment_method_id
        ranked = sorted(self.payment_methods, key=lambda method: not method.is_default)
        return ranked[0].id if ranked else None


class LoginResponse(User):
    token: str


class TokenResponse(ResyModel):
    """`/4/auth/password` and `/3/auth/refresh`: `{token}` (the cookie comes as a header)."""

    token: str


class ReservationConfig(ResyModel):
    type: str | None = None


class ReservationCancellation(Cancellation):
    allowed: bool | None = None  # False: Resy will not cancel it (a past reservation)


class Reservation(ResyModel):
    """An entry of `/3/user/reservations`."""

    reservation_id: int
    resy_token: str | None = None
    day: date
    time_slot: str | None = None  # HH:MM:SS, venue-local
    num_seats: int | None = None
    venue_id: ResyId | None = Field(default=None, alias="venue")
    config: ReservationConfig | None = None
    cancellation: ReservationCancellation | None = None
    venue_name: str | None = None  # filled from the response's `venues` map when present


class VenueName(ResyModel):
    name: str | None = None


class ReservationsResponse(ResyModel):
    reservations: list[Reservation] = Field(default_factory=list)
    venues: dict[str, VenueName] = Field(default_factory=dict)
