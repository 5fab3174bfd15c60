"""Reading and validating the YAML config (the seeds' layout, so their configs load).

Every problem is reported with the file, the key path and what was expected, all problems at once
(``ConfigError.problems``), so a user fixes a config in one go instead of one error per restart.

Rules, decided here once:

* Unknown keys are errors, with the closest known key suggested ("did you mean 'master_key'?").
  Keys the seeds document but trioproxy does not implement (``store_audit_logs``, ``public_routes``,
  …) load with a warning instead, so seed configs keep working and nobody is misled.
* ``litellm_params`` of a model is classified by explicit lists (``deployment_params.py``): the
  settings trioproxy implements; OpenAI request parameters (``temperature``, ``max_tokens``…),
  passed into every request body as defaults the client can override; LiteLLM settings not
  implemented yet (``api_version``, ``aws_*``, ``tags``…), loaded with a warning and never sent
  upstream (credential-like ones are given to the secret scrubber); anything else is an error with
  the closest name suggested. Nothing from the config reaches a request body unless a list says so.
* ``os.environ/NAME`` anywhere is replaced by the variable's value at startup; a missing variable
  is an error naming it and the key. ``environment_variables`` are set first.
* Neutral aliases: ``params`` for ``litellm_params``, ``settings`` for ``litellm_settings``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..masking import mask_url, url_secrets
from ..policies.moderation_keys import GOOGLE_THRESHOLD_KEYS
from ..secret_managers.base import resolved_values
from ..secret_managers.resolve import resolve_config_secrets
from .deployment_params import (
    LITELLM_NOT_IMPLEMENTED,
    OPENAI_REQUEST_FIELDS,
    looks_like_credential,
)

__all__ = [
    "ConfigError",
    "Deployment",
    "GuardrailSpec",
    "ProxyConfig",
    "load_config",
    "load_default_config",
    "parse_config",
    "size_limit_bytes",
]

PROVIDERS = ("openai", "fake")


class ConfigError(Exception):
    """All problems found in one config, each ``file: key.path: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# ---------------------------------------------------------------------------------------------
# A tiny declarative schema. Each validator takes (value, path, ctx) and returns the clean value,
# reporting problems to ctx; the schema below is the configuration reference in code form.
# ---------------------------------------------------------------------------------------------

Validator = Callable[[Any, str, "_Ctx"], Any]


class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(f"{self.source}: {path or '<top level>'}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{self.source}: {path}: {message}")


_INVALID = object()


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def v_str(value: Any, path: str, ctx: _Ctx) -> Any:
    if isinstance(value, str):
        return value
    ctx.error(path, f"expected a string, got {_describe(value)}")
    return _INVALID


def v_secret(value: Any, path: str, ctx: _Ctx) -> Any:
    """A string that is a credential: a wrong value is described by its type only, never shown."""
    if isinstance(value, str):
        return value
    ctx.error(path, f"expected a string, got a value of type {type(value).__name__} (not shown: it is a secret)")
    return _INVALID


def v_bool(value: Any, path: str, ctx: _Ctx) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    ctx.error(path, f"expected true or false, got {_describe(value)}")
    return _INVALID


def v_num(minimum: float | None = 0.0, maximum: float | None = None) -> Validator:
    def check(value: Any, path: str, ctx: _Ctx) -> Any:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            ctx.error(path, f"expected a number, got {_describe(value)}")
            return _INVALID
        if minimum is not None and value < minimum:
            ctx.error(path, f"expected a number >= {minimum}, got {value}")
            return _INVALID
        if maximum is not None and value > maximum:
            ctx.error(path, f"expected a number <= {maximum}, got {value}")
            return _INVALID
        return float(value)

    return check


def v_int(minimum: int | None = 0) -> Validator:
    def check(value: Any, path: str, ctx: _Ctx) -> Any:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            ctx.error(path, f"expected a whole number, got {_describe(value)}")
            return _INVALID
        if minimum is not None and value < minimum:
            ctx.error(path, f"expected a whole number >= {minimum}, got {value}")
            return _INVALID
        return value

    return check


