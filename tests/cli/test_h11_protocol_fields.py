"""``ProxyH11Protocol``: a request's header fields walked once, Hypercorn's own code for upgrades.

Unit: the fields handed to the app are exactly what Hypercorn's ``list(request.headers)`` gives
(names lower-cased, order and repeats kept); a request naming ``upgrade`` (or the raw-headers
setting) is left to Hypercorn's code. End to end through a real ``trioproxy run``: pipelined
requests with repeated and mixed-case fields are served in order on one connection, and an ``h2c``
upgrade is still answered ``101 Switching Protocols`` and served over HTTP/2, as Hypercorn does.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import h2.config
import h2.connection
import h2.events
import h11
import hypercorn.protocol
import pytest
import trio
import trio.testing
from hypercorn.config import Config

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import FakeUpstream
from support.proxy_process import ProxyProcess
from trioproxy.cli.h11_protocol import ProxyH11Protocol, _plain_fields, _QueuedPut
from trioproxy.cli.server_connection import install

WAIT = 60.0


def _parsed(raw: bytes) -> h11.Request:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(raw)
    event = connection.next_event()
    assert isinstance(event, h11.Request)
    return event


def test_the_fields_are_hypercorns_list_of_the_request_headers() -> None:
    request = _parsed(b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nX-Tag: one\r\nAuthorization: Bearer k\r\n"
                      b"x-tag: two\r\nContent-Length: 0\r\n\r\n")
    fields = _plain_fields(request, Config())
    assert fields == list(request.headers)
    assert fields == [(b"host", b"a"), (b"x-tag", b"one"), (b"authorization", b"Bearer k"), (b"x-tag", b"two"),
                      (b"content-length", b"0")]


@pytest.mark.parametrize("name", [b"Upgrade", b"upgrade"])
def test_a_request_naming_upgrade_goes_hypercorns_way(name: bytes) -> None:
    request = _parsed(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n" + name + b": websocket\r\n\r\n")
    assert _plain_fields(request, Config()) is None


def test_raw_headers_asked_for_go_hypercorns_way() -> None:
    config = Config()
    config.h11_pass_raw_headers = True
    assert _plain_fields(_parsed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), config) is None


def test_install_puts_the_protocol_where_hypercorn_builds_http11_connections() -> None:
    install()
    install()   # twice is harmless
    assert hypercorn.protocol.H11Protocol is ProxyH11Protocol


# -- through a real proxy ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        yield upstream


def _connect(proxy: ProxyProcess) -> socket.socket:
    host, port = proxy.base_url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=WAIT)


def _chat(model: str, tag: str) -> bytes:
    raw = json.dumps({"model": model, "messages": [{"role": "user", "content": tag}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nAUTHORIZATION: Bearer " + MASTER_KEY.encode()
            + b"\r\nX-Repeat: 1\r\nx-repeat: 2\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(raw)).encode() + b"\r\n\r\n" + raw)


def _responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    data = b""
    out: list[tuple[bytes, bytes]] = []
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            assert piece, data
            data += piece
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            piece = sock.recv(65536)
            assert piece
            rest += piece
        out.append((head, rest[:length]))
        data = rest[length:]
    return out


def test_pipelined_requests_with_repeated_mixed_case_fields_are_answered_in_order(
        start_proxy: Callable[..., ProxyProcess], fake: FakeUpstream) -> None:
    proxy = start_proxy({"model_list": [upstream_model(fake)], "general_settings": {"master_key": MASTER_KEY}})
    with _connect(proxy) as sock:
        sock.sendall(b"".join(_chat("gpt-test", f"n{i}") for i in range(3)))
        answers = _responses(sock, 3)
    for head, body in answers:
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(body)["object"] == "chat.completion"


def test_an_h2c_upgrade_is_still_switched_and_served_over_http2(start_proxy: Callable[..., ProxyProcess],
                                                                fake: FakeUpstream) -> None:
    proxy = start_proxy({"model_list": [upstream_model(fake)], "general_settings": {"master_key": MASTER_KEY}})
    h2_conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = h2_conn.initiate_upgrade_connection()
    with _connect(proxy) as sock:
        sock.sendall(b"GET /health/liveliness HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                     b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            assert piece, data
            data += piece
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        sock.sendall(h2_conn.data_to_send())
        status = None
        body = b""
        ended = False
        pending = rest
        while not ended:
            if not pending:
                pending = sock.recv(65536)
                assert pending
            for event in h2_conn.receive_data(pending):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == 1:
                    status = dict(event.headers)[b":status"]
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == 1:
                    body += event.data
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == 1:
                    ended = True
            pending = b""
            outgoing = h2_conn.data_to_send()
            if outgoing:
                sock.sendall(outgoing)
    assert status == b"200"
    assert b"alive" in body


async def test_body_messages_queue_without_waiting_and_wait_only_when_the_queue_is_full() -> None:
    """``_QueuedPut``: room in the queue → queued at once (no scheduler round); full → waits, order kept."""
    send, receive = trio.open_memory_channel[int](2)
    put = _QueuedPut(send).put
    received: list[int] = []
    async with trio.open_nursery() as nursery:
        async def producer() -> None:
            for i in range(5):
                await put(i)
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        assert receive.statistics().current_buffer_used == 2   # the third waits for room
        for _ in range(5):
            received.append(await receive.receive())
    assert received == [0, 1, 2, 3, 4]


async def test_a_message_queued_with_room_takes_no_scheduler_round() -> None:
    send, receive = trio.open_memory_channel[int](4)
    put = _QueuedPut(send).put
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await put(1)
        await put(2)
        assert ran == []      # no yield happened: the other task has not run yet
    assert [receive.receive_nowait(), receive.receive_nowait()] == [1, 2]
