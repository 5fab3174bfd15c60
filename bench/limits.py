"""Measure the limits issue #8 holds the proxy to, against a real ``trioproxy run`` on its defaults.

Usage (from the repository root)::

    .venv/bin/python bench/limits.py                 # every phase, ~2-3 min
    .venv/bin/python bench/limits.py --streams 1000 --phases overload

The proxy runs with **no** limit set in its config, so every figure is for the defaults. Phases:

* ``deadlines`` -- a head stopped midway, a head trickled 1 byte/s, a body trickled 1 byte/s: how
  long until the ``408`` (and the connection closed). Limits: head <= 10 s, body <= 30 s.
* ``refusals`` -- over-limit heads (101 fields; 40 KiB; 100 KiB) and bodies (declared 33 MiB):
  time from the last byte sent to the answer and to the close. Limit: <= 1 s.
* ``flood`` -- many connections sending heads at and over the limits; the proxy's RSS before,
  at its peak and after. Limit: grows <= 5 MiB.
* ``huge`` -- a 34 MB body of a million messages (413 by its Content-Length), and value-heavy
  bodies under 32 MiB that take the worker-thread path, while ``/health/liveliness`` is probed
  every 10 ms. Limits: answered within 1 s, health worst < 250 ms.
* ``overload`` -- ``--streams`` slow streams (one SSE event per second) opened at once; those over
  ``max_in_flight_requests`` must get ``503`` + ``Retry-After`` within 1 s; health probed every
  20 ms all along. Limits: health p99 < 100 ms, worst < 250 ms.
* ``soak`` -- a long mix (plain, streaming, bad JSON, unknown model, over-limit heads; kept-alive and
  fresh connections); RSS sampled every 1,000 requests, slope fitted after warm-up; open
  descriptors before and after. Limits: slope < 1 MiB per 1,000 requests; descriptors back to
  their baseline.

It prints one line per figure and a Markdown table with the command. Processes: the proxy (pinned
to the first CPU, as in ``bench/run.py``), ``fast_upstream.py``, and a slow SSE upstream
(``limits.py --slow-upstream``) on the other CPU; the client side runs here, on Trio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench_run  # bench/ is a directory of scripts, not a package

MASTER_KEY = "sk-bench-master"
RESULTS: list[tuple[str, str, str, bool | None]] = []   # (figure, value, limit, met)

CONFIG = """\
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:{fast}/v1
      api_key: sk-bench-upstream
  - model_name: slow-model
    litellm_params:
      model: openai/slow-model
      api_base: http://127.0.0.1:{slow}/v1
      api_key: sk-bench-upstream
general_settings:
  master_key: sk-bench-master
