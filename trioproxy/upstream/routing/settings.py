"""The routing settings as typed, frozen values; every default written here, once.

``validate.parse_routing_config`` builds them from the YAML's ``router_settings`` (and the routing
keys LiteLLM also reads from ``litellm_settings``); :class:`~.plan.Routing` takes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .budgets import Budget
from .cooldowns import CooldownSettings
from .fallbacks import FallbackSettings
from .latency import LatencyArgs
from .resolver import Alias
from .types import DeploymentRouting

__all__ = [
    "DEFAULT_ALLOWED_FAILS",
    "DEFAULT_COOLDOWN_TIME",
    "DEFAULT_MAX_FALLBACKS",
    "DEFAULT_NUM_RETRIES",
    "STRATEGIES",
    "RoutingConfig",
    "RoutingSettings",
]

#: the strategies trioproxy implements (``routing_strategy``)
STRATEGIES = ("simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing-v2")

DEFAULT_ALLOWED_FAILS = 3          # LiteLLM's litellm.allowed_fails
DEFAULT_COOLDOWN_TIME = 5.0        # seconds; LiteLLM's DEFAULT_COOLDOWN_TIME_SECONDS
DEFAULT_MAX_FALLBACKS = 5          # LiteLLM's ROUTER_MAX_FALLBACKS
DEFAULT_NUM_RETRIES = 2            # trioproxy's default (config.num_retries)

_NO_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    routing_strategy: str = "simple-shuffle"
    latency_args: LatencyArgs = LatencyArgs()
    num_retries: int = DEFAULT_NUM_RETRIES
    timeout: float | None = None
    model_group_alias: Mapping[str, Alias] = field(default_factory=lambda: MappingProxyType({}))
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _NO_GROUPS)
    context_window_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _NO_GROUPS)
    content_policy_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _NO_GROUPS)
    default_fallbacks: tuple[str, ...] = ()
    max_fallbacks: int = DEFAULT_MAX_FALLBACKS
    allowed_fails: int = DEFAULT_ALLOWED_FAILS
    cooldown_time: float = DEFAULT_COOLDOWN_TIME
    disable_cooldowns: bool = False
    enable_tag_filtering: bool = False
    tag_filtering_match_any: bool = True
    #: LiteLLM's ``enable_pre_call_checks``: deployments whose context window is too small for the
    #: prompt, outside the customer's region, or at their ``rpm`` this minute are left out (plan.py)
    enable_pre_call_checks: bool = False
    #: LiteLLM's ``optional_pre_call_checks`` that trioproxy implements (``enforce_model_rate_limits``)
    optional_pre_call_checks: tuple[str, ...] = ()
    #: LiteLLM's ``provider_budget_config`` (by provider) and ``tag_budget_config`` (by request tag)
    provider_budgets: Mapping[str, Budget] = field(default_factory=lambda: MappingProxyType({}))
    tag_budgets: Mapping[str, Budget] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def enforced_limits(self) -> str | None:
        """Deployment limits applied whatever the strategy: ``"rpm+tpm"`` (``enforce_model_rate_limits``),
        ``"rpm"`` (``enable_pre_call_checks``: LiteLLM checks the request count only), or None."""
        if "enforce_model_rate_limits" in self.optional_pre_call_checks:
            return "rpm+tpm"
        return "rpm" if self.enable_pre_call_checks else None

    @property
    def cooldown_settings(self) -> CooldownSettings:
        return CooldownSettings(allowed_fails=self.allowed_fails, cooldown_time=self.cooldown_time,
                                disabled=self.disable_cooldowns)

    @property
    def fallback_settings(self) -> FallbackSettings:
        return FallbackSettings(fallbacks=self.fallbacks,
                                context_window_fallbacks=self.context_window_fallbacks,
                                content_policy_fallbacks=self.content_policy_fallbacks,
                                default_fallbacks=self.default_fallbacks, max_fallbacks=self.max_fallbacks)


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """What ``parse_routing_config`` returns when the config is valid.

    ``deployments[i]`` is the routing view of ``model_list[i]``; ``warnings`` are precise
    ``Problem`` values for keys accepted but not implemented (the config layer prints them).
    """

    settings: RoutingSettings
    deployments: tuple[DeploymentRouting, ...]
    warnings: tuple[object, ...] = ()
