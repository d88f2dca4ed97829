"""Shared fixtures: a clean environment per test, and a fresh database per test on SQLite
and on PostgreSQL (when RESYWATCH_TEST_DATABASE_URL names a server; in CI it must)."""

from __future__ import annotations

import contextlib
import itertools
import os
import resource
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from resywatch.cli.app import app
from resywatch.db.engine import Database
from resywatch.db.migrate import upgrade

# Read before the environment is scrubbed for each test.
PG_URL = os.environ.get("RESYWATCH_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RESYWATCH_* from the developer's shell, and home, config and data dirs of our own."""
    for name in list(os.environ):
        if name.startswith("RESYWATCH_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("NO_COLOR", "1")


def database_prefix() -> str:
    """The names of this process's (this xdist worker's) test databases begin so."""
    return f"rw_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"


class PostgresDatabases:
    """Creates throw-away databases on the test server, migrated ones cloned from a template.

    Each process (each xdist worker) has its own names. Creating and dropping a database
    takes 0.1-0.3 s of the server's time, so it happens off the tests' path, on one thread
    with one admin connection: the next migrated database is cloned while a test runs, and
    a finished test's database is dropped after it. `close` waits for that work and raises
    the first error it met."""

    def __init__(self, server_url: str) -> None:
        self.url = make_url(server_url)
        self.prefix = database_prefix()
        self.template = f"{self.prefix}_template"
        self.counter = itertools.count()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rw-test-databases")
        self._conn: psycopg.Connection[Any] | None = None  # the pool thread's only
        self._spare: Future[str] | None = None
        self._pending: list[Future[Any]] = []

    def _admin(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._conn = psycopg.connect(conninfo, autocommit=True)
        return self._conn

    def url_for(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def _create(self, migrated: bool) -> str:
        name = f"{self.prefix}_{next(self.counter)}"
        template = f" TEMPLATE {self.template}" if migrated else ""
        self._admin().execute(f'CREATE DATABASE "{name}"{template}')  # type: ignore[arg-type]
        return name

    def create(self, *, migrated: bool) -> str:
        if not migrated:
            return self.url_for(self._pool.submit(self._create, False).result())
        spare, self._spare = self._spare, None
        name = (spare or self._pool.submit(self._create, True)).result()
        self._spare = self._pool.submit(self._create, True)  # for the next test
        return self.url_for(name)

    def create_template(self) -> None:
        def create() -> None:
            conn = self._admin()
            conn.execute(f'DROP DATABASE IF EXISTS "{self.template}"')  # type: ignore[arg-type]
            conn.execute(f'CREATE DATABASE "{self.template}"')  # type: ignore[arg-type]

        self._pool.submit(create).result()
        migrate_url(self.url_for(self.template))

    def _drop(self, name: str) -> None:
        # An autovacuum worker may be connected for a moment, and FORCE may not end it
        # without pg_signal_backend: try again shortly instead of failing.
        for attempt in range(20):
            try:
                self._admin().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
                return
            except psycopg.errors.InsufficientPrivilege:
                if attempt == 19:
                    raise
                time.sleep(0.25)

    def drop(self, url: str) -> None:
        """Drop the database after the test, off its path (`close` reports a failure)."""
        name = make_url(url).database
        assert name is not None and name.startswith(self.prefix)
        self._pending.append(self._pool.submit(self._drop, name))

    def close(self) -> None:
        """Drop the spare and the template once every drop is done; raise the first error."""
        if self._spare is not None:
            spare = self._spare
            self._pending.append(self._pool.submit(lambda: self._drop(spare.result())))
        self._pending.append(self._pool.submit(self._drop, self.template))
        errors = [f.exception() for f in self._pending]
        if self._conn is not None:
            self._pool.submit(self._conn.close).result()
        self._pool.shutdown()
        for error in errors:
            if error is not None:
                raise error


def migrate_url(url: str) -> None:
    db = Database(url)
    try:
        upgrade(db)
    finally:
        db.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    if not PG_URL:
        yield None
        return
    databases = PostgresDatabases(PG_URL)
    try:
        databases.create_template()
        yield databases
    finally:
        databases.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate_url(f"sqlite:///{path}")
    return path


def _require_postgres(databases: PostgresDatabases | None) -> PostgresDatabases:
    if databases is None:
        if IN_CI:
            pytest.fail("CI must run the PostgreSQL tests: set RESYWATCH_TEST_DATABASE_URL")
        pytest.skip("set RESYWATCH_TEST_DATABASE_URL to run the PostgreSQL tests")
    return databases


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_databases: PostgresDatabases | None,
) -> Iterator[str]:
    """A fresh database at the current schema, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "resywatch.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    databases = _require_postgres(postgres_databases)
    url = databases.create(migrated=True)
    yield url
    databases.drop(url)


@pytest.fixture(params=BACKENDS)
def empty_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: PostgresDatabases | None
) -> Iterator[str]:
    """A fresh database with no schema at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    databases = _require_postgres(postgres_databases)
    url = databases.create(migrated=False)
    yield url
    databases.drop(url)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def postgres_db(postgres_databases: PostgresDatabases | None) -> Iterator[Database]:
    """A fresh PostgreSQL database at the current schema, for what only PostgreSQL does."""
    databases = _require_postgres(postgres_databases)
    url = databases.create(migrated=True)
    database = Database(url)
    yield database
    database.dispose()
    databases.drop(url)


def invoke(
    *args: str, expect: int = 0, env: dict[str, str] | None = None, input: str | None = None
) -> Result:
    """Run the CLI in-process; fail loudly, with its output, on an unexpected exit code."""
    result = CliRunner().invoke(app, list(args), env=env, input=input, catch_exceptions=True)
    if result.exit_code != expect:
        raise AssertionError(
            f"resywatch {' '.join(args)} exited {result.exit_code}, expected {expect}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
            f"exception: {result.exception!r}"
        )
    return result


@pytest.fixture
def cli() -> Any:
    """`cli("admin", "migrate", expect=0)`: see `invoke`."""
    return invoke


# --- running in parallel (`make test`: pytest-xdist) ---------------------------------------

#: Tests that judge what happened against the wall clock (deadlines, cycles, a drop instant,
#: requests per second) run one at a time in each of two lanes (xdist workers) at normal CPU
#: priority, while every other test runs beside them at a lower priority: on 2 cores a timed
#: test then has a core, and the rest of the suite uses what is left. They are marked
#: `timed`, so `pytest -m timed` (or `-m "not timed"`) runs them (or the rest) alone: every
#: test of the files below, and in other files the tests marked `@pytest.mark.timed`. The
#: lanes are the suite's critical path, so a test that is not judged on the clock stays out.
TIMED_FILES = {
    "tests/e2e/reliability/test_resy_faults.py",
    "tests/e2e/reliability/test_retention.py",
    "tests/e2e/reliability/test_sqlite_soak.py",
    "tests/e2e/reliability/test_workers.py",
    "tests/e2e/test_demo.py",
    "tests/e2e/test_politeness_e2e.py",
    "tests/unit/test_runner.py",
    "tests/e2e/test_scheduler.py",
    "tests/e2e/test_health_admin.py",
    "tests/e2e/test_booking_snipe.py",
    "tests/e2e/test_real_resy_snipe.py",
    "tests/e2e/test_booking_snipe_cli.py",
    "tests/unit/test_politeness.py",
}
BACKGROUND_NICE = 10


def _relative(item: pytest.Item) -> str:
    return item.path.relative_to(item.config.rootpath).as_posix()


def _run_order(item: pytest.Item) -> int:
    """Longest first, so no worker is left with a long test at the end: the reliability
    suite (about 3 minutes), then the demo, the end-to-end tests, the rest."""
    path = _relative(item)
    if path.startswith("tests/e2e/reliability/"):
        return 0
    if path == "tests/e2e/test_demo.py":
        return 1
    return 2 if path.startswith("tests/e2e/") else 3


def _timed(item: pytest.Item) -> bool:
    return item.get_closest_marker("timed") is not None or _relative(item) in TIMED_FILES


def _lane(item: pytest.Item) -> str:
    """The reliability suite and the demo (several busy processes each, about 3.5 minutes in
    all) in one lane, the other timed tests (about 3) in the other."""
    return "timed-processes" if _run_order(item) <= 1 else "timed"


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups off the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-xdist (--dist loadgroup) hands out the timed lanes first: they are the longest.
    items.sort(key=_run_order)  # stable: each file keeps its order
    for item in items:
        if _timed(item):
            item.add_marker(pytest.mark.timed)
            item.add_marker(pytest.mark.xdist_group(_lane(item)))


def pytest_collection_finish(session: pytest.Session) -> None:
    # pytest-xdist marks a group by a suffix of the test's id; where it cannot (pytest 9.2
    # and xdist 3.8), the timed tests would all run side by side: say so instead.
    if session.config.getoption("dist", "no") == "loadgroup" and os.environ.get(
        "PYTEST_XDIST_WORKER"
    ):
        loose = [i.nodeid for i in session.items if _timed(i) and "@" not in i.nodeid]
        if loose:
            raise pytest.UsageError(f"a timed lane is not an xdist group: {loose[0]}")


def _may_renice() -> bool:
    """Whether this process may lower its nice value again once it has raised it."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or not hasattr(os, "setpriority"):
        return False
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    return os.geteuid() == 0 or soft == resource.RLIM_INFINITY or soft >= 20


RENICE = _may_renice()


class BackendNicer:
    """PostgreSQL serves each connection from a server process of its own, which a test's nice
    value does not reach: a background test's queries would compete with a timed test's at
    full priority (a timed health check missed its 2 s by 90 ms so). A thread gives the
    server processes of this worker's databases (its name prefix) the worker's priority.
    Renicing another user's process needs root, as in CI; elsewhere it does nothing."""

    POLL_S = 0.2

    def __init__(self, server_url: str, prefix: str) -> None:
        self.conninfo = make_url(server_url).set(drivername="postgresql")
        self.prefix = prefix
        self.nice = 0
        self._applied: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rw-test-nicer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        conninfo = self.conninfo.render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            while not self._stop.wait(self.POLL_S):
                query = "SELECT pid FROM pg_stat_activity WHERE starts_with(datname, %s)"
                rows = conn.execute(query, (self.prefix,)).fetchall()
                self._apply({int(pid) for (pid,) in rows})

    def _apply(self, pids: set[int]) -> None:
        nice = self.nice
        self._applied = {pid: n for pid, n in self._applied.items() if pid in pids}
        for pid in pids:
            if self._applied.get(pid) == nice:
                continue
            with contextlib.suppress(PermissionError, ProcessLookupError):  # gone already
                os.setpriority(os.PRIO_PROCESS, pid, nice)
            self._applied[pid] = nice


NICER: BackendNicer | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global NICER
    if RENICE and PG_URL and os.geteuid() == 0:
        NICER = BackendNicer(PG_URL, database_prefix())
        NICER.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if NICER is not None:
        NICER.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Linux: the calling thread's; threads and processes the test starts inherit it.
    if RENICE:
        nice = 0 if _timed(item) else BACKGROUND_NICE
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        if NICER is not None:
            NICER.nice = nice