"""


def record(figure: str, value: str, limit: str = "", met: bool | None = None) -> None:
    RESULTS.append((figure, value, limit, met))
    mark = "" if met is None else ("  OK" if met else "  OVER THE LIMIT")
    print(f"  {figure}: {value}{f'  (limit {limit})' if limit else ''}{mark}", flush=True)


# ------------------------------------------------------------------ the slow SSE upstream (child)

async def _slow_upstream(port: int, interval: float) -> None:
    """Every POST: a chunked SSE stream, one small event per ``interval`` s (each stream at its own
    phase), until the client leaves."""
    event = (b'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"slow-model",'
             b'"choices":[{"index":0,"delta":{"content":"tick "},"finish_reason":null}]}\n\n')
    chunk = b"%x\r\n%s\r\n" % (len(event), event)
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")

    async def serve(stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
            while b"\r\n\r\n" not in data:
                piece = await stream.receive_some(65536)
                if not piece:
                    return
                data += piece
            await stream.send_all(head + chunk)
            # streams that started together must not tick together: a real model's tokens do not
            await trio.sleep(random.uniform(0, interval))
            while True:
                await stream.send_all(chunk)
                await trio.sleep(interval)

    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1", backlog=4096)
    print(f"PORT {listeners[0].socket.getsockname()[1]}", flush=True)
    await trio.serve_listeners(serve, listeners)


# ------------------------------------------------------------------ processes

@contextlib.contextmanager
def processes(args: argparse.Namespace) -> Iterator[tuple[int, bench_run.Child]]:
    """fast_upstream, the slow upstream and the proxy; yields (proxy port, proxy child)."""
    pin_proxy, pin_rest = bench_run.plan_pinning(argparse.Namespace(no_pin=args.no_pin, proxy_url=None))
    if pin_rest:
        os.sched_setaffinity(0, pin_rest)   # this client process stays off the proxy's CPU too
    children: list[bench_run.Child] = []
    with tempfile.TemporaryDirectory(prefix="trioproxy-limits-") as tmp:
        workdir = Path(tmp)
        try:
            fast, fast_port = bench_run.start_upstream(workdir, 0, pin_rest)
            children.append(fast)
            slow_log = workdir / "slow.log"
            with slow_log.open("wb") as log:
                popen = subprocess.Popen(
                    [sys.executable, __file__, "--slow-upstream", "--interval", str(args.interval)],
                    stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, bufsize=0,
                    env=bench_run._child_env(), start_new_session=True, preexec_fn=bench_run._pinner(pin_rest))
            children.append(bench_run.Child("slow_upstream", popen, slow_log))
            assert popen.stdout is not None
            line = bench_run._read_line(popen.stdout.fileno(), bytearray(), time.monotonic() + 15)
            if not line or not line.startswith(b"PORT "):
                raise bench_run.BenchError("the slow upstream did not report its port")
            slow_port = int(line.split()[1])
            config = workdir / "limits.yaml"
            config.write_text(CONFIG.format(fast=fast_port, slow=slow_port)
                              + "".join(f"  {item.partition('=')[0]}: {item.partition('=')[2]}\n" for item in args.set))
            port = bench_run.free_port()
            log_path = workdir / "trioproxy.log"
            command = bench_run._proxy_command(config, port)
            with log_path.open("wb") as log:
                proxy_popen = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               cwd=workdir, env=bench_run._child_env(), start_new_session=True,
                                               preexec_fn=bench_run._pinner(pin_proxy))
            proxy = bench_run.Child("trioproxy", proxy_popen, log_path, may_fork=True)
            children.append(proxy)
            deadline = time.monotonic() + 30
            while True:
                try:
                    if bench_run.http_request("127.0.0.1", port, "GET", "/health/readiness", timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or proxy_popen.poll() is not None:
                    raise bench_run.BenchError(f"trioproxy did not start: {shlex.join(command)}\n{proxy.log_tail()}")
                time.sleep(0.1)
            yield port, proxy
        finally:
            for child in reversed(children):
                child.stop()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def connections(pid: int, port: int) -> tuple[int, int]:
    """The proxy's connected sockets: (clients: local port ``port``; outgoing: the upstream pools)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    clients = outgoing = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] not in inodes or fields[3] == "0A":   # 0A: LISTEN
                    continue
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    clients += 1
                else:
                    outgoing += 1
    return clients, outgoing


# ------------------------------------------------------------------ a tiny HTTP/1.1 client

class Conn:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    @classmethod
    async def open(cls, port: int) -> Conn:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def _fill(self) -> bool:
        try:
            piece = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            piece = b""
        if piece:
            self.buffer += piece
        return bool(piece)

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """One response (Content-Length or chunked); raises EOFError if the connection closes first."""
        while b"\r\n\r\n" not in self.buffer:
            if not await self._fill():
                raise EOFError(bytes(self.buffer[:200]))
        end = self.buffer.index(b"\r\n\r\n")
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        del self.buffer[:end + 4]
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if headers.get("transfer-encoding") == "chunked":
            body = bytearray()
            while True:
                while b"\r\n" not in self.buffer:
                    if not await self._fill():
                        raise EOFError
                line_end = self.buffer.index(b"\r\n")
                size = int(self.buffer[:line_end], 16)
                while len(self.buffer) < line_end + 2 + size + 2:
                    if not await self._fill():
                        raise EOFError
                body += self.buffer[line_end + 2:line_end + 2 + size]
                del self.buffer[:line_end + 2 + size + 2]
                if size == 0:
                    return status, headers, bytes(body)
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not await self._fill():
                raise EOFError
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return status, headers, body

    async def until_closed(self) -> None:
        while await self._fill():
            pass

    async def aclose(self) -> None:
        await self.stream.aclose()


def request(method: str, path: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
            length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {MASTER_KEY}"]
    if body or length is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body) if length is None else length}"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chat(model: str = "bench-model", stream: bool = False, **extra: Any) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}
    if stream:
        body["stream"] = True
    return request("POST", "/v1/chat/completions", json.dumps(body).encode())


