"""What the proxy knows about one request, and the interface of those who are told about it.

:class:`RequestContext` is the request's record: created when a request arrives, filled in as it
goes (deployment, upstream body, timings, the final cost, the outcome). Its one owner is the
request's run (``core/run.py``), which makes every change to it; it lives here, in a leaf module,
because the observers that read it (``observability``, ``caching``) sit below the request core.

Observers (:class:`Observer`: the logging sink, metrics, the response cache) are given to the
pipeline as an explicit list when it is built; they receive the record at fixed moments and must
not block or raise: they copy what they need and hand it off (see ``observability/sink.py``).
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .auth.identity import Identity, UserAPIKeyAuth
    from .config import Deployment
    from .errors import ProxyError

__all__ = ["Observer", "RequestContext", "Route"]

_counter = itertools.count(1)
_prefix = os.urandom(4).hex()


@dataclass(frozen=True, slots=True)
class Route:
    """One OpenAI endpoint the pipeline serves."""

    endpoint: str                   # path below /v1, as sent upstream
    call_type: str                  # what hooks receive as call_type
    required: tuple[tuple[str, tuple[type, ...], str], ...]   # (field, types, description)
    can_stream: bool
    answers_with_text: bool         # a pre-call string becomes an answer (chat, text) or a 400


@dataclass
class RequestContext:
    route: Route
    request_headers: dict[str, str]
    id: str = field(default_factory=lambda: f"req-{_prefix}-{next(_counter)}")
    start_time: _dt.datetime = field(default_factory=_dt.datetime.now)
    start: float = field(default_factory=time.perf_counter)
    user: UserAPIKeyAuth | None = None
    #: who authenticated (``auth.Identity``: kind, key hash, a virtual key's immutable cached record
    #: with its user, team and membership) — what budgets and limits (issue #11) read
    identity: Identity | None = None
    #: the customer row of the request's ``user`` (the store's ``CustomerRecord``), when a database
    #: is configured and the row exists
    customer: Any = None
    #: the caller's address as the HTTP entry resolved it (``use_x_forwarded_for``); None if unknown
    requester_ip_address: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    requested_model: str | None = None
    #: the model group that served (or last tried to serve) the request: the requested name, or the
    #: fallback's (``upstream/routing``); what the logs report as ``model_group``
    model_group: str | None = None
    stream: bool = False
    client_wants_usage: bool = False
    deployment: Deployment | None = None
    upstream_body: dict[str, Any] | None = None
    upstream_start: float | None = None
    upstream_end: float | None = None
    first_chunk_at: float | None = None
    end: float | None = None
    response: Any = None             # the final response object (or assembled stream)
    usage: dict[str, Any] | None = None
    error: ProxyError | None = None
    status: int | None = None
    cache_hit: bool = False
    hook_timings: list[tuple[str, str, float]] = field(default_factory=list)   # (handler, phase, seconds)
    upstream_raw: bytes | None = None    # the upstream's (or the cache's) body, non-streaming
    upstream_response: Any = None        # streams: the upstream's answer assembled before any hook
    upstream_attempts: int = 0           # counted by the observability observer
    # the final cost, settled once (observability/cost.py): set by settle_cost only
    response_cost: float | None = None   # USD; None = unknown (unpriced model or no usage)
    cost_source: str | None = None       # "usage" | "estimate" | "free" | "unpriced" (docs/logging.md)
    log_chain: Any = None                # the logging sink's per-request ordering token
    cache_key: str | None = None         # the response cache's key for this request, once computed
    # exactly-once bookkeeping
    failure_hooks_ran: bool = False
    headers_hook_ran: bool = False
    outcome_reported: bool = False

    def settle_cost(self, cost: float | None, source: str | None) -> None:
        """Record the request's final cost (``observability/cost.py``: settled once, read by all)."""
        self.response_cost = cost
        self.cost_source = source

    @property
    def elapsed(self) -> float:
        return (self.end or time.perf_counter()) - self.start


class Observer(Protocol):
    """Told about every request. Methods are called on the Trio thread and must return at once.

    Every method is optional (an observer defines the moments it cares about); what one raises is
    logged and never reaches the request (``core/run.py``, ``Observers``).
    """

    def on_request_start(self, ctx: RequestContext) -> None:
        """Once per request as it enters the pipeline (in-flight gauges)."""

    def on_upstream_request(self, ctx: RequestContext) -> None:
        """The request is about to go upstream (``ctx.deployment``, ``ctx.upstream_body`` are set)."""

    def on_success(self, ctx: RequestContext) -> None:
        """Exactly once per successful request, after the answer (or the stream's end) is known."""

    def on_failure(self, ctx: RequestContext) -> None:
        """Exactly once per failed request (``ctx.error``), including client disconnects."""
