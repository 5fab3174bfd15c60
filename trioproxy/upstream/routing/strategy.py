"""The interface every routing strategy implements, and what they share.

A strategy answers one question — in which order should this group's deployments be tried? — and is
told what happened, so the next answer can be better:

* :meth:`Strategy.order` — the candidates to try, best first. The candidates given are already
  tag-filtered and out of cooldown. A strategy may leave some out (``usage-based-routing-v2`` and
  ``latency-based-routing`` drop deployments over their ``rpm``/``tpm`` for this minute); an empty
  list means "none may take this request now".
* :meth:`Strategy.on_start` — an attempt was sent to a candidate;
* :meth:`Strategy.on_success` — it answered in full (for a stream: the stream ended), with its
  latency, time to first token (streams) and tokens;
* :meth:`Strategy.on_failure` — it failed (``kind``), or was abandoned (``kind=None``: the client
  left or the request was cancelled — not the deployment's fault).

Every attempt gets exactly one of the last two after ``on_start``: the plan's ``Attempt`` object
guarantees it.

Deployment ``order`` (``litellm_params.order``, lower first) applies to every strategy: deployments
are split into tiers by ``order`` (unset last) and the strategy ranks each tier; so ``order: 2`` is
only reached when every ``order: 1`` deployment failed, cools down, or is over its limits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import groupby
from typing import Protocol

from .classify import ErrorKind
from .types import Candidate, Clock, RequestFacts, SystemClock

__all__ = ["BaseStrategy", "Strategy", "order_tiers"]


class Strategy(Protocol):
    name: str

    def order(self, candidates: Sequence[Candidate], facts: RequestFacts) -> list[Candidate]: ...

    def on_start(self, candidate: Candidate) -> None: ...

    def on_success(self, candidate: Candidate, *, latency: float, ttft: float | None,
                   completion_tokens: int | None, total_tokens: int | None, stream: bool) -> None: ...

    def on_failure(self, candidate: Candidate, kind: ErrorKind | None, *, latency: float) -> None: ...


def order_tiers(candidates: Sequence[Candidate]) -> list[list[Candidate]]:
    """The candidates split by ``order`` (lowest first; unset after every set value), config order
    kept inside a tier."""
    def tier(c: Candidate) -> float:
        return float("inf") if c.routing.order is None else c.routing.order
    return [list(group) for _, group in groupby(sorted(candidates, key=tier), key=tier)]


class BaseStrategy:
    """No-op hooks and the tiering; a strategy implements :meth:`rank` for one tier."""

    name = "base"

    def __init__(self, *, rng: random.Random | None = None, clock: Clock | None = None) -> None:
        self._rng = rng or random.Random()
        self._clock = clock or SystemClock()

    def order(self, candidates: Sequence[Candidate], facts: RequestFacts) -> list[Candidate]:
        out: list[Candidate] = []
        for tier in order_tiers(candidates):
            out += self.rank(tier, facts)
        return out

    def rank(self, tier: list[Candidate], facts: RequestFacts) -> list[Candidate]:
        raise NotImplementedError

    def on_start(self, candidate: Candidate) -> None:
        pass

    def on_success(self, candidate: Candidate, *, latency: float, ttft: float | None,
                   completion_tokens: int | None, total_tokens: int | None, stream: bool) -> None:
        pass

    def on_failure(self, candidate: Candidate, kind: ErrorKind | None, *, latency: float) -> None:
        pass

    def _shuffled(self, items: list[Candidate]) -> list[Candidate]:
        items = list(items)
        self._rng.shuffle(items)
        return items