def v_choice(*choices: str) -> Validator:
    def check(value: Any, path: str, ctx: _Ctx) -> Any:
        if value in choices:
            return value
        ctx.error(path, f"expected one of {', '.join(map(repr, choices))}, got {_describe(value)}")
        return _INVALID

    return check


def v_str_or_list(value: Any, path: str, ctx: _Ctx) -> Any:
    """A string or a list of strings, always returned as a list (the seeds allow both)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                ctx.error(f"{path}[{i}]", f"expected a string, got {_describe(item)}")
        return out
    ctx.error(path, f"expected a string or a list of strings, got {_describe(value)}")
    return _INVALID


def v_list_or_file(value: Any, path: str, ctx: _Ctx) -> Any:
    """A list of strings, or a path to a ``.txt`` file with one entry per line (kept as a path)."""
    if isinstance(value, str):
        return value
    return v_str_or_list(value, path, ctx)


def v_any_dict(value: Any, path: str, ctx: _Ctx) -> Any:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    ctx.error(path, f"expected a mapping, got {_describe(value)}")
    return _INVALID


def v_any(value: Any, path: str, ctx: _Ctx) -> Any:
    return value


@dataclass
class Section:
    """A mapping with known keys. ``extra`` decides what happens to other keys."""

    fields: dict[str, Validator]
    required: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    unsupported: tuple[str, ...] | frozenset[str] = ()   # documented by the seeds, accepted with a warning
    extra: str = "error"                # "error" | "passthrough"
    #: the warning for an unsupported key (default: "accepted for compatibility…")
    unsupported_note: str | None = None
    #: keep unsupported keys' values under ``"__unsupported__"`` (e.g. to feed the secret scrubber)
    keep_unsupported: bool = False
    #: what an unknown key's error says instead of listing every known key (long sections)
    known_hint: str | None = None

    def __call__(self, value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            ctx.error(path, f"expected a mapping, got {_describe(value)}")
            return _INVALID
        out: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        unsupported: dict[str, Any] = {}
        for raw_key, item in value.items():
            key = self.aliases.get(raw_key, raw_key)
            sub = f"{path}.{raw_key}" if path else str(raw_key)
            if key in self.fields:
                checked = self.fields[key](item, sub, ctx)
                if checked is not _INVALID:
                    out[key] = checked
            elif key in self.unsupported:
                ctx.warn(sub, self.unsupported_note or
                         "accepted for compatibility with the seeds' configs, but not implemented by trioproxy (ignored)")
                if self.keep_unsupported:
                    unsupported[key] = item
            else:
                candidates = list(self.fields) + list(self.aliases) + list(self.unsupported)
                close = difflib.get_close_matches(str(key), candidates, n=1, cutoff=0.75)
                if self.extra == "passthrough" and not close:
                    extras[key] = item
                    continue
                hint = f"; did you mean {close[0]!r}?" if close else ""
                known = self.known_hint or f"known keys: {', '.join(sorted(self.fields))}"
                ctx.error(sub, f"unknown key {raw_key!r}{hint} ({known})")
        for key in self.required:
            if key not in out and not any(self.aliases.get(k) == key for k in value if k in self.aliases):
                if key not in value:
                    ctx.error(f"{path}.{key}" if path else key, "is required")
        if self.extra == "passthrough":
            out["__extra__"] = extras
        if self.keep_unsupported:
            out["__unsupported__"] = unsupported
        return out


def v_list_of(item: Validator) -> Validator:
    def check(value: Any, path: str, ctx: _Ctx) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            ctx.error(path, f"expected a list, got {_describe(value)}")
            return _INVALID
        out = []
        for i, element in enumerate(value):
            checked = item(element, f"{path}[{i}]", ctx)
            if checked is not _INVALID:
                out.append(checked)
        return out

    return check


def v_provider_model(value: Any, path: str, ctx: _Ctx) -> Any:
    if not isinstance(value, str) or not value:
        ctx.error(path, f"expected 'provider/model' (e.g. 'openai/gpt-4o' or 'fake/demo'), got {_describe(value)}")
        return _INVALID
    provider, sep, _name = value.partition("/")
    if not sep:
        # the seeds write bare OpenAI model names ("gpt-3.5-turbo"): they mean the openai provider
        return value
    if provider not in PROVIDERS:
        ctx.error(path, f"unknown provider {provider!r} in {value!r}; supported: {', '.join(PROVIDERS)} "
                        "(any OpenAI-compatible server works as 'openai/<name>' with api_base)")
        return _INVALID
    return value


#: body fields a deployment's ``extra_body`` may not set: the request's own, and the proxy's
_RESERVED_BODY_FIELDS = frozenset({"model", "messages", "prompt", "input", "stream", "stream_options", "metadata"})


def v_extra_body(value: Any, path: str, ctx: _Ctx) -> Any:
    """Body fields sent as they are (``top_k`` for vLLM…): never a credential, never the request's own."""
    checked = v_any_dict(value, path, ctx)
    if checked is _INVALID:
        return _INVALID
    ok = True
    for key in checked:
        name = str(key)
        if looks_like_credential(name):
            ctx.error(f"{path}.{name}", "looks like a credential; a credential is never sent in a request body "
                                        "(use api_key, or extra_headers for a header the upstream expects)")
            ok = False
        elif name in _RESERVED_BODY_FIELDS:
            ctx.error(f"{path}.{name}", f"{name!r} is the request's own field, not a deployment default")
            ok = False
    return checked if ok else _INVALID


