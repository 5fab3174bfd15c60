"""The Trio Redis client against real servers: the suite's, and ones a test starts for itself."""

from __future__ import annotations

import socket
from functools import partial

import pytest
import trio
import trio.testing

from support.coordination_support import OwnRedisServer
from trioproxy.coordination.errors import (
    CoordinationUnavailable,
    RedisReplyError,
    RedisTimeout,
    RedisUnavailable,
)
from trioproxy.coordination.redis import RedisClient, RedisConnection, RedisURL, Script


# -- URLs -------------------------------------------------------------------------------------------
def test_url_forms() -> None:
    url = RedisURL.parse("redis://:s3cret@cache.internal:6380/2")
    assert (url.host, url.port, url.db, url.username, url.password, url.tls) == (
        "cache.internal", 6380, 2, None, "s3cret", False)
    assert "s3cret" not in repr(url) and "s3cret" not in str(url) and "password=***" in repr(url)
    acl = RedisURL.parse("rediss://proxy:p%40ss@h/0?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem")
    assert (acl.username, acl.password, acl.tls, acl.tls_verify, acl.tls_ca_file, acl.port) == (
        "proxy", "p@ss", True, False, "/ca.pem", 6379)
    assert RedisURL.parse("redis://localhost").db == 0
    assert RedisURL.parse("redis://h?db=3").db == 3
    sock = RedisURL.parse("unix:///run/redis.sock?db=1")
    assert (sock.unix_path, sock.db, sock.address) == ("/run/redis.sock", 1, "unix:///run/redis.sock")


@pytest.mark.parametrize(("url", "message"), [
    ("http://h:1", "must start with redis://"),
    ("redis://h:1/x", "database must be a number"),
    ("redis://h:99999", "port must be a number"),
    ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
    ("unix://", "needs a socket path"),
])
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisURL.parse(url)


# -- calls on the shared server ------------------------------------------------------------------
async def test_commands_replies_and_typed_errors(redis_client: RedisClient, key_prefix: str) -> None:
    key = key_prefix + "a"
    assert await redis_client.execute("SET", key, "1") == b"OK"
    assert await redis_client.execute("INCRBY", key, 41) == 42
    assert await redis_client.execute("GET", key_prefix + "missing") is None
    with pytest.raises(RedisReplyError) as info:
        await redis_client.execute("HGET", key, "field")
    assert info.value.code == "WRONGTYPE"
    assert not isinstance(info.value, CoordinationUnavailable)   # a bug, not an outage
    assert await redis_client.execute("PING") == b"PONG"          # the connection is still fine


async def test_many_concurrent_callers_share_one_connection(redis_client: RedisClient) -> None:
    got: dict[int, bytes] = {}

    async def echo(i: int) -> None:
        got[i] = await redis_client.execute("ECHO", f"m{i}")

    async with trio.open_nursery() as nursery:
        for i in range(500):
            nursery.start_soon(echo, i)
    assert got == {i: f"m{i}".encode() for i in range(500)}
    assert redis_client.connections == 1


async def test_a_cancelled_callers_reply_is_read_and_dropped(redis_client: RedisClient,
                                                            key_prefix: str) -> None:
    """The cancelled BLPOP's reply arrives later and must not be taken by the call behind it."""
    key = key_prefix + "list"
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(redis_client.execute, "BLPOP", key, 5, timeout=10))
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()

    async def after() -> bytes:
        return await redis_client.execute("ECHO", "mine", timeout=10)

    async with trio.open_nursery() as nursery:
        result: list[bytes] = []

        async def run_after() -> None:
            result.append(await after())
        nursery.start_soon(run_after)
        await trio.testing.wait_all_tasks_blocked()
        assert not result                                  # queued behind the blocked BLPOP
        async with await redis_client.open_connection() as other:
            await other.execute("LPUSH", key, "for-the-cancelled-one")
    assert result == [b"mine"]
    assert await redis_client.execute("LLEN", key) == 0    # the BLPOP did pop it: reply dropped


async def test_a_direct_write_the_socket_takes_in_part_is_finished_before_what_follows(
        redis_client: RedisClient, key_prefix: str) -> None:
    """A quiet connection's command is written by its caller (redis.py, "Direct write"); what the
    socket does not take at once goes to the writer task, and a command sent meanwhile queues behind
    it. A 4 KiB send buffer makes the 1 MiB command's direct write partial."""
    mux = redis_client._mux
    assert mux is not None and mux.sock is not None
    mux.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    key, value = key_prefix + "big", b"x" * (1 << 20)
    results: dict[str, object] = {}

    async def big() -> None:
        results["set"] = await redis_client.execute("SET", key, value, timeout=30)

    async def small() -> None:
        results["echo"] = await redis_client.execute("ECHO", "after", timeout=30)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(big)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(small)
    assert results == {"set": b"OK", "echo": b"after"}
    assert await redis_client.execute("GET", key) == value
    assert redis_client.connections == 1


