"""How ``upstream/router.py`` drives a plan: the attempt loop, and a router built on it.

:func:`call_with_plan` is the loop, once, for ``send`` and ``open_stream``; ``upstream/router.py``'s
``Router`` runs it (the wired router). :class:`RoutedRouter` is the sketch it grew from — thin and
working (tested with fake providers in ``tests/routing/test_routing_adapter.py``), keeping: ``model_names``,
``deployments(model)``, ``send`` and ``open_stream``, the ``on_attempt(deployment, outgoing)`` hook.
Differences the wiring must carry into the pipeline:

* ``send`` / ``open_stream`` return the :class:`~.plan.Attempt` (not only the deployment): the
  caller settles it — for a whole answer ``attempt.succeeded(completion_tokens=…, total_tokens=…)``
  once its usage is read; for a stream ``attempt.mark_first_token()`` at the first chunk, then
  ``succeeded(...)`` at ``[DONE]``, ``failed(error, first_byte_sent=True)`` if it breaks, or
  ``abandoned()`` if the client leaves — exactly one, in a ``finally``;
* they take the request's :class:`~.types.RequestFacts` (stream, tags, ``disable_fallbacks``,
  client-side ``fallbacks`` — after checking the key may use those models);
* ``attempt.model`` is ``provider/name`` to call: for a wildcard match it differs from the
  deployment's configured ``upstream_model`` (and, for ``model: "*"``, names the provider too).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import trio

from ...errors import BadRequestError, ProxyError
from .plan import Attempt, Routing, RoutingPlan
from .types import RequestFacts, T, split_model

__all__ = ["RoutedRouter", "TrioClock", "call_with_plan"]

log = logging.getLogger("trioproxy.router")

R = TypeVar("R")


class TrioClock:
    """Routing's clock on Trio's: ``monotonic`` is ``trio.current_time()``, so latencies and cooldowns
    follow a ``MockClock`` in tests; ``time`` is the wall clock moved by the same amount.

    May be built before ``trio.run`` (the composition root builds the router then): the wall clock is
    pinned to Trio's at the first reading, inside the run."""

    def __init__(self, wall_at_start: float | None = None) -> None:
        self._wall_at_start = wall_at_start
        self._offset: float | None = None
        try:
            self._pin(trio.current_time())
        except RuntimeError:    # not inside trio.run yet: pinned at the first reading
            pass

    def _pin(self, now: float) -> float:
        import time
        self._offset = (time.time() if self._wall_at_start is None else self._wall_at_start) - now
        return self._offset

    def monotonic(self) -> float:
        return trio.current_time()

    def time(self) -> float:
        now = trio.current_time()
        offset = self._offset if self._offset is not None else self._pin(now)
        return offset + now


async def call_with_plan(plan: RoutingPlan[T], send: Callable[[Attempt[T]], Awaitable[R]]) -> tuple[Attempt[T], R]:
    """Try the plan's attempts until one answers; raise the plan's error when none does.

    ``send`` raising a :class:`ProxyError` is a failed attempt (the plan decides what comes next);
    anything else — ``trio.Cancelled`` when the client leaves, a bug — abandons the attempt (not the
    deployment's fault: no cooldown, no latency penalty) and propagates unchanged.
    """
    while (attempt := plan.next_attempt()) is not None:
        try:
            answer = await send(attempt)
        except ProxyError as error:
            attempt.failed(error)
            log.warning("attempt %d on %s (group %r) failed: %s %s", attempt.number, attempt.model,
                        attempt.group, error.status_code, type(error).__name__)
            continue
        except BaseException:
            attempt.abandoned()
            raise
        attempt.answered()
        return attempt, answer
    raise plan.error


class RoutedRouter(Generic[T]):
    """``Router`` on top of :class:`~.plan.Routing`. ``T`` is the config's ``Deployment`` (anything
    with ``provider``, ``upstream_model`` and ``extra_params``, replaceable with ``dataclasses.replace``)."""

    def __init__(self, routing: Routing[T], providers: Mapping[str, Any]) -> None:
        self.routing = routing
        self._providers = providers

    @property
    def model_names(self) -> list[str]:
        return self.routing.model_names()

    def deployments(self, model: str) -> list[T]:
        """The deployments a name leads to (the 404 for an unknown model comes from here, as today)."""
        return [c.target for c in self.routing.plan(model).route.candidates]

    def _prepare(self, attempt: Attempt[T], body: dict[str, Any]) -> tuple[T, Any, dict[str, Any]]:
        deployment: Any = attempt.candidate.target
        provider_name, name = split_model(attempt.model)
        if (provider_name, name) != (deployment.provider, deployment.upstream_model):
            deployment = dataclasses.replace(deployment, provider=provider_name, upstream_model=name)
        provider = self._providers.get(provider_name)
        if provider is None:
            raise BadRequestError(f"Model {attempt.route.requested!r} leads to provider {provider_name!r}, "
                                  "which this proxy does not serve.", param="model")
        outgoing = dict(deployment.extra_params)
        outgoing.update(body)
        outgoing["model"] = name
        return deployment, provider, outgoing

    async def _call(self, model: str, endpoint: str, body: dict[str, Any], stream: bool,
                    facts: RequestFacts | None, on_attempt: Callable[[T, dict[str, Any]], None] | None) -> Any:
        facts = facts or RequestFacts(stream=stream)
        plan = self.routing.plan(model, facts)

        async def one(attempt: Attempt[T]) -> Any:
            deployment, provider, outgoing = self._prepare(attempt, body)
            if on_attempt is not None:
                on_attempt(deployment, outgoing)
            if stream:
                return await provider.open_stream(deployment, endpoint, outgoing)
            return await provider.send(deployment, endpoint, outgoing)

        return await call_with_plan(plan, one)

    async def send(self, model: str, endpoint: str, body: dict[str, Any], *, facts: RequestFacts | None = None,
                   on_attempt: Callable[[T, dict[str, Any]], None] | None = None) -> tuple[Attempt[T], Any]:
        return await self._call(model, endpoint, body, False, facts, on_attempt)

    async def open_stream(self, model: str, endpoint: str, body: dict[str, Any], *,
                          facts: RequestFacts | None = None,
                          on_attempt: Callable[[T, dict[str, Any]], None] | None = None) -> tuple[Attempt[T], Any]:
        return await self._call(model, endpoint, body, True, facts, on_attempt)
