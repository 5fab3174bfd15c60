"""The invalidation bus: delivery, reset on (re)subscribe, staleness, over Redis and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import psycopg
import pytest
import trio
import trio.testing

from support.coordination_support import OwnRedisServer
from trioproxy.coordination.bus import (
    Invalidation,
    InvalidationBus,
    PostgresBus,
    RedisBus,
    notify_sql,
)
from trioproxy.coordination.errors import PostgresUnavailable
from trioproxy.coordination.redis import RedisClient

#: a guard against hanging, never an assertion about speed
HANG = 20


class Recorder:
    """A cache stand-in: what it was told, in order."""

    def __init__(self) -> None:
        self.seen: list[object] = []
        self.changed = trio.lowlevel.ParkingLot()

    def on_event(self, event: Invalidation) -> None:
        self.seen.append(event)
        self.changed.unpark_all()

    def on_reset(self) -> None:
        self.seen.append("reset")
        self.changed.unpark_all()

    async def wait_for(self, predicate: Callable[[list[object]], bool]) -> None:
        with trio.fail_after(HANG):
            while not predicate(self.seen):
                await self.changed.park()


def test_invalidation_wire_format() -> None:
    event = Invalidation("key", "9f86d081884c7d65")
    assert Invalidation.decode(event.encode().encode()) == event
    assert Invalidation.decode("team:t:with:colons") == Invalidation("team", "t:with:colons")
    assert Invalidation.decode(b"all:") == Invalidation("all")
    with pytest.raises(ValueError):
        Invalidation("a:b")
    sql, params = notify_sql(event)
    assert sql == "SELECT pg_notify(%s, %s)" and params == ("trioproxy_invalidate", "key:9f86d081884c7d65")


async def _start_redis_bus(url: str, channel: str, nursery: trio.Nursery) -> tuple[RedisBus, Recorder]:
    client = RedisClient(url)
    await nursery.start(client.run)
    bus = RedisBus(client, channel=channel)
    recorder = Recorder()
    bus.subscribe(recorder.on_event, recorder.on_reset)
    await nursery.start(bus.run)
    return bus, recorder


@pytest.fixture
async def two_redis_buses(redis_url: str, key_prefix: str,
                          nursery: trio.Nursery) -> AsyncIterator[list[tuple[RedisBus, Recorder]]]:
    buses = [await _start_redis_bus(redis_url, key_prefix + "inv", nursery) for _ in range(2)]
    yield buses
    nursery.cancel_scope.cancel()


async def test_redis_bus_delivers_to_every_subscriber(two_redis_buses: list[tuple[RedisBus, Recorder]]) -> None:
    (a, seen_a), (b, seen_b) = two_redis_buses
    assert isinstance(a, InvalidationBus)
    assert a.live and b.live and seen_a.seen == ["reset"] and seen_b.seen == ["reset"]
    await a.publish(Invalidation("key", "h1"))
    await b.publish(Invalidation("customer", "c-7"))
    expected = ["reset", Invalidation("key", "h1"), Invalidation("customer", "c-7")]
    await seen_a.wait_for(lambda s: len(s) == 3)
    await seen_b.wait_for(lambda s: len(s) == 3)
    assert seen_a.seen == expected and seen_b.seen == expected


async def test_a_failing_subscriber_does_not_stop_the_others(two_redis_buses: list[tuple[RedisBus, Recorder]]) -> None:
    (a, seen_a), _ = two_redis_buses

    def broken(event: Invalidation) -> None:
        raise RuntimeError("subscriber bug")
    sub = a.subscribe(broken, lambda: None)
    a._subscriptions.insert(0, a._subscriptions.pop())     # the broken one runs first
    await a.publish(Invalidation("key", "x"))
    await seen_a.wait_for(lambda s: Invalidation("key", "x") in s)
    sub.cancel()
    assert sub not in a._subscriptions


async def test_redis_bus_resets_when_down_and_after_resubscribing(nursery: trio.Nursery) -> None:
    server = OwnRedisServer()
    await trio.to_thread.run_sync(server.start)
    try:
        bus, seen = await _start_redis_bus(server.url, "inv", nursery)
        assert bus.live and seen.seen == ["reset"]
        server.kill()
        with trio.fail_after(HANG):
            await bus.wait_not_live()
        assert seen.seen == ["reset", "reset"]                 # known down: caches clear, read through
        await trio.to_thread.run_sync(server.start)
        with trio.fail_after(HANG):
            await bus.wait_live()
        assert seen.seen == ["reset", "reset", "reset"]        # resubscribed: clear what was missed
        with trio.fail_after(HANG):
            await bus.client.wait_connected()                   # the command connection is back too
        await bus.publish(Invalidation("key", "after-restart"))
        await seen.wait_for(lambda s: s[-1] == Invalidation("key", "after-restart"))
        assert bus.subscribed == 2
    finally:
        server.close()


async def test_redis_bus_goes_stale_without_pong(nursery: trio.Nursery) -> None:
    """A stopped server keeps the socket open: only the missing PONG reveals it."""
    server = OwnRedisServer()
    await trio.to_thread.run_sync(server.start)
    try:
        bus, seen = await _start_redis_bus(server.url, "inv", nursery)
        server.pause()
        with trio.fail_after(HANG):
            await bus.wait_not_live()
        assert seen.seen == ["reset", "reset"]
        server.resume()
        with trio.fail_after(HANG):
            await bus.wait_live()
        assert seen.seen[-1] == "reset" and bus.subscribed >= 2
    finally:
        server.close()


# -- PostgreSQL --------------------------------------------------------------------------------------
async def _start_pg_bus(dsn: str, channel: str, nursery: trio.Nursery) -> tuple[PostgresBus, Recorder]:
    bus = PostgresBus(dsn, channel=channel)
    recorder = Recorder()
    bus.subscribe(recorder.on_event, recorder.on_reset)
    await nursery.start(bus.run)
    with trio.fail_after(HANG):
        await bus.wait_live()
    return bus, recorder


def _channel(key_prefix: str) -> str:
    return "inv_" + key_prefix.split(":")[1]


async def test_postgres_bus_delivers_committed_notifies_only(pg_dsn: str, key_prefix: str,
                                                             nursery: trio.Nursery) -> None:
    channel = _channel(key_prefix)
    a, seen_a = await _start_pg_bus(pg_dsn, channel, nursery)
    b, seen_b = await _start_pg_bus(pg_dsn, channel, nursery)
    await a.publish(Invalidation("team", "t1"))

    def mutations() -> None:   # the store's way: NOTIFY inside the mutation's transaction
        with psycopg.connect(pg_dsn) as conn:
            with conn.transaction(force_rollback=True):
                conn.execute(*notify_sql(Invalidation("key", "rolled-back"), channel))
            with conn.transaction():
                conn.execute(*notify_sql(Invalidation("key", "committed"), channel))
    await trio.to_thread.run_sync(mutations)
    expected = ["reset", Invalidation("team", "t1"), Invalidation("key", "committed")]
    for seen in (seen_a, seen_b):
        await seen.wait_for(lambda s: len(s) >= 3)
        assert seen.seen == expected
    nursery.cancel_scope.cancel()


async def test_postgres_bus_resets_after_losing_its_connection(pg_dsn: str, key_prefix: str,
                                                               nursery: trio.Nursery) -> None:
    channel = _channel(key_prefix)
    bus, seen = await _start_pg_bus(pg_dsn, channel, nursery)

    await _terminate_by_pid(pg_dsn, bus)
    await seen.wait_for(lambda s: s.count("reset") == 3)        # subscribe, down, resubscribe
    assert bus.live and bus.subscribed == 2
    await bus.publish(Invalidation("user", "u1"))
    await seen.wait_for(lambda s: s[-1] == Invalidation("user", "u1"))
    nursery.cancel_scope.cancel()


async def _terminate_by_pid(dsn: str, bus: PostgresBus) -> None:
    session = bus._session_now
    assert session is not None
    pid = session.pgconn.backend_pid

    def terminate() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    await trio.to_thread.run_sync(terminate)


async def test_postgres_bus_unreachable_reports_and_retries(nursery: trio.Nursery) -> None:
    bus = PostgresBus("postgresql://nobody@127.0.0.1:1/none", backoff_max=0.05)
    await nursery.start(bus.run)
    assert not bus.live
    with pytest.raises(PostgresUnavailable):
        await bus.publish(Invalidation("key", "k"))
    nursery.cancel_scope.cancel()