async def test_a_call_without_reply_in_time_raises_redis_timeout(redis_client: RedisClient,
                                                                 key_prefix: str) -> None:
    with pytest.raises(RedisTimeout):
        await redis_client.execute("BLPOP", key_prefix + "never", 0.2, timeout=0.05)
    assert issubclass(RedisTimeout, RedisUnavailable)
    assert await redis_client.execute("ECHO", "next", timeout=5) == b"next"


async def test_evalsha_reloads_after_noscript(redis_client: RedisClient, key_prefix: str) -> None:
    script = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await redis_client.evalsha(script, [key_prefix + "n"], [2]) == 2
    await redis_client.execute("SCRIPT", "FLUSH")              # what a restarted server looks like
    assert await redis_client.evalsha(script, [key_prefix + "n"], [3]) == 5
    assert await redis_client.execute("SCRIPT", "EXISTS", script.sha) == [1]   # cached again
    with pytest.raises(RedisReplyError, match="boom"):
        await redis_client.evalsha(Script("return redis.error_reply('boom')"))


async def test_execute_many_sends_back_to_back(redis_client: RedisClient, key_prefix: str) -> None:
    key = key_prefix + "m"
    replies = await redis_client.execute_many([("SET", key, 1), ("INCR", key), ("HGET", key, "x")])
    assert replies[:2] == [b"OK", 2] and isinstance(replies[2], RedisReplyError)


async def test_drain_lets_pending_replies_arrive_then_closes(redis_url: str, key_prefix: str) -> None:
    client = RedisClient(redis_url)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        results: list[object] = []

        async def slow() -> None:
            results.append(await client.execute("BLPOP", key_prefix + "d", 5, timeout=10))
        nursery.start_soon(slow)
        await trio.testing.wait_all_tasks_blocked()
        async with await client.open_connection() as other:
            await other.execute("LPUSH", key_prefix + "d", "x")
        await client.drain(5)
    assert results == [[(key_prefix + "d").encode(), b"x"]]
    with pytest.raises(RedisUnavailable, match="closed"):
        await client.execute("PING")


# -- stream primitives for the spend outbox ----------------------------------------------------------
async def test_stream_outbox_primitives(redis_client: RedisClient, key_prefix: str) -> None:
    stream, group = key_prefix + "spend", "flushers"
    assert await redis_client.xgroup_create(stream, group) is True
    assert await redis_client.xgroup_create(stream, group) is False        # every instance may call it
    ids = [await redis_client.xadd(stream, {"request_id": f"r{i}", "micros": i * 10}) for i in range(3)]
    first = await redis_client.xreadgroup(group, "instance-a", stream, count=2)
    assert [e.id for e in first] == ids[:2]
    assert first[0].fields == {b"request_id": b"r0", b"micros": b"0"}
    assert await redis_client.xpending_count(stream, group) == 2
    assert await redis_client.xack(stream, group, ids[0]) == 1
    assert await redis_client.xack(stream, group, ids[0]) == 0             # acknowledged once
    # instance-a dies holding ids[1]: instance-b claims it, then reads what is new
    next_start, claimed, deleted = await redis_client.xautoclaim(stream, group, "instance-b", 0)
    assert next_start == b"0-0" and [e.id for e in claimed] == [ids[1]] and deleted == []
    assert [e.id for e in await redis_client.xreadgroup(group, "instance-b", stream)] == [ids[2]]
    # its own pending history ("0") shows both; after XACK nothing is pending
    assert [e.id for e in await redis_client.xreadgroup(group, "instance-b", stream, start="0")] == ids[1:]
    assert await redis_client.xack(stream, group, *ids[1:]) == 2
    assert await redis_client.xpending_count(stream, group) == 0
    assert await redis_client.xdel(stream, *ids) == 3
    with pytest.raises(ValueError, match="stall the shared connection"):
        await redis_client.xreadgroup(group, "c", stream, block_ms=100)


async def test_blocking_read_on_a_dedicated_connection(redis_client: RedisClient, key_prefix: str) -> None:
    stream, group = key_prefix + "s", "g"
    await redis_client.xgroup_create(stream, group)
    async with await redis_client.open_connection() as conn:
        got: list[object] = []

        async def reader() -> None:
            got.extend(await conn.xreadgroup(group, "c", stream, block_ms=10_000, timeout=15))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            entry_id = await redis_client.xadd(stream, {"k": "v"}, maxlen=1000)
        assert [e.id for e in got] == [entry_id]                 # type: ignore[attr-defined]


