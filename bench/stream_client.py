"""Closed-loop streaming load client: K concurrent SSE streams, TTFT and every inter-delta gap.

Each of K workers owns one keep-alive connection and sends a streaming chat completion; when the
stream ends (``data: [DONE]`` and the chunked terminator), the next request goes out at once on the
same connection, so K streams are always open (a closed loop). Starts are staggered over one
stream's length (``--stream-seconds``) so the streams' phases are spread as in steady state, not
all in lock-step.

Measured, inside the window ``[start + warmup, start + warmup + duration]``:

* time to first token: from the start of writing the request to the arrival of the first ``data:``
  event (the paced upstream puts the first token in its first event), for streams that started in
  the window;
* every inter-delta gap: time between the arrivals of consecutive ``data:`` events of a stream,
  for events that arrived in the window. Events that arrive in the same ``recv`` have a gap of 0.
  Kept as a histogram of 1 ms bins (mergeable across processes, cheap at 50 000 events/s); a gap
  over ``--stall-ms`` is a stall;
* streams completed (status 200, ``[DONE]`` seen) and failed, events received, and how many
  completed streams had fewer deltas than ``--expect-deltas`` (a proxy that drops events).

After the window no new stream starts; streams in flight may finish (for ``--drain`` seconds, so the
server is not hit by a wave of disconnects just as the next measurement starts), then the rest is
cancelled. Prints one JSON object.

Why the parsing is so thin: see ``rawsock.py``. Per ``recv`` the client de-chunks the body and counts
``data:`` occurrences (``bytes.count``), nothing else; a ``data:`` split across two reads is
counted once by keeping the last 4 bytes. Several processes can share the K streams
(``--first``/``--total`` stagger them as one population); ``bench/streams.py`` merges their JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from array import array
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import rawsock
import trio

GAP_BINS = 2001  # 1 ms bins: [0, 1) ms ... [1999, 2000) ms, and one bin for 2 s or more


class ProtocolError(Exception):
    pass


@dataclass
class Window:
    measure_from: float
    measure_to: float
    stall_s: float
    expect_deltas: int
    ttft: array = field(default_factory=lambda: array("d"))
    gap_bins: list[int] = field(default_factory=lambda: [0] * GAP_BINS)
    stalls: int = 0
    max_gap: float = 0.0
    events: int = 0  # data: events (deltas, usage, [DONE]) that arrived in the window
    done_events: int = 0
    completed: int = 0
    failed: int = 0
    short: int = 0
    started: int = 0
    io_errors: int = 0
    connect_errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    def note_error(self, text: str) -> None:
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:300])


class StreamConnection:
    """One keep-alive connection that reads SSE responses and times their events."""

    def __init__(self, sock: rawsock.socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    async def _more(self) -> None:
        self.buf += await rawsock.recv(self.sock)

    async def stream(self, request: bytes, w: Window) -> None:
        """Send one request and read its whole streaming response, recording into ``w``."""
        clock = time.perf_counter
        t0 = clock()
        in_window = w.measure_from <= t0 < w.measure_to
        if in_window:
            w.started += 1
        await rawsock.send_all(self.sock, request)
        end = self.buf.find(b"\r\n\r\n")
        while end < 0:
            await self._more()
            end = self.buf.find(b"\r\n\r\n")
        head, self.buf = self.buf[:end], self.buf[end + 4 :]
        status_line, _, header_block = head.partition(b"\r\n")
        if not status_line.startswith(b"HTTP/1.1 ") or len(status_line) < 12:
            raise ProtocolError(f"bad status line {status_line[:80]!r}")
        status = int(status_line[9:12])
        lowered = header_block.lower()
        chunked = b"transfer-encoding: chunked" in lowered
        length = -1
        if not chunked:
            for line in lowered.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
            if length < 0:
                raise ProtocolError("response neither chunked nor with a content-length")
        if in_window:
            w.statuses[status] = w.statuses.get(status, 0) + 1

        first: float | None = None
        last = 0.0
        events = 0
        done = False
        tail = b""
        # payload_left > 0: bytes of body payload still to come (a chunk's, or the whole body's);
        # 0: a chunk-size line is next; -2: the CRLF that ends a chunk's data is next.
        payload_left = 0 if chunked else length
        ended = not chunked and length == 0
        pending, self.buf = self.buf, b""
        while not ended:
            pieces: list[bytes] = []
            while True:  # de-chunk what is in ``pending``
                if payload_left > 0:
                    piece = pending[:payload_left]
                    pending = pending[len(piece) :]
                    payload_left -= len(piece)
                    if piece:
                        pieces.append(piece)
                    if payload_left > 0:
                        break
                    if not chunked:
                        ended = True
                        self.buf = pending
                        break
                    payload_left = -2
                if payload_left == -2:
                    if len(pending) < 2:
                        break
                    pending = pending[2:]
                    payload_left = 0
                line_end = pending.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(pending[:line_end].split(b";", 1)[0], 16)
                if size == 0:
                    trailer_end = pending.find(b"\r\n\r\n", line_end)
                    if trailer_end < 0:
                        break
                    self.buf = pending[trailer_end + 4 :]
                    ended = True
                    break
                pending = pending[line_end + 2 :]
                payload_left = size
            if pieces:
                joined = tail + b"".join(pieces)
                count = joined.count(b"data:") - (tail == b"data:")
                tail = joined[-5:]
                if count:
                    t = clock()
                    events += count
                    counted = w.measure_from <= t < w.measure_to
                    has_done = not done and b"[DONE]" in joined
                    if has_done:
                        done = True
                        w.done_events += counted
                    if counted:
                        w.events += count
                        if first is None:
                            if in_window:
                                w.ttft.append(t - t0)
                        else:
                            gap = t - last
                            ms = int(gap * 1000)
                            w.gap_bins[ms if ms < GAP_BINS - 1 else GAP_BINS - 1] += 1
                            if gap > w.stall_s:
                                w.stalls += 1
                            if gap > w.max_gap:
                                w.max_gap = gap
                        # events that came in the same read; [DONE] is not a delta
                        w.gap_bins[0] += max(0, count - 1 - has_done)
                    if first is None:
                        first = t
                    last = t
            if not ended:
                pending += await rawsock.recv(self.sock)

        if not (w.measure_from <= clock() < w.measure_to):
            return
        if status == 200 and done:
            w.completed += 1
            # the [DONE] event and an optional usage event are not deltas
            if events - 1 < w.expect_deltas:
                w.short += 1
        else:
            w.failed += 1
            w.note_error(f"status {status}, {events} events, [DONE] {'seen' if done else 'missing'}")


def render_request(host: str, port: int, path: str, api_key: str, usage: bool) -> bytes:
    body: dict[str, object] = {
        "model": "bench-model",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
    }
    if usage:
        body["stream_options"] = {"include_usage": True}
    raw = json.dumps(body, separators=(",", ":")).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"host: {host}:{port}",
        "content-type: application/json",
        "accept: text/event-stream",
        f"content-length: {len(raw)}",
    ]
    if api_key:
        lines.append(f"authorization: Bearer {api_key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


async def worker(
    host: str, port: int, request: bytes, w: Window, start_at: float, stop_at: float
) -> None:
    """One client: connect now, start streaming at ``start_at``, stop starting at ``stop_at``."""
    conn: StreamConnection | None = None
    try:
        while conn is None:
            try:
                conn = StreamConnection(await rawsock.connect(host, port))
            except OSError as exc:
                w.connect_errors += 1
                w.note_error(f"connect: {exc!r}")
                await trio.sleep(0.05)
        await trio.sleep(max(0.0, start_at - time.perf_counter()))
        while time.perf_counter() < stop_at:
            try:
                await conn.stream(request, w)
            except (rawsock.PeerClosed, OSError, ProtocolError, ValueError) as exc:
                w.io_errors += 1
                w.note_error(f"io: {exc!r}")
                rawsock.close(conn.sock)
                conn = None
                while conn is None and time.perf_counter() < stop_at:
                    try:
                        conn = StreamConnection(await rawsock.connect(host, port))
                    except OSError as exc2:
                        w.connect_errors += 1
                        w.note_error(f"connect: {exc2!r}")
                        await trio.sleep(0.05)
                if conn is None:
                    return
    finally:
        if conn is not None:
            rawsock.close(conn.sock)


async def execute(args: argparse.Namespace) -> dict[str, object]:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = render_request(host, port, parts.path or "/", args.api_key, args.include_usage)
    # --start-at is wall-clock time (shared by every load process); convert to perf_counter.
    now_wall, now_perf = time.time(), time.perf_counter()
    start = now_perf + max(0.0, args.start_at - now_wall) if args.start_at else now_perf
    w = Window(
        measure_from=start + args.warmup,
        measure_to=start + args.warmup + args.duration,
        stall_s=args.stall_ms / 1000,
        expect_deltas=args.expect_deltas,
    )
    before = resource.getrusage(resource.RUSAGE_SELF)
    hard_stop = w.measure_to + args.drain
    with trio.move_on_after(hard_stop - time.perf_counter()) as scope:
        async with trio.open_nursery() as nursery:
            total = args.total or args.streams
            for i in range(args.streams):
                # this stream's place in the whole population, across every load process
                stagger = args.stream_seconds * (args.first + i) / total
                nursery.start_soon(worker, host, port, request, w, start + stagger, w.measure_to)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "url": args.url,
        "streams": args.streams,
        "started": w.started,
        "completed": w.completed,
        "failed": w.failed,
        "short": w.short,
        "events": w.events,
        "done_events": w.done_events,
        "ttft_s": list(w.ttft),
        "gap_bins_ms": w.gap_bins,
        "stalls": w.stalls,
        "max_gap_ms": round(w.max_gap * 1000, 3),
        "statuses": {str(k): v for k, v in sorted(w.statuses.items())},
        "io_errors": w.io_errors,
        "connect_errors": w.connect_errors,
        "error_samples": w.error_samples,
        "drain_cut_short": scope.cancelled_caught,
        "cpu_s": round(cpu, 3),
        "maxrss_kib": after.ru_maxrss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--streams", "-k", type=int, required=True, help="concurrent streams")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--include-usage", action="store_true", help="ask for the usage chunk")
    parser.add_argument("--start-at", type=float, default=0.0, help="wall-clock start (time.time)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--drain", type=float, default=3.0, help="s to let streams finish after")
    parser.add_argument("--stream-seconds", type=float, default=1.28, help="stagger starts over")
    parser.add_argument("--stall-ms", type=float, default=200.0)
    parser.add_argument("--expect-deltas", type=int, default=64)
    parser.add_argument("--first", type=int, default=0, help="index of this process's 1st stream")
    parser.add_argument("--total", type=int, default=0, help="streams over all load processes")
    args = parser.parse_args(argv)
    if args.streams < 1 or args.duration <= 0 or args.warmup < 0 or args.first < 0:
        parser.error("need streams >= 1, duration > 0, warmup >= 0, first >= 0")
    json.dump(trio.run(execute, args), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
