"""Hypercorn's per-connection server with a deadline for the request head (slowloris).

Hypercorn's only timer before a request head is complete is its keep-alive timer
(``keep_alive_timeout``, 75 s here so that load balancers can reuse idle connections): a client that
sends a header byte every few seconds holds a connection and a task that long, and gets no answer.
Its ``read_timeout`` bounds each read, not the head, and would also cut a long stream whose client
sends nothing while it reads. So this subclass of Hypercorn's trio ``TCPServer`` adds:

* **Head deadline** (``general_settings.request_header_timeout``): the head of a connection's first
  request must be complete within it from the accept; a later request's head within it from its
  first byte (the wait between requests is the keep-alive timer's, as before). A client that sent
  part of a head gets ``408`` in the OpenAI envelope with ``Connection: close``; a connection that
  sent nothing is closed without a word (as nginx does). At shutdown, connections waiting for a
  head close at once, as in Hypercorn.
* **Prompt close**: when the client closes an idle keep-alive connection, Hypercorn keeps the socket
  (in ``CLOSE_WAIT``) until its keep-alive timer fires, up to 75 s: descriptors never returned to
  their baseline. Here the connection is closed as soon as the peer's EOF is read.

How it hooks in: Hypercorn's ``idle_task`` runs exactly while the server waits for a request head
(started on accept and after each response, stopped when a head has been parsed), so the subclass
replaces what that task does, and notes when a head's first byte arrives. Hypercorn has no setting
for the per-connection class: :func:`install` swaps the name ``hypercorn.trio.run`` instantiates
(checked against Hypercorn 0.18; ``install`` refuses to run against a layout it does not know).
"""

from __future__ import annotations

from typing import Any

import orjson
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, RawData, Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio import run as hypercorn_trio_run
from hypercorn.trio.tcp_server import TCPServer

from ..config import GeneralSettings
from ..errors import RequestTimeoutError, error_body

__all__ = ["HeadDeadlineTCPServer", "ProxyHypercornConfig", "install", "timeout_response"]


class ProxyHypercornConfig(Config):
    """Hypercorn's config plus the one setting it lacks."""

    request_header_timeout: float = GeneralSettings().request_header_timeout


def timeout_response(message: str) -> bytes:
    """A complete ``408`` HTTP/1.1 response in the OpenAI envelope, closing the connection."""
    body = orjson.dumps(error_body(RequestTimeoutError(message)))
    head = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
    return head + body


class _WatchHeadBytes:
    """Stands in for Hypercorn's protocol object: tells the server when bytes arrive, then passes them on."""

    def __init__(self, inner: Any, server: HeadDeadlineTCPServer) -> None:
        self._inner = inner
        self._server = server

    async def handle(self, event: Any) -> None:
        if isinstance(event, RawData) and event.data:
            self._server._bytes_arrived()
        await self._inner.handle(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class HeadDeadlineTCPServer(TCPServer):
    def __init__(self, app: Any, config: Config, context: Any, state: Any, stream: Any) -> None:
        super().__init__(app, config, context, state, stream)
        self._head_timeout = float(getattr(config, "request_header_timeout", ProxyHypercornConfig.request_header_timeout))
        #: when the head being waited for began (accept time for the first request); None while idle
        self._head_started: float | None = trio.current_time()
        self._head_bytes = False
        self._idle_scope: trio.CancelScope | None = None

    def _bytes_arrived(self) -> None:
        self._head_bytes = True
        if self._head_started is None:   # idle between requests: this byte starts the next head
            self._head_started = trio.current_time()
            if self._idle_scope is not None:
                # the keep-alive wait becomes the head's deadline (a new deadline wakes nobody)
                self._idle_scope.deadline = self._head_started + self._head_timeout

    async def protocol_send(self, event: Any) -> None:
        if isinstance(event, Updated) and event.idle:
            # a response is complete and the connection kept alive: the next head has not begun,
            # unless a pipelining client already sent part of it (h11 holds those bytes)
            connection = getattr(getattr(self.protocol, "protocol", None), "connection", None)
            pending = getattr(connection, "trailing_data", (b"", False))[0]
            self._head_started = trio.current_time() if pending else None
            self._head_bytes = bool(pending)
        await super().protocol_send(event)

    async def _read_data(self) -> None:
        self.protocol = _WatchHeadBytes(self.protocol, self)  # type: ignore[assignment]
        try:
            await super()._read_data()
        finally:
            # the peer closed (or the connection broke): stop waiting for a head that cannot come
            await self.idle_task.stop()

    async def _idle_timeout(self) -> None:
        if self._head_started is None:   # between requests: Hypercorn's keep-alive wait
            deadline = trio.current_time() + self.config.keep_alive_timeout
        else:                            # a head is on its way (or, first request, may be)
            deadline = self._head_started + self._head_timeout
        try:
            with trio.move_on_at(deadline) as self._idle_scope:
                await self.context.terminated.wait()
        finally:
            self._idle_scope = None
        with trio.CancelScope(shield=True):
            if (self._head_bytes and not self.context.terminated.is_set()
                    and isinstance(getattr(self.protocol, "protocol", None), H11Protocol)):
                message = (f"The request headers were not received within {self._head_timeout:g} s "
                           "(general_settings.request_header_timeout).")
                await self.protocol_send(RawData(data=timeout_response(message)))
                await self.protocol_send(Closed())   # FIN after the answer, then close (as Hypercorn's 4xx do)
            else:
                await self._initiate_server_close()


def install() -> None:
    """Make Hypercorn's trio worker serve each connection with :class:`HeadDeadlineTCPServer`."""
    current = getattr(hypercorn_trio_run, "TCPServer", None)
    if current is HeadDeadlineTCPServer:
        return
    if current is not TCPServer:
        raise RuntimeError("hypercorn.trio.run no longer builds connections from TCPServer: "
                           "trioproxy's request-head deadline cannot be installed on this Hypercorn version")
    hypercorn_trio_run.TCPServer = HeadDeadlineTCPServer  # type: ignore[misc]
