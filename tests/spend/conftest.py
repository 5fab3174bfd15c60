"""Fixtures of the spend tests: a real SQLite file and a real PostgreSQL database per test.

Same scheme as tests/store: the schema is migrated once per session into a template that each
test copies (SQLite) or clones (PostgreSQL ``CREATE DATABASE … TEMPLATE``).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from trioproxy.store import Store, open_store, upgrade

from .spend_helpers import FakeClock


class PgDatabases:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self.admin = psycopg.connect(dsn, autocommit=True)
        self.created: list[str] = []

    def create(self, template: str | None = None) -> str:
        name = f"s_{uuid.uuid4().hex[:16]}"
        self.admin.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        self.created.append(name)
        return name

    def url(self, name: str) -> str:
        return f"{self.dsn.rpartition('/')[0]}/{name}"

    def drop(self, name: str) -> None:
        self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        for name in self.created:
            self.drop(name)
        self.admin.close()


@pytest.fixture(scope="session")
def spend_pg_databases(pg_dsn: str) -> Iterator[PgDatabases]:
    dbs = PgDatabases(pg_dsn)
    yield dbs
    dbs.close()


@pytest.fixture(scope="session")
def spend_pg_template(spend_pg_databases: PgDatabases) -> str:
    name = spend_pg_databases.create()
    upgrade(spend_pg_databases.url(name))
    return name


@pytest.fixture(scope="session")
def spend_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spend-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / "spend.db"
        shutil.copyfile(request.getfixturevalue("spend_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    dbs: PgDatabases = request.getfixturevalue("spend_pg_databases")
    name = dbs.create(template=request.getfixturevalue("spend_pg_template"))
    yield dbs.url(name)
    dbs.drop(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(db_url: str, clock: FakeClock) -> AsyncIterator[Store]:
    async with open_store(db_url, migrate=False, clock=clock) as st:
        yield st


@pytest.fixture
def outbox_dir(tmp_path: Path) -> Path:
    return tmp_path / "outbox"
