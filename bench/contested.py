"""Contested drops (`bench/snipe.py --contested N`): N venues release a day at one instant on
one sandbox; at each, one slot (a time and a seating) is wanted by resywatch and by a rival
booker on another account. The winner is the side whose valid book request the sandbox
processes first: the one that gets the last table. (The slot has two tables, so that the
loser's book request is sent too and both sides' timings are measured, not inferred.)

The rival runs the open-source bots' loop (RESY_API.md §10): from a second before the
instant, `/4/find`; when the slot shows, `/3/details` then `/3/book`; else sleep the interval
(resywatch's default, 0.2 s) and find again; no rate budget. All rivals run in a process of
their own. resywatch runs its scheduled-snipe path (`run_due_snipes`, one pass for the N
snipes, as `run-forever` would) on its **default settings**: lead, interval, budgets, the
snipe lane, speculation off. Every request waits `--latency-ms` in the sandbox before it is
handled. Drops come at the instant plus a delay neither side knows (0 to 250 ms).

Per drop: who won (the 201), each side's first book request after the drop (its arrival in
the sandbox's log minus the drop), and each side's requests. With `--with-discovery`, a
discovery pass on the same client and database starts a second before the instant.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.migrate import upgrade
from resywatch.resy.client import client_from_settings
from resywatch.resy.transport import USER_AGENT
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN
from resywatch.services.booking import runs, schedule
from resywatch.services.booking.plan import BookingRequest
from resywatch.services.discovery.scan import run_pass
from resywatch.services.politeness import PolitenessPolicy, SharedPoliteness

PARTY = 2
RIVAL_EMAIL, RIVAL_PASSWORD = "rival@example.com", "rival-password-123"
PREPARE_S = 3.0  # a round starts this long before the instant
RIVAL_LEAD_S = 1.0
DROP_DELAY_S = (0.0, 0.25)
GIVE_UP_S = 8.0


@dataclass(frozen=True)
class Target:
    venue_id: int
    day: date
    time: str  # HH:MM
    seating: str


def headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f'ResyAPI api_key="{DEMO_API_KEY}"',
        "X-Resy-Auth-Token": token,
        "X-Resy-Universal-Auth": token,
        "User-Agent": USER_AGENT,
        "Origin": "https://resy.com",
        "Referer": "https://resy.com/",
    }


def pick_targets(base_url: str, count: int, taken: set[int]) -> list[Target]:
    """Venue-days not released yet at quiet venues needing no card, whose same weekday a week
    before had an evening table for two (resywatch predicts its tokens from it): that
    slot's time and seating is the contested one."""
    venues = httpx.get(f"{base_url}/__sandbox/venues", timeout=10).json()["venues"]
    now = datetime.now(UTC)
    targets: list[Target] = []
    with httpx.Client(base_url=base_url, headers=headers(DEMO_AUTH_TOKEN), timeout=10) as http:
        for venue in venues:
            if len(targets) >= count:
                break
            if venue["id"] in taken or venue["popularity"] == "hot":
                continue
            if venue["payment_required"] or venue["cannot_take_payment"]:
                continue
            today = now.astimezone(ZoneInfo(venue["time_zone"])).date()
            day = today + timedelta(days=venue["lead_time_in_days"] + 1)
            if day.weekday() in venue["closed_weekdays"]:
                continue
            week_before = day - timedelta(days=7)
            found = http.get(
                "/4/find",
                params={"venue_id": venue["id"], "day": week_before.isoformat(),
                        "party_size": PARTY, "lat": 0, "long": 0},
            ).json()  # fmt: skip
            slots = [s for s in _slots(found) if "18:00" <= s["date"]["start"][11:16] <= "21:00"]
            if slots:
                first = slots[0]
                targets.append(
                    Target(venue["id"], day, first["date"]["start"][11:16], first["config"]["type"])
                )
    if len(targets) < count:
        raise SystemExit(f"only {len(targets)} venue-days to contest, {count} wanted")
    return targets


def _slots(found: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for v in found.get("results", {}).get("venues", []) for s in v.get("slots", [])]


def _wanted(found: dict[str, Any], target: Target) -> list[dict[str, Any]]:
    return [
        s
        for s in _slots(found)
        if s["date"]["start"].startswith(f"{target.day.isoformat()} {target.time}")
        and s["config"]["type"] == target.seating
    ]


