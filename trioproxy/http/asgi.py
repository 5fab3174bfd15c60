"""The hot path: the three proxy endpoints served as plain ASGI, in front of the Quart app.

Why not a Quart view: measured on the development machine with the built-in fake provider, Quart's
per-request machinery (request context, werkzeug ``Headers``, ``Response`` objects, signals,
before/after hooks) costs about a third of the proxy's CPU per request. These three endpoints need
none of it: they read a body, hand it to the pipeline, and send what it returns. Everything else
(``/v1/models``, health, ``/metrics``, the built-ins' routes, errors for unknown routes, the app's
lifespan) stays in Quart.

Structure: each request's work runs in one cancel scope that the client's leaving cancels (the
pipeline then runs the failure hooks, shielded, and closes the upstream). On HTTP/1.x the
connection's end cancels it (``core/disconnect.py``: the server's connection class signals it, no
task per request); otherwise, as in quart-trio's own connection class, a nursery holds the work and
a task that watches for ``http.disconnect``. A streaming body is relayed inside the same scope and
always closed (``StreamRelay.aclose``) on the way out.

The request bounds that need the ASGI scope are enforced here, before anything else runs:

* **Every route**: the path is normalised, the caller's address resolved and ``allowed_ips``
  checked (``gate.py``), before any router runs; then the header block's size (request line and fields, ``max_request_header_size_kb``)
  and field count (``max_request_headers``) → ``431``. Hypercorn's h11 caps what it buffers of an
  incomplete head (``cli/run.py``), so memory is bounded before a head reaches this check; this check
  makes the limit independent of how TCP split the bytes.
* **Proxy routes and pass-through endpoints** (``passthrough.py``): at most ``max_in_flight_requests`` at once (from the head to the last byte of
  the answer, streams included); over it, a ``503`` with ``Retry-After`` at once, before the body is
  read, no hook run. Health, metrics and the other Quart routes are not counted and keep answering.
* **Proxy routes' bodies**: ``max_request_size_mb`` (``413``) and ``request_body_timeout`` for the
  whole body (``408``); both answers close the connection, since the rest of the body is not read.

Refusals that leave a body unread carry ``Connection: close``; any other answer that goes out before
its request's body was read is made safe for keep-alive by ``unread_body.py`` (drain, or close).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ..auth import Identity
from ..core.direct_body import DIRECT_BODY
from ..core.disconnect import CONNECTION_END
from ..core.relay import StreamRelay
from ..errors import (
    ClientDisconnectedError,
    ProxyError,
    ProxyOverloadedError,
    RequestHeadersTooLargeError,
    RequestTimeoutError,
    RequestTooLargeError,
)
from .errors import send_internal_error, send_refusal
from .gate import client_ip
from .paths import route_for
from .unread_body import guard_unread_body, receive_nowait_of

if TYPE_CHECKING:
    from ..core.pipeline import Pipeline
    from .app import ProxyApp

__all__ = ["ProxyASGI"]

log = logging.getLogger("trioproxy.asgi")

class _Disconnected(Exception):
    pass


#: seconds a client over ``max_in_flight_requests`` is asked to wait before retrying
RETRY_AFTER_SECONDS = 1
#: at most one "refusing requests" warning per this many seconds (an overload must not flood the log)
_OVERLOAD_LOG_INTERVAL = 10.0


class ProxyASGI:
    """ASGI callable: proxy endpoints here, everything else to the Quart app."""

    def __init__(self, app: ProxyApp) -> None:
        self.app = app
        #: the composition root's result (``proxy.Proxy``): the CLI stops its streams at shutdown
        self.proxy = app.proxy
        self.pipeline: Pipeline = app.proxy.services.pipeline
        #: path normalisation, caller address, allowed_ips: before any router (``gate.py``)
        self.gate = app.proxy.services.access
        #: the configured pass-through endpoints (``passthrough.py``), or None
        self.pass_through = app.proxy.services.pass_through
        config = app.proxy.services.config
        self.max_header_bytes = config.max_request_header_bytes
        self.max_headers = config.max_request_headers
        self.max_in_flight = config.max_in_flight_requests
        self.body_timeout = config.request_body_timeout
        self.max_body_bytes = config.max_request_bytes
        self.max_body_mb = config.general.max_request_size_mb
        #: proxy-route requests between their head and the last byte of their answer
        self.in_flight = 0
        self._refused_since_log = 0
        self._next_overload_log = 0.0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            # a response that goes out before the body was read must not leave the client reusing a
            # connection Hypercorn is about to close (unread_body.py): for every route, this first
            receive, send = guard_unread_body(scope, receive, send, self.body_timeout)
            problem = self._header_problem(scope)
            if problem is not None:
                await send_refusal(send, problem)
                return
            scope, refusal = self.gate.admit(scope)   # the normalised path from here on
            if refusal is not None:
                await send_refusal(send, refusal)
                return
            route = route_for(scope["path"]) if scope["method"] == "POST" else None
            forward = None
            if route is None and self.pass_through is not None:
                forward = self.pass_through.match(scope["path"])
            if route is not None or forward is not None:
                if self.in_flight >= self.max_in_flight:
                    await self._refuse_overload(send)
                    return
                self.in_flight += 1
                try:
                    if route is not None:
                        await self._serve(route, scope, receive, send)
                    else:
                        await self.pass_through.serve(forward, scope, receive, send)  # type: ignore[union-attr]
                finally:
                    self.in_flight -= 1
                return
        await self.app(scope, receive, send)

    def _header_problem(self, scope: dict[str, Any]) -> RequestHeadersTooLargeError | None:
        """431 when the head is over its size or field-count limit, whatever route it is for."""
        headers = scope["headers"]
        if len(headers) > self.max_headers:
            return RequestHeadersTooLargeError(
                f"The request has {len(headers)} header fields; the limit is {self.max_headers} "
                "(general_settings.max_request_headers).")
        # the request line and the fields as sent: "METHOD target HTTP/1.1", "name: value", CRLFs
        size = len(scope["method"]) + len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 14
        for name, value in headers:
            size += len(name) + len(value) + 4
        if size > self.max_header_bytes:
            return RequestHeadersTooLargeError(
                f"The request line and headers are {size} bytes; the limit is {self.max_header_bytes} bytes "
                f"(general_settings.max_request_header_size_kb: {self.max_header_bytes / 1024:g}).")
        return None

    async def _refuse_overload(self, send: Any) -> None:
        self._refused_since_log += 1
        now = trio.current_time()
        if now >= self._next_overload_log:
            log.warning("refusing requests with 503: %d in flight (general_settings.max_in_flight_requests: %d);"
                        " %d refused since the last such warning", self.in_flight, self.max_in_flight,
                        self._refused_since_log)
            self._refused_since_log = 0
            self._next_overload_log = now + _OVERLOAD_LOG_INTERVAL
        await send_refusal(send, ProxyOverloadedError(
            f"The proxy is handling its maximum of {self.max_in_flight} requests at once "
            f"(general_settings.max_in_flight_requests); retry after {RETRY_AFTER_SECONDS} s.",
            headers={"retry-after": str(RETRY_AFTER_SECONDS)}))

    async def _discard_body(self, receive: Any, headers: dict[str, str]) -> bool:
        """Receive and drop a refused request's body, so the connection can carry the next request.

        Only up to :data:`_DISCARDABLE_BODY` bytes, within ``request_body_timeout``; a bigger (or
        slower) body is left unread and the answer closes the connection (``False``). Hypercorn
        cannot start the next request on a connection whose body the app left unread, and closing
        with unread bytes resets the connection under the answer."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > _DISCARDABLE_BODY:
            return False
        size = 0
        with trio.move_on_after(self.body_timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                size += len(message.get("body", b""))
                if size > _DISCARDABLE_BODY:
                    return False
                if not message.get("more_body", False):
                    return True
        return False

    async def _read_body(self, scope: dict[str, Any], receive: Any, headers: dict[str, str]) -> bytes | ProxyError:
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(int(declared), self.max_body_mb)
        body = _Body(limit, self.max_body_mb)
        # what is queued already (a small body nearly always is) is taken without a cancel scope
        nowait = receive_nowait_of(receive)
        if nowait is not None:
            try:
                while True:
                    done = body.add(nowait())
                    if done is not None:
                        return done
            except trio.WouldBlock:
                pass
        with trio.move_on_after(self.body_timeout):
            while True:
                done = body.add(await receive())
                if done is not None:
                    return done
        return RequestTimeoutError(
            f"The request body was not received within {self.body_timeout:g} s "
            f"(general_settings.request_body_timeout); {body.size} bytes arrived.",
            headers={"connection": "close"})

    async def _serve(self, route: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        exchange = _Exchange()
        # who cancels the request when the client leaves: the connection's end on HTTP/1.x
        # (core/disconnect.py: no task per request), else a task watching for "http.disconnect"
        end = CONNECTION_END.get() if scope.get("http_version") in _ONE_REQUEST_PER_CONNECTION else None
        try:
            if end is not None:
                with trio.CancelScope() as request_scope:
                    try:
                        await self._exchange(route, scope, receive, send, headers, exchange,
                                             lambda: end.cancel_on_end(request_scope),
                                             lambda: end.release(request_scope))
                    finally:
                        end.release(request_scope)
            else:
                async with trio.open_nursery() as nursery:

                    async def watch_disconnect() -> None:
                        while True:
                            message = await receive()
                            if message["type"] == "http.disconnect":
                                nursery.cancel_scope.cancel(reason="client disconnected")
                                return

                    await self._exchange(route, scope, receive, send, headers, exchange,
                                         lambda: nursery.start_soon(watch_disconnect), None)
                    nursery.cancel_scope.cancel(reason="response sent")
        except Exception as exc:
            # the pipeline answers every error itself; reaching here is a bug (or a broken socket)
            if isinstance(exc, ClientDisconnectedError):
                return
            log.error("unexpected error serving %s", scope.get("path"), exc_info=exc)
            if not exchange.started:
                await send_internal_error(send)
        finally:
            if exchange.relay is not None:
                await exchange.relay.aclose()

    async def _exchange(self, route: Any, scope: dict[str, Any], receive: Any, send: Any,
                        headers: dict[str, str], exchange: _Exchange, watch: Callable[[], None],
                        unwatch: Callable[[], None] | None) -> None:
        """Decide, read the body, answer. ``watch()`` starts the disconnect cancellation once the
        body is read (before that, a disconnect arrives as the body's ``http.disconnect``);
        ``unwatch()``, when given, ends it before the answer's last message (see below)."""
        # the one route decision, before a byte of the body is read: a caller without the
        # right to the route gets its 401/403 (or a 503), never a 413/400 about its body
        decided: Identity | ProxyError
        early: _BodyOnce | None = None
        try:
            if self.gate.custom_auth is None:
                decided = await self.gate.authorize(headers, scope["path"], "POST", client_ip(scope))
            else:   # custom_auth may read the body (request.json()): read once, kept for the route
                early = _BodyOnce(lambda: self._read_body(scope, receive, headers))
                decided = await self.gate.authorize(headers, scope["path"], "POST", client_ip(scope),
                                                    query_string=scope.get("query_string", b""),
                                                    body=early.read)
        except ProxyError as refusal:
            decided = refusal
        if early is not None and early.disconnected:
            return
        if early is not None and early.result is not None:
            body: bytes | ProxyError = early.result
            drained = True
        elif isinstance(decided, ProxyError):
            body = b""
            try:   # the decision is made; the body is only received and dropped, never parsed
                drained = await self._discard_body(receive, headers)
            except _Disconnected:
                return
        else:
            drained = True
            try:
                body = await self._read_body(scope, receive, headers)
            except _Disconnected:
                return
        watch()
        outcome = await self.pipeline.handle(route, body, headers, client_ip(scope), decided)
        response_headers = [(b"content-type", outcome.media_type.encode())]
        if not drained:   # the rest of a refused body was not received: close after the answer
            response_headers.append((b"connection", b"close"))
        response_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers.items()]
        if isinstance(outcome.body, StreamRelay):
            relay = exchange.relay = outcome.body
            await send({"type": "http.response.start", "status": outcome.status, "headers": response_headers})
            exchange.started = True
            # HTTP/1.1 on trioproxy's connection class: the chunks written by the connection itself,
            # past Hypercorn's and h11's per-message work (core/direct_body.py); else ASGI messages
            direct = DIRECT_BODY.get() if unwatch is not None else None
            send_frame = direct() if direct is not None else None
            if send_frame is None:

                async def send_frame(frame: bytes) -> None:
                    await send({"type": "http.response.body", "body": frame, "more_body": True})

            # within the stream's deadline and stop signal (see StreamRelay.send_to)
            await relay.send_to(send_frame)
            last = b""
        else:
            response_headers.append((b"content-length", str(len(outcome.body)).encode()))
            await send({"type": "http.response.start", "status": outcome.status, "headers": response_headers})
            exchange.started = True
            last = outcome.body
        # The last body message makes Hypercorn recycle the keep-alive connection (restarting
        # the idle task that closes it at shutdown) and tell us "http.disconnect" at once; if the
        # watcher cancelled this send midway, that idle task would die and the connection would
        # hold up a graceful shutdown for its whole deadline. The send is short: shield it from the
        # watcher. The connection's end is simply told that this request no longer listens (a
        # shielded scope costs ~5 µs per request, bench/README.md "CPU per request").
        message = {"type": "http.response.body", "body": last, "more_body": False}
        if unwatch is not None:
            unwatch()
            await send(message)
        else:
            with trio.CancelScope(shield=True):
                await send(message)


class _Body:
    """A request body's messages as they arrive: the body once complete, or the refusal of a too large one."""

    __slots__ = ("limit", "limit_mb", "parts", "size")

    def __init__(self, limit: int, limit_mb: float) -> None:
        self.limit = limit
        self.limit_mb = limit_mb
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, message: dict[str, Any]) -> bytes | ProxyError | None:
        """``None`` while more is to come; raises ``_Disconnected`` when the client left."""
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        if chunk:
            self.size += len(chunk)
            if self.size > self.limit:
                return _too_large(self.size, self.limit_mb)
            self.parts.append(chunk)
        if message.get("more_body", False):
            return None
        parts = self.parts
        return parts[0] if len(parts) == 1 else b"".join(parts)


