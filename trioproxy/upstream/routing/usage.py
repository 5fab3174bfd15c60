"""``usage-based-routing-v2``: the deployment with the fewest tokens used this minute, within limits.

Usage is counted per deployment per calendar minute (UTC, from the wall clock): a request counts
toward ``rpm`` when it is sent (as LiteLLM's pre-call check counts it, so a burst cannot overshoot
while answers are pending), its ``total_tokens`` toward ``tpm`` when it has answered.

A deployment is skipped for a request when sending it would exceed a limit it sets:
``requests + 1 > rpm`` or ``tokens + the request's estimated input tokens > tpm``. The rest are
ordered by tokens used this minute, fewest first, ties at random. When every deployment is over its
limits the group has none available: the plan moves to fallbacks, and the client gets a 429
``no_deployments_available`` with ``Retry-After`` (the seconds to the next minute) if nothing else
answers. ``latency-based-routing`` applies the same limits.

**Per process for now.** :class:`InMemoryUsageCounter` counts what this process sent. The counter is
behind :class:`UsageCounter` so that shared counting (Redis, issue #13) can replace it without
touching the strategies; it is synchronous because routing decides without awaiting: a shared
implementation keeps a local copy of the current minute, adds its own increments to it at once and
pushes them (``INCRBY`` on ``{key}:{minute}``) and pulls the others' in the background, as LiteLLM's
DualCache does. Limits are then approximate by at most one sync interval, which is also LiteLLM's.
"""

from __future__ import annotations

from typing import Any, Protocol

from .classify import ErrorKind
from .strategy import BaseStrategy
from .types import Candidate, Clock, RequestFacts, SystemClock

__all__ = ["EnforcedLimits", "InMemoryUsageCounter", "UsageBasedV2", "UsageCounter", "UsageLimits"]


class UsageCounter(Protocol):
    def add(self, key: str, minute: int, *, requests: int = 0, tokens: int = 0) -> None:
        """Count requests and tokens of deployment ``key`` in calendar minute ``minute``."""
        ...

    def get(self, key: str, minute: int) -> tuple[int, int]:
        """``(requests, tokens)`` counted for ``key`` in ``minute``."""
        ...


class InMemoryUsageCounter:
    """This process's counts; minutes before the previous one are dropped as new ones start."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], list[int]] = {}
        self._newest = 0

    def add(self, key: str, minute: int, *, requests: int = 0, tokens: int = 0) -> None:
        if minute > self._newest:
            self._newest = minute
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= minute - 1}
        entry = self._counts.setdefault((key, minute), [0, 0])
        entry[0] += requests
        entry[1] += tokens

    def get(self, key: str, minute: int) -> tuple[int, int]:
        entry = self._counts.get((key, minute))
        return (entry[0], entry[1]) if entry else (0, 0)


class UsageLimits:
    """Counting and the rpm/tpm check, shared by the strategies that honour limits."""

    def __init__(self, counter: UsageCounter | None = None, clock: Clock | None = None) -> None:
        self.counter = counter or InMemoryUsageCounter()
        self._clock = clock or SystemClock()

    def minute(self) -> int:
        return int(self._clock.time() // 60)

    def seconds_to_next_minute(self) -> float:
        now = self._clock.time()
        return (int(now // 60) + 1) * 60 - now

    def usage(self, key: str) -> tuple[int, int]:
        return self.counter.get(key, self.minute())

    def record_start(self, candidate: Candidate) -> None:
        self.counter.add(candidate.key, self.minute(), requests=1)

    def record_tokens(self, candidate: Candidate, tokens: int | None) -> None:
        if tokens:
            self.counter.add(candidate.key, self.minute(), tokens=tokens)

    def over_limit(self, candidate: Candidate, input_tokens: int, *, count_tokens: bool = True) -> bool:
        """Whether one more request would exceed ``rpm``, or (``count_tokens``) its tokens ``tpm``."""
        rpm, tpm = candidate.routing.rpm, candidate.routing.tpm
        if rpm is None and (tpm is None or not count_tokens):
            return False
        requests, tokens = self.usage(candidate.key)
        if rpm is not None and requests + 1 > rpm:
            return True
        return count_tokens and tpm is not None and tokens + max(input_tokens, 0) > tpm


class UsageBasedV2(BaseStrategy):
    name = "usage-based-routing-v2"

    def __init__(self, *, limits: UsageLimits | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.limits = limits or UsageLimits(clock=self._clock)

    def rank(self, tier: list[Candidate], facts: RequestFacts) -> list[Candidate]:
        allowed = [c for c in self._shuffled(tier) if not self.limits.over_limit(c, facts.input_tokens)]
        return sorted(allowed, key=lambda c: self.limits.usage(c.key)[1])

    def on_start(self, candidate: Candidate) -> None:
        self.limits.record_start(candidate)

    def on_success(self, candidate: Candidate, *, total_tokens: int | None = None, **_: object) -> None:
        self.limits.record_tokens(candidate, total_tokens)

    def on_failure(self, candidate: Candidate, kind: ErrorKind | None, *, latency: float) -> None:
        pass


class EnforcedLimits:
    """Deployment limits applied whatever the strategy (``RoutingSettings.enforced_limits``: LiteLLM's
    ``enable_pre_call_checks`` checks ``rpm``, ``enforce_model_rate_limits`` ``rpm`` and ``tpm``).

    A strategy that honours limits itself (usage-based, latency-based) already leaves out the
    deployments over them and counts their usage: its counter is shared, nothing is counted twice.
    For the others this counts starts and tokens, as they do.
    """

    def __init__(self, mode: str, strategy_limits: Any, counter: UsageCounter | None, clock: Clock) -> None:
        self.count_tokens = mode == "rpm+tpm"
        self._own = not isinstance(strategy_limits, UsageLimits)
        self.limits: UsageLimits = UsageLimits(counter, clock) if self._own else strategy_limits

    def allowed(self, order: list[Candidate], input_tokens: int) -> list[Candidate]:
        tokens = input_tokens if self.count_tokens else 0
        return [c for c in order if not self.limits.over_limit(c, tokens, count_tokens=self.count_tokens)]

    def on_start(self, candidate: Candidate) -> None:
        if self._own:
            self.limits.record_start(candidate)

    def on_success(self, candidate: Candidate, total_tokens: int | None) -> None:
        if self._own:
            self.limits.record_tokens(candidate, total_tokens)