HEALTH = request("GET", "/health/liveliness")


class HealthProbe:
    """``GET /health/liveliness`` on one kept-alive connection every ``every`` seconds; latencies in ms."""

    def __init__(self, port: int, every: float) -> None:
        self.port, self.every = port, every
        self.latencies: list[float] = []

    async def run(self, stop: trio.Event) -> None:
        conn = await Conn.open(self.port)
        try:
            while not stop.is_set():
                started = time.perf_counter()
                await conn.stream.send_all(HEALTH)
                status, _, _ = await conn.response()
                self.latencies.append((time.perf_counter() - started) * 1000)
                assert status == 200, status
                with trio.move_on_after(self.every):
                    await stop.wait()
        finally:
            await conn.aclose()

    def summary(self) -> tuple[float, float, float]:
        values = sorted(self.latencies)
        return values[len(values) // 2], values[min(len(values) - 1, int(len(values) * 0.99))], values[-1]


async def with_health_probe(port: int, every: float, work: Callable[[], Awaitable[None]]) -> HealthProbe:
    probe = HealthProbe(port, every)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe.run, stop)
        await trio.sleep(0.2)
        await work()
        await trio.sleep(0.2)
        stop.set()
    return probe


# ------------------------------------------------------------------ phases

async def phase_deadlines(port: int) -> None:
    print("deadlines (defaults: head 10 s, body 30 s)", flush=True)
    results: dict[str, tuple[float, int | None]] = {}

    async def probe(name: str, first: bytes, trickle: bool) -> None:
        conn = await Conn.open(port)
        started = time.perf_counter()
        await conn.stream.send_all(first)
        status: int | None = None
        async with trio.open_nursery() as nursery:
            if trickle:
                async def drip() -> None:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        while True:
                            await trio.sleep(1.0)
                            await conn.stream.send_all(b"x")
                nursery.start_soon(drip)
            try:
                status = (await conn.response())[0]
                await conn.until_closed()
            except EOFError:
                pass
            nursery.cancel_scope.cancel()
        results[name] = (time.perf_counter() - started, status)
        await conn.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe, "head stopped midway", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-A: ", False)
        nursery.start_soon(probe, "head trickled 1 byte/s", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-A: ", True)
        nursery.start_soon(probe, "body trickled 1 byte/s", request("POST", "/v1/chat/completions", length=10_000), True)
    for name, (seconds, status) in results.items():
        limit = 30.0 if name.startswith("body") else 10.0
        record(f"{name}: answered {status} and closed after", f"{seconds:.2f} s", f"<= {limit:g} s",
               status == 408 and seconds <= limit + 1.0)


async def phase_refusals(port: int) -> None:
    print("over-limit heads and bodies: last byte sent -> answer -> closed", flush=True)
    cases = {
        "101 header fields": request("GET", "/health/liveliness", headers=[(f"X-{i}", "v") for i in range(99)]),
        "40 KiB header block": request("GET", "/health/liveliness", headers=[("X-Big", "a" * 40 * 1024)]),
        "100 KiB header block": request("GET", "/health/liveliness", headers=[("X-Big", "a" * 100 * 1024)]),
        "body declared 33 MiB": request("POST", "/v1/chat/completions", length=33 * 1024 * 1024),
    }
    for name, data in cases.items():
        worst_answer = worst_close = 0.0
        statuses = set()
        for _ in range(20):
            conn = await Conn.open(port)
            with contextlib.suppress(trio.BrokenResourceError):
                await conn.stream.send_all(data)
            sent = time.perf_counter()
            statuses.add((await conn.response())[0])
            answered = time.perf_counter()
            await conn.until_closed()
            closed = time.perf_counter()
            await conn.aclose()
            worst_answer = max(worst_answer, answered - sent)
            worst_close = max(worst_close, closed - sent)
        record(f"{name}: {'/'.join(map(str, sorted(statuses)))}, worst of 20: answered / closed",
               f"{worst_answer * 1000:.1f} / {worst_close * 1000:.1f} ms", "<= 1 s", worst_close <= 1.0)


async def phase_flood(port: int, pid: int, connections: int, per_connection: int) -> None:
    print(f"header flood: {connections} connections x {per_connection} heads at the limits, "
          f"plus as many over them", flush=True)
    at_limit = request("GET", "/health/liveliness", headers=[(f"X-F{i}", "v" * 300) for i in range(97)])
    over = request("GET", "/health/liveliness", headers=[(f"X-F{i}", "v" * 300) for i in range(120)])
    done = trio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(pid))
            with trio.move_on_after(0.05):
                await done.wait()

    async def client(rounds: int) -> None:
        conn = await Conn.open(port)
        for _ in range(rounds):
            await conn.stream.send_all(at_limit)
            assert (await conn.response())[0] == 200
            bad = await Conn.open(port)
            await bad.stream.send_all(over)
            assert (await bad.response())[0] == 431
            await bad.aclose()
        await conn.aclose()

    # warm-up: the same concurrency once, briefly, so that the allocator's arenas and the proxy's
    # per-connection structures exist before "before" (what a flood must not do is keep growing)
    async with trio.open_nursery() as clients:
        for _ in range(connections):
            clients.start_soon(client, 5)
    await trio.sleep(0.5)
    before = rss_mib(pid)
    peak = before
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        async with trio.open_nursery() as clients:
            for _ in range(connections):
                clients.start_soon(client, per_connection)
        done.set()
    await trio.sleep(1.0)
    after = rss_mib(pid)
    record(f"RSS over a flood of {2 * connections * per_connection} heads of ~30 KiB on {connections} connections "
           "(after a warm-up): before / peak / after",
           f"{before:.1f} / {peak:.1f} / {after:.1f} MiB (+{peak - before:.1f} at peak)", "+5 MiB",
           peak - before <= 5.0)


