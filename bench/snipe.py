"""Snipe speed: from a day's release to the book request that gets the table, measured on the
sandbox's side (its request log), for resywatch and for a naive baseline.

The baseline is what the open-source bots do (RESY_API.md §10): from a little before the
announced instant, poll `/4/find` every interval; when a matching slot shows, `/3/details`
then `/3/book`. resywatch runs its scheduled-snipe path (`run_due_snipes`) with the same poll
interval and the same head start. Each round forces a fresh venue-day's release at an instant
the bots know, plus an offset they do not (drops come early or late: uniform in -1..+1.5 s,
the same offsets for both). The two bots run at once against two identical sandboxes (their
own processes), each with `--latency-ms` injected into every request. Delay = the sandbox's
arrival time of the successful `/3/book` minus the release instant. Target: resywatch's p50
at most half the baseline's.

Prints one JSON object as its last line. Usage: python bench/snipe.py [--rounds 24]
[--latency-ms 50] [--interval 0.2]; `--contested N [--drops 8] [--with-discovery]` races
rival bookers for single tables instead (bench/contested.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sandbox_process import free_port, start_sandbox

from resywatch.config import Settings, load_settings
from resywatch.db.engine import Database
from resywatch.db.migrate import upgrade
from resywatch.resy.client import client_from_settings
from resywatch.resy.transport import USER_AGENT
from resywatch.runtime import Runtime
from resywatch.sandbox import DEMO_API_KEY, DEMO_AUTH_TOKEN
from resywatch.services.booking import runs, schedule
from resywatch.services.booking.plan import BookingRequest

PARTY = 2
WINDOW = ("18:00", "21:00")
LEAD_S = 1.5  # both bots start polling this long before the announced instant
PREPARE_S = 2.5  # a round starts this long before the instant
DROP_OFFSETS_S = (-1.0, 1.5)  # the actual drop, relative to the announced instant
GIVE_UP_S = 8.0  # a bot stops this long after the instant


def headers() -> dict[str, str]:
    return {
        "Authorization": f'ResyAPI api_key="{DEMO_API_KEY}"',
        "X-Resy-Auth-Token": DEMO_AUTH_TOKEN,
        "X-Resy-Universal-Auth": DEMO_AUTH_TOKEN,
        "User-Agent": USER_AGENT,
        "Origin": "https://resy.com",
        "Referer": "https://resy.com/",
    }


@dataclass(frozen=True)
class Target:
    venue_id: int
    day: date


def pick_targets(base_url: str, count: int) -> list[Target]:
    """Venue-days not released yet, at quiet venues that need no card, whose same weekday a
    week before has open evening tables for two (resywatch predicts tokens from those)."""
    control = httpx.get(f"{base_url}/__sandbox/venues", timeout=10).json()["venues"]
    now = datetime.now(UTC)
    targets: list[Target] = []
    with httpx.Client(base_url=base_url, headers=headers(), timeout=10) as http:
        for venue in control:
            if venue["payment_required"] or venue["cannot_take_payment"]:
                continue
            if venue["popularity"] == "hot" or len(targets) >= count:
                continue
            today = now.astimezone(ZoneInfo(venue["time_zone"])).date()
            day = today + timedelta(days=venue["lead_time_in_days"] + 1)
            if day.weekday() in venue["closed_weekdays"]:
                continue
            released = http.get(
                "/__sandbox/release", params={"venue_id": venue["id"], "day": day.isoformat()}
            ).json()["released"]
            week_before = http.get(
                "/4/find",
                params={"venue_id": venue["id"], "day": (day - timedelta(days=7)).isoformat(),
                        "party_size": PARTY, "lat": 0, "long": 0},
            ).json()  # fmt: skip
            if not released and matching(week_before, day - timedelta(days=7)):
                targets.append(Target(venue["id"], day))
    if len(targets) < count:
        raise SystemExit(f"only {len(targets)} venue-days to release, {count} wanted")
    return targets


def matching(found: dict[str, Any], day: date) -> list[dict[str, Any]]:
    """Open slots of the day inside the window, as the baseline reads them."""
    slots = [s for v in found.get("results", {}).get("venues", []) for s in v.get("slots", [])]
    return [
        s
        for s in slots
        if s["date"]["start"].startswith(day.isoformat())
        and WINDOW[0] <= s["date"]["start"][11:16] <= WINDOW[1]
    ]


async def sleep_until(instant: float) -> None:
    while (left := instant - time.time()) > 0:
        await asyncio.sleep(left)


async def naive_bot(base_url: str, target: Target, instant: float, interval: float) -> None:
    """The open-source bots' loop: find; if a slot shows, details then book; else sleep."""
    async with httpx.AsyncClient(base_url=base_url, headers=headers(), timeout=10) as http:
        user = (await http.get("/2/user")).json()  # its card (and a warm connection)
        card = user.get("payment_method_id")
        await sleep_until(instant - LEAD_S)
        while time.time() < instant + GIVE_UP_S:
            found = await http.get(
                "/4/find",
                params={"venue_id": target.venue_id, "day": target.day.isoformat(),
                        "party_size": PARTY, "lat": 0, "long": 0},
            )  # fmt: skip
            slots = matching(found.json(), target.day) if found.status_code == 200 else []
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
                booked = await http.post("/3/book", data=form)
                if booked.status_code in (200, 201):
                    return
            await asyncio.sleep(interval)


