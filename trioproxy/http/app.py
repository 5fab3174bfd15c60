"""The Quart-Trio app: the secondary routes, the error envelopes of unknown routes, and the lifespan.

Views know nothing about hook order or cancellation. The app owns no resource itself: its lifespan
starts the proxy's services in the app's nursery (``before_serving``: ``Proxy.start``) and drains
them at shutdown (``after_serving``: ``Proxy.stop``); what they are is decided by the composition
root (``proxy.py``).

The three proxy endpoints (chat completions, completions, embeddings) are not Quart views: they are
served by the plain ASGI handler in ``asgi.py`` in front of this app (see there why). This app
serves everything else: the route groups of ``routes/`` (``/v1/models``, health, ``/metrics``, the
built-ins' routes), errors for unknown routes, and the lifespan.

One adapter (:class:`_ProxyHTTPConnection`, in the spirit of quart-trio's own class swaps) shields
the last body send of a response; its comment says why.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio
from quart import Response, request
from quart.routing import QuartMap
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection

from ..errors import ProxyError, RequestTimeoutError
from .auth import IDENTITY
from .errors import error_response, json_response
from .gate import client_ip
from .paths import ROUTES
from .routes import (
    admin,
    customers,
    docs,
    health,
    metrics,
    model_hub,
    models,
    robots,
    route_list,
    spend,
)

if TYPE_CHECKING:
    from ..proxy import Proxy

__all__ = ["ProxyApp", "make_app"]

log = logging.getLogger("trioproxy.app")

#: the route groups, registered in this order (``routes/__init__.py`` lists what each serves)
ROUTE_GROUPS = (models, health, robots, customers, metrics, model_hub, docs, admin, spend, route_list)


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
    open redirect, built from whatever ``Host`` the client sent. Paths are normalised before
    routing instead (``gate.AccessGate.admit``), and a path that still does not match is a 404
    in the OpenAI envelope; no route of the proxy ever answers with a redirect.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["merge_slashes"] = False
        kwargs["strict_slashes"] = False
        super().__init__(*args, **kwargs)


class ProxyApp(QuartTrio):
    asgi_http_class = _ProxyHTTPConnection
    url_map_class = _NoRedirectMap
    #: what the app serves and runs (the composition root's result)
    proxy: Proxy



#: the Quart routes (admin, customer block lists, health) take small JSON bodies
_QUART_BODY_CAP = 1024 * 1024


def make_app(proxy: Proxy) -> ProxyApp:
    """The Quart app serving ``proxy`` (built by ``proxy.build_proxy``)."""
    config = proxy.services.config
    scrubber = proxy.services.scrubber
    app = ProxyApp("trioproxy", static_folder=None)   # no /static route: nothing to serve there
    app.config.update(
        # the proxy routes (asgi.py) enforce max_request_size_mb themselves, with the seeds' message;
        # the routes served here (admin, health, metrics) take small bodies: cap them all the same
        MAX_CONTENT_LENGTH=min(config.max_request_bytes, _QUART_BODY_CAP),
        RESPONSE_TIMEOUT=None,
        # a whole body within request_body_timeout, as on the proxy routes (408, see _unexpected)
        BODY_TIMEOUT=config.request_body_timeout,
        PROVIDE_AUTOMATIC_OPTIONS=False,
    )
    app.proxy = proxy

    @app.before_serving
    async def _start() -> None:
        await proxy.start(app.nursery)

    @app.after_serving
    async def _stop() -> None:
        await proxy.stop()

    for group in ROUTE_GROUPS:
        group.register(app, proxy)

    gate = proxy.services.access

    @app.before_request
    async def _authorize() -> None:
        # The one route decision (gate.authorize) for every Quart route, before any view runs and so
        # before a body is read or validated. An unmatched path (404/405) has no rule to apply.
        if request.url_rule is None:
            return
        try:
            if gate.custom_auth is None:
                request.scope[IDENTITY] = await gate.authorize(request.headers, request.path, request.method,
                                                               client_ip(request.scope))
            else:   # custom_auth's Request may read the body: Quart reads it once and keeps it
                request.scope[IDENTITY] = await gate.authorize(
                    request.headers, request.path, request.method, client_ip(request.scope),
                    query_string=request.query_string, body=request.get_data)
        except ProxyError:
            # decided before the body, which is never parsed; the entry's guard (unread_body.py)
            # drains a small one or closes the connection, so the next request on it is safe
            raise

    @app.errorhandler(ProxyError)
    async def _proxy_error(exc: ProxyError) -> Response:
        return error_response(exc, scrubber)

    @app.errorhandler(404)
    async def _not_found(_: Any) -> Response:
        if request.path in ROUTES:  # served by asgi.py for POST only: any other method lands here
            return await _not_allowed(None)
        return json_response(404, {"error": {"message": f"No route {request.method} {request.path}. The proxy serves "
                                                        "/v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models.",
                                             "type": "invalid_request_error", "param": None, "code": "route_not_found"}})

    @app.errorhandler(405)
    async def _not_allowed(_: Any) -> Response:
        return json_response(405, {"error": {"message": f"Method {request.method} is not allowed on {request.path}.",
                                             "type": "invalid_request_error", "param": None,
                                             "code": "method_not_allowed"}})

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        if getattr(exc, "code", None) == 408 and hasattr(exc, "description"):
            # werkzeug's RequestTimeout: the body did not arrive within BODY_TIMEOUT; the rest is not read
            return error_response(RequestTimeoutError(
                f"The request body was not received within {config.request_body_timeout:g} s "
                "(general_settings.request_body_timeout).", headers={"connection": "close"}), scrubber)
        if getattr(exc, "code", None) and hasattr(exc, "description") and not isinstance(exc, ProxyError):
            # a werkzeug HTTPException (e.g. 400 from a malformed request line)
            return json_response(exc.code, {"error": {"message": str(exc.description),  # type: ignore[attr-defined]
                                                      "type": "invalid_request_error",
                                                      "param": None, "code": str(exc.code)}})  # type: ignore[attr-defined]
        # the route's template, not its path: /key/<key>/regenerate carries a clear key in its path
        where = request.url_rule.rule if request.url_rule is not None else "an unmatched path"
        log.error("unhandled error in %s %s", request.method, where, exc_info=exc)
        return error_response(exc, scrubber)

    return app
