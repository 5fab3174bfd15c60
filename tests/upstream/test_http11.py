"""The built-in HTTP/1.1 client (``trioproxy/upstream/http11/``) against real loopback servers.

Every server here is a few lines of Trio raw sockets written in this file, serving scripted bytes,
so each test controls framing, timing and connection lifetime exactly, and can observe what the
client does to the connection (how many were accepted, whether and when one was closed).

Timeouts: the connect timeout is tested in virtual time (``autojump_clock``) with the connect itself
made to hang (no socket is pending then); the other timeouts need a real socket that stays silent,
so they use short real timeouts (≤ 0.3 s) and assert only the error type, never a duration.

HTTPS: tested end to end only when ``trustme`` is installed (it is not in the project's dev
dependencies; the test is skipped otherwise). The TLS connect path (SSLStream, handshake under the
connect timeout) is still exercised without it, by a server that accepts and never answers the
handshake.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
import trio.testing

from conftest import MASTER_KEY, upstream_model
from support.fake_upstream import Behavior
from trioproxy.config import Deployment, parse_config
from trioproxy.errors import (
    APIConnectionError,
    BadRequestError,
    ProxyError,
    RateLimitError,
    Timeout,
)
from trioproxy.masking import SecretScrubber
from trioproxy.upstream.http11 import (
    Http11Pool,
    Http11Provider,
    Http11Response,
    PoolTimeout,
    ReadError,
    RemoteProtocolError,
)
from trioproxy.upstream.http11 import pool as http11
from trioproxy.upstream.httpx_provider import OpenAICompatProvider, make_http_client
from trioproxy.upstream.router import is_retryable

KEY = "sk-upstream-SECRET-0123456789abcdef"
BODY = {"model": "up", "messages": [{"role": "user", "content": "hi"}]}
OK_JSON = b'{"id":"x","object":"chat.completion","choices":[]}'


# ---------------------------------------------------------------------------------------------
# A scriptable loopback server
# ---------------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return ", ".join(values) if values else None


@dataclass
class Conn:
    """The server's side of one accepted connection."""

    stream: trio.SocketStream
    index: int
    buf: bytes = b""
    closed_by_client: trio.Event = field(default_factory=trio.Event)

    async def read_request(self) -> Request | None:
        while b"\r\n\r\n" not in self.buf:
            data = await self._receive()
            if not data:
                return None
            self.buf += data
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        length = int(dict(headers).get("content-length", "0"))
        while len(rest) < length:
            data = await self._receive()
            assert data, "the client closed in the middle of its request body"
            rest += data
        self.buf = rest[length:]
        return Request(method, path, headers, rest[:length])

    async def _receive(self) -> bytes:
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:
            data = b""
        if not data:
            self.closed_by_client.set()
        return data

    async def send(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except trio.BrokenResourceError:
            self.closed_by_client.set()
            raise

    async def wait_closed(self) -> None:
        """Read (and drop) until the client closes its end."""
        while await self._receive():
            pass

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN."""
        sock = self.stream.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()


@dataclass
class Server:
    port: int = 0
    conns: list[Conn] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    @property
    def accepts(self) -> int:
        return len(self.conns)

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"


Handler = Callable[[Conn, Server], Awaitable[None]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Server]:
    server = Server()

    async def on_connection(stream: trio.SocketStream) -> None:
        conn = Conn(stream, len(server.conns))
        server.conns.append(conn)
        try:
            await handler(conn, server)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if stream.socket.fileno() != -1:
                await trio.aclose_forcefully(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, on_connection, 0, host="127.0.0.1"))
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()


def answering(respond: Callable[[Request, Conn], bytes]) -> Handler:
    """A keep-alive server answering each request with ``respond(request, conn)``."""

    async def handler(conn: Conn, server: Server) -> None:
        while (request := await conn.read_request()) is not None:
            server.requests.append(request)
            await conn.send(respond(request, conn))

    return handler


def response(body: bytes = OK_JSON, status: str = "200 OK", headers: tuple[tuple[str, str], ...] = (),
             version: str = "HTTP/1.1") -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
    head = f"{version} {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def chunked_head(status: str = "200 OK", content_type: str = "text/event-stream") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def deployment(server_or_base: Server | str, **overrides: Any) -> Deployment:
    base = server_or_base if isinstance(server_or_base, str) else server_or_base.url() + "/v1"
    values: dict[str, Any] = dict(
        model_name="gpt-test", provider="openai", upstream_model="up", api_base=base, api_key=KEY,
        timeout=5.0, stream_timeout=5.0, max_retries=None, weight=1.0, extra_params={},
        extra_headers={}, input_cost_per_token=None, output_cost_per_token=None, fake={},
        model_info={}, index=0,
    )
    values.update(overrides)
    return Deployment(**values)


@pytest.fixture
async def pool() -> AsyncIterator[Http11Pool]:
    pool = Http11Pool()
    yield pool
    await pool.aclose()


@pytest.fixture
def provider(pool: Http11Pool) -> Http11Provider:
    return Http11Provider(pool, SecretScrubber([KEY]))


async def fail_soon(awaitable: Awaitable[Any], seconds: float = 5.0) -> Any:
    with trio.fail_after(seconds):
        return await awaitable


# ---------------------------------------------------------------------------------------------
# Requests and response framing
# ---------------------------------------------------------------------------------------------


async def test_request_shape_and_content_length_body(provider: Http11Provider, monkeypatch: Any) -> None:
    sends: list[bytes] = []
    original = trio.SocketStream.send_all

    async def counting_send_all(self: trio.SocketStream, data: Any) -> None:
        if self.socket.getsockname()[1] != server.port:     # the client's side only
            sends.append(bytes(data))
        await original(self, data)

    original_write = http11._Connection.write_now

    def counting_write_now(self: Any, data: bytes) -> int:     # plain TCP writes at once when it can
        sends.append(bytes(data))
        return original_write(self, data)

    async with serve(answering(lambda req, conn: response(headers=(("X-Upstream", "a"),)))) as server:
        monkeypatch.setattr(trio.SocketStream, "send_all", counting_send_all)
        monkeypatch.setattr(http11._Connection, "write_now", counting_write_now)
        dep = deployment(server, extra_headers={"X-Custom": "yes", "Accept": "application/x-test"})
        result = await provider.send(dep, "chat/completions", BODY)
        monkeypatch.undo()

    assert result.status == 200
    assert result.body == OK_JSON
    assert result.headers["content-type"] == "application/json"
    assert result.headers["x-upstream"] == "a"          # names lower-cased
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.body == orjson.dumps(BODY)
    assert request.header("host") == f"127.0.0.1:{server.port}"
    assert request.header("content-type") == "application/json"
    assert request.header("authorization") == f"Bearer {KEY}"
    assert request.header("content-length") == str(len(orjson.dumps(BODY)))
    assert request.header("x-custom") == "yes"
    assert request.header("accept") == "application/x-test"  # extra_headers override the defaults
    assert [k for k, _ in request.headers].count("accept") == 1
    assert len(sends) == 1, "head and body must go out in one send_all"
    assert sends[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert sends[0].endswith(b"\r\n\r\n" + orjson.dumps(BODY))


async def test_stream_request_asks_for_event_stream_and_no_key_means_no_authorization(
        provider: Http11Provider) -> None:
    def respond(req: Request, conn: Conn) -> bytes:
        return chunked_head() + chunk(b"data: [DONE]\n\n") + LAST_CHUNK

    async with serve(answering(respond)) as server:
        stream = await provider.open_stream(deployment(server, api_key=None), "chat/completions", BODY)
        try:
            assert b"".join([p async for p in stream.aiter_bytes()]) == b"data: [DONE]\n\n"
        finally:
            await stream.aclose()
    [request] = server.requests
    assert request.header("accept") == "text/event-stream"
    assert request.header("authorization") is None


async def test_chunked_body_with_extensions_and_trailers_then_reuse(provider: Http11Provider) -> None:
    def respond(req: Request, conn: Conn) -> bytes:
        return (chunked_head(content_type="application/json")
                + b"5;name=value\r\nhello\r\n" + chunk(b" world")
                + b"0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n")

    async with serve(answering(respond)) as server:
        dep = deployment(server)
        first = await provider.send(dep, "chat/completions", BODY)
        second = await provider.send(dep, "chat/completions", BODY)
    assert first.body == second.body == b"hello world"
    assert server.accepts == 1, "the trailer must be consumed so the connection can be reused"


async def test_chunked_split_across_many_reads_on_a_real_socket(provider: Http11Provider) -> None:
    payload = [b"data: {\"n\": %d}\n\n" % i for i in range(8)]
    wire = chunked_head() + b"".join(chunk(p) for p in payload) + b"0\r\nX-T: 1\r\n\r\n"

    async def handler(conn: Conn, server: Server) -> None:
        while (request := await conn.read_request()) is not None:
            server.requests.append(request)
            for i in range(0, len(wire), 3):       # 3 bytes at a time, each its own segment
                await conn.send(wire[i:i + 3])
                await trio.sleep(0.0005)

    async with serve(handler) as server:
        dep = deployment(server)
        stream = await provider.open_stream(dep, "chat/completions", BODY)
        pieces = [p async for p in stream.aiter_bytes()]
        await stream.aclose()
        again = await provider.send(dep, "chat/completions", BODY)
    assert b"".join(pieces) == b"".join(payload)
    assert len(pieces) > 8, "pieces are delivered as they arrive, not per chunk"
    assert all(pieces)
    assert again.body == b"".join(payload)
    assert server.accepts == 1


class _ScriptedStream(trio.abc.Stream):
    """A stream that hands out fixed pieces, one per receive_some (then EOF)."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        return self.pieces.pop(0) if self.pieces else b""

    async def send_all(self, data: Any) -> None:
        await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


class _FakeSocket:
    closed = False

    def close(self) -> None:
        self.closed = True


async def _decode_pieces(headers: dict[str, str], pieces: list[bytes]) -> tuple[bytes, bool]:
    """Body through Http11Response from scripted pieces; and whether the connection was kept."""
    pool = Http11Pool()
    sock = _FakeSocket()
    origin = http11._Origin(False, "example", 80)
    conn = http11._Connection(_ScriptedStream(pieces), sock, origin)
    pool._slots.acquire_nowait()
    response = Http11Response(pool, conn, "POST", 200, headers, True, b"", 5.0)
    body = await response.aread()
    return body, bool(origin.idle) and not sock.closed


async def test_chunked_decoder_at_every_split_point() -> None:
    wire = (b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n"
            b"0\r\nExpires: never\r\n\r\n")
    expected = b"Wikipedia in \r\n\r\nchunks."
    headers = {"transfer-encoding": "chunked"}
    for cut in range(1, len(wire)):
        for second_cut in (cut + 1, cut + 7, len(wire)):
            pieces = [wire[:cut], wire[cut:second_cut], wire[second_cut:]]
            body, kept = await _decode_pieces(headers, [p for p in pieces if p])
            assert body == expected, (cut, second_cut)
            assert kept
    body, kept = await _decode_pieces(headers, [wire[i:i + 1] for i in range(len(wire))])
    assert (body, kept) == (expected, True)


async def test_content_length_split_and_extra_bytes() -> None:
    body, kept = await _decode_pieces({"content-length": "10"}, [b"0123", b"45", b"6789"])
    assert (body, kept) == (b"0123456789", True)
    # bytes after the declared length: the body is cut there and the connection is not reused
    body, kept = await _decode_pieces({"content-length": "4"}, [b"0123garbage"])
    assert (body, kept) == (b"0123", False)


@pytest.mark.parametrize("bad", [b"zz\r\n", b"-1\r\n", b"0x5\r\n", b"1_0\r\n", b"\r\n"])
async def test_invalid_chunk_size_is_a_protocol_error(bad: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        await _decode_pieces({"transfer-encoding": "chunked"}, [bad + b"hello\r\n0\r\n\r\n"])


async def test_stream_yields_pieces_as_they_arrive(provider: Http11Provider, pool: Http11Pool) -> None:
    go_on = trio.Event()

    async def handler(conn: Conn, server: Server) -> None:
        while (request := await conn.read_request()) is not None:
            server.requests.append(request)
            await conn.send(chunked_head() + chunk(b"data: 1\n\n"))
            await go_on.wait()
            await conn.send(chunk(b"data: 2\n\n") + chunk(b"data: [DONE]\n\n") + LAST_CHUNK)

    async with serve(handler) as server:
        stream = await provider.open_stream(deployment(server), "chat/completions", BODY)
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
        pieces = stream.aiter_bytes()
        assert await fail_soon(pieces.__anext__()) == b"data: 1\n\n"   # before the server sent more
        go_on.set()
        rest = b""
        async for piece in pieces:
            rest += piece
        assert rest == b"data: 2\n\ndata: [DONE]\n\n"
        await stream.aclose()
        assert pool.idle_connections == 1
        assert pool.connections_in_use == 0


async def test_read_until_close_body_and_http10(provider: Http11Provider) -> None:
    async def handler(conn: Conn, server: Server) -> None:
        request = await conn.read_request()
        assert request is not None
        server.requests.append(request)
        if conn.index == 0:      # no length, no chunking: the body ends when the server closes
            await conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            await conn.send(b'{"part": 1,')
            await trio.sleep(0.01)
            await conn.send(b' "part2": 2}')
        else:                    # HTTP/1.0 without keep-alive: not reused either
            await conn.send(response(version="HTTP/1.0"))
            await conn.wait_closed()

    async with serve(handler) as server:
        dep = deployment(server)
        first = await provider.send(dep, "chat/completions", BODY)
        second = await provider.send(dep, "chat/completions", BODY)
        await fail_soon(server.conns[1].closed_by_client.wait())
    assert first.body == b'{"part": 1, "part2": 2}'
    assert second.body == OK_JSON
    assert server.accepts == 2


# ---------------------------------------------------------------------------------------------
# Keep-alive and the pool
# ---------------------------------------------------------------------------------------------


async def test_sequential_requests_share_one_connection(provider: Http11Provider, pool: Http11Pool) -> None:
    def respond(req: Request, conn: Conn) -> bytes:
        if b'"stream":true' in req.body:
            return chunked_head() + chunk(b"data: [DONE]\n\n") + LAST_CHUNK
        return response()

    async with serve(answering(respond)) as server:
        dep = deployment(server)
        for i in range(6):
            if i % 2:
                stream = await provider.open_stream(dep, "chat/completions", {**BODY, "stream": True})
                async for _ in stream.aiter_bytes():
                    pass
                await stream.aclose()
            else:
                await provider.send(dep, "chat/completions", BODY)
    assert server.accepts == 1
    assert len(server.requests) == 6
    assert pool.connections_opened == 1


async def test_connection_close_is_not_reused(provider: Http11Provider, pool: Http11Pool) -> None:
    async def handler(conn: Conn, server: Server) -> None:
        request = await conn.read_request()
        assert request is not None
        await conn.send(response(headers=(("Connection", "close"),)))
        await conn.wait_closed()

    async with serve(handler) as server:
        dep = deployment(server)
        await provider.send(dep, "chat/completions", BODY)
        await provider.send(dep, "chat/completions", BODY)
        await fail_soon(server.conns[1].closed_by_client.wait())
        assert server.conns[0].closed_by_client.is_set()
    assert server.accepts == 2
    assert pool.idle_connections == 0


async def test_keepalive_expiry_and_max_idle_per_origin() -> None:
    pool = Http11Pool(max_keepalive_connections=1, keepalive_expiry=0.05)
    provider = Http11Provider(pool, SecretScrubber())
    both_in = trio.Event()

    async def handler(conn: Conn, server: Server) -> None:
        while (request := await conn.read_request()) is not None:
            server.requests.append(request)
            if len(server.requests) == 2:
                both_in.set()
            await both_in.wait()
            await conn.send(response())

    async with serve(handler) as server:
        dep = deployment(server)
        async with trio.open_nursery() as nursery:   # two at once: two connections
            for _ in range(2):
                nursery.start_soon(provider.send, dep, "chat/completions", BODY)
        assert server.accepts == 2
        assert pool.idle_connections == 1             # the second one released was closed
        await fail_soon(trio.testing.wait_all_tasks_blocked())
        assert sum(c.closed_by_client.is_set() for c in server.conns) == 1
        await trio.sleep(0.1)                          # past keepalive_expiry
        await provider.send(dep, "chat/completions", BODY)
        assert server.accepts == 3, "an expired idle connection is not reused"
        await fail_soon(server.conns[0].closed_by_client.wait())
        await fail_soon(server.conns[1].closed_by_client.wait())
    await pool.aclose()


async def test_max_connections_waits_for_a_free_slot() -> None:
    pool = Http11Pool(max_connections=1)
    provider = Http11Provider(pool, SecretScrubber())

    def respond(req: Request, conn: Conn) -> bytes:
        return chunked_head() + chunk(b"data: [DONE]\n\n") + LAST_CHUNK

    async with serve(answering(respond)) as server:
        dep = deployment(server)
        stream = await provider.open_stream(dep, "chat/completions", BODY)
        assert pool.connections_in_use == 1
        done: list[int] = []

        async def second() -> None:
            done.append((await provider.send(dep, "chat/completions", BODY)).status)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(second)
            await trio.testing.wait_all_tasks_blocked()
            assert done == [] and len(server.requests) == 1     # waiting for the slot
            async for _ in stream.aiter_bytes():                  # reading to the end frees it
                pass
            await stream.aclose()
        assert done == [200]
        assert server.accepts == 1, "the waiting request took over the released connection"

        # and a wait longer than the request's timeout is a (retryable) connect-side timeout
        held = await provider.open_stream(dep, "chat/completions", BODY)
        with pytest.raises(Timeout) as caught:
            await provider.send(deployment(server, timeout=0.2), "chat/completions", BODY)
        await held.aclose()
    assert isinstance(caught.value.__cause__, PoolTimeout)
    assert is_retryable(caught.value)
    assert pool.connections_in_use == 0
    await pool.aclose()


async def test_pool_aclose_closes_idle_now_and_busy_on_release() -> None:
    pool = Http11Pool()
    provider = Http11Provider(pool, SecretScrubber())

    def respond(req: Request, conn: Conn) -> bytes:
        return chunked_head() + chunk(b"data: [DONE]\n\n") + LAST_CHUNK

    async with serve(answering(respond)) as server:
        dep = deployment(server)
        async with trio.open_nursery() as nursery:
            streams = []

            async def opener() -> None:
                streams.append(await provider.open_stream(dep, "chat/completions", BODY))

            nursery.start_soon(opener)
            nursery.start_soon(opener)
        assert server.accepts == 2
        idle_stream, busy_stream = streams
        async for _ in idle_stream.aiter_bytes():
            pass
        await idle_stream.aclose()
        assert pool.idle_connections == 1
        await pool.aclose()
        assert pool.idle_connections == 0
        async for _ in busy_stream.aiter_bytes():   # still works to its end...
            pass
        await busy_stream.aclose()                 # ...and its connection is closed, not kept
        assert pool.idle_connections == 0
        await fail_soon(server.conns[0].closed_by_client.wait())
        await fail_soon(server.conns[1].closed_by_client.wait())
        with pytest.raises(RuntimeError, match="closed"):
            await provider.send(dep, "chat/completions", BODY)


# ---------------------------------------------------------------------------------------------
# Closing early, cancellation, dead connections
# ---------------------------------------------------------------------------------------------


async def test_early_aclose_of_a_stream_closes_the_socket(provider: Http11Provider, pool: Http11Pool) -> None:
    async def handler(conn: Conn, server: Server) -> None:
        while (request := await conn.read_request()) is not None:
            server.requests.append(request)
            await conn.send(chunked_head() + chunk(b"data: 1\n\n"))
            await conn.wait_closed()     # a generating model: more would come, but the client left

    async with serve(handler) as server:
        stream = await provider.open_stream(deployment(server), "chat/completions", BODY)
        assert await fail_soon(stream.aiter_bytes().__anext__()) == b"data: 1\n\n"
        await stream.aclose()
        await fail_soon(server.conns[0].closed_by_client.wait())
        await stream.aclose()            # idempotent
        assert pool.idle_connections == 0
        assert pool.connections_in_use == 0


async def test_closing_the_byte_iterator_early_closes_the_socket(provider: Http11Provider,
                                                                 pool: Http11Pool) -> None:
    async def handler(conn: Conn, server: Server) -> None:
        await conn.read_request()
        await conn.send(chunked_head() + chunk(b"data: 1\n\n"))
        await conn.wait_closed()

    async with serve(handler) as server:
        stream = await provider.open_stream(deployment(server), "chat/completions", BODY)
        pieces = stream.aiter_bytes()
        await fail_soon(pieces.__anext__())
        await pieces.aclose()             # as the pipeline does before closing the stream itself
        await fail_soon(server.conns[0].closed_by_client.wait())
        await stream.aclose()
    assert pool.idle_connections == 0


@pytest.mark.parametrize("where", ["waiting for the head", "in the middle of the body"])
async def test_cancellation_mid_request_closes_the_socket(provider: Http11Provider, pool: Http11Pool,
                                                          where: str) -> None:
    started = trio.Event()

    async def handler(conn: Conn, server: Server) -> None:
        while (request := await conn.read_request()) is not None:
            server.requests.append(request)
            if len(server.requests) > 1:
                await conn.send(response())
                continue
            if where == "in the middle of the body":
                await conn.send(response(body=b"x" * 100)[:-50])
            started.set()
            await conn.wait_closed()

    async with serve(handler) as server:
        dep = deployment(server)
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(provider.send, dep, "chat/completions", BODY)
                await started.wait()
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel(reason="moderation rejected")
        assert scope.cancelled_caught
        await fail_soon(server.conns[0].closed_by_client.wait())
        assert pool.idle_connections == 0
        assert pool.connections_in_use == 0
        assert (await provider.send(dep, "chat/completions", BODY)).body == OK_JSON
        assert server.accepts == 2


@pytest.mark.parametrize("how", ["eof", "reset"])
async def test_dead_idle_connection_is_retried_once_on_a_fresh_one(provider: Http11Provider,
                                                                   pool: Http11Pool, how: str) -> None:
    first_closed = trio.Event()

    async def handler(conn: Conn, server: Server) -> None:
        request = await conn.read_request()
        assert request is not None
        server.requests.append(request)
        await conn.send(response(body=b'{"n": %d}' % conn.index))
        if conn.index == 0:      # the server's keep-alive timeout, without telling the client
            if how == "reset":
                await trio.sleep(0.01)
                conn.reset()
            else:
                await conn.stream.aclose()
            first_closed.set()
            return
        await conn.wait_closed()

    async with serve(handler) as server:
        dep = deployment(server)
        assert (await provider.send(dep, "chat/completions", BODY)).body == b'{"n": 0}'
        await first_closed.wait()
        await trio.sleep(0.01)
        assert pool.idle_connections == 1
        assert (await provider.send(dep, "chat/completions", BODY)).body == b'{"n": 1}'
    assert server.accepts == 2
    assert len(server.requests) == 2


async def test_a_fresh_connection_that_dies_is_not_retried_again(provider: Http11Provider) -> None:
    async def handler(conn: Conn, server: Server) -> None:
        request = await conn.read_request()
        assert request is not None
        server.requests.append(request)
        if conn.index == 0:
            await conn.send(response())
        # every connection is then closed without (another) answer

    async with serve(handler) as server:
        dep = deployment(server)
        await provider.send(dep, "chat/completions", BODY)
        # the server has closed connection 0: the client notices before reusing it
        await fail_soon(trio.testing.wait_all_tasks_blocked())
        with pytest.raises(APIConnectionError) as caught:
            await provider.send(dep, "chat/completions", BODY)
    assert server.accepts == 2, "one retry on a fresh connection, no more"
    assert isinstance(caught.value.__cause__, ReadError)
    assert "Could not reach the upstream" in caught.value.message


# ---------------------------------------------------------------------------------------------
# Errors and timeouts
# ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused(provider: Http11Provider, pool: Http11Pool) -> None:
    dep = deployment(f"http://127.0.0.1:{_free_port()}/v1")
    with pytest.raises(APIConnectionError) as caught:
        await provider.send(dep, "chat/completions", BODY)
    err = caught.value
    assert err.status_code == 502
    assert type(err.__cause__).__name__ == "ConnectError"
    # clients never learn the api_base or its host (operators see it, masked, in the logs)
    assert err.message == (f"Could not reach the upstream {dep.public_label} for model 'gpt-test': ConnectError")
    assert is_retryable(err)
    assert pool.connections_in_use == 0


@pytest.mark.parametrize(("read_timeout", "connect_timeout", "expected"), [(30.0, 10.0, 10.0), (3.0, 10.0, 3.0)])
async def test_connect_timeout_in_virtual_time(autojump_clock: Any, monkeypatch: Any, read_timeout: float,
                                               connect_timeout: float, expected: float) -> None:
    async def never_connects(host: str, port: int, **kw: Any) -> Any:
        await trio.sleep_forever()

    monkeypatch.setattr(trio, "open_tcp_stream", never_connects)
    pool = Http11Pool(connect_timeout=connect_timeout)
    provider = Http11Provider(pool, SecretScrubber())
    start = trio.current_time()
    with pytest.raises(Timeout) as caught:
        await provider.send(deployment("http://127.0.0.1:9/v1", timeout=read_timeout), "chat/completions", BODY)
    assert trio.current_time() - start == pytest.approx(expected)   # min(timeout, connect_timeout)
    err = caught.value
    assert err.status_code == 504
    assert type(err.__cause__).__name__ == "ConnectTimeout"
    assert err.message.startswith("Timed out connecting to the upstream")
    assert is_retryable(err)
    assert pool.connections_in_use == 0


async def test_tls_handshake_that_never_completes_is_a_connect_timeout() -> None:
    async def silent(conn: Conn, server: Server) -> None:
        await conn.wait_closed()

    pool = Http11Pool(connect_timeout=0.2)
    provider = Http11Provider(pool, SecretScrubber())
    async with serve(silent) as server:
        with pytest.raises(Timeout) as caught:
            await provider.send(deployment(server.url("https") + "/v1"), "chat/completions", BODY)
        await fail_soon(server.conns[0].closed_by_client.wait())
    assert type(caught.value.__cause__).__name__ == "ConnectTimeout"
    assert is_retryable(caught.value)


async def test_read_timeout_waiting_for_the_answer(provider: Http11Provider, pool: Http11Pool) -> None:
    async def silent(conn: Conn, server: Server) -> None:
        await conn.read_request()
        await conn.wait_closed()

    async with serve(silent) as server:
        with pytest.raises(Timeout) as caught:
            await provider.send(deployment(server, timeout=0.2), "chat/completions", BODY)
        await fail_soon(server.conns[0].closed_by_client.wait())
    err = caught.value
    assert err.status_code == 504
    assert type(err.__cause__).__name__ == "ReadTimeout"
    assert err.message.startswith("Timed out waiting for the upstream")
    assert not is_retryable(err)
    assert pool.connections_in_use == 0 and pool.idle_connections == 0


async def test_read_timeout_in_the_middle_of_a_stream(provider: Http11Provider, pool: Http11Pool) -> None:
    async def stalls(conn: Conn, server: Server) -> None:
        await conn.read_request()
        await conn.send(chunked_head() + chunk(b"data: 1\n\n"))
        await conn.wait_closed()

    async with serve(stalls) as server:
        stream = await provider.open_stream(deployment(server, stream_timeout=0.2), "chat/completions", BODY)
        received = []
        with pytest.raises(Timeout) as caught:
            async for piece in stream.aiter_bytes():
                received.append(piece)
        await stream.aclose()
        await fail_soon(server.conns[0].closed_by_client.wait())
    assert received == [b"data: 1\n\n"]
    assert type(caught.value.__cause__).__name__ == "ReadTimeout"
    assert pool.connections_in_use == 0 and pool.idle_connections == 0


async def test_error_status_is_mapped_with_secrets_scrubbed_and_connection_kept(
        provider: Http11Provider, pool: Http11Pool) -> None:
    error = orjson.dumps({"error": {"message": f"Rate limit reached for key {KEY}", "type": "requests",
                                    "param": None, "code": "rate_limit_exceeded"}})

    def respond(req: Request, conn: Conn) -> bytes:
        return response(body=error, status="429 Too Many Requests")

    async with serve(answering(respond)) as server:
        dep = deployment(server)
        with pytest.raises(RateLimitError) as caught:
            await provider.send(dep, "chat/completions", BODY)
        with pytest.raises(RateLimitError):
            await provider.open_stream(dep, "chat/completions", BODY)
    err = caught.value
    assert err.status_code == 429
    assert err.upstream_status == 429  # type: ignore[attr-defined]
    assert err.code == "rate_limit_exceeded"
    assert KEY not in err.message
    assert err.message.startswith(f"Upstream {dep.public_label} error: Rate limit reached for key ")
    assert server.accepts == 1, "an error body read to its end leaves the connection reusable"
    assert pool.idle_connections == 1


async def test_huge_error_body_is_cut_and_the_connection_closed(provider: Http11Provider,
                                                                pool: Http11Pool) -> None:
    async def handler(conn: Conn, server: Server) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):
            await conn.send(chunk(b"e" * 4096))
        await conn.wait_closed()     # never ends the body

    async with serve(handler) as server:
        with pytest.raises(BadRequestError) as caught:
            await fail_soon(provider.send(deployment(server), "chat/completions", BODY))
        await fail_soon(server.conns[0].closed_by_client.wait())
    # a body that is not a JSON error is never relayed (it could be a traceback or a web page)
    assert caught.value.message.endswith("answered HTTP 400 (Bad Request) without an error message")
    assert "eeee" not in caught.value.message
    assert pool.idle_connections == 0 and pool.connections_in_use == 0


async def test_header_too_large(provider: Http11Provider, pool: Http11Pool) -> None:
    async def handler(conn: Conn, server: Server) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\n")
        for i in range(70):
            await conn.send(b"X-Filler-%03d: %s\r\n" % (i, b"f" * 1000))
        await conn.wait_closed()

    async with serve(handler) as server:
        with pytest.raises(APIConnectionError) as caught:
            await fail_soon(provider.send(deployment(server), "chat/completions", BODY))
        await fail_soon(server.conns[0].closed_by_client.wait())
    assert isinstance(caught.value.__cause__, RemoteProtocolError)
    assert "the response head exceeds 65536 bytes" in caught.value.message
    assert pool.connections_in_use == 0


@pytest.mark.parametrize("wire", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",           # body cut short
    b"SPDY/3 200 OK\r\nContent-Length: 0\r\n\r\n",                       # not HTTP/1.x
    b"HTTP/1.1 2xx OK\r\nContent-Length: 0\r\n\r\n",                     # bad status
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",              # conflicting lengths
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",                          # bad header line
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",  # chunked, then EOF
])
async def test_malformed_or_truncated_answers(provider: Http11Provider, pool: Http11Pool, wire: bytes) -> None:
    async def handler(conn: Conn, server: Server) -> None:
        await conn.read_request()
        await conn.send(wire)

    async with serve(handler) as server:
        with pytest.raises(APIConnectionError):
            await fail_soon(provider.send(deployment(server), "chat/completions", BODY))
    assert pool.connections_in_use == 0 and pool.idle_connections == 0