async def resywatch_bot(
    settings: Settings, db: Database, target: Target, instant: float
) -> runs.SnipeRun:
    spec = schedule.SnipeSpec(
        BookingRequest(
            venue=str(target.venue_id),
            day=target.day,
            party_size=PARTY,
            window=(datetime.strptime(WINDOW[0], "%H:%M").time(),
                    datetime.strptime(WINDOW[1], "%H:%M").time()),
        ),
        schedule.Release(at=datetime.fromtimestamp(instant, UTC)),
        schedule.Pacing(lead_s=LEAD_S, late_s=GIVE_UP_S, deadline_s=GIVE_UP_S),
    )  # fmt: skip
    async with client_from_settings(settings) as resy:
        rt = Runtime(settings, db, resy)
        await schedule.schedule_snipe(rt, spec)
        (run,) = await runs.run_due_snipes(rt)
        return run


def booked_delay_ms(base_url: str, dropped: float) -> tuple[float | None, int]:
    """(arrival of the successful book request - drop, in ms; requests the round sent)."""
    books = httpx.get(
        f"{base_url}/__sandbox/requests", params={"route": "/3/book"}, timeout=10
    ).json()["requests"]
    total = httpx.get(f"{base_url}/__sandbox/counters", timeout=10).json()["total"]
    won = [b for b in books if b["status"] in (200, 201)]
    return ((won[0]["at"] - dropped) * 1000 if won else None), int(total)


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))], 1)


