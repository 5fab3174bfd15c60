"""The Quart-Trio app: thin views that parse, hand to the pipeline, and turn the outcome into HTTP.

Views know nothing about hook order or cancellation. The app owns the process-wide resources and
their lifetime: one pooled ``httpx.AsyncClient`` opened in ``before_serving`` and closed in
``after_serving`` (with the logging sink drained there too).

One adapter (:class:`_ProxyHTTPConnection`, in the spirit of quart-trio's own class swaps): after a
response is sent, or abandoned because the client left, it closes the streaming body the view
returned. Quart closes a body only once it started sending it; a client that disconnects between
the view's return and the first chunk would otherwise leave the upstream stream open.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import trio
from quart import Response, request
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection

from . import builtins, observability
from .assembly import Handlers, load_handlers
from .cache import DualCache
from .config import ProxyConfig
from .errors import ProxyError, RequestTooLargeError, error_body, to_proxy_error
from .masking import SecretScrubber
from .pipeline import CHAT, COMPLETIONS, EMBEDDINGS, Pipeline, ProxyResponse, StreamRelay
from .upstream.fake import FakeProvider
from .upstream.openai_compat import OpenAICompatProvider, make_http_client
from .upstream.router import Router

__all__ = ["ProxyApp", "create_app"]

log = logging.getLogger("trioproxy.app")

_RELAY_KEY = "trioproxy.relay"


class _ProxyHTTPConnection(TrioASGIHTTPConnection):
    async def handle_request(self, nursery: trio.Nursery, request: Any, send: Any) -> None:  # type: ignore[override]
        try:
            await super().handle_request(nursery, request, send)
        finally:
            relay = request.scope.get(_RELAY_KEY)
            if relay is not None:
                await relay.aclose()



class ProxyApp(QuartTrio):
    asgi_http_class = _ProxyHTTPConnection
    proxy: ProxyState


class ProxyState:
    """Everything the app holds for its lifetime (built from one config)."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.scrubber = SecretScrubber(config.secrets())
        self.cache = DualCache()
        self.shared: dict[str, Any] = {"scrubber": self.scrubber, "cache": self.cache}
        self.handlers: Handlers = load_handlers(config, self.shared)
        self.providers: dict[str, Any] = {"fake": FakeProvider()}
        self.router = Router(config, self.providers)
        self.shared["router"] = self.router
        self.observers: list[Any] = []
        #: objects with ``async run()`` (for the app's lifetime, in its nursery) and
        #: ``async drain(timeout)`` (at shutdown): the logging sink, built-ins with resources
        self.services: list[Any] = list(self.handlers.lifecycle)
        self.pipeline = Pipeline(config, self.handlers.plan, self.router, self.cache, self.scrubber, self.observers)
        self.http_client: Any = None
        max_mb = config.general_settings.get("max_request_size_mb")
        self.max_request_bytes = int(max_mb * 1024 * 1024) if max_mb is not None else None
        observability.install(self)

    async def start(self, nursery: trio.Nursery) -> None:
        self.http_client = make_http_client(self.config.general_settings.get("http_pool"))
        self.providers["openai"] = OpenAICompatProvider(self.http_client, self.scrubber)
        self.shared["http_client"] = self.http_client
        for service in self.services:
            nursery.start_soon(service.run)

    async def stop(self) -> None:
        with trio.CancelScope(shield=True):
            for service in self.services:
                try:
                    await service.drain(self.config.graceful_shutdown_timeout)
                except Exception as exc:
                    log.error("stopping %r failed", service, exc_info=exc)
            if self.http_client is not None:
                await self.http_client.aclose()
                self.http_client = None


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def _error_response(exc: BaseException) -> Response:
    err = to_proxy_error(exc)
    return _json(err.status_code, error_body(err), err.headers)


def _too_large(size: int, limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"Request size is too large. Request size is {size / 1024 / 1024:.6g} MB. "
        f"Max size is {limit / 1024 / 1024:.6g} MB"
    )


