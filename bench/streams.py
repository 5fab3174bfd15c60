"""Streams benchmark: K concurrent paced SSE streams through trioproxy, K = 1, 2, 4 ... 1024.

Usage (from the repository root)::

    .venv/bin/python bench/streams.py                      # proxy, K = 1 .. 1024 (~5 min)
    .venv/bin/python bench/streams.py --max-streams 256 --duration 3
    .venv/bin/python bench/streams.py --target floor       # Hypercorn alone streaming the same
    .venv/bin/python bench/streams.py --target both        # direct, floor and proxy per level
    .venv/bin/python bench/streams.py --levels 128 --profile 128   # where the time goes
    .venv/bin/python bench/streams.py --smoke              # seconds; checks the harness works

It starts ``bench/paced_upstream.py`` (a delta every 20 ms, 64 per stream, like an LLM), writes a
trioproxy config pointing at it and starts ``trioproxy run`` (one worker) and/or
``bench/hypercorn_stream_floor.py``; then, for each level K, runs ``bench/stream_client.py`` (K
streams in a closed loop) directly against the upstream and against each target, adjacent in time.
The proxy (or floor) is pinned to one CPU and everything else to the others, as in ``run.py``.
Per level it samples, over exactly the clients' measured window, the CPU of every process, each
CPU's busy/steal ticks, the server's RSS and the upstream's pacing lag.

Reported per level and target: streams completed, time to first token p50/p99 and what the target
adds over direct, inter-delta gap p99/max and stalls (a gap over 200 ms at the client), the
server's CPU % and CPU time per relayed delta (server CPU s / deltas the client received), and RSS
per open stream ((RSS at the end of the window - idle RSS) / K). Then one summary line per target:
the largest K up to which every level kept TTFT p99 added <= 50 ms with no stall, and CPU/delta and
RSS/stream at 128 streams (issue #14's targets). ``--profile K`` adds one more proxy cell at K
under py-spy (or cProfile if py-spy cannot attach) and prints where the time goes by package.

Results: ``bench/results/streams.json`` (git-ignored), logs next to it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import profile_summary
import run as harness
from run import BenchError, Child

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "streams.json"
CHAT_PATH = "/v1/chat/completions"
STREAM_BODY = (
    '{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"stream":true}'
)
GAP_BINS = 2001  # must match stream_client.GAP_BINS


# --------------------------------------------------------------------------- processes


def start_announcing(
    workdir: Path, name: str, argv: list[str], cpus: set[int] | None, timeout: float = 30.0
) -> tuple[Child, int]:
    """Start ``python ARGV`` and wait for the ``PORT <n>`` line it prints once listening."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            bufsize=0,
            env=harness._child_env(),
            start_new_session=True,
            preexec_fn=harness._pinner(cpus),
        )
    child = Child(name, popen, log_path)
    assert popen.stdout is not None
    pending = bytearray()
    deadline = time.monotonic() + timeout
    while (line := harness._read_line(popen.stdout.fileno(), pending, deadline)) is not None:
        if line.startswith(b"PORT "):
            return child, int(line.split()[1])
    child.stop()
    raise BenchError(f"{name} did not report its port:\n{child.log_tail()}")


def _proc_parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rfind(")") + 2 :].split()[1])
    return parents


def tree_rss_kib(root: int) -> int | None:
    """Resident memory of ``root`` and its descendants (the proxy may run worker processes)."""
    if not Path(f"/proc/{root}").exists():
        return None
    parents = _proc_parents()
    wanted, changed = {root}, True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    total = 0
    for pid in wanted:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def upstream_stats(port: int) -> dict[str, Any]:
    """The paced upstream's counters; reading them resets its lag figures (see its docstring)."""
    try:
        status, body = harness.http_request("127.0.0.1", port, "GET", "/__stats", timeout=5)
    except OSError:
        return {}
    return json.loads(body) if status == 200 else {}


