"""The caches during outages (issue #13): while the invalidation bus is down entries live about a
second (bounded staleness); while the store is down and the bus live, an expired entry still
answers (cached keys keep working), an unknown key does not."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trioproxy.store.errors import StoreUnavailable
from trioproxy.store.loading_cache import MISS, LoadingCache


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Backend:
    """The loader: rows by key, or down."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {"k": "v1"}
        self.down = False
        self.loads = 0

    async def load(self, key: str) -> str | None:
        self.loads += 1
        if self.down:
            raise StoreUnavailable("database unavailable")
        return self.rows.get(key)


def make(live: list[bool]) -> tuple[LoadingCache[str], Backend, Monotonic]:
    backend, clock = Backend(), Monotonic()
    cache: LoadingCache[str] = LoadingCache(backend.load, ttl=60, negative_ttl=10, monotonic=clock,
                                            live=lambda: live[0], down_ttl=1.0, stale_errors=(StoreUnavailable,))
    return cache, backend, clock


async def test_while_the_bus_is_down_entries_live_one_second() -> None:
    live = [False]
    cache, backend, clock = make(live)
    assert await cache.get("k") == "v1" and await cache.get("nobody") is None
    backend.rows["k"] = "v2"                     # changed elsewhere; the invalidation is lost
    backend.rows["nobody"] = "new"
    clock.now += 0.999
    assert cache.lookup("k") == "v1" and cache.lookup("nobody") is None
    clock.now += 0.002
    assert cache.lookup("k") is MISS and cache.lookup("nobody") is MISS
    assert await cache.get("k") == "v2" and await cache.get("nobody") == "new"


async def test_while_the_bus_is_live_the_ttl_applies() -> None:
    live = [True]
    cache, backend, clock = make(live)
    await cache.get("k")
    clock.now += 59
    assert cache.lookup("k") == "v1" and backend.loads == 1


async def test_store_down_bus_live_an_expired_entry_answers() -> None:
    live = [True]
    cache, backend, clock = make(live)
    await cache.get("k")
    backend.down = True
    clock.now += 61
    assert cache.lookup("k") is MISS
    assert await cache.get("k") == "v1"
    assert cache.stats.stale_served == 1
    with pytest.raises(StoreUnavailable):        # unknown keys: the store's 503, never a guess
        await cache.get("never-seen")
    backend.down = False
    clock.now += 1.0                              # after the fail-fast second (see the test below)
    assert await cache.get("k") == "v1" and cache.lookup("k") == "v1"     # reloaded, fresh again


async def test_store_down_bus_down_nothing_stale_answers() -> None:
    live = [True]
    cache, backend, clock = make(live)
    await cache.get("k")
    live[0] = False
    backend.down = True
    clock.now += 61
    with pytest.raises(StoreUnavailable):
        await cache.get("k")


async def test_an_invalidated_entry_never_answers_stale() -> None:
    live = [True]
    cache, backend, clock = make(live)
    await cache.get("k")
    cache.invalidate(["k"])
    backend.down = True
    with pytest.raises(StoreUnavailable):
        await cache.get("k")


async def test_while_the_store_is_down_misses_fail_fast_and_one_probe_tries_again() -> None:


    live = [True]
    cache, backend, clock = make(live)
    await cache.get("k")
    clock.now += 61
    backend.down = True
    assert await cache.get("k") == "v1"              # a cached key still answers (stale, bus live)
    assert backend.loads == 2
    with pytest.raises(StoreUnavailable):            # within the fail-fast second: no load at all
        await cache.get("a")
    with pytest.raises(StoreUnavailable):
        await cache.get("b")
    assert await cache.get("k") == "v1" and backend.loads == 2
    clock.now += 1.0                                 # the second is over: the next miss probes
    backend.down = False
    release = trio.Event()
    original = backend.load

    async def slow_load(key: str) -> str | None:
        await release.wait()
        return await original(key)
    cache._load = slow_load  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cache.get, "probe")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(StoreUnavailable):        # while the probe runs, others still fail fast
            await cache.get("c")
        release.set()
    assert backend.loads == 3
    assert await cache.get("nobody") is None and backend.loads == 4      # the store is back: loads again
