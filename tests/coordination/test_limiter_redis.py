"""What only the shared (Redis) limiter can show: the server's clock, several processes, several
instances sharing leases."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import trio
import trio.testing

from support.coordination_support import FakeClock
from trioproxy.coordination.limiter import Check, Kind
from trioproxy.coordination.limiter_redis import RedisLimiter
from trioproxy.coordination.redis import RedisClient

ROOT = Path(__file__).resolve().parents[2]


async def _server_ms(client: RedisClient) -> int:
    seconds, micros = await client.execute("TIME")
    return int(seconds) * 1000 + int(micros) // 1000


async def test_windows_follow_the_servers_clock(redis_client: RedisClient, key_prefix: str) -> None:
    limiter = RedisLimiter(redis_client, prefix=key_prefix)          # no injected clock: TIME
    rpm = [Check("k", Kind.RPM, limit=1, window=60)]
    before = await _server_ms(redis_client)
    assert (await limiter.reserve("a", rpm)).admitted
    refused = await limiter.reserve("b", rpm)
    after = await _server_ms(redis_client)
    assert not refused.admitted
    assert refused.retry_after is not None and (60_000 - (after - before)) / 1000 <= refused.retry_after <= 60
    # a budget anchored 100 s before the server's now: its window ends exactly anchor + 3600
    anchor = before / 1000 - 100
    budget = [Check("k", Kind.BUDGET, limit=0, window=3600, anchor=anchor)]
    before = await _server_ms(redis_client)
    refused = await limiter.reserve("c", budget)
    after = await _server_ms(redis_client)
    end_ms = round(anchor * 1000) + 3_600_000
    assert (end_ms - after) / 1000 <= refused.retry_after <= (end_ms - before) / 1000


async def test_leases_are_shared_across_instances(redis_url: str, key_prefix: str,
                                                  nursery: trio.Nursery, fake_clock: FakeClock) -> None:
    clients = [RedisClient(redis_url) for _ in range(2)]
    for client in clients:
        await nursery.start(client.run)
    a, b = (RedisLimiter(c, prefix=key_prefix, clock=fake_clock, lease=10) for c in clients)
    slot = [Check("key:k", Kind.MAX_PARALLEL, limit=1)]
    assert (await a.reserve("long", slot)).admitted
    assert (await a.reserve("orphan", [Check("key:o", Kind.MAX_PARALLEL, limit=1)])).admitted
    a._own.pop("orphan", None)                         # as if its owner had crashed
    fake_clock.advance(8)
    await a.renew()                                  # "long" renewed by its owner to t = 18
    fake_clock.advance(4)                            # t = 12: the orphan's lease ended at t = 10
    assert await b.sweep() == 1                      # another instance frees it
    assert not (await b.reserve("other", slot)).admitted    # "long" still holds its slot
    fake_clock.advance(6)
    assert await b.sweep() == 1                      # owner stopped renewing (crashed) → freed
    assert (await b.reserve("other", slot)).admitted
    assert await a.settle("long", tokens=1, cost=1) is False   # too late: counted nowhere
    nursery.cancel_scope.cancel()


CHILD = textwrap.dedent("""
    import os, sys, trio
    from trioproxy.coordination.limiter import Check, Kind
    from trioproxy.coordination.limiter_redis import RedisLimiter
    from trioproxy.coordination.redis import RedisClient

    async def main(url, prefix):
        client = RedisClient(url)
        async with trio.open_nursery() as nursery:
            await nursery.start(client.run)
            limiter = RedisLimiter(client, prefix=prefix)
            go, admitted = trio.Event(), []
            async def one(i):
                await go.wait()
                a = await limiter.reserve(f"child-{i}", [Check("key:shared", Kind.RPM, limit=20)])
                admitted.append(a.admitted)
            async with trio.open_nursery() as callers:
                for i in range(30):
                    callers.start_soon(one, i)
                await trio.testing.wait_all_tasks_blocked()
                print("ready", flush=True)
                os.set_blocking(0, True)        # the pipe may arrive non-blocking from the parent
                await trio.to_thread.run_sync(sys.stdin.readline)
                go.set()
            await client.aclose()
        print("admitted", admitted.count(True), flush=True)

    import trio.testing
    trio.run(main, sys.argv[1], sys.argv[2])
""")


async def test_rpm_20_with_60_callers_in_two_processes_admits_exactly_20(
        redis_client: RedisClient, redis_url: str, key_prefix: str, nursery: trio.Nursery) -> None:
    limiter = RedisLimiter(redis_client, prefix=key_prefix)
    check = [Check("key:shared", Kind.RPM, limit=20)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await nursery.start(partial(
        trio.run_process, [sys.executable, "-c", CHILD, redis_url, key_prefix],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, check=True))
    out = b""
    with trio.fail_after(30):
        while b"ready\n" not in out:
            chunk = await proc.stdout.receive_some()
            assert chunk, "the child process exited early"
            out += chunk

    go, admitted = trio.Event(), []

    async def one(i: int) -> None:
        await go.wait()
        admitted.append((await limiter.reserve(f"parent-{i}", check)).admitted)

    async with trio.open_nursery() as callers:
        for i in range(30):
            callers.start_soon(one, i)
        await trio.testing.wait_all_tasks_blocked()
        await proc.stdin.send_all(b"go\n")               # both processes fire at once
        go.set()
    with trio.fail_after(30):
        while b"admitted" not in out or not out.endswith(b"\n"):
            chunk = await proc.stdout.receive_some()
            if not chunk:
                break
            out += chunk
    child_admitted = int(out.split(b"admitted")[1].split()[0])
    assert admitted.count(True) + child_admitted == 20
    assert await limiter.usage(check) == (20,)
