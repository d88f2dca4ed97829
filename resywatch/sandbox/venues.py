"""The sandbox's venue catalogue: real hard-to-get New York names plus seeded filler venues.

The famous venues keep fixed ids and drop policies whatever the seed, so a curated list of
hard-to-get venues can name them; everything else (the filler venues, their attributes) is a
pure function of the seed.
"""

from __future__ import annotations

import functools
import random
import re
import unicodedata
from dataclasses import dataclass

#: Manhattan as the discovery default searches it: south, west, north, east.
MANHATTAN_BBOX = (40.691, -74.030, 40.882, -73.910)

NEW_YORK_TZ = "America/New_York"

LUNCH = 1
DINNER = 2
SERVICE_NAMES = {LUNCH: ("lunch", "Lunch"), DINNER: ("dinner", "Dinner")}


@dataclass(frozen=True, slots=True)
class Seating:
    """A table type ("Dining Room", "Bar"...): the party sizes it takes and tables per time."""

    name: str
    min_size: int
    max_size: int
    tables: int


@dataclass(frozen=True, slots=True)
class Service:
    """A service period: start and last seating in minutes after local midnight, step, turn."""

    type_id: int
    start_min: int
    last_min: int
    step_min: int
    turn_min: int


@dataclass(frozen=True, slots=True)
class Venue:
    id: int
    name: str
    url_slug: str
    neighborhood: str
    cuisine: tuple[str, ...]
    price_range: int
    rating_average: float
    rating_count: int
    lat: float
    lng: float
    address: str
    postal_code: str
    time_zone: str
    lead_time_days: int
    release_min: int
    #: "hot" venues sell out within seconds of a release, "warm" over days, "cool" rarely.
    popularity: str
    payment_required: bool
    cannot_take_payment: bool
    min_party_size: int
    max_party_size: int
    seatings: tuple[Seating, ...]
    services: tuple[Service, ...]
    #: Weekdays (Monday = 0) the venue is closed.
    closed_weekdays: frozenset[int]
    walk_in: bool

    @property
    def in_manhattan_bbox(self) -> bool:
        south, west, north, east = MANHATTAN_BBOX
        return south <= self.lat <= north and west <= self.lng <= east


# Neighbourhood -> (lat, lng, postal code). The Brooklyn ones from Park Slope on lie south of
# the Manhattan box.
_NEIGHBORHOODS: dict[str, tuple[float, float, str]] = {
    "West Village": (40.7358, -74.0036, "10014"),
    "Greenwich Village": (40.7336, -73.9990, "10012"),
    "East Village": (40.7265, -73.9815, "10009"),
    "SoHo": (40.7233, -74.0030, "10012"),
    "Tribeca": (40.7163, -74.0086, "10013"),
    "Nolita": (40.7230, -73.9950, "10012"),
    "Lower East Side": (40.7150, -73.9843, "10002"),
    "Two Bridges": (40.7115, -73.9935, "10002"),
    "Financial District": (40.7075, -74.0113, "10004"),
    "Chelsea": (40.7465, -74.0014, "10011"),
    "Flatiron": (40.7411, -73.9897, "10010"),
    "NoMad": (40.7450, -73.9880, "10016"),
    "Gramercy": (40.7368, -73.9845, "10003"),
    "Midtown": (40.7549, -73.9840, "10019"),
    "Hell's Kitchen": (40.7638, -73.9918, "10036"),
    "Upper West Side": (40.7870, -73.9754, "10024"),
    "Upper East Side": (40.7736, -73.9566, "10021"),
    "Harlem": (40.8116, -73.9465, "10027"),
    "Williamsburg": (40.7141, -73.9571, "11211"),
    "Park Slope": (40.6710, -73.9814, "11215"),
    "Prospect Heights": (40.6775, -73.9692, "11238"),
    "Carroll Gardens": (40.6795, -73.9991, "11231"),
    "Crown Heights": (40.6694, -73.9422, "11225"),
    "Downtown Brooklyn": (40.6900, -73.9870, "11201"),
    "Fort Greene": (40.6892, -73.9742, "11217"),
}
_OUTSIDE = ("Park Slope", "Prospect Heights", "Carroll Gardens", "Crown Heights")