class _Exchange:
    """What :meth:`ProxyASGI._serve` must know on its way out: the stream to close, whether a status went out."""

    __slots__ = ("relay", "started")

    def __init__(self) -> None:
        self.relay: StreamRelay | None = None
        self.started = False


#: HTTP versions whose connection carries one request at a time: its end is its client leaving
_ONE_REQUEST_PER_CONNECTION = frozenset({"1.1", "1.0"})


class _BodyOnce:
    """The body read for ``custom_auth`` (``await request.body()``), once, and kept for the route.

    A body the proxy refuses (too large, too slow) is that refusal raised to the function (and so
    answered as it is); a client that hung up ends the request like any other disconnect."""

    def __init__(self, read: Any) -> None:
        self._read = read
        self.result: bytes | ProxyError | None = None
        self.disconnected = False

    async def read(self) -> bytes:
        if self.result is None:
            try:
                self.result = await self._read()
            except _Disconnected:
                self.disconnected = True
                raise ClientDisconnectedError("The client disconnected.") from None
        if isinstance(self.result, ProxyError):
            raise self.result
        return self.result


#: a refused request's body up to this size is received and dropped, to keep the connection
_DISCARDABLE_BODY = 64 * 1024


def _too_large(size: int, limit_mb: float) -> RequestTooLargeError:
    """The seeds' message, with the limit as configured (sizes in MiB, as the limit counts them)."""
    return RequestTooLargeError(
        f"Request size is too large. Request size is {size / 1024 / 1024:.6g} MB. Max size is {limit_mb:g} MB",
        headers={"connection": "close"})