async def _read_body(limit: int | None) -> bytes | ProxyError:
    """The request body, or a 413 without reading more than the limit."""
    if limit is not None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(int(declared), limit)
    if limit is None:
        return await request.get_data(cache=False, as_text=False)  # type: ignore[return-value]
    received = bytearray()
    async for piece in request.body:
        received += piece
        if len(received) > limit:
            return _too_large(len(received), limit)
    return bytes(received)


def _to_quart(outcome: ProxyResponse) -> Response:
    if isinstance(outcome.body, StreamRelay):
        request.scope[_RELAY_KEY] = outcome.body
        response = Response(outcome.body, status=outcome.status, headers=outcome.headers,
                            content_type=outcome.media_type)
        response.timeout = None  # a stream lasts as long as the upstream's stream_timeout allows
        return response
    return Response(outcome.body, status=outcome.status, headers=outcome.headers, content_type=outcome.media_type)


def create_app(config: ProxyConfig) -> ProxyApp:
    """The ASGI app for one config. Loads and checks every handler now (raises ConfigError)."""
    app = ProxyApp("trioproxy")
    app.config.update(
        MAX_CONTENT_LENGTH=None,     # the proxy enforces max_request_size_mb itself, with the seeds' message
        RESPONSE_TIMEOUT=None,
        BODY_TIMEOUT=600,
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    state = app.proxy = ProxyState(config)
    pipeline = state.pipeline

    @app.before_serving
    async def _start() -> None:
        await state.start(app.nursery)

    @app.after_serving
    async def _stop() -> None:
        await state.stop()

    def proxy_view(route: Any) -> Any:
        async def view() -> Response:
            body = await _read_body(state.max_request_bytes)
            outcome = await pipeline.handle(route, body, request.headers)
            return _to_quart(outcome)

        view.__name__ = f"proxy_{route.call_type}"
        return view

    for route, paths in (
        (CHAT, ("/chat/completions", "/v1/chat/completions", "/openai/deployments/<path:_d>/chat/completions")),
        (COMPLETIONS, ("/completions", "/v1/completions")),
        (EMBEDDINGS, ("/embeddings", "/v1/embeddings")),
    ):
        view = proxy_view(route)
        for path in paths:
            app.add_url_rule(path, endpoint=f"{view.__name__}:{path}", view_func=view, methods=["POST"])

    @app.get("/models")
    @app.get("/v1/models")
    async def models() -> Response:
        from .auth import authenticate

        authenticate(config.master_key, request.headers)
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "trioproxy"}
                for name in state.router.model_names]
        return _json(200, {"object": "list", "data": data})

    @app.get("/health/liveliness")
    @app.get("/health/liveness")
    async def liveliness() -> Response:
        return _json(200, "I'm alive!")

    @app.get("/health/readiness")
    async def readiness() -> Response:
        ready = state.http_client is not None
        return _json(200 if ready else 503, {"status": "healthy" if ready else "starting",
                                             "models": len(state.router.model_names)})

    # routes of the built-in policies (robots.txt, customer block lists) and of observability (/metrics)
    builtins.register_routes(app, state)
    observability.register_routes(app, state)

    @app.errorhandler(ProxyError)
    async def _proxy_error(exc: ProxyError) -> Response:
        return _error_response(exc)

    @app.errorhandler(404)
    async def _not_found(_: Any) -> Response:
        return _json(404, {"error": {"message": f"No route {request.method} {request.path}. The proxy serves "
                                                "/v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models.",
                                     "type": "invalid_request_error", "param": None, "code": "route_not_found"}})

    @app.errorhandler(405)
    async def _not_allowed(_: Any) -> Response:
        return _json(405, {"error": {"message": f"Method {request.method} is not allowed on {request.path}.",
                                     "type": "invalid_request_error", "param": None, "code": "method_not_allowed"}})

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        if getattr(exc, "code", None) and hasattr(exc, "description") and not isinstance(exc, ProxyError):
            # a werkzeug HTTPException (e.g. 400 from a malformed request line)
            return _json(exc.code, {"error": {"message": str(exc.description), "type": "invalid_request_error",  # type: ignore[attr-defined]
                                              "param": None, "code": str(exc.code)}})  # type: ignore[attr-defined]
        log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
        return _error_response(exc)

    return app
