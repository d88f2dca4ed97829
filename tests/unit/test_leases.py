"""The lease mechanism on its own (both backends), over a table of its own: worker names,
dead holders, and claim / renew / release / fence generic over a table's lease columns."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, and_, select
from sqlmodel import SQLModel

from resywatch.db import leases
from resywatch.db.engine import Database
from resywatch.db.models import DiscoveryBucket, JobHeartbeat, JobRun, Notification, ScheduledSnipe
from resywatch.services.delivery.claims import batch_token

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TTL = timedelta(seconds=30)

_METADATA = MetaData()
_PROBE = Table(
    "lease_probe",
    _METADATA,
    Column("name", String(8), primary_key=True),
    Column("holder", String(128)),
    Column("until", DateTime(timezone=True)),
    Column("epoch", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False, default="scheduled"),
    Column("result", String(16)),
)
COLS = leases.LeaseColumns(_PROBE, key="name", owner="holder", until="until", epoch="epoch")
NAMES = ["a", "b", "c"]


@pytest.fixture
def probe(db: Database) -> Iterator[Database]:
    _METADATA.create_all(db.engine)
    with db.write() as session:
        session.execute(_PROBE.insert(), [{"name": name, "epoch": 0} for name in NAMES])
    yield db
    _METADATA.drop_all(db.engine)


def take(
    db: Database, owner: str, *, now: datetime = NOW, limit: int = 10, dead: list[str] | None = None
) -> list[leases.Lease]:
    with db.write() as session:
        return leases.claim(
            session,
            COLS,
            where=leases.free(COLS, now, dead or ()),
            owner=owner,
            values={"until": now + TTL},
            order_by=(_PROBE.c.name.desc(),),
            limit=limit,
        )


def rows(db: Database) -> dict[str, tuple[str | None, int, str | None]]:
    with db.read() as session:
        found = session.execute(
            select(_PROBE.c.name, _PROBE.c.holder, _PROBE.c.epoch, _PROBE.c.result)
        )
        return {name: (holder, epoch, result) for name, holder, epoch, result in found}


def a_gone_pid() -> int:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(gone.stdout)


def test_a_claim_takes_free_rows_in_order_up_to_its_limit_and_bumps_their_epochs(
    probe: Database,
) -> None:
    first = take(probe, "w1:1:aa", limit=2)
    assert [(lease.key, lease.epoch) for lease in first] == [("b", 1), ("c", 1)]  # c, b first
    assert take(probe, "w2:1:bb") == [leases.Lease("a", "w2:1:bb", 1)]
    assert take(probe, "w3:1:cc") == []  # nothing free: losing is an empty list
    assert rows(probe)["c"] == ("w1:1:aa", 1, None)


def test_a_lease_ends_at_its_expiry_and_the_next_claim_bumps_the_epoch(probe: Database) -> None:
    take(probe, "w1:1:aa")
    assert take(probe, "w2:1:bb", now=NOW + TTL - timedelta(microseconds=1)) == []
    again = take(probe, "w2:1:bb", now=NOW + TTL, limit=1)
    assert [(lease.key, lease.epoch) for lease in again] == [("c", 2)]


def test_a_claim_without_a_limit_takes_every_matching_row_once(probe: Database) -> None:
    """A status-machine claim (snipes): the same name asking twice wins once."""
    scheduled = and_(_PROBE.c.name == "a", _PROBE.c.status == "scheduled")
    with probe.write() as session:
        won = leases.claim(
            session, COLS, where=scheduled, owner="w:1:aa", values={"status": "running"}
        )
        again = leases.claim(
            session, COLS, where=scheduled, owner="w:1:aa", values={"status": "running"}
        )
    assert won == [leases.Lease("a", "w:1:aa", 1)]
    assert again == []


def test_renew_keeps_held_leases_and_names_the_lost_ones(probe: Database) -> None:
    old = take(probe, "w1:1:aa", limit=2)
    later = NOW + TTL + timedelta(seconds=1)
    (taken,) = take(probe, "w2:1:bb", now=later, limit=1)  # c, the first in order
    with probe.write() as session:
        lost = leases.renew(session, COLS, old, until=later + TTL)
        kept = leases.renew(session, COLS, [taken], until=later + TTL)
    assert (lost, kept) == (["c"], [])
    assert take(probe, "w3:1:cc", now=later) == [leases.Lease("a", "w3:1:cc", 1)]  # b renewed


def test_release_frees_only_the_holders_rows_at_once(probe: Database) -> None:
    held = take(probe, "w1:1:aa", limit=2)
    stale = [replace(lease, epoch=0) for lease in held]
    with probe.write() as session:
        leases.release(session, COLS, stale)  # an older claim of the same rows: not theirs
    assert take(probe, "w2:1:bb", limit=2) == [leases.Lease("a", "w2:1:bb", 1)]
    with probe.write() as session:
        leases.release(session, COLS, held)
    assert [lease.key for lease in take(probe, "w3:1:cc")] == ["b", "c"]


def test_the_fence_refuses_a_worker_paused_past_its_lease(probe: Database) -> None:
    (paused,) = take(probe, "w1:1:aa", limit=1)
    (taker,) = take(probe, "w2:1:bb", now=NOW + TTL, limit=1)
    with probe.write() as session:
        assert not leases.fence(session, COLS, paused, result="stale", holder=None)
    with probe.write() as session:
        assert leases.fence(session, COLS, taker, result="fresh", holder=None)
    assert rows(probe)["c"] == (None, 2, "fresh")


def test_a_holder_is_dead_here_only_when_on_this_host_with_its_pid_gone() -> None:
    me = leases.this_worker()
    gone = a_gone_pid()
    assert leases.dead_here(str(replace(me, pid=gone)))
    assert leases.dead_here(f"{me.host}:{gone}")  # the older `host:pid` form
    assert leases.dead_here(f"{replace(me, pid=gone)}:batch42")  # a suffix is ignored
    assert not leases.dead_here(leases.this_process())
    assert not leases.dead_here(str(replace(me, host="elsewhere", pid=gone)))
    assert not leases.dead_here("not a worker")
    assert not leases.dead_here(f"{me.host}:99999999999999999999999:x")  # no such pid to ask


def test_the_same_host_and_pid_with_another_nonce_is_another_live_holder(probe: Database) -> None:
    """Two containers sharing a hostname, each its own pid 1: neither takes, renews, ends or
    writes through the other's live lease, and neither is taken for dead."""
    me = leases.this_worker()
    twin = replace(me, nonce="0ther000")
    assert not leases.dead_here(str(twin))  # may be a sibling container, not a dead us
    mine = take(probe, str(me))
    with probe.read() as session:
        dead = leases.dead_holders(session, COLS, NOW)
    assert dead == []
    assert take(probe, str(twin), dead=dead) == []
    posing = [replace(lease, owner=str(twin)) for lease in mine]
    with probe.write() as session:
        assert leases.renew(session, COLS, posing, until=NOW + 2 * TTL) == NAMES
        leases.release(session, COLS, posing)
        assert not leases.fence(session, COLS, posing[0], result="twin's")
    assert {holder for holder, _, _ in rows(probe).values()} == {str(me)}


