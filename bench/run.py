"""Benchmark trioproxy against a fast fake upstream: added latency and throughput.

Usage (from the repository root)::

    .venv/bin/python bench/run.py              # full run, ~5 s per cell, ~1.5 min
    .venv/bin/python bench/run.py --quick      # ~1.5 s per cell
    .venv/bin/python bench/run.py --only direct
    .venv/bin/python bench/run.py --proxy-url http://127.0.0.1:4000 --upstream-port 9999

It starts ``bench/fast_upstream.py``, writes a temporary trioproxy config pointing at it,
starts ``trioproxy run`` on a free port, waits for ``/health/readiness``, then runs
``bench/loadgen.py`` (a separate process, so it never shares a GIL with the proxy) for every
cell: {direct, proxy} x {non-streaming, streaming} x {1, 16, 64} clients. Direct and proxy
runs of the same cell are adjacent in time so slow drift of the machine affects both alike.

This file is plain synchronous Python on purpose: it only manages subprocesses and sends a
few probe requests, and blocking calls are fine outside Trio. Every child is started in its
own session and torn down in ``finally`` (terminate, wait, then kill), including on Ctrl-C
and SIGTERM, so a failed run never leaves a proxy listening.

Output: a Markdown table for the README, the command and machine facts on stdout, and the
full results in ``bench/results/latest.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "latest.json"

MASTER_KEY = "sk-bench-master"
UPSTREAM_KEY = "sk-bench-upstream"
BODY = '{"model":"bench-model","messages":[{"role":"user","content":"hello"}]}'
CHAT_PATH = "/v1/chat/completions"

CONFIG_TEMPLATE = """\
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:{upstream_port}/v1
      api_key: sk-bench-upstream
general_settings:
  master_key: sk-bench-master
"""


class BenchError(Exception):
    """A setup step failed; the message says what to look at."""


# --------------------------------------------------------------------------- processes


@dataclass
class Child:
    """A subprocess we started, in its own session so its whole group can be stopped."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None = None
    may_fork: bool = False  # True for the proxy, whose workers could outlive its leader

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the child's process group (it may have workers), then SIGKILL if stuck."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        elif self.may_fork:
            # The leader is gone, but stray group members (workers) must not outlive us.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


def _pinner(cpus: set[int] | None) -> Callable[[], None] | None:
    """A preexec_fn that pins the child (and everything it forks) to ``cpus``."""
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def _child_env() -> dict[str, str]:
    """Environment for children: never route loopback traffic through an HTTP proxy."""
    env = dict(os.environ)
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1,localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _read_line(fd: int, pending: bytearray, deadline: float) -> bytes | None:
    """Read one line from a raw pipe fd by ``deadline``; None on EOF or timeout."""
    while True:
        newline = pending.find(b"\n")
        if newline >= 0:
            line = bytes(pending[:newline])
            del pending[: newline + 1]
            return line
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        data = os.read(fd, 65536)
        if not data:
            return None
        pending.extend(data)


def start_upstream(workdir: Path, port: int, cpus: set[int] | None) -> tuple[Child, int]:
    log_path = workdir / "upstream.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "fast_upstream.py"), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            bufsize=0,
            env=_child_env(),
            start_new_session=True,
            preexec_fn=_pinner(cpus),
        )
    child = Child("fast_upstream", popen, log_path)
    assert popen.stdout is not None
    line = _read_line(popen.stdout.fileno(), bytearray(), time.monotonic() + 15)
    if not line or not line.startswith(b"PORT "):
        child.stop()
        raise BenchError(f"fast_upstream did not report its port:\n{child.log_tail()}")
    return child, int(line.split()[1])


def _proxy_command(config: Path, port: int) -> list[str]:
    script = Path(sys.executable).parent / "trioproxy"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "trioproxy"]
    return base + [
        "run",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
    ]


