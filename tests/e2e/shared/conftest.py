"""Fixtures of the shared-state tests: a fresh PostgreSQL database per module, the suite's Redis,
a fake upstream, and two ``trioproxy run`` instances of one config on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.fake_upstream import FakeUpstream
from support.keys_support import Database, make_database
from support.shared_support import UPSTREAM_KEY, Cluster, shared_config


@pytest.fixture(scope="module")
def database(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = make_database("postgresql", tmp_path_factory.mktemp("db"), pg_dsn)
    yield db
    db.drop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def cluster(database: Database, upstream: FakeUpstream, redis_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("cluster"), shared_config(upstream, database.url, redis_url)).running() as c:
        yield c