MODEL_PARAMS = Section(
    fields={
        "model": v_provider_model,
        "api_base": v_str,
        "api_key": v_secret,
        "organization": v_str,
        "timeout": v_num(0.001),
        "stream_timeout": v_num(0.001),
        "max_stream_duration": v_num(0.001),
        "max_retries": v_int(0),
        "input_cost_per_token": v_num(0.0),
        "output_cost_per_token": v_num(0.0),
        "weight": v_num(0.0),
        "extra_headers": v_any_dict,
        "extra_body": v_extra_body,
        # the fake provider's knobs (demos, tests, benchmarks)
        "mock_response": v_str,
        "latency": v_num(0.0),
        "chunk_latency": v_num(0.0),
        "fail_rate": v_num(0.0, 1.0),
        "fail_status": v_int(400),
        # OpenAI request parameters: defaults for every request body (the client's value wins)
        **dict.fromkeys(sorted(OPENAI_REQUEST_FIELDS), v_any),
    },
    required=("model",),
    unsupported=LITELLM_NOT_IMPLEMENTED,
    unsupported_note="a LiteLLM deployment setting trioproxy does not implement yet: ignored, and never sent upstream",
    keep_unsupported=True,
    known_hint="litellm_params takes the deployment settings and OpenAI request parameters listed in the "
               "README's configuration reference; other body fields go under extra_body",
)

MODEL_ENTRY = Section(
    fields={"model_name": v_str, "litellm_params": MODEL_PARAMS, "model_info": v_any_dict},
    aliases={"params": "litellm_params"},
    required=("model_name", "litellm_params"),
)

CACHE_PARAMS = Section(
    fields={
        "type": v_choice("local"),
        "ttl": v_num(0.0),
        "max_size": v_int(1),
        "supported_call_types": v_str_or_list,
        "namespace": v_str,
    },
    unsupported=("host", "port", "password"),
)