async def test_interim_100_continue_is_skipped(provider: Http11Provider) -> None:
    def respond(req: Request, conn: Conn) -> bytes:
        return b"HTTP/1.1 100 Continue\r\n\r\n" + response()

    async with serve(answering(respond)) as server:
        assert (await provider.send(deployment(server), "chat/completions", BODY)).body == OK_JSON


# ---------------------------------------------------------------------------------------------
# Same semantics as the httpx provider
# ---------------------------------------------------------------------------------------------


def _outcome(exc: BaseException) -> tuple[Any, ...]:
    assert isinstance(exc, ProxyError)
    return (type(exc), exc.status_code, exc.message, exc.code, exc.param, getattr(exc, "upstream_status", None),
            type(exc.__cause__).__name__ if isinstance(exc, Timeout) else None)


async def test_same_errors_as_the_httpx_provider() -> None:
    error_500 = orjson.dumps({"error": {"message": f"boom {KEY}", "param": "messages", "code": 17}})

    async def handler(conn: Conn, server: Server) -> None:
        while (request := await conn.read_request()) is not None:
            model = orjson.loads(request.body)["model"]
            if model == "e500":
                await conn.send(response(body=error_500, status="500 Internal Server Error"))
            elif model == "text":
                await conn.send(response(body=b"Bad gateway, plain text", status="502 Bad Gateway"))
            elif model == "empty":
                await conn.send(response(body=b"", status="404 Not Found"))
            else:   # silent: read timeout
                await conn.wait_closed()

    scrubber = SecretScrubber([KEY])
    pool = Http11Pool()
    client = make_http_client()
    providers = [Http11Provider(pool, scrubber), OpenAICompatProvider(client, scrubber)]
    async with serve(handler) as server:
        dep = deployment(server, timeout=0.2, stream_timeout=0.2)
        refused = deployment(f"http://127.0.0.1:{_free_port()}")
        for model in ("e500", "text", "empty", "silent"):
            for stream in (False, True):
                outcomes = []
                for provider in providers:
                    call = provider.open_stream if stream else provider.send
                    with pytest.raises(ProxyError) as caught:
                        await call(dep, "chat/completions", {"model": model})
                    outcomes.append(_outcome(caught.value))
                assert outcomes[0] == outcomes[1], (model, stream)
        for dep in (refused, deployment("ftp://127.0.0.1/v1"),
                    deployment(server, extra_headers={"x-bad": "one\r\ninjected: two"})):
            outcomes = []
            for provider in providers:
                with pytest.raises(ProxyError) as caught:
                    await provider.send(dep, "chat/completions", BODY)
                outcomes.append(_outcome(caught.value))
            assert outcomes[0] == outcomes[1], dep.api_base
    await client.aclose()
    await pool.aclose()


