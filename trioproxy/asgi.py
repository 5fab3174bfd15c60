"""The hot path: the three proxy endpoints served as plain ASGI, in front of the Quart app.

Why not a Quart view: measured on the development machine with the built-in fake provider, Quart's
per-request machinery (request context, werkzeug ``Headers``, ``Response`` objects, signals,
before/after hooks) costs about a third of the proxy's CPU per request. These three endpoints need
none of it: they read a body, hand it to the pipeline, and send what it returns. Everything else
(``/v1/models``, health, ``/metrics``, the built-ins' routes, errors for unknown routes, the app's
lifespan) stays in Quart.

Structure, the same as quart-trio's own connection class: one nursery per request, holding the
request's work and a task that watches for ``http.disconnect``; a disconnect cancels the work (the
pipeline then runs the failure hooks, shielded, and closes the upstream). A streaming body is
relayed inside the same nursery and always closed (``StreamRelay.aclose``) on the way out.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
import trio

from .errors import ClientDisconnectedError, InternalServerError, RequestTooLargeError, error_body
from .pipeline import CHAT, COMPLETIONS, EMBEDDINGS, StreamRelay

if TYPE_CHECKING:
    from .app import ProxyApp

__all__ = ["ProxyASGI"]

log = logging.getLogger("trioproxy.asgi")

ROUTES = {}
for _route, _paths in (
    (CHAT, ("/chat/completions", "/v1/chat/completions")),
    (COMPLETIONS, ("/completions", "/v1/completions")),
    (EMBEDDINGS, ("/embeddings", "/v1/embeddings")),
):
    for _path in _paths:
        ROUTES[_path] = _route


#: Azure OpenAI clients call /openai/deployments/<deployment>/<endpoint>; the body names the model
_AZURE_PREFIX = "/openai/deployments/"


def _route_for(path: str) -> Any:
    route = ROUTES.get(path)
    if route is None and path.startswith(_AZURE_PREFIX):
        _, _, endpoint = path[len(_AZURE_PREFIX):].partition("/")
        route = ROUTES.get(f"/{endpoint}")
    return route


class _Disconnected(Exception):
    pass


class ProxyASGI:
    """ASGI callable: proxy endpoints here, everything else to the Quart app."""

    def __init__(self, app: ProxyApp) -> None:
        self.app = app
        self.state = app.proxy

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = _route_for(scope["path"])
            if route is not None:
                await self._serve(route, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _read_body(self, scope: dict[str, Any], receive: Any, headers: dict[str, str]) -> bytes | Exception:
        limit = self.state.max_request_bytes
        declared = headers.get("content-length")
        limit_mb = self.state.config.general_settings.get("max_request_size_mb")
        if limit is not None and declared is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(int(declared), limit_mb)
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            body = message.get("body", b"")
            if body:
                size += len(body)
                if limit is not None and size > limit:
                    return _too_large(size, limit_mb)
                parts.append(body)
            if not message.get("more_body", False):
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _serve(self, route: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        relay: StreamRelay | None = None
        started = False
        try:
            async with trio.open_nursery() as nursery:
                try:
                    body = await self._read_body(scope, receive, headers)
                except _Disconnected:
                    return

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            nursery.cancel_scope.cancel(reason="client disconnected")
                            return

                nursery.start_soon(watch_disconnect)
                outcome = await self.state.pipeline.handle(route, body, headers)
                response_headers = [(b"content-type", outcome.media_type.encode())]
                response_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers.items()]
                if isinstance(outcome.body, StreamRelay):
                    relay = outcome.body
                    await send({"type": "http.response.start", "status": outcome.status, "headers": response_headers})
                    started = True
                    async def send_frame(frame: bytes) -> None:
                        await send({"type": "http.response.body", "body": frame, "more_body": True})

                    # within the stream's deadline and stop signal (see StreamRelay.send_to)
                    await relay.send_to(send_frame)
                    last = b""
                else:
                    response_headers.append((b"content-length", str(len(outcome.body)).encode()))
                    await send({"type": "http.response.start", "status": outcome.status, "headers": response_headers})
                    started = True
                    last = outcome.body
                # The last body message makes Hypercorn recycle the keep-alive connection (restarting
                # the idle task that closes it at shutdown) and tell us "http.disconnect" at once; if the
                # watcher cancelled this send midway, that idle task would die and the connection would
                # hold up a graceful shutdown for its whole deadline. The send is short: shield it.
                with trio.CancelScope(shield=True):
                    await send({"type": "http.response.body", "body": last, "more_body": False})
                nursery.cancel_scope.cancel(reason="response sent")
        except Exception as exc:
            # the pipeline answers every error itself; reaching here is a bug (or a broken socket)
            if isinstance(exc, ClientDisconnectedError):
                return
            log.error("unexpected error serving %s", scope.get("path"), exc_info=exc)
            if not started:
                err = InternalServerError("Internal error in the proxy; see the server log.")
                payload = orjson.dumps(error_body(err))
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(payload)).encode())]})
                await send({"type": "http.response.body", "body": payload, "more_body": False})
        finally:
            if relay is not None:
                await relay.aclose()


def _too_large(size: int, limit_mb: float) -> RequestTooLargeError:
    """The seeds' message, with the limit as configured (not rounded to whole bytes)."""
    return RequestTooLargeError(
        f"Request size is too large. Request size is {size / 1024 / 1024:.6g} MB. Max size is {limit_mb:g} MB"
    )
