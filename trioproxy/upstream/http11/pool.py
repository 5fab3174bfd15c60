"""A lean HTTP/1.1 client on Trio streams, and the default provider for OpenAI-compatible upstreams.

Why this exists: under load, httpx + httpcore took about 60 % of the proxy's CPU per request
(building the request, and pool bookkeeping that scans every connection on every request), capping
the proxy near 300 requests/s on one core. A proxy talks to a handful of upstreams with one request
shape (``POST`` a JSON body, read JSON or SSE back), so this module does only that, and does it with
O(1) work per request outside of parsing:

* :class:`Http11Pool` keeps, per origin (scheme, host, port), a LIFO list of idle keep-alive
  connections: acquire is a ``pop()``, release an ``append()``; no scanning. Limits come from
  ``general_settings.http_pool`` (see :meth:`Http11Pool.from_settings`).
* The request head and body go out in one ``send_all``; the response head and body are parsed by
  hand (status line, lower-cased headers, ``Content-Length``, ``chunked`` with trailers, or
  read-until-close), typically without copying the body more than once.
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
* A response that has both ``Transfer-Encoding`` and ``Content-Length``, or ``Transfer-Encoding`` in
  HTTP/1.0, is decoded by ``Transfer-Encoding`` and its connection is not reused (RFC 9112 6.1, 6.3).
* Timeouts are Trio cancel scopes, no threads: connect (``min(timeout, connect_timeout)``, TLS
  handshake included), waiting for a free connection slot (``timeout``), and ``timeout`` between
  two received pieces (sending the request counts with the first), where ``timeout`` is the
  deployment's ``timeout``, or its ``stream_timeout`` for streams. (Resolving a host *name* is
  Trio's ``getaddrinfo``, which runs in a worker thread; IP literals skip it.)

:class:`Http11Provider` implements the provider interface of ``base.py`` on top of the pool, with
the error semantics of ``openai_compat.py`` (shared through ``common.py``).

Limits, on purpose: HTTP/1.1 only (no HTTP/2, no pipelining, no ``Upgrade``); no proxy environment
variables (``HTTP(S)_PROXY`` are ignored); no compression (``accept-encoding`` is not sent; a
compressed answer would be passed on as is); no redirects (the provider answers a 3xx with a 502,
``common.redirect_error``); no cookies; no authentication in URLs. ``max_connections`` bounds the connections *in use* (requests
in flight); idle connections are bounded separately, per origin, by ``max_keepalive_connections``.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import trio

from ..base import UpstreamResponse
from ..errors import (
    MAX_ERROR_BODY,
    check_answer_body,
    connection_error,
    failure_error,
    redirect_error,
    timeout_error,
    upstream_error,
)

if TYPE_CHECKING:
    from ...config import Deployment
    from ...errors import ProxyError
    from ...masking import SecretScrubber

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "Http11Pool",
    "Http11Provider",
    "Http11Response",
    "Http11Stream",
    "LocalProtocolError",
    "PoolTimeout",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "TransportError",
    "UnsupportedProtocol",
    "WriteError",
]

#: the most a response head (status line, headers) may take; more is a protocol error
MAX_HEAD_BYTES = 64 * 1024
#: the most a chunk-size line may take
_MAX_CHUNK_LINE = 4096
_RECEIVE_SIZE = 65536
_DEFAULTS = {"max_connections": 1000, "max_keepalive_connections": 200, "keepalive_expiry": 60.0,
             "connect_timeout": 10.0}
#: header names the client sets itself (``host`` may be overridden, the others not)
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


# ---------------------------------------------------------------------------------------------
# Transport errors (the names are httpx's, so logs and ``router.is_retryable`` read the same)
# ---------------------------------------------------------------------------------------------


class TransportError(Exception):
    """Base of this client's errors; the provider maps each to a ProxyError."""


class ConnectError(TransportError):
    """Could not open the connection (refused, unreachable, DNS, TLS handshake)."""


class ConnectTimeout(TransportError):
    """Connecting (TLS handshake included) took longer than the connect timeout."""


class PoolTimeout(TransportError):
    """No connection slot became free in time (``max_connections`` in use)."""


class ReadTimeout(TransportError):
    """Nothing arrived for ``timeout`` seconds (or sending the request took that long)."""


class ReadError(TransportError):
    """The connection broke (reset, EOF) before the response was complete."""


class WriteError(TransportError):
    """The connection broke while the request was sent."""


class RemoteProtocolError(TransportError):
    """The upstream's bytes are not valid HTTP/1.1 (or exceed a limit, e.g. the head size)."""


class UnsupportedProtocol(TransportError):
    """The URL is not ``http://`` or ``https://`` with a host."""