async def rival(base_url: str, token: str, target: Target, instant: float, interval: float) -> int:
    """The open-source loop for one target; returns the requests it sent."""
    sent = 0
    async with httpx.AsyncClient(base_url=base_url, headers=headers(token), timeout=10) as http:
        card = (await http.get("/2/user")).json().get("payment_method_id")  # and a warm socket
        sent += 1
        while time.time() < instant - RIVAL_LEAD_S:
            await asyncio.sleep(min(0.05, instant - RIVAL_LEAD_S - time.time()))
        while time.time() < instant + GIVE_UP_S:
            found = await http.get(
                "/4/find",
                params={"venue_id": target.venue_id, "day": target.day.isoformat(),
                        "party_size": PARTY, "lat": 0, "long": 0},
            )  # fmt: skip
            sent += 1
            slots = _wanted(found.json(), target) if found.status_code == 200 else []
            if slots:
                details = await http.post(
                    "/3/details",
                    json={"config_id": slots[0]["config"]["token"],
                          "day": target.day.isoformat(), "party_size": PARTY, "commit": 1},
                )  # fmt: skip
                form = {"book_token": details.json()["book_token"]["value"],
                        "source_id": "resy.com-venue-details"}  # fmt: skip
                if card:
                    form["struct_payment_method"] = json.dumps({"id": card})
                await http.post("/3/book", data=form)
                return sent + 2
            await asyncio.sleep(interval)
    return sent


def rivals_process(
    base_url: str, token: str, targets: list[Target], instant: float, interval: float, out: Any
) -> None:
    async def all_of_them() -> list[int]:
        return list(
            await asyncio.gather(*(rival(base_url, token, t, instant, interval) for t in targets))
        )

    out.put(asyncio.run(all_of_them()))


def spec(target: Target, instant: float) -> schedule.SnipeSpec:
    at = datetime.strptime(target.time, "%H:%M")
    just_then = (at.time(), (at + timedelta(minutes=1)).time())  # the contested slot only
    return schedule.SnipeSpec(
        BookingRequest(
            venue=str(target.venue_id), day=target.day, party_size=PARTY, window=just_then,
            seating_types=[target.seating],
        ),
        schedule.Release(at=datetime.fromtimestamp(instant, UTC)),
        schedule.Pacing(late_s=GIVE_UP_S, deadline_s=GIVE_UP_S),  # the rest: the defaults
    )  # fmt: skip


async def ours(
    settings: Settings, db: Database, targets: list[Target], instant: float, discovery: bool
) -> list[runs.SnipeRun]:
    gate = SharedPoliteness(db, PolitenessPolicy.from_settings(settings))
    async with client_from_settings(settings, gate=gate) as resy:
        rt = Runtime(settings, db, resy)
        for target in targets:
            await schedule.schedule_snipe(rt, spec(target, instant))
        sniping = asyncio.create_task(runs.run_due_snipes(rt))
        if discovery:
            await asyncio.sleep(max(0.0, instant - 1.0 - time.time()))
            await run_pass(rt)
        return await sniping


def round_figures(
    base_url: str, targets: list[Target], dropped: float, our_uid: int
) -> list[dict[str, Any]]:
    books = httpx.get(
        f"{base_url}/__sandbox/requests", params={"route": "/3/book"}, timeout=10
    ).json()["requests"]
    out = []
    for target in targets:
        here = [b for b in books if b["params"].get("venue_id") == target.venue_id]
        mine = [b for b in here if b.get("uid") == our_uid and b["at"] >= dropped]
        theirs = [b for b in here if b.get("uid") not in (None, our_uid) and b["at"] >= dropped]
        winner = next((b for b in sorted(here, key=lambda b: b["seq"]) if b["status"] == 201), None)
        out.append(
            {
                "venue_id": target.venue_id,
                "won": winner is not None and winner.get("uid") == our_uid,
                "ours_ms": (mine[0]["at"] - dropped) * 1000 if mine else None,
                "rival_ms": (theirs[0]["at"] - dropped) * 1000 if theirs else None,
            }
        )
    return out


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))], 1)


