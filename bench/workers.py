"""``trioproxy run --workers 2`` against one worker: throughput and CPU per request, interleaved.

Usage (from the repository root)::

    .venv/bin/python bench/workers.py [--rounds 3] [--duration 3] [--concurrency 16] [--loadgen wrk|python]

Two proxies run side by side for the whole benchmark, one with one worker and one with
``--workers 2``, both on the built-in ``fake`` provider (answers at once, no upstream process
competing for the CPU: the proxy's own work is what is measured). Rounds alternate between them
(A B A B …) after one unmeasured warm-up of each; the idle proxy costs nothing meanwhile. Each cell
is one run of the load generator (a process of its own, N keep-alive connections, closed loop).

Per cell it prints requests/s, p50, and what each request cost in CPU: the proxy's whole process
tree (supervisor and workers, from ``/proc``) and the load generator's; for ``--workers 2`` also how
the kernel spread the N connections over the two workers and each worker's share of the CPU.

Why ``--loadgen wrk`` is the default: the load generator runs on the same two cores as the
workers. ``bench/loadgen.py`` (Python, Trio) costs about a third of what the proxy itself spends per
request, so with two workers it takes a share of a core that the second worker would need and the
ratio measures the machine rather than the proxy. ``wrk`` (C, one thread, epoll; the POST body
set once from a Lua script) costs a few µs per request. It is installed with ``apt-get install -y
wrk`` (Debian/Ubuntu), which this script runs itself when it is root and ``wrk`` is missing;
``--loadgen python`` needs nothing.

On a machine whose cores are shared with other work, read the CPU per request columns: they hold
when req/s does not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.proxy_process import ProxyProcess, write_config  # noqa: E402

MASTER_KEY = "sk-bench-workers-master"
BODY = '{"model":"bench-model","messages":[{"role":"user","content":"hello"}]}'
CONFIG = {"model_list": [{"model_name": "bench-model", "litellm_params": {"model": "fake/bench-model"}}],
          "general_settings": {"master_key": MASTER_KEY}}
CLK_TCK = os.sysconf("SC_CLK_TCK")

#: wrk's report, one JSON line from the ``done`` hook (latency in µs)
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '%(body)s'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRKJSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,' ..
    '"timeout":%%d,"p50_us":%%d,"p99_us":%%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Cell:
    rps: float
    p50_ms: float
    requests: int
    proxy_us: float          # proxy CPU (supervisor + workers) per request
    loadgen_us: float        # load generator CPU per request
    spread: list[int]        # connections per worker
    shares: list[float]      # each worker's share of the proxy's CPU


# ------------------------------------------------------------------------------------------ /proc

def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def worker_pids(proxy: ProxyProcess, workers: int) -> list[int]:
    """The processes that serve: the proxy itself, or the supervisor's ``spawn_main`` children."""
    pid = proxy.process.pid
    if workers == 1:
        return [pid]
    for _ in range(100):
        spawned = [child for child in _children(pid)
                   if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]
        if len(spawned) == workers:
            return spawned
        time.sleep(0.1)
    raise SystemExit(f"expected {workers} worker processes under {pid}")


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def connection_spread(pids: list[int], port: int) -> list[int]:
    """Established connections on ``port`` held by each process (from /proc/net/tcp)."""
    established: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":
            established.add(int(fields[9]))
    return [len(_socket_inodes(pid) & established) for pid in pids]


# ------------------------------------------------------------------------------------------ load

def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (apt-get install -y wrk) …", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("wrk not found: install it (apt-get install -y wrk) or pass --loadgen python")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_wrk_script(path: Path, api_key: str, body: str = BODY) -> Path:
    """wrk's Lua script: the POST, its headers, and a JSON report line from ``done``."""
    path.write_text(WRK_SCRIPT % {"body": body, "key": api_key})
    return path