def start_proxy(
    workdir: Path,
    upstream_port: int,
    cpus: set[int] | None,
    timeout: float,
    prefix: list[str] | None = None,
    log_name: str = "trioproxy.log",
) -> tuple[Child, int]:
    """Start ``trioproxy run`` and wait until it is ready.

    ``prefix``: a command that takes trioproxy's arguments (``run CONFIG ...``) in place of the
    ``trioproxy`` command (``bench/streams.py`` passes ``python bench/cprofile_run.py OUT``).
    """
    config = workdir / "trioproxy-bench.yaml"
    config.write_text(CONFIG_TEMPLATE.format(upstream_port=upstream_port))
    port = free_port()
    log_path = workdir / log_name
    command = _proxy_command(config, port)
    if prefix:
        command = prefix + command[command.index("run") :]
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env=_child_env(),
            start_new_session=True,
            preexec_fn=_pinner(cpus),
        )
    child = Child("trioproxy", popen, log_path, may_fork=True)
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise BenchError(
                f"trioproxy exited with code {popen.returncode} before it was ready.\n"
                f"command: {shlex.join(command)}\n{child.log_tail()}"
            )
        try:
            status, body = http_request("127.0.0.1", port, "GET", "/health/readiness", timeout=2)
            if status == 200:
                return child, port
            last = f"status {status}: {body[:200]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.1)
    child.stop()
    raise BenchError(
        f"trioproxy not ready after {timeout:.0f} s (last: {last}).\n"
        f"command: {shlex.join(command)}\n{child.log_tail()}"
    )


# ------------------------------------------------------------------------ measurements


def free_port() -> int:
    """A port that was free a moment ago; the tiny race is acceptable on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


CLK_TCK = _clock_ticks()


def tree_cpu_seconds(root: int) -> float | None:
    """User+system CPU of ``root`` and all its live descendants, from /proc (Linux only).

    Why a tree: the proxy may run its server in worker processes; we want what the
    proxy as a whole costs, not just the supervisor's share.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    if root not in cpu:
        return None
    wanted = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    return sum(cpu[pid] for pid in wanted)


def per_cpu_ticks() -> dict[str, tuple[int, int, int]]:
    """(busy, steal, total) clock ticks per CPU from /proc/stat.

    Why: pinning keeps *our* processes apart but does not keep other work off the proxy's
    CPU. A proxy below 100 % while its CPU is fully busy means something else (or the
    hypervisor, via steal) took the difference, and that cell is not trustworthy.
    """
    ticks: dict[str, tuple[int, int, int]] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            name, *raw = line.split()
            values = [int(v) for v in raw]
            total = sum(values[:8])  # guest time is already included in user
            idle = values[3] + values[4]
            steal = values[7] if len(values) > 7 else 0
            ticks[name] = (total - idle - steal, steal, total)
    return ticks


def cpu_usage(
    before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]
) -> dict[str, dict[str, float]]:
    usage: dict[str, dict[str, float]] = {}
    for name, (busy1, steal1, total1) in after.items():
        if name not in before:
            continue
        busy0, steal0, total0 = before[name]
        total = total1 - total0
        if total > 0:
            usage[name] = {
                "busy_pct": round(100 * (busy1 - busy0) / total, 1),
                "steal_pct": round(100 * (steal1 - steal0) / total, 1),
            }
    return usage


def upstream_stats(port: int) -> dict[str, int]:
    try:
        status, body = http_request("127.0.0.1", port, "GET", "/__stats", timeout=5)
    except OSError:
        return {}
    return json.loads(body) if status == 200 else {}


@dataclass
class Cell:
    target: str  # "direct" or "proxy"
    stream: bool
    concurrency: int
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.target:6} {'stream' if self.stream else 'plain':6} c={self.concurrency}"


