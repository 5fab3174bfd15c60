"""Invalidation propagation: publish in one process → subscriber callback in other processes.

Starts ``--subscribers`` processes (default 2), each running a :class:`RedisBus` or
:class:`PostgresBus`; the parent publishes ``--events`` invalidations, one every 20 ms, each
carrying ``time.monotonic_ns()`` (one clock for every process of the machine). Each subscriber
records receive − send per event in its ``on_event`` callback; the report takes, per event, the
*slowest* subscriber (what "enforced everywhere" waits for). Rounds alternate Redis and
PostgreSQL; medians over rounds. The machine is shared: read them as ratios.

    .venv/bin/python bench/bus_propagation.py --redis redis://127.0.0.1:6379/0 \\
        --pg postgresql://postgres@127.0.0.1:5432/trioproxy --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trioproxy.coordination.bus import Invalidation, PostgresBus, RedisBus
from trioproxy.coordination.redis import RedisClient


async def _bus(kind: str, url: str, channel: str, nursery: trio.Nursery) -> RedisBus | PostgresBus:
    if kind == "redis":
        client = RedisClient(url)
        await nursery.start(client.run)
        return RedisBus(client, channel=channel)
    return PostgresBus(url, channel=channel)


async def subscriber(kind: str, url: str, channel: str, events: int) -> None:
    delays: dict[int, float] = {}
    done = trio.Event()

    def on_event(event: Invalidation) -> None:
        sent = int(event.id)
        delays[sent] = (time.monotonic_ns() - sent) / 1000
        if len(delays) >= events:
            done.set()

    async with trio.open_nursery() as nursery:
        bus = await _bus(kind, url, channel, nursery)
        bus.subscribe(on_event, lambda: None)
        await nursery.start(bus.run)
        await bus.wait_live()
        print("ready", flush=True)
        with trio.move_on_after(60):
            await done.wait()
        print(json.dumps(delays), flush=True)
        nursery.cancel_scope.cancel()


def spawn_subscribers(kind: str, url: str, subscribers: int, events: int) -> tuple[str, list[subprocess.Popen[str]]]:
    channel = ("bench_" if kind == "pg" else "bench:") + uuid.uuid4().hex[:8]
    procs = [subprocess.Popen([sys.executable, __file__, "--role", "sub", "--kind", kind, "--url", url,
                               "--channel", channel, "--events", str(events)],
                              stdout=subprocess.PIPE, text=True) for _ in range(subscribers)]
    return channel, procs


async def publisher(kind: str, url: str, channel: str, procs: list[subprocess.Popen[str]],
                    events: int) -> list[float]:
    for proc in procs:
        line = await trio.to_thread.run_sync(proc.stdout.readline)   # type: ignore[union-attr]
        assert line.strip() == "ready", line
    async with trio.open_nursery() as nursery:
        bus = await _bus(kind, url, channel, nursery)
        if isinstance(bus, PostgresBus):
            await nursery.start(bus.run)
            await bus.wait_live()
        for _ in range(events):
            await bus.publish(Invalidation("key", str(time.monotonic_ns())))
            await trio.sleep(0.02)
        results = []
        for proc in procs:
            line = await trio.to_thread.run_sync(proc.stdout.readline)   # type: ignore[union-attr]
            results.append(json.loads(line))
            await trio.to_thread.run_sync(proc.wait)
        nursery.cancel_scope.cancel()
    worst = []
    for sent in results[0]:
        worst.append(max(r.get(sent, float("inf")) for r in results))
    return sorted(worst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", default="pub")
    parser.add_argument("--kind", default="redis")
    parser.add_argument("--url")
    parser.add_argument("--channel")
    parser.add_argument("--redis", default=os.environ.get("TEST_REDIS_URL"))
    parser.add_argument("--pg", default=os.environ.get("TEST_PG_DSN"))
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if args.role == "sub":
        trio.run(subscriber, args.kind, args.url, args.channel, args.events)
        return
    kinds = {k: u for k, u in (("redis", args.redis), ("pg", args.pg)) if u}
    rows: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind in (list(kinds) if r % 2 == 0 else list(kinds)[::-1]):
            channel, procs = spawn_subscribers(kind, kinds[kind], args.subscribers, args.events)
            worst = trio.run(publisher, kind, kinds[kind], channel, procs, args.events)
            lost = sum(1 for w in worst if w == float("inf"))
            got = [w for w in worst if w != float("inf")]
            rows[kind].append((got[len(got) // 2], got[int(len(got) * 0.99)], got[-1]))
            print(f"round {r + 1} {kind}: p50 {rows[kind][-1][0]:.0f} µs, p99 {rows[kind][-1][1]:.0f} µs"
                  + (f", {lost} lost" if lost else ""), file=sys.stderr)
    print(f"\npublish → on_event in {args.subscribers} other processes (slowest subscriber per event), "
          f"{args.events} events per round, {args.rounds} rounds, medians; load average "
          f"{os.getloadavg()[0]:.2f} (shared machine)\n")
    print("| channel | p50 µs | p99 µs | max µs |")
    print("|---|---|---|---|")
    names = {"redis": "Redis pub/sub (RedisBus)", "pg": "PostgreSQL LISTEN/NOTIFY (PostgresBus)"}
    for kind, values in rows.items():
        p50, p99, top = (statistics.median(v[i] for v in values) for i in range(3))
        print(f"| {names[kind]} | {p50:,.0f} | {p99:,.0f} | {top:,.0f} |")


if __name__ == "__main__":
    main()
