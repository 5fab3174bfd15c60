"""The config keys of LiteLLM's logging integrations that trioproxy builds (docs/logging.md).

``litellm_settings`` keys (validated here, read by ``observability/integrations``), the
``general_settings`` alerting keys, and :func:`logging_secrets`: the integrations' credentials
(from the config and from the environment variables they read) for the app's secret scrubber, so
that no log line or error ever shows them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .validators import (
    INVALID,
    Ctx,
    Section,
    describe,
    v_any_dict,
    v_bool,
    v_list_of,
    v_num,
    v_secret,
    v_str,
    v_str_or_list,
)

__all__ = ["ALERTING_GENERAL_SETTINGS", "BUILTIN_LOGGING_INTEGRATIONS", "LOGGING_LITELLM_SETTINGS", "LOGGING_NO_EFFECT", "SLACK_ALERT_TYPES",
           "logging_secrets"]

def _off_only(what: str) -> Any:
    """A LiteLLM switch whose ``false`` is what trioproxy does: ``false`` is accepted silently,
    anything else warns that it is ignored."""
    def check(value: Any, path: str, ctx: Ctx) -> Any:
        if value is False or (isinstance(value, str) and value.lower() == "false"):
            return False
        ctx.warn(path, f"{what}: not done by trioproxy; ignored")
        return value
    return check


#: off-only switches of LiteLLM's S3 and SQS settings
_OFF_ONLY = {
    "s3_strip_base64_files": _off_only("base64 files stripped from the payload"),
}

S3_CALLBACK_PARAMS = Section(
    fields={
        "s3_bucket_name": v_str,
        "s3_region_name": v_str,
        "s3_path": v_str,
        "s3_endpoint_url": v_str,
        "s3_aws_access_key_id": v_secret,
        "s3_aws_secret_access_key": v_secret,
        "s3_aws_session_token": v_secret,
        # <team alias>/ and <key alias>/ before the date (observability/integrations/s3.py)
        "s3_use_team_prefix": v_bool,
        "s3_use_key_prefix": v_bool,
        **_OFF_ONLY,
    },
    # LiteLLM's other S3 settings (batching, IAM role names): accepted with a warning
    unsupported=("s3_flush_interval", "s3_batch_size", "s3_api_version",
                 "s3_use_ssl", "s3_verify", "s3_aws_role_name", "s3_aws_session_name", "s3_aws_profile_name",
                 "s3_aws_web_identity_token", "s3_aws_sts_endpoint", "s3_config",
                 "s3_use_virtual_hosted_style", "s3_partition_granularity", "s3_batch_file_upload"),
    unsupported_note="a LiteLLM S3 setting trioproxy's s3 integration does not have; ignored",
)


AWS_SQS_CALLBACK_PARAMS = Section(
    fields={
        "sqs_queue_url": v_str,
        "sqs_region_name": v_str,
        "sqs_aws_access_key_id": v_secret,
        "sqs_aws_secret_access_key": v_secret,
        "sqs_aws_session_token": v_secret,
        "sqs_strip_base64_files": _off_only("base64 files stripped from the message"),
        "sqs_aws_use_application_level_encryption": _off_only("application-level encryption of the message"),
        # the seeds' SQS example carries two S3 settings along
        "s3_use_team_prefix": _off_only("a team-alias prefix (an S3 setting)"),
        "s3_use_key_prefix": _off_only("a key-alias prefix (an S3 setting)"),
    },
    unsupported=("sqs_api_version", "sqs_use_ssl", "sqs_verify", "sqs_endpoint_url", "sqs_aws_session_name",
                 "sqs_aws_profile_name", "sqs_aws_role_name", "sqs_aws_web_identity_token", "sqs_aws_sts_endpoint",
                 "sqs_app_encryption_key_b64", "sqs_app_encryption_aad", "sqs_config", "sqs_batch_size",
                 "sqs_flush_interval"),
    unsupported_note="a LiteLLM SQS setting trioproxy's aws_sqs integration does not have; ignored",
)


def _generic_log_format(value: Any, path: str, ctx: Ctx) -> Any:
    if value in ("json_array", "ndjson", "single"):
        return value
    ctx.error(path, f"expected 'json_array', 'ndjson' or 'single', got {describe(value)}")
    return None


GENERIC_API_PARAMS = Section(
    fields={"endpoint": v_str, "headers": v_any_dict, "event_types": v_str_or_list, "log_format": _generic_log_format},
)

#: ``litellm_settings`` keys of the built-in integrations
#: LiteLLM's per-team logging credentials (``StandardCallbackDynamicParams``) → the variable each
#: built-in integration reads (``observability/team_logging.py``)
TEAM_DYNAMIC_PARAMS = {
    "langfuse_public_key": "LANGFUSE_PUBLIC_KEY", "langfuse_secret": "LANGFUSE_SECRET_KEY",
    "langfuse_secret_key": "LANGFUSE_SECRET_KEY", "langfuse_host": "LANGFUSE_HOST",
    "langsmith_api_key": "LANGSMITH_API_KEY", "langsmith_project": "LANGSMITH_PROJECT",
    "langsmith_base_url": "LANGSMITH_BASE_URL", "gcs_bucket_name": "GCS_BUCKET_NAME",
    "gcs_path_service_account": "GCS_PATH_SERVICE_ACCOUNT", "arize_api_key": "ARIZE_API_KEY",
    "arize_space_key": "ARIZE_SPACE_KEY",
}
_TEAM_SECRETS = ("langfuse_public_key", "langfuse_secret", "langfuse_secret_key", "langsmith_api_key",
                 "arize_api_key")


def _team_entry(value: Any, path: str, ctx: Ctx) -> Any:
    if not isinstance(value, dict):
        ctx.error(path, f"expected a mapping with team_id and success_callback / failure_callback, got "
                        f"{describe(value)}")
        return INVALID
    if not isinstance(value.get("team_id"), str) or not value["team_id"]:
        ctx.error(f"{path}.team_id", "is required (the team whose requests these callbacks log)")
        return INVALID
    out = dict(value)
    for key in ("success_callback", "failure_callback"):
        out[key] = v_str_or_list(value.get(key), f"{path}.{key}", ctx)
    for key, item in value.items():
        if key in ("team_id", "success_callback", "failure_callback"):
            continue
        if key in TEAM_DYNAMIC_PARAMS:
            if not isinstance(item, str):
                ctx.error(f"{path}.{key}", f"expected a string, got {describe(item)}")
            continue
        ctx.warn(f"{path}.{key}", "a LiteLLM per-team setting trioproxy's integrations do not read; ignored "
                                  f"(they read {', '.join(TEAM_DYNAMIC_PARAMS)}; docs/logging.md)")
    return out


LOGGING_LITELLM_SETTINGS = {
    # per-team logging callbacks (observability/team_logging.py)
    "default_team_settings": v_list_of(_team_entry),
    "s3_callback_params": S3_CALLBACK_PARAMS,
    "generic_api_params": GENERIC_API_PARAMS,
    "aws_sqs_callback_params": AWS_SQS_CALLBACK_PARAMS,
    "langfuse_default_tags": v_str_or_list,
    "redact_user_api_key_info": v_bool,
    "turn_off_message_logging": v_bool,
}

#: accepted: what they switch off trioproxy does not do (``trioproxy check`` notes them)
LOGGING_NO_EFFECT = {
    "allow_dynamic_callback_disabling": "a request can never switch trioproxy's logging callbacks off",
    "global_disable_no_log_param": "trioproxy has no per-request no-log parameter: every request is logged",
}

#: LiteLLM's logging integrations trioproxy builds in (``observability/integrations``), by callback name
BUILTIN_LOGGING_INTEGRATIONS = ("langfuse", "otel", "datadog", "s3", "s3_v2", "generic_api", "langsmith", "gcs_bucket",
                                "openmeter", "athina", "aws_sqs", "arize", "arize_phoenix", "langtrace",
                                "lunary", "gcs_pubsub", "deepeval", "galileo")

#: the alert types trioproxy's slack alerting sends (observability/integrations/slack.py)
SLACK_ALERT_TYPES = ("llm_exceptions", "llm_too_slow", "budget_alerts")


def _alert_types(value: Any, path: str, ctx: Ctx) -> Any:
    types = v_str_or_list(value, path, ctx)
    if isinstance(types, list):
        missing = [t for t in types if t not in SLACK_ALERT_TYPES]
        if missing:
            ctx.warn(path, f"{', '.join(map(repr, missing))}: LiteLLM alert types trioproxy does not send "
                           f"(it sends {', '.join(SLACK_ALERT_TYPES)}; docs/logging.md)")
    return types


def _alerting_args(value: Any, path: str, ctx: Ctx) -> Any:
    ctx.warn(path, "settings of LiteLLM's daily reports, outage and budget-alert intervals, which trioproxy's "
                   "slack alerting does not have: ignored (docs/logging.md)")
    return v_any_dict(value, path, ctx)


#: ``general_settings`` alerting keys (slack alerts: observability/integrations/slack.py)
ALERTING_GENERAL_SETTINGS = {
    "alerting": v_str_or_list,
    "alerting_threshold": v_num(0.0),
    "alert_types": _alert_types,
    "alert_to_webhook_url": v_any_dict,
    "alerting_args": _alerting_args,
}

#: environment variables holding an integration's credential
_SECRET_ENV = ("LANGFUSE_SECRET_KEY", "LANGFUSE_PUBLIC_KEY", "DD_API_KEY", "LANGSMITH_API_KEY", "SLACK_WEBHOOK_URL",
               "OPENMETER_API_KEY", "ATHINA_API_KEY",
               "GENERIC_LOGGER_HEADERS", "OTEL_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS", "AWS_SECRET_ACCESS_KEY",
               "AWS_SESSION_TOKEN", "ARIZE_API_KEY", "ARIZE_SPACE_KEY", "ARIZE_SPACE_ID", "PHOENIX_API_KEY",
               "LANGTRACE_API_KEY", "LUNARY_PRIVATE_KEY", "LUNARY_PUBLIC_KEY", "LUNARY_APP_ID",
               "CONFIDENT_API_KEY", "GALILEO_PASSWORD")


def logging_secrets(litellm_settings: Mapping[str, Any], general_settings: Mapping[str, Any]) -> list[str]:
    """The integrations' credentials: for the scrubber (only those configured or set)."""
    out = [os.environ[name] for name in _SECRET_ENV if len(os.environ.get(name) or "") >= 8]
    for name in ("GENERIC_LOGGER_HEADERS", "OTEL_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        for item in (os.environ.get(name) or "").split(","):
            value = item.partition("=")[2].strip()
            if len(value) >= 8:
                out.append(value)
    params = litellm_settings.get("s3_callback_params") or {}
    out += [str(params[k]) for k in ("s3_aws_secret_access_key", "s3_aws_session_token") if params.get(k)]
    sqs = litellm_settings.get("aws_sqs_callback_params") or {}
    out += [str(sqs[k]) for k in ("sqs_aws_secret_access_key", "sqs_aws_session_token") if sqs.get(k)]
    for entry in litellm_settings.get("default_team_settings") or ():
        if isinstance(entry, Mapping):
            out += [str(entry[k]) for k in _TEAM_SECRETS if isinstance(entry.get(k), str) and len(entry[k]) >= 8]
    generic = litellm_settings.get("generic_api_params") or {}
    out += [str(v) for v in (generic.get("headers") or {}).values() if len(str(v)) >= 8]
    hooks = general_settings.get("alert_to_webhook_url") or {}
    out += [str(v) for v in hooks.values()] if isinstance(hooks, Mapping) else []
    return out
