"""The config schema: validators and sections, which are the configuration reference in code form.

Every problem is reported with the file, the key path and what was expected, all problems at once
(``ConfigError.problems``), so a user fixes a config in one go instead of one error per restart.
The validators only check and clean values; defaults are not written here but once, on the typed
model (``model.py``), which ``build.py`` fills from what these sections let through.

Rules, decided here once:

* Unknown keys are errors, with the closest known key suggested ("did you mean 'master_key'?").
  Keys the seeds document but trioproxy does not implement (``alerting``,
  …) load with a warning instead, so seed configs keep working and nobody is misled.
* ``litellm_params`` of a model is classified by explicit lists (``deployment_params.py``): the
  settings trioproxy implements; OpenAI request parameters (``temperature``, ``max_tokens``…),
  passed into every request body as defaults the client can override; LiteLLM settings not
  implemented yet (``api_version``, ``aws_*``, ``tags``…), loaded with a warning and never sent
  upstream (credential-like ones are given to the secret scrubber); anything else is an error with
  the closest name suggested. Nothing from the config reaches a request body unless a list says so.
* ``router_settings`` (and the routing keys of ``litellm_settings`` and of each deployment) are
  validated by the routing package (``upstream/routing/validate.py``), to which ``build.py`` hands
  the sections whole; its problems join these, reported at once.
* Neutral aliases: ``params`` for ``litellm_params``, ``settings`` for ``litellm_settings``.
"""

from __future__ import annotations

import re
from typing import Any

from .deployment_params import (
    LITELLM_NOT_IMPLEMENTED,
    OPENAI_REQUEST_FIELDS,
    ROUTING_SETTINGS,
    looks_like_credential,
)
from .litellm_catalog import (
    CACHE_TYPES,
    GUARDRAIL_PARAMS,
    NO_EFFECT,
    cache_type_message,
    unsupported_key,
)
from .logging_keys import ALERTING_GENERAL_SETTINGS, LOGGING_LITELLM_SETTINGS, LOGGING_NO_EFFECT
from .moderation_keys import GOOGLE_THRESHOLD_KEYS
from .providers import PROVIDER_SETTING_NAMES, PROVIDERS
from .validators import (
    INVALID,
    Ctx,
    Section,
    describe,
    v_any,
    v_any_dict,
    v_bool,
    v_choice,
    v_coordination_redis,
    v_int,
    v_list_of,
    v_list_or_file,
    v_num,
    v_secret,
    v_str,
    v_str_or_list,
)

__all__ = ["GUARDRAIL_MODES", "MODEL_PARAMS", "PROVIDERS", "ROUTING_LITELLM_SETTINGS", "TOP_LEVEL", "Section"]

#: routing keys LiteLLM also reads from ``litellm_settings``: validated, with ``router_settings``, by
#: ``upstream/routing/validate.py`` (``build.py`` hands it both sections whole)
ROUTING_LITELLM_SETTINGS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks",
                            "default_fallbacks", "allowed_fails", "cooldown_time", "tag_budget_config")


