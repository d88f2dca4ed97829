"""What the drop history says about each venue, and the boards built on it.

Per venue, over the last WINDOW_DAYS (or as long as discovery has been watching, if less):
drops per week, the median time a drop stays open, its open share (the share of the watched
time with at least one of its drops open: the share of scans that found it with a slot) and
rarity (1 − open share), and the trend of the last TREND_DAYS against the whole window.

Everything is aggregated in SQL (one row per venue comes back), portably: window functions
and a seconds-between expression that SQLite and PostgreSQL each spell their own way. The
open time is the union of a venue's drop intervals (gaps and islands), so two slots open at
once count once.

`top` ranks venues by how rarely they open and how fast their drops close; `hot` is what
opened in the last minutes at venues that rarely open.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Float, case, func, literal, or_
from sqlalchemy import select as core_select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col, select
from sqlmodel.sql.sqltypes import UTCDateTime

from resywatch.db.models import DiscoveryBucket, DropEvent, Venue
from resywatch.services.curated import name_filter, normalize_name
from resywatch.services.discovery.board import open_drops, venue_day
from resywatch.services.discovery.filters import BoardFilter

WINDOW_DAYS = 30
TREND_DAYS = 7
TREND_STEADY = 0.25  # within ±25% of the window's rate, a trend is "steady"
FAST_CLOSE_S = 600.0  # a median open time of 10 minutes halves the speed factor
UNKNOWN_SPEED = 0.5  # no drop has closed yet: neither fast nor slow


class seconds_between(FunctionElement[float]):
    """`seconds_between(a, b)`: b − a in seconds, as a float, on SQLite and PostgreSQL."""

    type = Float()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({b}) - julianday({a})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({b} - {a}))"


@dataclass(frozen=True)
class VenueMetrics:
    venue_id: int
    venue_name: str
    neighborhood: str | None
    is_hotspot: bool
    drops_30d: int  # drops opened in the window (WINDOW_DAYS, or since watching began)
    drops_7d: int
    drops_per_week: float
    median_open_s: float | None  # of the drops that have closed
    closed_drops: int
    open_share: float  # share of the watched time with any of its drops open
    rarity: float  # 1 − open_share: 1 = never seen open
    trend: float | None  # last 7 days' rate against the window's, −1..; None: too little history
    trend_label: str  # rising, steady, falling, or "new" with under TREND_DAYS of history
    last_drop_at: datetime
    observed_days: float  # how long the window looked (at least one day)
    score: float  # 0..100: rarity × how fast drops close; `top` ranks by it


@dataclass(frozen=True)
class HotEntry:
    """One venue on one date that just opened, with why it is rare."""

    date: date
    venue_id: int
    venue_name: str
    neighborhood: str | None
    times: list[str]
    party_sizes: list[int]
    is_hotspot: bool
    opened_at: datetime
    url: str | None
    rarity: float
    score: float
    drops_per_week: float
    median_open_s: float | None


def venue_metrics(
    session: Session, now: datetime, venue_ids: Collection[int] | None = None
) -> dict[int, VenueMetrics]:
    """The metrics of every venue with a drop in the window (or only of `venue_ids`)."""
    window_start = now - timedelta(days=WINDOW_DAYS)
    since = _watched_since(session, now, window_start)
    observed_days = max(1.0, (now - since) / timedelta(days=1))
    ids = None if venue_ids is None else sorted(set(venue_ids))
    counts = _counts(session, now, window_start, ids)
    if not counts:
        return {}
    medians = _medians(session, window_start, ids)
    open_s = _open_seconds(session, now, since, ids)
    venues = {v.id: v for v in session.exec(select(Venue).where(col(Venue.id).in_(list(counts))))}
    found = {}
    for venue_id, (total, recent, last, name, hotspot) in counts.items():
        median, closed = medians.get(venue_id, (None, 0))
        share = min(1.0, open_s.get(venue_id, 0.0) / (observed_days * 86_400))
        trend = _trend(total, recent, observed_days)
        venue = venues.get(venue_id)
        found[venue_id] = VenueMetrics(
            venue_id=venue_id,
            venue_name=venue.name if venue else name,
            neighborhood=venue.neighborhood if venue else None,
            is_hotspot=hotspot,
            drops_30d=total,
            drops_7d=recent,
            drops_per_week=round(total / observed_days * 7, 2),
            median_open_s=median,
            closed_drops=closed,
            open_share=round(share, 4),
            rarity=round(1 - share, 4),
            trend=None if trend is None else round(trend, 3),
            trend_label=_trend_label(trend, observed_days),
            last_drop_at=last,
            observed_days=round(observed_days, 2),
            score=_score(1 - share, median),
        )
    return found


def top(
    session: Session,
    now: datetime,
    *,
    limit: int = 20,
    hotspots_only: bool = False,
    venue: str | None = None,
) -> list[VenueMetrics]:
    """Venues ranked by score (rare and fast-closing first), then by fewer drops a week."""
    wanted = name_filter(venue) if venue is not None else None
    ranked = [
        m
        for m in venue_metrics(session, now).values()
        if (not hotspots_only or m.is_hotspot)
        and (not wanted or wanted in normalize_name(m.venue_name))
    ]
    ranked.sort(key=lambda m: (-m.score, m.drops_per_week, m.venue_name))
    return ranked[:limit]


def hot(
    session: Session,
    where: BoardFilter,
    now: datetime,
    *,
    minutes: int,
    min_rarity: float,
    limit: int = 50,
) -> list[HotEntry]:
    """Still-open drops of the last `minutes` at venues whose rarity is at least
    `min_rarity`, one entry per venue per date, the highest score first."""
    recent = open_drops(session, where, now, opened_since=now - timedelta(minutes=minutes))
    metrics = venue_metrics(session, now, {d.venue_id for d in recent})
    grouped: dict[tuple[date, int], list[Any]] = {}
    for drop in recent:
        if drop.venue_id in metrics and metrics[drop.venue_id].rarity >= min_rarity:
            grouped.setdefault((drop.slot_date, drop.venue_id), []).append(drop)
    entries = []
    for (day, venue_id), drops in grouped.items():
        entry, m = venue_day(day, drops), metrics[venue_id]
        entries.append(
            HotEntry(
                date=day,
                venue_id=venue_id,
                venue_name=entry.venue_name,
                neighborhood=entry.neighborhood,
                times=entry.times,
                party_sizes=entry.party_sizes,
                is_hotspot=entry.is_hotspot,
                opened_at=entry.last_opened_at,
                url=entry.url,
                rarity=m.rarity,
                score=m.score,
                drops_per_week=m.drops_per_week,
                median_open_s=m.median_open_s,
            )
        )
    entries.sort(key=lambda e: (-e.score, -e.opened_at.timestamp(), e.date, e.venue_name))
    return entries[:limit]


def _score(rarity: float, median_open_s: float | None) -> float:
    speed = UNKNOWN_SPEED if median_open_s is None else 1 / (1 + median_open_s / FAST_CLOSE_S)
    return round(100 * rarity * speed, 1)


def _trend(total: int, recent: int, observed_days: float) -> float | None:
    """The last TREND_DAYS' daily rate against the window's, as a change (+0.5 = half as
    many again); None until the window is longer than TREND_DAYS."""
    if observed_days <= TREND_DAYS or total == 0:
        return None
    return (recent / TREND_DAYS) / (total / observed_days) - 1


def _trend_label(trend: float | None, observed_days: float) -> str:
    if trend is None:
        return "new" if observed_days <= TREND_DAYS else "none"
    if trend >= TREND_STEADY:
        return "rising"
    return "falling" if trend <= -TREND_STEADY else "steady"


def _watched_since(session: Session, now: datetime, window_start: datetime) -> datetime:
    """When the window's evidence begins: the first baseline or drop, at most WINDOW_DAYS
    back (both are indexed or small: no scan of the history)."""
    first_drop = session.exec(
        select(func.min(DropEvent.opened_at)).where(col(DropEvent.opened_at) >= window_start)
    ).one()
    first_baseline = session.exec(select(func.min(DiscoveryBucket.baselined_at))).one()
    known = [m for m in (first_drop, first_baseline) if m is not None]
    return max(window_start, min(known, default=now))


def _of(ids: list[int] | None) -> list[ColumnElement[bool]]:
    """The condition that keeps only these venues' drops (none: every venue)."""
    return [] if ids is None else [col(DropEvent.venue_id).in_(ids)]


