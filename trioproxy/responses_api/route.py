"""Native ``/v1/responses`` or translation to chat completions: the decision for one deployment.

LiteLLM's names, LiteLLM's meaning where trioproxy has the same providers (its docs:
"Native /v1/responses Passthrough for OpenAI-Compatible Providers"):

* ``litellm_params.use_chat_completions_api: true`` — always translate (LiteLLM's opt-out of the
  native Responses API for ``openai/`` models);
* ``model_info.supported_endpoints`` listing ``/v1/responses`` — the upstream serves the Responses
  API itself: forward the body as is (LiteLLM's opt-in for OpenAI-compatible servers). A list that
  does *not* name it means the opposite: translate (LiteLLM ignores the list for ``openai/``; an
  operator who wrote down the endpoints meant them);
* otherwise ``openai/`` at OpenAI itself (``api.openai.com``, the default ``api_base``) is native;
* every other deployment is translated.

One deliberate difference from LiteLLM: LiteLLM sends ``openai/`` deployments to
``{api_base}/responses`` whatever the ``api_base``. In trioproxy ``openai/`` is *the* provider for
every OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio, a company gateway), and many of
them have no ``/responses`` — LiteLLM's users hit exactly that (BerriAI/litellm#13130, llama.cpp
answering 404). Translation works wherever chat completions works, so it is the default for an
``api_base`` other than OpenAI's; ``supported_endpoints`` opts in, in one line.

Providers that do not speak OpenAI's HTTP API (Anthropic, Bedrock, Gemini, Vertex, Ollama's native
API, Azure's deployment URLs, the built-in ``fake``) are always translated: their adapters take chat
completions bodies. Listing ``/v1/responses`` for them is reported (``warning``), not obeyed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["NATIVE_ENDPOINTS", "OPENAI_API_HOST", "ResponsesRoute", "responses_route"]

OPENAI_API_HOST = "api.openai.com"
#: how ``model_info.supported_endpoints`` may name the Responses API
NATIVE_ENDPOINTS = frozenset({"/v1/responses", "/responses"})


@dataclass(frozen=True, slots=True)
class ResponsesRoute:
    """``native``: forward the Responses body to ``{api_base}/responses``; else translate.

    ``reason`` says which rule decided (for ``trioproxy check`` and the debug log); ``warning`` is a
    setting that was not obeyed, for the startup log.
    """

    native: bool
    reason: str
    warning: str | None = None


def _is_openai(api_base: str | None) -> bool:
    if not api_base:
        return True                       # the openai provider's default api_base
    host = (urlsplit(api_base).hostname or "").lower()
    return host == OPENAI_API_HOST or host.endswith("." + OPENAI_API_HOST)


def responses_route(
    *,
    provider: str,
    api_base: str | None,
    openai_compatible: bool,
    litellm_params: Mapping[str, Any] | None = None,
    model_info: Mapping[str, Any] | None = None,
) -> ResponsesRoute:
    """Decide for one deployment (see the module docstring for the rules, first match wins).

    ``openai_compatible``: whether the provider's adapter speaks OpenAI's HTTP API (``openai/`` and
    the OpenAI-compatible presets such as ``hosted_vllm/``, ``groq/``); only those can be native.
    """
    params = litellm_params or {}
    endpoints = (model_info or {}).get("supported_endpoints")
    listed = isinstance(endpoints, list | tuple)
    lists_responses = listed and any(e in NATIVE_ENDPOINTS for e in endpoints)
    if not openai_compatible:
        warning = None
        if lists_responses:
            warning = (f"model_info.supported_endpoints lists /v1/responses, but the {provider!r} provider "
                       "does not speak OpenAI's HTTP API: /v1/responses requests are translated to chat "
                       "completions")
        return ResponsesRoute(False, f"the {provider!r} provider takes chat completions", warning)
    if params.get("use_chat_completions_api") is True:
        return ResponsesRoute(False, "litellm_params.use_chat_completions_api is true")
    if lists_responses:
        return ResponsesRoute(True, "model_info.supported_endpoints lists /v1/responses")
    if listed:
        return ResponsesRoute(False, "model_info.supported_endpoints does not list /v1/responses")
    if provider == "openai" and _is_openai(api_base):
        return ResponsesRoute(True, "OpenAI's own API serves /v1/responses")
    return ResponsesRoute(False, "an OpenAI-compatible server may not serve /v1/responses "
                                 "(opt in with model_info.supported_endpoints)")