def run_python(url: str, api_key: str, concurrency: int, duration: float) -> dict:
    """One ``bench/loadgen.py`` run (1 s warm-up, then ``duration``); the load generator's CPU per
    request over its measured window, as it reports it."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", f"{url}/v1/chat/completions",
         "--concurrency", str(concurrency), "--duration", str(duration), "--warmup", "1",
         "--api-key", api_key, "--body", BODY], capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    if report.get("failed") or not report.get("ok"):
        raise SystemExit(f"failed requests: {report}")
    return {"rps": report["rps"], "total": report["ok"] + report["warmup_ok"],
            "p50_ms": report["latency_ms"]["p50"], "p99_ms": report["latency_ms"]["p99"],
            "loadgen_us": report["loadgen_cpu_pct"] / 100 * report["measured_s"] / report["ok"] * 1e6}


def run_wrk(wrk: str, script: Path, url: str, concurrency: int, duration: float) -> dict:
    """One ``wrk`` run (one thread, ``concurrency`` connections); its CPU per request from
    ``getrusage(RUSAGE_CHILDREN)`` (the proxies, also children, are only reaped at the end)."""
    before = _children_cpu()
    seconds = max(1, round(duration))      # wrk takes whole seconds
    result = subprocess.run(
        [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", str(script), f"{url}/v1/chat/completions"],
        capture_output=True, text=True)
    cpu = _children_cpu() - before
    if result.returncode != 0:
        raise SystemExit(f"wrk failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    match = re.search(r"^WRKJSON (\{.*\})$", result.stdout, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk printed no report:\n{result.stdout}\n{result.stderr}")
    raw = json.loads(match.group(1))
    errors = {name: raw[name] for name in ("connect", "read", "write", "status", "timeout") if raw[name]}
    if errors or not raw["requests"]:
        raise SystemExit(f"wrk: failed requests {errors}:\n{result.stdout}")
    return {"rps": raw["requests"] / (raw["duration_us"] / 1e6), "total": raw["requests"],
            "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
            "loadgen_us": cpu / raw["requests"] * 1e6}


class Bench:
    def __init__(self, loadgen: str, concurrency: int, tmp: Path) -> None:
        self.loadgen = loadgen
        self.concurrency = concurrency
        if loadgen == "wrk":
            self.wrk = ensure_wrk()
            self.script = write_wrk_script(tmp / "post.lua", MASTER_KEY)

    def cell(self, proxy: ProxyProcess, pids: list[int], duration: float) -> Cell:
        port = int(proxy.base_url.rsplit(":", 1)[1])
        tree = [proxy.process.pid, *(pid for pid in pids if pid != proxy.process.pid)]
        cpu_before = [_cpu_seconds(pid) for pid in tree]
        spread: list[int] = []
        # the connections exist only while the load runs: count them halfway through its measured part
        warmup = 1.0 if self.loadgen == "python" else 0.0
        looker = threading.Timer(warmup + duration / 2, lambda: spread.extend(connection_spread(pids, port)))
        looker.start()
        try:
            if self.loadgen == "wrk":
                report = run_wrk(self.wrk, self.script, proxy.base_url, self.concurrency, duration)
            else:
                report = run_python(proxy.base_url, MASTER_KEY, self.concurrency, duration)
        finally:
            looker.cancel()
            looker.join()
        used = [_cpu_seconds(pid) - before for pid, before in zip(tree, cpu_before, strict=True)]
        total = sum(used)
        worker_used = [used[tree.index(pid)] for pid in pids]
        return Cell(rps=report["rps"], p50_ms=report["p50_ms"], requests=report["total"],
                    proxy_us=total / report["total"] * 1e6, loadgen_us=report["loadgen_us"], spread=spread,
                    shares=[u / total if total else 0.0 for u in worker_used])


def first_request(proxy: ProxyProcess) -> None:
    """One request answered before any timed load: a fresh process's first one is slow (imports)."""
    import urllib.request

    request = urllib.request.Request(f"{proxy.base_url}/v1/chat/completions", data=BODY.encode(), headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {MASTER_KEY}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def stop(proxy: ProxyProcess, pids: list[int]) -> None:
    """SIGTERM the supervisor (it stops its workers), then SIGKILL whatever is left.

    ``ProxyProcess.kill`` alone SIGKILLs the supervisor and orphans ``--workers`` processes,
    which then go on polling a shutdown event nobody will set.
    """
    try:
        proxy.terminate(signal.SIGTERM, timeout=15)
    except subprocess.TimeoutExpired:
        proxy.kill()
    for pid in pids:
        if pid != proxy.process.pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _fmt(cell: Cell) -> str:
    text = (f"{cell.rps:6.0f} req/s p50 {cell.p50_ms:5.2f} ms, proxy {cell.proxy_us:4.0f} µs/req, "
            f"loadgen {cell.loadgen_us:4.0f} µs/req")
    if len(cell.shares) > 1:
        text += (f", conns {'/'.join(map(str, cell.spread))}, cpu "
                 f"{'/'.join(f'{share:.0%}' for share in cell.shares)}")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--loadgen", choices=("wrk", "python"), default="wrk")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}; loadgen {args.loadgen}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bench = Bench(args.loadgen, args.concurrency, tmp)
        one = ProxyProcess(write_config(tmp / "one", CONFIG), log_level="warning")
        one_pids = [one.process.pid]
        two_pids: list[int] = []
        two = None
        try:
            two = ProxyProcess(write_config(tmp / "two", CONFIG), args=["--workers", "2"], log_level="warning")
            two_pids = worker_pids(two, 2)
            for proxy, pids in ((one, one_pids), (two, two_pids)):   # first requests are slower: not measured
                first_request(proxy)
                bench.cell(proxy, pids, 2)
            rows: list[tuple[Cell, Cell]] = []
            for index in range(args.rounds):
                single = bench.cell(one, one_pids, args.duration)
                double = bench.cell(two, two_pids, args.duration)
                rows.append((single, double))
                print(f"round {index + 1}: 1 worker {_fmt(single)}\n"
                      f"         2 workers {_fmt(double)}; ratio {double.rps / single.rps:.2f}", flush=True)
        finally:
            stop(one, one_pids)
            if two is not None:
                stop(two, two_pids)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    singles, doubles = [r[0] for r in rows], [r[1] for r in rows]
    print(f"medians over {args.rounds} rounds, {args.concurrency} clients, {args.duration:g} s cells, "
          f"loadgen {args.loadgen}, load average after {os.getloadavg()[0]:.2f}:\n"
          f"  1 worker  {med([c.rps for c in singles]):.0f} req/s, proxy {med([c.proxy_us for c in singles]):.0f} "
          f"µs/req, loadgen {med([c.loadgen_us for c in singles]):.0f} µs/req\n"
          f"  2 workers {med([c.rps for c in doubles]):.0f} req/s, proxy {med([c.proxy_us for c in doubles]):.0f} "
          f"µs/req, loadgen {med([c.loadgen_us for c in doubles]):.0f} µs/req\n"
          f"  ratio (median of rounds) {med([d.rps / s.rps for s, d in rows]):.2f}")


if __name__ == "__main__":
    main()