class LocalProtocolError(TransportError):
    """The request cannot be sent as given (e.g. a line break in a header value)."""


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
    __slots__ = ("idle_since", "origin", "socket", "stream")

    def __init__(self, stream: trio.abc.Stream, socket: Any, origin: _Origin) -> None:
        self.stream = stream
        self.socket = socket        # the trio socket under ``stream`` (TLS included)
        self.origin = origin
        self.idle_since = 0.0

    def close(self) -> None:
        """Close the socket now (no TLS close_notify, no await: safe under cancellation)."""
        self.socket.close()

    async def receive(self, read_timeout: float) -> bytes:
        """The next bytes (``b""`` at EOF); ReadTimeout if nothing arrives within ``read_timeout``."""
        with trio.move_on_after(read_timeout):
            try:
                return await self.stream.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ReadError(f"the connection broke while reading: {exc.__cause__ or exc}") from exc
        raise ReadTimeout(f"no data from the upstream for {read_timeout:g} s")


class Http11Pool:
    """Keep-alive connections per origin, and the HTTP/1.1 exchange on them.

    Create one per process and close it with :meth:`aclose` when the app stops serving.
    ``max_connections`` bounds the connections in use at once (a request waits for a free slot, at
    most its ``read_timeout``); at most ``max_keepalive_connections`` idle connections are kept per
    origin, each for at most ``keepalive_expiry`` seconds.
    """

    def __init__(self, *, max_connections: int = 1000, max_keepalive_connections: int = 200,
                 keepalive_expiry: float = 60.0, connect_timeout: float = 10.0,
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

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None, **kwargs: Any) -> Http11Pool:
        """From ``general_settings.http_pool`` (missing keys take the same defaults as the httpx client)."""
        values = {**_DEFAULTS, **(settings or {})}
        return cls(max_connections=int(values["max_connections"]),
                   max_keepalive_connections=int(values["max_keepalive_connections"]),
                   keepalive_expiry=float(values["keepalive_expiry"]),
                   connect_timeout=float(values["connect_timeout"]), **kwargs)

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
        # one deadline for sending and the first bytes of the answer (the common case: all of it)
        with trio.move_on_after(read_timeout) as scope:
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                if reused:
                    raise _Stale() from exc
                raise WriteError(f"the connection broke while sending: {exc.__cause__ or exc}") from exc
            # the request is out: from here on the server may have processed it, so no retry
            try:
                received = await stream.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ReadError(f"the connection broke while reading: {exc.__cause__ or exc}") from exc
        if scope.cancelled_caught:
            raise ReadTimeout(f"no answer from the upstream within {read_timeout:g} s")
        if not received:
            raise ReadError("the upstream closed the connection without sending a response")

        buf = received
        scanned = 0
        while True:
            end = buf.find(b"\r\n\r\n", scanned)
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    raise RemoteProtocolError(f"the response head exceeds {MAX_HEAD_BYTES} bytes")
                received = await conn.receive(read_timeout)
                if not received:
                    raise ReadError("the upstream closed the connection in the response head")
                scanned = max(0, len(buf) - 3)
                buf += received
                continue
            if end > MAX_HEAD_BYTES:
                raise RemoteProtocolError(f"the response head exceeds {MAX_HEAD_BYTES} bytes")
            status, headers, keep_alive = _parse_head(buf[:end])
            buf = buf[end + 4:]
            if 100 <= status < 200 and status != 101:
                scanned = 0                 # an interim answer (100 Continue, 103 Early Hints): skip
                continue
            return Http11Response(self, conn, method, status, headers, keep_alive, buf, read_timeout)


def _parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """Status, lower-cased headers (repeats joined with ", "), and whether keep-alive is allowed."""
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0]
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit() or rest[3:4] not in ("", " "):
        raise RemoteProtocolError("the upstream's status line is not HTTP/1.x")
    if not code.isascii():          # str.isdigit() also accepts "²" and other non-ASCII digits
        raise RemoteProtocolError("the upstream's status line is not HTTP/1.x")
    status = int(code)
    headers: dict[str, str] = {}
    last = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if last is None:
                raise RemoteProtocolError("a header continuation line without a header")
            headers[last] = f"{headers[last]} {line.strip()}"
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise RemoteProtocolError("a malformed header line in the response")
        name = name.lower()
        value = value.strip()
        if name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
        last = name
    connection = headers.get("connection")
    if version == "HTTP/1.1":
        keep_alive = connection is None or "close" not in _tokens(connection)
    else:
        keep_alive = connection is not None and "keep-alive" in _tokens(connection)
    if "transfer-encoding" in headers and ("content-length" in headers or version != "HTTP/1.1"):
        keep_alive = False          # faulty framing (RFC 9112 6.1, 6.3): decode, then close
    return status, headers, keep_alive


def _tokens(value: str) -> list[str]:
    return [token.strip().lower() for token in value.split(",")]


