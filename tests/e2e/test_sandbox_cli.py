"""`resywatch sandbox serve` as a user runs it: a real process answering real HTTP."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest

from resywatch.sandbox import DEMO_API_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "resywatch", "sandbox", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/3/geoip", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_find_answers_in_resys_shape_with_the_key_and_419_without(served: str) -> None:
    day = (date.today() + timedelta(days=3)).isoformat()
    query = f"/4/find?venue_id=6194&day={day}&party_size=2&lat=0&long=0"
    headers = {"Authorization": f'ResyAPI api_key="{DEMO_API_KEY}"', "User-Agent": "Mozilla/5.0"}
    found = httpx.get(served + query, headers=headers, timeout=5)
    assert found.status_code == 200
    venues = found.json()["results"]["venues"]
    assert venues[0]["venue"]["id"] == {"resy": 6194}
    # Carbone may be sold out: look for a venue with open slots to check the slot shape.
    slots = venues[0]["slots"]
    if not slots:
        other = httpx.get(
            served + query.replace("6194", "1505"), headers=headers, timeout=5
        ).json()["results"]["venues"][0]["slots"]
        slots = other or slots
    for slot in slots:
        assert re.fullmatch(
            r"rgs://resy/\d+/\d+/\d+/[\d-]{10}/[\d-]{10}/\d\d:\d\d:\d\d/\d+/.+",
            slot["config"]["token"],
        )
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", slot["date"]["start"])

    refused = httpx.get(served + query, timeout=5)
    assert refused.status_code == 419
    assert refused.json() == {"status": 419, "code": None, "message": "Unauthorized", "data": {}}


def test_control_routes_are_off_unless_asked_for(served: str) -> None:
    assert httpx.get(f"{served}/__sandbox/time", timeout=5).status_code == 404