async def test_the_httpx_providers_errors_carry_no_request_with_the_url_or_key() -> None:
    """An httpx error holds its ``httpx.Request`` (the URL object with ``?key=…``, the headers with the
    provider's ``Authorization``), and it is the ``__cause__`` of what failure hooks and logging
    callbacks receive: scrubbing strings could not clean those objects, so the request is dropped."""
    scrubber = SecretScrubber([KEY, "url-secret-123"])
    client = make_http_client()
    refused = deployment(f"http://127.0.0.1:{_free_port()}/v1?key=url-secret-123")
    with pytest.raises(ProxyError) as caught:
        await OpenAICompatProvider(client, scrubber).send(refused, "chat/completions", BODY)
    await client.aclose()
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    httpx_errors = [e for e in chain if isinstance(e, httpx.RequestError)]
    assert httpx_errors, chain
    for e in httpx_errors:
        with pytest.raises(RuntimeError):
            e.request    # noqa: B018 - httpx: "The .request property has not been set."
    for e in chain:
        assert KEY not in repr(vars(e)) and "url-secret-123" not in repr(vars(e)), e


# ---------------------------------------------------------------------------------------------
# HTTPS (only with trustme)
# ---------------------------------------------------------------------------------------------


async def test_https_on_loopback_with_a_test_ca() -> None:
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def handler(conn: Conn, server: Server) -> None:
        tls = trio.SSLStream(conn.stream, server_context, server_side=True)
        tls_conn = Conn(tls, conn.index)  # type: ignore[arg-type]
        while (request := await tls_conn.read_request()) is not None:
            server.requests.append(request)
            await tls_conn.send(response())

    pool = Http11Pool(ssl_context=client_context)
    provider = Http11Provider(pool, SecretScrubber())
    async with serve(handler) as server:
        dep = deployment(f"https://localhost:{server.port}/v1")
        for _ in range(3):
            assert (await provider.send(dep, "chat/completions", BODY)).body == OK_JSON
        assert server.accepts == 1
        assert server.requests[0].header("host") == f"localhost:{server.port}"
    await pool.aclose()


