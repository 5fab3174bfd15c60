"""``router_settings`` and the routing keys of ``model_list`` → :class:`~.settings.RoutingConfig`, or
every problem found, each with its key path, a precise message and "did you mean" where useful.

Called by the config layer with the YAML's raw (``os.environ/`` already resolved) values::

    result = parse_routing_config(raw.get("router_settings"), raw.get("model_list"),
                                  raw.get("litellm_settings"))
    if isinstance(result, list):        # list[Problem]
        problems += [f"{source}: {p}" for p in result]

What it reads and checks:

* ``router_settings`` — owned whole: ``routing_strategy`` (``simple-shuffle``, ``least-busy``,
  ``latency-based-routing``, ``usage-based-routing-v2``; LiteLLM's ``usage-based-routing`` is read as
  v2 with a warning; others are errors), ``routing_strategy_args`` (per strategy), ``num_retries``,
  ``timeout``, ``model_group_alias``, ``fallbacks``, ``context_window_fallbacks``,
  ``content_policy_fallbacks``, ``default_fallbacks``, ``max_fallbacks``, ``allowed_fails``,
  ``cooldown_time``, ``disable_cooldowns``, ``enable_tag_filtering``, ``tag_filtering_match_any``.
  LiteLLM router settings trioproxy does not implement (``redis_host``, ``retry_policy``, …) load with
  a warning (:data:`NOT_IMPLEMENTED`); any other key is an error with the closest name suggested.
* ``litellm_settings`` — only the routing keys LiteLLM also reads from there (``fallbacks``,
  ``context_window_fallbacks``, ``content_policy_fallbacks``, ``default_fallbacks``,
  ``allowed_fails``, ``cooldown_time``, ``num_retries``); ``router_settings`` wins when both are set.
  The other keys of that section are the config layer's business.
* ``model_list[i]`` — ``litellm_params.weight`` / ``rpm`` / ``tpm`` / ``order`` / ``tags`` /
  ``cooldown_time`` / ``max_retries``, ``rpm``/``tpm`` also from the entry itself or ``model_info``
  (LiteLLM reads all three), ``model_info.id`` (unique), and for a wildcard ``model_name`` that its
  ``litellm_params.model`` has no more ``*`` than the pattern. Entries that are not mappings are left
  to the config layer.
* Every model name a fallback list, a fallback key or an alias names must lead somewhere (an exact
  group, an alias, a wildcard match), so a typo is an error, not a fallback that silently never runs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .budgets import Budget, BudgetPeriod
from .latency import LatencyArgs
from .resolver import Alias, ModelResolver
from .settings import (
    DEFAULT_ALLOWED_FAILS,
    DEFAULT_COOLDOWN_TIME,
    DEFAULT_MAX_FALLBACKS,
    DEFAULT_NUM_RETRIES,
    STRATEGIES,
    RoutingConfig,
    RoutingSettings,
)
from .types import Candidate, DeploymentRouting

__all__ = ["NOT_IMPLEMENTED", "Problem", "parse_routing_config"]


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


#: LiteLLM Router settings trioproxy accepts but does not implement (a warning, never an error)
NOT_IMPLEMENTED = frozenset({
    "redis_db", "cache_responses",
    "cache_kwargs", "cache_params", "caching_groups", "client_ttl", "polling_interval", "default_priority",
    "stream_timeout", "default_litellm_params", "default_max_parallel_requests", "set_verbose",
    "debug_level", "retry_after", "retry_policy", "model_group_retry_policy", "allowed_fails_policy",
 "alerting_config", "router_general_settings",
    "ignore_invalid_deployments", "routing_groups", "deployment_affinity_ttl_seconds",
    "model_group_affinity_config", "enable_health_check_routing", "health_check_staleness_threshold",
    "health_check_ignore_transient_errors", "enable_weighted_failover", "tag_routing_prefix",
    "assistants_config", "search_tools", "guardrail_list",
})

#: LiteLLM's ``optional_pre_call_checks`` trioproxy implements (plan.py); the others load with a warning
PRE_CALL_CHECKS = frozenset({"enforce_model_rate_limits"})

_NOTES = {
    **{key: "routing state (cooldowns, usage, latency) is kept per process; not shared through Redis "
            "(ignored)" for key in ("redis_db", "cache_params")},
}

#: the Redis the whole proxy shares its state through (docs/deploy.md): checked by
#: coordination/settings.py, not here; routing state (cooldowns, usage, latency) stays per process
SHARED_STATE_KEYS = frozenset({"redis_host", "redis_port", "redis_password", "redis_username", "redis_url"})

_FALLBACK_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
#: routing keys LiteLLM also reads from litellm_settings
_LITELLM_SETTINGS_KEYS = (*_FALLBACK_KEYS, "default_fallbacks", "allowed_fails", "cooldown_time", "tag_budget_config")

_STRATEGY_ARGS: dict[str, dict[str, str]] = {
    "latency-based-routing": {"ttl": "seconds > 0", "lowest_latency_buffer": "number >= 0",
                              "max_latency_list_size": "whole number >= 1"},
    "usage-based-routing-v2": {"ttl": "seconds > 0"},
    "simple-shuffle": {},
    "least-busy": {},
}

_INVALID = object()


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _hint(word: str, known: list[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Ctx:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, path: str, message: str) -> object:
        self.problems.append(Problem(path, message))
        return _INVALID

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(Problem(path, message))

    # -- scalars ---------------------------------------------------------------------------------

    def integer(self, value: Any, path: str, minimum: int) -> Any:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return self.error(path, f"expected a whole number, got {_describe(value)}")
        if value < minimum:
            return self.error(path, f"expected a whole number >= {minimum}, got {value}")
        return value

    def number(self, value: Any, path: str, minimum: float, *, strict: bool = False) -> Any:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.error(path, f"expected a number, got {_describe(value)}")
        if value < minimum or (strict and value == minimum):
            return self.error(path, f"expected a number {'>' if strict else '>='} {minimum:g}, got {value}")
        return float(value)

    def boolean(self, value: Any, path: str) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return self.error(path, f"expected true or false, got {_describe(value)}")

    def names(self, value: Any, path: str, noun: str = "model name") -> Any:
        """A name or a list of them → a tuple."""
        if isinstance(value, str):
            return (value,) if value else self.error(path, f"expected a {noun}, got an empty string")
        if not isinstance(value, list | tuple):
            return self.error(path, f"expected a list of {noun}s, got {_describe(value)}")
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item:
                out.append(item)
            else:
                self.error(f"{path}[{i}]", f"expected a {noun}, got {_describe(item)}")
        return tuple(out)


# -- model_list ----------------------------------------------------------------------------------


def _deployment(ctx: _Ctx, index: int, entry: Mapping[str, Any], seen_ids: dict[str, int]) -> tuple[DeploymentRouting, str, str] | None:
    path = f"model_list[{index}]"
    params = entry.get("litellm_params", entry.get("params"))
    params = params if isinstance(params, Mapping) else {}
    info = entry.get("model_info")
    info = info if isinstance(info, Mapping) else {}
    ppath = f"{path}.litellm_params"

    raw_id = info.get("id")
    if raw_id is None or raw_id == "":
        dep_id = str(index)
    elif isinstance(raw_id, str | int) and not isinstance(raw_id, bool):
        dep_id = str(raw_id)
        if dep_id in seen_ids:
            ctx.error(f"{path}.model_info.id", f"{dep_id!r} is already the id of model_list[{seen_ids[dep_id]}]; "
                                               "deployment ids must be unique")
        seen_ids.setdefault(dep_id, index)
    else:
        ctx.error(f"{path}.model_info.id", f"expected a string, got {_describe(raw_id)}")
        dep_id = str(index)

    def limit(name: str) -> int | None:
        for where, source in ((path, entry), (ppath, params), (f"{path}.model_info", info)):
            if source.get(name) is not None:
                checked = ctx.integer(source[name], f"{where}.{name}", 1)
                return None if checked is _INVALID else checked
        return None

    def optional(name: str, check: Callable[[Any, str], Any]) -> Any:
        if params.get(name) is None:
            return None
        checked = check(params[name], f"{ppath}.{name}")
        return None if checked is _INVALID else checked

    weight = optional("weight", lambda v, p: ctx.number(v, p, 0.0))
    order = optional("order", lambda v, p: ctx.integer(v, p, 0))
    cooldown = optional("cooldown_time", lambda v, p: ctx.number(v, p, 0.0))
    retries = optional("max_retries", lambda v, p: ctx.integer(v, p, 0))
    budget = None
    if params.get("max_budget") is not None or params.get("budget_duration") is not None:
        budget = _budget(ctx, {k: params[k] for k in ("max_budget", "budget_duration") if params.get(k) is not None},
                         ppath, ("max_budget", "max_budget"), ("budget_duration", "budget_duration"))
    max_input = None
    if info.get("max_input_tokens") is not None:
        checked = ctx.integer(info["max_input_tokens"], f"{path}.model_info.max_input_tokens", 1)
        max_input = None if checked is _INVALID else checked
    region = None
    for name in ("region_name", "vertex_location", "aws_region_name"):   # LiteLLM's _get_model_region
        if params.get(name) is not None:
            if isinstance(params[name], str) and params[name]:
                region = params[name]
            elif name == "region_name":
                ctx.error(f"{ppath}.region_name", f"expected a region name ('eu', 'us', or the provider's), "
                                                  f"got {_describe(params[name])}")
            break
    patterns: list[re.Pattern[str]] = []
    if params.get("tag_regex") is not None:
        checked = ctx.names(params["tag_regex"], f"{ppath}.tag_regex", "regular expression")
        for i, text in enumerate(() if checked is _INVALID else checked):
            try:
                patterns.append(re.compile(text))
            except re.error as exc:
                ctx.error(f"{ppath}.tag_regex[{i}]", f"not a regular expression ({exc}): {_describe(text)}")
    tags: tuple[str, ...] = ()
    if params.get("tags") is not None:
        checked = ctx.names(params["tags"], f"{ppath}.tags", "tag")
        tags = () if checked is _INVALID else checked

    model_name = entry.get("model_name")
    model = params.get("model")
    if not isinstance(model_name, str) or not isinstance(model, str):
        return None                      # the config layer reports a missing model_name / model
    if model.count("*") > model_name.count("*"):
        ctx.error(f"{ppath}.model", f"{model!r} has more '*' than model_name {model_name!r}: each '*' of the "
                                    "model takes the text matched by a '*' of the model_name")
    routing = DeploymentRouting(id=dep_id, weight=weight, rpm=limit("rpm"), tpm=limit("tpm"), order=order,
                                tags=frozenset(tags), cooldown_time=cooldown, max_retries=retries,
                                max_input_tokens=max_input, region=region, budget=budget,
                                tag_regex=tuple(patterns))
    return routing, model_name, model


# -- router_settings -----------------------------------------------------------------------------


def _aliases(ctx: _Ctx, value: Any, path: str) -> dict[str, Alias]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        ctx.error(path, f"expected a mapping of alias → model group, got {_describe(value)}")
        return {}
    out: dict[str, Alias] = {}
    for name, spec in value.items():
        sub = f"{path}.{name}"
        if isinstance(spec, str) and spec:
            out[str(name)] = Alias(spec)
        elif isinstance(spec, Mapping):
            unknown = [k for k in spec if k not in ("model", "hidden")]
            for key in unknown:
                ctx.error(f"{sub}.{key}", f"unknown key {key!r}{_hint(str(key), ['model', 'hidden'])} "
                                          "(an alias takes 'model' and 'hidden')")
            target = spec.get("model")
            hidden = ctx.boolean(spec.get("hidden", False), f"{sub}.hidden")
            if not isinstance(target, str) or not target:
                ctx.error(f"{sub}.model", f"expected the model group the alias stands for, got {_describe(target)}")
            elif not unknown and hidden is not _INVALID:
                out[str(name)] = Alias(target, hidden)
        else:
            ctx.error(sub, f"expected a model group name or {{model: <group>, hidden: true|false}}, got {_describe(spec)}")
    return out


def _fallback_table(ctx: _Ctx, value: Any, path: str) -> dict[str, tuple[tuple[str, ...], str]]:
    """``{model: (targets, key path)}``."""
    if value is None:
        return {}
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list | tuple):
        ctx.error(path, f"expected a list like [{{\"gpt-4o\": [\"gpt-4o-mini\"]}}], got {_describe(value)}")
        return {}
    table: dict[str, tuple[tuple[str, ...], str]] = {}
    for i, item in enumerate(items):
        ipath = f"{path}[{i}]" if not isinstance(value, Mapping) else path
        if not isinstance(item, Mapping):
            ctx.error(ipath, f"expected a mapping {{<model>: [<fallback models>]}}, got {_describe(item)}"
                             + (" (a list of models for every model goes under default_fallbacks)"
                                if isinstance(item, str) else ""))
            continue
        for key, targets in item.items():
            kpath = f"{ipath}.{key}"
            if key in table:
                ctx.error(kpath, f"{key!r} already has a fallback list in this setting")
                continue
            checked = ctx.names(targets, kpath)
            if checked is not _INVALID:
                table[str(key)] = (checked, kpath)
    return table


def _check_name(ctx: _Ctx, resolver: ModelResolver[None], known: list[str], name: str, path: str,
                what: str = "") -> bool:
    """Whether ``name`` leads somewhere (an error if not). A name only a wildcard serves while it is
    one typo away from a model_name or alias gets a warning: it works, but likely not as meant."""
    route = resolver.resolve(name)
    if route is None:
        ctx.error(path, f"{name!r} is not a model this proxy serves{_hint(name, known)}{what}")
        return False
    if route.via == "wildcard" and (hint := _hint(name, known, 0.85)):
        ctx.warn(path, f"{name!r} is served only through the wildcard {route.group!r}{hint}")
    return True


def _check_names(ctx: _Ctx, resolver: ModelResolver[None], known: list[str],
                 table: dict[str, tuple[tuple[str, ...], str]]) -> dict[str, tuple[str, ...]]:
    """Every key and target must lead somewhere; a model listed as its own fallback is dropped."""
    out: dict[str, tuple[str, ...]] = {}
    for key, (targets, path) in table.items():
        if key != "*":
            _check_name(ctx, resolver, known, key, path,
                        " (a fallback entry is keyed by a model_name, an alias or '*')")
        kept = []
        for i, target in enumerate(targets):
            if target == key:
                ctx.warn(f"{path}[{i}]", f"{key!r} is listed as its own fallback (skipped: a group is "
                                         "never tried twice in one request)")
            elif _check_name(ctx, resolver, known, target, f"{path}[{i}]"):
                kept.append(target)
        out[key] = tuple(kept)
    return out


def _strategy(ctx: _Ctx, value: Any, path: str) -> str:
    if value is None:
        return "simple-shuffle"
    if value == "usage-based-routing":
        ctx.warn(path, "LiteLLM's 'usage-based-routing' (v1) is read as 'usage-based-routing-v2'")
        return "usage-based-routing-v2"
    if value in STRATEGIES:
        return value
    known = ", ".join(map(repr, STRATEGIES))
    if value in ("cost-based-routing", "provider-budget-routing", "lar1"):
        ctx.error(path, f"routing strategy {value!r} is not implemented by trioproxy; choose one of {known}")
    else:
        ctx.error(path, f"unknown routing strategy {_describe(value)}{_hint(str(value), list(STRATEGIES))} "
                        f"(one of {known})")
    return "simple-shuffle"


def _latency_args(ctx: _Ctx, strategy: str, value: Any, path: str) -> LatencyArgs:
    if value is None:
        return LatencyArgs()
    if not isinstance(value, Mapping):
        ctx.error(path, f"expected a mapping, got {_describe(value)}")
        return LatencyArgs()
    allowed = _STRATEGY_ARGS.get(strategy, {})
    args: dict[str, Any] = {}
    for key, item in value.items():
        sub = f"{path}.{key}"
        if key not in allowed:
            others = [s for s, names in _STRATEGY_ARGS.items() if key in names]
            if others:
                ctx.warn(sub, f"an argument of {others[0]!r}, not of routing_strategy {strategy!r} (ignored)")
            else:
                every = sorted({n for names in _STRATEGY_ARGS.values() for n in names})
                ctx.error(sub, f"unknown routing_strategy_args key {key!r}{_hint(str(key), every)} "
                               f"({strategy!r} takes {', '.join(allowed) or 'none'})")
            continue
        if key == "max_latency_list_size":
            checked = ctx.integer(item, sub, 1)
        elif key == "lowest_latency_buffer":
            checked = ctx.number(item, sub, 0.0)
        else:
            checked = ctx.number(item, sub, 0.0, strict=True)
        if checked is _INVALID:
            continue
        if strategy == "usage-based-routing-v2":
            ctx.warn(sub, "has no effect: usage is counted per calendar minute")
            continue
        args[key] = checked
    return LatencyArgs(**args)


_SCALARS: dict[str, tuple[Callable[[_Ctx, Any, str], Any], Any]] = {
    "num_retries": (lambda c, v, p: c.integer(v, p, 0), None),
    "timeout": (lambda c, v, p: c.number(v, p, 0.0, strict=True), None),
    "max_fallbacks": (lambda c, v, p: c.integer(v, p, 0), DEFAULT_MAX_FALLBACKS),
    "allowed_fails": (lambda c, v, p: c.integer(v, p, 0), DEFAULT_ALLOWED_FAILS),
    "cooldown_time": (lambda c, v, p: c.number(v, p, 0.0), DEFAULT_COOLDOWN_TIME),
    "disable_cooldowns": (lambda c, v, p: c.boolean(v, p), False),
    "enable_tag_filtering": (lambda c, v, p: c.boolean(v, p), False),
    "tag_filtering_match_any": (lambda c, v, p: c.boolean(v, p), True),
    "enable_pre_call_checks": (lambda c, v, p: c.boolean(v, p), False),
}
_OWN_KEYS = ("routing_strategy", "routing_strategy_args", "model_group_alias", *_FALLBACK_KEYS,
             "default_fallbacks", "optional_pre_call_checks", "provider_budget_config", "tag_budget_config",
             *_SCALARS)

_PERIOD = re.compile(r"^([0-9]{1,12})(s|m|h|d|w|mo)$")


def _period(ctx: _Ctx, value: Any, path: str) -> Any:
    """A budget period as LiteLLM writes it: ``30s``, ``1h``, ``1d``, ``2w``, ``1mo``."""
    match = _PERIOD.match(value.strip()) if isinstance(value, str) else None
    if match is None or int(match[1]) == 0:
        return ctx.error(path, f"expected a duration like '1h', '1d', '30d' or '1mo' (a number > 0 and a unit: "
                               f"s, m, h, d, w, mo), got {_describe(value)}")
    return BudgetPeriod(int(match[1]), match[2])


def _budget(ctx: _Ctx, spec: Any, path: str, amount_keys: tuple[str, str] = ("max_budget", "budget_limit"),
            period_keys: tuple[str, str] = ("budget_duration", "time_period")) -> Budget | None:
    """``{max_budget, budget_duration}`` (or LiteLLM's older ``{budget_limit, time_period}``)."""
    if not isinstance(spec, Mapping):
        ctx.error(path, f"expected a mapping like {{max_budget: 100, budget_duration: 1d}}, got {_describe(spec)}")
        return None
    amount_key = next((k for k in amount_keys if spec.get(k) is not None), None)
    period_key = next((k for k in period_keys if spec.get(k) is not None), None)
    if amount_key is None or period_key is None:
        ctx.error(path, f"needs {amount_keys[0]} (USD) and {period_keys[0]} (e.g. 1d); LiteLLM's "
                        f"{amount_keys[1]} / {period_keys[1]} are read too")
        return None
    amount = ctx.number(spec[amount_key], f"{path}.{amount_key}", 0.0)
    period = _period(ctx, spec[period_key], f"{path}.{period_key}")
    for key in spec:
        if key not in (*amount_keys, *period_keys):
            ctx.error(f"{path}.{key}", f"unknown budget setting (known: {', '.join((*amount_keys, *period_keys))})")
    if amount is _INVALID or period is _INVALID:
        return None
    return Budget(float(amount), period)


def _budget_table(ctx: _Ctx, value: Any, path: str) -> dict[str, Budget]:
    """``{name: budget}``: providers of ``provider_budget_config``, tags of ``tag_budget_config``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        ctx.error(path, f"expected a mapping of name → {{max_budget, budget_duration}}, got {_describe(value)}")
        return {}
    out: dict[str, Budget] = {}
    for name, spec in value.items():
        budget = _budget(ctx, spec, f"{path}.{name}")
        if budget is not None:
            out[str(name)] = budget
    return out


def _pre_call_checks(ctx: _Ctx, value: Any, path: str) -> tuple[str, ...]:
    """``optional_pre_call_checks``: the names trioproxy implements; LiteLLM's others warn (ignored)."""
    if value is None:
        return ()
    checked = ctx.names(value, path, "pre-call check name")
    if checked is _INVALID:
        return ()
    for i, name in enumerate(checked):
        if name not in PRE_CALL_CHECKS:
            ctx.warn(f"{path}[{i}]", f"LiteLLM's pre-call check {name!r} is not implemented by trioproxy (ignored); "
                                     f"implemented: {', '.join(sorted(PRE_CALL_CHECKS))}")
    return tuple(n for n in checked if n in PRE_CALL_CHECKS)


def parse_routing_config(router_settings: Any, model_list: Any, litellm_settings: Any = None,
                         ) -> RoutingConfig | list[Problem]:
    """The routing config, or every problem (key path, message) found. See the module docstring."""
    ctx = _Ctx()
    rs: Mapping[str, Any]
    if router_settings is None:
        rs = {}
    elif isinstance(router_settings, Mapping):
        rs = router_settings
    else:
        return [Problem("router_settings", f"expected a mapping, got {_describe(router_settings)}")]
    ls = litellm_settings if isinstance(litellm_settings, Mapping) else {}

    for key in rs:
        if key in _OWN_KEYS or key in SHARED_STATE_KEYS:
            continue
        path = f"router_settings.{key}"
        if key in _NOTES:
            ctx.warn(path, _NOTES[key])
        elif key in NOT_IMPLEMENTED:
            ctx.warn(path, "a LiteLLM router setting trioproxy does not implement (ignored)")
        else:
            known = sorted({*_OWN_KEYS, *SHARED_STATE_KEYS, *NOT_IMPLEMENTED, *_NOTES})
            ctx.error(path, f"unknown key {key!r}{_hint(str(key), known, 0.75)} (router_settings takes "
                            f"{', '.join(sorted(_OWN_KEYS))})")

    def setting(key: str) -> tuple[Any, str] | None:
        """The value and its path: router_settings first, then litellm_settings for LiteLLM's keys."""
        if rs.get(key) is not None:
            if key in _LITELLM_SETTINGS_KEYS and ls.get(key) is not None and ls[key] != rs[key]:
                ctx.warn(f"litellm_settings.{key}", f"router_settings.{key} is set too and wins (ignored)")
            return rs[key], f"router_settings.{key}"
        if key in _LITELLM_SETTINGS_KEYS and ls.get(key) is not None:
            return ls[key], f"litellm_settings.{key}"
        return None

    # model_list ----------------------------------------------------------------------------------
    deployments: list[DeploymentRouting] = []
    lightweight: list[Candidate[None]] = []
    seen_ids: dict[str, int] = {}
    entries = model_list if isinstance(model_list, list) else []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            deployments.append(DeploymentRouting(id=str(index)))
            continue
        parsed = _deployment(ctx, index, entry, seen_ids)
        if parsed is None:
            deployments.append(DeploymentRouting(id=str(index)))
            continue
        routing, model_name, model = parsed
        deployments.append(routing)
        lightweight.append(Candidate(routing.id, model_name, model, routing, None))

    # scalars, strategy -----------------------------------------------------------------------------
    values: dict[str, Any] = {}
    for key, (check, default) in _SCALARS.items():
        found = setting(key)
        checked = check(ctx, found[0], found[1]) if found else default
        values[key] = default if checked is _INVALID else checked
    if values["num_retries"] is None:
        retries = ls.get("num_retries")
        values["num_retries"] = retries if isinstance(retries, int) and not isinstance(retries, bool) \
            and retries >= 0 else DEFAULT_NUM_RETRIES
    strategy = _strategy(ctx, rs.get("routing_strategy"), "router_settings.routing_strategy")
    pre_call_checks = _pre_call_checks(ctx, rs.get("optional_pre_call_checks"),
                                       "router_settings.optional_pre_call_checks")
    provider_budgets = _budget_table(ctx, rs.get("provider_budget_config"), "router_settings.provider_budget_config")
    found_tags = setting("tag_budget_config")
    tag_budgets = _budget_table(ctx, found_tags[0], found_tags[1]) if found_tags else {}
    latency_args = _latency_args(ctx, strategy, rs.get("routing_strategy_args"),
                                 "router_settings.routing_strategy_args")

    # names: aliases, fallbacks -----------------------------------------------------------------------
    aliases = _aliases(ctx, rs.get("model_group_alias"), "router_settings.model_group_alias")
    plain = ModelResolver(lightweight)
    groups = plain.group_names
    for name, alias in list(aliases.items()):
        path = f"router_settings.model_group_alias.{name}"
        if name in groups:
            ctx.error(path, f"{name!r} is also a model_name in model_list; the model_list group would always win "
                            "and the alias would never be used (rename one of them)")
        elif alias.target in aliases:
            ctx.error(path, f"points at {alias.target!r}, another alias; an alias must name a model group "
                            f"(aliases do not chain)")
        elif plain.resolve(alias.target) is None:
            ctx.error(path, f"{alias.target!r} is not a model_name in model_list{_hint(alias.target, groups)}")
    resolver = ModelResolver(lightweight, aliases)
    known = groups + list(aliases)

    tables: dict[str, dict[str, tuple[str, ...]]] = {}
    for key in _FALLBACK_KEYS:
        found = setting(key)
        tables[key] = _check_names(ctx, resolver, known, _fallback_table(ctx, found[0], found[1])) if found else {}
    default_fallbacks: tuple[str, ...] = ()
    found = setting("default_fallbacks")
    if found:
        checked = ctx.names(found[0], found[1])
        if checked is not _INVALID:
            for i, target in enumerate(checked):
                _check_name(ctx, resolver, known, target, f"{found[1]}[{i}]")
            default_fallbacks = checked
            if "*" in tables["fallbacks"]:
                ctx.warn(found[1], "fallbacks has a '*' entry, which is used instead (default_fallbacks is unused)")

    if ctx.problems:
        return ctx.problems
    settings = RoutingSettings(
        routing_strategy=strategy,
        latency_args=latency_args,
        num_retries=values["num_retries"],
        timeout=values["timeout"],
        model_group_alias=MappingProxyType(aliases),
        fallbacks=MappingProxyType(tables["fallbacks"]),
        context_window_fallbacks=MappingProxyType(tables["context_window_fallbacks"]),
        content_policy_fallbacks=MappingProxyType(tables["content_policy_fallbacks"]),
        default_fallbacks=default_fallbacks,
        max_fallbacks=values["max_fallbacks"],
        allowed_fails=values["allowed_fails"],
        cooldown_time=values["cooldown_time"],
        disable_cooldowns=values["disable_cooldowns"],
        enable_tag_filtering=values["enable_tag_filtering"],
        tag_filtering_match_any=values["tag_filtering_match_any"],
        enable_pre_call_checks=values["enable_pre_call_checks"],
        provider_budgets=MappingProxyType(provider_budgets),
        tag_budgets=MappingProxyType(tag_budgets),
        optional_pre_call_checks=pre_call_checks,
    )
    return RoutingConfig(settings, tuple(deployments), tuple(ctx.warnings))