LITELLM_SETTINGS = Section(
    fields={
        "callbacks": v_str_or_list,
        "input_callback": v_str_or_list,
        "success_callback": v_str_or_list,
        "failure_callback": v_str_or_list,
        "num_retries": v_int(0),
        "request_timeout": v_num(0.001),
        "cache": v_bool,
        "cache_params": CACHE_PARAMS,
        "banned_keywords_list": v_list_or_file,
        "blocked_user_list": v_list_or_file,
        "llm_guard_mode": v_choice("all", "key-specific", "request-specific"),
        "llm_guard_fail_mode": v_choice("closed", "open"),
        "llm_guard_timeout": v_num(0.001),
        # hosted moderation built-ins (docs/guardrails.md; policies/llamaguard.py, google_text_moderation.py)
        "llamaguard_model_name": v_str,
        "llamaguard_unsafe_content_categories": v_str,
        "llamaguard_fail_open": v_bool,
        "llamaguard_timeout": v_num(0.001),
        "google_moderation_confidence_threshold": v_num(0.0, 1.0),
        "google_moderation_fail_open": v_bool,
        "google_moderation_timeout": v_num(0.001),
        **{key: v_num(0.0, 1.0) for key in GOOGLE_THRESHOLD_KEYS},
        "drop_params": v_bool,
        "set_verbose": v_bool,
        "json_logs": v_bool,
    },
    unsupported=(
        "store_audit_logs",
        "service_callback",
        "max_budget",
        "budget_duration",
        "default_team_settings",
    ),
)

HTTP_POOL = Section(
    fields={
        "max_connections": v_int(1),
        "max_keepalive_connections": v_int(0),
        "keepalive_expiry": v_num(0.0),
        "connect_timeout": v_num(0.001),
    }
)

GENERAL_SETTINGS = Section(
    fields={
        "master_key": v_secret,
        "enforce_user_param": v_bool,
        "enforced_params": v_str_or_list,
        "block_robots": v_bool,
        "max_request_size_mb": v_num(0.0),
        "max_response_size_mb": v_num(0.0),
        # bounds on slow or huge input (README "Limits and guarantees"; defaults below)
        "request_header_timeout": v_num(0.001),
        "request_body_timeout": v_num(0.001),
        "max_request_header_size_kb": v_num(1.0),
        "max_request_headers": v_int(1),
        "max_in_flight_requests": v_int(1),
        "hook_timeout_seconds": v_num(0.001),
        "callback_timeout_seconds": v_num(0.001),
        "callback_error_log_interval": v_num(0.0),
        "logging_queue_size": v_int(1),
        "graceful_shutdown_timeout": v_num(0.0),
        "metrics_public": v_bool,
        "http_pool": HTTP_POOL,
        # the transport of the openai provider: the built-in HTTP/1.1 client, or httpx (fallback)
        "http_client": v_choice("builtin", "httpx"),
        # secret managers (docs/secrets.md): checked by secret_managers/settings.py before validation
        "key_management_system": v_str,
        "key_management_settings": v_any_dict,
    },
    # LiteLLM's name for a per-instance cap on concurrent requests (it answers 429; we answer 503)
    aliases={"global_max_parallel_requests": "max_in_flight_requests"},
    unsupported=(
        "public_routes",
        "allowed_routes",
        "admin_only_routes",
        "database_url",
        "alerting",
        "spend_logs_metadata",
        "store_model_in_db",
        "proxy_batch_write_at",
    ),
)

ROUTER_SETTINGS = Section(
    fields={
        "num_retries": v_int(0),
        "timeout": v_num(0.001),
        "routing_strategy": v_choice("simple-shuffle"),
    },
    unsupported=("redis_host", "redis_port", "redis_password", "allowed_fails", "cooldown_time"),
)

GUARDRAIL_PARAMS = Section(
    fields={
        "guardrail": v_str,
        "mode": v_str_or_list,
        "default_on": v_bool,
        "stream_mode": v_choice("pass_through", "buffer"),
    },
    required=("guardrail", "mode"),
    extra="passthrough",
)

GUARDRAIL_ENTRY = Section(
    fields={"guardrail_name": v_str, "litellm_params": GUARDRAIL_PARAMS, "guardrail_info": v_any_dict},
    aliases={"params": "litellm_params"},
    required=("guardrail_name", "litellm_params"),
)

TOP_LEVEL = Section(
    fields={
        "model_list": v_list_of(MODEL_ENTRY),
        "litellm_settings": LITELLM_SETTINGS,
        "general_settings": GENERAL_SETTINGS,
        "router_settings": ROUTER_SETTINGS,
        "environment_variables": v_any_dict,
        "guardrails": v_list_of(GUARDRAIL_ENTRY),
    },
    aliases={"settings": "litellm_settings"},
    required=("model_list",),
)

