"""A small HTTP/1.1 server on 127.0.0.1, in its own thread, for the native API fakes.

Why a thread with its own ``trio.run`` (as ``tests/support/fake_upstream.py``): the same fake must
serve a pytest-trio test, and later a real ``trioproxy run`` process driven by the synchronous
``openai`` client, and keep serving while the test's thread is blocked. Why ``h11``: the tests care
about connections — whether a stream abandoned by the proxy closes the upstream socket — and
with h11 every byte and every EOF is ours to observe.

Each fake is a *handler*: a synchronous function ``(Exchange) -> Reply``. It validates the request
strictly (path, auth, required fields, shapes) and answers like the real API, or raises
:class:`Refuse` with the provider's own error shape. A refusal caused by a malformed request (as
opposed to an error the test scripted) is also recorded in ``violations``, so a test can assert
that the adapter never sent anything the real API would reject.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import h11
import trio

__all__ = ["Exchange", "NativeFake", "Refuse", "Reply"]

log = logging.getLogger(__name__)


@dataclass
class Exchange:
    """One request as the fake received it, and what became of its connection."""

    method: str
    target: str                     # path and query, as sent
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]         # lower-case names
    body: bytes
    json: Any
    connection_id: int
    host: str = ""
    disconnected: threading.Event = field(default_factory=threading.Event, repr=False)
    completed: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: streamed: each piece is sent as it is (chunked transfer encoding)
    pieces: list[bytes] | None = None
    #: after the pieces: keep the response open until the client goes away (a generating model)
    hang: bool = False


class Refuse(Exception):
    """Answer with this status and body (the provider's error shape)."""

    def __init__(self, status: int, body: Any, *, violation: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(violation or f"HTTP {status}")
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.violation = violation
        self.headers = headers or {"content-type": "application/json"}


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b"Status"


class NativeFake:
    """Serve ``handler`` on 127.0.0.1:<free port>; ``base_url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, handler: Callable[[Exchange], Reply]) -> None:
        self.handler = handler
        self.exchanges: list[Exchange] = []
        self.violations: list[str] = []
        self.errors: list[BaseException] = []
        self.port = 0
        self._connection_ids = itertools.count(1)
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._crash: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> NativeFake:
        self._thread = threading.Thread(target=self._main, name="native-fake", daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0) or self._crash is not None:
            raise RuntimeError("the native fake did not start") from self._crash
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._trio_token is not None and self._scope is not None:
            try:
                self._trio_token.run_sync_soon(self._scope.cancel)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(10.0)

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:
            self._crash = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        self._trio_token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._scope = scope
            async with trio.open_nursery() as nursery:
                await nursery.start(trio.serve_listeners, self._serve_connection, listeners)
                self._ready.set()

    # -- observation -------------------------------------------------------------------------------

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Exchange]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.exchanges) >= count, timeout):
                raise TimeoutError(f"expected {count} request(s), got {len(self.exchanges)}")
            return list(self.exchanges)

    @property
    def last(self) -> Exchange:
        return self.exchanges[-1]

    # -- serving -----------------------------------------------------------------------------------

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        connection_id = next(self._connection_ids)
        conn = h11.Connection(h11.SERVER)
        try:
            async with stream:
                while True:
                    got = await self._read_request(stream, conn)
                    if got is None:
                        return
                    exchange = self._record_request(*got, connection_id)
                    if not await self._serve_reply(stream, conn, exchange):
                        return
                    if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                        return
                    conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            pass
        except Exception as exc:  # kept for the test to see; one bad connection never stops the fake
            log.exception("native fake: connection failed")
            self.errors.append(exc)

    async def _read_request(self, stream: trio.SocketStream, conn: h11.Connection) -> tuple[h11.Request, bytes] | None:
        request = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None

    def _record_request(self, request: h11.Request, body: bytes, connection_id: int) -> Exchange:
        headers: dict[str, str] = {}
        for name, value in request.headers:
            key = name.decode("latin-1").lower()
            headers[key] = f"{headers[key]}, {value.decode('latin-1')}" if key in headers else value.decode("latin-1")
        target = request.target.decode("latin-1")
        path, _, query = target.partition("?")
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        exchange = Exchange(request.method.decode(), target, path, parse_qs(query, keep_blank_values=True),
                            headers, body, parsed, connection_id, headers.get("host", ""))
        with self._cond:
            self.exchanges.append(exchange)
            self._cond.notify_all()
        return exchange

    async def _serve_reply(self, stream: trio.SocketStream, conn: h11.Connection, exchange: Exchange) -> bool:
        try:
            reply = self.handler(exchange)
        except Refuse as refusal:
            if refusal.violation:
                self.violations.append(refusal.violation)
            reply = Reply(refusal.status, refusal.headers, refusal.body)
        headers = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        if reply.pieces is None:
            headers.append((b"content-length", str(len(reply.body)).encode()))
            await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers,
                                                         reason=_reason(reply.status))))
            await stream.send_all(conn.send(h11.Data(data=reply.body)) if reply.body else b"")
            await stream.send_all(conn.send(h11.EndOfMessage()))
            exchange.completed.set()
            return True
        headers.append((b"transfer-encoding", b"chunked"))
        await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers,
                                                     reason=_reason(reply.status))))
        try:
            for piece in reply.pieces:
                await stream.send_all(conn.send(h11.Data(data=piece)))
                await trio.lowlevel.checkpoint()
            if reply.hang:
                # a model still generating: nothing more until the client closes the connection
                while await stream.receive_some(65536):
                    pass
                exchange.disconnected.set()
                return False
            await stream.send_all(conn.send(h11.EndOfMessage()))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            exchange.disconnected.set()
            return False
        exchange.completed.set()
        return True
