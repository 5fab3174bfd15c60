"""LiteLLM's budget routing: spend limits per provider, per deployment and per request tag.

Configured with LiteLLM's names (``validate.py`` reads them)::

    router_settings:
      provider_budget_config:          # per provider (the prefix of litellm_params.model)
        openai: {budget_limit: 100, time_period: 1d}     # also {max_budget, budget_duration}
    model_list:
      - litellm_params: {model: openai/gpt-4o, max_budget: 10, budget_duration: 1d}   # per deployment
    litellm_settings:
      tag_budget_config:               # per request tag (the request's tags, as routing reads them)
        "product:chat-bot": {max_budget: 5, budget_duration: 1d}

What they mean (LiteLLM's ``RouterBudgetLimiting``, a filter like the tag filter):

* Every successful request adds its cost (the proxy's ``response_cost``) to the spend of the
  deployment's provider, of the deployment and of each of the request's tags that has a budget.
* A **window** starts with the first spend and lasts the period (``1d``, ``30d``, ``1mo`` a calendar
  month, …); the next spend after it ends starts a new window from zero.
* Before the strategy chooses, a deployment is left out when its provider's spend or its own has
  reached its budget (``spend >= budget``); when a tag of the request has reached its budget,
  every deployment is left out. None left: 429 ``no_deployments_available`` ("crossed budget",
  ``Retry-After`` = the seconds until the first window that blocks ends), and the group's
  fallbacks are tried (a fallback group on another provider may still be within budget).

Spend is kept **per process** (as routing's usage and cooldowns are, docs/routing.md): with
``--workers N`` each worker enforces the budget on what it sent. LiteLLM keeps it in its router
cache (Redis when configured). A cost not known when the answer ends (an upstream that reported no
usage, counted later by the logging worker) is not added.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import NoDeploymentsAvailableError
from .types import Candidate, Clock, T, split_model

__all__ = ["Budget", "BudgetPeriod", "RouterBudgets"]

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class BudgetPeriod:
    """``<amount><unit>``: s, m, h, d, w, or mo (calendar months, as LiteLLM's ``duration_in_seconds``)."""

    amount: int
    unit: str

    def end(self, start: float) -> float:
        """The epoch second a window started at ``start`` ends."""
        if self.unit != "mo":
            return start + self.amount * _SECONDS[self.unit]
        begin = datetime.fromtimestamp(start, UTC)
        month0 = begin.month - 1 + self.amount
        year, month = begin.year + month0 // 12, month0 % 12 + 1
        day = min(begin.day, calendar.monthrange(year, month)[1])
        return begin.replace(year=year, month=month, day=day).timestamp()

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True, slots=True)
class Budget:
    max_budget: float       # USD
    period: BudgetPeriod


@dataclass(slots=True)
class _Window:
    start: float
    end: float
    spent: float = 0.0


class RouterBudgets:
    """The budgets of one routing service, and the spend in their current windows."""

    def __init__(self, *, providers: Mapping[str, Budget] | None = None,
                 deployments: Mapping[str, Budget] | None = None, tags: Mapping[str, Budget] | None = None,
                 clock: Clock | None = None) -> None:
        self.providers = dict(providers or {})
        self.deployments = dict(deployments or {})
        self.tags = dict(tags or {})
        self._clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}

    def __bool__(self) -> bool:
        return bool(self.providers or self.deployments or self.tags)

    def _now(self) -> float:
        return self._clock.time() if self._clock is not None else time.time()

    def _current(self, kind: str, name: str, budget: Budget | None, now: float) -> _Window | None:
        window = self._windows.get((kind, name))
        if window is not None and now >= window.end:
            del self._windows[(kind, name)]
            return None
        return window

    def spent(self, kind: str, name: str) -> float:
        """This window's spend of a ``provider`` / ``deployment`` / ``tag`` (0 when none is open)."""
        budget = {"provider": self.providers, "deployment": self.deployments, "tag": self.tags}[kind].get(name)
        window = self._current(kind, name, budget, self._now()) if budget is not None else None
        return window.spent if window is not None else 0.0

    def _over(self, kind: str, name: str, budget: Budget | None, now: float) -> tuple[str, float] | None:
        """Why ``name`` may not be used (and when that ends), or None when it is within its budget."""
        window = self._current(kind, name, budget, now) if budget is not None else None
        if budget is None or window is None or window.spent < budget.max_budget:
            return None
        return (f"{kind} {name!r} spent {window.spent:.6g} of {budget.max_budget:g} USD ({budget.period})",
                window.end)

    def filter(self, requested: str, candidates: Sequence[Candidate[T]],
               tags: Iterable[str] = ()) -> tuple[list[Candidate[T]], NoDeploymentsAvailableError | None]:
        """The deployments within every budget; when none is, the 429 that says which budgets."""
        now = self._now()
        blocks = [b for tag in dict.fromkeys(tags) if (b := self._over("tag", tag, self.tags.get(tag), now))]
        kept: list[Candidate[T]] = []
        if not blocks:
            for candidate in candidates:
                provider = split_model(candidate.model)[0]
                block = self._over("provider", provider, self.providers.get(provider), now) or \
                    self._over("deployment", candidate.id, self.deployments.get(candidate.id), now)
                if block is None:
                    kept.append(candidate)
                else:
                    blocks.append(block)
        if kept:
            return kept, None
        reason = "crossed budget: " + "; ".join(dict.fromkeys(why for why, _ in blocks))
        first_end = min((end for _, end in blocks), default=now + 1)
        return [], NoDeploymentsAvailableError(requested, reason, retry_after=max(first_end - now, 1.0))

    def record(self, *, deployment_id: str | None, provider: str | None, tags: Iterable[str], cost: float) -> None:
        """A successful request's cost: added to its provider's, deployment's and tags' windows."""
        if not cost or cost < 0:
            return
        now = self._now()
        targets = [("provider", provider, self.providers.get(provider) if provider else None),
                   ("deployment", deployment_id, self.deployments.get(deployment_id) if deployment_id else None)]
        targets += [("tag", tag, self.tags.get(tag)) for tag in dict.fromkeys(tags)]
        for kind, name, budget in targets:
            if budget is None or name is None:
                continue
            window = self._current(kind, name, budget, now)
            if window is None:
                window = self._windows[(kind, name)] = _Window(now, budget.period.end(now))
            window.spent += cost