# name|id|neighborhood|cuisine|lat|lng|lead days|release time|price|popularity|flag, where flag
# "card" = a card is required (402 without one), "nopay" = cannot take payment (403).
_FAMOUS_TABLE = """
Carbone|6194|Greenwich Village|Italian|40.7279|-74.0003|30|10:00|4|hot|card
Don Angie|1505|West Village|Italian|40.7377|-74.0025|7|09:00|3|hot|
Via Carota|2567|West Village|Italian|40.7334|-74.0035|30|10:00|3|hot|
Lilia|418|Williamsburg|Italian|40.7176|-73.9525|28|10:00|3|hot|
Torrisi|64593|Nolita|Italian|40.7236|-73.9951|30|10:00|4|hot|card
4 Charles Prime Rib|834|West Village|Steakhouse|40.7356|-74.0003|21|09:00|4|hot|card
Tatiana|65452|Upper West Side|American|40.7725|-73.9835|28|12:00|3|hot|
Cote|72271|Flatiron|Korean|40.7414|-73.9906|30|10:00|4|hot|
I Sodi|443|West Village|Italian|40.735|-74.006|30|00:00|3|hot|
Monkey Bar|59072|Midtown|American|40.7587|-73.9736|28|10:00|4|hot|
Rezdôra|5769|Flatiron|Italian|40.7387|-73.9898|28|09:00|3|hot|
Double Chicken Please|42534|Lower East Side|Cocktail Bar|40.7199|-73.9888|7|11:00|2|hot|nopay
Le Bernardin|1387|Midtown|Seafood|40.7615|-73.9818|30|00:00|4|hot|card
Sushi Noz|4224|Upper East Side|Japanese|40.7717|-73.9568|30|10:00|4|hot|card
Dame|51411|West Village|Seafood|40.734|-74.0001|21|09:00|3|hot|
The Four Horsemen|2492|Williamsburg|Wine Bar|40.7128|-73.957|30|07:00|3|hot|
Semma|1263|West Village|Indian|40.7338|-74.0026|15|09:00|3|hot|
Laser Wolf|58848|Williamsburg|Israeli|40.7219|-73.9585|21|10:00|3|hot|
Misi|3015|Williamsburg|Italian|40.7156|-73.966|30|10:00|3|hot|
Au Cheval|25971|Tribeca|American|40.7166|-74.006|14|10:00|2|warm|nopay
Raoul's|7241|SoHo|French|40.7262|-74.0027|14|00:00|3|warm|
Polo Bar|10291|Midtown|American|40.7616|-73.9745|30|10:00|4|hot|card
Bemelmans Bar|7490|Upper East Side|Cocktail Bar|40.7744|-73.9636|30|00:00|3|hot|nopay
Minetta Tavern|9846|Greenwich Village|French|40.7302|-74.0005|30|10:00|3|hot|
Balthazar|3251|SoHo|French|40.7226|-73.9982|30|00:00|3|warm|
Atomix|6918|NoMad|Korean|40.7445|-73.9836|30|14:00|4|hot|card
Estela|1089|Nolita|American|40.7245|-73.9945|14|09:00|3|hot|
Thai Diner|36236|Nolita|Thai|40.7208|-73.9963|14|10:00|2|hot|
Golden Diner|35676|Two Bridges|American|40.7135|-73.992|14|10:00|1|warm|
Cafe Carmellini|79460|NoMad|Italian|40.7443|-73.9887|28|10:00|4|hot|
Frenchette|6033|Tribeca|French|40.7198|-74.0098|30|10:00|3|hot|
Le Coucou|3425|SoHo|French|40.7194|-74.001|28|10:00|4|warm|
L'Artusi|25|West Village|Italian|40.7338|-74.0054|14|09:00|3|hot|
Roscioli NYC|77218|SoHo|Italian|40.7263|-74.0034|30|10:00|3|hot|
Ci Siamo|64431|Hell's Kitchen|Italian|40.7543|-73.9992|28|10:00|3|warm|
Claud|69020|East Village|French|40.7296|-73.9872|14|10:00|3|hot|
Sartiano's|71010|SoHo|Italian|40.7243|-74.0048|30|10:00|4|hot|card
Bonnie's|50480|Williamsburg|Cantonese|40.7147|-73.9544|14|10:00|2|hot|
King|7019|SoHo|Mediterranean|40.7267|-74.0049|14|00:00|3|hot|
Gramercy Tavern|4876|Flatiron|American|40.7385|-73.9885|28|10:00|4|warm|
Gage & Tollner|57342|Downtown Brooklyn|Seafood|40.6903|-73.9876|30|10:00|3|warm|
Ugly Baby|50930|Carroll Gardens|Thai|40.683|-73.998|14|10:00|2|hot|
Olmsted|1467|Prospect Heights|American|40.6773|-73.9686|30|10:00|3|warm|
Kabawa|74031|East Village|Caribbean|40.7251|-73.9915|28|10:00|3|hot|
Bungalow|76554|East Village|Indian|40.7266|-73.9877|14|12:00|3|hot|
Le Veau d'Or|78112|Upper East Side|French|40.7640|-73.9673|30|10:00|4|hot|card
Sailor|77590|Fort Greene|American|40.6866|-73.9746|28|10:00|3|hot|
Corner Bar|73498|Two Bridges|Seafood|40.7141|-73.9907|14|10:00|3|hot|
Dhamaka|23454|Lower East Side|Indian|40.7188|-73.9888|30|10:00|3|hot|
"""


