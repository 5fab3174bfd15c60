"""A fake OpenAI upstream that streams its deltas paced in time, as an LLM does.

``bench/fast_upstream.py`` sends a whole stream at once; real streams trickle: a delta every
20-50 ms for seconds. What a proxy costs under many *open* streams (its memory, its per-delta CPU,
the time to first token while hundreds of streams are in flight) only shows with a paced upstream.

``POST /v1/chat/completions`` with ``"stream": true`` answers with a chunked
``text/event-stream``: the first delta (carrying the role and the first token) at once, then one
delta every ``--interval`` seconds until ``--deltas`` were sent, then a usage chunk if the request
asked for one (``"include_usage": true``, which trioproxy always asks for) and ``data: [DONE]``.
Each SSE event is its own HTTP chunk. Non-streaming chat, ``/v1/models`` and ``/health`` answer
like ``fast_upstream.py``.

Why one pacing loop instead of a task per stream: a ``trio.sleep`` per delta per stream would wake a
task ~51 000 times a second at 1024 streams and saturate the harness core before the proxy. Here
each stream is an entry in a heap keyed by its next due time; one loop sleeps until the earliest
is due, then writes every delta due within the next half millisecond straight to its socket
(``rawsock.try_send``: one non-blocking ``send``), and re-files the stream one interval later. A
stream's own task only wakes to start and to end it. If a client does not read and the kernel
buffer fills, the rest of that delta is handed back to the stream's task, which waits for the
socket to drain and then re-files the stream.

``GET /__stats`` returns counters and the pacing lag (how late deltas left, max and count over
5 ms, since the previous ``/__stats``): a late upstream would look like a slow proxy, so
``bench/streams.py`` reads it for every measured window and warns.

Run: ``python bench/paced_upstream.py --port 0 --deltas 64 --interval 0.02`` prints ``PORT <n>``
and serves until killed.
"""

from __future__ import annotations

import argparse
import heapq
import json
import re
import socket
import sys
from dataclasses import dataclass, field

import rawsock
import trio
from fast_upstream import BAD_REQUEST, CHAT, HEALTH, MODELS, NO_CHUNKED, NOT_FOUND, TOO_LARGE

MAX_HEADER_BYTES = 64 * 1024
CREATED = 1_700_000_000
MODEL = "bench-model"
SLACK = 0.0005  # write deltas due this soon in the same pass: batching, at most 0.5 ms early

_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')
_USAGE_RE = re.compile(rb'"include_usage"\s*:\s*true')

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"server: paced-upstream\r\n"
    b"content-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
    b"\r\n"
)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def sse_event(delta: dict[str, str], finish: str | None = None) -> bytes:
    """One ``data:`` event of a chat completion chunk, as OpenAI frames it."""
    chunk = {
        "id": "chatcmpl-paced",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + _dumps(chunk) + b"\n\n"


def delta_events(deltas: int) -> list[bytes]:
    """The ``deltas`` SSE events of one stream; the first carries the role, the last ends it.

    Every event carries one token of text (~190 bytes on the wire, like OpenAI's), so the first
    ``data:`` event a client sees is its first token.
    """
    events = [sse_event({"role": "assistant", "content": "Hello"})]
    events += [sse_event({"content": " token"}) for _ in range(deltas - 2)]
    if deltas > 1:
        events.append(sse_event({"content": "."}, "stop"))
    return events


USAGE_EVENT = (
    b"data: "
    + _dumps(
        {
            "id": "chatcmpl-paced",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [],
            "usage": {"prompt_tokens": 8, "completion_tokens": 64, "total_tokens": 72},
        }
    )
    + b"\n\n"
)
DONE_EVENT = b"data: [DONE]\n\n"


@dataclass
class Stats:
    connections: int = 0
    open_connections: int = 0
    requests: int = 0
    streams_started: int = 0
    streams_finished: int = 0
    open_streams: int = 0
    deltas_sent: int = 0
    max_lag_ms: float = 0.0  # since the previous /__stats
    late_deltas: int = 0  # more than 5 ms late, since the previous /__stats
    backpressured: int = 0  # deltas the kernel would not take at once (client not reading)

    def snapshot(self) -> bytes:
        body = _dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in vars(self).items()})
        self.max_lag_ms = 0.0
        self.late_deltas = 0
        return (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(body), body)
        )


@dataclass
class PacedStream:
    sock: socket.socket
    frames: list[bytes]  # HTTP chunks still to send after the first, in order
    next_index: int = 0
    leftover: bytes = b""  # part of a frame the kernel did not take
    finished: trio.Event = field(default_factory=trio.Event)
    failed: bool = False


