"""``general_settings.pass_through_endpoints``: forward a request to a fixed target, bodies streamed both ways.

Served at the ASGI entry (``asgi.py``), beside the fast path: after the path was normalised and
``allowed_ips`` checked (``gate.py``), inside the ``max_in_flight_requests`` cap. Per request:

1. **Method**: one the endpoint lists, else ``405`` with ``Allow``.
2. **Route decision** (``auth: true``): the one :class:`~trioproxy.auth.Authenticator` through
   :meth:`AccessGate.authorize` — ``401`` without a valid key, ``403`` from the route settings —
   before a byte of the body is read. ``auth: false`` makes the endpoint a public route.
3. **Target URL**: the configured ``target``; with ``include_subpath`` plus the part of the
   *normalised* path below the endpoint's ``path``, re-encoded (``..`` was resolved before routing
   and never climbs above ``/``, so the suffix cannot leave the target's prefix; a decoded ``?`` or
   ``#`` is encoded again). The client's query string follows, then each ``default_query_params``
   entry the client did not set. The host is the config's, never the request's: no SSRF.
4. **Headers to the target**: the configured ``headers`` (the target's credentials, scrubbed from
   every log); with ``forward_headers`` the client's own headers too, minus hop-by-hop headers,
   ``Host`` and, with ``auth: true``, the client's trioproxy key (``Authorization``, ``api-key``) —
   configured headers win. Without ``forward_headers`` only ``Content-Type``,
   ``Content-Encoding`` and ``Accept`` go along. ``Accept-Encoding`` is the client's (else
   ``identity``), since the answer's bytes are relayed as they come.
5. **Body up**: streamed as it arrives (never held whole), within ``max_request_size_mb`` (``413``,
   on ``Content-Length`` before connecting, and while streaming) and ``request_body_timeout``
   (``408``). **Body down**: the target's status, headers (hop-by-hop, ``Server`` and ``Date``
   dropped) and raw bytes, relayed as the client reads them; ``max_response_size_mb`` applies
   (``502`` before the status line, a cut connection after it).
6. **Errors** before the status line are the OpenAI envelope and never name the target's host: an
   unreachable target ``502``, a target pausing longer than the endpoint's ``timeout`` ``504``. After
   the status line the only honest signal is to close the connection without finishing the body.
7. **Logging**: one event per call through the observers the pipeline uses (logging, metrics),
   ``call_type`` ``pass_through_endpoint``; the cost is the endpoint's ``cost_per_request`` (the seam
   spend tracking reads). Hooks do not run: the body is streamed, never parsed.

Why httpx rather than the built-in HTTP/1.1 pool (``upstream/http11``): the pool sends a request as
one ``bytes`` (head and body in one write), and a pass-through body must stream; it also speaks
only ``POST``-shaped exchanges. httpx streams request bodies from an async iterator and responses
with ``aiter_raw``; pass-through calls are not the hot path the pool was written for (httpx's
extra ~0.5 ms of CPU per request, README "Benchmark", does not matter beside a call to another
service; ``bench/pass_through.py`` measures what an endpoint adds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import trio

from ..config import PassThroughEndpoint, ProxyConfig
from ..context import RequestContext, Route
from ..core.run import Observers
from ..errors import (
    APIConnectionError,
    BadRequestError,
    ClientDisconnectedError,
    InternalServerError,
    ProxyError,
    RequestTimeoutError,
    RequestTooLargeError,
    ResponseTooLargeError,
    Timeout,
    UpstreamStreamInterruptedError,
)
from ..masking import SecretScrubber
from .errors import send_refusal
from .gate import AccessGate, client_ip

__all__ = ["PassThroughMatch", "PassThroughRouter"]

log = logging.getLogger("trioproxy.pass_through")

#: what every pass-through call is logged as (LiteLLM's call type)
CALL_TYPE = "pass_through_endpoint"
#: hop-by-hop headers (RFC 9110 §7.6.1) and those the proxy sets itself: never forwarded either way
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "transfer-encoding", "upgrade", "host", "content-length"})
#: the client's credential for trioproxy: never sent to a target of an ``auth: true`` endpoint
_TRIOPROXY_CREDENTIALS = frozenset({"authorization", "api-key"})
#: without ``forward_headers``: what the target needs to read the body and choose a representation
_ALWAYS_FORWARDED = ("content-type", "content-encoding", "accept")
#: not relayed from the target: Hypercorn writes its own ``server`` and ``date``
_NOT_RELAYED = _HOP_BY_HOP | {"server", "date"}
#: characters left as they are when the suffix is re-encoded (RFC 3986 pchar, without '%')
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


class _ClientGone(Exception):
    """The client disconnected (while its body was read, or while the answer was relayed)."""


class _Progress:
    """How far one exchange got: once the status line is out, an error can only cut the connection."""

    started = False
    #: the last body message went out: a disconnect after it is the connection's normal end
    finished = False


@dataclass(frozen=True, slots=True)
class PassThroughMatch:
    """A request path matched to an endpoint: the endpoint, its route record, the path below it."""

    endpoint: PassThroughEndpoint
    route: Route
    suffix: str


class PassThroughRouter:
    """The configured endpoints: match a normalised path, forward the request (module docstring)."""

    def __init__(self, endpoints: tuple[PassThroughEndpoint, ...], *, config: ProxyConfig,
                 client: httpx.AsyncClient, gate: AccessGate, observers: Observers,
                 scrubber: SecretScrubber) -> None:
        self.client = client
        self.gate = gate
        self.observers = observers
        self.scrubber = scrubber
        self.max_body_bytes = config.max_request_bytes
        self.max_body_mb = config.general.max_request_size_mb
        self.body_timeout = config.request_body_timeout
        self.max_response_bytes = config.max_response_bytes
        self.connect_timeout = config.general.http_pool.connect_timeout
        self._exact: dict[str, list[tuple[PassThroughEndpoint, Route]]] = {}
        self._prefixes: list[tuple[str, list[tuple[PassThroughEndpoint, Route]]]] = []
        for endpoint in endpoints:
            route = Route(endpoint=endpoint.path, call_type=CALL_TYPE, required=(), can_stream=False,
                          answers_with_text=False)
            self._exact.setdefault(endpoint.path, []).append((endpoint, route))
        for path, entries in self._exact.items():
            if any(endpoint.include_subpath for endpoint, _ in entries):
                self._prefixes.append((path + "/", [e for e in entries if e[0].include_subpath]))
        self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)

    def match(self, path: str) -> list[PassThroughMatch] | None:
        """The endpoints serving ``path`` (one per method set), or None. ``path`` is normalised."""
        entries = self._exact.get(path)
        if entries is not None:
            return [PassThroughMatch(endpoint, route, "") for endpoint, route in entries]
        for prefix, prefixed in self._prefixes:
            if path.startswith(prefix):
                return [PassThroughMatch(endpoint, route, path[len(prefix):]) for endpoint, route in prefixed]
        return None

    # -- one request -------------------------------------------------------------------------------
    async def serve(self, matches: list[PassThroughMatch], scope: dict[str, Any], receive: Any, send: Any) -> None:
        method = scope["method"]
        chosen = next((m for m in matches if method in m.endpoint.methods), None)
        if chosen is None:
            allowed = sorted({m for match in matches for m in match.endpoint.methods})
            await send_refusal(send, BadRequestError(
                f"Method {method} is not allowed on {scope['path']}.", status_code=405,
                code="method_not_allowed", headers={"allow": ", ".join(allowed)}))
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        ctx = RequestContext(route=chosen.route, request_headers=headers, requester_ip_address=client_ip(scope))
        self.observers.notify("on_request_start", ctx)
        progress = _Progress()
        try:
            await self._forward(chosen, ctx, scope, receive, send, progress)
        except trio.Cancelled:
            self._finish(ctx, ClientDisconnectedError("The client disconnected."))
            raise
        except BaseExceptionGroup as group:
            if group.split(trio.Cancelled)[1] is None:   # cancelled from outside (shutdown)
                self._finish(ctx, ClientDisconnectedError("The request was cancelled."))
                raise
            log.error("pass-through %s failed unexpectedly", chosen.endpoint.path, exc_info=group)
            err = InternalServerError("Internal error in the proxy; see the server log.")
            self._finish(ctx, err)
            if not progress.started:
                await self._send_error(send, err)
        except _ClientGone:
            self._finish(ctx, ClientDisconnectedError("The client disconnected."))
        except ProxyError as err:
            self._finish(ctx, err)
            if not progress.started:   # else: returning without the last body message cuts the connection
                await self._send_error(send, err)
        except Exception as exc:  # a bug: one 500, logged, never a crashed server
            log.error("pass-through %s failed unexpectedly", chosen.endpoint.path, exc_info=exc)
            err = InternalServerError("Internal error in the proxy; see the server log.")
            self._finish(ctx, err)
            if not progress.started:
                await self._send_error(send, err)

    async def _forward(self, match: PassThroughMatch, ctx: RequestContext, scope: dict[str, Any],
                       receive: Any, send: Any, progress: _Progress) -> None:
        """Forward one request and relay the answer; raises what the client must be told."""
        endpoint = match.endpoint
        headers = ctx.request_headers
        # auth: false makes the route public in the route rules; allowed_routes still applies to it
        if getattr(self.gate, "custom_auth", None) is None:
            ctx.identity = await self.gate.authorize(headers, scope["path"], scope["method"], ctx.requester_ip_address)
        else:   # custom_auth's Request sees the query (the body is streamed to the target: not offered)
            ctx.identity = await self.gate.authorize(headers, scope["path"], scope["method"],
                                                     ctx.requester_ip_address, query_string=scope.get("query_string", b""))
        ctx.user = ctx.identity.user_api_key_auth()
        declared = headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(int(declared), self.max_body_mb)
        has_body = (declared is not None and declared.strip() not in ("", "0")) or "transfer-encoding" in headers
        body_done = trio.Event()
        content: Any = self._body(receive, body_done) if has_body else b""
        if not has_body:
            body_done.set()
        request = self.client.build_request(
            scope["method"], self._url(match, scope.get("query_string") or b""),
            headers=self._upstream_headers(endpoint, scope["headers"], headers, declared if has_body else None),
            content=content,
            timeout=httpx.Timeout(endpoint.timeout, connect=min(endpoint.timeout, self.connect_timeout)))
        disconnected = False
        failure: ProxyError | _ClientGone | None = None
        async with trio.open_nursery() as nursery:

            async def watch_disconnect() -> None:
                nonlocal disconnected
                await body_done.wait()   # the body's reader owns receive() until then
                while (await receive())["type"] != "http.disconnect":
                    pass
                disconnected = not progress.finished
                if disconnected:   # else the client has the whole answer: let the exchange end as usual
                    nursery.cancel_scope.cancel(reason="client disconnected")

            nursery.start_soon(watch_disconnect)
            # what the client must be told leaves the nursery as itself, not inside an exception group
            try:
                await self._exchange(endpoint, request, ctx, send, progress)
            except (ProxyError, _ClientGone) as exc:
                failure = exc
            nursery.cancel_scope.cancel(reason="response sent")
        if disconnected:
            raise _ClientGone
        if failure is not None:
            raise failure
        ctx.settle_cost(endpoint.cost_per_request, "cost_per_request" if endpoint.cost_per_request else "free")
        self._finish(ctx, None)

    async def _exchange(self, endpoint: PassThroughEndpoint, request: httpx.Request, ctx: RequestContext,
                        send: Any, progress: _Progress) -> None:
        ctx.upstream_start = time.perf_counter()
        response = await self._send(endpoint, request)
        try:
            size = int(response.headers.get("content-length") or 0)
            if self.max_response_bytes is not None and size > self.max_response_bytes:
                raise ResponseTooLargeError(f"The pass-through target of {endpoint.path} answered "
                                            f"{size} bytes; the limit is general_settings.max_response_size_mb.")
            ctx.status = response.status_code
            headers = self._downstream_headers(response, ctx)
            declared = _declared_length(headers)
            if declared == 0:   # the head is the whole answer (see _relay)
                progress.finished = True
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            progress.started = True
            await self._relay(endpoint, response, send, progress, declared)
        finally:
            with trio.CancelScope(shield=True):
                await response.aclose()
        ctx.upstream_end = time.perf_counter()
        # the whole answer is out: a disconnect from here on (Hypercorn reports one as soon as it has
        # the last message) is the connection's normal end, not a client leaving early
        progress.finished = True
        with trio.CancelScope(shield=True):   # the last body message: see asgi.ProxyASGI._serve
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send(self, endpoint: PassThroughEndpoint, request: httpx.Request) -> httpx.Response:
        """The target's response head, or the error the client gets (never naming the target's host)."""
        what = f"The pass-through target of {endpoint.path}"
        try:
            return await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise Timeout(f"{what} did not answer within {endpoint.timeout:g} s.") from exc
        except httpx.HTTPError as exc:
            raise APIConnectionError(f"{what} could not be reached or closed the connection.") from exc

    async def _relay(self, endpoint: PassThroughEndpoint, response: httpx.Response, send: Any,
                     progress: _Progress, declared: int | None) -> None:
        """The target's body to the client, chunk by chunk.

        With a ``Content-Length`` the client has the whole answer once the chunk that completes it
        is out, before the (empty) last body message: a client that then closes the connection (as
        ``http.client`` does) did not leave early, so ``progress.finished`` is set before that send."""
        limit = self.max_response_bytes
        relayed = 0
        try:
            async for chunk in response.aiter_raw():
                relayed += len(chunk)
                if limit is not None and relayed > limit:
                    raise ResponseTooLargeError(f"The pass-through target of {endpoint.path} answered more than "
                                                "general_settings.max_response_size_mb.")
                if declared is not None and relayed >= declared:
                    progress.finished = True
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as exc:
            raise UpstreamStreamInterruptedError(
                f"The pass-through target of {endpoint.path} broke off its answer.") from exc

    async def _body(self, receive: Any, done: trio.Event) -> AsyncIterator[bytes]:
        """The client's body as it arrives, within the size limit and the body deadline.

        Each ``receive`` gets its own cancel scope (a scope must never span a ``yield`` of an async
        generator); the deadline is the whole body's.
        """
        deadline = trio.current_time() + self.body_timeout
        size = 0
        try:
            while True:
                with trio.move_on_at(deadline) as waiting:
                    message = await receive()
                if waiting.cancelled_caught:
                    raise RequestTimeoutError(
                        f"The request body was not received within {self.body_timeout:g} s "
                        f"(general_settings.request_body_timeout); {size} bytes arrived.",
                        headers={"connection": "close"})
                if message["type"] == "http.disconnect":
                    raise _ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise _too_large(size, self.max_body_mb)
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return
        finally:
            done.set()

    # -- pieces ------------------------------------------------------------------------------------
    @staticmethod
    def _url(match: PassThroughMatch, query_string: bytes) -> str:
        endpoint = match.endpoint
        base, _, target_query = endpoint.target.partition("?")
        if endpoint.include_subpath and match.suffix:
            base = base.rstrip("/") + "/" + quote(match.suffix, safe=_PATH_SAFE)
        client_query = query_string.decode("latin-1")
        present = {name for name, _ in parse_qsl(target_query + "&" + client_query, keep_blank_values=True)}
        defaults = urlencode([(k, v) for k, v in endpoint.default_query_params.items() if k not in present])
        query = "&".join(part for part in (target_query, client_query, defaults) if part)
        return f"{base}?{query}" if query else base

    @staticmethod
    def _upstream_headers(endpoint: PassThroughEndpoint, raw: list[tuple[bytes, bytes]], headers: Mapping[str, str],
                          content_length: str | None) -> list[tuple[str, str]]:
        configured = {name.lower() for name in endpoint.headers}
        out: list[tuple[str, str]] = []
        if endpoint.forward_headers:
            listed = {t.strip().lower() for t in headers.get("connection", "").split(",") if t.strip()}
            for name_bytes, value_bytes in raw:
                name = name_bytes.decode("latin-1").lower()
                if name in _HOP_BY_HOP or name in listed or name in configured or name == "accept-encoding":
                    continue
                if endpoint.auth and name in _TRIOPROXY_CREDENTIALS:
                    continue
                out.append((name, value_bytes.decode("latin-1")))
        else:
            out += [(name, headers[name]) for name in _ALWAYS_FORWARDED if name in headers and name not in configured]
        out.append(("accept-encoding", headers.get("accept-encoding", "identity")))
        if content_length is not None and content_length.strip().isdigit():
            out.append(("content-length", content_length.strip()))
        out += list(endpoint.headers.items())
        return out

    @staticmethod
    def _downstream_headers(response: httpx.Response, ctx: RequestContext) -> list[tuple[bytes, bytes]]:
        listed = {t.strip().lower() for t in response.headers.get("connection", "").split(",") if t.strip()}
        out = [(name, value) for name, value in response.headers.raw
               if name.lower().decode("latin-1") not in _NOT_RELAYED | listed]
        if "content-length" in response.headers and "transfer-encoding" not in response.headers:
            out.append((b"content-length", response.headers["content-length"].encode("latin-1")))
        out.append((b"x-litellm-call-id", ctx.id.encode()))
        return out

    async def _send_error(self, send: Any, err: ProxyError) -> None:
        self.scrubber.scrub_error(err)
        await send_refusal(send, err)

    def _finish(self, ctx: RequestContext, error: ProxyError | None) -> None:
        """The one outcome of a call: its logging event and metrics."""
        if ctx.outcome_reported:
            return
        ctx.outcome_reported = True
        ctx.end = time.perf_counter()
        if error is not None:
            ctx.error = error
            ctx.status = error.status_code
            self.observers.notify("on_failure", ctx)
        else:
            self.observers.notify("on_success", ctx)


def _too_large(size: int, limit_mb: float) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"Request size is too large. Request size is {size / 1024 / 1024:.6g} MB. Max size is {limit_mb:g} MB",
        headers={"connection": "close"})


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` the client is told (``_downstream_headers``), or None (chunked)."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return None
