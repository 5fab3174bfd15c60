"""Fixtures of the coordination tests: a Redis client on the suite's server, unique key prefixes,
a fake clock that both limiter implementations read."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from support.coordination_support import FakeClock, OwnRedisServer
from trioproxy.coordination.redis import RedisClient


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def key_prefix() -> str:
    """A prefix of its own for every test: tests share one Redis server and never see each other."""
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def redis_client(redis_url: str, nursery: trio.Nursery) -> AsyncIterator[RedisClient]:
    client = RedisClient(redis_url)
    await nursery.start(client.run)
    await client.wait_connected()
    yield client
    await client.aclose()


@pytest.fixture
def own_redis() -> Iterator[OwnRedisServer]:
    """A redis-server of this test's own (it may be killed, stopped, restarted)."""
    server = OwnRedisServer()
    server.start()
    yield server
    server.close()
