"""Closed-loop HTTP/1.1 load generator: N keep-alive connections, fixed duration, JSON out.

Why a hand-rolled client rather than httpx or h11: the load generator shares a 2-core
machine with the proxy and the fake upstream, and it must comfortably outrun the proxy,
so it should spend as little CPU per request as the fake upstream does. The request bytes
are rendered once; the response parser handles exactly what the benchmark needs (status
line, ``Content-Length``, ``Transfer-Encoding: chunked``, ``Connection: close``, and
read-until-EOF as a fallback).

Each of the N workers owns one connection and sends the next request as soon as the
previous response is complete (a closed loop, like N sequential clients). After a warm-up,
every response that completes inside the measurement window is counted and its latency
(request write start -> last body byte) recorded. A request counts as successful when the
status is 200 and the body looks complete: for streaming, ``data: [DONE]`` arrived; for
non-streaming, the JSON carries ``"choices"``.

Bounded: the run ends at the deadline (in-flight requests are abandoned, not counted) or
after ``--max-requests`` successes, whichever comes first.

Run as its own process (``bench/run.py`` does this) so it never competes with the proxy
for the GIL. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import socket
import sys
import time
from array import array
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import trio

RECV_BYTES = 65536


class ProtocolError(Exception):
    """The server sent something this tiny client does not understand."""


class ConnectionClosed(Exception):
    """The server closed the connection before the response was complete."""


@dataclass
class Target:
    host: str
    port: int
    path: str


def parse_url(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise SystemExit(f"only plain http:// URLs are supported, got {url!r}")
    if parts.hostname is None:
        raise SystemExit(f"no host in {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.hostname, parts.port or 80, path)


def render_request(target: Target, body: bytes, headers: list[tuple[str, str]]) -> bytes:
    """Render the one request every worker sends, so the hot loop only copies bytes."""
    lines = [
        f"POST {target.path} HTTP/1.1",
        f"host: {target.host}:{target.port}",
        "content-type: application/json",
        "accept: */*",
        f"content-length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class HttpConnection:
    """One keep-alive connection with a receive buffer shared across responses."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.buf = bytearray()

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def close(self) -> None:
        self.sock.close()

    async def send_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            sent = await self.sock.send(view)
            view = view[sent:]

    async def _fill(self) -> None:
        data = await self.sock.recv(RECV_BYTES)
        if not data:
            raise ConnectionClosed("server closed the connection mid-response")
        self.buf.extend(data)

    async def _read_line(self) -> bytes:
        buf = self.buf
        end = buf.find(b"\r\n")
        while end < 0:
            await self._fill()
            end = buf.find(b"\r\n")
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    async def read_response(self) -> tuple[int, bytes, bool]:
        """Return (status, body, keep_alive) for the next response on the connection."""
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            while end < 0:
                await self._fill()
                end = buf.find(b"\r\n\r\n")
            head = bytes(buf[:end])
            del buf[: end + 4]
            lines = head.split(b"\r\n")
            status_line = lines[0]
            if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
                raise ProtocolError(f"bad status line {status_line[:80]!r}")
            status = int(status_line[9:12])
            if 100 <= status < 200:
                continue  # interim response; the real one follows
            break

        keep_alive = status_line.startswith(b"HTTP/1.1")
        length: int | None = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                token = value.strip().lower()
                if token == b"close":
                    keep_alive = False
                elif token == b"keep-alive":
                    keep_alive = True

        if status in (204, 304):
            return status, b"", keep_alive
        if chunked:
            parts: list[bytes] = []
            while True:
                size_line = await self._read_line()
                try:
                    size = int(size_line.split(b";", 1)[0], 16)
                except ValueError as exc:
                    raise ProtocolError(f"bad chunk size {size_line[:40]!r}") from exc
                if size == 0:
                    while await self._read_line():  # trailers end with an empty line
                        pass
                    return status, b"".join(parts), keep_alive
                while len(buf) < size + 2:
                    await self._fill()
                parts.append(bytes(buf[:size]))
                del buf[: size + 2]
        if length is not None:
            while len(buf) < length:
                await self._fill()
            body = bytes(buf[:length])
            del buf[:length]
            return status, body, keep_alive
        # Neither framing header: the body runs until the server closes.
        while True:
            data = await self.sock.recv(RECV_BYTES)
            if not data:
                break
            buf.extend(data)
        body = bytes(buf)
        buf.clear()
        return status, body, False


@dataclass
class Run:
    """Shared state of one load run; only touched from the single Trio thread."""

    target: Target
    request: bytes
    stream: bool
    t_measure: float
    t_end: float
    max_requests: int
    ok: int = 0
    failed: int = 0
    warmup_ok: int = 0
    connects: int = 0
    connect_errors: int = 0
    io_errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    latencies: array = field(default_factory=lambda: array("d"))
    stopped_by: str = "duration"
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)

    def note_error(self, text: str) -> None:
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:300])

    def body_ok(self, body: bytes) -> bool:
        if self.stream:
            return b"data: [DONE]" in body
        return b'"choices"' in body


