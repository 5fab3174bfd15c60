"""The store's invalidation bus over Redis (coordination/shared_bus.py): this process at once, the
others through pub/sub; a publish that fails is retried, never dropped; an overflowing queue
collapses into one "all"."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from support.coordination_support import OwnRedisServer
from trioproxy.coordination.bus import Invalidation, RedisBus
from trioproxy.coordination.errors import RedisUnavailable
from trioproxy.coordination.redis import RedisClient
from trioproxy.coordination.shared_bus import SharedInvalidationBus
from trioproxy.store.invalidation import Invalidation as StoreInvalidation

#: a guard against hanging, never an assertion about speed
HANG = 20


class Cache:
    """A cache stand-in subscribed the store's way."""

    def __init__(self, bus: SharedInvalidationBus) -> None:
        self.seen: list[object] = []
        self.changed = trio.lowlevel.ParkingLot()
        bus.subscribe(self.on_event)
        bus.on_reset(self.on_reset)

    def on_event(self, event: object) -> None:
        self.seen.append((event.kind, event.id))  # type: ignore[attr-defined]
        self.changed.unpark_all()

    def on_reset(self) -> None:
        self.seen.append("reset")
        self.changed.unpark_all()

    async def wait_for(self, predicate: Callable[[list[object]], bool]) -> None:
        with trio.fail_after(HANG):
            while not predicate(self.seen):
                await self.changed.park()


async def _start(url: str, channel: str, nursery: trio.Nursery) -> tuple[SharedInvalidationBus, Cache]:
    client = RedisClient(url)
    await nursery.start(client.run)
    bus = SharedInvalidationBus(RedisBus(client, channel=channel))
    cache = Cache(bus)
    await nursery.start(bus.run)
    with trio.fail_after(HANG):
        await bus.channel.wait_live()
        await client.wait_connected()
    return bus, cache


async def test_this_process_at_once_the_others_through_redis(redis_url: str, key_prefix: str,
                                                             nursery: trio.Nursery) -> None:
    a, seen_a = await _start(redis_url, key_prefix + "inv", nursery)
    b, seen_b = await _start(redis_url, key_prefix + "inv", nursery)
    assert a.live and b.live
    a.publish(StoreInvalidation.key("h1"), StoreInvalidation.team("t1"))
    assert seen_a.seen == ["reset", ("key", "h1"), ("team", "t1")]        # before publish returned
    await seen_b.wait_for(lambda s: ("team", "t1") in s)
    assert seen_b.seen == ["reset", ("key", "h1"), ("team", "t1")]
    with trio.fail_after(HANG):
        await a.wait_sent()
    assert a.published == 2 and a.pending == 0
    # its own echo arrives too: dropping an entry twice is harmless
    await seen_a.wait_for(lambda s: s.count(("team", "t1")) == 2)
    nursery.cancel_scope.cancel()


async def test_redis_down_then_back(nursery: trio.Nursery) -> None:
    """Killed: both go not-live and clear; a publish meanwhile waits and goes out once Redis is back;
    the other process clears again when it resubscribes (whatever it missed)."""
    server = OwnRedisServer()
    await trio.to_thread.run_sync(server.start)
    try:
        a, seen_a = await _start(server.url, "inv", nursery)
        b, seen_b = await _start(server.url, "inv", nursery)
        server.kill()
        with trio.fail_after(HANG):
            await a.channel.wait_not_live()
            await b.channel.wait_not_live()
        assert not a.live and not b.live
        assert seen_b.seen == ["reset", "reset"]
        a.publish(StoreInvalidation.customer("c1"))
        assert seen_a.seen[-1] == ("customer", "c1")       # here at once, whatever Redis does
        assert a.pending == 1
        await trio.to_thread.run_sync(server.start)
        with trio.fail_after(HANG):
            await a.wait_sent()
            await b.channel.wait_live()
        # b cleared its cache when it resubscribed, and got c1 unless it published before that
        await seen_b.wait_for(lambda s: s.count("reset") == 3)
        assert a.pending == 0
    finally:
        server.close()
    nursery.cancel_scope.cancel()


class FlakyChannel:
    """A RedisBus stand-in whose PUBLISH fails ``failures`` times (unit test of the sender)."""

    live = True

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[Invalidation] = []

    def subscribe(self, on_event: object, on_reset: object) -> None:
        pass

    async def publish(self, event: Invalidation) -> None:
        await trio.lowlevel.checkpoint()
        if self.failures:
            self.failures -= 1
            raise RedisUnavailable("down")
        self.sent.append(event)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109
        await trio.lowlevel.checkpoint()


async def test_a_failed_publish_is_retried_in_order(nursery: trio.Nursery,
                                                    autojump_clock: trio.testing.MockClock) -> None:
    channel = FlakyChannel(failures=5)
    bus = SharedInvalidationBus(channel)  # type: ignore[arg-type]
    await nursery.start(bus.run)
    bus.publish(StoreInvalidation.key("a"), StoreInvalidation.key("b"))
    await bus.wait_sent()
    bus.publish(StoreInvalidation.user("u"))
    await bus.wait_sent()
    assert channel.sent == [Invalidation("key", "a"), Invalidation("key", "b"), Invalidation("user", "u")]
    assert bus.publish_failures == 5
    nursery.cancel_scope.cancel()


@pytest.mark.parametrize("fail_first", [False, True])
async def test_an_overflowing_queue_collapses_into_all(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
                                                       fail_first: bool) -> None:
    channel = FlakyChannel(failures=1_000_000)
    bus = SharedInvalidationBus(channel, max_pending=3)  # type: ignore[arg-type]
    await nursery.start(bus.run)
    bus.publish(*[StoreInvalidation.key(str(i)) for i in range(5)])
    assert bus.pending == 1                        # one "all" stands for all of them
    await trio.sleep(1)
    channel.failures = 1 if fail_first else 0
    await bus.wait_sent()
    assert channel.sent == [Invalidation("all")]
    bus.publish(StoreInvalidation.key("after"))
    await bus.wait_sent()
    assert channel.sent == [Invalidation("all"), Invalidation("key", "after")]
    nursery.cancel_scope.cancel()
