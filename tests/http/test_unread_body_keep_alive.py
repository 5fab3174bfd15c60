"""An answer that goes out before its request's body was read never strands a keep-alive client.

Hypercorn closes an HTTP/1.1 connection after a response when h11 has not received the whole
request; a response without ``Connection: close`` then leaves the client reusing a connection that
is being closed ("Server disconnected without sending a response" in httpx, now and then: the
route matrix, the keys tests). ``trioproxy/http/unread_body.py`` drains a small unread body before
the answer's end, or says ``Connection: close`` for a large or chunked one.

Through a real ``trioproxy run`` on raw sockets, with the order forced by the client: the head is
sent alone, the *whole answer* is read (so the app certainly answered before the body existed),
and only then the body — whole or in pieces — and a second request on the same connection.
"""

from __future__ import annotations

import socket

import pytest

from conftest import MASTER_KEY
from support.proxy_process import ProxyProcess

CONFIG = {"model_list": [{"model_name": "fake-chat", "litellm_params": {"model": "fake/demo"}}],
          "general_settings": {"master_key": MASTER_KEY}}
#: bound on waiting for an answer that must come (the machine is shared); never a measurement
WAIT = 30.0
BODY = b'{"team_id": "t-other", "padding": "' + b"x" * 3000 + b'"}'


@pytest.fixture
def proxy(start_proxy) -> ProxyProcess:
    return start_proxy(CONFIG)


def _connect(proxy: ProxyProcess) -> socket.socket:
    host, _, port = proxy.base_url.removeprefix("http://").partition(":")
    sock = socket.create_connection((host, int(port)), timeout=WAIT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _head(method: str, path: str, *, length: int | None = None, chunked: bool = False, key: str | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Reader:
    """Content-Length responses, one at a time, from one connection (bytes past one are kept)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> None:
        piece = self.sock.recv(65536)
        if not piece:
            raise AssertionError(f"the proxy closed the connection; unread: {self.buffer[:300]!r}")
        self.buffer += piece

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self) -> bool:
        """True when the server closes the connection with nothing more to say."""
        try:
            return self.sock.recv(1) == b"" and not self.buffer
        except ConnectionResetError:
            return True


# (method, path, key): routes that answer without reading the body — no route matched (404), a
# method the route does not serve (405), a view that ignores the body
ANSWERED_BEFORE_THE_BODY = [
    pytest.param("POST", "/no/such/route", MASTER_KEY, id="404"),
    pytest.param("DELETE", "/key/delete", MASTER_KEY, id="405"),
    pytest.param("POST", "/health/liveliness", None, id="405-public"),
    pytest.param("GET", "/health/liveliness", None, id="view-ignores-body"),
]


@pytest.mark.parametrize(("method", "path", "key"), ANSWERED_BEFORE_THE_BODY)
@pytest.mark.parametrize("pieces", [1, 3], ids=["whole-body", "body-in-pieces"])
def test_a_small_unread_body_is_drained_and_the_connection_serves_the_next_request(
        proxy: ProxyProcess, method: str, path: str, key: str | None, pieces: int) -> None:
    with _connect(proxy) as sock:
        reader = _Reader(sock)
        sock.sendall(_head(method, path, length=len(BODY), key=key))
        status, headers, _ = reader.response()   # answered on the head alone
        assert status in (200, 404, 405) and headers.get("connection") != "close", headers
        step = -(-len(BODY) // pieces)
        for start in range(0, len(BODY), step):
            sock.sendall(BODY[start:start + step])
        sock.sendall(b"GET /health/liveliness HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _, _ = reader.response()
        assert status == 200


def test_a_large_unread_body_gets_connection_close(proxy: ProxyProcess) -> None:
    """Over 64 KiB the body is not worth reading: the answer says the connection ends, and it does."""
    with _connect(proxy) as sock:
        reader = _Reader(sock)
        sock.sendall(_head("POST", "/no/such/route", length=200 * 1024, key=MASTER_KEY))
        status, headers, _ = reader.response()
        assert status == 404 and headers["connection"] == "close"
        assert reader.closed()


def test_a_chunked_unread_body_gets_connection_close(proxy: ProxyProcess) -> None:
    with _connect(proxy) as sock:
        reader = _Reader(sock)
        sock.sendall(_head("POST", "/no/such/route", chunked=True, key=MASTER_KEY) + b"5\r\nhello\r\n")
        status, headers, _ = reader.response()
        assert status == 404 and headers["connection"] == "close"
        assert reader.closed()


def test_a_client_leaving_during_the_drain_costs_nothing(proxy: ProxyProcess) -> None:
    """The drain waits for the body; a client that leaves instead ends it, and the proxy goes on."""
    with _connect(proxy) as sock:
        sock.sendall(_head("POST", "/no/such/route", length=len(BODY), key=MASTER_KEY) + BODY[:10])
        assert _Reader(sock).response()[0] == 404
    with _connect(proxy) as sock:
        sock.sendall(b"GET /health/liveliness HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _Reader(sock).response()[0] == 200
