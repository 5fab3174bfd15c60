"""``least-busy``: the deployment with the fewest requests in flight first.

A request is in flight on a deployment from ``on_start`` until its success (for a stream: the end of
the stream), failure or abandonment. Ties are broken at random, so equally idle deployments share the
load. Counts are this process's (each worker routes its own requests; they are not shared).
"""

from __future__ import annotations

from typing import Any

from .classify import ErrorKind
from .strategy import BaseStrategy
from .types import Candidate, RequestFacts

__all__ = ["LeastBusy"]


class LeastBusy(BaseStrategy):
    name = "least-busy"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._in_flight: dict[str, int] = {}

    def in_flight(self, key: str) -> int:
        return self._in_flight.get(key, 0)

    def rank(self, tier: list[Candidate], facts: RequestFacts) -> list[Candidate]:
        return sorted(self._shuffled(tier), key=lambda c: self.in_flight(c.key))

    def on_start(self, candidate: Candidate) -> None:
        self._in_flight[candidate.key] = self.in_flight(candidate.key) + 1

    def _done(self, candidate: Candidate) -> None:
        left = self.in_flight(candidate.key) - 1
        if left > 0:
            self._in_flight[candidate.key] = left
        else:
            self._in_flight.pop(candidate.key, None)

    def on_success(self, candidate: Candidate, **_: object) -> None:
        self._done(candidate)

    def on_failure(self, candidate: Candidate, kind: ErrorKind | None, *, latency: float) -> None:
        self._done(candidate)