def wait_upstream_idle(port: int, timeout: float) -> None:
    """Let the previous cell's streams end so cells do not overlap (a drained proxy shows 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if upstream_stats(port).get("open_streams", 0) == 0:
            return
        time.sleep(0.1)


def probe_stream(name: str, port: int, api_key: str, timeout: float) -> None:
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    status, body = harness.http_request(
        "127.0.0.1", port, "POST", CHAT_PATH, STREAM_BODY, headers, timeout=timeout
    )
    if status != 200 or b"data: [DONE]" not in body:
        raise BenchError(f"{name}: streaming probe got {status}: {body[:500]!r}")


def find_py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def py_spy_can_attach(py_spy: str, pid: int) -> str | None:
    """None if ``py-spy dump`` works on ``pid``; otherwise why not (it needs ptrace)."""
    try:
        done = subprocess.run(
            [py_spy, "dump", "--pid", str(pid)], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return repr(exc)
    return None if done.returncode == 0 else done.stderr.decode(errors="replace").strip()[-300:]


# ------------------------------------------------------------------------ measurements


@dataclass
class Cell:
    target: str  # "direct", "floor" or "proxy"
    streams: int
    profiled: bool = False
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class Servers:
    """What runs during the benchmark: ports, pids, idle memory."""

    upstream_port: int
    upstream_pid: int
    ports: dict[str, int] = field(default_factory=dict)  # target -> port
    pids: dict[str, int] = field(default_factory=dict)  # target -> pid of the server
    idle_rss_kib: dict[str, int | None] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)


def nearest_rank(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[max(1, math.ceil(q / 100 * len(sorted_values))) - 1]


def bins_percentile(bins: list[int], q: float) -> int | None:
    """Upper edge (ms) of the 1 ms bin holding the q-th percentile gap."""
    total = sum(bins)
    if not total:
        return None
    rank, seen = max(1, math.ceil(q / 100 * total)), 0
    for index, count in enumerate(bins):
        seen += count
        if seen >= rank:
            return index + 1
    return len(bins)


def merge_client_outputs(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"ttft_s": [], "gap_bins_ms": [0] * GAP_BINS, "statuses": {}}
    for key in ("started", "completed", "failed", "short", "events", "done_events", "stalls",
                "io_errors", "connect_errors"):
        merged[key] = sum(o[key] for o in outputs)
    merged["max_gap_ms"] = max((o["max_gap_ms"] for o in outputs), default=0.0)
    merged["drain_cut_short"] = any(o["drain_cut_short"] for o in outputs)
    merged["error_samples"] = [e for o in outputs for e in o["error_samples"]][:5]
    for out in outputs:
        merged["ttft_s"] += out["ttft_s"]
        merged["gap_bins_ms"] = [a + b for a, b in zip(merged["gap_bins_ms"], out["gap_bins_ms"],
                                                        strict=True)]
        for status, count in out["statuses"].items():
            merged["statuses"][status] = merged["statuses"].get(status, 0) + count
    return merged


def client_command(
    args: argparse.Namespace, url: str, api_key: str, streams: int, first: int, total: int,
    start_at: float,
) -> list[str]:
    return [
        sys.executable, str(BENCH_DIR / "stream_client.py"),
        "--url", url, "--streams", str(streams), "--api-key", api_key,
        "--start-at", f"{start_at:.6f}", "--warmup", str(args.warmup),
        "--duration", str(args.duration), "--drain", str(args.drain),
        "--stream-seconds", str(args.stream_seconds), "--stall-ms", str(args.stall_ms),
        "--expect-deltas", str(args.deltas), "--first", str(first), "--total", str(total),
    ] + (["--include-usage"] if args.include_usage else [])


class WindowHooks:
    """What a profiler does at the edges of a cell's measured window (nothing, by default)."""

    def opened(self) -> None:
        pass

    def closed(self) -> None:
        pass