async def phase_huge(port: int) -> None:
    print("huge bodies while health is probed every 10 ms", flush=True)
    def compact(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    over = compact({"model": "bench-model", "messages": [{"role": "user", "content": "hello"}] * 1_000_000})
    under = compact({"model": "bench-model", "messages": [{"role": "user", "content": ""}] * 1_000_000})
    cases = [
        (f"{len(over) / 1e6:.0f} MB body of 1,000,000 messages", over),
        (f"{len(under) / 1e6:.0f} MB body of 1,000,000 messages (under 32 MiB)", under),
        ("10 MB body of 150,000 messages (worker thread, then 400)",
         json.dumps({"model": "bench-model", "messages": [{"role": "user", "content": "x" * 50}] * 150_000}).encode()),
        ("9 MB body of 99,000 messages (worker thread, forwarded)",
         json.dumps({"model": "bench-model", "messages": [{"role": "user", "content": "x" * 50}] * 99_000}).encode()),
        ("30 MB body of one message (worker thread, forwarded)",
         json.dumps({"model": "bench-model", "messages": [{"role": "user", "content": "x" * 30_000_000}]}).encode()),
    ]
    for name, body in cases:
        outcome: dict[str, Any] = {}

        async def send(body: bytes = body, outcome: dict[str, Any] = outcome) -> None:
            conn = await Conn.open(port)
            data = request("POST", "/v1/chat/completions", body)
            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                async def push() -> None:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await conn.stream.send_all(data)
                nursery.start_soon(push)
                status, _, payload = await conn.response()
                outcome["status"], outcome["seconds"] = status, time.perf_counter() - started
                outcome["code"] = json.loads(payload)["error"]["code"] if status >= 400 else ""
                nursery.cancel_scope.cancel()
            await conn.aclose()

        probe = await with_health_probe(port, 0.01, send)
        p50, p99, worst = probe.summary()
        record(f"{name}: {outcome['status']} {outcome['code']}".rstrip(), f"answered in {outcome['seconds']:.2f} s; "
               f"health p50/p99/max {p50:.1f}/{p99:.1f}/{worst:.1f} ms", "1 s; health max < 250 ms",
               outcome["seconds"] <= 1.0 and worst < 250)


async def phase_overload(port: int, pid: int, streams: int, refused_probes: int, steady: float,
                         args_interval: float) -> None:
    print(f"overload: {streams} slow streams (1 event/s) opened at once, then {refused_probes} more requests "
          f"while they run; health probed every 20 ms", flush=True)
    admitted: list[Conn] = []
    burst_refusals: list[float] = []
    refusals: list[float] = []
    statuses: dict[int, int] = {}
    retry_after: set[str] = set()

    async def open_one() -> None:
        conn = await Conn.open(port)
        started = time.perf_counter()
        await conn.stream.send_all(chat("slow-model", stream=True))
        while b"\r\n\r\n" not in conn.buffer:
            if not await conn._fill():
                return
        status = int(conn.buffer.split(b" ", 2)[1])
        statuses[status] = statuses.get(status, 0) + 1
        if status == 200:
            admitted.append(conn)
        else:
            burst_refusals.append(time.perf_counter() - started)
            await conn.aclose()

    async def drain(conn: Conn) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while await conn._fill():
                conn.buffer.clear()

    probe = HealthProbe(port, 0.02)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe.run, stop)
        await trio.sleep(0.5)
        burst_from = len(probe.latencies)
        async with trio.open_nursery() as openers:
            for _ in range(streams):
                openers.start_soon(open_one)
        burst = sorted(probe.latencies[burst_from:])
        async with trio.open_nursery() as readers:
            for conn in admitted:
                readers.start_soon(drain, conn)
            await trio.sleep(1.0)
            steady_from = len(probe.latencies)
            cpu_from, wall_from = bench_run.tree_cpu_seconds(pid) or 0.0, time.perf_counter()
            pace = steady / max(1, refused_probes)
            for _ in range(refused_probes):           # requests over the cap, while the streams run
                refused = await Conn.open(port)
                sent = time.perf_counter()
                await refused.stream.send_all(chat())
                status, headers, _ = await refused.response()
                statuses[status] = statuses.get(status, 0) + 1
                refusals.append(time.perf_counter() - sent)
                retry_after.add(headers.get("retry-after", "-"))
                await refused.aclose()
                await trio.sleep(pace)
            steady_latencies = sorted(probe.latencies[steady_from:])
            cpu_share = ((bench_run.tree_cpu_seconds(pid) or 0.0) - cpu_from) / (time.perf_counter() - wall_from)
            readers.cancel_scope.cancel()
        stop.set()
    for conn in admitted:
        await conn.aclose()

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(len(values) * q))] * (1000 if values is not steady_latencies else 1)

    record(f"{streams} slow streams opened at once, then {refused_probes} more: statuses",
           ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    if burst:
        record("  while the streams were being opened (informative): health worst", f"{burst[-1]:.1f} ms")
    if burst_refusals:
        burst_refusals.sort()
        record("  streams over the cap in that burst, answered 503: p50 / worst",
               f"{pct(burst_refusals, 0.5):.1f} / {burst_refusals[-1] * 1000:.1f} ms")
    refusals.sort()
    over = "over the cap" if statuses.get(503) else "(under the cap)"
    record(f"proxy CPU under {len(admitted)} open streams ({len(admitted) / args_interval:.0f} events/s)",
           f"{cpu_share * 100:.0f}% of one core")
    if refusals:
        record(f"requests {over} under {len(admitted)} open streams, answered: p50 / p99 / worst",
               f"{pct(refusals, 0.5):.1f} / {pct(refusals, 0.99):.1f} / {refusals[-1] * 1000:.1f} ms; "
               f"Retry-After {'/'.join(sorted(retry_after))}", "<= 1 s", refusals[-1] <= 1.0)
    worst = steady_latencies[-1]
    record(f"health under {len(admitted)} open streams: p50 / p99 / worst of {len(steady_latencies)}",
           f"{pct(steady_latencies, 0.5):.1f} / {pct(steady_latencies, 0.99):.1f} / {worst:.1f} ms",
           "p99 < 100 ms, worst < 250 ms", pct(steady_latencies, 0.99) < 100 and worst < 250)
    await trio.sleep(1.0)
    conn = await Conn.open(port)
    await conn.stream.send_all(chat())
    record("after the streams closed, a new request", str((await conn.response())[0]))
    await conn.aclose()


async def phase_soak(port: int, pid: int, total: int) -> None:
    print(f"soak: {total} mixed requests on 16 clients", flush=True)
    mix = [chat(), chat(stream=True), chat(), request("POST", "/v1/chat/completions", b"{not json"),
           chat("no-such-model"), chat(), request("GET", "/v1/models"), chat(stream=True)]
    over = request("GET", "/health/liveliness", headers=[(f"X-{i}", "v") for i in range(120)])
    samples: list[tuple[int, float]] = []
    done = 0
    goal = 0

    async def client(index: int) -> None:
        nonlocal done
        conn = await Conn.open(port)
        i = index
        while done < goal:
            i += 1
            if i % 50 == 0:                            # a fresh connection refused at its head
                bad = await Conn.open(port)
                await bad.stream.send_all(over)
                await bad.response()
                await bad.aclose()
            elif i % 20 == 0:                          # a fresh connection, closed by the client
                await conn.aclose()
                conn = await Conn.open(port)
            await conn.stream.send_all(mix[i % len(mix)])
            await conn.response()
            done += 1
            if done % 1000 == 0 and goal == total:
                samples.append((done, rss_mib(pid)))
        await conn.aclose()

    # warm-up with the same mix and concurrency: the upstream pool keeps up to 16 idle connections
    # (until keepalive_expiry), which belong to the baseline, not to a leak
    for goal in (1000, total):
        done = 0
        async with trio.open_nursery() as nursery:
            for index in range(16):
                nursery.start_soon(client, index)
        await trio.sleep(1.0)
        if goal != total:
            fds_before = open_fds(pid) - connections(pid, port)[1]
    clients_after, pool_after = connections(pid, port)
    fds_after = open_fds(pid) - pool_after
    tail = samples[len(samples) // 5:]
    xs = [x / 1000 for x, _ in tail]
    ys = [y for _, y in tail]
    slope = statistics.linear_regression(xs, ys).slope if len(tail) >= 3 else float("nan")
    record(f"RSS over {total} requests: first / last sample", f"{samples[0][1]:.1f} / {samples[-1][1]:.1f} MiB")
    record("RSS slope after the first fifth", f"{slope:+.3f} MiB per 1,000 requests", "< 1 MiB", slope < 1.0)
    record("open descriptors, the idle upstream pool aside: before / after the soak (client sockets left)",
           f"{fds_before} / {fds_after} ({clients_after}); upstream pool {pool_after} idle connections "
           "(max_keepalive_connections, closed after keepalive_expiry)", "back to baseline",
           fds_after <= fds_before and clients_after == 0)


# ------------------------------------------------------------------ main

PHASES = ("deadlines", "refusals", "flood", "huge", "overload", "soak")


async def measure(args: argparse.Namespace, port: int, pid: int) -> None:
    phases = args.phases.split(",")
    # memory figures first, before the huge bodies have grown the heap
    if "flood" in phases:
        await phase_flood(port, pid, args.flood_connections, args.flood_per_connection)
    if "soak" in phases:
        await phase_soak(port, pid, args.soak)
    if "refusals" in phases:
        await phase_refusals(port)
    if "huge" in phases:
        await phase_huge(port)
    if "overload" in phases:
        await phase_overload(port, pid, args.streams, args.refused, args.steady, args.interval)
    if "deadlines" in phases:
        await phase_deadlines(port)


def render() -> str:
    lines = ["| figure | measured | limit |", "|---|---|---|"]
    for figure, value, limit, met in RESULTS:
        verdict = "" if met is None else (" (met)" if met else " (**not met**)")
        lines.append(f"| {figure} | {value} | {limit}{verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, from {', '.join(PHASES)}")
    parser.add_argument("--streams", type=int, default=1000, help="slow streams opened at once (overload)")
    parser.add_argument("--refused", type=int, default=100, help="extra requests sent while the cap is full")
    parser.add_argument("--steady", type=float, default=10.0, help="seconds the extra requests are spread over")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between the slow upstream's events")
    parser.add_argument("--flood-connections", type=int, default=20)
    parser.add_argument("--flood-per-connection", type=int, default=100)
    parser.add_argument("--soak", type=int, default=30_000, help="requests in the soak")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a general_settings key for the proxy (to explore; the figures are for the defaults)")
    parser.add_argument("--slow-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.slow_upstream:
        trio.run(_slow_upstream, args.port, args.interval)
        return 0
    with processes(args) as (port, proxy):
        trio.run(measure, args, port, proxy.pid)
        log = proxy.log_tail(20)
    print()
    print(render())
    print()
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (shared machine)")
    if "Traceback" in log:
        print("the proxy logged a traceback:\n" + log)
    return 0 if all(met is not False for *_, met in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
