"""From a YAML document to a :class:`~.model.ProxyConfig`: environment, secret managers, validation,
then the typed values.

Order: ``environment_variables`` are set; references to a secret manager are read
(``general_settings.key_management_system``); ``os.environ/NAME`` references are replaced; the
schema validates everything and reports every problem at once; the typed model is built from the
clean values (absent keys take the model's defaults).
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import fields
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ..errors import ConfigError
from ..secret_managers.resolve import resolve_config_secrets
from .deployment_params import OPENAI_REQUEST_FIELDS, looks_like_credential
from .env import apply_environment_variables, resolve_env
from .litellm_catalog import ALWAYS_ON_CALLBACKS
from .model import (
    DEFAULT_MAX_STREAM_DURATION,
    DEFAULT_PASS_THROUGH_TIMEOUT,
    CacheSettings,
    Deployment,
    GeneralSettings,
    GuardrailSpec,
    HttpPoolSettings,
    LitellmSettings,
    ProxyConfig,
    RouterSettings,
)
from .moderation_keys import GOOGLE_THRESHOLD_KEYS
from .pass_through import build_pass_through
from .schema import GUARDRAIL_MODES, TOP_LEVEL
from .validators import INVALID, Ctx, describe

__all__ = ["load_config", "load_default_config", "parse_config"]


def _credential_values(name: str, value: Any, depth: int = 0) -> list[str]:
    """The strings of a credential-like setting: the value itself, and (for JSON service-account
    files such as ``vertex_credentials``) every credential-like leaf inside it."""
    out: list[str] = []
    if isinstance(value, str):
        if looks_like_credential(name):
            out.append(value)
        if value.lstrip().startswith("{") and depth == 0:
            try:
                value = json.loads(value)
            except ValueError:
                return out
    if isinstance(value, dict) and depth < 8:
        for key, item in value.items():
            if isinstance(item, str) and looks_like_credential(str(key)):
                out.append(item)
            elif isinstance(item, dict | list):
                out += _credential_values(str(key), item, depth + 1)
    elif isinstance(value, list) and depth < 8:
        for item in value:
            out += _credential_values(name, item, depth + 1)
    return out


def _build_deployment(index: int, entry: dict[str, Any], settings: LitellmSettings, ctx: Ctx) -> Deployment | None:
    """One deployment, or None when its entry had problems already reported (no name, no model)."""
    if "model_name" not in entry or "model" not in entry.get("litellm_params", {}):
        return None
    params = dict(entry["litellm_params"])
    ignored = params.pop("__unsupported__", {})
    model = params["model"]
    provider, sep, name = model.partition("/")
    if not sep:
        provider, name = "openai", model
    path = f"model_list[{index}].litellm_params"
    if provider == "openai" and not params.get("api_base"):
        params["api_base"] = "https://api.openai.com/v1"
    timeout = params.get("timeout", settings.request_timeout)
    fake_keys = ("mock_response", "latency", "chunk_latency", "fail_rate", "fail_status")
    fake = {k: params[k] for k in fake_keys if k in params}
    # mock_response answers locally whatever the provider (LiteLLM's; upstream/fake/mock.py); the others
    # are the fake provider's own knobs
    fake_only = [k for k in fake if k != "mock_response"]
    if fake_only and provider != "fake":
        ctx.error(path, f"{', '.join(fake_only)} only apply to the 'fake/…' provider, not {model!r}")
    # body defaults: explicit extra_body first, then the OpenAI request parameters named directly
    extra = dict(params.get("extra_body", {}))
    extra.update({k: v for k, v in params.items() if k in OPENAI_REQUEST_FIELDS})
    headers = {str(k): str(v) for k, v in params.get("extra_headers", {}).items()}
    if params.get("organization") and not any(k.lower() == "openai-organization" for k in headers):
        headers["OpenAI-Organization"] = params["organization"]
    secret_settings = tuple(v for name, value in ignored.items() for v in _credential_values(str(name), value))
    return Deployment(
        model_name=entry["model_name"],
        provider=provider,
        upstream_model=name,
        api_base=params.get("api_base", "").rstrip("/") or None,
        api_key=params.get("api_key"),
        timeout=float(timeout),
        stream_timeout=float(params.get("stream_timeout", timeout)),
        max_retries=params.get("max_retries"),
        weight=float(params.get("weight", 1.0)),
        extra_params=extra,
        extra_headers=headers,
        # LiteLLM prices a deployment by litellm_params or model_info (litellm_params first)
        input_cost_per_token=_price(params, entry, "input_cost_per_token", ctx, index),
        output_cost_per_token=_price(params, entry, "output_cost_per_token", ctx, index),
        fake=fake,
        model_info=entry.get("model_info", {}),
        index=index,
        secret_settings=secret_settings,
        max_stream_duration=float(params.get("max_stream_duration", DEFAULT_MAX_STREAM_DURATION)),
    )


def _price(params: dict[str, Any], entry: dict[str, Any], key: str, ctx: Ctx, index: int) -> float | None:
    """A price per token from ``litellm_params``, else from ``model_info`` (checked like the other)."""
    if key in params:
        return params[key]
    info = entry.get("model_info")
    value = info.get(key) if isinstance(info, dict) else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        ctx.error(f"model_list[{index}].model_info.{key}", f"expected a number >= 0, got {describe(value)}")
        return None
    return float(value)


#: LiteLLM's guardrail modes for its MCP gateway, which trioproxy does not have
_MCP_MODES = ("pre_mcp_call", "during_mcp_call", "post_mcp_call")


def _build_guardrail(index: int, entry: dict[str, Any], ctx: Ctx) -> GuardrailSpec | None:
    """One guardrail, or None when its entry had problems already reported (no name, class or mode)."""
    params = dict(entry.get("litellm_params", {}))
    if "guardrail_name" not in entry or "guardrail" not in params or "mode" not in params:
        return None
    extra = params.pop("__extra__", {})
    path = f"guardrails[{index}].litellm_params.mode"
    modes = params["mode"]
    for mode in modes:
        if mode in _MCP_MODES:
            ctx.error(path, f"{mode!r} is a mode of LiteLLM's MCP gateway (it guards MCP tool calls), which "
                            f"trioproxy does not have (modes: {', '.join(GUARDRAIL_MODES)})")
        elif mode not in GUARDRAIL_MODES:
            close = difflib.get_close_matches(mode, GUARDRAIL_MODES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            ctx.error(path, f"unknown mode {mode!r}{hint} (modes: {', '.join(GUARDRAIL_MODES)})")
    return GuardrailSpec(
        name=entry["guardrail_name"],
        class_path=params["guardrail"],
        modes=list(modes),
        default_on=bool(params.get("default_on", False)),
        stream_mode=params.get("stream_mode", "pass_through"),
        params=extra,
    )


def _check_cache(litellm: dict[str, Any], written: Any, ctx: Ctx) -> None:
    """``cache: true`` without ``cache_params.type`` is a Redis cache in LiteLLM (its proxy reads
    ``cache_params.get("type", "redis")`` and REDIS_HOST/REDIS_PORT/REDIS_PASSWORD): refused with
    what to write, rather than silently meaning an in-process cache (issue #13 adds Redis)."""
    if litellm.get("cache") is not True:
        return
    params = written.get("cache_params") if isinstance(written, dict) else None
    if isinstance(params, dict) and "type" in params:
        return   # a type was written (a wrong one is reported by the schema)
    if params is not None and not isinstance(params, dict):
        return   # an invalid cache_params was reported already
    ctx.error("litellm_settings.cache", "cache: true without cache_params.type means a Redis cache in LiteLLM "
              "(REDIS_HOST, REDIS_PORT, REDIS_PASSWORD); trioproxy has no Redis response cache yet (issue #13). "
              "For an in-process cache (one per worker process, empty after a restart) write "
              "cache_params: {type: local}")


def _note_builtin_metrics(litellm: dict[str, Any], ctx: Ctx) -> None:
    """Callbacks naming what trioproxy always does are noted here, skipped by the loaders (their
    positions in the list stay those of the file, for the other messages)."""
    for key in ("callbacks", "success_callback", "failure_callback"):
        names = litellm.get(key)
        for index, name in enumerate(names if isinstance(names, list) else ()):
            if name in ALWAYS_ON_CALLBACKS:
                ctx.note(f"litellm_settings.{key}[{index}]", f"LiteLLM's {name!r} has no effect here: "
                                                              f"{ALWAYS_ON_CALLBACKS[name]}")


def parse_config(raw: Any, source: str, base_dir: Path) -> ProxyConfig:
    """Validate an already-loaded YAML document. Raises ConfigError with every problem found.

    Every part is validated whatever another part's problems: the sections, then each deployment and
    guardrail from the values that passed. The ConfigError carries the config built from the valid
    parts (``ConfigError.partial``), so that the next stages (handler files, logging callbacks:
    ``proxy.check_handlers``) report their problems in the same run (issue #15: a user fixing the
    first list must not meet a second one at the next start).
    """
    ctx = Ctx(source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: <top level>: expected a mapping with 'model_list', got {describe(raw)}"])
    apply_environment_variables(raw, ctx)
    # secret managers (docs/secrets.md): os.environ/NAME read through general_settings.key_management_system
    raw = resolve_config_secrets(raw, source, ctx.problems, ctx.warnings)
    resolved = resolve_env(raw, "", ctx)
    clean = TOP_LEVEL(resolved, "", ctx)
    if clean is INVALID:
        clean = {}

    general = clean.get("general_settings", {})
    litellm = clean.get("litellm_settings", {})
    routing = clean.get("router_settings", {})
    _check_cache(litellm, (resolved.get("litellm_settings") or resolved.get("settings") or {}), ctx)
    _note_builtin_metrics(litellm, ctx)
    settings = _litellm_settings(litellm)
    deployments = []
    groups: dict[str, list[Deployment]] = {}
    for i, entry in enumerate(clean.get("model_list", [])):
        dep = _build_deployment(i, entry, settings, ctx)
        if dep is not None:
            deployments.append(dep)
            groups.setdefault(dep.model_name, []).append(dep)
    if not raw.get("model_list"):
        ctx.warn("model_list", "no model_list: the proxy serves no model until one is configured (every request "
                               "is a 404 model_not_found); LiteLLM would load models from its database")

    # several guardrails under one name are load-balanced, as in LiteLLM (hooks/scheduler.py HookPlan.pick)
    guardrails = []
    for i, entry in enumerate(clean.get("guardrails", [])):
        spec = _build_guardrail(i, entry, ctx)
        if spec is not None:
            guardrails.append(spec)

    database_url = _database_url(general.get("database_url"), base_dir)
    if database_url is None:
        for key in ("max_budget", "max_end_user_budget"):
            if litellm.get(key) is not None:   # spend is counted from the ledger in the database
                ctx.warn(f"litellm_settings.{key}", "needs a database (general_settings.database_url): "
                                                    "budgets count recorded spend; ignored without one")
    pass_through = build_pass_through(
        general.get("pass_through_endpoints", []),
        general.get("pass_through_request_timeout", DEFAULT_PASS_THROUGH_TIMEOUT), ctx)
    _warn_about_access(general, settings, groups, ctx)
    config = ProxyConfig(
        source=source,
        base_dir=base_dir,
        deployments=deployments,
        model_groups=groups,
        guardrails=guardrails,
        general=_general_settings(general, pass_through, database_url=database_url),
        litellm=settings,
        routing=_section(RouterSettings, routing),
        warnings=ctx.warnings,
        notes=ctx.notes,
        general_settings=MappingProxyType(general),
        litellm_settings=MappingProxyType(litellm),
        router_settings=MappingProxyType(routing),
    )
    if ctx.problems:
        raise ConfigError(ctx.problems, partial=config)
    return config


def load_config(path: str | os.PathLike[str]) -> ProxyConfig:
    """Read and validate a config file. Raises ConfigError (with every problem) on any fault."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{p}: file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{p}: {where}invalid YAML: {problem}"]) from None
    return parse_config(raw, str(p), p.resolve().parent)


def load_default_config() -> ProxyConfig:
    """The embedded defaults: fake models, no key, no network. What `trioproxy run` uses alone."""
    text = resources.files("trioproxy.config").joinpath("defaults.yaml").read_text(encoding="utf-8")
    return parse_config(yaml.safe_load(text), "<embedded defaults>", Path.cwd())


# -- the typed sections from the clean values -----------------------------------------------------

def _section(cls: type, values: dict[str, Any], **converted: Any) -> Any:
    """``cls`` from the keys of ``values`` it has a field for (others: converted or not typed)."""
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in values.items() if k in names}
    kwargs.update(converted)
    return cls(**kwargs)


def _listed(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _database_url(configured: str | None, base_dir: Path) -> str | None:
    """The store's URL: the config's ``database_url`` — a relative SQLite path made absolute
    against the config file's directory, so the database does not move with the current directory
    — else ``$DATABASE_URL`` (as LiteLLM; a relative SQLite path there is relative to the current
    directory, SQLAlchemy's rule), else ``None`` (no database)."""
    if configured:
        scheme, _, rest = configured.partition("://")
        if scheme.lower() in ("sqlite", "sqlite3"):
            path = Path(rest[1:])          # "sqlite:///x.db" → "x.db"; "sqlite:////abs.db" → "/abs.db"
            if not path.is_absolute():
                return f"sqlite:///{(base_dir / path).resolve()}"
        return configured
    return os.environ.get("DATABASE_URL") or None


#: route settings that ``authorize`` applies to the routes wired so far (docs/access.md)
_ROUTE_SETTINGS = ("public_routes", "admin_only_routes", "allowed_routes")


def _warn_about_access(general: dict[str, Any], settings: LitellmSettings,
                       groups: dict[str, list[Deployment]], ctx: Ctx) -> None:
    """Warnings only: the access settings themselves are checked by ``trioproxy/access`` when the
    proxy is built (``proxy.build_access``), every bad entry a startup error."""
    for key in _ROUTE_SETTINGS:
        if key in general:
            ctx.warn(f"general_settings.{key}", "applies to /docs, /openapi.json, the model hub and the "
                     "pass-through endpoints so far; the other routes keep their built-in rules until route "
                     "authorization covers every route (docs/access.md)")
    for name in settings.public_model_groups:
        if name not in groups:
            ctx.warn("litellm_settings.public_model_groups", f"{name!r} is not a model_name of model_list; "
                     "the model hub does not list it")


def _general_settings(values: dict[str, Any], pass_through: tuple[Any, ...] = (), *,
                      database_url: str | None = None) -> GeneralSettings:
    converted: dict[str, Any] = {"pass_through_endpoints": pass_through, "database_url": database_url}
    if "http_pool" in values:
        converted["http_pool"] = _section(HttpPoolSettings, values["http_pool"])
    if "enforced_params" in values:
        converted["enforced_params"] = tuple(values["enforced_params"])
    return _section(GeneralSettings, values, **converted)


def _litellm_settings(values: dict[str, Any]) -> LitellmSettings:
    converted: dict[str, Any] = {
        name: _listed(values[name])
        for name in ("callbacks", "input_callback", "success_callback", "failure_callback",
                     "banned_keywords_list", "blocked_user_list", "public_model_groups") if name in values}
    params = dict(values.get("cache_params") or {})
    if params.get("supported_call_types"):
        params["supported_call_types"] = tuple(params["supported_call_types"])
    else:   # absent or empty: the default set
        params.pop("supported_call_types", None)
    converted["cache"] = _section(CacheSettings, params, enabled=bool(values.get("cache", False)))
    converted["google_thresholds"] = MappingProxyType(
        {key: values[key] for key in GOOGLE_THRESHOLD_KEYS if key in values})
    return _section(LitellmSettings, values, **converted)
