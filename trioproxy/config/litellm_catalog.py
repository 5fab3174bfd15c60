"""What LiteLLM's configs can name that trioproxy does not have, and what the error says about it.

A LiteLLM config brought to trioproxy must either load with the meaning its author intended, or be
refused with a message that says *what* LiteLLM means by the name and that trioproxy does not have
it — never "not a dotted path" for a built-in guardrail, never "did you mean 'callbacks'?" for
``fallbacks``. This module is that knowledge, in one place: LiteLLM's keys by section (what each
means, and whether another issue of trioproxy brings it), its built-in guardrails, logging
integrations and cache backends. ``schema.py`` asks it about keys the schema does not know;
``hooks/assembly.py`` and ``observability/callbacks.py`` about names that are not dotted paths.

Three outcomes for a LiteLLM key trioproxy's schema does not have:

* **no effect here** (:data:`NO_EFFECT`): the key turns off or tunes something trioproxy does not
  do at all (``telemetry``, ``litellm_license``): accepted, with a note in ``trioproxy check``;
  the config means what its author meant;
* **not supported** (:func:`unsupported_key`): a LiteLLM feature trioproxy does not have; the
  config is refused with the feature named, and the issue that brings it when there is one
  (``issue #12``). A warning would leave an operator believing in an IP allowlist or an alert
  that does not exist;
* anything else: an unknown key, with the closest known one suggested (a typo).

Keys other work already accepts with a warning (the ``unsupported`` tuples of ``schema.py``) keep
that behaviour: those sections' fields and lists are looked at first.

The lists follow LiteLLM's reference (``docs/proxy/config_settings.md``), its guardrail and
logging registries, and the corpus of real configs (``tests/data/litellm_corpus``);
``docs/litellm_compat.md`` is the user's version of this page.
"""

from __future__ import annotations

from .logging_keys import BUILTIN_LOGGING_INTEGRATIONS

__all__ = [
    "ALWAYS_ON_CALLBACKS",
    "CACHE_TYPES",
    "GUARDRAIL_PARAMS",
    "NO_EFFECT",
    "builtin_callback_message",
    "builtin_guardrail_message",
    "cache_type_message",
    "unsupported_key",
]

DOCS = "docs/litellm_compat.md"
CUSTOM_GUARDRAIL_DOCS = "docs/guardrails.md#custom-guardrails"
LOGGING_DOCS = "docs/logging.md"

# ---------------------------------------------------------------------------------------------
# Keys, by section: what LiteLLM means by them (short), and the issue that brings each, if any
# ---------------------------------------------------------------------------------------------

