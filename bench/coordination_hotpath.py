"""What the limiter costs a request: reserve + settle, in-process vs Redis.

Each request reserves against six counters, as a key in a team with a user would (key rpm, tpm,
max_parallel and budget; team budget; user budget), then settles with actuals — the two calls the
spend layer makes around the upstream call (2 Redis round trips). Reported per implementation:

* c=1: latency of the reserve+settle pair (p50/p99), pairs per second, and process CPU µs per
  request — one caller at a time, as a proxy's requests mostly reach Redis: every call pays the
  round trip's scheduling alone;
* c=32: pairs per second and **process CPU µs per request** (``time.process_time`` over the run,
  divided by requests) — the proxy's own CPU, the figure issue #13 caps at 100 µs. Redis's own
  CPU is another process and not counted.

Interleaved rounds, medians; the machine is shared, read the numbers as ratios.

    .venv/bin/python bench/coordination_hotpath.py --url redis://127.0.0.1:6379/0 --rounds 6
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trioproxy.coordination.limiter import Check, Kind, Limiter
from trioproxy.coordination.limiter_memory import InProcessLimiter
from trioproxy.coordination.limiter_redis import RedisLimiter
from trioproxy.coordination.redis import RedisClient

BIG = 10**15


def _checks(i: int) -> list[Check]:
    key = f"key:{i % 100}"
    return [
        Check(key, Kind.RPM, limit=BIG), Check(key, Kind.TPM, limit=BIG, amount=900),
        Check(key, Kind.MAX_PARALLEL, limit=BIG),
        Check(key, Kind.BUDGET, limit=BIG, amount=2_000, window=86_400, anchor=1_700_000_000, seed=0),
        Check(f"team:{i % 10}", Kind.BUDGET, limit=BIG, amount=2_000, window=None, seed=0),
        Check(f"user:{i % 50}", Kind.BUDGET, limit=BIG, amount=2_000, window=None, seed=0),
    ]


async def _cell(limiter: Limiter, concurrency: int, seconds: float) -> dict[str, float]:
    ids = itertools.count()
    latencies: list[float] = []
    stop = trio.current_time() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while trio.current_time() < stop:
            n = next(ids)
            rid = f"r{n}"
            t0 = time.perf_counter()
            admission = await limiter.reserve(rid, _checks(n))
            assert admission.admitted
            await limiter.settle(rid, tokens=700, cost=1_500)
            latencies.append(time.perf_counter() - t0)
            done += 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    latencies.sort()
    return {"per_s": done / wall, "p50_us": latencies[len(latencies) // 2] * 1e6,
            "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6, "cpu_us": cpu / done * 1e6}


async def _round(url: str, order: list[str], seconds: float) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in order:
        async with trio.open_nursery() as nursery:
            if name == "memory":
                limiter: Limiter = InProcessLimiter()
            else:
                client = RedisClient(url, timeout=5)
                await nursery.start(client.run)
                limiter = RedisLimiter(client, prefix=f"bench:{uuid.uuid4().hex[:8]}:")
            await _cell(limiter, 4, 0.3)                      # warm-up: scripts loaded
            out[name] = {"c1": await _cell(limiter, 1, seconds), "c32": await _cell(limiter, 32, seconds)}
            if name == "redis":
                await client.aclose()
            nursery.cancel_scope.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    names = ["memory", "redis"]
    rounds = []
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        rounds.append(trio.run(_round, args.url, order, args.seconds))
        print(f"round {r + 1}: " + ", ".join(
            f"{n} c32 {v['c32']['per_s']:.0f}/s {v['c32']['cpu_us']:.0f}µs cpu" for n, v in rounds[-1].items()),
            file=sys.stderr)
    print(f"\nreserve (6 counters) + settle per request; {args.rounds} interleaved rounds of {args.seconds:g} s "
          f"per cell, medians; load average {os.getloadavg()[0]:.2f} (shared machine)\n")
    print("| limiter | c=1 p50 / p99 µs | c=1 req/s | process CPU µs per request (c=1) | c=32 req/s "
          "| c=32 p50 / p99 µs | process CPU µs per request (c=32) |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        def med(cell: str, field: str, name: str = name) -> float:
            return statistics.median(r[name][cell][field] for r in rounds)
        print(f"| {name} | {med('c1', 'p50_us'):.0f} / {med('c1', 'p99_us'):.0f} | {med('c1', 'per_s'):,.0f} "
              f"| {med('c1', 'cpu_us'):.0f} | {med('c32', 'per_s'):,.0f} | {med('c32', 'p50_us'):,.0f} / {med('c32', 'p99_us'):,.0f} "
              f"| {med('c32', 'cpu_us'):.0f} |")


if __name__ == "__main__":
    main()
