"""The HTTP/1.1 pool's connections (``upstream/http11/``): connection state, slot accounting, framing edge cases.

Real loopback servers (the scriptable server of ``test_http11.py``); no duration is asserted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from test_http11 import (
    BODY,
    LAST_CHUNK,
    OK_JSON,
    Conn,
    Server,
    _FakeSocket,
    _ScriptedStream,
    answering,
    chunk,
    deployment,
    fail_soon,
    response,
    serve,
)

from trioproxy.errors import APIConnectionError, ProxyError, Timeout
from trioproxy.masking import SecretScrubber
from trioproxy.upstream.http11 import (
    Http11Pool,
    Http11Provider,
    Http11Response,
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    UnsupportedProtocol,
)
from trioproxy.upstream.http11 import parser as http11_parser
from trioproxy.upstream.http11 import pool as http11


@pytest.fixture
async def pool() -> AsyncIterator[Http11Pool]:
    pool = Http11Pool()
    yield pool
    await pool.aclose()


@pytest.fixture
def provider(pool: Http11Pool) -> Http11Provider:
    return Http11Provider(pool, SecretScrubber())


def slots_all_free(pool: Http11Pool) -> bool:
    """No slot held, and none released twice (trio.Semaphore has no upper bound by default)."""
    return pool._slots.value == pool.max_connections and pool.connections_in_use == 0


# -- connection state on reuse ----------------------------------------------------------------


async def test_unsolicited_bytes_on_an_idle_connection_are_not_taken_for_the_next_answer(
        provider: Http11Provider, pool: Http11Pool) -> None:
    """Some servers send ``408 Request Timeout`` on an idle keep-alive connection before closing it.
    Those bytes must not be read as the answer to the next request sent on that connection."""
    first_read = trio.Event()
    sent_408 = trio.Event()

    async def handler(conn: Conn, server: Server) -> None:
        while (request := await conn.read_request()) is not None:
            server.requests.append(request)
            await conn.send(response(body=b'{"n": %d}' % conn.index))
            if conn.index == 0:
                await first_read.wait()      # the client has read the answer: the connection is idle
                await conn.send(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
                sent_408.set()

    async with serve(handler) as server:
        dep = deployment(server)
        assert (await provider.send(dep, "chat/completions", BODY)).body == b'{"n": 0}'
        assert pool.idle_connections == 1
        first_read.set()
        await fail_soon(sent_408.wait())
        await fail_soon(trio.testing.wait_all_tasks_blocked())
        second = await provider.send(dep, "chat/completions", BODY)
        assert second.status == 200 and second.body == b'{"n": 1}'
        await fail_soon(server.conns[0].closed_by_client.wait())
    assert server.accepts == 2
    assert slots_all_free(pool)


async def test_a_reused_connection_that_dies_after_the_request_was_sent_is_not_retried(
        provider: Http11Provider, pool: Http11Pool) -> None:
    """The server read the whole request, then closed without answering: it may have processed it
    (generated, billed). The client must not silently send it a second time."""

    async def handler(conn: Conn, server: Server) -> None:
        while (request := await conn.read_request()) is not None:
            server.requests.append(request)
            if len(server.requests) == 2:
                return                      # "processed", then the connection is dropped
            await conn.send(response())

    async with serve(handler) as server:
        dep = deployment(server)
        await provider.send(dep, "chat/completions", BODY)
        with pytest.raises(APIConnectionError) as caught:
            await provider.send(dep, "chat/completions", BODY)
    assert isinstance(caught.value.__cause__, ReadError)
    assert len(server.requests) == 2, "the request was sent twice"
    assert server.accepts == 1
    assert slots_all_free(pool)


# -- framing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
])
async def test_transfer_encoding_wins_and_faulty_framing_is_not_reused(provider: Http11Provider,
                                                                       head: bytes) -> None:
    def respond(req: Any, conn: Conn) -> bytes:
        return head + chunk(b"hello") + LAST_CHUNK

    async with serve(answering(respond)) as server:
        dep = deployment(server)
        first = await provider.send(dep, "chat/completions", BODY)
        second = await provider.send(dep, "chat/completions", BODY)
    assert first.body == second.body == b"hello"
    assert server.accepts == 2, "a response with ambiguous framing must not leave its connection in the pool"


def test_non_ascii_digits_are_protocol_errors_not_value_errors() -> None:
    # "²" (0xB2 in latin-1) passes str.isdigit() but not int()
    with pytest.raises(RemoteProtocolError):
        http11_parser.parse_head(b"HTTP/1.1 2\xb20 OK\r\nContent-Length: 0")
    with pytest.raises(RemoteProtocolError):
        http11_parser._content_length("1\u00b2")


async def test_non_ascii_content_length_from_a_server_is_a_connection_error(provider: Http11Provider,
                                                                             pool: Http11Pool) -> None:
    def respond(req: Any, conn: Conn) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 1\xb2\r\n\r\n" + OK_JSON

    async with serve(answering(respond)) as server:
        with pytest.raises(APIConnectionError) as caught:
            await provider.send(deployment(server), "chat/completions", BODY)
    assert isinstance(caught.value.__cause__, RemoteProtocolError)
    assert slots_all_free(pool)


async def test_invalid_port_and_non_latin1_header_are_transport_errors() -> None:
    pool = Http11Pool()
    with pytest.raises(UnsupportedProtocol):
        await pool.request("POST", "http://127.0.0.1:99999/v1/x", {}, b"", read_timeout=1.0)
    with pytest.raises(UnsupportedProtocol):
        await pool.request("POST", "http://127.0.0.1:port/v1/x", {}, b"", read_timeout=1.0)
    with pytest.raises(LocalProtocolError):
        await pool.request("POST", "http://127.0.0.1:9/v1/x", {"x-name": "€"}, b"", read_timeout=1.0)
    # through the provider: a ProxyError, not a bare ValueError / UnicodeEncodeError
    provider = Http11Provider(pool, SecretScrubber())
    with pytest.raises(ProxyError):
        await provider.send(deployment("http://127.0.0.1:99999/v1"), "chat/completions", BODY)
    assert slots_all_free(pool)
    await pool.aclose()


def _response(status: int, method: str, headers: dict[str, str], buf: bytes) -> tuple[Http11Pool, Any, Any]:
    pool = Http11Pool()
    sock = _FakeSocket()
    origin = http11._Origin(False, "example", 80)
    conn = http11._Connection(_ScriptedStream([]), sock, origin)
    pool._slots.acquire_nowait()
    Http11Response(pool, conn, method, status, headers, True, buf, 5.0)
    return pool, sock, origin


@pytest.mark.parametrize(("status", "method"), [(204, "POST"), (304, "POST"), (200, "HEAD")])
async def test_bodyless_answers_keep_the_connection_only_when_nothing_follows(status: int, method: str) -> None:
    pool, sock, origin = _response(status, method, {"content-length": "10"}, b"")
    assert len(origin.idle) == 1 and not sock.closed and slots_all_free(pool)
    pool, sock, origin = _response(status, method, {"content-length": "10"}, b"0123456789")
    assert not origin.idle and sock.closed and slots_all_free(pool)


# -- cancellation, timeouts, close racing a read: the slot and the socket -------------------------


@pytest.mark.parametrize("how", ["cancelled", "timeout"])
async def test_blocked_send_all_releases_the_slot_and_closes_the_socket(how: str) -> None:
    pool = Http11Pool(max_connections=2)
    may_read = trio.Event()

    async def handler(conn: Conn, server: Server) -> None:
        await may_read.wait()            # do not read: the client's send_all fills the buffers
        await conn.wait_closed()

    big = b"x" * (32 * 1024 * 1024)
    async with serve(handler) as server:
        url = server.url() + "/v1/chat/completions"
        if how == "cancelled":
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(partial_request, pool, url, big, 30.0)
                    await fail_soon(trio.testing.wait_all_tasks_blocked(0.05))
                    assert pool.connections_in_use == 1
                    scope.cancel()
            assert scope.cancelled_caught
        else:
            with pytest.raises(ReadTimeout):
                await fail_soon(pool.request("POST", url, {}, big, read_timeout=0.2))
        assert slots_all_free(pool)
        assert pool.idle_connections == 0
        may_read.set()
        await fail_soon(server.conns[0].closed_by_client.wait())
    await pool.aclose()


async def partial_request(pool: Http11Pool, url: str, body: bytes, read_timeout: float) -> None:
    await pool.request("POST", url, {}, body, read_timeout=read_timeout)


async def test_close_racing_a_read_releases_the_slot_once(pool: Http11Pool) -> None:
    async def handler(conn: Conn, server: Server) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        await conn.wait_closed()

    async with serve(handler) as server:
        result = await pool.request("POST", server.url() + "/v1/x", {}, b"{}", read_timeout=5.0)
        assert await result.read_some() == b"x" * 10
        outcome: list[BaseException] = []

        async def reader() -> None:
            try:
                await result.read_some()
            except BaseException as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await fail_soon(trio.testing.wait_all_tasks_blocked())
            await result.aclose()        # while the reader waits in receive_some
        assert len(outcome) == 1 and isinstance(outcome[0], ReadError)
        assert result.done
        with pytest.raises(ReadError):
            await result.read_some()
        assert slots_all_free(pool)
        assert pool.idle_connections == 0
        await fail_soon(server.conns[0].closed_by_client.wait())


async def test_slot_wait_cancelled_and_timed_out_leaves_the_count_exact() -> None:
    pool = Http11Pool(max_connections=1)
    provider = Http11Provider(pool, SecretScrubber())
    release = trio.Event()

    async def handler(conn: Conn, server: Server) -> None:
        while (request := await conn.read_request()) is not None:
            server.requests.append(request)
            await release.wait()
            await conn.send(response())

    async with serve(handler) as server:
        dep = deployment(server, timeout=0.2)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(provider.send, deployment(server), "chat/completions", BODY)
            await fail_soon(trio.testing.wait_all_tasks_blocked())
            assert pool.connections_in_use == 1
            with pytest.raises(Timeout):                      # PoolTimeout
                await provider.send(dep, "chat/completions", BODY)
            with trio.CancelScope() as scope:                  # cancelled while waiting for the slot
                scope.deadline = trio.current_time() + 0.05
                await provider.send(deployment(server), "chat/completions", BODY)
            assert scope.cancelled_caught
            release.set()
        assert slots_all_free(pool)
        assert (await provider.send(deployment(server), "chat/completions", BODY)).body == OK_JSON
    await pool.aclose()


async def test_body_shorter_than_content_length_is_a_read_error(provider: Http11Provider,
                                                                pool: Http11Pool) -> None:
    async def handler(conn: Conn, server: Server) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        # and the connection ends

    async with serve(handler) as server:
        with pytest.raises(APIConnectionError) as caught:
            await provider.send(deployment(server), "chat/completions", BODY)
    assert isinstance(caught.value.__cause__, ReadError)
    assert slots_all_free(pool) and pool.idle_connections == 0
