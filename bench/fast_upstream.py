"""A fake OpenAI-compatible upstream that is cheap enough never to be the bottleneck.

The benchmark wants to know what *trioproxy* adds, so everything else on the path has to
cost as little CPU as possible. That is why this server does not use Quart, Hypercorn or
even h11: it reads raw bytes from Trio sockets, finds the end of the header block, honours
``Content-Length``, keeps connections alive, and answers with response bytes rendered once
at start-up. Per request it does a handful of ``bytes.find``/``split`` calls and one
``send``.

Endpoints:

* ``POST /v1/chat/completions`` -- a small ``chat.completion`` with ``usage``; if the body
  contains ``"stream": true`` it answers with a chunked ``text/event-stream`` instead: a role
  chunk, five content chunks, a usage chunk and ``data: [DONE]``, each SSE event in its own
  HTTP chunk (so the proxy's SSE parsing sees realistic framing).
* ``GET /v1/models`` -- a one-model list.
* ``GET /__stats`` -- counters (connections accepted, requests served). ``bench/run.py`` reads
  them to see how many upstream connections the proxy opened, which exposes connection-pool
  churn that would otherwise hide inside the proxy's latency.
* The same paths without the ``/v1`` prefix, because an ``api_base`` may or may not carry it.

Run: ``python bench/fast_upstream.py --port 0`` prints ``PORT <n>`` on stdout, then serves
until killed. It only ever binds to a loopback address by default.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
from dataclasses import asdict, dataclass

import trio

MAX_HEADER_BYTES = 64 * 1024
RECV_BYTES = 65536
CREATED = 1_700_000_000
MODEL = "bench-model"

# A substring test instead of a JSON parse: the proxy serialises the body itself, so the
# spacing may vary, but it will not hide "stream": true inside a string in this benchmark.
_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _response(status: str, content_type: str, body: bytes, *, close: bool = False) -> bytes:
    """Render a complete fixed-length HTTP/1.1 response once, at start-up."""
    head = (
        f"HTTP/1.1 {status}\r\n"
        "server: fast-upstream\r\n"
        f"content-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n" + ("connection: close\r\n" if close else "") + "\r\n"
    )
    return head.encode() + body


def _chunked_sse(events: list[bytes]) -> bytes:
    """Render an SSE stream as a chunked response, one HTTP chunk per SSE event."""
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"server: fast-upstream\r\n"
        b"content-type: text/event-stream\r\n"
        b"cache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n"
        b"\r\n"
    )
    parts = [head]
    for event in events:
        parts.append(b"%x\r\n%s\r\n" % (len(event), event))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def _chat_completion() -> bytes:
    body = _dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello from the bench upstream."},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 8, "completion_tokens": 7, "total_tokens": 15},
            "system_fingerprint": None,
        }
    )
    return _response("200 OK", "application/json", body)


def _chat_stream() -> bytes:
    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, object]:
        return {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    pieces = ["Hello", " from", " the", " bench", " upstream."]
    payloads: list[dict[str, object]] = [chunk({"role": "assistant", "content": ""})]
    for i, piece in enumerate(pieces):
        payloads.append(chunk({"content": piece}, "stop" if i == len(pieces) - 1 else None))
    payloads.append(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [],
            "usage": {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13},
        }
    )
    events = [b"data: " + _dumps(p) + b"\n\n" for p in payloads]
    events.append(b"data: [DONE]\n\n")
    return _chunked_sse(events)


def _models() -> bytes:
    body = _dumps(
        {
            "object": "list",
            "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "bench"}],
        }
    )
    return _response("200 OK", "application/json", body)


def _error(status: str, message: str, *, close: bool = False) -> bytes:
    body = _dumps({"error": {"message": message, "type": "invalid_request_error"}})
    return _response(status, "application/json", body, close=close)


CHAT = _chat_completion()
CHAT_STREAM = _chat_stream()
MODELS = _models()
HEALTH = _response("200 OK", "text/plain", b"ok")
NOT_FOUND = _error("404 Not Found", "no such route on the bench upstream")
TOO_LARGE = _error("431 Request Header Fields Too Large", "header too large", close=True)
NO_CHUNKED = _error("501 Not Implemented", "chunked request bodies unsupported", close=True)
BAD_REQUEST = _error("400 Bad Request", "malformed request", close=True)


@dataclass
class Stats:
    """Counters served on ``GET /__stats``; plain ints because one Trio thread owns them."""

    connections: int = 0
    open_connections: int = 0
    requests: int = 0
    chat: int = 0
    chat_stream: int = 0


STATS = Stats()


class ConnectionDone(Exception):
    """The peer closed, or sent something this server refuses to handle; close quietly."""


async def _send_all(sock: trio.socket.SocketType, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = await sock.send(view)
        view = view[sent:]


def _route(method: bytes, target: bytes, body: bytes) -> bytes:
    path = target.split(b"?", 1)[0]
    if path.startswith(b"/v1/"):
        path = path[3:]
    if method == b"POST" and path == b"/chat/completions":
        if _STREAM_RE.search(body):
            STATS.chat_stream += 1
            return CHAT_STREAM
        STATS.chat += 1
        return CHAT
    if method == b"GET":
        if path == b"/models":
            return MODELS
        if path in (b"/__stats", b"/_stats"):
            return _response("200 OK", "application/json", _dumps(asdict(STATS)))
        if path in (b"/health", b"/"):
            return HEALTH
    return NOT_FOUND


async def _serve_connection(sock: trio.socket.SocketType) -> None:
    """Serve requests on one keep-alive connection, pipelining included, until EOF."""
    STATS.connections += 1
    STATS.open_connections += 1
    buf = bytearray()

    async def fill() -> None:
        data = await sock.recv(RECV_BYTES)
        if not data:
            raise ConnectionDone
        buf.extend(data)

    try:
        with sock:
            while True:
                end = buf.find(b"\r\n\r\n")
                while end < 0:
                    if len(buf) > MAX_HEADER_BYTES:
                        await _send_all(sock, TOO_LARGE)
                        return
                    await fill()
                    end = buf.find(b"\r\n\r\n")
                head = bytes(buf[:end])
                del buf[: end + 4]

                lines = head.split(b"\r\n")
                parts = lines[0].split(b" ")
                if len(parts) != 3:
                    await _send_all(sock, BAD_REQUEST)
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
                        token = value.strip().lower()
                        if token == b"close":
                            close = True
                        elif token == b"keep-alive":
                            close = False
                    elif name == b"transfer-encoding":
                        await _send_all(sock, NO_CHUNKED)
                        return

                while len(buf) < length:
                    await fill()
                body = bytes(buf[:length])
                del buf[:length]

                STATS.requests += 1
                await _send_all(sock, _route(method, target, body))
                if close:
                    return
    except (ConnectionDone, OSError, ValueError):
        # Clients vanish mid-request when a load run ends; that is normal here.
        pass
    finally:
        STATS.open_connections -= 1


async def serve(host: str, port: int, backlog: int = 1024) -> None:
    """Listen, announce the port on stdout, and serve each connection in its own task."""
    listener = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    await listener.bind((host, port))
    listener.listen(backlog)
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    async with trio.open_nursery() as nursery:
        with listener:
            while True:
                conn, _addr = await listener.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                nursery.start_soon(_serve_connection, conn)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    try:
        trio.run(serve, args.host, args.port)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
