"""A stream's body chunks written by the connection itself (``core/direct_body.py``), through a real ``trioproxy run``.

On HTTP/1.1 the relay's frames skip Hypercorn's and h11's per-message path and are framed as
chunks by ``HeadDeadlineTCPServer.chunk_writer``; the response's end still goes through h11. What
must hold: strict chunked framing however the kernel takes the writes (a client with a small
receive buffer), the connection reusable afterwards (h11's state agrees with what went out), and an
HTTP/1.0 client (no chunked encoding: the ASGI path) still served whole. The client-leaves and
graceful-shutdown cases of streams run through the same writer in ``e2e/test_stream_endings.py``
and ``cli/test_server_writes.py``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess

WAIT = 60.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        yield upstream


def _request(body: dict, version: bytes = b"HTTP/1.1") -> bytes:
    raw = json.dumps(body).encode()
    return (b"POST /v1/chat/completions " + version + b"\r\nHost: proxy\r\nAuthorization: Bearer "
            + MASTER_KEY.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(raw)).encode() + b"\r\n\r\n" + raw)


def _recv_until(sock: socket.socket, data: bytes, marker: bytes) -> bytes:
    while marker not in data:
        piece = sock.recv(65536)
        assert piece, data[-200:]
        data += piece
    return data


def _read_chunked(sock: socket.socket, data: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, de-chunked body, bytes after the body), checking the framing strictly."""
    data = _recv_until(sock, data, b"\r\n\r\n")
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower(), head
    body = b""
    while True:
        rest = _recv_until(sock, rest, b"\r\n")
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)                  # raises on anything but a hex size
        while len(rest) < size + 2:
            piece = sock.recv(65536)
            assert piece
            rest += piece
        assert rest[size:size + 2] == b"\r\n"
        body += rest[:size]
        rest = rest[size + 2:]
        if size == 0:                              # "0\r\n\r\n": no trailers
            return head, body, rest


def _text(body: bytes) -> tuple[str, bytes]:
    events = [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]
    text = "".join(c["delta"].get("content") or "" for e in events[:-1] for c in json.loads(e)["choices"])
    return text, events[-1]


@pytest.fixture
def proxy(start_proxy: Callable[..., ProxyProcess], fake: FakeUpstream) -> ProxyProcess:
    return start_proxy({"model_list": [upstream_model(fake)], "general_settings": {"master_key": MASTER_KEY}})


def _connect(proxy: ProxyProcess, rcvbuf: int | None = None) -> socket.socket:
    host, port = proxy.base_url.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(WAIT)
    sock.connect((host, int(port)))
    return sock


def test_many_chunks_to_a_small_receive_buffer_arrive_framed_and_the_connection_is_reused(
        proxy: ProxyProcess, fake: FakeUpstream) -> None:
    content = "".join(f"{i:06d} " for i in range(60_000))         # 420 KB in 3,000 events
    fake.set_behavior("up-model", Behavior(content=content, chunks=3000))
    stream = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with _connect(proxy, rcvbuf=8 * 1024) as sock:
        sock.sendall(_request(stream))
        head, body, rest = _read_chunked(sock, b"")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert _text(body) == (content, b"[DONE]")
        # the same connection serves the next stream: h11 ended the first one where it should
        fake.set_behavior("up-model", Behavior(content="after this", chunks=2))
        sock.sendall(_request(stream))
        head, body, rest = _read_chunked(sock, rest)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert _text(body) == ("after this", b"[DONE]")
        assert rest == b""


def test_an_http10_client_gets_the_stream_unchunked_until_the_close(proxy: ProxyProcess, fake: FakeUpstream) -> None:
    fake.set_behavior("up-model", Behavior(content="one two three four", chunks=4))
    stream = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with _connect(proxy) as sock:
        sock.sendall(_request(stream, version=b"HTTP/1.0"))
        data = b""
        while piece := sock.recv(65536):           # HTTP/1.0: the body ends with the connection
            data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding" not in head.lower()
    assert _text(body) == ("one two three four", b"[DONE]")