async def test_a_dedicated_connection_cancelled_mid_call_never_hands_out_a_stale_reply(
        redis_client: RedisClient, key_prefix: str) -> None:
    """The caller's own scope (not the call's timeout) cancels a blocking read: its reply still
    comes later, so the connection must not answer the next command with it."""
    async with await redis_client.open_connection() as conn:
        with trio.move_on_after(0.05) as scope:
            await conn.execute("BLPOP", key_prefix + "empty", "0.3", timeout=None)
        assert scope.cancelled_caught
        try:
            reply = await conn.execute("PING", timeout=5)
        except RedisUnavailable:
            return                                               # closed: the caller opens another
        assert reply == b"PONG"                                  # never the BLPOP's late nil


async def test_a_server_that_accepts_then_hangs_up_is_retried_with_backoff(
        monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock) -> None:
    """``maxclients`` reached (or a TCP proxy in front of a dead Redis): the connection opens, the
    handshake gets ``-ERR max number of clients reached``, then EOF. The client must back off like
    after a refused connection, not reconnect in a loop that never yields (hundreds per second,
    a warning each)."""
    from trioproxy.coordination import redis as redis_module

    opened = 0

    async def hang_up(url: RedisURL) -> trio.abc.Stream:
        nonlocal opened
        opened += 1
        if opened > 100:
            pytest.fail("reconnected 100 times without backing off")
        incoming = trio.testing.MemoryReceiveStream()
        incoming.put_data(b"-ERR max number of clients reached\r\n")
        incoming.put_eof()
        await trio.lowlevel.checkpoint()
        return trio.StapledStream(trio.testing.MemorySendStream(), incoming)

    monkeypatch.setattr(redis_module, "_open_stream", hang_up)
    client = RedisClient("redis://127.0.0.1:6379/0")
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert 3 <= opened <= 20                         # 50 ms doubling to 1 s: about a dozen in 10 s


# -- servers of the test's own: auth, select, TLS --------------------------------------------------
async def test_password_and_database_selection() -> None:
    server = OwnRedisServer("--requirepass", "pw-SECRET-1")
    await trio.to_thread.run_sync(server.start)
    try:
        client = RedisClient(f"redis://:pw-SECRET-1@127.0.0.1:{server.port}/3")
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            assert client.connected
            await client.execute("SET", "where", "db3")
            async with await RedisConnection.open(f"redis://:pw-SECRET-1@127.0.0.1:{server.port}/0") as db0:
                assert await db0.execute("GET", "where") is None
                await db0.execute("SELECT", 3)
                assert await db0.execute("GET", "where") == b"db3"
            await client.aclose()
        with pytest.raises(RedisUnavailable) as info:
            await RedisConnection.open(f"redis://:wrong-SECRET@127.0.0.1:{server.port}/0")
        assert "AUTH" in str(info.value) and "SECRET" not in str(info.value)
    finally:
        server.close()


async def test_acl_user_with_username_and_password(own_redis: OwnRedisServer) -> None:
    async with await RedisConnection.open(own_redis.url) as admin:
        await admin.execute("ACL", "SETUSER", "proxy", "on", ">pw-SECRET-2", "~*", "&*", "+@all")
    async with await RedisConnection.open(f"redis://proxy:pw-SECRET-2@127.0.0.1:{own_redis.port}") as conn:
        assert await conn.execute("ACL", "WHOAMI") == b"proxy"
    with pytest.raises(RedisUnavailable, match="AUTH"):
        await RedisConnection.open(f"redis://proxy:nope@127.0.0.1:{own_redis.port}")


async def test_tls_with_a_private_ca(tmp_path: object) -> None:
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    files = {"cert": str(tmp_path / "cert.pem"), "key": str(tmp_path / "key.pem"),  # type: ignore[operator]
             "ca": str(tmp_path / "ca.pem")}                                          # type: ignore[operator]
    cert.cert_chain_pems[0].write_to_path(files["cert"])
    cert.private_key_pem.write_to_path(files["key"])
    ca.cert_pem.write_to_path(files["ca"])
    server = OwnRedisServer(tls=files)
    await trio.to_thread.run_sync(server.start)
    try:
        client = RedisClient(f"{server.url}?ssl_ca_certs={files['ca']}")
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            assert client.connected and client.url.tls
            assert await client.execute("ECHO", "over tls") == b"over tls"
            await client.aclose()
        with pytest.raises(RedisUnavailable, match="SSL|certificate"):
            await RedisConnection.open(server.url)            # the system CAs do not know this one
        async with await RedisConnection.open(server.url + "?ssl_cert_reqs=none") as unverified:
            assert await unverified.execute("PING") == b"PONG"
    finally:
        server.close()
