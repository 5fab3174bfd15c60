"""One request's way through groups and deployments, and the long-lived service that makes plans.

:class:`Routing` is built once from the config (candidates + :class:`~.settings.RoutingSettings`) and
holds what outlives a request: the resolver, the strategy's statistics, cooldowns, usage. For each
request the router asks it for a :class:`RoutingPlan` and then loops::

    plan = routing.plan(body["model"], facts)        # NotFoundError (404) for an unknown model
    while (attempt := plan.next_attempt()) is not None:
        try:
            answer = await send(attempt.candidate.target, attempt.model, ...)
        except ProxyError as error:
            attempt.failed(error)                    # the plan decides what comes next
            continue
        except BaseException:
            attempt.abandoned()                      # cancelled, client gone: nobody's fault
            raise
        attempt.answered()                           # status line in: no other attempt will be made
        ...                                          # relay; then exactly one of:
        attempt.succeeded(completion_tokens=…, total_tokens=…)   # end of answer / stream
        attempt.failed(error, first_byte_sent=True)              # stream broke: health only
    raise plan.error

``adapter.call_with_plan`` is that loop. Rules the plan implements, in order:

1. **Enter a group** (the requested one, then fallbacks): tag filter → LiteLLM's pre-call checks
   when ``enable_pre_call_checks`` is on (:mod:`.pre_call`: context window, customer region) → drop
   deployments cooling down → the strategy's order → the deployment limits enforced whatever the
   strategy (``enforced_limits``). None left: the group is *unavailable* — tags (400), the prompt
   too long for every deployment (400 ``context_length_exceeded``: its ``context_window_fallbacks``
   come next), no deployment in the region (400), rpm/tpm (429) or all cooling — and its general
   fallbacks come next.
2. **Attempts in a group**: at most ``1 + retries`` (retries: the smallest ``max_retries`` of its
   deployments, else ``num_retries``). Untried deployments first, in the strategy's order, then round
   again. A deployment cooling down is skipped.
3. **After a failure**: a retryable error (``retryable(error)``: the request cannot have reached the
   model — connection errors, 5xx but 501/504, connect timeouts) may go to any deployment of the group;
   a 429 / 401 / 403 / 402 only to one not tried yet (that deployment refused, another may not);
   anything else ends the group. A group that ends hands over to its fallbacks (``fallbacks.py``).
4. **First byte**: a failure with ``first_byte_sent=True``, or after ``answered()``, ends the plan:
   it is recorded for health, nothing else is tried.
5. **Last resort**: when nothing answered and a group was skipped only because all its deployments
   were cooling down, one attempt is made on its deployment whose cooldown ends first (a cooldown is
   there to route around a deployment; with nowhere else to go, refusing would turn a possible
   failure into a certain one).
6. **The answer when nothing answered** (:attr:`RoutingPlan.error`): the error that ended the plan
   after the first byte; else the first upstream error of the request (LiteLLM answers its
   "original exception" too); else why the requested group could not be used.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic

from ...errors import (
    APIConnectionError,
    NotFoundError,
    ProxyError,
    ServiceUnavailableError,
    Timeout,
)
from .budgets import RouterBudgets
from .classify import ErrorKind, FallbackKind, classify, fallback_kind, status_of
from .cooldowns import Cooldowns
from .errors import NoDeploymentsAvailableError, NoDeploymentsForTagsError
from .fallbacks import FallbackPlanner
from .latency import LatencyBased
from .least_busy import LeastBusy
from .pre_call import PreCallChecks
from .resolver import ModelResolver, Route, infer_providers
from .settings import RoutingSettings
from .shuffle import SimpleShuffle
from .strategy import Strategy
from .tags import TagFilter
from .types import Candidate, Clock, RequestFacts, SystemClock, T
from .usage import EnforcedLimits, UsageBasedV2, UsageCounter, UsageLimits

__all__ = ["Attempt", "RoutingPlan", "Routing", "build_strategy", "default_retryable"]

#: failures after which the same deployment is not tried again, but another one may be
_REFUSED = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.AUTH, ErrorKind.PAYMENT})


def default_retryable(error: ProxyError) -> bool:
    """Whether the request may not have reached the model (so another attempt cannot double it).

    The error's own verdict (``error.retryable``, recorded where upstream errors are made) wins;
    else today's ``router.is_retryable`` rule. The wiring passes ``router.is_retryable`` itself.
    """
    said = getattr(error, "retryable", None)
    if said is not None:
        return bool(said)
    if isinstance(error, APIConnectionError | ServiceUnavailableError):
        return True
    if isinstance(error, Timeout):
        cause = error.__cause__
        return cause is not None and type(cause).__name__ in ("ConnectTimeout", "PoolTimeout")
    status = status_of(error) or 500
    return status >= 500 and status not in (501, 504)


def build_strategy(settings: RoutingSettings, *, clock: Clock, rng: random.Random,
                   usage_counter: UsageCounter | None = None) -> Strategy:
    name = settings.routing_strategy
    if name == "simple-shuffle":
        return SimpleShuffle(rng=rng, clock=clock)
    if name == "least-busy":
        return LeastBusy(rng=rng, clock=clock)
    limits = UsageLimits(usage_counter, clock)
    if name == "latency-based-routing":
        return LatencyBased(args=settings.latency_args, limits=limits, rng=rng, clock=clock)
    if name == "usage-based-routing-v2":
        return UsageBasedV2(limits=limits, rng=rng, clock=clock)
    raise ValueError(f"unknown routing_strategy {name!r}")


class Routing(Generic[T]):
    """The routing service: one per process, built from the config, shared by every request."""

    def __init__(self, candidates: Iterable[Candidate[T]], settings: RoutingSettings | None = None, *,
                 clock: Clock | None = None, rng: random.Random | None = None,
                 retryable: Callable[[ProxyError], bool] = default_retryable,
                 usage_counter: UsageCounter | None = None,
                 infer: Callable[[str], tuple[str, ...]] = infer_providers) -> None:
        candidates = list(candidates)
        #: every deployment as configured (wildcard matches are made per request from these)
        self.candidates: tuple[Candidate[T], ...] = tuple(candidates)
        self.settings = settings or RoutingSettings()
        self.clock = clock or SystemClock()
        self.resolver: ModelResolver[T] = ModelResolver(candidates, self.settings.model_group_alias, infer)
        self.strategy = build_strategy(self.settings, clock=self.clock, rng=rng or random.Random(),
                                       usage_counter=usage_counter)
        self.cooldowns = Cooldowns(self.settings.cooldown_settings, self.clock)
        self.tags = TagFilter(self.settings.enable_tag_filtering, self.settings.tag_filtering_match_any)
        self.fallbacks = FallbackPlanner(self.settings.fallback_settings)
        self.retryable = retryable
        self.pre_call = PreCallChecks() if self.settings.enable_pre_call_checks else None
        self.budgets = RouterBudgets(
            providers=self.settings.provider_budgets, tags=self.settings.tag_budgets, clock=self.clock,
            deployments={c.id: c.routing.budget for c in candidates if c.routing.budget is not None})
        self.enforced = EnforcedLimits(self.settings.enforced_limits, getattr(self.strategy, "limits", None),
                                       usage_counter, self.clock) if self.settings.enforced_limits else None

    def model_names(self) -> list[str]:
        """What ``GET /v1/models`` lists."""
        return self.resolver.visible_model_names()

    def retries_for(self, route: Route[T]) -> int:
        explicit = [c.routing.max_retries for c in route.candidates if c.routing.max_retries is not None]
        return min(explicit) if explicit else self.settings.num_retries

    def plan(self, model: str, facts: RequestFacts | None = None) -> RoutingPlan[T]:
        route = self.resolver.resolve(model) if isinstance(model, str) else None
        if route is None:
            raise NotFoundError(
                f"Model {model!r} is not served by this proxy. GET /v1/models lists the available models.",
                param="model",
            )
        return RoutingPlan(self, route, facts or RequestFacts())


@dataclass(eq=False)
class _GroupRun(Generic[T]):
    route: Route[T]
    order: list[Candidate[T]]
    attempts_left: int
    ignore_cooldowns: bool = False
    tried: set[str] = field(default_factory=set)
    last_index: int = -1
    same_allowed: bool = True
    last_kind: FallbackKind = FallbackKind.GENERAL


class Attempt(Generic[T]):
    """One try of one deployment. Settles exactly once: succeeded, failed or abandoned (a second
    settlement is a bug and raises). ``answered()`` may come first: the status line is in and the
    plan makes no other attempt, while the answer is still being relayed."""

    def __init__(self, plan: RoutingPlan[T], candidate: Candidate[T], route: Route[T], number: int,
                 is_fallback: bool, started_at: float) -> None:
        self._plan = plan
        self.candidate = candidate
        self.route = route
        self.number = number
        self.is_fallback = is_fallback
        self.started_at = started_at
        self.state = "open"
        self.error: ProxyError | None = None
        self.kind: ErrorKind | None = None
        self._first_token_at: float | None = None

    def __repr__(self) -> str:
        return f"Attempt(#{self.number}, {self.candidate!r}, state={self.state})"

    @property
    def model(self) -> str:
        """``provider/name`` to call (for a wildcard match: substituted)."""
        return self.candidate.model

    @property
    def group(self) -> str:
        return self.route.group

    @property
    def settled(self) -> bool:
        return self.state in ("succeeded", "failed", "abandoned")

    def _settle(self, state: str) -> None:
        if self.settled:
            raise RuntimeError(f"attempt #{self.number} already {self.state}; cannot be {state} too")
        self.state = state

    def answered(self) -> None:
        if self.state != "open":
            raise RuntimeError(f"attempt #{self.number} is {self.state}; cannot be answered")
        self.state = "answered"
        self._plan._answered(self)

    def mark_first_token(self) -> None:
        """The first chunk of a stream arrived (latency-based routing compares this for streams)."""
        if self._first_token_at is None:
            self._first_token_at = self._plan._now()

    def succeeded(self, *, ttft: float | None = None, completion_tokens: int | None = None,
                  total_tokens: int | None = None) -> None:
        self._settle("succeeded")
        if ttft is None and self._first_token_at is not None:
            ttft = self._first_token_at - self.started_at
        self._plan._succeeded(self, ttft, completion_tokens, total_tokens)

    def failed(self, error: ProxyError, *, first_byte_sent: bool = False) -> None:
        self._settle("failed")
        self.error = error
        self._plan._failed(self, error, first_byte_sent)

    def abandoned(self) -> None:
        self._settle("abandoned")
        self._plan._abandoned(self)


class RoutingPlan(Generic[T]):
    """One request's plan (module docstring: the rules). Not shared between requests."""

    def __init__(self, routing: Routing[T], route: Route[T], facts: RequestFacts) -> None:
        self._routing = routing
        self.route = route
        self.facts = facts
        self._walk = routing.fallbacks.walk(disabled=facts.disable_fallbacks, request_fallbacks=facts.fallbacks)
        self._next_route: Route[T] | None = route
        self._visited: set[str] = set()
        self._current: _GroupRun[T] | None = None
        self._open: Attempt[T] | None = None
        self._done = False
        self._final: ProxyError | None = None
        self._first_error: ProxyError | None = None
        self._unavailable: ProxyError | None = None
        self._cooling_skipped: list[tuple[Route[T], list[Candidate[T]]]] = []
        self._last_resort_used = False
        self.attempts: list[Attempt[T]] = []
        self.skipped: list[tuple[str, ProxyError]] = []   # groups not entered, and why (for logs)
        self.answered_by: Attempt[T] | None = None

    def _now(self) -> float:
        return self._routing.clock.monotonic()

    # -- the loop ---------------------------------------------------------------------------------

    def next_attempt(self) -> Attempt[T] | None:
        """The next deployment to try, or None: the plan is over (see :attr:`error`)."""
        if self._open is not None:
            raise RuntimeError(f"{self._open!r} is still open: settle it before asking for another")
        while not self._done:
            if self._current is None:
                route = self._take_next_route()
                if route is None:
                    if not self._start_last_resort():
                        self._done = True
                    continue
                self._enter(route)
                continue
            candidate = self._pick(self._current)
            if candidate is None:
                self._end_group(self._current.last_kind)
                continue
            return self._start(self._current, candidate)
        return None

    @property
    def error(self) -> ProxyError:
        """What to answer with when :meth:`next_attempt` returned None without an answer."""
        if self._final is not None:
            return self._final
        if self._first_error is not None:
            return self._first_error
        if self._unavailable is not None:
            return self._unavailable
        return NoDeploymentsAvailableError(self.route.requested, "no deployment could be tried")

    # -- groups -----------------------------------------------------------------------------------

    def _take_next_route(self) -> Route[T] | None:
        if self._next_route is not None:
            route, self._next_route = self._next_route, None
            return route
        while (name := self._walk.next_name()) is not None:
            route = self._routing.resolver.resolve(name)
            if route is None or route.identity in self._visited:
                continue
            self._walk.took()
            return route
        return None

    def _enter(self, route: Route[T]) -> None:
        r = self._routing
        self._visited.add(route.identity)
        eligible = r.tags.filter(route.candidates, self.facts.tags, self.facts.user_agent)
        if not eligible:
            self._unavailable_group(route, NoDeploymentsForTagsError(route.requested, self.facts.tags))
            return
        if r.pre_call is not None:
            eligible, refusal = r.pre_call.filter(route.requested, eligible, self.facts)
            if refusal is not None:
                self._unavailable_group(route, refusal, fallback_kind(classify(refusal)))
                return
        if r.budgets:
            eligible, crossed = r.budgets.filter(route.requested, eligible, self.facts.tags)
            if crossed is not None:
                self._unavailable_group(route, crossed)
                return
        active = [c for c in eligible if not r.cooldowns.is_cooling(c.key)]
        if not active:
            self._cooling_skipped.append((route, eligible))
            wait = min(r.cooldowns.remaining(c.key) for c in eligible)
            self._unavailable_group(route, NoDeploymentsAvailableError(
                route.requested, "every deployment is cooling down after failures", retry_after=wait))
            return
        order = list(r.strategy.order(active, self.facts))
        if r.enforced is not None:
            order = r.enforced.allowed(order, self.facts.input_tokens)
        if not order:
            wait = 60 - r.clock.time() % 60
            self._unavailable_group(route, NoDeploymentsAvailableError(
                route.requested, "every deployment is over its rpm/tpm limit for this minute", retry_after=wait))
            return
        self._current = _GroupRun(route, order, attempts_left=r.retries_for(route) + 1)

    def _unavailable_group(self, route: Route[T], why: ProxyError,
                           kind: FallbackKind = FallbackKind.GENERAL) -> None:
        self.skipped.append((route.requested, why))
        if self._unavailable is None:
            self._unavailable = why
        self._walk.push(route.fallback_keys, kind)

    def _end_group(self, kind: FallbackKind) -> None:
        run = self._current
        assert run is not None
        self._current = None
        if not run.ignore_cooldowns:
            self._walk.push(run.route.fallback_keys, kind)

    def _start_last_resort(self) -> bool:
        if self._last_resort_used or not self._cooling_skipped:
            return False
        self._last_resort_used = True
        route, eligible = self._cooling_skipped[0]
        soonest = min(eligible, key=lambda c: self._routing.cooldowns.remaining(c.key))
        self._current = _GroupRun(route, [soonest], attempts_left=1, ignore_cooldowns=True)
        return True

    def _pick(self, run: _GroupRun[T]) -> Candidate[T] | None:
        if run.attempts_left <= 0:
            return None

        def usable(c: Candidate[T]) -> bool:
            return run.ignore_cooldowns or not self._routing.cooldowns.is_cooling(c.key)

        for candidate in run.order:
            if candidate.key not in run.tried and usable(candidate):
                return candidate
        if not run.same_allowed:
            return None
        n = len(run.order)
        for step in range(1, n + 1):
            candidate = run.order[(run.last_index + step) % n]
            if usable(candidate):
                return candidate
        return None

    def _start(self, run: _GroupRun[T], candidate: Candidate[T]) -> Attempt[T]:
        run.attempts_left -= 1
        run.tried.add(candidate.key)
        run.last_index = run.order.index(candidate)
        attempt = Attempt(self, candidate, run.route, len(self.attempts) + 1,
                          is_fallback=run.route.identity != self.route.identity, started_at=self._now())
        self._routing.strategy.on_start(candidate)
        if self._routing.enforced is not None:
            self._routing.enforced.on_start(candidate)
        self.attempts.append(attempt)
        self._open = attempt
        return attempt

    # -- outcomes (called by Attempt) ---------------------------------------------------------------

    def _answered(self, attempt: Attempt[T]) -> None:
        self._open = None
        self._done = True
        self.answered_by = attempt

    def _succeeded(self, attempt: Attempt[T], ttft: float | None, completion_tokens: int | None,
                   total_tokens: int | None) -> None:
        if self.answered_by is None:
            self._answered(attempt)
        self._routing.strategy.on_success(
            attempt.candidate, latency=self._now() - attempt.started_at, ttft=ttft,
            completion_tokens=completion_tokens, total_tokens=total_tokens, stream=self.facts.stream)
        if self._routing.enforced is not None:
            self._routing.enforced.on_success(attempt.candidate, total_tokens)

    def _abandoned(self, attempt: Attempt[T]) -> None:
        self._open = None
        self._done = True
        self._routing.strategy.on_failure(attempt.candidate, None, latency=self._now() - attempt.started_at)

    def _failed(self, attempt: Attempt[T], error: ProxyError, first_byte_sent: bool) -> None:
        r = self._routing
        kind = attempt.kind = classify(error)
        r.strategy.on_failure(attempt.candidate, kind, latency=self._now() - attempt.started_at)
        r.cooldowns.record_failure(attempt.candidate.key, kind, cooldown_time=attempt.candidate.routing.cooldown_time)
        if self._first_error is None:
            self._first_error = error
        was_open = self._open is attempt
        self._open = None
        if not was_open:            # answered earlier (a stream that broke): health only
            return
        if first_byte_sent:
            self._final = error
            self._done = True
            return
        run = self._current
        assert run is not None
        run.last_kind = fallback_kind(kind)
        if r.retryable(error):
            run.same_allowed = True
        elif kind in _REFUSED:
            run.same_allowed = False
        else:
            self._end_group(run.last_kind)
