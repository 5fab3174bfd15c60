"""Prometheus metrics: one ``CollectorRegistry`` per app, served at ``GET /metrics``.

Why a registry per app and not prometheus_client's global one: tests (and anyone embedding the
proxy) build several apps in one process, and each must count only its own requests.

Label values are bounded on purpose. ``model`` is a configured model name, ``"other"`` for a name
the proxy does not serve (a client sending random names must not create unbounded series) and
``"none"`` when the request had no model; ``handler``, ``guardrail`` and ``callback`` come from the
config.

**With ``--workers N`` a scrape sees the totals of every worker** (prometheus_client's multiprocess
mode): ``trioproxy run`` sets ``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory, removed at exit)
before Hypercorn spawns the workers, so each worker's values live in memory-mapped files there, and
whichever worker answers ``/metrics`` reads all of them (:func:`multiprocess_dir`). Counters and
histograms are summed; ``requests_in_flight`` is summed over live workers (``livesum``); the
logging-queue gauges are read from the answering worker only (they are callbacks on its own sink).
Why this and not a shared counter service: it is prometheus_client's own documented mechanism,
costs the same per update (an mmap write), and needs no process of its own. One process (no
``--workers``) keeps the in-memory registry.

Recording happens in the observer on the Trio thread; each update is a dict lookup and a
lock-protected add (microseconds). Rendering runs in a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from ..context import RequestContext
from .cost import Tokens

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROC_ENV", "Metrics", "multiprocess_dir"]

#: prometheus_client's variable: set, every process writes its values to files in that directory
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode, when this process is in it.

    prometheus_client chooses the mode when ``prometheus_client.values`` is imported, from the
    environment; so does this (a variable set later would make the scrape read files nobody writes).
    """
    from prometheus_client import values

    path = os.environ.get(MULTIPROC_ENV)
    if path and values.ValueClass is not values.MutexValue:
        return path
    return None

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_HOOK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, model_names: Iterable[str]) -> None:
        self.models = frozenset(model_names)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._sink: _SinkCollector | None = None
        self.registry = registry = CollectorRegistry(auto_describe=True)
        p = "trioproxy_"
        self.requests = Counter(p + "requests", "Requests answered, by model, route and HTTP status "
                                "(499: the client disconnected)", ["model", "route", "status"], registry=registry)
        self._multiprocess_dir = multiprocess_dir()
        self.in_flight = Gauge(p + "requests_in_flight", "Requests being handled (streams until their end)",
                               registry=registry, multiprocess_mode="livesum")
        self.latency = Histogram(p + "request_duration_seconds", "Total time of a request, to the last byte",
                                 ["model", "route"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.upstream_latency = Histogram(
            p + "upstream_duration_seconds",
            "Time the upstream took to answer (streams: to its status line)",
            ["model", "route"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.ttft = Histogram(p + "time_to_first_token_seconds", "Streams: time from request to first chunk sent",
                              ["model", "route"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.hook_latency = Histogram(p + "hook_duration_seconds", "Time of one hook call",
                                      ["handler", "phase"], buckets=_HOOK_BUCKETS, registry=registry)
        self.phase_latency = Histogram(
            p + "phase_duration_seconds",
            "Time a request spent in each hook phase, summed over its handlers "
            "(the upstream's share is trioproxy_upstream_duration_seconds)",
            ["phase"], buckets=_HOOK_BUCKETS, registry=registry)
        self.tokens = Counter(p + "tokens", "Tokens billed by upstreams (cache hits excluded)",
                              ["model", "type"], registry=registry)
        self.spend = Counter(p + "spend_usd", "Cost of requests in USD (priced models only)",
                             ["model"], registry=registry)
        self.unpriced = Counter(p + "unpriced_requests", "Successful upstream requests whose cost is unknown",
                                ["model"], registry=registry)
        self.cache_lookups = Counter(p + "cache_lookups", "Response cache lookups by result (hit, miss)",
                                     ["model", "route", "result"], registry=registry)
        self.rejections = Counter(p + "guardrail_rejections", "Requests rejected by a guardrail",
                                  ["guardrail"], registry=registry)
        self.callback_errors = Counter(p + "logging_callback_errors",
                                       "Logging callback calls that raised or overran their time limit",
                                       ["callback", "reason"], registry=registry)

    def bind_sink(self, depth: Callable[[], float], dropped: Callable[[], float]) -> None:
        """Queue depth and drops are read from the sink at scrape time (no bookkeeping per event)."""
        self._sink = _SinkCollector(depth, dropped)
        self.registry.register(self._sink)

    def model_label(self, model: object) -> str:
        if not isinstance(model, str):
            return "none"
        return model if model in self.models else "other"

    # -- recording (observer, Trio thread) ---------------------------------------------------------
    # ``labels(...)`` costs about as much as the update itself; the labelled children are cached so
    # that a request's whole record is ~10 µs.
    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request_started(self) -> None:
        self.in_flight.inc()

    def request_finished(self, ctx: RequestContext, tokens: Tokens) -> None:
        model = self.model_label(ctx.requested_model)
        route = ctx.route.endpoint
        child = self._child
        self.in_flight.dec()
        child(self.requests, model, route, str(ctx.status)).inc()
        child(self.latency, model, route).observe(ctx.elapsed)
        if ctx.upstream_start is not None and ctx.upstream_end is not None:
            child(self.upstream_latency, model, route).observe(max(ctx.upstream_end - ctx.upstream_start, 0.0))
        if ctx.first_chunk_at is not None:
            child(self.ttft, model, route).observe(ctx.first_chunk_at - ctx.start)
        if ctx.hook_timings:
            phases: dict[str, float] = {}
            for handler, phase, seconds in ctx.hook_timings:
                child(self.hook_latency, handler, phase).observe(seconds)
                phases[phase] = phases.get(phase, 0.0) + seconds
            for phase, seconds in phases.items():
                child(self.phase_latency, phase).observe(seconds)
        guardrail = getattr(ctx.error, "guardrail", None)
        if guardrail:
            child(self.rejections, str(guardrail)).inc()
        if ctx.error is None and not ctx.cache_hit and ctx.deployment is not None:
            self.record_usage(ctx, tokens)

    def record_usage(self, ctx: RequestContext, tokens: Tokens) -> None:
        """Tokens and spend of one answered request (called again later for estimated usage)."""
        model = self.model_label(ctx.requested_model)
        prompt, completion = tokens
        if prompt is None and completion is None:
            return  # usage still unknown: the logging sink estimates it and calls again
        self._child(self.tokens, model, "prompt").inc(prompt or 0)
        self._child(self.tokens, model, "completion").inc(completion or 0)
        if ctx.response_cost is None:
            self._child(self.unpriced, model).inc()
        else:
            self._child(self.spend, model).inc(ctx.response_cost)

    def cache_lookup(self, ctx: RequestContext, hit: bool) -> None:
        self.cache_lookups.labels(self.model_label(ctx.requested_model), ctx.route.endpoint,
                                  "hit" if hit else "miss").inc()

    def callback_failed(self, callback: str, reason: str) -> None:
        self.callback_errors.labels(callback, reason).inc()

    def render(self) -> bytes:
        """The exposition text (in a worker thread: multiprocess mode reads every worker's files)."""
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, self._multiprocess_dir)
        if self._sink is not None:
            every_worker.register(self._sink)
        return generate_latest(every_worker)


class _SinkCollector(Collector):
    def __init__(self, depth: Callable[[], float], dropped: Callable[[], float]) -> None:
        self._depth = depth
        self._dropped = dropped

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("trioproxy_logging_queue_depth", "Logging events waiting for delivery",
                                value=self._depth())
        yield CounterMetricFamily("trioproxy_logging_events_dropped",
                                  "Logging events dropped because the queue was full (or left at shutdown)",
                                  value=self._dropped())
