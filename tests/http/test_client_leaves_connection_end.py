"""A client that leaves cancels its request, through the connection's end (``core/disconnect.py``).

On HTTP/1.x the fast path (``http/asgi.py``) no longer runs a watcher task per request: the server's
connection class cancels the request being served when its read loop ends. Through a real
``trioproxy run`` and the fake upstream, on raw sockets:

* a non-streaming request whose upstream is still thinking is abandoned when the client closes:
  the proxy closes its upstream connection, records the request once as 499, and keeps serving;
* on a keep-alive connection that already carried answered requests, the *current* request is the
  one cancelled (each request registers its own scope and releases it when answered);
* an answered request is never cancelled by the client closing afterwards (no 499 for it);
* a response's head and body still arrive as one well-formed answer, ``HEAD`` included (the head
  of a ``Content-Length`` answer is held for its body: ``cli/server_connection.py``);
* on HTTP/2 (h2c, Hypercorn's ``h2`` dependency as the client) a reset stream cancels its request
  while the connection goes on: there the fast path keeps its watcher task.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess

#: bound on waiting for something that must happen (the machine is shared); never a measurement
WAIT = 30.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        yield upstream


@pytest.fixture
def proxy(start_proxy, fake: FakeUpstream) -> ProxyProcess:
    fake.reset()
    return start_proxy({"model_list": [upstream_model(fake, "held", "up-held"),
                                       upstream_model(fake, "quick", "up-quick")],
                        "general_settings": {"master_key": MASTER_KEY}})


def _connect(proxy: ProxyProcess) -> socket.socket:
    host, _, port = proxy.base_url.removeprefix("http://").partition(":")
    return socket.create_connection((host, int(port)), timeout=WAIT)


def _request(model: str) -> bytes:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer " + MASTER_KEY.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


def _read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one Content-Length answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    while len(body) < length:
        piece = sock.recv(65536)
        assert piece, body
        body += piece
    assert len(body) == length, "nothing past the answer: one request at a time"
    return head, body


def _status_count(proxy: ProxyProcess, status: int) -> float:
    text = httpx.get(f"{proxy.base_url}/metrics", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                     timeout=WAIT).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("trioproxy_requests_total{") and f'status="{status}"' in line)


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _abandon_held_request(proxy: ProxyProcess, fake: FakeUpstream, sock: socket.socket) -> None:
    """Send a request the upstream holds, wait until the upstream has it, close the socket, and
    check that the proxy abandoned the upstream call and counted one 499."""
    seen = len(fake.requests)
    sock.sendall(_request("held"))
    fake.wait_for_requests(seen + 1, timeout=WAIT)
    sock.close()
    record = fake.wait_for_disconnect(timeout=WAIT)
    assert record.json["model"] == "up-held"
    assert record.client_disconnected_early and not record.completed
    _wait_for(lambda: _status_count(proxy, 499) == 1, "the abandoned request is recorded once as 499")


def test_a_client_leaving_a_plain_request_cancels_the_upstream_call(proxy: ProxyProcess, fake: FakeUpstream) -> None:
    hold = threading.Event()   # never set: only the client's leaving ends this request
    fake.set_behavior("up-held", Behavior(hold=hold))
    try:
        _abandon_held_request(proxy, fake, _connect(proxy))
        # the proxy goes on serving
        response = httpx.post(f"{proxy.base_url}/v1/chat/completions", timeout=WAIT,
                              headers={"Authorization": f"Bearer {MASTER_KEY}"},
                              json={"model": "quick", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200, response.text
    finally:
        hold.set()


def test_on_a_kept_alive_connection_the_current_request_is_the_one_cancelled(proxy: ProxyProcess,
                                                                             fake: FakeUpstream) -> None:
    hold = threading.Event()
    fake.set_behavior("up-held", Behavior(hold=hold))
    sock = _connect(proxy)
    try:
        for _ in range(3):   # answered requests on the same connection first
            sock.sendall(_request("quick"))
            head, body = _read_answer(sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert json.loads(body)["choices"][0]["message"]["content"]
        assert _status_count(proxy, 499) == 0
        _abandon_held_request(proxy, fake, sock)
        assert _status_count(proxy, 200) >= 3
    finally:
        hold.set()
        sock.close()


def test_closing_after_an_answer_cancels_nothing(proxy: ProxyProcess, fake: FakeUpstream) -> None:
    sock = _connect(proxy)
    sock.sendall(_request("quick"))
    head, _ = _read_answer(sock)
    assert head.startswith(b"HTTP/1.1 200"), head
    sock.close()
    _wait_for(lambda: _status_count(proxy, 200) == 1, "the answered request is recorded as 200")
    assert _status_count(proxy, 499) == 0


def test_heads_held_for_their_body_still_arrive_whole(proxy: ProxyProcess) -> None:
    sock = _connect(proxy)
    try:
        # HEAD: a Content-Length head and no body at all (h11 ends the answer with no bytes)
        sock.sendall(b"HEAD /health/liveliness HTTP/1.1\r\nHost: proxy\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            assert piece, data
            data += piece
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert rest == b""
        # the same connection still carries a plain answer and a refusal, each whole
        sock.sendall(_request("quick"))
        head, body = _read_answer(sock)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(body)["object"] == "chat.completion"
        sock.sendall(_request("no-such-model"))
        head, body = _read_answer(sock)
        assert head.startswith(b"HTTP/1.1 4"), head
        assert set(json.loads(body)["error"]) >= {"message", "type", "param", "code"}
    finally:
        sock.close()


def _h2_connect(proxy: ProxyProcess) -> tuple[socket.socket, h2.connection.H2Connection]:
    """An HTTP/2 connection with prior knowledge (h2c), which Hypercorn serves on the same port."""
    sock = _connect(proxy)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def _h2_request(sock: socket.socket, conn: h2.connection.H2Connection, model: str) -> int:
    stream_id = conn.get_next_available_stream_id()
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    conn.send_headers(stream_id, [(":method", "POST"), (":path", "/v1/chat/completions"), (":scheme", "http"),
                                  (":authority", "proxy"), ("authorization", f"Bearer {MASTER_KEY}"),
                                  ("content-type", "application/json"), ("content-length", str(len(body)))])
    conn.send_data(stream_id, body, end_stream=True)
    sock.sendall(conn.data_to_send())
    return stream_id


def _h2_answer(sock: socket.socket, conn: h2.connection.H2Connection, stream_id: int) -> tuple[int, bytes]:
    status, body = 0, b""
    while True:
        data = sock.recv(65536)
        assert data, "the connection closed before the answer"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                status = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                sock.sendall(conn.data_to_send())
                return status, body
        sock.sendall(conn.data_to_send())


def test_an_http2_stream_reset_cancels_its_request_and_the_connection_goes_on(proxy: ProxyProcess,
                                                                               fake: FakeUpstream) -> None:
    """HTTP/2 keeps the watcher task: a client can leave one request (RST_STREAM) and keep its
    connection, whose end therefore says nothing about that request."""
    hold = threading.Event()
    fake.set_behavior("up-held", Behavior(hold=hold))
    sock, conn = _h2_connect(proxy)
    try:
        seen = len(fake.requests)
        held = _h2_request(sock, conn, "held")
        fake.wait_for_requests(seen + 1, timeout=WAIT)
        conn.reset_stream(held, error_code=h2.errors.ErrorCodes.CANCEL)
        sock.sendall(conn.data_to_send())
        record = fake.wait_for_disconnect(timeout=WAIT)
        assert record.json["model"] == "up-held" and not record.completed
        _wait_for(lambda: _status_count(proxy, 499) == 1, "the reset request is recorded once as 499")
        status, body = _h2_answer(sock, conn, _h2_request(sock, conn, "quick"))
        assert status == 200, body
        assert json.loads(body)["object"] == "chat.completion"
    finally:
        hold.set()
        sock.close()
