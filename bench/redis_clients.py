"""Redis clients under Trio: the hot-path call (EVALSHA of a small script), measured side by side.

Candidates (each as the proxy would use it):

* ``own``     — ``trioproxy.coordination.redis.RedisClient`` (hiredis parser, one pipelined connection)
* ``coredis`` — coredis ≥ 6 on Trio through anyio, its default connection pool
* ``redispy`` — redis-py's sync client (+ hiredis) through ``trio.to_thread.run_sync`` with a
  ``CapacityLimiter(8)`` and a blocking pool of 8 connections (redis.asyncio does not run on Trio)

For each: c=1 (one task, calls back to back: latency p50/p99, calls/s) and c=32 (32 tasks: calls/s,
p50/p99, and the process CPU time per call — what a call costs the proxy's own CPU). Rounds are
interleaved (the order of clients rotates each round) and the report gives medians over rounds,
because the machine is shared: read the numbers as ratios.

    .venv/bin/pip install -e '.[bench]'          # coredis and redis (bench-only)
    redis-server --port 26379 --save '' &        # or use scripts/pg-redis.sh run -- ...
    .venv/bin/python bench/redis_clients.py --url redis://127.0.0.1:26379/0 --rounds 6
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trioproxy.coordination.redis import RedisClient, RedisURL, Script

SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], 60000) end
if n > tonumber(ARGV[1]) then return 0 end
return n
"""
KEYS = [f"bench:clients:{i}" for i in range(100)]

Call = Callable[[int], Awaitable[Any]]


class Candidate:
    name = ""

    async def open(self, url: str, nursery: trio.Nursery) -> Call:
        raise NotImplementedError

    async def close(self) -> None:
        pass


class Own(Candidate):
    name = "own"

    async def open(self, url: str, nursery: trio.Nursery) -> Call:
        self.client = RedisClient(url, timeout=5.0)
        await nursery.start(self.client.run)
        script = Script(SCRIPT)

        async def call(i: int) -> Any:
            return await self.client.evalsha(script, [KEYS[i % 100]], [10**12])
        return call

    async def close(self) -> None:
        await self.client.aclose()


class Coredis(Candidate):
    name = "coredis"

    async def open(self, url: str, nursery: trio.Nursery) -> Call:
        import coredis
        u = RedisURL.parse(url)
        self.client = coredis.Redis(host=u.host, port=u.port, db=u.db, password=u.password)
        await self.client.__aenter__()
        sha = await self.client.script_load(SCRIPT)

        async def call(i: int) -> Any:
            return await self.client.evalsha(sha, [KEYS[i % 100]], [10**12])
        return call

    async def close(self) -> None:
        await self.client.__aexit__(None, None, None)


class RedisPy(Candidate):
    name = "redispy"

    async def open(self, url: str, nursery: trio.Nursery) -> Call:
        import redis
        self.pool = redis.BlockingConnectionPool.from_url(url, max_connections=8)
        client = redis.Redis(connection_pool=self.pool)
        sha = await trio.to_thread.run_sync(client.script_load, SCRIPT)
        limiter = trio.CapacityLimiter(8)

        async def call(i: int) -> Any:
            return await trio.to_thread.run_sync(client.evalsha, sha, 1, KEYS[i % 100], 10**12,
                                                 limiter=limiter)
        return call

    async def close(self) -> None:
        self.pool.disconnect()


CANDIDATES: dict[str, type[Candidate]] = {"own": Own, "coredis": Coredis, "redispy": RedisPy}


async def _cell(call: Call, concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    stop = trio.current_time() + seconds
    counter = 0

    async def worker(offset: int) -> None:
        nonlocal counter
        i = offset
        while trio.current_time() < stop:
            t0 = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t0)
            i += concurrency
            counter += 1

    for i in range(50):            # warm-up: connections open, scripts loaded
        await call(i)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for n in range(concurrency):
            nursery.start_soon(worker, n)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    latencies.sort()
    return {
        "calls_per_s": counter / wall,
        "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
        "cpu_us_per_call": cpu / counter * 1e6,
    }


async def _round(url: str, names: list[str], seconds: float) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        candidate = CANDIDATES[name]()
        async with trio.open_nursery() as nursery:
            call = await candidate.open(url, nursery)
            out[name] = {"c1": await _cell(call, 1, seconds), "c32": await _cell(call, 32, seconds)}
            await candidate.close()
            nursery.cancel_scope.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0, help="per cell")
    parser.add_argument("--only", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rounds = []
    for r in range(args.rounds):
        order = args.only[r % len(args.only):] + args.only[:r % len(args.only)]
        result = trio.run(_round, args.url, order, args.seconds)
        rounds.append(result)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} c1 {v['c1']['p50_us']:.0f}µs c32 {v['c32']['calls_per_s']:.0f}/s" for n, v in result.items()),
            file=sys.stderr)
    print(f"\nEVALSHA of a {SCRIPT.count(chr(10)) - 1}-line script, {args.rounds} interleaved rounds of "
          f"{args.seconds:g} s per cell, medians; load average at the end: {os.getloadavg()[0]:.2f} "
          f"(shared machine)\n")
    print("| client | c=1 p50 / p99 µs | c=1 calls/s | c=32 calls/s | c=32 p50 / p99 µs | CPU µs per call (c=32) |")
    print("|---|---|---|---|---|---|")
    summary: dict[str, Any] = {}
    for name in args.only:
        def med(cell: str, field: str, name: str = name) -> float:
            return statistics.median(r[name][cell][field] for r in rounds)
        summary[name] = {cell: {f: med(cell, f) for f in rounds[0][name][cell]} for cell in ("c1", "c32")}
        print(f"| {name} | {med('c1', 'p50_us'):.0f} / {med('c1', 'p99_us'):.0f} | {med('c1', 'calls_per_s'):,.0f} "
              f"| {med('c32', 'calls_per_s'):,.0f} | {med('c32', 'p50_us'):,.0f} / {med('c32', 'p99_us'):,.0f} "
              f"| {med('c32', 'cpu_us_per_call'):.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "median": summary}, indent=1))


if __name__ == "__main__":
    main()
