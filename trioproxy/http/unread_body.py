"""A keep-alive connection is closed only with ``Connection: close``, whichever route answered early.

Hypercorn (``protocol/h11.py``, ``_maybe_recycle``) reuses an HTTP/1.1 connection after a response
only when h11 has received the whole request; when the app answered before the last byte of the
body arrived, Hypercorn closes the connection right after the response, without saying so in it.
A client that already reuses the connection for its next request (``httpx``, ``openai``) then
reads ``Server disconnected without sending a response``. The body arrives after the head when the
client writes it separately (``httpx`` does) or TCP splits it; any route that answers without
reading its body — a 404/405, a view that ignores the body, a refusal — hits this now and then.

:class:`UnreadBodyGuard` wraps ``receive``/``send`` for every HTTP/1.1 request with a body (the
one entry, ``asgi.ProxyASGI``) and watches whether the app received the body's last message. When
the response starts before that:

* a body of at most :data:`DRAINABLE_BODY` bytes (by its ``Content-Length``) is received and
  dropped before the response's last message goes out (within ``request_body_timeout``), so the
  connection stays usable for the next request;
* a bigger or chunked body gets ``Connection: close`` on the response, so the client knows not to
  reuse the connection (reading and dropping megabytes nobody asked for is not worth a connection).

A client that sends its small body slower than ``request_body_timeout`` still has its connection
closed after the answer (nothing else is possible once the head went out without ``close``).

Requests without a body (no ``Content-Length`` or ``0``, no ``Transfer-Encoding``) are not wrapped:
h11 has their whole request before the app runs, so the hot path pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

__all__ = ["DRAINABLE_BODY", "UnreadBodyGuard", "guard_unread_body", "receive_nowait_of"]

#: a body the app left unread is received and dropped up to this size (declared); beyond, the answer closes
DRAINABLE_BODY = 64 * 1024


def guard_unread_body(scope: dict[str, Any], receive: Any, send: Any, body_timeout: float) -> tuple[Any, Any]:
    """``(receive, send)`` for the app: the originals when the request has no body, else guarded."""
    if scope.get("http_version") != "1.1":
        return receive, send   # HTTP/1.0 closes anyway; HTTP/2 streams end without closing the connection
    declared: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = int(value) if value.isdigit() else None
            if declared is None:
                chunked = True   # not a length h11 would accept anyway: treat as unknown
        elif name == b"transfer-encoding":
            chunked = True
    if not chunked and not declared:
        return receive, send
    guard = UnreadBodyGuard(receive, send, None if chunked else declared, body_timeout)
    return guard.receive, guard.send


def receive_nowait_of(receive: Any) -> Callable[[], dict[str, Any]] | None:
    """The form of an ASGI ``receive`` that takes a queued message without waiting, if it has one.

    Hypercorn's ``receive`` is a Trio memory channel's (``MemoryReceiveChannel.receive``), whose
    ``receive_nowait`` raises ``trio.WouldBlock`` when nothing is queued. A small request body is
    nearly always queued by the time the app reads it; taking it without waiting spares the read
    its own cancel scope (the body deadline), ~1 % of the proxy's CPU per request (bench/README.md,
    "CPU per request"). ``None`` for any other ``receive`` (other servers, test doubles)."""
    if getattr(receive, "__name__", "") != "receive":
        return None
    owner = getattr(receive, "__self__", None)
    kind = type(owner)   # exact types first: isinstance against Trio's generic class is an ABC check
    if kind is UnreadBodyGuard or (kind is not trio.MemoryReceiveChannel and isinstance(owner, UnreadBodyGuard)):
        return owner.receive_nowait if owner._receive_nowait is not None else None  # type: ignore[union-attr]
    if kind is trio.MemoryReceiveChannel or isinstance(owner, trio.MemoryReceiveChannel):
        return owner.receive_nowait  # type: ignore[union-attr,no-any-return]
    return None


class UnreadBodyGuard:
    """Tracks the request body's last message; drains it or closes the connection (module docstring)."""

    def __init__(self, receive: Any, send: Any, declared: int | None, body_timeout: float) -> None:
        self._receive = receive
        self._receive_nowait = receive_nowait_of(receive)
        self._send = send
        self._declared = declared
        self._body_timeout = body_timeout
        #: the last body message (or a disconnect) went to the app
        self._received_all = trio.Event()
        #: drain the body before the response's last message (decided when the response starts)
        self._drain = False

    def receive_nowait(self) -> dict[str, Any]:
        """:meth:`receive` without waiting (``trio.WouldBlock`` when nothing is queued): see
        :func:`receive_nowait_of`, which only offers it when the server's ``receive`` has a form."""
        message: dict[str, Any] = self._receive_nowait()  # type: ignore[misc]
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self._received_all.set()
        return message

    async def receive(self) -> dict[str, Any]:
        message: dict[str, Any] = await self._receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self._received_all.set()
        return message

    async def send(self, message: dict[str, Any]) -> None:
        if not self._received_all.is_set():
            kind = message["type"]
            if kind == "http.response.start":
                headers = message.get("headers") or []
                if not any(name.lower() == b"connection" and b"close" in value.lower() for name, value in headers):
                    if self._declared is not None and self._declared <= DRAINABLE_BODY:
                        self._drain = True
                    else:
                        message = dict(message)
                        message["headers"] = [*headers, (b"connection", b"close")]
            elif kind == "http.response.body" and self._drain and not message.get("more_body", False):
                await self._drain_rest()
        await self._send(message)

    async def _drain_rest(self) -> None:
        """Receive and drop what is left of the body, until its last message, a disconnect or the timeout.

        Another task (quart-trio's message reader, the fast path's disconnect watcher) may be
        receiving too; whichever of us gets the last message, :attr:`_received_all` is set."""
        async def receive_rest() -> None:
            while True:
                await self.receive()

        with trio.move_on_after(self._body_timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(receive_rest)
                await self._received_all.wait()
                nursery.cancel_scope.cancel()
