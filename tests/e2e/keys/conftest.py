"""Fixtures of the virtual-key end-to-end tests: each module runs on SQLite and on PostgreSQL.

Module-scoped: one fake upstream, one fake LLM Guard, one empty database of the module's backend
and one ``trioproxy run`` on it (its startup migrations create the schema). Tests that restart the
proxy or break its database start their own (``start_keys_proxy``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.fake_upstream import FakeUpstream
from support.keys_support import (
    UPSTREAM_KEY,
    Api,
    Database,
    FakeGuard,
    keys_config,
    make_database,
    start_keys_proxy,
)
from support.proxy_process import ProxyProcess


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def pg(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL server's DSN for the PostgreSQL half (never skipped: see ``pg_dsn``)."""
    return request.getfixturevalue("pg_dsn") if backend == "postgresql" else None  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def database(backend: str, pg: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = make_database(backend, tmp_path_factory.mktemp("db"), pg)
    yield db
    db.drop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake
        assert not fake.errors, fake.errors


@pytest.fixture(scope="module")
def guard() -> Iterator[FakeGuard]:
    with FakeGuard() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def proxy(database: Database, upstream: FakeUpstream, guard: FakeGuard,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    process = start_keys_proxy(tmp_path_factory.mktemp("proxy"), keys_config(upstream, database.url), guard)
    yield process
    process.kill()


@pytest.fixture(scope="module")
def api(proxy: ProxyProcess) -> Iterator[Api]:
    client = Api(proxy)
    yield client
    client.close()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
