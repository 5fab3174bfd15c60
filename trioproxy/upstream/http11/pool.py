"""A lean HTTP/1.1 connection pool on Trio streams: the default transport to OpenAI-compatible upstreams.

Why this exists: under load, httpx + httpcore took about 60 % of the proxy's CPU per request
(building the request, and pool bookkeeping that scans every connection on every request), capping
the proxy near 300 requests/s on one core. A proxy talks to a handful of upstreams with one request
shape (``POST`` a JSON body, read JSON or SSE back), so this package does only that, and does it
with O(1) work per request outside of parsing. The package: ``parser.py`` (the response, no I/O),
this module (connections, the pool, reading a response), ``provider.py`` (the provider interface
on top), ``errors.py`` (the transport errors).

* :class:`Http11Pool` keeps, per origin (scheme, host, port), a LIFO list of idle keep-alive
  connections: acquire is a ``pop()``, release an ``append()``; no scanning. Limits come from
  ``general_settings.http_pool`` (see :meth:`Http11Pool.from_settings`).
* The request head and body go out in one ``send_all``; the response is parsed by ``parser.py``,
  whose ``on_done(reusable)`` tells :class:`Http11Response` whether the connection goes back.
* A connection goes back to the pool only when its response was read to the end and the server did
  not ask to close it. Anything else (an error, a timeout, ``trio.Cancelled``, a stream closed
  before its end) closes the socket at once, synchronously: nothing half-read is ever reused, and
  an abandoned upstream sees its connection close (so it stops generating).
* An idle connection is checked before reuse: if its socket is readable (the server closed it, reset
  it, or sent bytes nobody asked for, such as a ``408``), it is closed and another one is taken.
  If sending the request on a reused connection fails (the server had closed it), the request is
  retried once on a fresh connection: a request that was not completely sent cannot have been
  processed. Once the request was sent, a connection that dies before the answer is a
  :class:`ReadError` and is *not* retried here (the server may have processed it; the router's
  retry policy decides).
* Timeouts are Trio cancel scopes, no threads: connect (``min(timeout, connect_timeout)``, TLS
  handshake included), waiting for a free connection slot (``timeout``), and ``timeout`` between
  two received pieces (sending the request counts with the first), where ``timeout`` is the
  deployment's ``timeout``, or its ``stream_timeout`` for streams. (Resolving a host *name* is
  Trio's ``getaddrinfo``, which runs in a worker thread; IP literals skip it.)

Limits, on purpose: HTTP/1.1 only (no HTTP/2, no pipelining, no ``Upgrade``); no proxy environment
variables (``HTTP(S)_PROXY`` are ignored); no compression (``accept-encoding`` is not sent; a
compressed answer would be passed on as is); no redirects (the provider answers a 3xx with a 502,
``upstream.errors.redirect_error``); no cookies; no authentication in URLs. ``max_connections``
bounds the connections *in use* (requests in flight); idle connections are bounded separately, per
origin, by ``max_keepalive_connections``.
"""

from __future__ import annotations

import math
import os
import ssl
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import trio

from ...config import HttpPoolSettings
from .errors import (
    ConnectError,
    ConnectTimeout,
    LocalProtocolError,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    UnsupportedProtocol,
    WriteError,
)
from .parser import HeadParser
from .response import Http11Response
from .watchdog import ReadWatchdog

__all__ = ["Http11Pool"]

_RECEIVE_SIZE = 65536
#: ``general_settings.http_pool``'s defaults (written once, in ``config/model.py``)
_POOL = HttpPoolSettings()
#: header names the client sets itself (``host`` may be overridden, the others not)
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


class _Stale(Exception):
    """A reused connection broke while the request was sent (so it was not processed): retry."""


# ---------------------------------------------------------------------------------------------
# Connections and the pool
# ---------------------------------------------------------------------------------------------


class _Origin:
    """One (scheme, host, port): its idle connections, oldest first (the right end is the newest)."""

    __slots__ = ("host", "idle", "port", "tls")

    def __init__(self, tls: bool, host: str, port: int) -> None:
        self.tls = tls
        self.host = host
        self.port = port
        self.idle: deque[_Connection] = deque()


class _Target:
    """A parsed URL: where to connect, what to put on the request line and in ``host``."""

    __slots__ = ("host_header", "origin", "path")

    def __init__(self, origin: _Origin, path: str, host_header: str) -> None:
        self.origin = origin
        self.path = path
        self.host_header = host_header