# ---------------------------------------------------------------------------------------------
# The response
# ---------------------------------------------------------------------------------------------

_NONE, _LENGTH, _CHUNKED, _CLOSE = range(4)
# chunked decoder states
_SIZE, _DATA, _DATA_END, _TRAILER = range(4)
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class Http11Response:
    """A response whose head is in; the body is read with :meth:`read_some` / :meth:`aiter_bytes`.

    The connection goes back to the pool as soon as the body was read to its end (if the server
    allows keep-alive). :meth:`close` before that closes the socket. Any error or cancellation
    while reading closes it too.
    """

    __slots__ = ("_aborted", "_buf", "_chunk_left", "_chunk_state", "_conn", "_done", "_keep_alive",
                 "_mode", "_pool", "_remaining", "_timeout", "headers", "status")

    def __init__(self, pool: Http11Pool, conn: _Connection, method: str, status: int,
                 headers: dict[str, str], keep_alive: bool, buf: bytes, timeout: float) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self.status = status
        self.headers = headers
        self._keep_alive = keep_alive
        self._buf = buf
        self._timeout = timeout
        self._done = False
        self._aborted = False
        self._remaining = 0
        self._chunk_state = _SIZE
        self._chunk_left = 0
        transfer_encoding = headers.get("transfer-encoding")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._mode = _NONE
        elif transfer_encoding is not None:
            if _tokens(transfer_encoding)[-1] == "chunked":
                self._mode = _CHUNKED
            else:
                self._mode = _CLOSE
        elif "content-length" in headers:
            self._mode = _LENGTH
            self._remaining = _content_length(headers["content-length"])
        else:
            self._mode = _CLOSE
        if self._mode == _CLOSE or status == 101:
            self._keep_alive = False
        if self._mode == _NONE or (self._mode == _LENGTH and self._remaining == 0):
            self._finish()

    @property
    def done(self) -> bool:
        """The body was read to its end, or the response was closed."""
        return self._done

    async def read_some(self) -> bytes | None:
        """The next piece of the decoded body (never empty), or None at its end."""
        if self._done:
            if self._aborted:
                raise ReadError("the response was closed before its end")
            return None
        try:
            while True:
                piece = self._decode()
                if self._done:
                    return piece or None
                if piece:
                    return piece
                conn = self._conn
                assert conn is not None
                received = await conn.receive(self._timeout)
                if not received:
                    if self._mode != _CLOSE:
                        raise ReadError("the upstream closed the connection before the end of the body")
                    self._finish()
                    return None
                self._buf = self._buf + received if self._buf else received
        except BaseException:
            self._abort()
            raise

    async def aread(self, limit: int | None = None) -> bytes:
        """The whole (rest of the) body; with ``limit``, stop (and close) once more than that arrived."""
        pieces = []
        size = 0
        while (piece := await self.read_some()) is not None:
            pieces.append(piece)
            size += len(piece)
            if limit is not None and size > limit:
                self.close()
                break
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The decoded body as it arrives (chunk payloads, not chunk framing)."""
        try:
            while (piece := await self.read_some()) is not None:
                yield piece
        finally:
            if not self._done:
                self._abort()

    def close(self) -> None:
        """Abandon the rest of the body (closes the socket); no-op once the body was read."""
        if not self._done:
            self._abort()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    # -- internals ---------------------------------------------------------------------------

    def _finish(self) -> None:
        """The body is complete: the connection goes back to the pool, or is closed."""
        self._done = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        pool = self._pool
        pool._slots.release()
        if self._keep_alive and not self._buf:
            pool._release(conn)
        else:
            conn.close()

    def _abort(self) -> None:
        self._done = True
        self._aborted = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.close()
        self._pool._slots.release()

    def _decode(self) -> bytes:
        """Consume what the buffer holds; return the body bytes in it. Sets the end when seen."""
        mode = self._mode
        if mode == _LENGTH:
            buf = self._buf
            if not buf:
                return b""
            remaining = self._remaining
            if len(buf) <= remaining:
                self._buf = b""
                self._remaining = remaining - len(buf)
                piece = buf
            else:
                piece = buf[:remaining]
                self._buf = buf[remaining:]   # bytes past the body: the connection is not reused
                self._remaining = 0
            if self._remaining == 0:
                self._finish()
            return piece
        if mode == _CHUNKED:
            return self._decode_chunked()
        if mode == _CLOSE:
            piece, self._buf = self._buf, b""
            return piece
        return b""

    def _decode_chunked(self) -> bytes:
        buf = self._buf
        size = len(buf)
        pos = 0
        out: list[bytes] = []
        state = self._chunk_state
        left = self._chunk_left
        while pos < size:
            if state == _DATA:
                take = min(left, size - pos)
                out.append(buf[pos:pos + take] if (pos or take != size) else buf)
                pos += take
                left -= take
                if not left:
                    state = _DATA_END
            elif state == _DATA_END:
                if size - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise RemoteProtocolError("chunk data not followed by CRLF")
                pos += 2
                state = _SIZE
            elif state == _SIZE:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if size - pos > _MAX_CHUNK_LINE:
                        raise RemoteProtocolError("a chunk-size line is too long")
                    break
                line = buf[pos:eol].split(b";", 1)[0].strip()
                pos = eol + 2
                if not line or line.strip(_HEX_DIGITS):
                    raise RemoteProtocolError("an invalid chunk size")
                left = int(line, 16)
                state = _DATA if left else _TRAILER
            else:  # _TRAILER: header lines until an empty one
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if size - pos > MAX_HEAD_BYTES:
                        raise RemoteProtocolError(f"the chunked trailer exceeds {MAX_HEAD_BYTES} bytes")
                    break
                empty = eol == pos
                pos = eol + 2
                if empty:
                    self._buf = buf[pos:]
                    self._chunk_state = state
                    self._finish()
                    return b"".join(out)
        self._buf = buf[pos:] if pos < size else b""
        self._chunk_state = state
        self._chunk_left = left
        if len(out) == 1:
            return out[0]
        return b"".join(out)


def _content_length(value: str) -> int:
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1:
        raise RemoteProtocolError("conflicting Content-Length headers")
    (only,) = values
    if not (only.isascii() and only.isdigit()):
        raise RemoteProtocolError("an invalid Content-Length")
    return int(only)


# ---------------------------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------------------------


def _map(exc: TransportError, deployment: Deployment) -> ProxyError:
    """This client's errors → the same proxy errors (and messages) as the httpx provider's."""
    if isinstance(exc, ConnectTimeout | PoolTimeout):
        return timeout_error(deployment, connecting=True)
    if isinstance(exc, ReadTimeout):
        return timeout_error(deployment, connecting=False)
    if isinstance(exc, RemoteProtocolError):
        return connection_error(deployment, exc, str(exc))
    if isinstance(exc, ConnectError | ReadError | WriteError):
        return connection_error(deployment, exc)
    return failure_error(deployment, exc)


class Http11Stream:
    """An open streamed answer (2xx). The caller must ``aclose()`` it on every path."""

    __slots__ = ("_deployment", "_response", "headers", "status")

    #: OpenAI-compatible servers end every stream with ``data: [DONE]`` (see ``base.UpstreamStream``)
    sends_done_marker = True

    def __init__(self, response: Http11Response, deployment: Deployment) -> None:
        self._response = response
        self._deployment = deployment
        self.status = response.status
        self.headers = response.headers

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        response = self._response
        try:
            while True:
                try:
                    piece = await response.read_some()
                except TransportError as exc:
                    raise _map(exc, self._deployment) from exc
                if piece is None:
                    return
                yield piece
        finally:
            # abandoned halfway (the generator closed early): the connection cannot be reused
            response.close()

    async def aclose(self) -> None:
        """Release the connection; idempotent. Before the end of the body: close it."""
        self._response.close()


class Http11Provider:
    """OpenAI-compatible upstreams over :class:`Http11Pool` (the same interface as OpenAICompatProvider)."""

    def __init__(self, pool: Http11Pool, scrubber: SecretScrubber) -> None:
        self._pool = pool
        self._scrubber = scrubber

    async def _open(self, deployment: Deployment, endpoint: str, body: dict[str, Any],
                    stream: bool) -> Http11Response:
        headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        if deployment.extra_headers:
            for name, value in deployment.extra_headers.items():
                headers[name.lower()] = str(value)
        timeout = deployment.stream_timeout if stream else deployment.timeout
        try:
            response = await self._pool.request("POST", deployment.url(endpoint), headers,
                                                orjson.dumps(body), read_timeout=timeout)
        except TransportError as exc:
            raise _map(exc, deployment) from exc
        if response.status >= 400:
            try:
                content = await response.aread(MAX_ERROR_BODY)
            except TransportError as exc:
                raise _map(exc, deployment) from exc
            finally:
                response.close()
            raise upstream_error(response.status, content[:MAX_ERROR_BODY], deployment, self._scrubber)
        if response.status >= 300:
            response.close()
            raise redirect_error(response.status, deployment)
        return response

    async def send(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> UpstreamResponse:
        response = await self._open(deployment, endpoint, body, stream=False)
        try:
            content = await response.aread()
        except TransportError as exc:
            raise _map(exc, deployment) from exc
        check_answer_body(content, deployment, self._scrubber)
        return UpstreamResponse(response.status, response.headers, content)

    async def open_stream(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> Http11Stream:
        return Http11Stream(await self._open(deployment, endpoint, body, stream=True), deployment)
