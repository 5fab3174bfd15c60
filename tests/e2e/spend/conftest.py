"""Fixtures of the wired spend tests: each module runs on a SQLite file and on PostgreSQL.

Module-scoped: one fake upstream, one empty database of the module's backend, one ``trioproxy run``
on it (``spend_config``: a priced model, no retries, ``max_end_user_budget`` for the brand-new
customers of the barrier test). Tests that restart or stop the proxy start their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.fake_upstream import FakeUpstream
from support.keys_support import UPSTREAM_KEY, Api, Database, make_database
from support.proxy_process import ProxyProcess, write_config
from support.spend_support import estimate_usd, spend_config

#: every barrier request's message has this length: one estimate for all of them
BARRIER_CONTENT = "barrier-00000000"
#: a budget that fits ten and a half estimates: ten are admitted with room left, the eleventh crosses
#: the line (served, as on LiteLLM), every later one is refused
BARRIER_BUDGET = round(10.5 * estimate_usd(BARRIER_CONTENT), 6)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def database(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    pg = request.getfixturevalue("pg_dsn") if backend == "postgresql" else None
    db = make_database(backend, tmp_path_factory.mktemp("db"), pg)
    yield db
    db.drop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        yield fake
        assert not fake.errors, fake.errors


@pytest.fixture(scope="module")
def proxy(database: Database, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    config = spend_config(upstream, database.url, litellm={"max_end_user_budget": BARRIER_BUDGET})
    process = ProxyProcess(write_config(tmp_path_factory.mktemp("proxy"), config))
    yield process
    process.kill()


@pytest.fixture(scope="module")
def api(proxy: ProxyProcess) -> Iterator[Api]:
    client = Api(proxy)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def fresh_upstream(upstream: FakeUpstream) -> None:
    """Every test scripts the upstream itself (and counts only its own requests)."""
    upstream.reset()