class Pacer:
    """The one loop that writes every stream's due deltas (see the module docstring)."""

    def __init__(self, interval: float, stats: Stats) -> None:
        self.interval = interval
        self.stats = stats
        self._heap: list[tuple[float, int, PacedStream]] = []
        self._seq = 0
        self._not_empty = trio.Event()

    def add(self, stream: PacedStream, due: float) -> None:
        # A new entry is never due before the current earliest one (every entry was filed at most
        # one interval ahead), so only an empty heap needs waking up.
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, stream))
        self._not_empty.set()

    async def run(self) -> None:
        heap, stats, interval = self._heap, self.stats, self.interval
        clock = trio.current_time
        while True:
            if not heap:
                self._not_empty = trio.Event()
                await self._not_empty.wait()
            await trio.sleep_until(heap[0][0])
            now = clock()
            limit = now + SLACK
            while heap and heap[0][0] <= limit:
                due, seq, stream = heapq.heappop(heap)
                lag = now - due
                if lag > 0.005:
                    stats.late_deltas += 1
                if lag * 1000 > stats.max_lag_ms:
                    stats.max_lag_ms = lag * 1000
                frame = stream.frames[stream.next_index]
                stream.next_index += 1
                try:
                    sent = rawsock.try_send(stream.sock, frame)
                except (rawsock.PeerClosed, OSError):
                    stream.failed = True
                    stream.finished.set()
                    continue
                stats.deltas_sent += 1
                if sent < len(frame):
                    stats.backpressured += 1
                    stream.leftover = frame[sent:]
                    stream.finished.set()  # its task drains the rest, then re-files it
                elif stream.next_index == len(stream.frames):
                    stream.finished.set()
                else:
                    heapq.heappush(heap, (due + interval, seq, stream))


class Upstream:
    def __init__(self, deltas: int, interval: float) -> None:
        self.stats = Stats()
        self.pacer = Pacer(interval, self.stats)
        self.interval = interval
        events = [_http_chunk(e) for e in delta_events(deltas)]
        self.first = SSE_HEAD + events[0]
        self.rest = events[1:]
        self.tail_plain = _http_chunk(DONE_EVENT) + b"0\r\n\r\n"
        self.tail_usage = _http_chunk(USAGE_EVENT) + self.tail_plain

    async def stream(self, sock: socket.socket, usage: bool) -> bool:
        """Send one paced stream; False if the client went away."""
        stats = self.stats
        stats.streams_started += 1
        stats.open_streams += 1
        try:
            tail = self.tail_usage if usage else self.tail_plain
            # The tail goes out with the last delta: the end of the stream is not paced.
            frames = [*self.rest[:-1], self.rest[-1] + tail] if self.rest else []
            await rawsock.send_all(sock, self.first if frames else self.first + tail)
            if not frames:
                return True
            stream = PacedStream(sock, frames)
            due = trio.current_time() + self.interval
            while True:
                self.pacer.add(stream, due)
                await stream.finished.wait()
                if stream.failed:
                    return False
                if not stream.leftover:
                    return True
                await rawsock.send_all(sock, stream.leftover)  # a slow reader: wait for room
                stream.leftover = b""
                if stream.next_index == len(frames):
                    return True
                stream.finished = trio.Event()
                due = trio.current_time() + self.interval
        finally:
            stats.open_streams -= 1
            stats.streams_finished += 1

    async def serve_connection(self, sock: socket.socket) -> None:
        stats = self.stats
        stats.connections += 1
        stats.open_connections += 1
        buf = bytearray()
        try:
            while True:
                end = buf.find(b"\r\n\r\n")
                while end < 0:
                    if len(buf) > MAX_HEADER_BYTES:
                        await rawsock.send_all(sock, TOO_LARGE)
                        return
                    buf += await rawsock.recv(sock)
                    end = buf.find(b"\r\n\r\n")
                head = bytes(buf[:end])
                del buf[: end + 4]
                lines = head.split(b"\r\n")
                parts = lines[0].split(b" ")
                if len(parts) != 3:
                    await rawsock.send_all(sock, BAD_REQUEST)
                    return
                method, target, version = parts
                length = 0
                close = version == b"HTTP/1.0"
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection":
                        close = value.strip().lower() == b"close"
                    elif name == b"transfer-encoding":
                        await rawsock.send_all(sock, NO_CHUNKED)
                        return
                while len(buf) < length:
                    buf += await rawsock.recv(sock)
                body = bytes(buf[:length])
                del buf[:length]
                stats.requests += 1

                path = target.split(b"?", 1)[0].removeprefix(b"/v1")
                if method == b"POST" and path == b"/chat/completions":
                    if _STREAM_RE.search(body):
                        if not await self.stream(sock, bool(_USAGE_RE.search(body))):
                            return
                    else:
                        await rawsock.send_all(sock, CHAT)
                elif method == b"GET" and path == b"/models":
                    await rawsock.send_all(sock, MODELS)
                elif method == b"GET" and path in (b"/__stats", b"/_stats"):
                    await rawsock.send_all(sock, stats.snapshot())
                elif method == b"GET" and path in (b"/health", b"/"):
                    await rawsock.send_all(sock, HEALTH)
                else:
                    await rawsock.send_all(sock, NOT_FOUND)
                if close:
                    return
        except (rawsock.PeerClosed, OSError, ValueError):
            pass  # clients vanish mid-stream when a load run ends; that is normal here
        finally:
            stats.open_connections -= 1
            rawsock.close(sock)

    async def serve(self, host: str, port: int) -> None:
        listener = rawsock.listen(host, port)
        print(f"PORT {listener.getsockname()[1]}", flush=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.pacer.run)
            while True:
                nursery.start_soon(self.serve_connection, await rawsock.accept(listener))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--deltas", type=int, default=64, help="content deltas per stream")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between deltas")
    args = parser.parse_args(argv)
    if args.deltas < 1 or args.interval <= 0:
        parser.error("need --deltas >= 1 and --interval > 0")
    try:
        trio.run(Upstream(args.deltas, args.interval).serve, args.host, args.port)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
