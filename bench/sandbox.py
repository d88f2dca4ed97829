"""Benchmark: how many requests a second one sandbox process serves, and at what CPU cost.

The sandbox runs as a subprocess (one uvicorn process, pinned to one CPU when there are two or
more); this process is the load generator, on the other CPUs. It drives each route over a few
keep-alive connections for a bounded number of requests or seconds, whichever ends first,
and prints human-readable lines on stderr and exactly one JSON object as its last stdout line.

Three figures:

1. `/4/find` over a spread of venues, days and party sizes (``find_rps``; target 1000/s).
2. `/3/venuesearch/search` as the discovery scan sends it: availability, 100 hits a page,
   party 2, ``time_filter`` 19:00, the Manhattan bounding box, two days after the sandbox's
   start (``search_rps``, and ``search_ms_per_request``: server CPU per request; target 3 ms).
3. What resywatch's Resy client adds per `/4/find` call over a bare httpx call to the same
   route, medians, interleaved (``client_added_ms``; target 1 ms).

The exit status is 0 only if the two server figures meet their targets.

    .venv/bin/python bench/sandbox.py [--requests 30000] [--seconds 20] [--concurrency 8]
        [--search-requests 3000] [--search-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx

TARGET_RPS = 1000
SEARCH_TARGET_MS = 3.0
MANHATTAN_BBOX = [40.691, -74.030, 40.882, -73.910]
NEW_YORK = ZoneInfo("America/New_York")
API_KEY = "resywatch-sandbox-key"
HEADERS = {
    "Authorization": f'ResyAPI api_key="{API_KEY}"',
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) resywatch-bench",
    "Accept": "application/json",
}
SERVER_CODE = (
    "import sys\n"
    "from resywatch.sandbox import SandboxConfig, serve\n"
    "serve(SandboxConfig(seed=int(sys.argv[1]), api_key=sys.argv[3]), port=int(sys.argv[2]))\n"
)


@dataclass
class Sandbox:
    process: subprocess.Popen[bytes]
    base_url: str
    pinned_cpu: int | None


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_sandbox(seed: int) -> Sandbox:
    """Start `serve()` in a subprocess on a free loopback port and wait until it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_CODE, str(seed), str(port), API_KEY],
        stdout=subprocess.DEVNULL,
    )
    pinned = None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        # One core for the server, the rest for the load generator, so they do not compete.
        pinned = cpus[0]
        os.sched_setaffinity(process.pid, {pinned})
        os.sched_setaffinity(0, set(cpus[1:]))
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base_url}/3/geoip", headers=HEADERS, timeout=1).status_code == 200:
                return Sandbox(process, base_url, pinned)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_sandbox(Sandbox(process, base_url, pinned))
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.05)


def stop_sandbox(sandbox: Sandbox) -> None:
    sandbox.process.terminate()
    try:
        sandbox.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sandbox.process.kill()
        sandbox.process.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (0.0 where /proc is unavailable)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_paths(base_url: str, count: int = 120) -> list[str]:
    """A spread of real `/4/find` queries: many venues, the next two weeks, parties of 2 and 4."""
    venues = httpx.get(f"{base_url}/__sandbox/venues").json()["venues"]
    today = date.today()
    paths = []
    for i in range(count):
        venue = venues[(i * 7) % len(venues)]
        query = {
            "venue_id": venue["id"],
            "day": (today + timedelta(days=i % 14)).isoformat(),
            "party_size": 2 if i % 2 else 4,
            "lat": 0,
            "long": 0,
        }
        paths.append(f"/4/find?{urlencode(query)}")
    return paths


def search_request(base_url: str) -> bytes:
    """The raw HTTP request of the search figure (its day: two days after the sandbox's start)."""
    epoch = httpx.get(f"{base_url}/__sandbox/time").json()["epoch"]
    day = datetime.fromtimestamp(epoch, NEW_YORK).date() + timedelta(days=2)
    body = json.dumps(
        {
            "query": "",
            "availability": True,
            "page": 1,
            "per_page": 100,
            "geo": {"bounding_box": MANHATTAN_BBOX},
            "slot_filter": {"day": day.isoformat(), "party_size": 2, "time_filter": "19:00"},
        }
    ).encode()
    parts = urlsplit(base_url)
    head = (
        f"POST /3/venuesearch/search HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_requests(base_url: str, paths: list[str]) -> list[bytes]:
    parts = urlsplit(base_url)
    header_lines = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
    return [
        f"GET {p} HTTP/1.1\r\nHost: {parts.netloc}\r\n{header_lines}\r\n".encode() for p in paths
    ]


async def _connection(
    host: str, port: int, requests: list[bytes], stop: asyncio.Event, out: list[int]
) -> None:
    """One keep-alive connection sending requests back to back; counts answers and errors."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        i = 0
        while not stop.is_set():
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            out[0] += 1
            if status != 200:
                out[1] += 1
            if out[0] >= out[2]:
                stop.set()
    finally:
        writer.close()
        await writer.wait_closed()


async def drive(
    base_url: str, raw: list[bytes], *, requests: int, seconds: float, concurrency: int
) -> LoadResult:
    """Send up to ``requests`` raw HTTP requests (or for ``seconds``) over keep-alive connections.

    A minimal HTTP/1.1 client keeps the load generator's own cost far below the server's, so
    the figure measures the sandbox, not the client library.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    counts = [0, 0, requests]  # answered, errors, limit
    stop = asyncio.Event()
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(_connection(host, port, raw[i::concurrency] or raw, stop, counts))
        for i in range(concurrency)
    ]
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        stop.set()
    elapsed = time.perf_counter() - started
    answered = counts[0]
    await asyncio.gather(*tasks, return_exceptions=True)
    return LoadResult(answered, counts[1], elapsed)