def _counts(
    session: Session, now: datetime, window_start: datetime, ids: list[int] | None
) -> dict[int, tuple[int, int, datetime, str, bool]]:
    recent = now - timedelta(days=TREND_DAYS)
    query = (
        core_select(
            col(DropEvent.venue_id),
            func.count(),
            func.sum(case((col(DropEvent.opened_at) >= recent, 1), else_=0)),
            func.max(DropEvent.opened_at),
            func.max(DropEvent.venue_name),
            func.max(case((col(DropEvent.is_hotspot), 1), else_=0)),
        )
        .where(col(DropEvent.opened_at) >= window_start, *_of(ids))
        .group_by(col(DropEvent.venue_id))
    )
    return {
        venue_id: (total, int(recent_count or 0), last, name, bool(hotspot))
        for venue_id, total, recent_count, last, name, hotspot in session.execute(query)
    }


def _medians(
    session: Session, window_start: datetime, ids: list[int] | None
) -> dict[int, tuple[float, int]]:
    """The median open time of each venue's closed drops: the middle row (or the mean of
    the middle two) by row number, which both databases number the same way."""
    ranked = (
        core_select(
            col(DropEvent.venue_id).label("venue_id"),
            col(DropEvent.duration_s).label("duration"),
            func.row_number()
            .over(partition_by=col(DropEvent.venue_id), order_by=col(DropEvent.duration_s))
            .label("rn"),
            func.count().over(partition_by=col(DropEvent.venue_id)).label("n"),
        )
        .where(
            col(DropEvent.opened_at) >= window_start,
            col(DropEvent.closed_at).is_not(None),
            col(DropEvent.duration_s).is_not(None),
            *_of(ids),
        )
        .subquery()
    )
    middle = or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
    query = (
        core_select(ranked.c.venue_id, func.avg(ranked.c.duration), func.max(ranked.c.n))
        .where(middle)
        .group_by(ranked.c.venue_id)
    )
    return {vid: (float(median), int(n)) for vid, median, n in session.execute(query)}


