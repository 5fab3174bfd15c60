"""Which request fields reach a provider: LiteLLM's ``drop_params`` behaviour, in one place.

Rules (``docs/providers.md`` states them for users):

* Deployment settings (``api_version``, ``aws_region_name``, ``vertex_credentials``…) and routing
  knobs never go into a request body, whatever put them in the body (today's config passes unknown
  ``litellm_params`` through as body defaults).
* An OpenAI parameter the provider cannot take is dropped when ``drop_params`` is true (the
  request's own ``drop_params``, else the deployment's, else ``litellm_settings.drop_params``) or
  listed in ``additional_drop_params`` (the deployment's, and the request's own: LiteLLM reads both);
  otherwise the request fails with a 400 that names the
  parameter and the provider — never a silent change of meaning, never a provider's own
  "extra inputs are not permitted" error.
* Fields that are neither OpenAI parameters nor the adapter's declared native extras (``top_k``…)
  are treated the same way for native APIs (they reject unknown arguments). OpenAI-compatible
  servers receive them unchanged, as LiteLLM sends them.
* ``None`` values are dropped (``"stop": null`` means "not set" to OpenAI clients).
* The built-in OpenAI-compatible providers (``openai/``, ``fake/``) forward every field, as LiteLLM
  does for them, except the policy's own fields and what ``additional_drop_params`` lists
  (:func:`apply_drop_list`): an operator who drops ``user`` for a server that rejects it must not
  find it sent anyway because the server happens to be an ``openai/`` one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import BadRequestError

__all__ = [
    "CHAT_PARAMS",
    "COMPLETION_PARAMS",
    "EMBEDDING_PARAMS",
    "NEVER_FORWARDED",
    "POLICY_FIELDS",
    "apply_drop_list",
    "apply_param_policy",
    "request_drop_list",
]

#: every parameter of OpenAI's chat completions API (what "an OpenAI parameter" means here)
CHAT_PARAMS = frozenset({
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop", "max_tokens",
    "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
    "top_logprobs", "user", "response_format", "seed", "tools", "tool_choice", "parallel_tool_calls",
    "functions", "function_call", "reasoning_effort", "modalities", "audio", "prediction", "service_tier",
    "store", "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
})
COMPLETION_PARAMS = frozenset({
    "model", "prompt", "stream", "stream_options", "temperature", "top_p", "n", "stop", "max_tokens",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "user", "seed", "echo", "best_of",
    "suffix",
})
EMBEDDING_PARAMS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})

#: LiteLLM deployment settings and routing knobs: never part of a request body
NEVER_FORWARDED = frozenset({
    "api_base", "api_key", "api_version", "azure_ad_token", "azure_ad_token_provider", "base_model",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name",
    "aws_profile_name", "aws_bedrock_runtime_endpoint", "aws_role_name", "aws_session_name",
    "aws_web_identity_token", "aws_sts_endpoint", "vertex_project", "vertex_location",
    "vertex_credentials", "vertex_ai_project", "vertex_ai_location", "custom_llm_provider",
    "drop_params", "additional_drop_params", "timeout", "stream_timeout", "max_retries", "num_retries",
    "weight", "rpm", "tpm", "organization", "input_cost_per_token", "output_cost_per_token",
    "extra_headers", "model_info", "mock_response", "litellm_credential_name", "use_in_pass_through",
    "region_name", "guardrails", "metadata", "cache", "litellm_metadata", "proxy_server_request",
    "api_type", "order", "tags",
})


#: the parameter policy's own request fields: read by the proxy, never sent to any provider
POLICY_FIELDS = frozenset({"drop_params", "additional_drop_params"})


def request_drop_list(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The request's own ``additional_drop_params`` (a name or a list of names; anything else: none)."""
    listed = body.get("additional_drop_params")
    if isinstance(listed, str):
        return (listed,)
    if isinstance(listed, list | tuple):
        return tuple(name for name in listed if isinstance(name, str))
    return ()


def apply_drop_list(body: Mapping[str, Any], additional_drop_params: Iterable[str] = ()) -> dict[str, Any]:
    """The body an OpenAI-compatible built-in provider receives: without the policy's fields and
    without what the deployment's or the request's ``additional_drop_params`` list (``model`` stays)."""
    dropped = (set(additional_drop_params) | set(request_drop_list(body)) | POLICY_FIELDS) - {"model"}
    return {name: value for name, value in body.items() if name not in dropped}


def _label(provider: str, endpoint: str) -> str:
    return f"{provider} ({endpoint})" if endpoint != "chat/completions" else provider


def apply_param_policy(body: Mapping[str, Any], *, provider: str, endpoint: str, known: frozenset[str],
                       supported: frozenset[str], native: frozenset[str], pass_unknown: bool,
                       drop_params: bool, additional_drop_params: Iterable[str] = (),
                       keep: Iterable[str] = ()) -> dict[str, Any]:
    """The body a provider may receive, or a 400 naming what it cannot take.

    ``known``: the OpenAI parameters of ``endpoint``; ``supported``: those the provider takes;
    ``native``: the provider-specific extras it forwards; ``keep``: fields always kept (``model``).
    A request's own ``drop_params`` overrides ``drop_params``.
    """
    request_drop = body.get("drop_params")
    if isinstance(request_drop, bool):
        drop_params = request_drop
    always_drop = set(additional_drop_params) | set(request_drop_list(body))
    kept = set(keep) | {"model"}
    out: dict[str, Any] = {}
    refused: list[str] = []
    for name, value in body.items():
        if name in NEVER_FORWARDED or name in always_drop:
            continue
        if value is None and name not in kept:
            continue
        if name in kept or name in supported or name in native:
            out[name] = value
        elif name in ("stream", "stream_options") or (name == "n" and value == 1):
            continue    # the proxy's own streaming fields, and a default value: never a reason to fail
        elif name in known or not pass_unknown:
            if not drop_params:
                refused.append(name)
        else:
            out[name] = value
    if refused:
        names = ", ".join(repr(n) for n in refused)
        raise BadRequestError(
            f"{_label(provider, endpoint)} does not support the parameter(s) {names}. To drop "
            f"unsupported parameters instead, set `drop_params: true` (litellm_settings, the model's "
            f"litellm_params, or the request), or list them in `additional_drop_params`.",
            param=refused[0], code="unsupported_params")
    return out
