"""The pipeline's observer for logging and metrics: O(1) on the Trio thread, never awaits.

One :class:`RequestObserver` is given to the pipeline by the composition root (``proxy.py``), in
the explicit list of observers, before the response cache's. It hands events to the logging sink
(delivered off the request path) and updates the metrics. ``docs/logging.md`` is the user's
description; the ``GET /metrics`` route is ``http/routes/metrics.py``.
"""

from __future__ import annotations

from ..context import RequestContext
from .cost import CostCalculator
from .metrics import Metrics
from .payload import PRE_API_CALL, LogEvent
from .sink import LoggingSink

__all__ = ["REQUEST_LOGGER", "RequestObserver"]

#: one INFO line per finished request, carrying the structured record (``--log-format json``)
REQUEST_LOGGER = "trioproxy.requests"


class RequestObserver:
    """Logging events and metrics of every request. Never awaits, never blocks."""

    def __init__(self, sink: LoggingSink, metrics: Metrics, cost: CostCalculator) -> None:
        self.sink = sink
        self.metrics = metrics
        self.cost = cost

    def on_request_start(self, ctx: RequestContext) -> None:
        self.metrics.request_started()

    def on_upstream_request(self, ctx: RequestContext) -> None:
        ctx.upstream_attempts += 1
        if self.sink.wants_pre():
            # the body and deployment of *this* attempt: a retry replaces them on the context
            self.sink.submit(LogEvent(PRE_API_CALL, ctx, ctx.deployment, ctx.upstream_body, ctx.upstream_attempts))

    # The logging event is submitted first: "exactly one outcome event" must not depend on the
    # metrics working (the pipeline logs and swallows what an observer raises).
    def on_success(self, ctx: RequestContext) -> None:
        if self.sink.wants_final(ctx):
            self.sink.submit(LogEvent("success", ctx))
        self.metrics.request_finished(ctx, self.cost.reported_tokens(ctx))

    def on_failure(self, ctx: RequestContext) -> None:
        if self.sink.wants_final(ctx):
            self.sink.submit(LogEvent("failure", ctx))
        self.metrics.request_finished(ctx, (None, None))