_GENERAL: dict[str, str] = {
    # issue #10: virtual keys, teams, users, the database
    "database_url": "the database of virtual keys, teams and spend",
    "store_model_in_db": "models stored in and loaded from the database",
    "supported_db_objects": "which objects are loaded from the database",
    "database_connection_pool_limit": "the database connection pool's size",
    "database_connection_pool_timeout": "the database connection pool's timeout",
    "database_connection_timeout": "the database connection timeout",
    "default_team_disabled": "no personal keys (keys without a team)",
    "disable_adding_master_key_hash_to_db": "the master key's hash kept out of the database",
    "disable_error_logs": "errors kept out of the database",
    "disable_master_key_return": "the master key never shown in the UI",
    "service_account_settings": "settings of service-account keys",
    "default_key_generate_params": "defaults of generated keys",
    "upperbound_key_generate_params": "upper bounds of generated keys",
    # issue #11: budgets, rate limits, spend, alerts
    "alerting": "alerts (Slack, webhooks) on failures, slow calls and budgets",
    "alerting_args": "alert settings",
    "alerting_threshold": "the slow-call alert threshold",
    "alert_types": "which alerts are sent",
    "alert_to_webhook_url": "a webhook per alert type",
    "alert_type_config": "per-alert-type settings",
    "spend_report_frequency": "periodic spend reports",
    "disable_spend_logs": "no spend log rows",
    "disable_spend_updates": "no spend updates of keys, users and teams",
    "disable_reset_budget": "no scheduled budget resets",
    "proxy_budget_rescheduler_min_time": "how often budgets are checked for reset",
    "proxy_budget_rescheduler_max_time": "how often budgets are checked for reset",
    "maximum_spend_logs_retention_period": "how long spend logs are kept",
    "maximum_spend_logs_retention_interval": "how often old spend logs are purged",
    "maximum_spend_logs_cleanup_cron": "when old spend logs are purged",
    "max_parallel_requests": "a cap on parallel requests per deployment",
    "token_rate_limit_type": "which tokens rate limits count",
    "disable_retry_on_max_parallel_request_limit_error": "no retry after a parallel-request limit error",
    # issue #12: access control
    "allowed_ips": "an IP allowlist for the whole proxy",
    "pass_through_endpoints": "pass-through endpoints to provider APIs",
    "use_client_credentials_pass_through_routes": "client credentials on pass-through routes",
    "use_x_forwarded_for": "the client address taken from X-Forwarded-For",
    "enforce_rbac": "role-based access control on every route",
    "role_permissions": "per-role route permissions",
    "ui_access_mode": "who may use the admin UI",
    # issue #13: many processes and instances
    "use_redis_transaction_buffer": "database writes buffered in Redis",
    "user_api_key_cache_ttl": "how long virtual keys are cached in memory",
    "allow_requests_on_db_unavailable": "requests served while the database is down",
    "use_shared_health_check": "health check results shared through Redis",
    "control_plane_url": "cross-instance state through a control plane",
    # issue #17: secret managers
    "use_azure_key_vault": "keys read from Azure Key Vault (today: key_management_system)",
    "use_google_kms": "keys read from Google KMS (today: key_management_system)",
    # not planned
    "custom_sso": "custom single sign-on for the UI",
    "custom_ui_sso_sign_in_handler": "a custom SSO sign-in handler for the UI",
    "auto_redirect_ui_login_to_sso": "the UI login redirected to SSO",
    "enable_oauth2_auth": "OAuth2 authentication",
    "enable_oauth2_proxy_auth": "OAuth2 proxy authentication",
    "oauth2_config_mappings": "OAuth2 settings",
    "allow_user_auth": "LiteLLM's deprecated user authentication",
    "litellm_key_header_name": "keys accepted in a custom header",
    "user_header_name": "the user taken from a request header",
    "user_header_mappings": "users mapped from request headers",
    "background_health_checks": "models called in the background to check their health",
    "health_check_interval": "how often background health checks run",
    "health_check_details": "details in health check answers",
    "health_check_concurrency": "how many health checks run at once",
    "health_check_staleness_threshold": "when health check results go stale",
    "health_check_ignore_transient_errors": "transient errors ignored by health checks",
    "enable_health_check_routing": "routing around deployments that failed their health check",
    "completion_model": "one model for every completion, whatever the request says",
    "embedding_model": "one model for every embedding, whatever the request says",
    "image_generation_model": "one model for every image generation",
    "moderation_model": "the default moderation model",
    "infer_model_from_keys": "the model inferred from the provider key",
    "forward_client_headers_to_llm_api": "the client's x- headers forwarded to the provider",
    "forward_llm_provider_auth_headers": "the client's provider credentials forwarded",
    "forward_openai_org_id": "the client's OpenAI organization forwarded",
    "allow_client_side_credentials": "provider credentials sent by clients",
    "always_include_stream_usage": "usage in every stream, whether the client asked or not",
    "disable_responses_id_security": "stored Responses API ids readable across users",
    "proxy_batch_polling_interval": "how often batches are polled (the batches API)",
    "search_tools": "web search providers",
    "enable_mcp_registry": "the MCP server registry",
    "mcp_client_side_auth_header_name": "the MCP client credentials header",
    "mcp_internal_ip_ranges": "internal networks for MCP servers",
    "mcp_required_fields": "required fields of MCP server submissions",
    "mcp_trusted_proxy_ranges": "trusted proxies for MCP",
    "require_end_user_mcp_access_defined": "explicit MCP access for end users",
    "user_mcp_management_mode": "what non-admins see of MCP servers",
}

