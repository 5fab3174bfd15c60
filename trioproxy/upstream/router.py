"""A model name → the deployments to try, in order, and the providers that try them.

The rules are the routing package's (``upstream/routing``, docs/routing.md): model names, aliases and
wildcards, the strategy's order within a group, cooldowns, tags, retries and fallbacks. This module
drives them over the providers: for each request the :class:`Router` asks the long-lived
:class:`~.routing.Routing` for a plan and runs its attempt loop (``routing.call_with_plan``) with a
provider call per attempt.

What the router adds to the plan:

* **the deployment actually called**: a wildcard's match replaces the configured model (and, for
  ``model: "*"``, the provider: ``anthropic/claude-…`` goes to the Anthropic adapter); refreshed
  secrets replace the values read at startup (``current``, from the composition root). Such derived
  deployments are kept in a bounded cache, so a provider sees the same object for the same model
  (and prepares it once) while clients naming ever new models through ``*`` cannot grow it;
* **the outgoing body**: the deployment's defaults, the client's body over them, ``model`` set to
  the upstream's name; for a provider that does not apply LiteLLM's parameter policy itself (the
  built-in ``openai/`` and ``fake/``), without the policy's fields and what the deployment's or the
  request's ``additional_drop_params`` list (``providers/params.py``);
* for a stream, **its first event** read within the attempt (``primed.py``): a stream that opens with
  an error event, or ends before any, fails the attempt, so it is retried or falls back like an error
  status (nothing of it reached the client yet);
* the **attempt** it returns with the answer: the caller settles it exactly once (``succeeded`` at
  the end of the answer, ``failed(…, first_byte_sent=True)`` when a stream breaks, ``abandoned`` when
  the client leaves), which feeds cooldowns, latency and usage.

The router only ever tries another deployment before the first byte of an answer is sent: for a
stream, "answered" is its first event, so a stream is never retried halfway.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..config.model import DEFAULT_OPENAI_API_BASE
from ..errors import (
    APIConnectionError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    ProxyError,
    ServiceUnavailableError,
    Timeout,
)
from ..masking import SecretScrubber
from .base import Provider, UpstreamResponse, UpstreamStream
from .errors import status_is_retryable
from .primed import prime
from .providers.params import apply_drop_list
from .routing import (
    Attempt,
    Candidate,
    Clock,
    DeploymentRouting,
    RequestFacts,
    Route,
    Routing,
    RoutingPlan,
    RoutingSettings,
    call_with_plan,
    split_model,
)
from .routing.adapter import TrioClock

if TYPE_CHECKING:
    from ..config import Deployment, ProxyConfig

__all__ = ["OnAttempt", "Router", "build_routing", "is_retryable"]

log = logging.getLogger("trioproxy.router")

#: deployment body defaults (``extra_params``) that mean the same in a Responses body
RESPONSES_DEFAULTS = frozenset({"temperature", "top_p", "user", "service_tier", "parallel_tool_calls",
                                "safety_identifier", "store", "truncation", "top_logprobs"})

#: called before each attempt with the deployment called, the body sent and the attempt
OnAttempt = Callable[["Deployment", dict[str, Any], Attempt["Deployment"]], None]

#: derived deployments kept (wildcard matches, refreshed secrets): beyond this the oldest are dropped
DERIVED_CACHE_SIZE = 1024


def is_retryable(error: ProxyError) -> bool:
    """Whether another deployment may answer where this attempt failed.

    An error made by an upstream transport says so itself (``error.retryable``, recorded where it
    was made: ``upstream/errors.py``). Otherwise (a provider adapter's own error): connection errors
    and 503s are retryable, a timeout is not (it may have reached the model), and a status decides
    the rest (``status_is_retryable``).
    """
    if error.retryable is not None:
        return error.retryable
    if isinstance(error, APIConnectionError | ServiceUnavailableError):
        return True
    if isinstance(error, Timeout):
        return False
    return status_is_retryable(getattr(error, "upstream_status", None) or error.status_code)


def _litellm_model(deployment: Deployment) -> str:
    """The deployment's ``litellm_params.model`` as written (``"*"`` and ``"openai/*"`` differ)."""
    return deployment.litellm_model or f"{deployment.provider}/{deployment.upstream_model}"


def _with_context_window(view: DeploymentRouting, deployment: Deployment) -> DeploymentRouting:
    """``model_info.max_input_tokens`` (read by routing's validator), else the price table's entry for
    the model (``base_model`` first), as LiteLLM's ``get_router_model_info`` merges its cost map."""
    if view.max_input_tokens is not None:
        return view
    from ..observability.model_info import table_entry
    from ..observability.prices import PriceTable  # the table is read once per process

    table = PriceTable.load_default()
    for name in (deployment.model_info.get("base_model"), deployment.upstream_model):
        entry = table_entry(table, name) if isinstance(name, str) and name else None
        window = entry.get("max_input_tokens") if entry else None
        if isinstance(window, int) and not isinstance(window, bool) and window > 0:
            return dataclasses.replace(view, max_input_tokens=window)
    return view


def build_routing(config: ProxyConfig, *, clock: Clock | None = None,
                  rng: random.Random | None = None) -> Routing[Deployment]:
    """The process's routing service for ``config``: one candidate per deployment (docs/routing.md)."""
    rules = config.routing_rules
    if rules is not None:
        settings, views = rules.settings, rules.deployments
    else:   # a config built by hand (tests): today's defaults
        settings = RoutingSettings(num_retries=config.num_retries)
        views = tuple(DeploymentRouting(id=str(d.index), weight=d.weight, max_retries=d.max_retries)
                      for d in config.deployments)
    if settings.enable_pre_call_checks:
        views = tuple(_with_context_window(view, d) for view, d in zip(views, config.deployments, strict=True))
    candidates = [Candidate(key=views[d.index].id, group=d.model_name, model=_litellm_model(d),
                            routing=views[d.index], target=d) for d in config.deployments]
    return Routing(candidates, settings, clock=clock or TrioClock(), rng=rng, retryable=is_retryable)


class Router:
    """Every upstream call of the proxy (the pipeline's, the Llama Guard built-in's) goes through here."""

    def __init__(self, routing: Routing[Deployment], providers: Mapping[str, Provider], *,
                 current: Callable[[Deployment], Deployment] | None = None,
                 scrubber: SecretScrubber | None = None) -> None:
        self.routing = routing
        self._providers = providers
        self._current = current
        self._scrubber = scrubber or SecretScrubber()
        self._derived: OrderedDict[tuple[int, str, str], tuple[Deployment, Deployment]] = OrderedDict()
        self._ids = {c.target.index: c.id for c in routing.candidates}

    @property
    def has_budgets(self) -> bool:
        """LiteLLM's provider / deployment / tag budgets are configured (``routing/budgets.py``)."""
        return bool(self.routing.budgets)

    def record_spend(self, deployment: Deployment, tags: list[str], cost: float) -> None:
        """A successful request's cost, for the budgets: its provider (the one called, a wildcard's
        too), its deployment, its tags."""
        self.routing.budgets.record(deployment_id=self._ids.get(deployment.index), provider=deployment.provider,
                                    tags=tags, cost=cost)

    @classmethod
    def from_config(cls, config: ProxyConfig, providers: Mapping[str, Provider], *,
                    current: Callable[[Deployment], Deployment] | None = None, scrubber: SecretScrubber | None = None,
                    rng: random.Random | None = None, clock: Clock | None = None) -> Router:
        return cls(build_routing(config, clock=clock, rng=rng), providers, current=current, scrubber=scrubber)

    @property
    def counts_tokens(self) -> bool:
        """Whether the strategy checks ``tpm`` limits, or ``enforce_model_rate_limits`` does (then requests
        carry an input-token estimate)."""
        settings = self.routing.settings
        return settings.routing_strategy in ("usage-based-routing-v2", "latency-based-routing") \
            or settings.enforced_limits == "rpm+tpm"

    @property
    def checks_context_window(self) -> bool:
        """``enable_pre_call_checks``: requests carry their prompt's token count (``RequestFacts.prompt_tokens``)."""
        return self.routing.settings.enable_pre_call_checks

    @property
    def model_names(self) -> list[str]:
        """What ``GET /v1/models`` lists: exact groups, then visible aliases (no wildcard patterns)."""
        return self.routing.model_names()

    def resolve(self, model: str) -> Route[Deployment]:
        """Where ``model`` leads; the 404 for a model nobody serves comes from here (as from a plan)."""
        route = self.routing.resolver.resolve(model) if isinstance(model, str) else None
        if route is None:
            raise NotFoundError(f"Model {model!r} is not served by this proxy. GET /v1/models lists the available "
                                "models.", param="model")
        return route

    def deployments(self, model: str) -> list[Deployment]:
        """The configured deployments ``model`` leads to (raises the 404 for an unknown model)."""
        return [c.target for c in self.resolve(model).candidates]

    def responses_native(self, model: str, *, request_fallbacks: Sequence[str] | None = None,
                         fallbacks_disabled: bool = False) -> bool:
        """Whether a ``/v1/responses`` request for ``model`` may be forwarded untranslated: every
        deployment the router may pick for it is native (``Deployment.responses_native``, and for a
        wildcard match the matched provider is ``openai``) — those of ``model``'s group and of every
        group its fallbacks of any kind (the request's own, ``default_fallbacks``) may lead to, since
        a fallback happens after the body was chosen. False for an unknown model (its 404 comes later)."""
        settings = self.routing.fallbacks.settings
        tables = (settings.fallbacks, settings.context_window_fallbacks, settings.content_policy_fallbacks)
        pending, seen = [model], set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            route = self.routing.resolver.resolve(name) if isinstance(name, str) else None
            if route is None:
                if name == model:
                    return False
                continue        # a fallback name that leads nowhere is skipped by the plan too
            for candidate in route.candidates:
                provider, _ = split_model(candidate.model)
                if provider != "openai" or not candidate.target.responses_native:
                    return False
            if fallbacks_disabled:
                continue
            keys = route.fallback_keys
            for table in tables:
                found = next((table[k] for k in keys if k in table), table.get("*"))
                pending += found or ()
            pending += settings.default_fallbacks
            pending += request_fallbacks or ()
        return True

    def plan(self, model: str, facts: RequestFacts | None = None) -> RoutingPlan[Deployment]:
        return self.routing.plan(model, facts)

    # -- one attempt ---------------------------------------------------------------------------------

    def _derive(self, base: Deployment, provider: str, name: str) -> Deployment:
        """``base`` for the model a wildcard matched (same object for the same model, bounded)."""
        key = (id(base), provider, name)
        cached = self._derived.get(key)
        if cached is not None and cached[0] is base:
            self._derived.move_to_end(key)
            return cached[1]
        changes: dict[str, Any] = {"provider": provider, "upstream_model": name}
        if provider != "openai":    # only the OpenAI HTTP provider forwards /v1/responses
            changes["responses_native"] = False
        if provider == "openai" and not base.api_base:
            changes["api_base"] = DEFAULT_OPENAI_API_BASE
        derived = dataclasses.replace(base, **changes)
        self._derived[key] = (base, derived)
        if len(self._derived) > DERIVED_CACHE_SIZE:
            self._derived.popitem(last=False)
        return derived

    def _prepare(self, attempt: Attempt[Deployment], body: dict[str, Any],
                 endpoint: str = "chat/completions") -> tuple[Deployment, Provider, dict[str, Any]]:
        deployment = attempt.candidate.target
        if self._current is not None:
            deployment = self._current(deployment)
        provider_name, name = split_model(attempt.model)
        if (provider_name, name) != (deployment.provider, deployment.upstream_model):
            deployment = self._derive(deployment, provider_name, name)
        provider = self._providers.get(provider_name)
        if provider is None:
            raise BadRequestError(f"Model {attempt.route.requested!r} leads to provider {provider_name!r}, "
                                  "which this proxy does not serve (docs/providers.md lists the providers).",
                                  param="model", code="unsupported_provider")
        if endpoint == "responses":
            if not deployment.responses_native:     # the pipeline checked every candidate: a bug
                raise InternalServerError(f"Model {attempt.route.requested!r} led to a deployment without a native "
                                          "/v1/responses during a native request.", code="internal_error")
            # the deployment's body defaults are chat completions parameters: only those the
            # Responses API shares (temperature, top_p, user…) go with a native body
            outgoing = {k: v for k, v in deployment.extra_params.items() if k in RESPONSES_DEFAULTS}
        else:
            outgoing = dict(deployment.extra_params)
        outgoing.update(body)
        outgoing["model"] = name
        if not getattr(provider, "applies_param_policy", False):
            listed = deployment.provider_params.get("additional_drop_params") or ()
            outgoing = apply_drop_list(outgoing, (listed,) if isinstance(listed, str) else listed)
        return deployment, provider, outgoing

    async def _call(self, model: str, endpoint: str, body: dict[str, Any], stream: bool,
                    facts: RequestFacts | None, on_attempt: OnAttempt | None) -> tuple[Attempt[Deployment], Any]:
        plan = self.routing.plan(model, facts or RequestFacts(stream=stream))

        async def one(attempt: Attempt[Deployment]) -> Any:
            deployment, provider, outgoing = self._prepare(attempt, body, endpoint)
            if on_attempt is not None:
                on_attempt(deployment, outgoing, attempt)
            if stream:
                # up to the first event within the attempt: a stream that fails at once is retried
                return await prime(await provider.open_stream(deployment, endpoint, outgoing), deployment,
                                   self._scrubber)
            return await provider.send(deployment, endpoint, outgoing)

        return await call_with_plan(plan, one)

    async def send(self, model: str, endpoint: str, body: dict[str, Any], *, facts: RequestFacts | None = None,
                   on_attempt: OnAttempt | None = None) -> tuple[Attempt[Deployment], UpstreamResponse]:
        """A whole answer from the first deployment that gives one (NotFoundError for an unknown model)."""
        return await self._call(model, endpoint, body, False, facts, on_attempt)

    async def open_stream(self, model: str, endpoint: str, body: dict[str, Any], *,
                          facts: RequestFacts | None = None,
                          on_attempt: OnAttempt | None = None) -> tuple[Attempt[Deployment], UpstreamStream]:
        """An open stream (status and headers in) from the first deployment that opens one."""
        return await self._call(model, endpoint, body, True, facts, on_attempt)