_PREFIX_CUISINE = {
    "Trattoria": "Italian",
    "Osteria": "Italian",
    "Maison": "French",
    "Chez": "French",
    "Brasserie": "French",
    "Izakaya": "Japanese",
    "Sushi": "Japanese",
    "Cantina": "Mexican",
    "Taverna": "Greek",
    "Casa": "Spanish",
}
_WORDS = (
    "Olive",
    "Juniper",
    "Saffron",
    "Wren",
    "Heron",
    "Marlow",
    "Ember",
    "Fennel",
    "Larkin",
    "Cobalt",
    "Harbor",
    "Linden",
    "Quince",
    "Sorrel",
    "Tamarind",
    "Basil",
    "Clementine",
    "Hazel",
    "Indigo",
    "Magnolia",
    "Nettle",
    "Orchard",
    "Pike",
    "Rye",
    "Sable",
    "Thistle",
    "Vesper",
    "Willow",
    "Yuzu",
    "Zinnia",
    "Anise",
    "Birch",
    "Cedar",
    "Dune",
    "Elder",
    "Fig",
    "Ginger",
    "Hollis",
    "Iris",
    "Jasper",
    "Kestrel",
    "Lupine",
    "Mulberry",
    "Nori",
    "Oyster",
    "Pepper",
    "Quill",
    "Rosemary",
    "Sumac",
    "Tarragon",
    "Umber",
    "Violet",
    "Walnut",
    "Bramble",
    "Cardamom",
    "Delancey",
    "Esther",
    "Falcon",
    "Greene",
    "Hudson",
    "Ludlow",
    "Mercer",
    "Orchid",
)
_SUFFIXES = (
    "Kitchen",
    "Room",
    "House",
    "Tavern",
    "Social",
    "& Co.",
    "Supper Club",
    "Wine Bar",
    "Grill",
    "Noodle Bar",
    "Oyster Bar",
)
_CUISINES = (
    "American",
    "New American",
    "Seafood",
    "Steakhouse",
    "Mediterranean",
    "Korean",
    "Chinese",
    "Thai",
    "Indian",
    "Vietnamese",
    "Italian",
    "French",
    "Japanese",
    "Mexican",
    "Wine Bar",
    "Cocktail Bar",
)
_STREETS = (
    "Bleecker St",
    "Hudson St",
    "Spring St",
    "Mott St",
    "Orchard St",
    "W 10th St",
    "E 7th St",
    "Broadway",
    "Lafayette St",
    "Grand St",
    "Amsterdam Ave",
    "Lexington Ave",
    "Bedford Ave",
    "Court St",
)
_BAR_NAMES = {"Cocktail Bar", "Wine Bar"}


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower().replace("'", "")).strip("-")


