"""Routing: which deployment serves a request, in which order the others are tried, and when to
give up on a group for another (docs/routing.md states every rule).

Pure and synchronous (no I/O, time from an injected clock), so every rule is tested in virtual time;
``adapter.call_with_plan`` is the one async piece, the attempt loop ``upstream/router.py`` runs.

Modules, one job each: ``types`` (the values), ``resolver`` (name → group, aliases, wildcards),
``strategy`` + ``shuffle`` / ``least_busy`` / ``latency`` / ``usage`` (the order within a group),
``cooldowns``, ``tags``, ``fallbacks``, ``classify`` (error kinds), ``plan`` (one request's way
through all of them, and the long-lived :class:`Routing`), ``settings`` + ``validate`` (config).
"""

from .adapter import call_with_plan
from .classify import ErrorKind, FallbackKind, classify
from .cooldowns import Cooldowns, CooldownSettings
from .errors import NoDeploymentsAvailableError, NoDeploymentsForTagsError
from .fallbacks import FallbackPlanner, FallbackSettings, FallbackWalk
from .latency import LatencyArgs, LatencyBased
from .least_busy import LeastBusy
from .plan import Attempt, Routing, RoutingPlan, build_strategy, default_retryable
from .resolver import Alias, ModelResolver, Route, infer_providers
from .settings import STRATEGIES, RoutingConfig, RoutingSettings
from .shuffle import SimpleShuffle
from .strategy import BaseStrategy, Strategy
from .tags import TagFilter, request_tags
from .types import Candidate, Clock, DeploymentRouting, RequestFacts, SystemClock, split_model
from .usage import InMemoryUsageCounter, UsageBasedV2, UsageCounter, UsageLimits
from .validate import Problem, parse_routing_config

__all__ = [
    "STRATEGIES",
    "Alias",
    "Attempt",
    "BaseStrategy",
    "Candidate",
    "Clock",
    "CooldownSettings",
    "Cooldowns",
    "DeploymentRouting",
    "ErrorKind",
    "FallbackKind",
    "FallbackPlanner",
    "FallbackSettings",
    "FallbackWalk",
    "InMemoryUsageCounter",
    "LatencyArgs",
    "LatencyBased",
    "LeastBusy",
    "ModelResolver",
    "NoDeploymentsAvailableError",
    "NoDeploymentsForTagsError",
    "Problem",
    "RequestFacts",
    "Route",
    "Routing",
    "RoutingConfig",
    "RoutingPlan",
    "RoutingSettings",
    "SimpleShuffle",
    "Strategy",
    "SystemClock",
    "TagFilter",
    "UsageBasedV2",
    "UsageCounter",
    "UsageLimits",
    "build_strategy",
    "call_with_plan",
    "classify",
    "default_retryable",
    "infer_providers",
    "parse_routing_config",
    "request_tags",
    "split_model",
]