def summary(delays: list[float | None], requests: list[int]) -> dict[str, Any]:
    won = [d for d in delays if d is not None]
    return {
        "booked": len(won),
        "rounds": len(delays),
        "p50_ms": percentile(won, 0.50),
        "p95_ms": percentile(won, 0.95),
        "mean_ms": round(statistics.fmean(won), 1) if won else None,
        "min_ms": round(min(won), 1) if won else None,
        "max_ms": round(max(won), 1) if won else None,
        "requests_per_round": round(statistics.fmean(requests), 1) if requests else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--interval", type=float, default=0.2, help="poll interval, s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--contested", type=int, metavar="N", help="N drops at one instant")
    parser.add_argument("--drops", type=int, default=8, help="with --contested: at least")
    parser.add_argument("--with-discovery", action="store_true", help="with --contested")
    args = parser.parse_args()
    if args.contested is not None:
        if not 1 <= args.contested <= 20 or args.drops < 1:
            parser.error("--contested between 1 and 20, --drops at least 1")
        from contested import contested

        figures = contested(
            args.contested, args.drops, args.latency_ms, args.seed, args.with_discovery
        )
        print(json.dumps({"benchmark": "snipe-contested"} | figures))
        return
    if args.rounds < 20:
        parser.error("at least 20 rounds")

    ports = free_port(), free_port()
    sandboxes = [start_sandbox(port, speed=1) for port in ports]
    ours, theirs = (f"http://127.0.0.1:{port}" for port in ports)
    try:
        targets = pick_targets(ours, args.rounds)
        for base_url in (ours, theirs):
            httpx.post(
                f"{base_url}/__sandbox/faults",
                json={"route": "*", "latency_ms": args.latency_ms},
                timeout=5,
            ).raise_for_status()
        settings = load_settings(
            environ={
                "RESYWATCH_RESY_BASE_URL": ours,
                "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
                "RESYWATCH_RESY_AUTH_TOKEN": DEMO_AUTH_TOKEN,
                "RESYWATCH_RESY_MAX_RPS": "1000",
                "RESYWATCH_BOOK_POLL_INTERVAL_S": str(args.interval),
                "RESYWATCH_BOOK_PREPARE_S": str(PREPARE_S + 1),  # due at once
            }
        )
        db = Database(f"sqlite:///{tempfile.mkdtemp(prefix='rw-bench-')}/bench.db")
        upgrade(db)
        rng = random.Random(args.seed)
        ours_ms: list[float | None] = []
        theirs_ms: list[float | None] = []
        ours_requests: list[int] = []
        theirs_requests: list[int] = []
        outcomes: list[str] = []
        for target in targets:
            for base_url in (ours, theirs):
                httpx.post(f"{base_url}/__sandbox/reset", json={}, timeout=5).raise_for_status()
            instant = time.time() + PREPARE_S + 0.2
            dropped = instant + rng.uniform(*DROP_OFFSETS_S)
            for base_url in (ours, theirs):
                httpx.post(
                    f"{base_url}/__sandbox/release",
                    json={"venue_id": target.venue_id, "day": target.day.isoformat(),
                          "at": dropped},
                    timeout=5,
                ).raise_for_status()  # fmt: skip
            # The baseline in a thread of its own (its own event loop), resywatch here.
            baseline = threading.Thread(
                target=lambda t=target, i=instant: asyncio.run(
                    naive_bot(theirs, t, i, args.interval)
                )
            )
            baseline.start()
            run = asyncio.run(resywatch_bot(settings, db, target, instant))
            baseline.join(timeout=GIVE_UP_S + 30)
            outcomes.append(run.result.outcome.value if run.result else run.status)
            delay, sent = booked_delay_ms(ours, dropped)
            ours_ms.append(delay)
            ours_requests.append(sent)
            delay, sent = booked_delay_ms(theirs, dropped)
            theirs_ms.append(delay)
            theirs_requests.append(sent)
        db.dispose()
    finally:
        for process in sandboxes:
            process.terminate()
            process.wait(timeout=10)

    ours_summary = summary(ours_ms, ours_requests)
    theirs_summary = summary(theirs_ms, theirs_requests)
    ratio = (
        round(ours_summary["p50_ms"] / theirs_summary["p50_ms"], 3)
        if ours_summary["p50_ms"] is not None and theirs_summary["p50_ms"]
        else None
    )
    result = {
        "benchmark": "snipe",
        "rounds": args.rounds,
        "latency_ms": args.latency_ms,
        "poll_interval_s": args.interval,
        "lead_s": LEAD_S,
        "drop_offsets_s": list(DROP_OFFSETS_S),
        "resywatch": ours_summary | {"outcomes": sorted(set(outcomes))},
        "baseline": theirs_summary,
        "p50_ratio": ratio,
        # The log stamps a request when it arrives, before the injected latency; stamped
        # when the sandbox acts on it instead, both delays grow by the latency:
        "p50_ratio_at_processing": (
            round(
                (ours_summary["p50_ms"] + args.latency_ms)
                / (theirs_summary["p50_ms"] + args.latency_ms),
                3,
            )
            if ratio is not None
            else None
        ),
        "target_p50_ratio": 0.5,
        "target_met": ratio is not None and ratio <= 0.5,
        "delays_ms": {
            "resywatch": [None if d is None else round(d, 1) for d in ours_ms],
            "baseline": [None if d is None else round(d, 1) for d in theirs_ms],
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