def _hhmm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _seatings(
    rng: random.Random, cuisine: str, max_party: int, popularity: str
) -> tuple[Seating, ...]:
    tables_hi = {"hot": 2, "warm": 3, "cool": 4}[popularity]
    if cuisine in _BAR_NAMES:
        return (
            Seating("Bar", 1, 2, rng.randint(1, tables_hi)),
            Seating("Lounge", 2, min(4, max_party), rng.randint(1, tables_hi)),
        )
    seatings = [Seating("Dining Room", 2, max_party, rng.randint(1, tables_hi))]
    extras = [
        Seating("Bar", 1, 2, rng.randint(1, tables_hi)),
        Seating("Patio", 2, 4, rng.randint(1, tables_hi)),
        Seating("Counter", 1, 2, rng.randint(1, tables_hi)),
        Seating("Outdoor Dining", 2, 4, rng.randint(1, tables_hi)),
    ]
    seatings.extend(rng.sample(extras, rng.choice((0, 1, 1, 2))))
    return tuple(seatings)


def _services(rng: random.Random) -> tuple[Service, ...]:
    dinner = Service(
        DINNER,
        start_min=rng.choice((17 * 60, 17 * 60 + 30, 18 * 60)),
        last_min=rng.choice((21 * 60 + 30, 22 * 60, 22 * 60 + 30, 23 * 60)),
        step_min=rng.choice((15, 30, 30)),
        turn_min=rng.choice((90, 105, 120)),
    )
    if rng.random() < 0.25:
        lunch = Service(LUNCH, 11 * 60 + 30, 14 * 60 + 30, 30, 75)
        return (lunch, dinner)
    return (dinner,)


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """What a catalogue row fixes about a venue; `_venue` draws the rest from the seed."""

    venue_id: int
    name: str
    neighborhood: str
    cuisine: str
    lat: float
    lng: float
    lead: int
    release_min: int
    price: int
    popularity: str
    #: "card" = a card is required (402 without one), "nopay" = cannot take payment (403).
    flag: str
    time_zone: str = NEW_YORK_TZ


def _venue(rng: random.Random, spec: VenueSpec) -> Venue:
    max_party = rng.choice((4, 6, 6, 8, 8, 10))
    if spec.popularity == "hot":
        rating = round(rng.uniform(4.5, 4.98), 2)
        count = rng.randint(2000, 15000)
    else:
        rating = round(rng.uniform(3.8, 4.8), 2)
        count = rng.randint(80, 4000)
    closed: frozenset[int] = frozenset()
    roll = rng.random()
    if roll < 0.3:
        closed = frozenset({0})
    elif roll < 0.4:
        closed = frozenset({0, 6})
    return Venue(
        id=spec.venue_id,
        name=spec.name,
        url_slug=slugify(spec.name),
        neighborhood=spec.neighborhood,
        cuisine=(spec.cuisine,),
        price_range=spec.price,
        rating_average=rating,
        rating_count=count,
        lat=round(spec.lat, 6),
        lng=round(spec.lng, 6),
        address=f"{rng.randint(1, 399)} {rng.choice(_STREETS)}",
        postal_code=_NEIGHBORHOODS[spec.neighborhood][2],
        time_zone=spec.time_zone,
        lead_time_days=spec.lead,
        release_min=spec.release_min,
        popularity=spec.popularity,
        payment_required=spec.flag == "card",
        cannot_take_payment=spec.flag == "nopay",
        min_party_size=1,
        max_party_size=max_party,
        seatings=_seatings(rng, spec.cuisine, max_party, spec.popularity),
        services=_services(rng),
        closed_weekdays=closed,
        walk_in=rng.random() < 0.4,
    )