def _open_seconds(
    session: Session, now: datetime, since: datetime, ids: list[int] | None
) -> dict[int, float]:
    """Seconds since `since` during which each venue had at least one drop open: the
    union of its drop intervals, clipped to [since, now]."""
    start, end = literal(since, UTCDateTime()), literal(now, UTCDateTime())
    opened = seconds_between(start, DropEvent.opened_at)
    closed = seconds_between(start, func.coalesce(DropEvent.closed_at, end))
    span = (now - since).total_seconds()
    intervals = (
        core_select(
            col(DropEvent.venue_id).label("venue_id"),
            case((opened < 0, 0.0), else_=opened).label("s"),
            case((closed > span, span), else_=closed).label("e"),
        )
        .where(
            col(DropEvent.opened_at) < now,
            or_(col(DropEvent.closed_at).is_(None), col(DropEvent.closed_at) > since),
            *_of(ids),
        )
        .subquery()
    )
    order = (intervals.c.s, intervals.c.e)
    before = (
        func.max(intervals.c.e)
        .over(partition_by=intervals.c.venue_id, order_by=order, rows=(None, -1))
        .label("reach")
    )
    marked = core_select(intervals, before).subquery()
    begins: ColumnElement[int] = case(
        (or_(marked.c.reach.is_(None), marked.c.s > marked.c.reach), 1), else_=0
    )
    island = (
        func.sum(begins)
        .over(partition_by=marked.c.venue_id, order_by=(marked.c.s, marked.c.e), rows=(None, 0))
        .label("island")
    )
    numbered = core_select(marked.c.venue_id, marked.c.s, marked.c.e, island).subquery()
    lengths = (
        core_select(
            numbered.c.venue_id,
            (func.max(numbered.c.e) - func.min(numbered.c.s)).label("length"),
        )
        .group_by(numbered.c.venue_id, numbered.c.island)
        .subquery()
    )
    query = core_select(lengths.c.venue_id, func.sum(lengths.c.length)).group_by(lengths.c.venue_id)
    return {vid: max(0.0, float(total or 0)) for vid, total in session.execute(query)}
