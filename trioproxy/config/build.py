"""From a YAML document to a :class:`~.model.ProxyConfig`: environment, secret managers, validation,
then the typed values.

Order: ``environment_variables`` are set; references to a secret manager are read
(``general_settings.key_management_system``); ``os.environ/NAME`` references are replaced; the
schema validates everything, the routing rules (``router_settings`` with ``model_list`` and the
routing keys of ``litellm_settings``) are validated by ``upstream/routing/validate.py``, and every
problem of both is reported at once; the typed model is built from the clean values (absent keys take
the model's defaults).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import fields
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import yaml

from ..errors import ConfigError
from ..responses_api.route import responses_route
from ..secret_managers.resolve import resolve_config_secrets
from ..upstream.routing import RoutingConfig, parse_routing_config
from .credentials import apply_credential_list
from .deployment_params import OPENAI_REQUEST_FIELDS, looks_like_credential
from .env import PREFIX as ENV_PREFIX
from .env import apply_environment_variables, resolve_env
from .litellm_catalog import ALWAYS_ON_CALLBACKS
from .model import (
    DEFAULT_MAX_STREAM_DURATION,
    DEFAULT_OPENAI_API_BASE,
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
from .providers import NATIVE, POLICY_SETTINGS, PROVIDER_SETTING_NAMES, providers_reading
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


def _secret_refs(raw_entry: Any) -> dict[str, str]:
    """``litellm_params`` key → variable, for each value written ``os.environ/NAME`` (before resolution)."""
    params = raw_entry.get("litellm_params", raw_entry.get("params")) if isinstance(raw_entry, dict) else None
    if not isinstance(params, dict):
        return {}
    return {str(key): value[len(ENV_PREFIX):] for key, value in params.items()
            if isinstance(value, str) and value.startswith(ENV_PREFIX)}


def _provider_params(params: dict[str, Any], provider: str, model: str, path: str, ctx: Ctx) -> dict[str, Any]:
    """The native provider's settings of a deployment (``providers.py``); one its provider does not
    read is ignored with a warning (LiteLLM ignores it too), unless the model is a wildcard ``*``
    (the provider is the one of the request then)."""
    out: dict[str, Any] = {}
    wildcard = "*" in model
    for key in sorted(params):
        if key in POLICY_SETTINGS:
            out[key] = params[key]
        elif key in PROVIDER_SETTING_NAMES:
            if wildcard or key in NATIVE.get(provider, ()):
                out[key] = params[key]
            else:
                readers = ", ".join(f"{p}/" for p in providers_reading(key))
                ctx.warn(f"{path}.{key}", f"read by {readers} models only; ignored for {model!r} (never sent)")
    return out


def _build_deployment(index: int, entry: dict[str, Any], settings: LitellmSettings, ctx: Ctx,
                      raw_entry: Any = None) -> Deployment | None:
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
    if provider == "openai" and not params.get("api_base") and model != "*":
        # (``model: "*"`` passes the request's provider: its default base comes with it, router.py)
        params["api_base"] = DEFAULT_OPENAI_API_BASE
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
    provider_params = _provider_params(params, provider, model, path, ctx)
    # every credential-like setting is a secret, used or ignored
    settings_given = [(k, v) for k, v in params.items() if k in PROVIDER_SETTING_NAMES]
    secret_settings = tuple(v for name, value in [*ignored.items(), *settings_given]
                            for v in _credential_values(str(name), value))
    # /v1/responses: forwarded as is, or translated to chat completions (docs/responses_api.md); only the
    # built-in OpenAI HTTP provider (``openai/``) can forward it
    responses = responses_route(provider=provider, api_base=params.get("api_base") or None,
                                openai_compatible=provider == "openai", litellm_params=params,
                                model_info=entry.get("model_info") if isinstance(entry.get("model_info"), dict) else None)
    if responses.warning:
        ctx.warn(f"model_list[{index}].model_info.supported_endpoints", responses.warning)
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
        provider_params=MappingProxyType(provider_params),
        secret_refs=MappingProxyType(_secret_refs(raw_entry)),
        litellm_model=model,
        guardrails=tuple(params.get("guardrails", ())),
        responses_native=responses.native,
        responses_route_reason=responses.reason,
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
    tag_modes: dict[str, list[str]] = {}
    default_modes: list[str] = []
    if isinstance(modes, dict):   # LiteLLM's mode chosen by request tag: every mode it may run in
        tag_modes, default_modes = modes["tags"], modes["default"]
        modes = list(dict.fromkeys([*default_modes, *(m for ms in tag_modes.values() for m in ms)]))
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
        tag_modes=tag_modes,
        default_modes=default_modes,
    )


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
    # credential_list / litellm_credential_name: the credentials' values become deployment settings
    raw = apply_credential_list(raw, ctx)
    raw_models = raw.get("model_list")   # before resolution: which settings are os.environ/ references
    raw_models = raw_models if isinstance(raw_models, list) else []
    # secret managers (docs/secrets.md): os.environ/NAME read through general_settings.key_management_system
    raw, resolution = resolve_config_secrets(raw, source, ctx.problems, ctx.warnings)
    resolved = resolve_env(raw, "", ctx)
    clean = TOP_LEVEL(resolved, "", ctx)
    # None after a routing problem (reported); the partial config then routes by the defaults
    routing_rules = _routing_rules(resolved, ctx)
    if clean is INVALID:
        clean = {}

    general = clean.get("general_settings", {})
    litellm = clean.get("litellm_settings", {})
    routing = clean.get("router_settings", {})
    _note_builtin_metrics(litellm, ctx)
    settings = _litellm_settings(litellm, base_dir)
    deployments = []
    groups: dict[str, list[Deployment]] = {}
    for i, entry in enumerate(clean.get("model_list", [])):
        dep = _build_deployment(i, entry, settings, ctx, raw_models[i] if i < len(raw_models) else None)
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

    names = {g.name for g in guardrails}
    for dep in deployments:     # a model's guardrails must be configured: a typo would skip one
        for name in dep.guardrails:
            if name not in names:
                ctx.error(f"model_list[{dep.index}].litellm_params.guardrails",
                          f"{name!r} is not a guardrail_name of the guardrails section "
                          f"(guardrails: {', '.join(sorted(names)) or 'none'})")

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
    _check_cache_server(litellm, resolved.get("litellm_settings") or resolved.get("settings"), settings, ctx)
    config = ProxyConfig(
        source=source,
        base_dir=base_dir,
        deployments=deployments,
        model_groups=groups,
        guardrails=guardrails,
        general=_general_settings(general, pass_through, database_url=database_url),
        litellm=settings,
        routing=RouterSettings() if routing_rules is None else RouterSettings(
            num_retries=routing_rules.settings.num_retries, timeout=routing_rules.settings.timeout,
            routing_strategy=routing_rules.settings.routing_strategy),
        warnings=ctx.warnings,
        notes=ctx.notes,
        general_settings=MappingProxyType(general),
        litellm_settings=MappingProxyType(litellm),
        router_settings=MappingProxyType(routing),
        callback_settings=MappingProxyType(clean.get("callback_settings") or {}),
        routing_rules=routing_rules,
        secret_resolution=resolution,
    )
    if ctx.problems:
        raise ConfigError(ctx.problems, partial=config)
    return config


def _routing_rules(resolved: Any, ctx: Ctx) -> RoutingConfig | None:
    """The routing rules, or None after adding every routing problem to ``ctx`` (with the schema's:
    all at once). A path the schema already reported (``router_settings`` not a mapping…) is not
    reported twice."""
    doc = resolved if isinstance(resolved, dict) else {}
    result = parse_routing_config(doc.get("router_settings"), doc.get("model_list"),
                                  doc.get("litellm_settings", doc.get("settings")))
    if isinstance(result, RoutingConfig):
        for warning in result.warnings:
            ctx.warn(getattr(warning, "path", ""), getattr(warning, "message", str(warning)))
        return result
    reported = [p.removeprefix(f"{ctx.source}: ") for p in ctx.problems]
    for problem in result:
        if not any(r.startswith(f"{problem.path}:") for r in reported):
            ctx.error(problem.path, problem.message)
    return None


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
    return os.environ.get("DATABASE_URL") or database_url_from_parts(os.environ)


#: LiteLLM's alternative to ``DATABASE_URL``: the PostgreSQL URL in parts (``DATABASE_SCHEMA`` too)
DATABASE_PART_VARIABLES = ("DATABASE_HOST", "DATABASE_USERNAME", "DATABASE_PASSWORD", "DATABASE_NAME")


def database_url_from_parts(environ: Mapping[str, str]) -> str | None:
    """``postgresql://USERNAME:PASSWORD@HOST/NAME`` from LiteLLM's ``DATABASE_HOST``,
    ``DATABASE_USERNAME``, ``DATABASE_PASSWORD``, ``DATABASE_NAME`` (and ``DATABASE_SCHEMA`` as
    ``?options=-csearch_path=…``); None unless host, user and name are all set. Each part is
    percent-encoded, so a password with ``@`` or ``/`` stays one password. ``DATABASE_HOST`` may carry
    a port (``db:5432``), as in LiteLLM."""
    host, user, password, name = (environ.get(v) or "" for v in DATABASE_PART_VARIABLES)
    if not (host and user and name):
        return None
    credentials = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    url = f"postgresql://{credentials}@{host}/{quote(name, safe='')}"
    schema = environ.get("DATABASE_SCHEMA")
    if schema:
        url += "?options=" + quote(f"-csearch_path={schema}", safe="")
    return url


#: LiteLLM's Redis variables, read when ``cache_params`` of ``type: redis`` names no server
REDIS_VARIABLES = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_USERNAME", "REDIS_PASSWORD", "REDIS_SSL")


def cache_redis_url(params: Mapping[str, Any], environ: Mapping[str, str]) -> str | None:
    """The response cache's Redis server from ``cache_params`` (``url``, or ``host``, ``port``,
    ``username``, ``password``, ``ssl``), else from ``$REDIS_URL`` / ``$REDIS_HOST``… as LiteLLM's
    Redis cache does. None when neither names a host.

    Only the response cache reads this: the coordination layer's Redis (limits, revocation) has
    its own resolution (``coordination/settings.py``), which also accepts ``cache_params``."""
    if params.get("url"):
        return str(params["url"])
    if params.get("host"):
        values = {"host": params["host"], "port": params.get("port"), "username": params.get("username"),
                  "password": params.get("password"), "ssl": params.get("ssl")}
    elif environ.get("REDIS_URL"):
        return environ["REDIS_URL"]
    elif environ.get("REDIS_HOST"):
        values = {"host": environ["REDIS_HOST"], "port": environ.get("REDIS_PORT"),
                  "username": environ.get("REDIS_USERNAME"), "password": environ.get("REDIS_PASSWORD"),
                  "ssl": (environ.get("REDIS_SSL") or "").lower() in ("1", "true", "yes")}
    else:
        return None
    user = quote(str(values["username"] or ""), safe="")
    password = quote(str(values["password"] or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = str(values["host"])
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"      # an IPv6 address
    port = values["port"] or 6379
    return f"{'rediss' if values['ssl'] else 'redis'}://{auth}{host}:{port}"


def _check_cache_server(litellm: dict[str, Any], written: Any, settings: LitellmSettings, ctx: Ctx) -> None:
    """``cache_params.type: redis`` needs a server; the server settings need ``type: redis``."""
    params = litellm.get("cache_params") or {}
    cache = settings.cache
    written_params = written.get("cache_params") if isinstance(written, dict) else None
    if isinstance(written_params, dict) and "type" in written_params and "type" not in params:
        return      # a wrong type, reported by the schema already
    if cache.type == "redis" and cache.redis_url is None:
        where, implied = ("litellm_settings.cache_params.type", "") if "type" in params else (
            "litellm_settings.cache", "cache: true without cache_params.type means a Redis cache, as in LiteLLM; ")
        ctx.error(where, f"{implied}type: redis needs the server: cache_params.host (and port, password) or url, "
                  "or the environment's REDIS_HOST / REDIS_URL. For an in-process cache (one per worker process, "
                  "empty after a restart) write cache_params: {type: local}")
    elif cache.type == "redis" and isinstance(params.get("host"), str) and (
            "://" in params["host"] or "/" in params["host"]):
        ctx.error("litellm_settings.cache_params.host", "expected a host name or address (write a redis:// URL "
                  "as cache_params.url)")
    elif cache.type == "redis" and cache.redis_url is not None:
        scheme = cache.redis_url.partition("://")[0].lower() if "://" in cache.redis_url else ""
        if scheme not in ("redis", "rediss", "unix"):
            # the scheme only: the URL may hold a password
            ctx.error("litellm_settings.cache_params.url", "a Redis URL starts with redis://, rediss:// or "
                      f"unix:// (got {scheme + '://' if scheme else 'no scheme'})")
    elif cache.type in ("local", "disk"):
        for key in ("host", "port", "url", "username", "password", "ssl"):
            if key in params:
                ctx.warn(f"litellm_settings.cache_params.{key}", f"a Redis server setting, ignored: the cache is "
                         f"type: {cache.type}; write type: redis to share the cache between workers "
                         "and instances (docs/deploy.md)")
    if cache.type != "disk" and "disk_cache_dir" in params:
        ctx.warn("litellm_settings.cache_params.disk_cache_dir", "the directory of a type: disk cache, ignored: "
                 f"the cache is type: {cache.type}")
    if cache.type == "disk" and "max_size" in params:
        ctx.warn("litellm_settings.cache_params.max_size", "bounds the local cache only, ignored: a disk cache is "
                 "bounded at 1 GiB, least recently stored answers evicted first (docs/logging.md)")
    if cache.type == "redis" and "max_size" in params:
        ctx.warn("litellm_settings.cache_params.max_size", "bounds the local cache only; a Redis cache is "
                 "bounded by the server's maxmemory (docs/deploy.md)")


def _warn_about_access(general: dict[str, Any], settings: LitellmSettings,
                       groups: dict[str, list[Deployment]], ctx: Ctx) -> None:
    """Warnings only: the access settings themselves are checked by ``trioproxy/access`` when the
    proxy is built (``proxy.build_access``), every bad entry a startup error."""
    jwks_urls = os.environ.get("JWT_PUBLIC_KEY_URL", "")
    if general.get("enable_jwt_auth") is True:
        for url in (u.strip() for u in jwks_urls.split(",")):
            if url.startswith("http://") and not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
                ctx.warn("JWT_PUBLIC_KEY_URL", f"{url} is plain http: whoever can alter that traffic can "
                         "publish their own signing key and mint admin tokens; use https")
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


def _litellm_settings(values: dict[str, Any], base_dir: Path) -> LitellmSettings:
    converted: dict[str, Any] = {
        name: _listed(values[name])
        for name in ("callbacks", "input_callback", "success_callback", "failure_callback",
                     "banned_keywords_list", "blocked_user_list", "public_model_groups") if name in values}
    params = dict(values.get("cache_params") or {})
    if params.get("supported_call_types"):
        params["supported_call_types"] = tuple(params["supported_call_types"])
    else:   # absent or empty: the default set
        params.pop("supported_call_types", None)
    if values.get("cache") is True and "type" not in params:
        # LiteLLM's proxy reads cache_params.get("type", "redis") (and REDIS_HOST/REDIS_PORT/REDIS_PASSWORD)
        params["type"] = "redis"
    redis_url = cache_redis_url(params, os.environ) if params.get("type") == "redis" else None
    if params.get("type") == "disk":
        # LiteLLM's default directory; ~ expanded; relative to the config file (as database_url is)
        directory = Path(str(params.get("disk_cache_dir") or ".litellm_cache")).expanduser()
        params["disk_cache_dir"] = str(directory if directory.is_absolute() else base_dir / directory)
    converted["cache"] = _section(CacheSettings, params, enabled=bool(values.get("cache", False)),
                                  redis_url=redis_url)
    converted["google_thresholds"] = MappingProxyType(
        {key: values[key] for key in GOOGLE_THRESHOLD_KEYS if key in values})
    return _section(LitellmSettings, values, **converted)
