"""What a deployment's ``litellm_params`` may hold, and what of it may travel upstream.

LiteLLM's ``litellm_params`` mixes three things in one mapping: settings of the deployment
(``api_base``, ``aws_secret_access_key``, ``tags``…), defaults for the request body
(``temperature``, ``max_tokens``…) and, because LiteLLM passes unknown keys on, anything else. A
proxy that forwarded "anything else" would send a credential from the config in a request body
(``aws_secret_access_key`` to an OpenAI-compatible server, say). So every key is classified here,
by explicit lists, once, when the config loads (``schema.py`` validates with them, ``build.py`` applies them):

* :data:`IMPLEMENTED` — settings trioproxy uses (validated in ``config.MODEL_PARAMS``; the native
  providers' settings are kept per deployment as ``provider_params``, see ``providers.py``, and the
  routing ones are checked by ``upstream/routing/validate.py``);
* :data:`OPENAI_REQUEST_FIELDS` — real OpenAI request parameters: the only keys that become body
  defaults (the client's own value wins);
* :data:`LITELLM_NOT_IMPLEMENTED` — LiteLLM deployment settings trioproxy does not implement (Entra
  ID and role-assumption flows, credentials by name, budgets per deployment…): they load with a
  warning and are never sent anywhere; those that look like credentials
  (:func:`looks_like_credential`) are also handed to the secret scrubber;
* anything else is a config error with the closest known name suggested. Body fields the lists do
  not know (``top_k`` for vLLM, say) go under ``extra_body`` explicitly — and even there a
  credential-looking name is refused.

The README's configuration reference prints these lists; keep the two in step.
"""

from __future__ import annotations

import re

from .providers import POLICY_SETTINGS, PROVIDER_SETTING_NAMES

__all__ = [
    "IMPLEMENTED",
    "LITELLM_NOT_IMPLEMENTED",
    "OPENAI_REQUEST_FIELDS",
    "ROUTING_SETTINGS",
    "looks_like_credential",
]

#: a deployment's routing settings, validated by ``upstream/routing/validate.py`` (docs/routing.md)
ROUTING_SETTINGS = ("tags", "rpm", "tpm", "order", "cooldown_time", "region_name", "max_budget", "budget_duration",
                    "tag_regex")

#: settings trioproxy implements (the validators are in ``config.MODEL_PARAMS``)
IMPLEMENTED = (
    "model", "api_base", "api_key", "organization", "timeout", "stream_timeout", "max_retries",
    "weight", "input_cost_per_token", "output_cost_per_token", "extra_headers", "extra_body",
    "max_stream_duration",
    # native providers' settings (``providers.py``: which provider reads which) and the parameter policy
    *sorted(PROVIDER_SETTING_NAMES), *sorted(POLICY_SETTINGS),
    # routing (``upstream/routing``, docs/routing.md)
    *ROUTING_SETTINGS,
    # /v1/responses: translated to chat completions (core/responses_wire.py), which this asks for
    "use_chat_completions_api",
    # guardrails every request to the model runs (docs/guardrails.md)
    "guardrails",
    # the built-in fake provider's knobs
    "mock_response", "latency", "chunk_latency", "fail_rate", "fail_status",
)

#: OpenAI request parameters of /chat/completions, /completions and /embeddings (OpenAI's API
#: reference). ``model``, the prompt (``messages``/``prompt``/``input``), ``stream`` and
#: ``stream_options`` are the request's own; ``metadata`` is the proxy's (never sent upstream).
#: ``prompt_cache_key`` is left out on purpose: it is a per-request value, and no name that looks
#: like a credential (:func:`looks_like_credential`) is ever a deployment default.
OPENAI_REQUEST_FIELDS = frozenset({
    # chat completions
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "modalities", "n", "parallel_tool_calls", "prediction",
    "presence_penalty", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "temperature", "tool_choice",
    "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
    # text completions
    "best_of", "echo", "suffix",
    # embeddings
    "dimensions", "encoding_format",
})

#: LiteLLM's deployment settings (``GenericLiteLLMParams``/``CredentialLiteLLMParams`` and the
#: proxy docs) that trioproxy does not implement yet: accepted with a warning, never sent upstream
LITELLM_NOT_IMPLEMENTED = frozenset({
    # Azure (Entra ID flows other than a token given as is)
    "azure_ad_token_provider", "azure_username", "azure_password", "azure_scope", "tenant_id",
    "client_id", "client_secret",
    # AWS (role assumption, SageMaker)
    "aws_session_name", "aws_role_name", "aws_web_identity_token", "aws_sts_endpoint", "aws_external_id",
    # IBM watsonx, regions
    "watsonx_region_name",
    # credentials by name, provider override
    "custom_llm_provider", "configurable_clientside_auth_params",
    # routing, limits, budgets
    "max_parallel_requests", "num_retries",
    # pricing and model facts
    "input_cost_per_second", "output_cost_per_second", "model_info", "supports_system_message",
    # request shaping done by LiteLLM's SDK
    "allowed_openai_params", "merge_reasoning_content_in_choices",
    "use_in_pass_through", "use_litellm_proxy", "max_file_size_mb", "mock_timeout", "litellm_trace_id",
    "keepalive_seconds",
})

_CREDENTIAL = re.compile(
    r"secret|password|passwd|credential|private_key|"
    r"(?:^|[_-])(?:api[_-]?key|key|keys|token|auth|authorization|cookie|pwd)$",
    re.IGNORECASE,
)


def looks_like_credential(name: str) -> bool:
    """``aws_secret_access_key``, ``azure_ad_token``, ``vertex_credentials``, ``my_api_key``…

    (``max_tokens`` does not: "tokens" is a count, not a token.)
    """
    return bool(_CREDENTIAL.search(name))
