"""Redis killed, stopped and restarted under the client, the limiter and admit's policy.

Each test starts a redis-server of its own on a free port (the suite's shared server is never
touched). Assertions are about *which* error and *what state* results, never about how fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio
import trio.testing

from support.coordination_support import OwnRedisServer
from trioproxy.coordination.errors import RedisTimeout, RedisUnavailable
from trioproxy.coordination.limiter import Check, Kind, admit
from trioproxy.coordination.limiter_redis import RESERVE, RedisLimiter
from trioproxy.coordination.redis import RedisClient
from trioproxy.errors import ServiceUnavailableError

HANG = 20   # a guard against hanging, not a speed assertion


@pytest.fixture
async def server() -> AsyncIterator[OwnRedisServer]:
    own = OwnRedisServer()
    await trio.to_thread.run_sync(own.start)
    yield own
    own.close()


@pytest.fixture
async def client(server: OwnRedisServer, nursery: trio.Nursery) -> AsyncIterator[RedisClient]:
    redis = RedisClient(server.url, timeout=0.5)
    await nursery.start(redis.run)
    assert redis.connected
    yield redis
    await redis.aclose()


async def test_kill_fails_pending_and_new_calls_then_reconnects_and_reloads_scripts(
        server: OwnRedisServer, client: RedisClient) -> None:
    limiter = RedisLimiter(client, prefix="lim:")
    rpm = [Check("k", Kind.RPM, limit=5)]
    assert (await limiter.reserve("before", rpm)).admitted      # RESERVE is in the script cache
    errors: list[BaseException] = []

    async def pending() -> None:
        try:
            await client.execute("BLPOP", "nothing", 30, timeout=HANG)
        except RedisUnavailable as exc:
            errors.append(exc)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pending)
        await trio.testing.wait_all_tasks_blocked()
        await trio.to_thread.run_sync(server.kill)
    assert len(errors) == 1 and not isinstance(errors[0], RedisTimeout)   # dropped, not timed out
    with trio.fail_after(HANG):
        await client.wait_unavailable()                                  # the reconnect attempt failed
    with pytest.raises(RedisUnavailable):
        await client.execute("PING")
    with pytest.raises(ServiceUnavailableError):                         # the default policy: 503
        await admit(limiter, "during", rpm)
    assert (await admit(limiter, "during", rpm, fail_open=True)).degraded

    await trio.to_thread.run_sync(server.start)                          # same port, empty server
    with trio.fail_after(HANG):
        await client.wait_connected()
    assert client.connections == 2
    assert await client.execute("SCRIPT", "EXISTS", RESERVE.sha) == [0]  # the new server lost it
    assert (await limiter.reserve("after", rpm)).used == (1,)            # NOSCRIPT → EVAL, transparent
    assert await client.execute("SCRIPT", "EXISTS", RESERVE.sha) == [1]


async def test_a_stopped_server_times_out_calls_and_recovers(server: OwnRedisServer,
                                                             client: RedisClient) -> None:
    server.pause()
    try:
        with pytest.raises(RedisTimeout):
            await client.execute("PING")
        # the watchdog drops the silent connection; the reconnect's handshake times out: down
        with trio.fail_after(HANG):
            await client.wait_unavailable()
        with pytest.raises(RedisUnavailable):
            await client.execute("PING")
    finally:
        server.resume()
    with trio.fail_after(HANG):
        await client.wait_connected()
    assert await client.execute("PING") == b"PONG"


async def test_calls_fail_at_once_while_down_and_never_hang(nursery: trio.Nursery) -> None:
    """Nothing listens: the first attempt fails, run() still starts, every call gets the error."""
    from support.coordination_support import free_port
    redis = RedisClient(f"redis://127.0.0.1:{free_port()}/0")
    await nursery.start(redis.run)
    assert not redis.connected
    for command in (("PING",), ("GET", "x")):
        with pytest.raises(RedisUnavailable, match="Redis unavailable"):
            await redis.execute(*command)
    with pytest.raises(RedisUnavailable):
        await redis.evalsha(RESERVE, ["a", "b"], ["r", "", 1000])
    await redis.aclose()


async def test_a_cancelled_reserve_is_released_by_request_id(server: OwnRedisServer,
                                                             client: RedisClient) -> None:
    """The caller gave up waiting (deadline, disconnect) after its script was sent; the script
    still runs. release() by request id in the caller's finally frees what it took: it travels
    on the same connection, so Redis runs it after the reserve."""
    limiter = RedisLimiter(client, prefix="lim:")
    slot = [Check("k", Kind.MAX_PARALLEL, limit=1)]
    assert await limiter.release("warm-up") is False   # loads the scripts (no NOSCRIPT round below)
    await limiter.reserve("warm-up", [Check("other", Kind.RPM, limit=1)])
    server.pause()                                   # the reserve is sent but not run yet
    try:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(limiter.reserve, "gave-up", slot))
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
        assert scope.cancelled_caught
    finally:
        server.resume()
    assert await limiter.release("gave-up") is True  # the reserve had run: its slot is freed
    assert await limiter.usage(slot) == (0,)
    assert (await limiter.reserve("next", slot)).admitted



@pytest.mark.parametrize(("state", "undo", "code"), [
    (("CONFIG", "SET", "maxmemory", "1"), ("CONFIG", "SET", "maxmemory", "0"), "OOM"),
    (("REPLICAOF", "127.0.0.1", "1"), ("REPLICAOF", "NO", "ONE"), "READONLY"),
])
async def test_a_redis_that_cannot_take_writes_gets_the_failure_policy(
        server: OwnRedisServer, client: RedisClient, state: tuple[str, ...], undo: tuple[str, ...],
        code: str) -> None:
    """Out of memory under ``noeviction``, a read-only replica after a failover, a server still
    loading its data: every reserve gets an error reply. That is the shared state being unavailable,
    so admit() applies the failure policy (503, or degraded when failing open), not a bare error."""
    limiter = RedisLimiter(client, prefix="lim:")
    checks = [Check("k", Kind.MAX_PARALLEL, limit=10, window=None)]
    assert (await admit(limiter, "before", checks)).admitted
    await client.execute(*state)
    try:
        with pytest.raises(ServiceUnavailableError) as info:
            await admit(limiter, "refused-1", checks)
        assert code in str(info.value.__cause__)
        assert (await admit(limiter, "refused-2", checks, fail_open=True)).degraded
    finally:
        await client.execute(*undo)
    assert (await admit(limiter, "after", checks)).admitted