class PySpyHooks(WindowHooks):
    """``py-spy record --duration D`` started as the window opens, pinned with the harness."""

    def __init__(self, command: list[str], cpus: set[int] | None, timeout: float) -> None:
        self.command, self.cpus, self.timeout = command, cpus, timeout
        self.child: Child | None = None
        self.output = ""

    def opened(self) -> None:
        self.child = Child("py-spy", subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=harness._pinner(self.cpus)))

    def closed(self) -> None:
        if self.child is None:
            return
        try:
            out, _ = self.child.popen.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            raise BenchError("py-spy did not finish") from exc
        finally:
            self.child.stop()
        self.output = out.decode(errors="replace")
        if self.child.popen.returncode != 0:
            raise BenchError(f"py-spy failed:\n{self.output[-2000:]}")


class SignalHooks(WindowHooks):
    """``bench/cprofile_run.py``: SIGUSR1 starts cProfile in the proxy, SIGUSR2 stops and saves."""

    def __init__(self, pid: int, path: Path) -> None:
        self.pid, self.path = pid, path

    def opened(self) -> None:
        os.kill(self.pid, signal.SIGUSR1)

    def closed(self) -> None:
        os.kill(self.pid, signal.SIGUSR2)


def run_cell(
    cell: Cell,
    servers: Servers,
    args: argparse.Namespace,
    harness_cpus: set[int] | None,
    hooks: WindowHooks | None = None,
) -> None:
    """Run the load processes for one cell; sample CPU, RSS and pacing lag over their window."""
    hooks = hooks or WindowHooks()
    port = servers.upstream_port if cell.target == "direct" else servers.ports[cell.target]
    url = f"http://127.0.0.1:{port}{CHAT_PATH}"
    key = servers.keys[cell.target]
    server_pid = servers.upstream_pid if cell.target == "direct" else servers.pids[cell.target]
    procs = max(1, min(args.load_procs, cell.streams))
    start_at = time.time() + 1.5 + cell.streams / 400  # time to start Python and connect
    clients: list[Child] = []
    try:
        base, extra = divmod(cell.streams, procs)
        first = 0
        for i in range(procs):
            count = base + (1 if i < extra else 0)
            popen = subprocess.Popen(
                client_command(args, url, key, count, first, cell.streams, start_at),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                env=harness._child_env(), start_new_session=True,
                preexec_fn=harness._pinner(harness_cpus),
            )
            clients.append(Child(f"stream_client-{i}", popen))
            first += count
        watch = {"server": server_pid, "upstream": servers.upstream_pid}
        watch.update({c.name: c.pid for c in clients})

        def sample() -> tuple[dict[str, float | None], dict[str, tuple[int, int, int]]]:
            return ({n: harness.tree_cpu_seconds(p) for n, p in watch.items()},
                    harness.per_cpu_ticks())

        time.sleep(max(0.0, start_at + args.warmup - time.time()))
        t0 = time.monotonic()
        cpu0, ticks0 = sample()
        upstream_stats(servers.upstream_port)  # resets the upstream's lag figures
        hooks.opened()
        time.sleep(max(0.0, start_at + args.warmup + args.duration - time.time()))
        t1 = time.monotonic()
        cpu1, ticks1 = sample()
        hooks.closed()
        rss = tree_rss_kib(server_pid)
        lag = upstream_stats(servers.upstream_port)
        outputs = []
        for child in clients:
            try:
                out, err = child.popen.communicate(timeout=args.drain + 60)
            except subprocess.TimeoutExpired as exc:
                raise BenchError(f"{child.name} for {cell.target} K={cell.streams} hung") from exc
            if child.popen.returncode != 0:
                raise BenchError(f"{child.name} failed (exit {child.popen.returncode}):\n"
                                 f"{err.decode(errors='replace')[-2000:]}")
            outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
    finally:
        for child in clients:
            child.stop()

    window = t1 - t0
    res = merge_client_outputs(outputs)

    def cpu_s(name: str) -> float | None:
        before, after = cpu0.get(name), cpu1.get(name)
        return None if before is None or after is None else after - before

    server_cpu = cpu_s("server")
    client_cpu = [cpu_s(c.name) for c in clients]
    ttft = sorted(res.pop("ttft_s"))
    bins = res["gap_bins_ms"]
    deltas = res["events"] - res["done_events"]
    res.update({
        "window_s": round(window, 3),
        "ttft_ms": {q: _ms(nearest_rank(ttft, p)) for q, p in (("p50", 50), ("p90", 90),
                                                               ("p99", 99))}
        | {"max": _ms(ttft[-1] if ttft else None), "n": len(ttft)},
        "gap_ms": {"p50": bins_percentile(bins, 50), "p99": bins_percentile(bins, 99),
                   "max": res["max_gap_ms"]},
        "deltas": deltas,
        "deltas_per_s": round(deltas / window, 1) if window > 0 else None,
        "server_cpu_pct": _pct(server_cpu, window),
        "server_cpu_us_per_delta": round(server_cpu / deltas * 1e6, 1)
        if server_cpu is not None and deltas else None,
        "server_rss_kib": rss,
        "upstream_cpu_pct": _pct(cpu_s("upstream"), window),
        "clients_cpu_pct": _pct(sum(c for c in client_cpu if c is not None), window),
        "upstream_lag": {k: lag.get(k) for k in ("max_lag_ms", "late_deltas", "backpressured")},
        "system_cpu": harness.cpu_usage(ticks0, ticks1),
    })
    idle = servers.idle_rss_kib.get(cell.target)
    if rss is not None and idle is not None:
        res["rss_per_stream_kib"] = round((rss - idle) / cell.streams, 1)
    del res["gap_bins_ms"]  # kept compact in the JSON: percentiles above, raw bins not needed
    res["gap_histogram_ms"] = {str(i): c for i, c in enumerate(bins) if c}
    cell.result.update(res)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _pct(cpu: float | None, window: float) -> float | None:
    return None if cpu is None or window <= 0 else round(100 * cpu / window, 1)


