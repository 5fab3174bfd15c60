"""Hypercorn's per-connection server, leaner on the hot path and bounded where Hypercorn is not.

This subclass of Hypercorn's trio ``TCPServer`` (installed in place of Hypercorn's own: it has no
setting for the class) changes these things, each measured or needed, none visible to the app:

* **Head deadline** (``general_settings.request_header_timeout``, slowloris): Hypercorn's only timer
  before a request head is complete is its keep-alive timer (75 s here, so that load balancers can
  reuse idle connections), and its ``read_timeout`` bounds each read, not the head (it would also cut
  a long stream whose client sends nothing). Here the head of a connection's first request must be
  complete within the deadline from the accept, a later request's head within it from its first
  byte (the wait between requests is the keep-alive timer's, as before). A client that sent part of
  a head gets ``408`` in the OpenAI envelope with ``Connection: close``; a connection that sent
  nothing is closed without a word (as nginx does). At shutdown, idle connections close at once, as
  in Hypercorn.
* **Prompt close**: when the client closes an idle keep-alive connection, Hypercorn kept the socket
  (in ``CLOSE_WAIT``) until its keep-alive timer fired, up to 75 s. Here it is closed as soon as the
  peer's EOF is read.
* **One idle timer per connection, moved rather than restarted.** Hypercorn stops its idle task when
  a head is parsed and starts a new one after every response (``TrioSingleTask``: a ``trio.Lock``
  and a ``nursery.start`` per request, several scheduler rounds each). Here one watcher task per
  connection waits in a cancel scope whose deadline is moved: infinite while a request is served,
  the keep-alive or head deadline while idle (a deadline change wakes nobody).
* **Writes without a lock and a shielded scope per body chunk.** Hypercorn's ``protocol_send`` takes
  a ``trio.Lock`` and enters a shielded ``CancelScope`` for every write, and ``SocketStream.send_all``
  yields once more after a successful send: about 11 % of the proxy's samples while relaying
  128 streams (bench/README.md). Here a write is first tried synchronously on the socket's descriptor
  (``os.write`` on the non-blocking socket) when no other write is under way (the lock is free): the
  bytes are the same, in the same order, and the call cannot be interleaved with another task's, so
  the lock would protect nothing. Only what the kernel does not take at once (a client that reads
  slowly) goes Hypercorn's way: the lock, a shielded ``send_all``. Every 16th fast write still
  yields to the scheduler, so that a sender that never waits elsewhere cannot starve the others.
* **Reads wait first.** On plain TCP (without Hypercorn's ``read_timeout``, which trioproxy does
  not set) the read loop waits for readability and then reads, instead of a cancel scope and a
  ``recv`` that fails with ``EAGAIN`` between keep-alive requests; and when it ends (EOF, reset)
  the request being served is cancelled through the connection's end (``core/disconnect.py``),
  which spares the app a task per request watching for ``http.disconnect``.
* **A response's head and the start of its body in one write.** Hypercorn writes the head when the
  app sends ``http.response.start`` and the body when it sends ``http.response.body``: two system
  calls and two TCP segments per answer, each write costing ~15 µs of CPU here (bench/README.md,
  "CPU per request"). A head that announces a non-empty ``Content-Length`` is held and written with
  the body's first bytes (h11 cannot end that response without them; any other event, such as the
  close of a response cut short, writes the held head first, so the bytes on the wire are the same).
  A head without a length (a stream), with ``Content-Length: 0`` or a ``1xx`` goes out at once.
* **A client that stops reading no longer holds a graceful shutdown forever.** Hypercorn shields
  its writes from cancellation (a half-written chunk would corrupt the connection), so at the
  graceful deadline a write that a client never takes kept the worker alive indefinitely. Here a
  blocked write keeps its shield until the shutdown's graceful deadline (the deadline Hypercorn puts
  on its connections' nursery when the shutdown begins), then the socket is closed: the write fails,
  the connection ends, and the worker exits on time.

* **Fewer passes over a request's headers, and less per-request bookkeeping** (each measured in
  bench/README.md, "CPU per request"): ``h11_protocol.ProxyH11Protocol`` copies a request's fields
  once (Hypercorn walked them three times, decoding every name) and queues its body without a
  scheduler round per message; the idle timer's deadline is not moved
  when a request starts or ends (the watcher re-checks when it wakes); Hypercorn's ``date`` header
  is rendered once per second (:class:`ProxyHypercornConfig`).

Hypercorn has no setting for the per-connection class nor the HTTP/1.1 protocol class: :func:`install`
swaps the names ``hypercorn.trio.run`` and ``hypercorn.protocol`` instantiate (checked against
Hypercorn 0.18; ``install`` refuses to run against a layout it does not know).
"""

