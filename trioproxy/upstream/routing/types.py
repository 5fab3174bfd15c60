"""The values routing works on: a deployment as routing sees it, the facts of one request, a clock.

Routing never touches the config's ``Deployment`` itself: a :class:`Candidate` carries it as an opaque
``target`` next to what routing needs (:class:`DeploymentRouting`: id, weight, rpm/tpm, order, tags,
per-deployment cooldown and retries). So this package stays independent of how the config layer
shapes its deployments, and tests build candidates from plain strings.

Time comes from an injected :class:`Clock`: ``monotonic()`` for latencies and cooldowns, ``time()``
(wall clock, epoch seconds) for the calendar minutes that rpm/tpm are counted in — the one reading
that several processes sharing usage through Redis (issue #13) must agree on.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from .budgets import Budget

__all__ = [
    "Candidate",
    "Clock",
    "DeploymentRouting",
    "RequestFacts",
    "SystemClock",
    "T",
    "split_model",
]

T = TypeVar("T")


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (latencies, cooldown deadlines)."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (the calendar minute rpm/tpm are counted in)."""
        ...


class SystemClock:
    """The real clocks. Tests pass a fake with ``advance()`` instead."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


@dataclass(frozen=True, slots=True)
class DeploymentRouting:
    """What routing knows of one ``model_list`` entry besides its upstream settings.

    ``id`` is ``model_info.id`` when the config gives one (LiteLLM's deployment id), else the entry's
    position in ``model_list`` as a string: the identity cooldowns, usage and latency are kept under.
    ``None`` means "not set" for every optional number, so rules can tell an explicit ``weight: 1``
    from no weight at all.
    """

    id: str
    weight: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    order: int | None = None
    tags: frozenset[str] = frozenset()
    cooldown_time: float | None = None
    max_retries: int | None = None
    #: the context window LiteLLM's pre-call checks compare the prompt with: ``model_info.max_input_tokens``,
    #: else the price table's entry for the model (``router.build_routing``); None: unknown, never filtered
    max_input_tokens: int | None = None
    #: ``litellm_params.region_name``, else the provider's region setting (``vertex_location``,
    #: ``aws_region_name``): what a customer's ``allowed_model_region`` is compared with
    region: str | None = None
    #: ``litellm_params.max_budget`` / ``budget_duration``: this deployment's spend limit (``budgets.py``)
    budget: Budget | None = None
    #: ``litellm_params.tag_regex``: patterns matched against ``User-Agent: <the request's user agent>``
    #: by the tag filter (``tags.py``)
    tag_regex: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate(Generic[T]):
    """One deployment a request may be sent to.

    ``group`` is the ``model_name`` it is configured under (a pattern such as ``openai/*`` for a
    wildcard deployment); ``model`` is LiteLLM's ``provider/name`` to call — for a wildcard match,
    with the matched text substituted. ``key`` is the identity of its health and usage: the
    deployment id, or for a wildcard match the id and the substituted model, so one client asking a
    wildcard for a model that does not exist cannot cool the wildcard down for every other model.
    """

    key: str
    group: str
    model: str
    routing: DeploymentRouting
    target: T

    @property
    def id(self) -> str:
        return self.routing.id

    def __repr__(self) -> str:
        # the target may hold credentials: never in a repr
        return f"Candidate(key={self.key!r}, group={self.group!r}, model={self.model!r})"


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What routing needs to know of a request (the wiring reads them from the body and headers).

    * ``stream``: latency-based routing compares time to first token for streams;
    * ``input_tokens``: an estimate of the prompt's tokens, for ``tpm`` limits (0: unknown);
    * ``tags``: the request's routing tags (:func:`~.tags.request_tags`), plus the key's or team's;
    * ``disable_fallbacks``: LiteLLM's per-request ``disable_fallbacks: true``;
    * ``fallbacks``: the request's own ``fallbacks`` list (LiteLLM's client-side fallbacks): model
      names that replace the configured general fallbacks for this request. The wiring must check
      the caller may use each of them (they come from the client, not from the operator).
    * ``prompt_tokens``: the prompt's tokens as LiteLLM's pre-call checks count them (messages with
      their framing), only when ``enable_pre_call_checks`` is on; None: not counted, no check;
    * ``allowed_region``: the customer's ``allowed_model_region`` (``eu`` / ``us``), None: any;
    * ``user_agent``: the request's ``User-Agent`` header, for deployments' ``tag_regex``.
    """

    stream: bool = False
    input_tokens: int = 0
    tags: tuple[str, ...] = ()
    disable_fallbacks: bool = False
    fallbacks: tuple[str, ...] | None = None
    prompt_tokens: int | None = None
    allowed_region: str | None = None
    user_agent: str | None = None


def split_model(model: str) -> tuple[str, str]:
    """``"openai/gpt-4o"`` → ``("openai", "gpt-4o")``; a bare name is an OpenAI one (as in the config)."""
    provider, sep, name = model.partition("/")
    return (provider, name) if sep else ("openai", model)