def _f(value: float | None, digits: int = 1, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------- report


def add_comparisons(cells: list[Cell], budget_ms: float) -> None:
    """Added TTFT (target - direct at the same K) and whether the level meets the targets."""
    direct = {c.streams: c for c in cells if c.target == "direct" and not c.profiled}
    for cell in cells:
        if cell.target == "direct":
            continue
        res, base = cell.result, direct.get(cell.streams)
        added: dict[str, float | None] = {}
        for q in ("p50", "p99"):
            mine = res["ttft_ms"][q]
            theirs = base.result["ttft_ms"][q] if base else None
            added[q] = None if mine is None or theirs is None else round(mine - theirs, 2)
        res["ttft_added_ms"] = added
        res["meets_targets"] = bool(
            res["completed"] > 0
            and res["failed"] == 0 and res["io_errors"] == 0 and res["connect_errors"] == 0
            and res["short"] == 0 and res["stalls"] == 0
            and added["p99"] is not None and added["p99"] <= budget_ms
        )


def level_line(level: int, cells: list[Cell], server_cpu: str | None) -> str:
    parts = [f"K={level:<5}"]
    for cell in cells:
        r = cell.result
        ttft = r["ttft_ms"]
        text = (f"{cell.target}: {r['completed']} done"
                + (f" {r['failed'] + r['io_errors']} failed" if r["failed"] + r["io_errors"] else "")
                + (f" {r['short']} short" if r["short"] else "")
                + f", ttft p50/p99 {_f(ttft['p50'], 2)}/{_f(ttft['p99'], 2)} ms")
        if cell.target != "direct":
            added = r["ttft_added_ms"]
            text += f" ({_f(added['p50'], 2, True)}/{_f(added['p99'], 2, True)})"
        text += (f", gap p99 {r['gap_ms']['p99']} max {_f(r['gap_ms']['max'], 0)} ms,"
                 f" stalls {r['stalls']}, cpu {_f(r['server_cpu_pct'], 0)}%"
                 f" {_f(r['server_cpu_us_per_delta'], 0)} us/delta")
        if cell.target != "direct":
            text += f", rss/stream {_f(r.get('rss_per_stream_kib'), 0)} KiB"
            if server_cpu:
                foreign = r.get("foreign_cpu_pct")
                text += f", others on {server_cpu} {_f(foreign, 0)}%"
        parts.append(text)
    harness_busy = cells[0].result.get("harness_busy_pct") if cells else None
    parts.append(f"harness busy {_f(harness_busy, 0)}%")
    return " | ".join(parts)


def note_foreign_load(cells: list[Cell], pinning: dict[str, list[int]] | None) -> None:
    """Busy time on the server's CPU that was not the server's (other sessions, steal)."""
    if not pinning:
        return
    server_cpu = f"cpu{pinning['proxy'][0]}"
    harness_cpus = [f"cpu{c}" for c in pinning["harness"]]
    for cell in cells:
        usage = cell.result.get("system_cpu", {})
        busy = usage.get(server_cpu, {})
        if cell.target != "direct" and busy:
            own = cell.result.get("server_cpu_pct") or 0.0
            cell.result["foreign_cpu_pct"] = round(
                busy.get("busy_pct", 0.0) - own + busy.get("steal_pct", 0.0), 1)
        loads = [usage[c]["busy_pct"] + usage[c]["steal_pct"] for c in harness_cpus if c in usage]
        if loads:
            cell.result["harness_busy_pct"] = round(max(loads), 1)


def summarise(cells: list[Cell], args: argparse.Namespace) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for target in args.targets:
        mine = sorted((c for c in cells if c.target == target and not c.profiled),
                      key=lambda c: c.streams)
        if not mine:
            continue
        max_ok = 0
        for cell in mine:
            if not cell.result.get("meets_targets"):
                break
            max_ok = cell.streams
        levels = [c.streams for c in mine]
        under = [k for k in levels if k <= args.ref_streams]
        ref = max(under) if under else min(levels)
        ref_cell = next(c for c in mine if c.streams == ref)
        summary[target] = {
            "max_streams_meeting_targets": max_ok,
            "limit_found": max_ok < max(levels),
            "reference_streams": ref,
            "cpu_us_per_delta": ref_cell.result.get("server_cpu_us_per_delta"),
            "rss_per_stream_kib": ref_cell.result.get("rss_per_stream_kib"),
            "cpu_pct": ref_cell.result.get("server_cpu_pct"),
        }
    return summary


def summary_line(target: str, s: dict[str, Any], budget_ms: float) -> str:
    limit = f"{s['max_streams_meeting_targets']}" + ("" if s["limit_found"] else " (every level run)")
    return (f"{target}: max streams with TTFT p99 added <= {budget_ms:g} ms and no stall: {limit};"
            f" CPU/delta at {s['reference_streams']} streams: {_f(s['cpu_us_per_delta'], 0)} us;"
            f" RSS/stream: {_f(s['rss_per_stream_kib'], 0)} KiB")


def warnings_for(cells: list[Cell], load_before: list[float] | None) -> list[str]:
    notes = []
    noisy = [f"{c.target} K={c.streams} ({c.result['foreign_cpu_pct']:.0f}%)" for c in cells
             if (c.result.get("foreign_cpu_pct") or 0) > 15]
    if noisy:
        notes.append("other processes (or steal) used the server's CPU during: " + ", ".join(noisy))
    busy = [f"{c.target} K={c.streams} ({c.result['harness_busy_pct']:.0f}%)" for c in cells
            if (c.result.get("harness_busy_pct") or 0) > 90]
    if busy:
        notes.append("the harness CPU was saturated (load client + upstream + others), so these "
                     "cells measure the harness too: " + ", ".join(busy))
    late = [f"{c.target} K={c.streams} ({c.result['upstream_lag']['max_lag_ms']:.0f} ms)"
            for c in cells if (c.result["upstream_lag"].get("max_lag_ms") or 0) > 20]
    if late:
        notes.append("the paced upstream sent deltas late (max lag) during: " + ", ".join(late))
    if load_before and load_before[0] > 0.5 * (os.cpu_count() or 1):
        notes.append(f"1-min load average was {load_before[0]:.2f} before the run: other processes "
                     "were busy, so these numbers are noisier than usual")
    return notes


# ------------------------------------------------------------------------------ profile


def profile_cell(
    level: int, servers: Servers, args: argparse.Namespace, workdir: Path,
    proxy_cpus: set[int] | None, harness_cpus: set[int] | None, started: list[Child],
) -> tuple[Cell, dict[str, Any]]:
    """One more proxy cell at ``level`` under a profiler; returns it and the profile summary."""
    out_dir = args.output.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    cell = Cell("proxy", level, profiled=True)
    py_spy = find_py_spy() if args.profiler in ("auto", "py-spy") else None
    why_not = "py-spy is not installed (pip install py-spy)" if py_spy is None else None
    if py_spy is not None:
        why_not = py_spy_can_attach(py_spy, servers.pids["proxy"])
    if args.profiler == "py-spy" and why_not:
        raise BenchError(f"py-spy cannot profile the proxy: {why_not}")
    if why_not is None:
        assert py_spy is not None
        path = out_dir / f"streams-profile-{level}.txt"
        command = [py_spy, "record", "--pid", str(servers.pids["proxy"]), "--rate",
                   str(args.profile_rate), "--duration", str(max(1, math.floor(args.duration))),
                   "--format", "raw", "--function", "--full-filenames", "--nonblocking",
                   "--output", str(path)]
        print(f"# profiling the proxy at K={level} with py-spy ({args.profile_rate} Hz)", flush=True)
        run_cell(cell, servers, args, harness_cpus, PySpyHooks(command, harness_cpus,
                                                                args.duration + 60))
        prof = profile_summary.from_pyspy_raw(path)
    else:
        if args.profiler == "auto":
            print(f"# py-spy unavailable ({why_not}); profiling with cProfile", flush=True)
        path = out_dir / f"streams-profile-{level}.prof"
        path.unlink(missing_ok=True)
        proxy, port = harness.start_proxy(
            workdir, servers.upstream_port, proxy_cpus, args.startup_timeout,
            prefix=[sys.executable, str(BENCH_DIR / "cprofile_run.py"), str(path)],
            log_name="trioproxy-cprofile.log")
        started.append(proxy)
        saved = servers.ports["proxy"], servers.pids["proxy"], servers.idle_rss_kib["proxy"]
        servers.ports["proxy"], servers.pids["proxy"] = port, proxy.pid
        servers.idle_rss_kib["proxy"] = tree_rss_kib(proxy.pid)
        try:
            probe_stream("proxy under cProfile", port, servers.keys["proxy"], 30)
            print(f"# profiling the proxy at K={level} with cProfile", flush=True)
            run_cell(cell, servers, args, harness_cpus, SignalHooks(proxy.pid, path))
            deadline = time.monotonic() + 30
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            (servers.ports["proxy"], servers.pids["proxy"],
             servers.idle_rss_kib["proxy"]) = saved
            proxy.stop()
        if not path.exists():
            raise BenchError(f"cProfile wrote no profile:\n{proxy.log_tail()}")
        prof = profile_summary.from_pstats(path)
    summary = prof.as_dict(args.profile_top)
    summary["file"] = str(path)
    summary["level"] = level
    return cell, {"text": profile_summary.render(prof, args.profile_top), **summary}


# ------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Many concurrent paced SSE streams through trioproxy (issue #14)."
    )
    parser.add_argument("--target", choices=("proxy", "floor", "both", "direct"), default="proxy",
                        help="what to measure against the direct baseline (default proxy); "
                        "direct: only the baseline, to see the harness's own ceiling")
    parser.add_argument("--max-streams", type=int, default=1024, help="last level (doubling)")
    parser.add_argument("--min-streams", type=int, default=1, help="first level")
    parser.add_argument("--levels", default=None, help="explicit comma-separated levels")
    parser.add_argument("--deltas", type=int, default=64, help="deltas per stream")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between deltas")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before measuring (default: one stream's length + 0.5)")
    parser.add_argument("--drain", type=float, default=None,
                        help="seconds streams may finish after the window (default: 2 streams)")
    parser.add_argument("--stall-ms", type=float, default=200.0, help="a gap above this stalls")
    parser.add_argument("--ttft-budget-ms", type=float, default=50.0,
                        help="TTFT p99 the target may add (default 50)")
    parser.add_argument("--ref-streams", type=int, default=128,
                        help="level whose CPU/delta and RSS/stream the summary reports")
    parser.add_argument("--load-procs", type=int, default=1,
                        help="load client processes sharing the K streams (all on harness CPUs)")
    parser.add_argument("--include-usage", action="store_true",
                        help='clients send stream_options {"include_usage": true}')
    parser.add_argument("--profile", type=int, default=None, metavar="K",
                        help="after the levels, profile the proxy in one more cell at K streams")
    parser.add_argument("--profiler", choices=("auto", "py-spy", "cprofile"), default="auto")
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples/s")
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny run (K=1,2; 4 deltas 10 ms apart; 0.5 s cells): harness check")
    parser.add_argument("--floor-connection", choices=("hypercorn", "trioproxy"), default="hypercorn",
                        help="serve the floor with Hypercorn's TCPServer (default) or trioproxy's subclass")
    parser.add_argument("--no-pin", action="store_true", help="don't pin processes to CPUs")
    parser.add_argument("--startup-timeout", type=float, default=30.0)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="JSON results path")
    args = parser.parse_args(argv)
    if args.smoke:
        args.levels = args.levels or "1,2"
        args.deltas, args.interval, args.duration = 4, 0.01, 0.5
        args.warmup = 0.1 if args.warmup is None else args.warmup
        args.drain = 1.0 if args.drain is None else args.drain
    if args.deltas < 2 or args.interval <= 0 or args.duration <= 0:
        parser.error("need --deltas >= 2, --interval > 0, --duration > 0")
    args.stream_seconds = (args.deltas - 1) * args.interval
    if args.warmup is None:
        args.warmup = round(args.stream_seconds + 0.5, 3)
    if args.drain is None:
        args.drain = round(2 * args.stream_seconds + 1, 3)
    if args.levels:
        args.level_list = sorted({int(x) for x in args.levels.split(",") if x.strip()})
    else:
        args.level_list, k = [], max(1, args.min_streams)
        while k <= args.max_streams:
            args.level_list.append(k)
            k *= 2
    if not args.level_list or min(args.level_list) < 1:
        parser.error("no levels to run (positive integers needed)")
    args.targets = {"proxy": ["proxy"], "floor": ["floor"], "both": ["floor", "proxy"],
                    "direct": []}[args.target]
    if args.profile is not None and "proxy" not in args.targets:
        parser.error("--profile profiles the proxy: use --target proxy or both")
    args.proxy_url = None  # for run.plan_pinning
    return args


