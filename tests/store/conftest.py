"""Fixtures of the store tests: every test runs against a real SQLite file and a real PostgreSQL.

The schema is migrated once per session into a template (a SQLite file that each test copies, a
PostgreSQL database each test clones with ``CREATE DATABASE … TEMPLATE``), so each test gets its
own empty, fully migrated database in milliseconds instead of running Alembic every time.
The migration tests themselves start from empty databases (``empty_db_url``).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from trioproxy.admin import AdminContext
from trioproxy.store import Store, open_store, upgrade

from .store_helpers import FakeClock, FakeMonotonic


def _pg_url(dsn: str, dbname: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{dbname}"


class PgDatabases:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self.admin = psycopg.connect(dsn, autocommit=True)
        self.created: list[str] = []

    def create(self, template: str | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        clause = f" TEMPLATE {template}" if template else ""
        self.admin.execute(f"CREATE DATABASE {name}{clause}")
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def url(self, name: str) -> str:
        return _pg_url(self.dsn, name)

    def close(self) -> None:
        for name in self.created:
            self.drop(name)
        self.admin.close()


@pytest.fixture(scope="session")
def pg_databases(pg_dsn: str) -> Iterator[PgDatabases]:
    dbs = PgDatabases(pg_dsn)
    yield dbs
    dbs.close()


@pytest.fixture(scope="session")
def pg_template(pg_databases: PgDatabases) -> str:
    name = pg_databases.create()
    upgrade(pg_databases.url(name))
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database of the test's backend."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "store.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    name = dbs.create(template=request.getfixturevalue("pg_template"))
    yield dbs.url(name)
    dbs.drop(name)


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database with no schema at all."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    name = dbs.create()
    yield dbs.url(name)
    dbs.drop(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def make_store(db_url: str, clock: FakeClock, monotonic: FakeMonotonic) -> Callable[..., object]:
    """``async with make_store(audit=True) as store`` — a running store on the test's database."""
    def make(**options: object) -> object:
        options.setdefault("audit", True)
        options.setdefault("clock", clock)
        options.setdefault("monotonic", monotonic)
        return open_store(db_url, migrate=False, **options)

    return make


@pytest.fixture
async def store(make_store: Callable[..., object]) -> AsyncIterator[Store]:
    async with make_store() as st:  # type: ignore[attr-defined]
        yield st


@pytest.fixture
def admin(store: Store) -> AdminContext:
    return AdminContext(store)