GUARDRAIL_MODES = ("pre_call", "during_call", "post_call", "logging_only")

# The defaults of the request bounds, written once (README "Limits and guarantees" says why each).
DEFAULT_MAX_REQUEST_SIZE_MB = 32.0          # the seeds recommend "around 32 MB"
DEFAULT_REQUEST_HEADER_TIMEOUT = 10.0       # seconds for a whole request head
DEFAULT_REQUEST_BODY_TIMEOUT = 30.0         # seconds for a whole request body
DEFAULT_MAX_REQUEST_HEADER_SIZE_KB = 32.0   # request line + header fields, KiB
DEFAULT_MAX_REQUEST_HEADERS = 100           # header fields (Apache's LimitRequestFields)
DEFAULT_MAX_IN_FLIGHT_REQUESTS = 1000       # one worker; = http_pool.max_connections' default


def size_limit_bytes(megabytes: float | None) -> int | None:
    """``max_request_size_mb`` / ``max_response_size_mb`` in bytes: the one conversion.

    MiB (1024 × 1024 bytes), as LiteLLM counts. ``None`` means no limit. A body is over the limit
    when it is *larger* than this, so ``0`` (or the seeds' ``0.000000001``) refuses every non-empty
    body, as in LiteLLM, rather than lifting the limit.
    """
    if megabytes is None:
        return None
    return int(megabytes * 1024 * 1024)

# ---------------------------------------------------------------------------------------------
# The validated result
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True, repr=False)
class Deployment:
    """One upstream behind a public model name."""

    model_name: str                 # what clients ask for
    provider: str                   # "openai" | "fake"
    upstream_model: str             # the name sent upstream
    api_base: str | None            # may hold credentials (user:pass@): show safe_api_base instead
    api_key: str | None
    timeout: float
    stream_timeout: float
    max_retries: int | None
    weight: float
    extra_params: dict[str, Any]    # body defaults: OpenAI request parameters and extra_body (deployment_params.py)
    extra_headers: dict[str, str]   # may carry keys (api-key, Authorization): see secrets()
    input_cost_per_token: float | None
    output_cost_per_token: float | None
    fake: dict[str, Any]            # the fake provider's knobs
    model_info: dict[str, Any]
    index: int                      # position in model_list, for messages
    #: values of credential-like settings trioproxy ignores (``aws_secret_access_key``…): never
    #: sent anywhere, known to the scrubber all the same
    secret_settings: tuple[str, ...] = ()
    max_stream_duration: float = 600.0  # seconds a stream may last (then: stream_duration_exceeded)

    def __repr__(self) -> str:
        # no api_key, no extra_headers, no api_base credentials: reprs end up in log lines
        return f"Deployment(model_name={self.model_name!r}, {self.label}, index={self.index})"

    @property
    def safe_api_base(self) -> str | None:
        """``api_base`` as operators see it: ``user:password@`` → ``***@``, query values masked."""
        return mask_url(self.api_base)

    @property
    def label(self) -> str:
        """For operators (logs, ``trioproxy check``): provider, model and the masked ``api_base``."""
        base = f" at {self.safe_api_base}" if self.api_base else ""
        return f"{self.provider}/{self.upstream_model}{base}"

    @property
    def public_label(self) -> str:
        """For clients (error messages): provider and model, never the ``api_base`` or its host."""
        return f"{self.provider}/{self.upstream_model}"

    def url(self, endpoint: str) -> str:
        """``api_base`` + ``/endpoint``, keeping a query (``…/v1?key=…`` → ``…/v1/chat/completions?key=…``)."""
        base = self.api_base or ""
        if "?" not in base:
            return f"{base}/{endpoint}"
        path, _, query = base.partition("?")
        return f"{path.rstrip('/')}/{endpoint}?{query}"


#: extra_headers (and guardrail params) whose values are credentials (``api-key``, ``Authorization``, ``x-goog-api-key``…)
_SECRET_HEADER = re.compile(r"(auth|authorization|key|token|secret|password|passwd|cookie)$", re.IGNORECASE)


