"""Throughput at 16 clients with shared limits in Redis vs the embedded limiter (issue #13), and the
Redis calls each request makes.

Two ``trioproxy run`` processes on one PostgreSQL database, the same config except that one has
``general_settings.coordination_redis`` (shared limits, budgets and invalidations) and the other
``coordination_redis: false`` (the in-process limiter). One virtual key with an rpm limit, a tpm
limit and a budget (all far above what the run reaches), so every request reserves and settles four
counters. ``bench/fast_upstream.py`` answers; ``wrk`` (``--loadgen wrk``, the default: a few µs of
CPU per request, see ``bench/workers.py``) or ``bench/loadgen.py`` (``--loadgen python``) drives 16
keep-alive clients. One unmeasured warm-up run per proxy, then interleaved rounds (on, off, off, on,
…); per round and mode: requests/s, p50/p99 latency, the proxy's CPU per request
(``/proc/<pid>/stat`` over the whole run, divided by every request answered in it), Redis's own CPU
per request, and — Redis on — the Redis commands per request (``INFO commandstats`` of
EVALSHA/EVAL/PUBLISH — what the proxy sends itself, not what the scripts run inside — minus the
background sweeps and renewals measured while idle). The last line is the difference of the medians:
what the shared limiter costs the proxy per request over the in-process one.

Needs a PostgreSQL and a Redis: run it through the project's script, which starts throwaway ones
(about a minute with the defaults)::

    scripts/pg-redis.sh run -- .venv/bin/python bench/shared_state.py [--rounds 3] [--duration 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workers import ensure_wrk, run_python, run_wrk, write_wrk_script  # noqa: E402

MASTER = "sk-bench-shared-master"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def start(command: list[str], marker: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start a process and return it with the rest of the stdout line that starts with ``marker``."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log.open("wb"))
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline().decode()
        if not line:
            break
        if line.startswith(marker):
            return process, line[len(marker):].split()[0].strip()
    process.kill()
    raise SystemExit(f"{command[:4]} did not start: {log.read_text()[-2000:]}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


#: what the proxy sends on its own (``INFO commandstats`` also counts the commands scripts run inside)
TOP_LEVEL = ("cmdstat_evalsha:", "cmdstat_eval:", "cmdstat_publish:")


def redis_info(host: str, port: int, section: str) -> str:
    import socket

    with socket.create_connection((host, port)) as sock:
        sock.sendall(f"*2\r\n$4\r\nINFO\r\n${len(section)}\r\n{section}\r\n".encode())
        data = b""
        while True:
            data += sock.recv(65536)
            head, _, rest = data.partition(b"\r\n")
            if head.startswith(b"$") and len(rest) >= int(head[1:]):
                return rest.decode()


def redis_pid(host: str, port: int) -> int:
    line = next(x for x in redis_info(host, port, "server").splitlines() if x.startswith("process_id:"))
    return int(line.split(":", 1)[1])


def redis_commands(host: str, port: int) -> int:
    """Commands the clients sent to Redis (``INFO commandstats``: scripts, PUBLISH …)."""
    total = 0
    for line in redis_info(host, port, "commandstats").splitlines():
        if line.startswith(TOP_LEVEL):
            total += int(line.split("calls=", 1)[1].split(",", 1)[0])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--loadgen", choices=("wrk", "python"), default="wrk")
    args = parser.parse_args()
    wrk = ensure_wrk() if args.loadgen == "wrk" else ""
    pg_dsn, redis_url = os.environ.get("TEST_PG_DSN"), os.environ.get("TEST_REDIS_URL")
    if not pg_dsn or not redis_url:
        raise SystemExit("run through scripts/pg-redis.sh run -- (needs TEST_PG_DSN and TEST_REDIS_URL)")
    redis_host, redis_port = redis_url.split("//", 1)[1].split("/", 1)[0].split(":")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    db_url = f"{pg_dsn.rpartition('/')[0]}/{name}"
    work = Path(tempfile.mkdtemp(prefix="bench-shared-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upstream, port = start([sys.executable, str(HERE / "fast_upstream.py"), "--port", "0"], "PORT ",
                               work / "upstream.log")
        processes.append(upstream)
        proxies: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
        for mode, redis in (("redis", redis_url), ("embedded", False)):
            config = {
                "model_list": [{"model_name": "bench-model", "litellm_params": {
                    "model": "openai/bench-model", "api_base": f"http://127.0.0.1:{port}/v1", "api_key": "sk-up",
                    "input_cost_per_token": 1e-9, "output_cost_per_token": 1e-9}}],
                "litellm_settings": {"num_retries": 0},
                "general_settings": {"master_key": MASTER, "database_url": db_url, "coordination_redis": redis,
                                     "spend_outbox_dir": str(work / f"outbox-{mode}")},
            }
            path = work / f"{mode}.yaml"
            path.write_text(yaml.safe_dump(config))
            proxy, url = start([sys.executable, "-m", "trioproxy", "run", str(path), "--port", "0",
                                "--log-level", "warning"], "trioproxy listening on ", work / f"{mode}.log")
            processes.append(proxy)
            proxies[mode] = (proxy, url)
        base = proxies["redis"][1]
        made = httpx.post(f"{base}/key/generate", headers={"authorization": f"Bearer {MASTER}"},
                          json={"rpm_limit": 10_000_000, "tpm_limit": 10_000_000_000, "max_budget": 1_000_000},
                          timeout=30).json()
        key = made["key"]
        rpid = redis_pid(redis_host, int(redis_port))
        idle_before = redis_commands(redis_host, int(redis_port))
        time.sleep(2.0)
        background = (redis_commands(redis_host, int(redis_port)) - idle_before) / 2.0
        script = write_wrk_script(work / "post.lua", key)

        def load(url: str, duration: float) -> dict[str, Any]:
            if args.loadgen == "wrk":
                return run_wrk(wrk, script, url, args.concurrency, duration)
            return run_python(url, key, args.concurrency, duration)

        for mode in ("redis", "embedded"):       # first requests of a process are slower: not measured
            load(proxies[mode][1], 3)
        results: dict[str, list[dict[str, Any]]] = {"redis": [], "embedded": []}
        for round_index in range(args.rounds):
            order = ("redis", "embedded") if round_index % 2 == 0 else ("embedded", "redis")
            for mode in order:
                proxy, url = proxies[mode]
                rcpu0 = cpu_seconds(rpid)
                cpu0, cmd0, t0 = cpu_seconds(proxy.pid), redis_commands(redis_host, int(redis_port)), time.monotonic()
                run = load(url, args.duration)
                cpu1, cmd1, t1 = cpu_seconds(proxy.pid), redis_commands(redis_host, int(redis_port)), time.monotonic()
                rcpu1 = cpu_seconds(rpid)
                total = run["total"]
                results[mode].append({
                    "rps": run["rps"], "p50": run["p50_ms"], "p99": run["p99_ms"],
                    "cpu_us": (cpu1 - cpu0) / max(total, 1) * 1e6,
                    "redis_cpu_us": (rcpu1 - rcpu0) / max(total, 1) * 1e6,
                    "redis_per_request": ((cmd1 - cmd0) - background * (t1 - t0)) / max(total, 1),
                    "loadgen_us": run["loadgen_us"],
                })
                row = results[mode][-1]
                print(f"round {round_index + 1} {mode:8}: {row['rps']:6.0f} req/s, p50 {row['p50']:.2f} ms, proxy "
                      f"{row['cpu_us']:.0f} µs/req, Redis {row['redis_cpu_us']:.0f} µs/req, "
                      f"{row['redis_per_request']:.2f} Redis calls/req, loadgen {row['loadgen_us']:.0f} µs/req",
                      file=sys.stderr, flush=True)
        print(f"\n{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}; {args.rounds} interleaved rounds of {args.duration:g} s, "
              f"c={args.concurrency}, loadgen {args.loadgen}; medians\n")
        print("| limiter | req/s | p50 ms | p99 ms | proxy CPU µs/request | Redis commands/request | "
              "Redis server CPU µs/request |")
        print("|---|---|---|---|---|---|---|")
        for mode in ("embedded", "redis"):
            rows = results[mode]

            def med(field: str, rows: list[dict[str, Any]] = rows) -> float:
                return statistics.median(r[field] for r in rows)
            redis_cell = f"{med('redis_per_request'):.2f}" if mode == "redis" else "0"
            print(f"| {mode} | {med('rps'):,.0f} | {med('p50'):.2f} | {med('p99'):.2f} | {med('cpu_us'):.0f} | "
                  f"{redis_cell} | {med('redis_cpu_us'):.0f} |")
        print(f"\nbackground Redis commands (sweeps, renewals, bus PINGs) while idle: {background:.1f}/s")
        on = statistics.median(r["cpu_us"] for r in results["redis"])
        off = statistics.median(r["cpu_us"] for r in results["embedded"])
        ratio = statistics.median(r["rps"] for r in results["redis"]) / statistics.median(
            r["rps"] for r in results["embedded"])
        print(f"shared limiter over the in-process one: {on - off:+.0f} µs of proxy CPU per request; "
              f"throughput on/off {ratio:.2f}")
    finally:
        for process in processes:
            process.kill()
            process.wait()
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