def contested(n: int, drops: int, latency_ms: float, seed: int, discovery: bool) -> dict[str, Any]:
    from sandbox_process import free_port, start_sandbox

    port = free_port()
    sandbox = start_sandbox(port, speed=1)
    base_url = f"http://127.0.0.1:{port}"
    try:
        httpx.post(
            f"{base_url}/__sandbox/users",
            json={"email": RIVAL_EMAIL, "password": RIVAL_PASSWORD, "first_name": "Rival"},
            timeout=5,
        ).raise_for_status()
        login = httpx.post(
            f"{base_url}/3/auth/password",
            data={"email": RIVAL_EMAIL, "password": RIVAL_PASSWORD},
            headers={
                "Authorization": f'ResyAPI api_key="{DEMO_API_KEY}"',
                "User-Agent": USER_AGENT,
            },
            timeout=5,
        )
        login.raise_for_status()
        rival_token = login.json()["token"]
        our_uid = httpx.get(
            f"{base_url}/2/user", headers=headers(DEMO_AUTH_TOKEN), timeout=5
        ).json()["id"]
        settings = load_settings(
            environ={
                "RESYWATCH_RESY_BASE_URL": base_url,
                "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
                "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
            }
        )
        interval = settings.book_poll_interval_s
        db = Database(f"sqlite:///{tempfile.mkdtemp(prefix='rw-contested-')}/bench.db")
        upgrade(db)
        rng = random.Random(seed)
        per_drop: list[dict[str, Any]] = []
        our_requests: list[float] = []
        rival_requests: list[int] = []
        taken: set[int] = set()
        rounds = -(-drops // n)
        for _ in range(rounds):
            targets = pick_targets(base_url, n, taken)
            taken.update(t.venue_id for t in targets)
            instant = time.time() + PREPARE_S
            dropped = instant + rng.uniform(*DROP_DELAY_S)
            for target in targets:
                httpx.post(
                    f"{base_url}/__sandbox/slots",
                    json={"venue_id": target.venue_id, "day": target.day.isoformat(),
                          "time": target.time, "seating": target.seating, "tables": 2},
                    timeout=5,
                ).raise_for_status()  # fmt: skip
                httpx.post(
                    f"{base_url}/__sandbox/release",
                    json={"venue_id": target.venue_id, "day": target.day.isoformat(),
                          "at": dropped},
                    timeout=5,
                ).raise_for_status()  # fmt: skip
            httpx.post(
                f"{base_url}/__sandbox/faults",
                json={"route": "*", "latency_ms": latency_ms},
                timeout=5,
            ).raise_for_status()
            httpx.post(f"{base_url}/__sandbox/reset", json={}, timeout=5).raise_for_status()
            queue: Any = multiprocessing.Queue()
            process = multiprocessing.Process(
                target=rivals_process,
                args=(base_url, rival_token, targets, instant, interval, queue),
            )
            process.start()
            done = asyncio.run(ours(settings, db, targets, instant, discovery))
            rival_requests += queue.get(timeout=GIVE_UP_S + 60)
            process.join(timeout=30)
            our_requests += [
                r.result.latency_ms.get("requests", 0) for r in done if r.result is not None
            ]
            per_drop += round_figures(base_url, targets, dropped, our_uid)
        db.dispose()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    return summary(n, per_drop, our_requests, rival_requests, latency_ms, interval, discovery)


def summary(
    n: int,
    per_drop: list[dict[str, Any]],
    our_requests: list[float],
    rival_requests: list[int],
    latency_ms: float,
    interval: float,
    discovery: bool,
) -> dict[str, Any]:
    ours_ms = [d["ours_ms"] for d in per_drop if d["ours_ms"] is not None]
    rival_ms = [d["rival_ms"] for d in per_drop if d["rival_ms"] is not None]
    wins = sum(d["won"] for d in per_drop)
    p50_ours, p50_rival = percentile(ours_ms, 0.5), percentile(rival_ms, 0.5)
    req_ours = statistics.fmean(our_requests) if our_requests else None
    req_rival = statistics.fmean(rival_requests) if rival_requests else None
    ratio = round(p50_ours / p50_rival, 3) if p50_ours is not None and p50_rival else None
    req_ratio = round(req_ours / req_rival, 3) if req_ours and req_rival else None
    return {
        "contested": n,
        "drops": len(per_drop),
        "with_discovery": discovery,
        "latency_ms": latency_ms,
        "interval_s": interval,
        "win_rate": round(wins / len(per_drop), 3) if per_drop else None,
        "resywatch": {"p50_ms": p50_ours, "p95_ms": percentile(ours_ms, 0.95),
                      "requests_per_snipe": round(req_ours, 1) if req_ours else None},
        "rival": {"p50_ms": p50_rival, "p95_ms": percentile(rival_ms, 0.95),
                  "requests_per_snipe": round(req_rival, 1) if req_rival else None},
        "p50_ratio": ratio,
        "requests_ratio": req_ratio,
        "targets": {"win_rate": 0.9, "p50_ratio": 0.45, "requests_ratio": 1.5},
        "target_met": bool(
            per_drop and wins / len(per_drop) >= 0.9 and ratio is not None and ratio <= 0.45
            and req_ratio is not None and req_ratio <= 1.5
        ),
        "per_drop": per_drop,
    }  # fmt: skip
