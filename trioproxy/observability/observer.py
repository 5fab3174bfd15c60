"""Wiring the logging sink, cost, metrics and the response cache into the app.

:func:`install` is called once per app with its ``ProxyState``; it builds the parts from the config
(raising :class:`~trioproxy.config.ConfigError` for a bad callback or cache setting, so a broken
config stops startup) and connects them:

* one :class:`RequestObserver` in ``state.observers``: it updates the metrics, stores answers in
  the response cache and hands events to the logging sink, all in O(1) on the Trio thread;
* the :class:`~trioproxy.logging_sink.LoggingSink` in ``state.services`` (run in the app nursery,
  drained at shutdown);
* ``pipeline.cost_of`` (the ``x-trioproxy-response-cost`` header) and ``pipeline.response_cache``.

:func:`register_routes` adds ``GET /metrics``. ``docs/logging.md`` is the user's description.
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from quart import Response, request

from ..auth.identity import authenticate
from ..caching.response_cache import (
    DEFAULT_MAX_SIZE,
    DEFAULT_TTL,
    LocalCache,
    ResponseCache,
    normalize_call_types,
)
from ..config import ConfigError, ProxyConfig
from ..context import RequestContext
from .callbacks import load_callbacks
from .cost import CostCalculator
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .payload import PRE_API_CALL, LogEvent
from .sink import (
    DEFAULT_CALLBACK_ERROR_LOG_INTERVAL,
    DEFAULT_CALLBACK_TIMEOUT,
    DEFAULT_QUEUE_SIZE,
    LoggingSink,
)

__all__ = ["REQUEST_LOGGER", "RequestObserver", "install", "register_routes"]

#: one INFO line per finished request, carrying the structured record (``--log-format json``)
REQUEST_LOGGER = "trioproxy.requests"


class RequestObserver:
    """The pipeline's observer for everything in this module. Never awaits, never blocks."""

    def __init__(self, sink: LoggingSink, metrics: Metrics, cost: CostCalculator,
                 cache: ResponseCache | None) -> None:
        self.sink = sink
        self.metrics = metrics
        self.cost = cost
        self.cache = cache

    def on_request_start(self, ctx: RequestContext) -> None:
        self.metrics.request_started()

    def on_upstream_request(self, ctx: RequestContext) -> None:
        ctx.upstream_attempts += 1
        if self.sink.wants_pre():
            # the body and deployment of *this* attempt: a retry replaces them on the context
            self.sink.submit(LogEvent(PRE_API_CALL, ctx, ctx.deployment, ctx.upstream_body, ctx.upstream_attempts))

    # The logging event is submitted first: "exactly one outcome event" must not depend on the
    # metrics or the cache store working (the pipeline logs and swallows what an observer raises).
    def on_success(self, ctx: RequestContext) -> None:
        if ctx.cost_source is None:  # streams: the usage chunk arrived after the headers
            ctx.response_cost = self.cost(ctx)
        if self.sink.wants_final(ctx):
            self.sink.submit(LogEvent("success", ctx))
        self.metrics.request_finished(ctx, self.cost.reported_tokens(ctx))
        if self.cache is not None:
            self.cache.store(ctx)

    def on_failure(self, ctx: RequestContext) -> None:
        if self.sink.wants_final(ctx):
            self.sink.submit(LogEvent("failure", ctx))
        self.metrics.request_finished(ctx, (None, None))


def _response_cache(config: ProxyConfig, metrics: Metrics) -> ResponseCache | None:
    settings = config.litellm_settings
    if not settings.get("cache"):
        return None
    params = settings.get("cache_params") or {}
    try:
        call_types = normalize_call_types(params.get("supported_call_types")
                                          or ("completion", "text_completion", "embeddings"))
    except ValueError as exc:
        raise ConfigError([f"{config.source}: litellm_settings.cache_params.supported_call_types: {exc}"]) from None
    backend = LocalCache(max_size=int(params.get("max_size", DEFAULT_MAX_SIZE)))
    return ResponseCache(backend, ttl=float(params.get("ttl", DEFAULT_TTL)), namespace=params.get("namespace", ""),
                         call_types=call_types, on_lookup=metrics.cache_lookup)


def install(state: Any) -> None:
    """Attach observers and services to a freshly built ProxyState. Raises ConfigError."""
    config: ProxyConfig = state.config
    general = config.general_settings
    callbacks = load_callbacks(config, state.handlers.loggers)
    cost = CostCalculator()
    metrics = Metrics(state.router.model_names)
    sink = LoggingSink(
        callbacks,
        scrubber=state.scrubber,
        cost=cost,
        queue_size=int(general.get("logging_queue_size", DEFAULT_QUEUE_SIZE)),
        callback_timeout=float(general.get("callback_timeout_seconds", DEFAULT_CALLBACK_TIMEOUT)),
        request_log=logging.getLogger(REQUEST_LOGGER),
        on_callback_error=metrics.callback_failed,
        on_estimate=metrics.record_usage,
        error_log_interval=float(general.get("callback_error_log_interval", DEFAULT_CALLBACK_ERROR_LOG_INTERVAL)),
    )
    metrics.bind_sink(lambda: sink.depth, lambda: sink.dropped)
    cache = _response_cache(config, metrics)
    state.metrics = metrics
    state.logging_sink = sink
    state.response_cache = cache
    state.pipeline.cost_of = cost
    state.pipeline.response_cache = cache
    state.observers.append(RequestObserver(sink, metrics, cost, cache))
    state.services.append(sink)


def register_routes(app: Any, state: Any) -> None:
    """``GET /metrics``: Prometheus text format; behind the master key unless ``metrics_public``."""
    public = bool(state.config.general_settings.get("metrics_public", False))
    master_key = state.config.master_key

    @app.get("/metrics")
    async def metrics() -> Response:
        if not public:
            authenticate(master_key, request.headers)
        body = await trio.to_thread.run_sync(state.metrics.render)
        return Response(body, status=200, content_type=CONTENT_TYPE_LATEST)
