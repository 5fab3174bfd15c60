"""``simple-shuffle`` (the default): a weighted random order.

Weights, decided per group (as LiteLLM picks, with trioproxy's rule for ``weight: 0`` kept):

* if any deployment of the tier sets ``weight``, the weights are the ``weight`` values (unset: 1);
* otherwise, if every deployment sets ``rpm``, the ``rpm`` values; otherwise, if every one sets
  ``tpm``, the ``tpm`` values (a deployment allowed more traffic gets more of it);
* otherwise all weigh the same.

The first deployment is a weighted pick, the next a weighted pick among the rest, and so on: the
tail of the order is where retries go. A deployment of weight 0 is never picked while one with a
positive weight remains: it is a fallback only, tried last, in config order.
"""

from __future__ import annotations

from .strategy import BaseStrategy
from .types import Candidate, RequestFacts

__all__ = ["SimpleShuffle", "shuffle_weights"]


def shuffle_weights(tier: list[Candidate]) -> list[float]:
    if any(c.routing.weight is not None for c in tier):
        return [c.routing.weight if c.routing.weight is not None else 1.0 for c in tier]
    if all(c.routing.rpm is not None for c in tier):
        return [float(c.routing.rpm or 0) for c in tier]
    if all(c.routing.tpm is not None for c in tier):
        return [float(c.routing.tpm or 0) for c in tier]
    return [1.0] * len(tier)


class SimpleShuffle(BaseStrategy):
    name = "simple-shuffle"

    def rank(self, tier: list[Candidate], facts: RequestFacts) -> list[Candidate]:
        if len(tier) == 1:
            return list(tier)
        remaining = list(zip(tier, shuffle_weights(tier), strict=True))
        ordered: list[Candidate] = []
        while remaining:
            weights = [max(weight, 0.0) for _, weight in remaining]
            if sum(weights) > 0:
                index = self._rng.choices(range(len(remaining)), weights=weights)[0]
            else:
                index = 0       # only weight-0 deployments left: config order
            ordered.append(remaining.pop(index)[0])
        return ordered
