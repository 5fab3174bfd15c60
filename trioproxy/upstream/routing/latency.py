"""``latency-based-routing``: the deployment that answered fastest lately first.

Each deployment keeps its last ``max_latency_list_size`` (default 10) samples younger than ``ttl``
seconds (default 3600):

* a success records its latency **per completion token** when the answer reports completion tokens
  (a long answer is not a slow deployment), else its latency in seconds; for a stream it also
  records the time to first token (seconds);
* a failure by timeout records a penalty of :data:`TIMEOUT_PENALTY` seconds; other failures record
  nothing (cooldowns deal with failing deployments).

A deployment's score is the mean of its samples — of its time-to-first-token samples for a streaming
request when it has some. A deployment without samples scores 0, so new (or long-idle) deployments
are tried and measured first. Deployments within ``lowest_latency_buffer`` of the best score
(``score <= best * (1 + buffer)``, default buffer 0) come first in random order, so a small advantage
does not send every request to one deployment; the others follow, fastest first. Deployments over
their ``rpm``/``tpm`` for this minute are skipped, as in ``usage-based-routing-v2``.

Samples are this process's own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from .classify import ErrorKind
from .strategy import BaseStrategy
from .types import Candidate, RequestFacts
from .usage import UsageLimits

__all__ = ["TIMEOUT_PENALTY", "LatencyArgs", "LatencyBased"]

#: seconds recorded for an attempt that timed out (LiteLLM's penalty)
TIMEOUT_PENALTY = 1000.0


@dataclass(frozen=True, slots=True)
class LatencyArgs:
    """``router_settings.routing_strategy_args`` of ``latency-based-routing``."""

    ttl: float = 3600.0
    lowest_latency_buffer: float = 0.0
    max_latency_list_size: int = 10


class LatencyBased(BaseStrategy):
    name = "latency-based-routing"

    def __init__(self, *, args: LatencyArgs | None = None, limits: UsageLimits | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.args = args or LatencyArgs()
        self.limits = limits or UsageLimits(clock=self._clock)
        self._latency: dict[str, deque[tuple[float, float]]] = {}
        self._ttft: dict[str, deque[tuple[float, float]]] = {}

    # -- scores ----------------------------------------------------------------------------------

    def _record(self, table: dict[str, deque[tuple[float, float]]], key: str, value: float) -> None:
        samples = table.get(key)
        if samples is None:
            samples = table[key] = deque(maxlen=self.args.max_latency_list_size)
        samples.append((self._clock.monotonic(), value))

    def _mean(self, table: dict[str, deque[tuple[float, float]]], key: str) -> float | None:
        samples = table.get(key)
        if not samples:
            return None
        oldest = self._clock.monotonic() - self.args.ttl
        while samples and samples[0][0] < oldest:
            samples.popleft()
        if not samples:
            return None
        return sum(value for _, value in samples) / len(samples)

    def score(self, key: str, *, stream: bool = False) -> float:
        if stream:
            ttft = self._mean(self._ttft, key)
            if ttft is not None:
                return ttft
        mean = self._mean(self._latency, key)
        return 0.0 if mean is None else mean

    # -- strategy --------------------------------------------------------------------------------

    def rank(self, tier: list[Candidate], facts: RequestFacts) -> list[Candidate]:
        allowed = [c for c in self._shuffled(tier) if not self.limits.over_limit(c, facts.input_tokens)]
        if not allowed:
            return []
        scored = sorted(((self.score(c.key, stream=facts.stream), c) for c in allowed), key=lambda s: s[0])
        bound = scored[0][0] * (1 + self.args.lowest_latency_buffer)
        near = [c for score, c in scored if score <= bound]
        rest = [c for score, c in scored if score > bound]
        return self._shuffled(near) + rest

    def on_start(self, candidate: Candidate) -> None:
        self.limits.record_start(candidate)

    def on_success(self, candidate: Candidate, *, latency: float, ttft: float | None,
                   completion_tokens: int | None, total_tokens: int | None, stream: bool) -> None:
        value = latency / completion_tokens if completion_tokens else latency
        self._record(self._latency, candidate.key, value)
        if stream and ttft is not None:
            self._record(self._ttft, candidate.key, ttft)
        self.limits.record_tokens(candidate, total_tokens)

    def on_failure(self, candidate: Candidate, kind: ErrorKind | None, *, latency: float) -> None:
        if kind is ErrorKind.TIMEOUT:
            self._record(self._latency, candidate.key, TIMEOUT_PENALTY)
