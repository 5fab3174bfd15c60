"""A scriptable HTTP/1.1 server on 127.0.0.1: the target of pass-through endpoints in tests.

Like ``fake_upstream.py`` (trio + h11 in a background thread, so sync and trio tests can both use
it), but not OpenAI-shaped: it records every request exactly as it arrived (method, target, headers
as a list, body) and answers what the test scripted. Two hooks let tests prove streaming without
timing anything:

* ``body_pieces``: each body piece is recorded as it arrives, and ``piece_arrived`` (a
  ``threading.Condition``) is notified, so a client can wait for "the target has the first piece"
  before it sends the second;
* ``Answer.hold``: the answer's first part is sent, then the server waits for the event before
  sending the rest, so a client can read the first part while the target is still answering.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import h11
import trio

__all__ = ["Answer", "FakeTarget", "Seen"]


@dataclass
class Answer:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("content-type", "application/json")])
    parts: list[bytes] = field(default_factory=lambda: [b'{"ok": true}'])
    #: set by the test to release the parts after the first one
    hold: threading.Event | None = None
    #: seconds to wait before the status line (a target slower than the endpoint's timeout)
    delay: float = 0.0
    chunked: bool = False


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    body_pieces: list[bytes] = field(default_factory=list)
    complete: bool = False

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n == name.lower()]
        return ", ".join(values) if values else None

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


class FakeTarget:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.answer = Answer()
        self.condition = threading.Condition()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._stop: trio.CancelScope | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread = threading.Thread(target=lambda: trio.run(self._serve), daemon=True)

    def __enter__(self) -> FakeTarget:
        self._thread.start()
        with self.condition:
            self.condition.wait_for(lambda: self._token is not None, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None and self._stop is not None:
            self._token.run_sync_soon(self._stop.cancel)
        self._thread.join(timeout=10)
        self._sock.close()

    def wait_for(self, condition, timeout: float = 30.0, what: str = "a condition") -> None:
        with self.condition:
            if not self.condition.wait_for(condition, timeout=timeout):
                raise AssertionError(f"the fake target never saw {what}")

    # -- server ------------------------------------------------------------------------------------
    async def _serve(self) -> None:
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(self._sock.dup()))
        with trio.CancelScope() as scope:
            self._stop = scope
            with self.condition:
                self._token = trio.lowlevel.current_trio_token()
                self.condition.notify_all()
            await trio.serve_listeners(self._handle, [listener])

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                seen = await self._read_request(conn, stream)
                if seen is None:
                    return
                await self._respond(conn, stream)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return
        finally:
            await stream.aclose()

    async def _next(self, conn: h11.Connection, stream: trio.SocketStream) -> object:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
                continue
            return event

    async def _read_request(self, conn: h11.Connection, stream: trio.SocketStream) -> Seen | None:
        event = await self._next(conn, stream)
        if not isinstance(event, h11.Request):
            return None
        seen = Seen(event.method.decode(), event.target.decode("latin-1"),
                    [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in event.headers.raw_items()])
        with self.condition:
            self.requests.append(seen)
            self.condition.notify_all()
        while True:
            event = await self._next(conn, stream)
            if isinstance(event, h11.Data):
                with self.condition:
                    seen.body_pieces.append(bytes(event.data))
                    seen.body += bytes(event.data)
                    self.condition.notify_all()
            elif isinstance(event, h11.EndOfMessage):
                with self.condition:
                    seen.complete = True
                    self.condition.notify_all()
                return seen
            else:
                return None

    async def _respond(self, conn: h11.Connection, stream: trio.SocketStream) -> None:
        answer = self.answer
        if answer.delay:
            await trio.sleep(answer.delay)
        headers = list(answer.headers)
        if answer.chunked:
            headers.append(("transfer-encoding", "chunked"))
        else:
            headers.append(("content-length", str(sum(len(p) for p in answer.parts))))
        await stream.send_all(conn.send(h11.Response(status_code=answer.status, headers=headers)))
        for index, part in enumerate(answer.parts):
            if index == 1 and answer.hold is not None:
                await trio.to_thread.run_sync(answer.hold.wait, abandon_on_cancel=True)
            await stream.send_all(conn.send(h11.Data(data=part)))
        await stream.send_all(conn.send(h11.EndOfMessage()))