async def worker(run: Run) -> None:
    """One client: a keep-alive connection, re-opened if the server closes it."""
    now = trio.current_time
    while True:
        try:
            conn = await HttpConnection.open(run.target.host, run.target.port)
        except OSError as exc:
            run.connect_errors += 1
            run.note_error(f"connect: {exc!r}")
            await trio.sleep(0.05)  # don't spin on a refused port
            continue
        run.connects += 1
        try:
            while True:
                start = now()
                await conn.send_all(run.request)
                status, body, keep_alive = await conn.read_response()
                end = now()
                # Count by completion time: in steady state that is unbiased, whereas
                # counting by start time would drop the ~N requests in flight at each edge.
                if end >= run.t_measure:
                    run.statuses[status] = run.statuses.get(status, 0) + 1
                    if status == 200 and run.body_ok(body):
                        run.ok += 1
                        run.latencies.append(end - start)
                        if run.ok >= run.max_requests:
                            run.stopped_by = "max_requests"
                            run.cancel.cancel()
                    else:
                        run.failed += 1
                        run.note_error(f"status {status}: {body[:200]!r}")
                elif status == 200:
                    run.warmup_ok += 1
                else:
                    run.note_error(f"warm-up status {status}: {body[:200]!r}")
                if not keep_alive:
                    break
        except (OSError, ConnectionClosed, ProtocolError, ValueError) as exc:
            run.io_errors += 1
            run.note_error(f"io: {exc!r}")
            await trio.sleep(0.01)
        finally:
            conn.close()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile, so p99 of few samples is an observed value, not a blend."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def execute(args: argparse.Namespace) -> dict[str, object]:
    target = parse_url(args.url)
    payload: dict[str, object] = json.loads(args.body)
    if args.stream:
        payload["stream"] = True
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [("authorization", f"Bearer {args.api_key}")] if args.api_key else []
    request = render_request(target, body, headers)

    start = trio.current_time()
    run = Run(
        target=target,
        request=request,
        stream=args.stream,
        t_measure=start + args.warmup,
        t_end=start + args.warmup + args.duration,
        max_requests=args.max_requests,
    )
    run.cancel.deadline = run.t_end
    cpu_before = 0.0
    wall_before = time.perf_counter()

    async def snapshot_cpu() -> None:
        nonlocal cpu_before, wall_before
        await trio.sleep_until(run.t_measure)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu_before = usage.ru_utime + usage.ru_stime
        wall_before = time.perf_counter()
        # Markers let bench/run.py sample the proxy's CPU over exactly this window.
        sys.stderr.write("MEASURE_START\n")
        sys.stderr.flush()

    with run.cancel:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(snapshot_cpu)
            for _ in range(args.concurrency):
                nursery.start_soon(worker, run)
    sys.stderr.write("MEASURE_END\n")
    sys.stderr.flush()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_window = usage.ru_utime + usage.ru_stime - cpu_before
    wall_window = time.perf_counter() - wall_before
    measured = min(trio.current_time(), run.t_end) - run.t_measure

    lat = sorted(run.latencies)
    ms = 1000.0

    def p(q: float) -> float | None:
        value = percentile(lat, q)
        return None if math.isnan(value) else round(value * ms, 3)

    return {
        "url": args.url,
        "stream": args.stream,
        "concurrency": args.concurrency,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "measured_s": round(measured, 3),
        "stopped_by": run.stopped_by,
        "ok": run.ok,
        "failed": run.failed,
        "warmup_ok": run.warmup_ok,
        "rps": round(run.ok / measured, 1) if measured > 0 else None,
        "latency_ms": {
            "min": round(lat[0] * ms, 3) if lat else None,
            "mean": round(sum(lat) / len(lat) * ms, 3) if lat else None,
            "p50": p(50),
            "p90": p(90),
            "p99": p(99),
            "max": round(lat[-1] * ms, 3) if lat else None,
        },
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "connects": run.connects,
        "connect_errors": run.connect_errors,
        "io_errors": run.io_errors,
        "error_samples": run.error_samples,
        "loadgen_cpu_pct": round(100 * cpu_window / wall_window, 1) if wall_window > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", required=True, help="e.g. http://127.0.0.1:8000/v1/chat/completions"
    )
    parser.add_argument("--concurrency", "-c", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--stream", action="store_true", help='add "stream": true')
    parser.add_argument("--api-key", default="", help="sent as Authorization: Bearer KEY")
    parser.add_argument(
        "--body",
        default='{"model":"bench-model","messages":[{"role":"user","content":"hello"}]}',
        help="JSON request body",
    )
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("need concurrency >= 1, duration > 0, warmup >= 0")
    result = trio.run(execute, args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
