"""The Quart-Trio app: the process-wide resources and their lifetime, and the secondary routes.

Views know nothing about hook order or cancellation. The app owns the process-wide resources and
their lifetime: the upstream connection pool (the built-in HTTP/1.1 ``Http11Pool``, or httpx with
``general_settings.http_client: httpx``) and one pooled ``httpx.AsyncClient`` for handlers, opened
in ``before_serving`` and closed in ``after_serving`` (with the logging sink drained there too).

The three proxy endpoints (chat completions, completions, embeddings) are not Quart views: they are
served by the plain ASGI handler in ``asgi.py`` in front of this app (see there why). This app
serves everything else: ``/v1/models``, health, the built-ins' and observability routes, errors for
unknown routes, and the lifespan (startup and shutdown of the process-wide resources).

One adapter (:class:`_ProxyHTTPConnection`, in the spirit of quart-trio's own class swaps) shields
the last body send of a response; its comment says why.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import trio
from quart import Response, request
from quart.routing import QuartMap
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection

from ..caching.dual_cache import DualCache
from ..config import ProxyConfig
from ..core.pipeline import Pipeline
from ..errors import ProxyError, RequestTimeoutError, error_body, to_proxy_error
from ..hooks.assembly import Handlers, load_handlers
from ..masking import SecretScrubber
from ..observability import observer as observability
from ..policies import builtins
from ..upstream.fake import FakeProvider
from ..upstream.http11.pool import Http11Pool, Http11Provider
from ..upstream.httpx_provider import OpenAICompatProvider, make_http_client
from ..upstream.router import Router

__all__ = ["ProxyApp", "create_app", "create_asgi"]

log = logging.getLogger("trioproxy.app")


class _ProxyHTTPConnection(TrioASGIHTTPConnection):
    async def __call__(self, receive: Any, send: Any) -> None:
        async def send_last_shielded(message: Any) -> None:
            # The last body message makes Hypercorn recycle the keep-alive connection, which restarts
            # its idle task (the one that closes the connection at shutdown). Hypercorn also tells the
            # app "http.disconnect" right then, and quart-trio's watcher cancels this task mid-send:
            # the idle task died, and every kept-alive connection held SIGTERM for the whole
            # graceful_shutdown_timeout. Shielded, that send completes (it is short: one lock, one start).
            if message.get("type") == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await super().__call__(receive, send_last_shielded)


class _NoRedirectMap(QuartMap):
    """Werkzeug's routing without its redirects.

    With its defaults, ``//v1//models`` answers ``308`` to ``http://<Host header>/v1/models``: an
    open redirect, built from whatever ``Host`` the client sent. Repeated slashes are collapsed
    before routing instead (``asgi.normalize_path``), and a path that still does not match is a 404
    in the OpenAI envelope; no route of the proxy ever answers with a redirect.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["merge_slashes"] = False
        kwargs["strict_slashes"] = False
        super().__init__(*args, **kwargs)


class ProxyApp(QuartTrio):
    asgi_http_class = _ProxyHTTPConnection
    url_map_class = _NoRedirectMap
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
        #: the built-in HTTP/1.1 pool behind the ``openai`` provider (None with ``http_client: httpx``)
        self.upstream_pool: Http11Pool | None = None
        self.max_request_bytes = config.max_request_bytes
        observability.install(self)

    async def start(self, nursery: trio.Nursery) -> None:
        settings = self.config.general_settings
        # handlers (e.g. llm_guard) use the httpx client in shared["http_client"] either way
        self.http_client = make_http_client(settings.get("http_pool"))
        if settings.get("http_client", "builtin") == "httpx":
            self.providers["openai"] = OpenAICompatProvider(self.http_client, self.scrubber)
        else:
            self.upstream_pool = Http11Pool.from_settings(settings.get("http_pool"))
            self.providers["openai"] = Http11Provider(self.upstream_pool, self.scrubber)
        self.shared["http_client"] = self.http_client
        for service in self.services:
            nursery.start_soon(service.run)

    def stop_streams(self) -> int:
        """Graceful shutdown is about to cut open streams: end each with a ``shutdown`` error event."""
        return self.pipeline.stop_streams()

    async def stop(self) -> None:
        with trio.CancelScope(shield=True):
            for service in self.services:
                try:
                    await service.drain(self.config.graceful_shutdown_timeout)
                except Exception as exc:
                    log.error("stopping %r failed", service, exc_info=exc)
            if self.upstream_pool is not None:
                await self.upstream_pool.aclose()
                self.upstream_pool = None
            if self.http_client is not None:
                await self.http_client.aclose()
                self.http_client = None


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def _error_response(exc: BaseException, scrubber: SecretScrubber) -> Response:
    err = to_proxy_error(exc)
    scrubber.scrub_error(err)     # every envelope, on every route, passes the scrubber
    return _json(err.status_code, error_body(err), err.headers)