class _Connection:
    __slots__ = ("idle_since", "origin", "plain", "read_deadline", "socket", "stream", "timed_out")

    def __init__(self, stream: trio.abc.Stream, socket: Any, origin: _Origin) -> None:
        self.stream = stream
        self.socket = socket        # the trio socket under ``stream`` (TLS included)
        self.origin = origin
        self.idle_since = 0.0
        #: plain TCP: the body is read straight from the socket (see :meth:`receive`)
        self.plain = isinstance(stream, trio.SocketStream)
        #: while a watched read waits (:meth:`receive_watched`): when it times out (Trio clock)
        self.read_deadline = math.inf
        #: the read watchdog woke a watched read that waited past its deadline
        self.timed_out = False

    def close(self) -> None:
        """Close the socket now (no TLS close_notify, no await: safe under cancellation)."""
        self.socket.close()

    def write_now(self, data: bytes) -> int:
        """Plain TCP: write what the kernel takes at once, without waiting; how many bytes it took."""
        try:
            return os.write(self.socket.fileno(), data)
        except BlockingIOError:
            return 0

    async def receive(self, read_timeout: float) -> bytes:
        """The next bytes (``b""`` at EOF); ReadTimeout if nothing arrives within ``read_timeout``.

        On plain TCP this waits for readability first, then reads the descriptor once: a streamed
        body is read right after the previous piece was relayed, when the next one has almost never
        arrived yet, so Trio's ``recv`` (a read that fails with ``EAGAIN``, the wait, the read again,
        then one more trip through the scheduler) cost a wasted system call, an exception and a
        scheduler round per delta. TLS goes through the ``SSLStream``.
        """
        with trio.move_on_after(read_timeout):
            return await self.receive_unbounded()
        raise ReadTimeout(f"no data from the upstream for {read_timeout:g} s")

    async def receive_watched(self, read_timeout: float, watchdog: ReadWatchdog) -> bytes:
        """:meth:`receive` on plain TCP, its timeout kept by ``watchdog`` instead of a cancel scope
        (``watchdog.py``: why, and the precision it costs)."""
        self.read_deadline = trio.current_time() + read_timeout
        self.timed_out = False      # (a read woken just as its data arrived was not timed out)
        watchdog.watch(self)
        try:
            return await self.receive_unbounded()
        except ReadError:
            if self.timed_out:
                raise ReadTimeout(f"no data from the upstream for {read_timeout:g} s") from None
            raise
        finally:
            self.read_deadline = math.inf
            watchdog.unwatch(self)

    async def receive_unbounded(self) -> bytes:
        """:meth:`receive` within the caller's deadline (no cancel scope of its own)."""
        if self.plain:
            sock = self.socket
            while True:
                try:
                    await trio.lowlevel.wait_readable(sock)
                    return os.read(sock.fileno(), _RECEIVE_SIZE)
                except BlockingIOError:     # a spurious wake-up: wait again
                    continue
                except (OSError, trio.ClosedResourceError) as exc:
                    raise ReadError(f"the connection broke while reading: {exc}") from exc
        try:
            return await self.stream.receive_some(_RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ReadError(f"the connection broke while reading: {exc.__cause__ or exc}") from exc


class Http11Pool:
    """Keep-alive connections per origin, and the HTTP/1.1 exchange on them.

    Create one per process and close it with :meth:`aclose` when the app stops serving.
    ``max_connections`` bounds the connections in use at once (a request waits for a free slot, at
    most its ``read_timeout``); at most ``max_keepalive_connections`` idle connections are kept per
    origin, each for at most ``keepalive_expiry`` seconds.
    """

    def __init__(self, *, max_connections: int = _POOL.max_connections,
                 max_keepalive_connections: int = _POOL.max_keepalive_connections,
                 keepalive_expiry: float = _POOL.keepalive_expiry, connect_timeout: float = _POOL.connect_timeout,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_connections = max_connections
        self.max_keepalive_connections = max_keepalive_connections
        self.keepalive_expiry = keepalive_expiry
        self.connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._slots = trio.Semaphore(max_connections)
        self._origins: dict[tuple[bool, str, int], _Origin] = {}
        self._targets: dict[str, _Target] = {}
        self._closed = False
        #: connections opened so far (for tests and metrics)
        self.connections_opened = 0
        #: keeps the timeouts of streamed responses' reads (Http11Response.read_some)
        self.read_watchdog = ReadWatchdog()

    @classmethod
    def from_settings(cls, settings: HttpPoolSettings | None = None, **kwargs: Any) -> Http11Pool:
        """From ``general_settings.http_pool`` (the defaults are the config's, as for the httpx client)."""
        settings = settings or HttpPoolSettings()
        return cls(max_connections=settings.max_connections,
                   max_keepalive_connections=settings.max_keepalive_connections,
                   keepalive_expiry=settings.keepalive_expiry,
                   connect_timeout=settings.connect_timeout, **kwargs)

    @property
    def closed(self) -> bool:
        """:meth:`aclose` was called (idle connections closed, no new request accepted)."""
        return self._closed

    # -- public ------------------------------------------------------------------------------

    @property
    def idle_connections(self) -> int:
        return sum(len(origin.idle) for origin in self._origins.values())

    @property
    def connections_in_use(self) -> int:
        return self.max_connections - self._slots.value

    async def aclose(self) -> None:
        """Close every idle connection; connections in use are closed when they are released."""
        self._closed = True
        for origin in self._origins.values():
            while origin.idle:
                origin.idle.popleft().close()
        await trio.lowlevel.checkpoint()

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes = b"", *,
                      read_timeout: float, connect_timeout: float | None = None) -> Http11Response:
        """Send one request; return once the response head is in (the body not yet read).

        ``headers`` names must be lower-case; ``host`` (unless given), ``content-length`` and the
        framing are the client's. ``read_timeout`` bounds the wait for a connection slot, sending, and
        the gap between two received pieces; connecting is bounded by ``connect_timeout`` (default:
        the pool's), never more than ``read_timeout``. The caller must read the response to its end or
        ``close()`` it. Raises :class:`TransportError` subclasses (RuntimeError once the pool is closed).
        """
        if self._closed:
            raise RuntimeError("the HTTP pool is closed")
        target = self._targets.get(url)
        if target is None:
            target = self._target(url)
        data = self._encode(method, target, headers, body)
        connect_timeout = min(read_timeout, self.connect_timeout if connect_timeout is None else connect_timeout)

        slots = self._slots
        try:
            slots.acquire_nowait()
        except trio.WouldBlock:
            with trio.move_on_after(read_timeout) as waited:
                await slots.acquire()
            if waited.cancelled_caught:
                raise PoolTimeout(f"no free connection slot within {read_timeout:g} s "
                                  f"(max_connections={self.max_connections})") from None
        conn: _Connection | None = None
        try:
            conn = self._take_idle(target.origin)
            if conn is not None:
                try:
                    return await self._exchange(conn, data, method, read_timeout, reused=True)
                except _Stale:
                    conn.close()
            conn = await self._connect(target.origin, connect_timeout)
            return await self._exchange(conn, data, method, read_timeout, reused=False)
        except BaseException:
            if conn is not None:
                conn.close()
            slots.release()
            raise

    # -- internals ---------------------------------------------------------------------------

    def _target(self, url: str) -> _Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise UnsupportedProtocol(f"unsupported URL scheme {parts.scheme!r} (http and https only)")
        host = parts.hostname
        if not host:
            raise UnsupportedProtocol("the URL has no host")
        tls = scheme == "https"
        default_port = 443 if tls else 80
        try:
            port = parts.port or default_port
        except ValueError as exc:           # a port that is not a number, or out of range
            raise UnsupportedProtocol(f"invalid port in the URL: {exc}") from None
        key = (tls, host, port)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(tls, host, port)
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == default_port else f"{shown}:{port}"
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        target = _Target(origin, path, host_header)
        if len(self._targets) >= 1024:     # URLs come from the config; this only bounds misuse
            self._targets.clear()
        self._targets[url] = target
        return target

    @staticmethod
    def _encode(method: str, target: _Target, headers: Mapping[str, str], body: bytes) -> bytes:
        host = target.host_header
        lines = []
        for name, value in headers.items():
            if name in _FRAMING_HEADERS:
                continue
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
                raise LocalProtocolError(f"invalid character in the request header {name!r}")
            if name == "host":
                host = value
                continue
            lines.append(f"{name}: {value}\r\n")
        head = f"{method} {target.path} HTTP/1.1\r\nhost: {host}\r\n{''.join(lines)}content-length: {len(body)}\r\n\r\n"
        try:
            return head.encode("latin-1") + body
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(f"a request header or the path is not latin-1: {exc}") from None

    def _take_idle(self, origin: _Origin) -> _Connection | None:
        idle = origin.idle
        while idle:
            conn = idle.pop()
            if trio.current_time() - conn.idle_since >= self.keepalive_expiry:
                # the newest idle connection expired, so did every older one
                conn.close()
                while idle:
                    idle.popleft().close()
                return None
            # an idle connection has nothing to read: if it is readable, the server closed or reset
            # it, or sent bytes nobody asked for (which would be taken for the next answer)
            if not conn.socket.is_readable():
                return conn
            conn.close()
        return None

    def _release(self, conn: _Connection) -> None:
        """A connection whose response was read completely, and may be kept alive."""
        if self._closed or self.max_keepalive_connections <= 0:
            conn.close()
            return
        now = trio.current_time()
        conn.idle_since = now
        idle = conn.origin.idle
        idle.append(conn)
        if len(idle) > self.max_keepalive_connections:
            idle.popleft().close()
        expiry = self.keepalive_expiry
        while idle and now - idle[0].idle_since >= expiry:
            idle.popleft().close()

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def _connect(self, origin: _Origin, seconds: float) -> _Connection:
        with trio.move_on_after(seconds):
            try:
                tcp = await trio.open_tcp_stream(origin.host, origin.port)
            except OSError as exc:
                raise ConnectError(f"could not connect to {origin.host}:{origin.port}: {exc}") from exc
            stream: trio.abc.Stream = tcp
            if origin.tls:
                tls = trio.SSLStream(tcp, self._ssl(), server_hostname=origin.host, https_compatible=True)
                try:
                    await tls.do_handshake()
                except trio.BrokenResourceError as exc:
                    tcp.socket.close()
                    raise ConnectError(f"TLS handshake with {origin.host}:{origin.port} failed: "
                                       f"{exc.__cause__ or exc}") from exc
                except BaseException:
                    tcp.socket.close()
                    raise
                stream = tls
            self.connections_opened += 1
            return _Connection(stream, tcp.socket, origin)
        raise ConnectTimeout(f"connecting to {origin.host}:{origin.port} took more than {seconds:g} s")

    async def _exchange(self, conn: _Connection, data: bytes, method: str, read_timeout: float,
                        reused: bool) -> Http11Response:
        """Send the request and read the response head. Raises _Stale only when ``reused``."""
        stream = conn.stream
        received = b""
        if conn.plain:
            # plain TCP: a request nearly always fits the socket's send buffer, so it is written at
            # once (no scheduler round), and the answer is awaited before it is read (no EAGAIN)
            try:
                sent = conn.write_now(data)
            except OSError as exc:
                if reused:
                    raise _Stale() from exc
                raise WriteError(f"the connection broke while sending: {exc}") from exc
            if sent == len(data):
                data = b""
            elif sent:
                reused = False      # part of it is out: no longer safe to retry elsewhere
                data = data[sent:]
        # one deadline for sending (what is left) and the first bytes of the answer (the common case: all of it)
        with trio.move_on_after(read_timeout) as scope:
            if data:
                try:
                    await stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    if reused:
                        raise _Stale() from exc
                    raise WriteError(f"the connection broke while sending: {exc.__cause__ or exc}") from exc
            # the request is out: from here on the server may have processed it, so no retry
            if conn.plain:
                received = await conn.receive_unbounded()   # within this scope's deadline
            else:
                try:
                    received = await stream.receive_some(_RECEIVE_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    raise ReadError(f"the connection broke while reading: {exc.__cause__ or exc}") from exc
        if scope.cancelled_caught:
            raise ReadTimeout(f"no answer from the upstream within {read_timeout:g} s")
        if not received:
            raise ReadError("the upstream closed the connection without sending a response")

        head = HeadParser()
        parsed = head.feed(received)
        while parsed is None:
            received = await conn.receive(read_timeout)
            if not received:
                raise ReadError("the upstream closed the connection in the response head")
            parsed = head.feed(received)
        status, headers, keep_alive, rest = parsed
        return Http11Response(self, conn, method, status, headers, keep_alive, rest, read_timeout)