_LITELLM: dict[str, str] = {
    # routing (issue #15; the fallback and cooldown keys are implemented: schema.ROUTING_LITELLM_SETTINGS)
    "num_retries_per_request": "retries per request",
    "model_group_alias": "other names for a model",
    # issue #10
    "default_team_params": "defaults of new teams",
    "enable_key_alias_format_validation": "a format check of key aliases",
    "default_internal_user_params": "defaults of new internal users",
    # issue #11
    "max_end_user_budget": "a budget per end user",
    "disable_end_user_cost_tracking": "no spend tracked per end user",
    "cost_discount_config": "discounts applied to costs",
    "cost_margin_config": "margins added to costs",
    # issue #13
    "enable_redis_auth_cache": "virtual keys cached in Redis",
    # logging integrations' settings
    "langfuse_default_tags": "tags of the Langfuse integration",
    "s3_callback_params": "settings of the S3 logging integration",
    "aws_sqs_callback_params": "settings of the SQS logging integration",
    "gcs_bucket_name": "the bucket of the GCS logging integration",
    "gcs_path": "the path of the GCS logging integration",
    "gcs_path_service_account": "the service account of the GCS logging integration",
    "datadog_params": "settings of the Datadog integration",
    "generic_api_params": "settings of the generic API logging integration",
    "langsmith_batch_size": "the batch size of the LangSmith integration",
    "log_raw_request_response": "raw provider requests logged by LiteLLM's integrations",
    "global_disable_no_log_param": "the no-log request parameter ignored",
    "allow_dynamic_callback_disabling": "callbacks switched off per request",
    "service_callbacks": "health of Redis and PostgreSQL sent to monitoring integrations",
    "redact_user_api_key_info": "key details left out of LiteLLM's integration logs",
    "turn_off_message_logging": "messages and answers left out of what callbacks receive",
    "disable_end_user_cost_tracking_prometheus_only": "no end-user label on Prometheus metrics",
    # built-in guardrails' settings
    "guardrails": "LiteLLM's pre-v1 guardrail list (today: the top-level guardrails section)",
    # not planned
    "enable_json_schema_validation": "answers validated against the requested JSON schema",
    "modify_params": "request parameters rewritten for providers that need it",
    "force_ipv4": "IPv4 only for provider calls",
    "route_all_chat_openai_to_responses": "chat completions sent to OpenAI's Responses API",
    "use_chat_completions_url_for_anthropic_messages": "Anthropic's messages API through chat completions",
    "mcp_aliases": "aliases of MCP servers",
    "disable_add_transform_inline_image_block": "an image URL rewrite for Fireworks AI",
    "disable_copilot_system_to_assistant": "a message rewrite for GitHub Copilot",
    "forward_traceparent_to_llm_provider": "the W3C traceparent header forwarded to providers",
    "include_cost_in_streaming_usage": "the cost inside a stream's usage chunk",
    "return_response_headers": "the provider's response headers returned to clients",
    "code_interpreter_interception_params": "settings of LiteLLM's code interpreter interception",
    "websearch_interception_params": "settings of LiteLLM's web search interception",
    "enable_preview_features": "LiteLLM's preview features",
}

_TOP_LEVEL: dict[str, str] = {
    "mcp_servers": "MCP servers offered to clients as tools (LiteLLM's MCP gateway)",
    "mcp_builtin_servers": "LiteLLM's built-in MCP servers",
    "search_tools": "web search providers (LiteLLM's search API)",
    "sandbox_tools": "code-execution sandboxes",
    "policies": "guardrail policies: named sets of guardrails",
    "policy_attachments": "where guardrail policies apply",
    "finetune_settings": "provider credentials for the fine-tuning API",
    "files_settings": "provider credentials for the files API",
    "vector_store_registry": "vector stores for retrieval",
    "prompts": "managed prompt templates",
    "callback_settings": "per-integration settings of logging callbacks",
    "assistant_settings": "the assistants API's settings",
}

#: key → open issue that brings it. Empty: the issues that brought the enterprise features (#10–#13),
#: compatibility (#15) and secret managers (#17) are built; a LiteLLM key still missing after them is
#: not supported (the message says so), never "coming".
_PLANNED: dict[str, int] = {}

#: what the kind of a key is, for the message: logging integrations' and guardrails' settings say
#: what to write instead
_LOGGING_SETTINGS = frozenset(
    "langfuse_default_tags s3_callback_params aws_sqs_callback_params gcs_bucket_name gcs_path gcs_path_service_account "
    "datadog_params generic_api_params langsmith_batch_size log_raw_request_response global_disable_no_log_param "
    "allow_dynamic_callback_disabling service_callbacks redact_user_api_key_info turn_off_message_logging "
    "disable_end_user_cost_tracking_prometheus_only callback_settings".split())
_GUARDRAIL_SETTINGS = frozenset(
    "guardrails".split())

#: section → key → why it has no effect in trioproxy (accepted; ``trioproxy check`` notes it)
NO_EFFECT: dict[str, dict[str, str]] = {
    "general_settings": {
        "litellm_license": "trioproxy has no licence key: what it has is on without one",
        "enforce_rbac": "trioproxy always authorizes every route by the caller's role (docs/access.md)",
        "use_redis_transaction_buffer": "spend goes through each process's durable outbox and is written exactly "
                                        "once without it (docs/spend.md)",
        "enable_redis_auth_cache": "with Redis configured, each process caches keys and every change is pushed "
                                   "to all of them through Redis (docs/deploy.md)",
        "custom_auth_run_common_checks": "trioproxy always checks what a custom_auth function returns (models, "
                                         "routes, limits, budgets: docs/access.md)",
    },
    "litellm_settings": {
        "enable_post_custom_auth_checks": "trioproxy always checks what a custom_auth function returns (models, "
                                          "routes, limits, budgets: docs/access.md)",
        "enable_redis_auth_cache": "with Redis configured, each process caches keys and every change is pushed "
                                   "to all of them through Redis (docs/deploy.md)",
        "telemetry": "trioproxy sends no telemetry",
        "disable_hf_tokenizer_download": "trioproxy never downloads tokenizers",
    },
}