def v_guardrail_mode(value: Any, path: str, ctx: Ctx) -> Any:
    """A mode or a list of modes, or LiteLLM's mode chosen by request tag:
    ``{tags: {"User-Agent: claude-cli": mode or [modes], …}, default: mode or [modes]}``
    (returned as ``{"tags": {tag: [modes]}, "default": [modes]}``; docs/guardrails.md)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"tags", "default"})
        if unknown or not value:
            ctx.error(path, "a mode chosen by request tag is {tags: {tag: mode, ...}, default: mode}"
                            + (f"; unknown key(s) {', '.join(map(repr, unknown))}" if unknown else ""))
            return INVALID
        tags = value.get("tags") or {}
        if not isinstance(tags, dict):
            ctx.error(f"{path}.tags", f"expected a mapping of request tag → mode(s), got {describe(tags)}")
            return INVALID
        out = {str(tag): v_str_or_list(modes, f"{path}.tags.{tag}", ctx) for tag, modes in tags.items()}
        return {"tags": out, "default": v_str_or_list(value.get("default"), f"{path}.default", ctx)}
    return v_str_or_list(value, path, ctx)


def v_provider_model(value: Any, path: str, ctx: Ctx) -> Any:
    if not isinstance(value, str) or not value:
        ctx.error(path, f"expected 'provider/model' (e.g. 'openai/gpt-4o' or 'fake/demo'), got {describe(value)}")
        return INVALID
    provider, sep, _name = value.partition("/")
    if not sep:
        # the seeds write bare OpenAI model names ("gpt-3.5-turbo"): they mean the openai provider
        return value
    if provider not in PROVIDERS:
        ctx.error(path, f"unknown provider {provider!r} in {value!r}; supported: {', '.join(PROVIDERS)} "
                        "(any OpenAI-compatible server works as 'openai/<name>' with api_base; docs/providers.md)")
        return INVALID
    return value


def v_credentials(value: Any, path: str, ctx: Ctx) -> Any:
    """A credential given as a string (a JSON document, a file path) or inline as a mapping
    (``vertex_credentials``: a service account's JSON written as YAML)."""
    return value if isinstance(value, dict) else v_secret(value, path, ctx)


#: provider settings that take a mapping too
_MAPPING_SETTINGS = {"vertex_credentials": v_credentials}


#: the schemes the store opens (``store/url.py`` is the full parser; this is the config's early check)
DATABASE_SCHEMES = ("sqlite", "sqlite3", "postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


def v_database_url(value: Any, path: str, ctx: Ctx) -> Any:
    """``sqlite:///path.db`` or ``postgresql://…``: a URL may hold a password, so it is never shown."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        ctx.error(path, "expected a database URL: sqlite:///path/to/proxy.db or postgresql://user:password@host/db")
        return INVALID
    scheme, sep, rest = value.strip().partition("://")
    if not sep or scheme.lower() not in DATABASE_SCHEMES:
        ctx.error(path, "expected a database URL starting with sqlite:/// or postgresql:// "
                        "(the value is not shown: it may hold a password)")
        return INVALID
    if scheme.lower().startswith("sqlite") and (not rest.startswith("/") or rest in ("/", "//")
                                                 or ":memory:" in rest or "mode=memory" in rest):
        ctx.error(path, "a SQLite URL names a file: sqlite:///proxy.db (relative to this config file) or "
                        "sqlite:////absolute/path/proxy.db; in-memory databases cannot hold keys")
        return INVALID
    return value.strip()


#: ``budget_duration``: ``<number><unit>``, unit s, m, h, d, w or mo (``store/durations.py`` parses it)
_DURATION = re.compile(r"^([0-9]{1,12})(s|m|h|d|w|mo)$")


def v_budget_duration(value: Any, path: str, ctx: Ctx) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not _DURATION.match(value.strip()) or int(_DURATION.match(value.strip())[1]) == 0:
        ctx.error(path, f"expected a duration like '30s', '1h', '30d' or '1mo' (a number > 0 and a unit: s, m, h, d, "
                        f"w, mo), got {describe(value)}")
        return INVALID
    return value.strip()


def v_budget_status(value: Any, path: str, ctx: Ctx) -> Any:
    """The status of a budget refusal: LiteLLM has answered 400, 429 and 422 over time (docs/spend.md)."""
    if value in (400, 422, 429) and not isinstance(value, bool):
        return int(value)
    ctx.error(path, f"expected 400, 422 or 429, got {describe(value)}")
    return INVALID


#: body fields a deployment's ``extra_body`` may not set: the request's own, and the proxy's
_RESERVED_BODY_FIELDS = frozenset({"model", "messages", "prompt", "input", "stream", "stream_options", "metadata"})


def v_extra_body(value: Any, path: str, ctx: Ctx) -> Any:
    """Body fields sent as they are (``top_k`` for vLLM…): never a credential, never the request's own."""
    checked = v_any_dict(value, path, ctx)
    if checked is INVALID:
        return INVALID
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
    return checked if ok else INVALID


def v_api_key(value: Any, path: str, ctx: Ctx) -> Any:
    """A deployment's ``api_key``; an empty one (``api_key:`` with nothing after it) is no key, as in
    LiteLLM (its ``litellm_params`` are all optional, None = not given): the provider's environment
    variable (``OPENAI_API_KEY``, ``AZURE_API_KEY``…) is read instead. Left out of the section."""
    if value is None:
        return INVALID     # no error: the key is simply absent
    return v_secret(value, path, ctx)


MODEL_PARAMS = Section(
    fields={
        "model": v_provider_model,
        "api_base": v_str,
        "api_key": v_api_key,
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
        # native providers' settings (config/providers.py says which provider reads which)
        **{name: _MAPPING_SETTINGS.get(name) or (v_secret if looks_like_credential(name) else v_str)
           for name in sorted(PROVIDER_SETTING_NAMES)},
        # LiteLLM's parameter policy (docs/providers.md)
        "drop_params": v_bool,
        "additional_drop_params": v_str_or_list,
        # routing (checked, with router_settings, by upstream/routing/validate.py)
        **dict.fromkeys(ROUTING_SETTINGS, v_any),
        # /v1/responses through chat completions: what trioproxy does for every deployment today
        "use_chat_completions_api": v_bool,
        # guardrails every request to this model runs (names of the guardrails section; docs/guardrails.md)
        "guardrails": v_str_or_list,
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
    # rpm / tpm may sit on the entry too, as in LiteLLM (checked by upstream/routing/validate.py)
    fields={"model_name": v_str, "litellm_params": MODEL_PARAMS, "model_info": v_any_dict, "rpm": v_any, "tpm": v_any},
    aliases={"params": "litellm_params"},
    required=("model_name", "litellm_params"),
)

def v_cache_type(value: Any, path: str, ctx: Ctx) -> Any:
    """``local`` or ``redis``; LiteLLM's other cache types are named as such (``litellm_catalog.cache_type_message``)."""
    if value in ("local", "redis", "disk"):
        return value
    ctx.error(path, cache_type_message(str(value)) if isinstance(value, str) else
              f"expected a cache type ('local'), got {describe(value)}")
    return INVALID


#: call types trioproxy's cache stores (LiteLLM's names, sync and async) → the endpoint's call type
CACHED_CALL_TYPES = {
    "completion": "completion", "acompletion": "completion",
    "text_completion": "text_completion", "atext_completion": "text_completion",
    "embedding": "embeddings", "aembedding": "embeddings", "embeddings": "embeddings",
}
#: LiteLLM call types of endpoints trioproxy does not serve: nothing of theirs can be cached, so
#: naming them changes nothing (a config written for LiteLLM keeps its meaning)
UNSERVED_CALL_TYPES = frozenset({
    "transcription", "atranscription", "speech", "aspeech", "image_generation", "aimage_generation",
    "moderation", "amoderation", "rerank", "arerank", "responses", "aresponses",
})


def v_call_types(value: Any, path: str, ctx: Ctx) -> Any:
    """``cache_params.supported_call_types``: LiteLLM's call type names; unknown ones are errors."""
    names = v_str_or_list(value, path, ctx)
    if names is INVALID:
        return INVALID
    unknown = [n for n in names if n not in CACHED_CALL_TYPES and n not in UNSERVED_CALL_TYPES]
    if unknown:
        ctx.error(path, f"unknown call type {unknown[0]!r} (known: {', '.join(sorted(CACHED_CALL_TYPES))}; "
                        f"LiteLLM's {', '.join(sorted(UNSERVED_CALL_TYPES))} are accepted and cache nothing here)")
        return INVALID
    return names


#: LiteLLM's ``Cache(...)`` arguments for its other backends (Redis, S3, GCS, Qdrant, disk)
_OTHER_CACHE_SETTINGS = frozenset("""
redis_startup_nodes startup_nodes sentinel_nodes sentinel_password service_name
ssl_cert_reqs ssl_check_hostname redis_flush_size default_in_memory_ttl default_in_redis_ttl
similarity_threshold redis_semantic_cache_embedding_model redis_semantic_cache_index_name
qdrant_api_base qdrant_api_key qdrant_collection_name qdrant_quantization_config qdrant_semantic_cache_embedding_model
qdrant_semantic_cache_vector_size s3_bucket_name s3_region_name s3_api_version s3_use_ssl s3_verify s3_endpoint_url
s3_aws_access_key_id s3_aws_secret_access_key s3_aws_session_token s3_path gcs_bucket_name gcs_path
gcs_path_service_account gcp_service_account azure_account_url azure_blob_container
""".split())


def _cache_setting(key: str) -> str | None:
    if key not in _OTHER_CACHE_SETTINGS:
        return None
    if key in ("redis_startup_nodes", "startup_nodes"):
        return (f"LiteLLM's {key!r} makes its Redis cache a Redis Cluster client, which trioproxy does not have: "
                "give one server (host, port, password or url)")
    if key in ("sentinel_nodes", "sentinel_password", "service_name"):
        return (f"LiteLLM's {key!r} makes its Redis cache find the server through Redis Sentinel, which trioproxy "
                "does not have: give the server itself (host, port, password or url)")
    return (f"LiteLLM's {key!r} is a setting of its non-local caches ({', '.join(sorted(CACHE_TYPES - {'local'}))}); "
            "trioproxy's caches take type, ttl, namespace, supported_call_types and mode; local: max_size; "
            "disk: disk_cache_dir; redis: host, port, password, username, ssl or url, max_connections")


CACHE_PARAMS = Section(
    fields={
        "type": v_cache_type,
        "ttl": v_num(0.0),
        "max_size": v_int(1),
        "supported_call_types": v_call_types,
        "namespace": v_str,
        # type: redis (config/build.py makes the URL; a server setting with type: local is an error)
        "host": v_str,
        "port": v_int(1),
        "username": v_str,
        "password": v_secret,
        "url": v_secret,
        "ssl": v_bool,
        # LiteLLM's bound on the Redis connection pool: trioproxy's cache client uses one pipelined
        # connection per process (caching/redis_cache.py), within any bound >= 1
        "max_connections": v_int(1),
        # type: disk (caching/disk_cache.py): the directory, LiteLLM's default ./.litellm_cache
        "disk_cache_dir": v_str,
        # LiteLLM's CacheMode: default_off caches only requests that send cache: {"use-cache": true}
        "mode": v_choice("default_on", "default_off"),
    },
    litellm=_cache_setting,
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
        # LiteLLM keys the cache on OpenAI's parameters unless this is true; trioproxy's key always
        # holds every body field sent upstream (caching/response_cache.py), so both values load and
        # true means exactly what it means in LiteLLM
        "enable_caching_on_provider_specific_optional_params": v_bool,
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
        # settings of LiteLLM's built-in guardrail callbacks (policies/guardrails/: checked when built)
        "azure_content_safety_params": v_any_dict,
        "prompt_injection_params": v_any_dict,
        "skip_system_message_in_guardrail": v_bool,
        **{key: v_num(0.0, 1.0) for key in GOOGLE_THRESHOLD_KEYS},
        "public_model_groups": v_str_or_list,
        "drop_params": v_bool,
        "set_verbose": v_bool,
        "json_logs": v_bool,
        # routing (checked, with router_settings, by upstream/routing/validate.py)
        **dict.fromkeys(ROUTING_LITELLM_SETTINGS, v_any),
        # the store (docs/keys.md)
        "store_audit_logs": v_bool,
        # /key/generate's defaults, bounds and who may call it (docs/keys.md; checked field by field
        # by admin/key_generation.py when the proxy is built, and by trioproxy check)
        "default_key_generate_params": v_any_dict,
        "upperbound_key_generate_params": v_any_dict,
        "key_generation_settings": v_any_dict,
        # budgets (docs/spend.md); the rescheduler times are LiteLLM's sweep: accepted, no effect here
        "max_budget": v_num(0.0),
        "budget_duration": v_budget_duration,
        "max_end_user_budget": v_num(0.0),
        "budget_exceeded_status_code": v_budget_status,
        "proxy_budget_rescheduler_min_time": v_num(0.0),
        "proxy_budget_rescheduler_max_time": v_num(0.0),
        # the built-in logging integrations' settings (docs/logging.md)
        **LOGGING_LITELLM_SETTINGS,
    },
    unsupported=(
        "service_callback",
    ),
    no_effect={**NO_EFFECT["litellm_settings"], **LOGGING_NO_EFFECT},
    litellm=lambda key: unsupported_key("litellm_settings", key),
)

PASS_THROUGH_ENTRY = Section(
    fields={
        "path": v_str,
        "target": v_str,
        "headers": v_any_dict,
        "forward_headers": v_bool,
        "auth": v_bool,
        "include_subpath": v_bool,
        "methods": v_str_or_list,
        "default_query_params": v_any_dict,
        "timeout": v_num(0.001),
        "cost_per_request": v_num(0.0),
    },
    required=("path", "target"),
    # LiteLLM's fields for what trioproxy does not do on pass-through routes (ids are for its UI;
    # guardrails would need the body parsed; the client's query is always merged)
    unsupported=("id", "merge_query_params", "is_from_config", "custom_llm_provider"),
)

HTTP_POOL = Section(
    fields={
        "max_connections": v_int(1),
        "max_keepalive_connections": v_int(0),
        "keepalive_expiry": v_num(0.0),
        "connect_timeout": v_num(0.001),
    }
)

CUSTOM_AUTH_SETTINGS = Section(
    fields={
        "mode": v_choice("on", "off", "auto"),
        "timeout": v_num(0.001),   # trioproxy's: a slower custom_auth is a 503
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
        # the store (docs/keys.md): database_url absent → $DATABASE_URL (config/build.py)
        "database_url": v_database_url,
        "database_connection_pool_limit": v_int(1),
        "database_connection_timeout": v_num(0.001),
        "user_api_key_cache_ttl": v_num(0.0),
        # shared state through Redis (docs/deploy.md; read by coordination/settings.py)
        "coordination_redis": v_coordination_redis,
        "coordination_failure_policy": v_choice("closed", "open"),
        "coordination_redis_timeout": v_num(0.001, 10.0),
        # spend records (docs/spend.md); many processes and instances (docs/deploy.md)
        "proxy_batch_write_at": v_num(0.001),
        "allow_requests_on_db_unavailable": v_bool,
        "disable_spend_logs": v_bool,
        "spend_outbox_dir": v_str,
        "spend_default_max_tokens": v_int(0),
        # access (docs/access.md): checked by trioproxy/access when the proxy is built
        "public_routes": v_any,
        "admin_only_routes": v_any,
        "allowed_routes": v_any,
        "allowed_ips": v_any,
        "use_x_forwarded_for": v_bool,
        "trusted_proxy_ranges": v_any,
        # failed authentications per client address (access/auth_failures.py); 0 turns it off
        "auth_rate_limit_max_failures_per_ip": v_int(0),
        "auth_rate_limit_window_seconds": v_num(0.001),
        "pass_through_endpoints": v_list_of(PASS_THROUGH_ENTRY),
        "pass_through_request_timeout": v_num(0.001),
        "enable_jwt_auth": v_bool,
        "litellm_jwtauth": v_any,   # checked field by field by access.JWTAuthSettings
        # custom authentication (docs/access.md "Custom auth"): loaded by proxy.load_custom_auth
        "custom_auth": v_str,
        "custom_auth_settings": CUSTOM_AUTH_SETTINGS,
        # docs/keys.md: client-side tags refused; prompts kept in spend rows; no migration at startup;
        # a custom check of team metadata (admin/team_metadata.py)
        "reject_clientside_metadata_tags": v_bool,
        "reject_metadata_tags": v_bool,
        "store_prompts_in_spend_logs": v_bool,
        "disable_prisma_schema_update": v_bool,
        "custom_team_metadata_validate": v_str,
        "team_metadata_validation_timeout": v_num(0.001),
        "team_metadata_validation_error_message": v_str,
        # custom functions deciding /key/generate and /key/update (admin/custom_key_hooks.py)
        "custom_key_generate": v_str,
        "custom_key_update": v_str,
        "custom_key_generate_timeout": v_num(0.001),
        # alerts: slack (observability/integrations/slack.py)
        **ALERTING_GENERAL_SETTINGS,
    },
    # LiteLLM's name for a per-instance cap on concurrent requests (it answers 429; we answer 503)
    aliases={"global_max_parallel_requests": "max_in_flight_requests"},
    unsupported=(
        "spend_logs_metadata",
        "store_model_in_db",
    ),
    no_effect=NO_EFFECT["general_settings"],
    litellm=lambda key: unsupported_key("general_settings", key),
)


GUARDRAIL_PARAMS = Section(
    fields={
        "guardrail": v_str,
        "mode": v_guardrail_mode,
        "default_on": v_bool,
        "stream_mode": v_choice("pass_through", "buffer"),
    },
    required=("guardrail", "mode"),
    extra="passthrough",
    passthrough_known=GUARDRAIL_PARAMS,
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
        # owned whole by upstream/routing/validate.py (build.py hands it there with model_list)
        "router_settings": v_any_dict,
        "environment_variables": v_any_dict,
        "guardrails": v_list_of(GUARDRAIL_ENTRY),
        # per-integration settings of the logging integrations (``otel: {message_logging: false}``)
        "callback_settings": v_any_dict,
    },
    aliases={"settings": "litellm_settings"},
    # LiteLLM starts without a model_list (its models may come from its database): so does trioproxy,
    # serving no model until one is configured (build.py warns)
    litellm=lambda key: unsupported_key("<top level>", key),
)

GUARDRAIL_MODES = ("pre_call", "during_call", "post_call", "logging_only")