def _filler_name(rng: random.Random, taken: set[str]) -> tuple[str, str]:
    while True:
        form = rng.random()
        if form < 0.35:
            prefix = rng.choice(sorted(_PREFIX_CUISINE))
            name, cuisine = f"{prefix} {rng.choice(_WORDS)}", _PREFIX_CUISINE[prefix]
        elif form < 0.85:
            name, cuisine = f"{rng.choice(_WORDS)} {rng.choice(_SUFFIXES)}", rng.choice(_CUISINES)
        else:
            name, cuisine = f"The {rng.choice(_WORDS)}", rng.choice(_CUISINES)
        if name.endswith("Wine Bar"):
            cuisine = "Wine Bar"
        if name not in taken and slugify(name) not in {slugify(t) for t in taken}:
            return name, cuisine


@functools.lru_cache(maxsize=8)
def build_venues(seed: int, count: int) -> tuple[Venue, ...]:
    """``count`` venues: the famous ones first (as many as fit), then seeded filler venues.

    Cached: venues are immutable, and tests build many sandboxes from the same seed.
    """
    rng = random.Random(seed)
    venues: list[Venue] = []
    for row in _FAMOUS_TABLE.strip().splitlines()[:count]:
        name, f_id, f_hood, f_cuisine, f_lat, f_lng, lead, release, price, pop, f_flag = row.split(
            "|"
        )
        venues.append(
            _venue(
                random.Random(f"{seed}:{f_id}"),
                VenueSpec(
                    venue_id=int(f_id),
                    name=name,
                    neighborhood=f_hood,
                    cuisine=f_cuisine,
                    lat=float(f_lat),
                    lng=float(f_lng),
                    lead=int(lead),
                    release_min=_hhmm(release),
                    price=int(price),
                    popularity=pop,
                    flag=f_flag,
                ),
            )
        )
    names = {v.name for v in venues}
    ids = {v.id for v in venues}
    south, west, north, east = MANHATTAN_BBOX
    inside = [
        h
        for h, (lat, lng, _) in _NEIGHBORHOODS.items()
        if south <= lat <= north and west <= lng <= east
    ]
    while len(venues) < count:
        venue_id = rng.randint(80_000, 99_999)
        if venue_id in ids:
            continue
        name, cuisine = _filler_name(rng, names)
        outside = rng.random() < 0.02
        hood = rng.choice(_OUTSIDE if outside else inside)
        center_lat, center_lng, _ = _NEIGHBORHOODS[hood]
        lat = center_lat + rng.uniform(-0.004, 0.004)
        lng = center_lng + rng.uniform(-0.004, 0.004)
        if not outside:
            lat = min(max(lat, south + 0.001), north - 0.001)
            lng = min(max(lng, west + 0.001), east - 0.001)
        roll = rng.random()
        popularity = "hot" if roll < 0.1 else "warm" if roll < 0.4 else "cool"
        flag_roll = rng.random()
        flag = "card" if flag_roll < 0.08 else "nopay" if flag_roll < 0.11 else ""
        venues.append(
            _venue(
                rng,
                VenueSpec(
                    venue_id=venue_id,
                    name=name,
                    neighborhood=hood,
                    cuisine=cuisine,
                    lat=lat,
                    lng=lng,
                    lead=rng.choice((7, 14, 14, 21, 28, 30)),
                    release_min=rng.choice((0, 9 * 60, 9 * 60, 10 * 60, 10 * 60, 12 * 60)),
                    price=rng.choice((1, 2, 2, 3, 3, 4)),
                    popularity=popularity,
                    flag=flag,
                    # A few venues carry the 2018-style zone name; it is the same zone.
                    time_zone="EST5EDT" if rng.random() < 0.05 else NEW_YORK_TZ,
                ),
            )
        )
        names.add(name)
        ids.add(venue_id)
    return tuple(venues)