def run_cell(
    cell: Cell,
    url: str,
    api_key: str,
    args: argparse.Namespace,
    cpus: set[int] | None,
    watch: dict[str, int],
    upstream_port: int,
) -> None:
    """Run one loadgen process; sample CPU of ``watch`` processes over its measured window."""
    command = [
        sys.executable,
        str(BENCH_DIR / "loadgen.py"),
        "--url",
        url,
        "--concurrency",
        str(cell.concurrency),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--api-key",
        api_key,
        "--body",
        BODY,
    ] + (["--stream"] if cell.stream else [])
    popen = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        bufsize=0,
        env=_child_env(),
        start_new_session=True,
        preexec_fn=_pinner(cpus),
    )
    child = Child("loadgen", popen)
    try:
        assert popen.stderr is not None and popen.stdout is not None
        deadline = time.monotonic() + args.warmup + args.duration + 60
        pending = bytearray()
        stderr_lines: list[bytes] = []
        cpu_start: dict[str, float | None] = {}
        cpu_end: dict[str, float | None] = {}
        ticks_start: dict[str, tuple[int, int, int]] = {}
        stats_before: dict[str, int] = {}
        stats_after: dict[str, int] = {}
        ticks_end: dict[str, tuple[int, int, int]] = {}
        t_start = t_end = 0.0
        while True:
            line = _read_line(popen.stderr.fileno(), pending, deadline)
            if line is None:
                break
            if line == b"MEASURE_START":
                t_start = time.monotonic()
                cpu_start = {name: tree_cpu_seconds(pid) for name, pid in watch.items()}
                ticks_start = per_cpu_ticks()
                stats_before = upstream_stats(upstream_port)
            elif line == b"MEASURE_END":
                t_end = time.monotonic()
                cpu_end = {name: tree_cpu_seconds(pid) for name, pid in watch.items()}
                ticks_end = per_cpu_ticks()
                stats_after = upstream_stats(upstream_port)
                break
            else:
                stderr_lines.append(line)
        out, err = popen.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"loadgen for {cell.label} did not finish in time") from exc
    finally:
        child.stop()
    if popen.returncode != 0:
        tail = b"\n".join(stderr_lines).decode(errors="replace") + err.decode(errors="replace")
        raise BenchError(f"loadgen failed for {cell.label} (exit {popen.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    window = t_end - t_start
    for name in watch:
        before, after = cpu_start.get(name), cpu_end.get(name)
        if before is not None and after is not None and window > 0:
            result[f"{name}_cpu_pct"] = round(100 * (after - before) / window, 1)
        else:
            result[f"{name}_cpu_pct"] = None
    result["system_cpu"] = cpu_usage(ticks_start, ticks_end)
    if stats_before and stats_after:
        # Sampled inside the measured window, so warm-up pool growth is excluded; a pool
        # that reuses its connections shows 0 here. Minus one: the second /__stats probe
        # counts its own connection and request.
        result["upstream_connections_opened"] = (
            stats_after["connections"] - stats_before["connections"] - 1
        )
        result["upstream_requests"] = stats_after["requests"] - stats_before["requests"] - 1
    cell.result = result


def sanity_check(name: str, host: str, port: int, api_key: str) -> None:
    """One plain and one streaming request, so a broken path fails loudly before the load."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    status, body = http_request(host, port, "POST", CHAT_PATH, BODY, headers)
    if status != 200 or b'"choices"' not in body:
        raise BenchError(f"{name}: non-streaming probe got {status}: {body[:500]!r}")
    stream_body = BODY[:-1] + ',"stream":true}'
    status, body = http_request(host, port, "POST", CHAT_PATH, stream_body, headers)
    if status != 200 or b"data: [DONE]" not in body:
        raise BenchError(f"{name}: streaming probe got {status}: {body[:500]!r}")


# ----------------------------------------------------------------------------- report


def machine_facts(pinning: dict[str, list[int]] | None) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    for dist in ("trio", "httpx", "hypercorn", "quart", "quart-trio", "trioproxy"):
        with contextlib.suppress(PackageNotFoundError):
            versions[dist] = version(dist)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": versions,
        "pinning": pinning,
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _cpus(cpus: list[int]) -> str:
    return ",".join(str(cpu) for cpu in cpus)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _find(cells: list[Cell], target: str, stream: bool, concurrency: int) -> Cell | None:
    for cell in cells:
        if (cell.target, cell.stream, cell.concurrency) == (target, stream, concurrency):
            return cell
    return None


def summarise(cells: list[Cell], concurrencies: list[int]) -> dict[str, Any]:
    """Derive added latency (at one client) and the throughput rows from raw cells."""
    latency: dict[str, Any] = {}
    for stream in (False, True):
        key = "streaming" if stream else "non_streaming"
        row: dict[str, Any] = {}
        for target in ("direct", "proxy"):
            cell = _find(cells, target, stream, 1)
            lat = cell.result.get("latency_ms", {}) if cell else {}
            row[f"{target}_p50_ms"] = lat.get("p50")
            row[f"{target}_p99_ms"] = lat.get("p99")
        for q in ("p50", "p99"):
            d, p = row[f"direct_{q}_ms"], row[f"proxy_{q}_ms"]
            row[f"added_{q}_ms"] = round(p - d, 3) if d is not None and p is not None else None
        latency[key] = row
    throughput: list[dict[str, Any]] = []
    for stream in (False, True):
        for concurrency in concurrencies:
            row = {"stream": stream, "clients": concurrency}
            for target in ("direct", "proxy"):
                cell = _find(cells, target, stream, concurrency)
                res = cell.result if cell else {}
                row[f"{target}_rps"] = res.get("rps")
                row[f"{target}_p50_ms"] = res.get("latency_ms", {}).get("p50")
                row[f"{target}_p99_ms"] = res.get("latency_ms", {}).get("p99")
                row[f"{target}_failed"] = res.get("failed", 0) + res.get("io_errors", 0)
            proxy_cell = _find(cells, "proxy", stream, concurrency)
            row["proxy_cpu_pct"] = proxy_cell.result.get("proxy_cpu_pct") if proxy_cell else None
            d, p = row["direct_rps"], row["proxy_rps"]
            row["proxy_over_direct"] = round(p / d, 3) if d and p is not None else None
            throughput.append(row)
    return {"added_latency_ms": latency, "throughput": throughput}


def render_markdown(
    summary: dict[str, Any], command: str, machine: dict[str, Any], args: argparse.Namespace
) -> str:
    has_proxy = any(r["proxy_rps"] is not None for r in summary["throughput"])
    has_direct = any(r["direct_rps"] is not None for r in summary["throughput"])
    out: list[str] = []
    out.append("Added latency at one client (sequential requests), milliseconds:")
    out.append("")
    out.append(
        "| request | direct p50 | proxy p50 | added p50 | direct p99 | proxy p99 | added p99 |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for key, label in (("non_streaming", "non-streaming"), ("streaming", "streaming")):
        row = summary["added_latency_ms"][key]
        added50, added99 = row["added_p50_ms"], row["added_p99_ms"]
        out.append(
            f"| {label} | {_fmt(row['direct_p50_ms'])} | {_fmt(row['proxy_p50_ms'])} | "
            f"{'n/a' if added50 is None else f'{added50:+.2f}'} | "
            f"{_fmt(row['direct_p99_ms'])} | {_fmt(row['proxy_p99_ms'])} | "
            f"{'n/a' if added99 is None else f'{added99:+.2f}'} |"
        )
    out.append("")
    out.append("Throughput, requests/s (N concurrent keep-alive clients, closed loop):")
    out.append("")
    out.append(
        "| request | clients | direct req/s | proxy req/s | proxy/direct "
        "| proxy p50 ms | proxy p99 ms | proxy CPU |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in summary["throughput"]:
        ratio = row["proxy_over_direct"]
        cpu = row["proxy_cpu_pct"]
        out.append(
            f"| {'streaming' if row['stream'] else 'non-streaming'} | {row['clients']} | "
            f"{_fmt(row['direct_rps'], 0)} | {_fmt(row['proxy_rps'], 0)} | "
            f"{'n/a' if ratio is None else f'{ratio:.1%}'} | "
            f"{_fmt(row['proxy_p50_ms'])} | {_fmt(row['proxy_p99_ms'])} | "
            f"{'n/a' if cpu is None else f'{cpu:.0f}%'} |"
        )
    failures = [
        f"{'streaming' if r['stream'] else 'non-streaming'} c={r['clients']} {t}: {r[f'{t}_failed']}"
        for r in summary["throughput"]
        for t in ("direct", "proxy")
        if r[f"{t}_failed"]
    ]
    out.append("")
    if failures:
        out.append("**Failed requests (not counted above):** " + "; ".join(failures))
        out.append("")
    pin = machine["pinning"]
    if not pin:
        pin_text = "no CPU pinning"
    elif has_proxy:
        pin_text = (
            f"proxy pinned to CPU {_cpus(pin['proxy'])}, load generator and fake upstream to CPU "
            f"{_cpus(pin['harness'])}"
        )
    else:
        pin_text = f"load generator and fake upstream pinned to CPU {_cpus(pin['harness'])}"
    measured = "direct only" if not has_proxy else ("proxy only" if not has_direct else "")
    out.append(
        f"Command: `{command}` ({args.duration:g} s per cell after {args.warmup:g} s warm-up"
        f"{', ' + measured if measured else ''})."
    )
    out.append(
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['platform']}, "
        f"{machine['implementation']} {machine['python']}, trio "
        f"{machine['versions'].get('trio', '?')}; {pin_text}; all traffic over loopback to "
        "bench/fast_upstream.py."
    )
    return "\n".join(out)


def command_line() -> str:
    """The command as the user would type it from the repository root."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(REPO_ROOT)
    script = Path(os.path.abspath(sys.argv[0]))
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO_ROOT)
    return shlex.join([str(python), str(script), *sys.argv[1:]])