#: callback names that turn on what trioproxy always does: LiteLLM's ``prometheus`` serves metrics at
#: ``/metrics``, which trioproxy serves whatever the config (``observability/metrics.py``); noted at
#: load, skipped by the handler and callback loaders
ALWAYS_ON_CALLBACKS: dict[str, str] = {
    "prometheus": "trioproxy always serves Prometheus metrics at /metrics (its own metric names, docs/logging.md; "
                  "a key is needed unless general_settings.metrics_public)",
}

_SECTIONS: dict[str, dict[str, str]] = {
    "general_settings": _GENERAL,
    "litellm_settings": _LITELLM,
    "<top level>": _TOP_LEVEL,
}


def unsupported_key(section: str, key: str) -> str | None:
    """The error for a LiteLLM key of ``section`` trioproxy does not support, or None if LiteLLM
    has no such key there (then it is a plain unknown key: a typo, most likely)."""
    meaning = _SECTIONS.get(section, {}).get(key)
    if meaning is None and section == "litellm_settings":
        # LiteLLM reads general_settings keys written under litellm_settings too, and vice versa
        meaning = _GENERAL.get(key)
    if meaning is None:
        return None
    issue = _PLANNED.get(key)
    if key in _LOGGING_SETTINGS:
        instead = (f"not supported by trioproxy's built-in logging integrations "
                   f"({', '.join(BUILTIN_LOGGING_INTEGRATIONS)}): write a CustomLogger or a logging function "
                   f"({LOGGING_DOCS})")
    elif key in _GUARDRAIL_SETTINGS:
        instead = ("trioproxy does not implement this setting of LiteLLM's guardrails: configure them in the "
                   f"top-level guardrails section, or write a custom guardrail ({CUSTOM_GUARDRAIL_DOCS})")
    elif issue is not None:
        instead = f"not in trioproxy yet (issue #{issue}); remove it to start without it"
    else:
        instead = f"not supported by trioproxy; remove it to start without it ({DOCS})"
    return f"LiteLLM's {key!r} ({meaning}): {instead}"


# ---------------------------------------------------------------------------------------------
# Built-in guardrails, logging integrations and cache backends of LiteLLM
# ---------------------------------------------------------------------------------------------

#: LiteLLM's guardrail integrations (``SupportedGuardrailIntegrations``) and older names
_GUARDRAILS = frozenset("""
agent_365 aim airia akto alice aporia azure/prompt_shield azure/text_moderations bedrock bedrock/guardrail
block_code_execution cato_networks cisco_ai_defense compresr conduct crowdstrike_aidr custom_code decision_model
deepkeep dynamoai enkryptai generic_guardrail_api grayswan guardrails_ai headroom hiddenlayer ibm_guardrails
javelin lakera lakera_v2 lakera_prompt_injection lasso litellm_content_filter llm_as_a_judge llm_shield_proxy
mcp_end_user_permission mcp_jwt_signer mcp_security microsoft_purview model_armor noma noma_v2 onyx
openai_moderation ovalix pangea panw_prisma_airs pillar presidio prompt_security promptguard qostodian_nexus
qualifire reco repelloai rubrik semantic_guard singulr straiker tool_permission typesafe vigil_guard wingback
xecguard zscaler_ai_guard detect_prompt_injection azure_content_safety openai_moderations secret_detection
""".split())

#: LiteLLM's logging integrations by callback name (``_custom_logger_compatible_callbacks_literal``
#: and the success/failure callback names of its docs)
_LOGGERS = frozenset("""
agentops anthropic_cache_control_hook argilla arize arize_phoenix athina aws_sqs azure_sentinel azure_storage
bitbucket braintrust clickhouse cloudzero compression_interception datadog datadog_llm_observability
datadog_metrics deepeval dotprompt dynamic_rate_limiter dynamic_rate_limiter_v3 dynamodb focus galileo gcs_bucket
gcs_pubsub generic generic_api gitlab greenscale helicone humanloop lago langfuse langfuse_otel langsmith
langtrace levo litellm_agent literalai logfire lunary mavvrik mlflow newrelic openmeter opik otel pagerduty
pointfive posthog prometheus promptlayer resend_email s3 s3_v2 sendgrid_email sentry signoz slack smtp_email
supabase ternary traceloop vantage vector_store_pre_call_hook weave_otel wandb zerobus
websearch_interception code_interpreter_interception batch_redis_requests
""".split())