# ---------------------------------------------------------------------------------------------
# The app: the built-in client by default, httpx on request
# ---------------------------------------------------------------------------------------------


def _config(http_client: str | None) -> Any:
    general: dict[str, Any] = {"http_pool": {"max_connections": 7, "max_keepalive_connections": 3,
                                             "keepalive_expiry": 5, "connect_timeout": 2}}
    if http_client is not None:
        general["http_client"] = http_client
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "openai/up",
                                                                 "api_base": "http://127.0.0.1:9/v1"}}],
           "general_settings": general}
    return parse_config(raw, "<test>", Path.cwd())


@pytest.mark.parametrize(("choice", "expected"), [(None, Http11Provider), ("builtin", Http11Provider),
                                                  ("httpx", OpenAICompatProvider)])
async def test_app_picks_the_transport(choice: str | None, expected: type) -> None:
    from trioproxy.proxy import build_proxy

    proxy = build_proxy(_config(choice))
    state = proxy.services
    async with trio.open_nursery() as nursery:
        await proxy.start(nursery)
        assert isinstance(state.providers["openai"].inner, expected)   # behind the mock_response layer
        assert isinstance(state.http_client, httpx.AsyncClient)   # for handlers, either way
        if expected is Http11Provider:
            assert state.upstream_pool is not None
            assert (state.upstream_pool.max_connections, state.upstream_pool.max_keepalive_connections,
                    state.upstream_pool.keepalive_expiry, state.upstream_pool.connect_timeout) == (7, 3, 5.0, 2.0)
        await proxy.stop()
        nursery.cancel_scope.cancel()
    assert state.upstream_pool is None or state.upstream_pool.closed


def test_http_client_setting_is_validated() -> None:
    from trioproxy.config import ConfigError

    with pytest.raises(ConfigError, match="http_client"):
        _config("curl")


# ---------------------------------------------------------------------------------------------
# End to end through a real ``trioproxy run`` (both transports)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("http_client", ["builtin", "httpx"])
def test_proxy_end_to_end(fake_upstream: Any, start_proxy: Any, http_client: str) -> None:
    fake_upstream.set_behavior("up-model", Behavior(content="one two three"))
    proxy = start_proxy({"model_list": [upstream_model(fake_upstream)],
                         "general_settings": {"master_key": MASTER_KEY, "http_client": http_client}})
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    message = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=proxy.url, headers=headers, timeout=10) as client:
        for _ in range(2):
            answer = client.post("/chat/completions", json=message)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"] == "one two three"
            streamed = client.post("/chat/completions", json={**message, "stream": True})
            assert streamed.status_code == 200, streamed.text
            assert streamed.text.rstrip().endswith("data: [DONE]")
            assert "three" in streamed.text
    assert len(fake_upstream.requests) == 4
    assert all(r.completed for r in fake_upstream.requests)
    if http_client == "builtin":
        assert len({r.connection_id for r in fake_upstream.requests}) == 1
