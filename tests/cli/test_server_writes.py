"""The proxy's own write path (``cli/server_connection.py``) through a real ``trioproxy run``.

Writes go to the socket synchronously when the kernel takes them, and Hypercorn's way (a lock, a
shielded ``send_all``) with whatever it did not take: a large answer to a client with a small
receive buffer crosses from one to the other many times and must arrive whole, in order, on a
connection that stays usable. A stream's many small writes go the fast way and must arrive whole
too. (Speed is ``bench/``'s business; the graceful-deadline abort is tested in
``tests/e2e/test_stream_endings.py``.)
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


def _request(body: dict) -> bytes:
    raw = json.dumps(body).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer " + MASTER_KEY.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)


def _read_response(sock: socket.socket, buffered: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """(head, body, bytes after it) of one response: Content-Length or chunked."""
    data = buffered
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, data
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lower = head.lower()
    if b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            piece = sock.recv(1 << 20)
            assert piece, len(rest)
            rest += piece
        return head, rest[:length], rest[length:]
    body = b""
    while True:     # chunked
        while b"\r\n" not in rest:
            rest += sock.recv(65536)
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        while len(rest) < size + 2:
            piece = sock.recv(65536)
            assert piece
            rest += piece
        body += rest[:size]
        rest = rest[size + 2:]
        if size == 0:
            return head, body, rest


def test_a_large_answer_to_a_small_receive_buffer_arrives_whole_and_the_connection_stays_usable(
        start_proxy: Callable[..., ProxyProcess], fake: FakeUpstream) -> None:
    content = "".join(f"{i:07d} " for i in range(1_000_000))       # 8 MB, every piece distinct
    fake.set_behavior("up-model", Behavior(content=content))
    proxy = start_proxy({"model_list": [upstream_model(fake)], "general_settings": {"master_key": MASTER_KEY}})
    host, port = proxy.base_url.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.settimeout(WAIT)
    sock.connect((host, int(port)))
    with sock:
        sock.sendall(_request({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}))
        head, body, rest = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(body)["choices"][0]["message"]["content"] == content
        # the same connection serves the next request: nothing was lost or left over
        fake.set_behavior("up-model", Behavior(content="after", chunks=3))
        sock.sendall(_request({"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]}))
        head, body, _ = _read_response(sock, rest)
    assert head.startswith(b"HTTP/1.1 200"), head
    events = [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    text = "".join(c["delta"].get("content") or "" for e in events[:-1] for c in json.loads(e)["choices"])
    assert text == "after"