def measure(
    sandbox: Sandbox, raw: list[bytes], *, requests: int, seconds: float, concurrency: int
) -> tuple[LoadResult, float]:
    """(load result, server CPU seconds) of one driven run."""
    cpu_before = process_cpu_seconds(sandbox.process.pid)
    result = asyncio.run(
        drive(sandbox.base_url, raw, requests=requests, seconds=seconds, concurrency=concurrency)
    )
    return result, process_cpu_seconds(sandbox.process.pid) - cpu_before


CLIENT_TARGET_MS = 1.0


def client_overhead(base_url: str, calls: int) -> dict[str, object]:
    """What resywatch's client adds per call (headers, limiter, deadline, retry wrapper,
    parsing into models, the call record) over a bare httpx GET of the same `/4/find`,
    one call at a time, the two interleaved; medians."""
    from resywatch.resy.client import ResyClient

    day = date.today() + timedelta(days=2)
    params = {"venue_id": 1505, "day": day.isoformat(), "party_size": 2, "lat": 0, "long": 0}

    async def compare() -> tuple[list[float], list[float]]:
        raw_times, client_times = [], []
        async with (
            httpx.AsyncClient(base_url=base_url, headers=HEADERS) as raw,
            ResyClient(base_url=base_url, api_key=API_KEY, max_rps=100_000) as resy,
        ):
            for _ in range(calls):
                started = time.perf_counter()
                (await raw.get("/4/find", params=params)).raise_for_status()
                raw_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                await resy.find(1505, day, 2)
                client_times.append(time.perf_counter() - started)
        return raw_times, client_times

    raw_times, client_times = asyncio.run(compare())
    added_ms = 1000 * (statistics.median(client_times) - statistics.median(raw_times))
    return {
        "client_calls": calls,
        "raw_httpx_median_ms": round(1000 * statistics.median(raw_times), 3),
        "client_median_ms": round(1000 * statistics.median(client_times), 3),
        "client_added_ms": round(added_ms, 3),
        "client_target_added_ms": CLIENT_TARGET_MS,
        "client_meets_target": added_ms <= CLIENT_TARGET_MS,
    }


def run(args: argparse.Namespace) -> dict[str, object]:
    sandbox = start_sandbox(args.seed)
    try:
        finds = get_requests(sandbox.base_url, find_paths(sandbox.base_url))
        searches = [search_request(sandbox.base_url)]
        # Warm-up: first answers build each venue-day's cached inventory and JSON.
        asyncio.run(
            drive(sandbox.base_url, finds, requests=len(finds) * 2, seconds=30, concurrency=2)
        )
        asyncio.run(drive(sandbox.base_url, searches, requests=20, seconds=30, concurrency=2))
        result, server_cpu = measure(
            sandbox,
            finds,
            requests=args.requests,
            seconds=args.seconds,
            concurrency=args.concurrency,
        )
        search, search_cpu = measure(
            sandbox,
            searches,
            requests=args.search_requests,
            seconds=args.search_seconds,
            concurrency=args.concurrency,
        )
        client = client_overhead(sandbox.base_url, args.client_calls)
    finally:
        stop_sandbox(sandbox)
    rps = result.requests / result.seconds if result.seconds else 0.0
    search_rps = search.requests / search.seconds if search.seconds else 0.0
    search_ms = 1000 * search_cpu / search.requests if search.requests else None
    return {
        "find_rps": round(rps, 1),
        "requests": result.requests,
        "errors": result.errors,
        "seconds": round(result.seconds, 3),
        "concurrency": args.concurrency,
        "server_cpu_utilisation": round(server_cpu / result.seconds, 3) if result.seconds else None,
        "server_pinned_cpu": sandbox.pinned_cpu,
        "target_rps": TARGET_RPS,
        "meets_target": rps >= TARGET_RPS and result.errors == 0,
        "search_rps": round(search_rps, 1),
        "search_ms_per_request": None if search_ms is None else round(search_ms, 3),
        "search_requests": search.requests,
        "search_errors": search.errors,
        "search_seconds": round(search.seconds, 3),
        "search_target_ms_per_request": SEARCH_TARGET_MS,
        "search_meets_target": (
            search_ms is not None and search_ms <= SEARCH_TARGET_MS and search.errors == 0
        ),
        **client,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30_000, help="stop after this many answers")
    parser.add_argument("--seconds", type=float, default=20.0, help="stop after this long")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument(
        "--search-requests", type=int, default=3_000, help="search: stop after this many answers"
    )
    parser.add_argument(
        "--search-seconds", type=float, default=10.0, help="search: stop after this long"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--client-calls", type=int, default=500, help="client overhead: calls of each kind"
    )
    args = parser.parse_args(argv)
    figures = run(args)
    print(
        f"/4/find: {figures['find_rps']} req/s over {figures['requests']} requests "
        f"({figures['errors']} errors), server CPU {figures['server_cpu_utilisation']}",
        file=sys.stderr,
        flush=True,
    )
    print(
        f"/3/venuesearch/search: {figures['search_rps']} req/s over "
        f"{figures['search_requests']} requests ({figures['search_errors']} errors), "
        f"{figures['search_ms_per_request']} ms server CPU per request",
        file=sys.stderr,
        flush=True,
    )
    print(json.dumps(figures))
    return 0 if figures["meets_target"] and figures["search_meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