def test_a_dead_holders_rows_are_free_before_their_lease_ends(probe: Database) -> None:
    dead_worker = str(replace(leases.this_worker(), pid=a_gone_pid()))
    take(probe, dead_worker, limit=2)
    take(probe, "elsewhere:1:aa", limit=1)  # another machine: only its TTL frees it
    with probe.read() as session:
        dead = leases.dead_holders(session, COLS, NOW)
    assert dead == [dead_worker]
    assert [lease.key for lease in take(probe, "w2:1:bb", dead=dead)] == ["b", "c"]


def test_a_process_keeps_one_name_host_pid_nonce() -> None:
    name = leases.this_process()
    assert name == leases.this_process()
    host, pid, nonce = name.split(":")
    assert (host, int(pid), len(nonce)) == (leases.host_label(), leases.this_worker().pid, 8)
    assert leases.WorkerId.parse(name) == leases.this_worker()


def test_long_hostnames_are_cut_apart_and_every_worker_name_fits_its_column() -> None:
    a = leases.host_label("resywatch-notification-relay-7d9f8b6c5-x2k4p")
    b = leases.host_label("resywatch-notification-relay-7d9f8b6c5-q8w1z")
    assert len(a) == len(b) == leases.HOST_MAX and a != b
    assert leases.host_label("short") == "short"
    longest = str(leases.WorkerId(a, 4_194_304, "f" * 8))  # Linux's highest pid
    owners = [(JobHeartbeat, "owner"), (JobRun, "owner"), (DiscoveryBucket, "lease_owner")]
    for model, column in [*owners, (ScheduledSnipe, "claimed_by")]:
        assert len(longest) <= length(model, column)
    batch = batch_token(longest)
    assert batch.startswith(longest) and len(batch) <= length(Notification, "claimed_by")


def length(model: type[SQLModel], column: str) -> int:
    return int(model.__table__.c[column].type.length)  # type: ignore[attr-defined]
