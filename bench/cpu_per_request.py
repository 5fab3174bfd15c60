"""Server CPU per non-streaming request: Hypercorn's floor and one or more proxy trees, interleaved.

Usage (from the repository root)::

    .venv/bin/python bench/cpu_per_request.py --rounds 5 --duration 3
    git archive main trioproxy | tar -x -C /tmp/perfbase
    .venv/bin/python bench/cpu_per_request.py --base /tmp/perfbase --rounds 5   # A/B against main
    .venv/bin/python bench/cpu_per_request.py --profile /tmp/prof --rounds 1    # + py-spy per server

Why CPU per request rather than req/s: on the shared 2-core machine other sessions take a varying
share of the server's core, which moves req/s by more than the effects being measured, while the
CPU a server spends per request (its process CPU seconds over the measured window / requests
answered in it) barely moves. ``floor_compare.py`` reports the issue's req/s ratios; this script
is the instrument for the cuts behind them. Per round and per client count, every target runs one
``loadgen.py`` cell (same request as ``run.py``), in an order rotated every round; the medians of
µs/request are printed, with the proxy's ratio to the floor (the req/s ratio a saturated core
would give). With ``--profile DIR`` each cell of the first round also runs under ``py-spy record
--function --format raw`` (a dev tool: ``.venv/bin/pip install py-spy``), one file per target and
client count, for ``profile_summary.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run as harness
from run import BenchError, Cell
from streams import start_announcing

BENCH_DIR = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="measured s per cell")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--base", type=Path, default=None,
                        help="a directory holding another trioproxy/ (e.g. an export of main): "
                             "run it as target 'base' on PYTHONPATH")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--floor-connection", action="store_true",
                        help="also run the floor on trioproxy's connection class (target 'floor-tp')")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the first round here")
    parser.add_argument("--profile-rate", type=int, default=250)
    parser.add_argument("--profile-blocking", action="store_true",
                        help="let py-spy pause the server for each sample: whole stacks (--nonblocking "
                             "truncates many here), at some cost to the profiled cell's figures")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args(argv)
    args.concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.proxy_url = None  # for run.plan_pinning
    return args


def start_proxy_with_path(workdir: Path, upstream_port: int, cpus: set[int] | None,
                          pythonpath: Path | None, name: str) -> tuple[harness.Child, int]:
    """``run.start_proxy`` with ``PYTHONPATH`` set for this child only."""
    saved = os.environ.get("PYTHONPATH")
    sub = workdir / name
    sub.mkdir()
    try:
        if pythonpath is not None:
            os.environ["PYTHONPATH"] = str(pythonpath)
        return harness.start_proxy(sub, upstream_port, cpus, 30.0)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, harness._on_sigterm)
    server_cpus, harness_cpus = harness.plan_pinning(args)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, int], list[float]] = {}
    rps: dict[tuple[str, int], list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="trioproxy-cpureq-") as tmp,
        harness.children(Path(tmp), Path(tmp)) as started,
    ):
        workdir = Path(tmp)
        upstream, upstream_port = harness.start_upstream(workdir, 0, harness_cpus)
        started.append(upstream)
        servers: dict[str, tuple[harness.Child, int, str]] = {}
        if not args.no_floor:
            floor, port = start_announcing(
                workdir, "hypercorn_floor", [str(BENCH_DIR / "hypercorn_floor.py"), "--port", "0"],
                server_cpus)
            started.append(floor)
            servers["floor"] = (floor, port, "")
        if args.floor_connection:
            floor_tp, port = start_announcing(
                workdir, "hypercorn_floor_tp", [str(BENCH_DIR / "hypercorn_floor.py"), "--port", "0",
                                                "--connection", "trioproxy"], server_cpus)
            started.append(floor_tp)
            servers["floor-tp"] = (floor_tp, port, "")
        proxy, port = start_proxy_with_path(workdir, upstream_port, server_cpus, None, "proxy")
        started.append(proxy)
        servers["proxy"] = (proxy, port, harness.MASTER_KEY)
        if args.base is not None:
            base, port = start_proxy_with_path(workdir, upstream_port, server_cpus, args.base,
                                               "base")
            started.append(base)
            servers["base"] = (base, port, harness.MASTER_KEY)
        names = list(servers)
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for clients in args.concurrencies:
                for name in order:
                    child, port, key = servers[name]
                    spy_proc = None
                    if args.profile and rnd == 0:
                        out = args.profile / f"{name}-c{clients}.txt"
                        spy_proc = subprocess.Popen(
                            [spy, "record", *([] if args.profile_blocking else ["--nonblocking"]),
                             "--function", "--format", "raw",
                             "--rate", str(args.profile_rate), "--duration",
                             str(int(args.warmup + args.duration + 1)), "--pid",
                             str(child.popen.pid), "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=harness._pinner(harness_cpus))
                        time.sleep(0.3)
                    cell = Cell(name, False, clients)
                    harness.run_cell(cell, f"http://127.0.0.1:{port}{harness.CHAT_PATH}", key, args,
                                     harness_cpus, {name: child.popen.pid}, upstream_port)
                    if spy_proc is not None:
                        spy_proc.wait()
                    res = cell.result
                    cpu = res.get(f"{name}_cpu_pct")
                    if res.get("rps") and cpu:
                        us = cpu / 100 / res["rps"] * 1e6
                        results.setdefault((name, clients), []).append(us)
                        rps.setdefault((name, clients), []).append(res["rps"])
                        print(f"# round {rnd + 1} {name:6} c={clients:<3} {res['rps']:7.0f} req/s "
                              f"cpu {cpu:3.0f}%  {us:6.1f} us/req  failed "
                              f"{res['failed'] + res['io_errors']}", flush=True)
    print()
    print("| target | clients | req/s (median) | server CPU µs/request (rounds) | median |")
    print("|---|---:|---:|---|---:|")
    for clients in args.concurrencies:
        for name in names:
            values = results.get((name, clients), [])
            if values:
                print(f"| {name} | {clients} | {statistics.median(rps[(name, clients)]):.0f} | "
                      f"{' / '.join(f'{v:.0f}' for v in values)} | "
                      f"**{statistics.median(values):.0f}** |")
    for clients in args.concurrencies:
        floor_us = results.get(("floor", clients))
        for name in names:
            if name != "floor" and floor_us and results.get((name, clients)):
                ratio = statistics.median(floor_us) / statistics.median(results[(name, clients)])
                print(f"{name}/floor at {clients} clients, by CPU per request: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