@dataclass(slots=True)
class GuardrailSpec:
    name: str
    class_path: str
    modes: list[str]
    default_on: bool
    stream_mode: str
    params: dict[str, Any] = field(repr=False)   # a guardrail's own settings may hold its api_key


@dataclass(repr=False)
class ProxyConfig:
    source: str                          # file path or "<embedded defaults>"
    base_dir: Path                       # handler modules are looked up here first
    deployments: list[Deployment]
    model_groups: dict[str, list[Deployment]]
    litellm_settings: dict[str, Any]
    general_settings: dict[str, Any]
    router_settings: dict[str, Any]
    guardrails: list[GuardrailSpec]
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        # the settings hold the master key (and guardrails their own keys): never in a repr
        return f"ProxyConfig(source={self.source!r}, models={list(self.model_groups)!r})"

    @property
    def master_key(self) -> str | None:
        return self.general_settings.get("master_key")

    @property
    def num_retries(self) -> int:
        s = self.router_settings.get("num_retries")
        return int(s if s is not None else self.litellm_settings.get("num_retries", 2))

    @property
    def request_timeout(self) -> float:
        return float(self.router_settings.get("timeout") or self.litellm_settings.get("request_timeout", 600.0))

    @property
    def hook_timeout(self) -> float:
        return float(self.general_settings.get("hook_timeout_seconds", 30.0))

    @property
    def graceful_shutdown_timeout(self) -> float:
        return float(self.general_settings.get("graceful_shutdown_timeout", 30.0))

    @property
    def max_request_bytes(self) -> int:
        limit = size_limit_bytes(self.general_settings.get("max_request_size_mb", DEFAULT_MAX_REQUEST_SIZE_MB))
        assert limit is not None
        return limit

    @property
    def max_response_bytes(self) -> int | None:
        return size_limit_bytes(self.general_settings.get("max_response_size_mb"))

    @property
    def request_header_timeout(self) -> float:
        return float(self.general_settings.get("request_header_timeout", DEFAULT_REQUEST_HEADER_TIMEOUT))

    @property
    def request_body_timeout(self) -> float:
        return float(self.general_settings.get("request_body_timeout", DEFAULT_REQUEST_BODY_TIMEOUT))

    @property
    def max_request_header_bytes(self) -> int:
        return int(self.general_settings.get("max_request_header_size_kb", DEFAULT_MAX_REQUEST_HEADER_SIZE_KB) * 1024)

    @property
    def max_request_headers(self) -> int:
        return int(self.general_settings.get("max_request_headers", DEFAULT_MAX_REQUEST_HEADERS))

    @property
    def max_in_flight_requests(self) -> int:
        return int(self.general_settings.get("max_in_flight_requests", DEFAULT_MAX_IN_FLIGHT_REQUESTS))

    def secrets(self) -> list[str]:
        """Every secret this config holds, for the scrubber."""
        out = [self.master_key] if self.master_key else []
        for d in self.deployments:
            if d.api_key:
                out.append(d.api_key)
            out += url_secrets(d.api_base)
            out += d.secret_settings
            for name, value in d.extra_headers.items():
                if value and _SECRET_HEADER.search(name):
                    out.append(value)
                    scheme, space, token = value.partition(" ")
                    if space and scheme.lower() in ("bearer", "basic", "token"):
                        out.append(token.strip())
        for g in self.guardrails:
            for name, value in g.params.items():
                if isinstance(value, str) and value and _SECRET_HEADER.search(str(name)):
                    out.append(value)
        out += resolved_values()   # read from a secret manager or decrypted with KMS, wherever they went
        return out


def _resolve_env(value: Any, path: str, ctx: _Ctx) -> Any:
    if isinstance(value, str) and value.startswith("os.environ/"):
        name = value[len("os.environ/"):]
        if name not in os.environ:
            ctx.error(path, f"environment variable {name!r} is not set (referenced as {value!r})")
            return ""  # keeps the type check below from reporting the same key twice
        return os.environ[name]
    if isinstance(value, dict):
        return {k: _resolve_env(v, f"{path}.{k}" if path else str(k), ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, f"{path}[{i}]", ctx) for i, v in enumerate(value)]
    return value


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