# ------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure what trioproxy adds over a fast fake OpenAI upstream."
    )
    parser.add_argument("--duration", type=float, default=None, help="measured s/cell (5)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up s/cell (1)")
    parser.add_argument("--quick", action="store_true", help="1.5 s cells, 0.5 s warm-up")
    parser.add_argument(
        "--only", choices=("direct", "proxy"), default=None, help="run one side only"
    )
    parser.add_argument(
        "--proxy-url",
        default=None,
        help="benchmark an already-running proxy (must route bench-model to the upstream "
        "started here; see --upstream-port) instead of starting one",
    )
    parser.add_argument("--master-key", default=MASTER_KEY, help="key for --proxy-url")
    parser.add_argument("--upstream-port", type=int, default=0, help="fast_upstream port (0=free)")
    parser.add_argument(
        "--concurrency",
        default="1,16,64",
        help="comma-separated client counts; 1 must be included for the latency table",
    )
    parser.add_argument("--no-pin", action="store_true", help="don't pin processes to CPUs")
    parser.add_argument("--startup-timeout", type=float, default=30.0)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="JSON results path")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 1.5 if args.quick else 5.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 1.0
    args.concurrencies = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
    if not args.concurrencies or min(args.concurrencies) < 1:
        parser.error("--concurrency needs positive integers")
    return args