def raise_fd_limit(needed: int) -> None:
    """Each stream holds up to 3 sockets across our processes; children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def start_servers(
    args: argparse.Namespace, workdir: Path, started: list[Child],
    proxy_cpus: set[int] | None, harness_cpus: set[int] | None,
) -> Servers:
    pace = ["--deltas", str(args.deltas), "--interval", str(args.interval)]
    upstream, upstream_port = start_announcing(
        workdir, "paced_upstream", [str(BENCH_DIR / "paced_upstream.py"), "--port", "0", *pace],
        harness_cpus)
    started.append(upstream)
    servers = Servers(upstream_port, upstream.pid, keys={"direct": harness.UPSTREAM_KEY})
    print(f"# paced_upstream on 127.0.0.1:{upstream_port}: {args.deltas} deltas "
          f"{args.interval * 1000:g} ms apart", flush=True)
    timeout = args.stream_seconds + 10
    probe_stream("direct", upstream_port, harness.UPSTREAM_KEY, timeout)
    if "floor" in args.targets:
        floor, port = start_announcing(
            workdir, "hypercorn_stream_floor",
            [str(BENCH_DIR / "hypercorn_stream_floor.py"), "--port", "0", *pace,
             "--connection", args.floor_connection], proxy_cpus)
        started.append(floor)
        servers.ports["floor"], servers.pids["floor"], servers.keys["floor"] = port, floor.pid, ""
        probe_stream("floor", port, "", timeout)
        print(f"# hypercorn_stream_floor on 127.0.0.1:{port} (pid {floor.pid})", flush=True)
    if "proxy" in args.targets:
        proxy, port = harness.start_proxy(workdir, upstream_port, proxy_cpus, args.startup_timeout)
        started.append(proxy)
        servers.ports["proxy"], servers.pids["proxy"] = port, proxy.pid
        servers.keys["proxy"] = harness.MASTER_KEY
        try:
            probe_stream("proxy", port, harness.MASTER_KEY, timeout)
        except BenchError as exc:
            raise BenchError(f"{exc}\n{proxy.log_tail()}") from None
        print(f"# trioproxy on 127.0.0.1:{port} (pid {proxy.pid})", flush=True)
    time.sleep(0.3)
    for target, pid in servers.pids.items():
        servers.idle_rss_kib[target] = tree_rss_kib(pid)
    return servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, harness._on_sigterm)
    raise_fd_limit(3 * max(args.level_list) + 256)
    proxy_cpus, harness_cpus = harness.plan_pinning(args)
    pinning = ({"proxy": sorted(proxy_cpus), "harness": sorted(harness_cpus)}
               if proxy_cpus and harness_cpus else None)
    server_cpu = f"cpu{pinning['proxy'][0]}" if pinning else None
    machine = harness.machine_facts(pinning)
    command = harness.command_line()
    load_before = harness._loadavg()
    per_cell = 1.5 + args.warmup + args.duration + args.stream_seconds + 0.5
    n_cells = len(args.level_list) * (1 + len(args.targets))
    print(f"# {command}", flush=True)
    print(f"# levels {args.level_list}, {n_cells} cells, about {n_cells * per_cell:.0f} s",
          flush=True)

    cells: list[Cell] = []
    profile: dict[str, Any] | None = None
    with (
        tempfile.TemporaryDirectory(prefix="trioproxy-streams-") as tmp,
        harness.children(Path(tmp), args.output.parent) as started,
    ):
        workdir = Path(tmp)
        servers = start_servers(args, workdir, started, proxy_cpus, harness_cpus)
        for level in args.level_list:
            level_cells = []
            for target in ["direct", *args.targets]:
                cell = Cell(target, level)
                run_cell(cell, servers, args, harness_cpus)
                wait_upstream_idle(servers.upstream_port, args.drain + 10)
                cells.append(cell)
                level_cells.append(cell)
                for child in started:
                    if child.popen.poll() is not None:
                        raise BenchError(f"{child.name} died during the run:\n{child.log_tail()}")
            add_comparisons(level_cells, args.ttft_budget_ms)
            note_foreign_load(level_cells, pinning)
            print(level_line(level, level_cells, server_cpu), flush=True)
        if args.profile is not None:
            cell, profile = profile_cell(args.profile, servers, args, workdir, proxy_cpus,
                                         harness_cpus, started)
            direct = [c for c in cells if c.target == "direct" and c.streams == args.profile]
            add_comparisons([*direct, cell], args.ttft_budget_ms)
            note_foreign_load([cell], pinning)
            cells.append(cell)
            print(level_line(args.profile, [cell], server_cpu) + "  (profiled: not in summary)")

    machine["loadavg_before"] = load_before
    machine["loadavg_after"] = harness._loadavg()
    summary = summarise(cells, args)
    notes = warnings_for(cells, load_before)
    print()
    if profile is not None:
        print(f"Profile of the proxy at K={profile['level']} streams ({profile['file']}):")
        print(profile["text"])
        print()
    for note in notes:
        print(f"# warning: {note}")
    for target, s in summary.items():
        print(summary_line(target, s, args.ttft_budget_ms))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "settings": {k: getattr(args, k) for k in (
            "targets", "level_list", "deltas", "interval", "duration", "warmup", "drain",
            "stall_ms", "ttft_budget_ms", "ref_streams", "load_procs", "include_usage")},
        "summary": summary,
        "summary_lines": [summary_line(t, s, args.ttft_budget_ms) for t, s in summary.items()],
        "warnings": notes,
        "cells": [{"target": c.target, "streams": c.streams, "profiled": c.profiled, **c.result}
                  for c in cells],
        "profile": profile,
    }
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"# results written to {args.output}")
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
