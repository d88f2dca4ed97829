"""Fault injection (what an Imperva-fronted Resy does to clients) and per-route traffic records."""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections import Counter, deque
from email.utils import formatdate
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The rule under this key applies to every Resy route that has no rule of its own.
ANY_ROUTE = "*"

IMPERVA_HTML = (
    '<html style="height:100%"><head><META NAME="ROBOTS" CONTENT="NOINDEX, NOFOLLOW">'
    '<meta name="format-detection" content="telephone=no"></head>'
    '<body style="margin:0px;height:100%"><iframe id="main-iframe" '
    'src="/_Incapsula_Resource?CWUDNSAI=9&xinfo=0-0-0" frameborder=0 width="100%" height="100%">'
    "Request unsuccessful. Incapsula incident ID: {incident}</iframe></body></html>"
)


class FaultRule(BaseModel):
    """How one route misbehaves. Random choices come from an RNG seeded by (seed, route).

    - ``fail_next``: the next N requests answer ``fail_status`` (count-based, exact).
    - ``error_rate``: each request fails with that probability, with a status drawn from
      ``error_statuses``.
    - 5xx (and 403 outside `/3/book`) answer Imperva's HTML with ``X-Cdn: Imperva``; 429 answers
      JSON; on `/3/book`, 402/403/404/412 answer the booking error bodies.
    - ``answer="resy"`` makes every failure Resy's own JSON error instead of the firewall's
      page (a 502 from Resy means malformed input; one from Imperva is a challenge).
    - ``retry_after`` (seconds) is sent on 429 (default 1) and 503, as seconds or an HTTP-date.
    - ``latency_ms`` delays every answer. ``latency_model`` says where the route's own work
      falls in that delay: ``first`` (default), the whole delay, then the work, so answers
      to requests sent together are made one after another by the sandbox's one process;
      ``fleet``, the request reaches the route half-way and the answer leaves ``latency_ms``
      after it came, its work hidden in the way back (as Resy answers on many machines at
      once: concurrent answers do not wait for each other unless the work outlasts it).
    - ``drip_chunk_bytes``/``drip_interval_ms`` trickle the body out in chunks;
      ``require_browser_ua`` answers 500 to a missing or non-browser UA.
    """

    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    error_statuses: list[int] = Field(default_factory=lambda: [500, 502, 503], min_length=1)
    fail_next: int = Field(default=0, ge=0)
    fail_status: int = Field(default=503, ge=400, le=599)
    answer: Literal["firewall", "resy"] = "firewall"
    retry_after: float | None = Field(default=None, ge=0)
    retry_after_format: Literal["seconds", "http-date"] = "seconds"
    latency_ms: float = Field(default=0.0, ge=0)
    latency_model: Literal["first", "fleet"] = "first"
    drip_chunk_bytes: int = Field(default=0, ge=0)
    drip_interval_ms: float = Field(default=0.0, ge=0)
    require_browser_ua: bool = False


class FaultBook:
    """Rules per route plus their remaining ``fail_next`` counts and seeded RNGs."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._rules: dict[str, FaultRule] = {}
        self._remaining: dict[str, int] = {}
        self._rngs: dict[str, random.Random] = {}

    def set(self, route: str, rule: FaultRule) -> None:
        with self._lock:
            self._rules[route] = rule
            self._remaining[route] = rule.fail_next
            self._rngs[route] = random.Random(self._seed * 1_000_003 + zlib.crc32(route.encode()))

    def clear(self, route: str | None = None) -> None:
        with self._lock:
            for table in (self._rules, self._remaining, self._rngs):
                if route is None:
                    table.clear()
                else:
                    table.pop(route, None)

    def rule_for(self, route: str) -> tuple[str, FaultRule] | None:
        rules = self._rules
        if not rules:
            return None
        if route in rules:
            return route, rules[route]
        if ANY_ROUTE in rules:
            return ANY_ROUTE, rules[ANY_ROUTE]
        return None

    def draw_failure(self, key: str, rule: FaultRule) -> int | None:
        """The status this request must fail with, if any (consumes ``fail_next``)."""
        with self._lock:
            remaining = self._remaining.get(key, 0)
            if remaining > 0:
                self._remaining[key] = remaining - 1
                return rule.fail_status
            rng = self._rngs.get(key)
            if rule.error_rate > 0 and rng is not None and rng.random() < rule.error_rate:
                return rng.choice(rule.error_statuses)
        return None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                route: {**rule.model_dump(), "remaining_failures": self._remaining.get(route, 0)}
                for route, rule in self._rules.items()
            }


def retry_after_value(rule: FaultRule, default: float | None) -> str | None:
    seconds = rule.retry_after if rule.retry_after is not None else default
    if seconds is None:
        return None
    if rule.retry_after_format == "http-date":
        # HTTP-dates are wall-clock: clients compare them with their own real clock.
        return formatdate(time.time() + seconds, usegmt=True)
    return str(round(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def is_browser_user_agent(value: str | None) -> bool:
    return bool(value) and "Mozilla/" in str(value)


class Traffic:
    """Counts per route and status, and a bounded log of requests with their key parameters."""

    def __init__(self, log_size: int) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self.counters: Counter[str] = Counter()
        self.statuses: dict[str, Counter[int]] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)

    def start(self, method: str, route: str, at: float) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            entry: dict[str, Any] = {
                "seq": self._seq,
                "at": at,
                "method": method,
                "route": route,
                "status": None,
                "params": {},
            }
            self.counters[route] += 1
            self.log.append(entry)
        return entry

    def finish(self, entry: dict[str, Any], status: int) -> None:
        with self._lock:
            entry["status"] = status
            self.statuses.setdefault(entry["route"], Counter())[status] += 1

    def reset(self) -> None:
        with self._lock:
            self.counters.clear()
            self.statuses.clear()
            self.log.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counters": dict(self.counters),
                "statuses": {
                    r: {str(s): n for s, n in c.items()} for r, c in self.statuses.items()
                },
                "total": sum(self.counters.values()),
            }

    def requests(self, route: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Logged requests oldest first, optionally one route's, optionally only the last N."""
        with self._lock:
            entries = [
                dict(e, params=dict(e["params"]))
                for e in self.log
                if route is None or e["route"] == route
            ]
        return entries[-limit:] if limit else entries

    def incident(self) -> str:
        return f"0-{self._seq}"
