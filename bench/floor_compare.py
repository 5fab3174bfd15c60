"""Non-streaming throughput and latency of trioproxy against Hypercorn's own floor, in one run.

Usage (from the repository root)::

    .venv/bin/python bench/floor_compare.py              # 3 rounds x 9 cells x (5 s + 1 s), ~3 min
    .venv/bin/python bench/floor_compare.py --quick      # 1 round of 2 s cells

Issue #14 states its throughput and latency targets relative to the HTTP server's floor measured
*in the same run*, because on a shared 2-core machine two runs minutes apart differ by more than
the effects being measured. So this starts, side by side, ``bench/fast_upstream.py`` (the direct
baseline), ``bench/hypercorn_floor.py`` (a trivial ASGI app under Hypercorn's trio worker, with
``trioproxy run``'s settings) and ``trioproxy run`` (one worker, routing to the fast upstream);
the floor and the proxy are pinned to the same CPU, the load generator and upstream to the others.
Each round runs, per client count (1, 16, 64), the direct, floor and proxy cells back to back with
``bench/loadgen.py`` (non-streaming ``POST /v1/chat/completions``, closed loop), swapping the floor
and proxy order every round. Ratios are computed per round and the median is reported:

* proxy req/s / floor req/s at 16 clients (target >= 0.85);
* proxy req/s at 64 clients / at 16 clients (target >= 0.95), and the floor's own for reference;
* added p50 at one client: proxy p50 - direct p50, against the floor's added p50 (floor p50 -
  direct p50); target: proxy's <= floor's + 0.25 ms.

Results: ``bench/results/floor_compare.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import run as harness
from run import BenchError, Cell
from streams import start_announcing

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "floor_compare.json"
TARGETS = {"proxy_over_floor_16": 0.85, "proxy_64_over_16": 0.95, "added_p50_slack_ms": 0.25}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (3)")
    parser.add_argument("--duration", type=float, default=None, help="measured s/cell (5)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up s/cell (1)")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s cells, 0.5 s warm-up")
    parser.add_argument("--concurrency", default="1,16,64", help="must include 1, 16 and 64")
    parser.add_argument("--floor-connection", choices=("hypercorn", "trioproxy"), default="hypercorn",
                        help="serve the floor with Hypercorn's TCPServer (default) or trioproxy's subclass")
    parser.add_argument("--no-pin", action="store_true", help="don't pin processes to CPUs")
    parser.add_argument("--startup-timeout", type=float, default=30.0)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="JSON results path")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    args.concurrencies = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
    if not {1, 16, 64} <= set(args.concurrencies):
        parser.error("--concurrency must include 1, 16 and 64 (the issue's ratios use them)")
    args.proxy_url = None  # for run.plan_pinning
    return args


def _cell(cells: list[Cell], target: str, clients: int, rnd: int) -> dict[str, Any]:
    return next(c.result for c in cells
                if (c.target, c.concurrency, c.result.get("round")) == (target, clients, rnd))


def round_ratios(cells: list[Cell], rnd: int) -> dict[str, float | None]:
    def rps(target: str, clients: int) -> float | None:
        return _cell(cells, target, clients, rnd).get("rps")

    def p50(target: str) -> float | None:
        return _cell(cells, target, 1, rnd).get("latency_ms", {}).get("p50")

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a is not None and b else None

    def diff(a: float | None, b: float | None) -> float | None:
        return round(a - b, 3) if a is not None and b is not None else None

    def per_cpu(target: str, clients: int) -> float | None:
        """Requests per CPU-second of the server: robust to other work taking its CPU."""
        cell = _cell(cells, target, clients, rnd)
        cpu = cell.get(f"{target}_cpu_pct")
        return cell["rps"] / (cpu / 100) if cell.get("rps") is not None and cpu else None

    return {
        "proxy_over_floor_16": ratio(rps("proxy", 16), rps("floor", 16)),
        "proxy_over_floor_16_per_cpu": ratio(per_cpu("proxy", 16), per_cpu("floor", 16)),
        "proxy_64_over_16_per_cpu": ratio(per_cpu("proxy", 64), per_cpu("proxy", 16)),
        "floor_64_over_16_per_cpu": ratio(per_cpu("floor", 64), per_cpu("floor", 16)),
        "proxy_over_floor_64": ratio(rps("proxy", 64), rps("floor", 64)),
        "proxy_64_over_16": ratio(rps("proxy", 64), rps("proxy", 16)),
        "floor_64_over_16": ratio(rps("floor", 64), rps("floor", 16)),
        "proxy_added_p50_ms": diff(p50("proxy"), p50("direct")),
        "floor_added_p50_ms": diff(p50("floor"), p50("direct")),
    }


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def report(cells: list[Cell], args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    per_round = [round_ratios(cells, r) for r in range(args.rounds)]
    medians = {key: median([r[key] for r in per_round]) for key in per_round[0]}
    out = ["Non-streaming, medians over "
           f"{args.rounds} round(s) of {args.duration:g} s cells (req/s; p50 ms):", "",
           "| clients | direct | floor | proxy | proxy/floor | floor p50 | proxy p50 |",
           "|---:|---:|---:|---:|---:|---:|---:|"]
    table = []
    for clients in args.concurrencies:
        row: dict[str, Any] = {"clients": clients}
        for target in ("direct", "floor", "proxy"):
            results = [_cell(cells, target, clients, r) for r in range(args.rounds)]
            row[f"{target}_rps"] = median([r.get("rps") for r in results])
            row[f"{target}_p50_ms"] = median([r.get("latency_ms", {}).get("p50") for r in results])
        ratio = (row["proxy_rps"] / row["floor_rps"]
                 if row["proxy_rps"] is not None and row["floor_rps"] else None)
        table.append(row)
        out.append(f"| {clients} | {harness._fmt(row['direct_rps'], 0)} | "
                   f"{harness._fmt(row['floor_rps'], 0)} | {harness._fmt(row['proxy_rps'], 0)} | "
                   f"{'n/a' if ratio is None else f'{ratio:.0%}'} | "
                   f"{harness._fmt(row['floor_p50_ms'])} | {harness._fmt(row['proxy_p50_ms'])} |")

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("meets target" if ok else "misses target")

    pof, p64, fadd, padd = (medians["proxy_over_floor_16"], medians["proxy_64_over_16"],
                            medians["floor_added_p50_ms"], medians["proxy_added_p50_ms"])
    out += [
        "",
        f"proxy/floor at 16 clients: {harness._fmt(pof, 3)} (target >= "
        f"{TARGETS['proxy_over_floor_16']}: {verdict(None if pof is None else pof >= 0.85)})",
        f"proxy 64-client/16-client: {harness._fmt(p64, 3)} (target >= "
        f"{TARGETS['proxy_64_over_16']}: {verdict(None if p64 is None else p64 >= 0.95)}); "
        f"floor's own: {harness._fmt(medians['floor_64_over_16'], 3)}",
        "per server CPU-second (equal to the above when the server saturates its core; the "
        "steadier figure when other work takes part of it): proxy/floor at 16 clients "
        f"{harness._fmt(medians['proxy_over_floor_16_per_cpu'], 3)}, proxy 64/16 "
        f"{harness._fmt(medians['proxy_64_over_16_per_cpu'], 3)} (floor's own "
        f"{harness._fmt(medians['floor_64_over_16_per_cpu'], 3)})",
        f"added p50 at 1 client: proxy {harness._fmt(padd, 3)} ms vs floor "
        f"{harness._fmt(fadd, 3)} ms (target: proxy <= floor + "
        f"{TARGETS['added_p50_slack_ms']} ms: "
        f"{verdict(None if padd is None or fadd is None else padd <= fadd + 0.25)})",
    ]
    return "\n".join(out), {"per_round": per_round, "medians": medians, "table": table}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, harness._on_sigterm)
    server_cpus, harness_cpus = harness.plan_pinning(args)
    pinning = ({"proxy": sorted(server_cpus), "harness": sorted(harness_cpus)}
               if server_cpus and harness_cpus else None)
    machine = harness.machine_facts(pinning)
    command = harness.command_line()
    load_before = harness._loadavg()
    n_cells = args.rounds * len(args.concurrencies) * 3
    print(f"# {command}", flush=True)
    print(f"# {n_cells} cells, about {n_cells * (args.duration + args.warmup + 0.5):.0f} s",
          flush=True)
    cells: list[Cell] = []
    with (
        tempfile.TemporaryDirectory(prefix="trioproxy-floor-") as tmp,
        harness.children(Path(tmp), args.output.parent) as started,
    ):
        workdir = Path(tmp)
        upstream, upstream_port = harness.start_upstream(workdir, 0, harness_cpus)
        started.append(upstream)
        floor, floor_port = start_announcing(
            workdir, "hypercorn_floor", [str(BENCH_DIR / "hypercorn_floor.py"), "--port", "0",
                                         "--connection", args.floor_connection],
            server_cpus)
        started.append(floor)
        proxy, proxy_port = harness.start_proxy(workdir, upstream_port, server_cpus,
                                                args.startup_timeout)
        started.append(proxy)
        harness.sanity_check("direct", "127.0.0.1", upstream_port, harness.UPSTREAM_KEY)
        harness.sanity_check("proxy", "127.0.0.1", proxy_port, harness.MASTER_KEY)
        status, _ = harness.http_request("127.0.0.1", floor_port, "POST", harness.CHAT_PATH,
                                         harness.BODY)
        if status != 200:
            raise BenchError(f"floor: probe got {status}")
        watch = {"upstream": upstream.pid, "floor": floor.pid, "proxy": proxy.pid}
        ports = {"direct": upstream_port, "floor": floor_port, "proxy": proxy_port}
        keys = {"direct": harness.UPSTREAM_KEY, "floor": "", "proxy": harness.MASTER_KEY}
        for rnd in range(args.rounds):
            order = ["direct", "floor", "proxy"] if rnd % 2 == 0 else ["direct", "proxy", "floor"]
            for clients in args.concurrencies:
                for target in order:
                    cell = Cell(target, False, clients)
                    url = f"http://127.0.0.1:{ports[target]}{harness.CHAT_PATH}"
                    harness.run_cell(cell, url, keys[target], args, harness_cpus, watch,
                                     upstream_port)
                    cell.result["round"] = rnd
                    cells.append(cell)
                    res = cell.result
                    server = {"direct": "upstream"}.get(target, target)
                    print(f"# round {rnd + 1} {target:6} c={clients:<3} "
                          f"{harness._fmt(res['rps'], 0):>6} req/s  "
                          f"p50 {harness._fmt(res['latency_ms']['p50'])} ms  "
                          f"failed {res['failed'] + res['io_errors']}  "
                          f"{server} cpu {harness._fmt(res.get(f'{server}_cpu_pct'), 0)}%"
                          + "".join(f"  {n} busy {u['busy_pct']:.0f}% steal {u['steal_pct']:.0f}%"
                                    for n, u in res.get("system_cpu", {}).items()), flush=True)
                    for child in started:
                        if child.popen.poll() is not None:
                            raise BenchError(f"{child.name} died:\n{child.log_tail()}")
    text, summary = report(cells, args)
    print()
    print(text)
    notes = []
    if pinning:
        cpu = f"cpu{pinning['proxy'][0]}"
        noisy = []
        for cell in cells:
            if cell.target == "direct":
                continue
            busy = cell.result.get("system_cpu", {}).get(cpu, {})
            own = cell.result.get(f"{cell.target}_cpu_pct") or 0.0
            other = busy.get("busy_pct", 0.0) - own + busy.get("steal_pct", 0.0)
            cell.result["foreign_cpu_pct"] = round(other, 1)
            if other > 15:
                noisy.append(f"round {cell.result['round'] + 1} {cell.target} "
                             f"c={cell.concurrency} ({other:.0f}%)")
        if noisy:
            notes.append("other processes used the server's CPU during: " + ", ".join(noisy))
    if load_before and load_before[0] > 0.5 * (os.cpu_count() or 1):
        notes.append(f"1-min load average was {load_before[0]:.2f} before the run: the machine "
                     "was shared, these numbers are noisier than usual")
    for note in notes:
        print(f"\n# warning: {note}")
    machine["loadavg_before"] = load_before
    machine["loadavg_after"] = harness._loadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "settings": {"rounds": args.rounds, "duration_s": args.duration,
                     "warmup_s": args.warmup, "concurrencies": args.concurrencies},
        "targets": TARGETS,
        "summary": summary,
        "report": text,
        "warnings": notes,
        "cells": [{"target": c.target, "concurrency": c.concurrency, **c.result} for c in cells],
    }, indent=2) + "\n")
    print(f"\n# results written to {args.output}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