#: the Quart routes (admin, customer block lists, health) take small JSON bodies
_QUART_BODY_CAP = 1024 * 1024


def _quart_body_limit(config: ProxyConfig) -> int:
    """The body limit of the Quart routes: ``max_request_size_mb``, but never above 1 MiB."""
    return min(config.max_request_bytes, _QUART_BODY_CAP)


def create_app(config: ProxyConfig) -> ProxyApp:
    """The ASGI app for one config. Loads and checks every handler now (raises ConfigError)."""
    app = ProxyApp("trioproxy")
    app.config.update(
        # the proxy routes (asgi.py) enforce max_request_size_mb themselves, with the seeds' message;
        # the routes served here (admin, health, metrics) take small bodies: cap them all the same
        MAX_CONTENT_LENGTH=_quart_body_limit(config),
        RESPONSE_TIMEOUT=None,
        # a whole body within request_body_timeout, as on the proxy routes (408, see _unexpected)
        BODY_TIMEOUT=config.request_body_timeout,
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    state = app.proxy = ProxyState(config)

    @app.before_serving
    async def _start() -> None:
        await state.start(app.nursery)

    @app.after_serving
    async def _stop() -> None:
        await state.stop()

    @app.get("/models")
    @app.get("/v1/models")
    async def models() -> Response:
        from ..auth.identity import authenticate

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
        return _error_response(exc, state.scrubber)

    @app.errorhandler(404)
    async def _not_found(_: Any) -> Response:
        from .asgi import ROUTES

        if request.path in ROUTES:  # served by asgi.py for POST only: any other method lands here
            return await _not_allowed(None)
        return _json(404, {"error": {"message": f"No route {request.method} {request.path}. The proxy serves "
                                                "/v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models.",
                                     "type": "invalid_request_error", "param": None, "code": "route_not_found"}})

    @app.errorhandler(405)
    async def _not_allowed(_: Any) -> Response:
        return _json(405, {"error": {"message": f"Method {request.method} is not allowed on {request.path}.",
                                     "type": "invalid_request_error", "param": None, "code": "method_not_allowed"}})

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        if getattr(exc, "code", None) == 408 and hasattr(exc, "description"):
            # werkzeug's RequestTimeout: the body did not arrive within BODY_TIMEOUT; the rest is not read
            return _error_response(RequestTimeoutError(
                f"The request body was not received within {config.request_body_timeout:g} s "
                "(general_settings.request_body_timeout).", headers={"connection": "close"}), state.scrubber)
        if getattr(exc, "code", None) and hasattr(exc, "description") and not isinstance(exc, ProxyError):
            # a werkzeug HTTPException (e.g. 400 from a malformed request line)
            return _json(exc.code, {"error": {"message": str(exc.description), "type": "invalid_request_error",  # type: ignore[attr-defined]
                                              "param": None, "code": str(exc.code)}})  # type: ignore[attr-defined]
        log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
        return _error_response(exc, state.scrubber)

    return app


def create_asgi(config: ProxyConfig) -> Any:
    """What Hypercorn serves: the hot-path ASGI handler in front of the Quart app (see asgi.py)."""
    from .asgi import ProxyASGI

    return ProxyASGI(create_app(config))