def plan_pinning(args: argparse.Namespace) -> tuple[set[int] | None, set[int] | None]:
    """Give the proxy a core of its own and the harness (loadgen + upstream) the rest.

    Why: on a 2-core box the scheduler otherwise moves the single-threaded proxy, the load
    generator and the upstream around, and the proxy's numbers swing with it. The direct
    baseline runs on the harness CPUs too, so it shows the harness's own ceiling in exactly
    the placement used for the proxy runs.
    """
    if args.no_pin or args.proxy_url or not hasattr(os, "sched_getaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return {allowed[0]}, set(allowed[1:])


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def children(workdir: Path, keep_logs_in: Path) -> Iterator[list[Child]]:
    """Stop every started child on the way out, then keep their logs for a post-mortem."""
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in reversed(started):
            child.stop()
        with contextlib.suppress(OSError):
            keep_logs_in.mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("*.log"):
                shutil.copyfile(log, keep_logs_in / log.name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    targets = ["direct", "proxy"] if args.only is None else [args.only]
    proxy_cpus, harness_cpus = plan_pinning(args)
    pinning = (
        {"proxy": sorted(proxy_cpus), "harness": sorted(harness_cpus)}
        if proxy_cpus and harness_cpus
        else None
    )
    machine = machine_facts(pinning)
    command = command_line()
    load_before = _loadavg()
    cells = [
        Cell(target, stream, concurrency)
        for stream in (False, True)
        for concurrency in args.concurrencies
        for target in targets
    ]
    estimate = len(cells) * (args.duration + args.warmup + 0.5)
    print(f"# {command}", flush=True)
    print(f"# {len(cells)} cells, about {estimate:.0f} s of load", flush=True)

    with (
        tempfile.TemporaryDirectory(prefix="trioproxy-bench-") as tmp,
        children(Path(tmp), args.output.parent) as started,
    ):
        workdir = Path(tmp)
        upstream, upstream_port = start_upstream(workdir, args.upstream_port, harness_cpus)
        started.append(upstream)
        print(f"# fast_upstream on 127.0.0.1:{upstream_port}", flush=True)
        sanity_check("direct", "127.0.0.1", upstream_port, UPSTREAM_KEY)
        watch = {"upstream": upstream.pid}

        proxy: Child | None = None
        proxy_host, proxy_port = "127.0.0.1", 0
        if "proxy" in targets:
            if args.proxy_url:
                parts = urlsplit(args.proxy_url)
                proxy_host, proxy_port = parts.hostname or "127.0.0.1", parts.port or 80
                if proxy_host not in ("127.0.0.1", "localhost", "::1"):
                    raise BenchError("--proxy-url must point at loopback")
            else:
                proxy, proxy_port = start_proxy(
                    workdir, upstream_port, proxy_cpus, args.startup_timeout
                )
                started.append(proxy)
                watch["proxy"] = proxy.pid
                print(f"# trioproxy on 127.0.0.1:{proxy_port} (pid {proxy.pid})", flush=True)
            try:
                sanity_check("proxy", proxy_host, proxy_port, args.master_key)
            except BenchError as exc:
                log = proxy.log_tail() if proxy else ""
                raise BenchError(f"{exc}\n{log}".rstrip()) from None

        for cell in cells:
            if cell.target == "direct":
                url, key = f"http://127.0.0.1:{upstream_port}{CHAT_PATH}", UPSTREAM_KEY
            else:
                url, key = f"http://{proxy_host}:{proxy_port}{CHAT_PATH}", args.master_key
            run_cell(cell, url, key, args, harness_cpus, watch, upstream_port)
            res = cell.result
            lat = res["latency_ms"]
            print(
                f"# {cell.label:24} {_fmt(res['rps'], 0):>7} req/s  p50 {_fmt(lat['p50'])} ms"
                f"  p99 {_fmt(lat['p99'])} ms  failed {res['failed'] + res['io_errors']}"
                f"  cpu: loadgen {_fmt(res['loadgen_cpu_pct'], 0)}%"
                f" upstream {_fmt(res.get('upstream_cpu_pct'), 0)}%"
                + (f" proxy {_fmt(res.get('proxy_cpu_pct'), 0)}%" if "proxy" in watch else "")
                + f"  upstream conns opened {res.get('upstream_connections_opened', '?')}"
                + "".join(
                    f"  {name} busy {u['busy_pct']:.0f}% steal {u['steal_pct']:.0f}%"
                    for name, u in res.get("system_cpu", {}).items()
                ),
                flush=True,
            )
            if proxy is not None and proxy.popen.poll() is not None:
                raise BenchError(f"trioproxy died during the run:\n{proxy.log_tail()}")

    machine["loadavg_before"] = load_before
    machine["loadavg_after"] = _loadavg()
    summary = summarise(cells, args.concurrencies)
    markdown = render_markdown(summary, command, machine, args)
    print()
    print(markdown)
    if pinning:
        # Work we did not start, running on the proxy's CPU, makes the proxy look slower.
        noisy = []
        for cell in (c for c in cells if c.target == "proxy"):
            busy = cell.result.get("system_cpu", {}).get(f"cpu{pinning['proxy'][0]}", {})
            own = cell.result.get("proxy_cpu_pct") or 0.0
            other = busy.get("busy_pct", 0.0) - own + busy.get("steal_pct", 0.0)
            cell.result["proxy_cpu_foreign_pct"] = round(other, 1)
            if other > 15:
                noisy.append(f"{cell.label.strip()} ({other:.0f}%)")
        if noisy:
            print("\n# warning: other processes used the proxy's CPU during: " + ", ".join(noisy))
    if load_before and load_before[0] > 0.5 * (os.cpu_count() or 1):
        # Other work on the box steals CPU from the pinned processes and skews every cell.
        print(
            f"\n# warning: 1-min load average was {load_before[0]:.2f} before the run; "
            "other processes were busy, so these numbers are noisier than usual"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrencies": args.concurrencies,
            "targets": targets,
            "proxy_url": args.proxy_url,
            "body": json.loads(BODY),
        },
        "summary": summary,
        "cells": [
            {"target": c.target, "stream": c.stream, "concurrency": c.concurrency, **c.result}
            for c in cells
        ],
        "markdown": markdown,
    }
    args.output.write_text(json.dumps(document, indent=2) + "\n")
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
