"""Shared fixtures: a clean environment per test, and a fresh database per test on SQLite
and on PostgreSQL (when RESYWATCH_TEST_DATABASE_URL names a server; in CI it must)."""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Iterator
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


class PostgresDatabases:
    """Creates throw-away databases on the test server, migrated ones cloned from a template."""

    def __init__(self, server_url: str) -> None:
        self.url = make_url(server_url)
        self.prefix = f"rw_test_{os.getpid()}"
        self.template = f"{self.prefix}_template"
        self.counter = itertools.count()
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection[Any]:
        conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(conninfo, autocommit=True)

    def url_for(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def create(self, *, migrated: bool) -> str:
        name = f"{self.prefix}_{next(self.counter)}"
        template = f" TEMPLATE {self.template}" if migrated else ""
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"{template}')  # type: ignore[arg-type]
        self.created.append(name)
        return self.url_for(name)

    def create_template(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.template}"')  # type: ignore[arg-type]
            conn.execute(f'CREATE DATABASE "{self.template}"')  # type: ignore[arg-type]
        migrate_url(self.url_for(self.template))

    def drop(self, url: str) -> None:
        name = make_url(url).database
        # An autovacuum worker may be connected for a moment, and FORCE may not end it
        # without pg_signal_backend: try again shortly instead of failing the test.
        for attempt in range(20):
            try:
                with self._admin() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]
                return
            except psycopg.errors.InsufficientPrivilege:
                if attempt == 19:
                    raise
                time.sleep(0.25)

    def drop_template(self) -> None:
        self.drop(self.url_for(self.template))


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
    databases.create_template()
    yield databases
    databases.drop_template()


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