from __future__ import annotations

import errno
import math
import os
from typing import Any

import h11
import hypercorn.protocol as hypercorn_protocol
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, RawData, Updated
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio import run as hypercorn_trio_run
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer

from ..core.direct_body import DIRECT_BODY, ChunkWriter
from ..core.disconnect import CONNECTION_END, ConnectionEnd
from .h11_protocol import ProxyH11Protocol
from .server_config import ProxyHypercornConfig, timeout_response

__all__ = ["HeadDeadlineTCPServer", "ProxyH11Protocol", "ProxyHypercornConfig", "install", "timeout_response"]

#: a fast (synchronous) write yields to the scheduler once per this many, for fairness
_YIELD_EVERY = 16


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


class _IdleTimer:
    """Takes the place of Hypercorn's ``TrioSingleTask`` (``idle_task``) for one connection.

    Hypercorn calls ``restart`` once when the connection starts; the rest (a request begins, a
    response is complete) the server tells the timer directly by moving its deadline.
    """

    def __init__(self, server: HeadDeadlineTCPServer) -> None:
        self._server = server

    async def restart(self, task_group: Any, action: Any) -> None:
        await self._server._start_idle_watch(task_group)

    async def stop(self) -> None:
        self._server._end_idle_watch()


class HeadDeadlineTCPServer(TCPServer):
    def __init__(self, app: Any, config: Config, context: Any, state: Any, stream: Any) -> None:
        super().__init__(app, config, context, state, stream)
        self._head_timeout = float(getattr(config, "request_header_timeout", ProxyHypercornConfig.request_header_timeout))
        #: when the head being waited for began (accept time for the first request); None while idle
        self._head_started: float | None = trio.current_time()
        #: when the connection last became idle (a response complete), for the keep-alive wait
        self._idle_since = self._head_started
        #: the watcher wakes at least this often to compare the real deadline with the clock
        #: (never below 0.5 s, so that a tiny keep-alive setting cannot make it spin while a request is
        #: served; the deadlines stay exact: ``_deadline_set``)
        self._recheck_every = max(0.5, min(self._head_timeout, float(config.keep_alive_timeout)))
        self._head_bytes = False
        #: a request is being served (its head was parsed, its response not complete): no idle timer
        self._busy = False
        #: the idle watcher's scope: its deadline is the idle timer's, or an earlier wake-up
        self._idle_scope: trio.CancelScope | None = None
        self._idle_ended = False
        self.idle_task = _IdleTimer(self)  # type: ignore[assignment]
        #: the scope Hypercorn gives the graceful deadline at shutdown (its connections' nursery)
        self._server_scope: trio.CancelScope | None = None
        #: the raw socket under a plain-TCP stream (None for TLS: every write goes Hypercorn's way)
        self._socket = getattr(stream, "socket", None) if isinstance(stream, trio.SocketStream) else None
        self._fast_writes = 0
        #: a response head whose body must follow, held to go out in one write with the body
        self._held_head: bytes | None = None
        #: the connection's end, which cancels the request being served (core/disconnect.py)
        self._end = ConnectionEnd()

    async def run(self) -> None:
        parent = trio.lowlevel.current_task().parent_nursery
        self._server_scope = parent.cancel_scope if parent is not None else None
        # every task Hypercorn starts for this connection's requests inherits this context
        CONNECTION_END.set(self._end)
        DIRECT_BODY.set(self.chunk_writer)
        await super().run()

    # -- the idle timer --------------------------------------------------------------------------
    def _idle_deadline(self) -> float:
        """When the connection's idle timer really expires (infinite while a request is served)."""
        if self._busy:
            return math.inf
        if self._head_started is None:   # between requests: the keep-alive wait
            return self._idle_since + self.config.keep_alive_timeout
        return self._head_started + self._head_timeout   # a head is on its way (or, first request, may be)

    def _armed_deadline(self) -> float:
        """The watcher's next wake-up: the real deadline, or sooner.

        The watcher is not told when a request starts (moving a cancel scope's deadline three times
        per request was ~2 % of the proxy's CPU per request, bench/README.md "CPU per request"):
        while a request is served it sleeps until this wake-up, compares the real deadline with the
        clock and sleeps again. A change that sets a deadline (the keep-alive wait begins, a head
        begins) moves the watcher's only when it would wake too late (:meth:`_deadline_set`), which
        the wake-up at most ``min(keep-alive, head timeout)`` away avoids in the common case: a
        connection serving requests back to back wakes its watcher about once per that period
        (10 s by default), not once per request."""
        horizon = trio.current_time() + self._recheck_every
        real = self._idle_deadline()
        return real if real < horizon else horizon

    def _deadline_set(self, deadline: float) -> None:
        """A new real deadline: wake the watcher earlier only if it would sleep past it."""
        scope = self._idle_scope
        if scope is not None and scope.deadline > deadline:
            scope.deadline = deadline

    async def _start_idle_watch(self, task_group: Any) -> None:
        if self._idle_scope is None and not self._idle_ended:
            await task_group._nursery.start(self._watch_idle)

    def _end_idle_watch(self) -> None:
        """The connection is over (the peer closed, or it broke): stop waiting for a head that cannot come."""
        self._idle_ended = True
        if self._idle_scope is not None:
            self._idle_scope.cancel()

    async def _watch_idle(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        scope = self._idle_scope = trio.CancelScope(deadline=self._armed_deadline())
        task_status.started()
        try:
            while True:
                with scope:
                    await self.context.terminated.wait()
                if (scope.cancelled_caught and not self._idle_ended and not self.context.terminated.is_set()
                        and self._idle_deadline() > trio.current_time()):
                    # woken before the real deadline (a request served meanwhile, _armed_deadline)
                    scope = self._idle_scope = trio.CancelScope(deadline=self._armed_deadline())
                    continue
                break
        finally:
            self._idle_scope = None
        if self._idle_ended or self._busy:
            # the connection ended, or the shutdown began while a request is served: Hypercorn closes
            # the connection after that response (it does not recycle a connection once terminated)
            return
        with trio.CancelScope(shield=True):
            if (self._head_bytes and not self.context.terminated.is_set()
                    and isinstance(getattr(self.protocol, "protocol", None), H11Protocol)):
                message = (f"The request headers were not received within {self._head_timeout:g} s "
                           "(general_settings.request_header_timeout).")
                await self.protocol_send(RawData(data=timeout_response(message)))
                await self.protocol_send(Closed())   # FIN after the answer, then close (as Hypercorn's 4xx do)
            else:
                await self._initiate_server_close()

    def _bytes_arrived(self) -> None:
        self._head_bytes = True
        if self._head_started is None and not self._busy:   # idle between requests: this byte starts the next head
            self._head_started = now = trio.current_time()
            self._deadline_set(now + self._head_timeout)   # the keep-alive wait becomes the head's deadline

    async def _read_data(self) -> None:
        self.protocol = _WatchHeadBytes(self.protocol, self)  # type: ignore[assignment]
        try:
            if self._socket is not None and not self.config.read_timeout:
                await self._read_plain()
            else:
                await super()._read_data()
        finally:
            self._end_idle_watch()
            self._end.ended()   # the client is gone: cancel the request it was waiting for

    async def _read_plain(self) -> None:
        """Hypercorn's read loop on plain TCP without a ``read_timeout``: wait for readability, then read.

        Hypercorn's ``receive_some`` under a ``fail_after`` enters a cancel scope per read and tries
        ``recv`` first, which on a keep-alive connection between requests fails with ``EAGAIN`` (a
        wasted system call and an exception) before it waits and reads again. The same bytes reach
        the protocol in the same order; the end is the same too: EOF, a reset or a closed socket."""
        sock = self._socket
        while True:
            fd = sock.fileno()
            if fd < 0:   # closed by the server (an error answer, shutdown): Hypercorn's ClosedResourceError
                break
            try:
                await trio.lowlevel.wait_readable(fd)
                if sock.fileno() != fd:   # closed while this task waited to run: the number may be reused
                    break
                data = os.read(fd, MAX_RECV)
            except BlockingIOError:
                continue
            except (trio.ClosedResourceError, trio.BrokenResourceError, OSError):
                break
            await self.protocol.handle(RawData(data))
            if not data:
                break
        await self.protocol.handle(Closed())

    # -- writing ---------------------------------------------------------------------------------
    async def protocol_send(self, event: Any) -> None:
        if type(event) is RawData:
            data = event.data
            if self._held_head is not None:
                data = self._held_head + data
                self._held_head = None
            elif _body_must_follow(data):
                self._held_head = data   # written with the body's first bytes (module docstring)
                return
            await self._write(data)
            return
        if self._held_head is not None:   # anything else (the end, a close) goes after the head
            head, self._held_head = self._held_head, None
            await self._write(head)
        if isinstance(event, Updated):
            if event.idle:
                # a response is complete and the connection kept alive: the next head has not begun,
                # unless a pipelining client already sent part of it (h11 holds those bytes)
                connection = getattr(getattr(self.protocol, "protocol", None), "connection", None)
                pending = getattr(connection, "trailing_data", (b"", False))[0]
                now = trio.current_time()
                self._head_started = now if pending else None
                self._idle_since = now
                self._head_bytes = bool(pending)
                self._busy = False
                if self._idle_scope is None:
                    await self._start_idle_watch(self._task_group)
                else:
                    self._deadline_set(self._idle_deadline())
            else:   # a request began: the watcher, when it wakes, sees it (_armed_deadline)
                self._busy = True
        else:
            await super().protocol_send(event)

    def chunk_writer(self) -> ChunkWriter | None:
        """A writer of the current response's body chunks, past Hypercorn and h11 (``core/direct_body.py``).

        Only for an HTTP/1.1 response whose chunked body is in progress (h11 sent its head and
        frames the body with its ``ChunkedWriter``), on plain TCP; ``None`` otherwise, and the app
        keeps sending ``http.response.body`` messages. The writer frames each chunk as h11 does and
        writes it with :meth:`_write` (the same bytes, the same slow-client and shutdown handling).
        Once the connection broke or the request's stream was closed (the client left), a chunk is
        dropped: the request is being cancelled by the connection's end.
        """
        protocol = getattr(self.protocol, "protocol", None)
        if self._socket is None or not isinstance(protocol, H11Protocol):
            return None
        connection = protocol.connection
        stream = protocol.stream
        if (stream is None or type(connection) is not h11.Connection or connection.our_state is not h11.SEND_BODY
                or type(getattr(connection, "_writer", None)).__name__ != "ChunkedWriter"):   # h11's framing
            return None
        write = self._write

        async def write_chunk(data: bytes) -> None:
            if protocol.stream is not stream or connection.our_state is not h11.SEND_BODY or self._end.is_over:
                await trio.lowlevel.checkpoint()   # gone: the connection's end cancels the request here
                return
            if data:
                await write(b"%x\r\n%b\r\n" % (len(data), data))

        return write_chunk

    async def _write(self, data: bytes) -> None:
        if not data:    # h11 frames an end of message with content-length as no bytes at all
            return
        sock = self._socket
        if sock is not None and not self.send_lock.locked():
            fd = sock.fileno()
            if fd < 0:
                await self._peer_gone()
                return
            try:
                sent = os.write(fd, data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                if exc.errno in (errno.EINTR, errno.ENOBUFS):
                    sent = 0
                else:   # EPIPE, ECONNRESET…: the peer is gone (Hypercorn's send_all would say Broken)
                    await self._peer_gone()
                    return
            if sent == len(data):
                self._fast_writes += 1
                if self._fast_writes >= _YIELD_EVERY:
                    self._fast_writes = 0
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return
            data = memoryview(data)[sent:]
        await self._write_blocking(data)

    async def _write_blocking(self, data: bytes | memoryview) -> None:
        """Hypercorn's write (the lock, a shielded ``send_all``), with the shield lifted at the graceful deadline."""
        broken = False
        async with self.send_lock:
            with trio.CancelScope(shield=True) as scope:
                watcher = self._lift_shield_at_graceful_deadline(scope)
                try:
                    await self.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    broken = True
                finally:
                    if watcher is not None:
                        watcher.cancel()
            if scope.cancelled_caught:
                # the graceful deadline passed and the client never took these bytes: close the socket
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(self.stream)
                broken = True
        if broken:
            await self._peer_gone()

    async def _peer_gone(self) -> None:
        """A write found the connection broken: Hypercorn tells the request (``http.disconnect``), and
        the connection's end cancels it, as when the read loop sees the break."""
        self._end.ended()
        await self.protocol.handle(Closed())

    def _lift_shield_at_graceful_deadline(self, scope: trio.CancelScope) -> trio.CancelScope | None:
        """Give ``scope`` the graceful deadline once the shutdown begins; returns the watcher's scope."""
        if self.context.terminated.is_set():
            scope.deadline = self._graceful_deadline()
            return None
        watcher = trio.CancelScope()
        self._task_group.spawn(self._wait_for_shutdown, scope, watcher)
        return watcher

    async def _wait_for_shutdown(self, scope: trio.CancelScope, watcher: trio.CancelScope) -> None:
        with watcher:
            await self.context.terminated.wait()
            scope.deadline = self._graceful_deadline()

    def _graceful_deadline(self) -> float:
        deadline = self._server_scope.deadline if self._server_scope is not None else math.inf
        if math.isinf(deadline):   # not set yet (it is set right after "terminated"): the same figure
            deadline = trio.current_time() + self.config.graceful_timeout
        return deadline


def _body_must_follow(data: bytes) -> bool:
    """``data`` is a final response head announcing a non-empty ``Content-Length`` body.

    Only then is the head held for the body's first write: h11 will not end that response without
    body bytes, so the next write (or the close of a response cut short) is sure to come. A head
    without a length (chunked: a stream whose first chunk may take long), with ``0``, or a ``1xx``
    goes out at once, as before."""
    if not data.startswith(b"HTTP/1.1 ") or data[9:10] == b"1" or not data.endswith(b"\r\n\r\n"):
        return False
    # the apps here write lower-case names: look for that first (lower-casing the whole head for
    # every answer was most of this function's ~0.9 % of the proxy's CPU per request)
    at = data.find(b"\r\ncontent-length:")
    if at < 0:
        data = data.lower()
        at = data.find(b"\r\ncontent-length:")
        if at < 0:
            return False
    value = data[at + 17:data.find(b"\r\n", at + 17)].strip()
    return value.isdigit() and int(value) > 0


def install() -> None:
    """Make Hypercorn's trio worker serve each connection with :class:`HeadDeadlineTCPServer`, and
    HTTP/1.1 with :class:`ProxyH11Protocol`."""
    current = getattr(hypercorn_trio_run, "TCPServer", None)
    if current is not HeadDeadlineTCPServer:
        if current is not TCPServer:
            raise RuntimeError("hypercorn.trio.run no longer builds connections from TCPServer: "
                               "trioproxy's request-head deadline cannot be installed on this Hypercorn version")
        hypercorn_trio_run.TCPServer = HeadDeadlineTCPServer  # type: ignore[misc]
    protocol = getattr(hypercorn_protocol, "H11Protocol", None)
    if protocol is ProxyH11Protocol:
        return
    if protocol is not H11Protocol:
        raise RuntimeError("hypercorn.protocol no longer builds HTTP/1.1 connections from H11Protocol: "
                           "trioproxy's protocol cannot be installed on this Hypercorn version")
    hypercorn_protocol.H11Protocol = ProxyH11Protocol  # type: ignore[misc]