def _build_deployment(index: int, entry: dict[str, Any], settings: dict, ctx: _Ctx) -> Deployment | None:
    params = dict(entry["litellm_params"])
    ignored = params.pop("__unsupported__", {})
    model = params["model"]
    provider, sep, name = model.partition("/")
    if not sep:
        provider, name = "openai", model
    path = f"model_list[{index}].litellm_params"
    if provider == "openai" and not params.get("api_base"):
        params["api_base"] = "https://api.openai.com/v1"
    timeout = params.get("timeout", settings.get("request_timeout", 600.0))
    fake_keys = ("mock_response", "latency", "chunk_latency", "fail_rate", "fail_status")
    fake = {k: params[k] for k in fake_keys if k in params}
    if fake and provider != "fake":
        ctx.error(path, f"{', '.join(fake)} only apply to the 'fake/…' provider, not {model!r}")
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
        input_cost_per_token=params.get("input_cost_per_token"),
        output_cost_per_token=params.get("output_cost_per_token"),
        fake=fake,
        model_info=entry.get("model_info", {}),
        index=index,
        secret_settings=secret_settings,
        max_stream_duration=float(params.get("max_stream_duration", 600.0)),
    )


def _build_guardrail(index: int, entry: dict[str, Any], ctx: _Ctx) -> GuardrailSpec | None:
    params = dict(entry["litellm_params"])
    extra = params.pop("__extra__", {})
    path = f"guardrails[{index}].litellm_params.mode"
    modes = params["mode"]
    for mode in modes:
        if mode not in GUARDRAIL_MODES:
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


def parse_config(raw: Any, source: str, base_dir: Path) -> ProxyConfig:
    """Validate an already-loaded YAML document. Raises ConfigError with every problem found."""
    ctx = _Ctx(source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: <top level>: expected a mapping with 'model_list', got {_describe(raw)}"])
    env = raw.get("environment_variables")
    if isinstance(env, dict):
        for name, value in env.items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                os.environ[str(name)] = str(value)
            else:
                ctx.error(f"environment_variables.{name}", f"expected a string or number, got {_describe(value)}")
    # secret managers (docs/secrets.md): os.environ/NAME read through general_settings.key_management_system
    raw = resolve_config_secrets(raw, source, ctx.problems, ctx.warnings)
    resolved = _resolve_env(raw, "", ctx)
    clean = TOP_LEVEL(resolved, "", ctx)
    if clean is _INVALID or ctx.problems:
        raise ConfigError(ctx.problems)

    settings = clean.get("litellm_settings", {})
    deployments = []
    groups: dict[str, list[Deployment]] = {}
    for i, entry in enumerate(clean.get("model_list", [])):
        dep = _build_deployment(i, entry, settings, ctx)
        if dep is not None:
            deployments.append(dep)
            groups.setdefault(dep.model_name, []).append(dep)
    if not deployments and not ctx.problems:
        ctx.error("model_list", "needs at least one model (see config.example.yaml)")

    guardrails = []
    seen: set[str] = set()
    for i, entry in enumerate(clean.get("guardrails", [])):
        spec = _build_guardrail(i, entry, ctx)
        if spec is None:
            continue
        if spec.name in seen:
            ctx.error(f"guardrails[{i}].guardrail_name", f"duplicate guardrail name {spec.name!r}")
        seen.add(spec.name)
        guardrails.append(spec)

    if ctx.problems:
        raise ConfigError(ctx.problems)
    return ProxyConfig(
        source=source,
        base_dir=base_dir,
        deployments=deployments,
        model_groups=groups,
        litellm_settings=settings,
        general_settings=clean.get("general_settings", {}),
        router_settings=clean.get("router_settings", {}),
        guardrails=guardrails,
        warnings=ctx.warnings,
    )


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
