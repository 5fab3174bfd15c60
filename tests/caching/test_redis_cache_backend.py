"""``RedisResponseCache`` against a real Redis: writes are queued and bounded, drained at shutdown,
anything it did not write is a miss, and an error reply never fails a lookup."""

from __future__ import annotations

import uuid

import trio

from trioproxy.caching.redis_cache import RedisResponseCache
from trioproxy.coordination.redis import RedisClient


def _prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


async def test_stored_entries_round_trip_with_their_age(redis_url: str, nursery: trio.Nursery) -> None:
    cache = RedisResponseCache(RedisClient(redis_url), prefix=_prefix())
    await nursery.start(cache.run)
    await cache.client.wait_connected()
    cache.set("k", b'{"answer": 1}', ttl=600)
    await cache.drain(5)                                   # the queued write is sent before closing
    assert cache.stored == 1 and cache.dropped == 0

    reader = RedisResponseCache(RedisClient(redis_url), prefix=cache.prefix)
    await nursery.start(reader.run)
    await reader.client.wait_connected()
    assert await reader.get("k") == b'{"answer": 1}'
    assert await reader.get("k", max_age=60) == b'{"answer": 1}'       # just stored
    await reader.client.execute("PEXPIRE", cache.prefix + "k", 100_000)   # as if stored 500 s ago
    assert await reader.get("k", max_age=60) is None
    assert await reader.get("k", max_age=600) == b'{"answer": 1}'
    assert await reader.get("absent") is None
    await reader.drain(1)


async def test_what_this_cache_did_not_write_is_a_miss(redis_url: str, nursery: trio.Nursery) -> None:
    cache = RedisResponseCache(RedisClient(redis_url), prefix=_prefix())
    await nursery.start(cache.run)
    await cache.client.wait_connected()
    await cache.client.execute("SET", cache.prefix + "foreign", b"not a cache entry")
    await cache.client.execute("RPUSH", cache.prefix + "a-list", b"x")    # GET answers WRONGTYPE
    assert await cache.get("foreign") is None
    assert await cache.get("a-list") is None
    await cache.drain(1)


async def test_writes_beyond_the_queue_are_dropped_and_counted(redis_url: str, nursery: trio.Nursery) -> None:
    cache = RedisResponseCache(RedisClient(redis_url), prefix=_prefix(), queue_size=3)
    # not started: nothing consumes the queue, so the fourth and fifth writes find it full
    for i in range(5):
        cache.set(f"k{i}", b"v", ttl=60)
    cache.set("zero-ttl", b"v", ttl=0)                      # never stored, not even queued
    assert cache.dropped == 2
    await nursery.start(cache.run)
    await cache.drain(5)
    assert cache.stored == 3
    cache.set("after-close", b"v", ttl=60)                   # after drain: dropped, never raises
    assert cache.dropped == 3
