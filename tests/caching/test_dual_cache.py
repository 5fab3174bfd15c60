"""``DualCache`` (``caching/dual_cache.py``): the cache handed to pre-call hooks."""

from __future__ import annotations

import pytest

from trioproxy import DualCache


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A hand-driven monotonic clock for the cache's TTLs."""
    now = [1000.0]
    monkeypatch.setattr("trioproxy.caching.dual_cache.time.monotonic", lambda: now[0])
    return now


def test_sync_get_set_ttl_and_delete(clock):
    cache = DualCache()
    assert cache.get_cache("missing") is None
    cache.set_cache("k", {"v": 1}, ttl=10)
    assert cache.get_cache(key="k") == {"v": 1}
    clock[0] += 9.999
    assert cache.get_cache("k") == {"v": 1}
    clock[0] += 0.001
    assert cache.get_cache("k") is None                       # expired exactly at its TTL
    cache.set_cache("k", 1)
    cache.delete_cache("k")
    assert cache.get_cache("k") is None


def test_increment_keeps_the_window(clock):
    cache = DualCache()
    assert cache.increment_cache("n", 1, ttl=60) == 1
    clock[0] += 30
    assert cache.increment_cache("n", 2) == 3                 # no TTL given: the first one's window stays
    clock[0] += 30
    assert cache.get_cache("n") is None


async def test_async_forms_share_the_store(clock):
    cache = DualCache(default_ttl=5)
    await cache.async_set_cache("a", "x")
    assert cache.get_cache("a") == "x"
    assert await cache.async_increment_cache("b", 2) == 2
    assert await cache.async_batch_get_cache(["a", "b", "c"]) == ["x", 2, None]
    clock[0] += 5
    assert await cache.async_get_cache("a") is None            # the default TTL applies


def test_max_size_evicts_expired_then_oldest(clock):
    cache = DualCache(max_size=2)
    cache.set_cache("old", 1, ttl=1)
    cache.set_cache("keep", 2)
    clock[0] += 2
    cache.set_cache("new", 3)                                  # "old" expired: it goes first
    assert cache.get_cache("keep") == 2 and cache.get_cache("new") == 3
    cache.set_cache("newest", 4)                               # full: the oldest entry goes
    assert cache.get_cache("keep") is None and len(cache) == 2