#: LiteLLM's cache types (``LiteLLMCacheType``, and ``disk`` of older versions)
CACHE_TYPES = frozenset({"local", "redis", "redis-semantic", "valkey-semantic", "qdrant-semantic", "s3", "gcs",
                         "azure-blob", "disk"})


def builtin_guardrail_message(name: str) -> str | None:
    """Why ``name`` (not a dotted path) cannot be loaded, when it is one of LiteLLM's built-ins."""
    if name in _GUARDRAILS or name.split("/")[0] in {"bedrock", "azure", "lakera", "aporia", "presidio"}:
        return (f"{name!r} is one of LiteLLM's built-in guardrails; trioproxy has no built-in {name!r}: write a "
                f"custom guardrail that calls the service ({CUSTOM_GUARDRAIL_DOCS})")
    return None


def builtin_callback_message(name: str, *, functions: bool = False) -> str | None:
    """Why the callback ``name`` (not a dotted path) cannot be loaded, when LiteLLM has it built in."""
    if name in _GUARDRAILS:
        return (f"{name!r} is one of LiteLLM's built-in guardrails; trioproxy has no built-in {name!r}: write a "
                f"custom guardrail ({CUSTOM_GUARDRAIL_DOCS}), or a callback handler")
    if name in _LOGGERS:
        what = "a logging function" if functions else "a CustomLogger"
        return (f"{name!r} is one of LiteLLM's logging integrations; trioproxy has no built-in {name!r} (it "
                f"has {', '.join(BUILTIN_LOGGING_INTEGRATIONS)} and slack alerting): write {what} that sends "
                f"to it ({LOGGING_DOCS})")
    return None


def cache_type_message(cache_type: str) -> str:
    """The error for a ``cache_params.type`` other than ``local``."""
    if cache_type in ("redis", "redis-semantic", "valkey-semantic"):
        return (f"LiteLLM's {cache_type!r} cache is not in trioproxy (no semantic cache); use type: redis for "
                "a cache shared by every worker and instance, or type: local for one in this process")
    if cache_type in CACHE_TYPES:
        return (f"LiteLLM's {cache_type!r} cache is not supported by trioproxy; use type: local for an "
                "in-process cache (one per worker process, empty after a restart), disk for one kept in a "
                "directory, or redis for one shared by every instance")
    return (f"unknown cache type {cache_type!r}; trioproxy has 'local', 'disk' and 'redis' "
            f"(LiteLLM's: {', '.join(sorted(CACHE_TYPES))})")


#: LiteLLM's guardrail settings (``litellm_params`` of a guardrail, its ``LitellmParams``): passed to
#: the guardrail's class as they are, never "did you mean" another key
GUARDRAIL_PARAMS = frozenset("""
action additional_provider_specific_params advisory_system_message anonymize_input api_base api_endpoint api_id
api_key api_version application application_id assertions asset_id async_mode auth_token aws_access_key_id
aws_bedrock_runtime_endpoint aws_external_id aws_profile_name aws_region_name aws_role_name aws_secret_access_key
aws_session_name aws_session_token aws_sts_endpoint aws_web_identity_token base_url block_failures block_on_error
block_on_violation blocked_languages blocked_words blocked_words_file breakdown categories category_thresholds
checks client_id client_secret confidence_threshold config content_filter_threshold content_moderation_check
context_source credentials custom_code decision_model default_action deployment_name detect_secrets_config
detector_id detectors dev_info disable_exception_on_block experimental_use_latest_role_message_only extra_headers
fail_on_error guard_name guardrailIdentifier guardrailVersion guardrail_timeout include_scanners location mask
mask_request_content mask_response_content metadata mock_redacted_text model monitor_mode num_retries
on_disallowed_action on_flagged on_flagged_action on_sensitive_data on_violation only_scan_new_messages
optional_params outputScope output_parse_pii pangea_input_recipe pangea_output_recipe pattern_redaction_format
patterns payload pii_entities_config policy_id policy_name presidio_ad_hoc_recognizers presidio_analyzer_api_base
presidio_anonymizer_api_base presidio_entities_deny_list presidio_filter_scope presidio_language presidio_run_on
presidio_score_thresholds project_id prompt_injections rules run_in_parallel severity_threshold
skip_system_message_in_guardrail skip_tool_message_in_guardrail template_id tenant_id timeout use_v2 verify_ssl
version violation_message_template
""".split())
