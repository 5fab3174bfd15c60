"""LiteLLM's ``StandardLoggingPayload``, built from what trioproxy's logging sink hands a callback.

LiteLLM's integrations (Datadog, generic API, S3, GCS…) send its ``StandardLoggingPayload``
(``litellm/types/utils.py``); trioproxy's ``kwargs["standard_logging_object"]`` is its own flat record
(docs/logging.md). The integrations built in here send LiteLLM's shape, so that what arrives at a
collector is what a LiteLLM deployment sends there: dashboards and queries keep working.

Secrets: nothing here reads a key. The caller appears as trioproxy's masked key alias and its
SHA-256 hash (``user_api_key_hash``, as LiteLLM); ``api_base`` is already masked; the sink scrubbed
the record, the parameters and the metadata. ``messages`` and ``response`` are the user's content
(``message_logging=False`` / ``turn_off_message_logging`` replace them, as LiteLLM does).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "logging_id", "standard_logging_payload"]

#: what LiteLLM writes in place of messages and answers when message logging is off
REDACTED = "redacted-by-litellm"

#: trioproxy call type → LiteLLM's (its proxy calls the async functions)
_CALL_TYPES = {"completion": "acompletion", "text_completion": "atext_completion", "embeddings": "aembedding"}


def _jsonable(response: Any) -> Any:
    if response is None or isinstance(response, dict | list | str):
        return response
    dump = getattr(response, "model_dump", None)
    return dump() if callable(dump) else str(response)


def _timestamp(value: Any, fallback: float) -> float:
    if isinstance(value, _dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return fallback


def standard_logging_payload(kwargs: Mapping[str, Any], response: Any, *, message_logging: bool = True,
                             redact_user_api_key_info: bool = False) -> dict[str, Any]:
    """LiteLLM's StandardLoggingPayload for a success or failure event."""
    record: Mapping[str, Any] = kwargs.get("standard_logging_object") or {}
    litellm_params = kwargs.get("litellm_params") or {}
    request_metadata = litellm_params.get("metadata") or {}
    start = _timestamp(record.get("start_time"), _timestamp(kwargs.get("start_time"), 0.0))
    end = _timestamp(record.get("end_time"), _timestamp(kwargs.get("end_time"), start))
    timings = record.get("timings") or {}
    ttft = timings.get("time_to_first_token")
    failed = record.get("status") == "failure"
    metadata: dict[str, Any] = {
        "user_api_key_hash": record.get("key_hash"),
        "user_api_key_alias": record.get("key_alias"),
        "user_api_key_team_id": record.get("team_id"),
        "user_api_key_user_id": record.get("user_id"),
        "user_api_key_org_id": None,
        "user_api_key_team_alias": record.get("team_alias"),
        "user_api_key_end_user_id": record.get("user"),
        "spend_logs_metadata": request_metadata.get("spend_logs_metadata"),
        "requester_ip_address": record.get("requester_ip_address"),
        "requester_metadata": {k: v for k, v in (record.get("metadata") or {}).items()},
    }
    if redact_user_api_key_info:   # LiteLLM: "removes any field with user_api_key_* from metadata"
        metadata = {k: v for k, v in metadata.items() if not k.startswith("user_api_key")}
    error_information = None
    if failed:
        error_information = {
            "error_code": str(record.get("status_code")) if record.get("status_code") is not None else None,
            "error_class": record.get("error_class"),
            "llm_provider": record.get("provider"),
            "traceback": kwargs.get("traceback_exception") or "",
            "error_message": record.get("error_message") or "",
        }
    return {
        "id": record.get("id") or kwargs.get("litellm_call_id"),
        "trace_id": record.get("id") or kwargs.get("litellm_call_id"),
        "call_type": _CALL_TYPES.get(str(record.get("call_type") or kwargs.get("call_type")),
                                     record.get("call_type") or kwargs.get("call_type")),
        "stream": record.get("stream"),
        "response_cost": record.get("response_cost") or 0.0,
        "response_cost_failure_debug_info": None,
        "status": "failure" if failed else "success",
        "custom_llm_provider": record.get("provider"),
        "total_tokens": record.get("total_tokens") or 0,
        "prompt_tokens": record.get("prompt_tokens") or 0,
        "completion_tokens": record.get("completion_tokens") or 0,
        "startTime": start,
        "endTime": end,
        "completionStartTime": start + ttft if ttft is not None else end,
        "response_time": end - start,
        "model_map_information": {"model_map_key": record.get("upstream_model") or record.get("model"),
                                  "model_map_value": None},
        "model": record.get("upstream_model") or kwargs.get("model") or record.get("model"),
        "model_id": record.get("deployment"),
        "model_group": record.get("model_group") or record.get("model"),
        "api_base": record.get("api_base") or "",
        "metadata": metadata,
        "cache_hit": record.get("cache_hit"),
        "cache_key": record.get("cache_key"),
        "saved_cache_cost": 0.0,
        "request_tags": list(record.get("tags") or []),
        "end_user": record.get("user"),
        "requester_ip_address": record.get("requester_ip_address"),
        "messages": kwargs.get("messages") if message_logging else REDACTED,
        "response": (None if failed else _jsonable(response)) if message_logging else REDACTED,
        "error_str": record.get("error_message") if failed else None,
        "error_information": error_information,
        "model_parameters": dict(kwargs.get("optional_params") or {}),
        "hidden_params": {
            "model_id": record.get("deployment"),
            "cache_key": record.get("cache_key"),
            "api_base": record.get("api_base"),
            "response_cost": record.get("response_cost"),
            "additional_headers": None,
            "litellm_overhead_time_ms": None,
        },
        "guardrail_information": None,
    }


def logging_id(payload: Mapping[str, Any]) -> str:
    """LiteLLM's ``get_logging_id``: ``time-<HH-MM-SS-microseconds>_<id>`` (S3, GCS object names)."""
    start = _dt.datetime.fromtimestamp(payload["startTime"], _dt.UTC)
    return f"time-{start.strftime('%H-%M-%S-%f')}_{payload['id']}"
