"""``responses_route``: one test per row of the decision table (first match wins)."""

from __future__ import annotations

from typing import Any

from trioproxy.responses_api import responses_route

OPENAI_BASE = "https://api.openai.com/v1"
VLLM_BASE = "http://gpu-box:8000/v1"


def route(provider: str = "openai", api_base: str | None = OPENAI_BASE, openai_compatible: bool = True,
          litellm_params: dict[str, Any] | None = None, model_info: dict[str, Any] | None = None):
    return responses_route(provider=provider, api_base=api_base, openai_compatible=openai_compatible,
                           litellm_params=litellm_params, model_info=model_info)


def test_a_provider_with_its_own_api_is_translated_whatever_the_model_info_says() -> None:
    decision = route("anthropic", None, openai_compatible=False)
    assert not decision.native and decision.warning is None and "'anthropic'" in decision.reason
    decision = route("fake", None, openai_compatible=False,
                     model_info={"supported_endpoints": ["/v1/chat/completions", "/v1/responses"]})
    assert not decision.native
    assert decision.warning is not None and "/v1/responses" in decision.warning


def test_use_chat_completions_api_forces_translation_even_at_openai() -> None:
    decision = route(litellm_params={"use_chat_completions_api": True},
                     model_info={"supported_endpoints": ["/v1/responses"]})
    assert not decision.native and "use_chat_completions_api" in decision.reason
    assert route(litellm_params={"use_chat_completions_api": False}).native


def test_supported_endpoints_listing_responses_opts_in() -> None:
    for endpoint in ("/v1/responses", "/responses"):
        decision = route("hosted_vllm", VLLM_BASE, model_info={"supported_endpoints": ["/v1/chat/completions", endpoint]})
        assert decision.native and "supported_endpoints" in decision.reason


def test_supported_endpoints_without_responses_opts_out() -> None:
    decision = route(model_info={"supported_endpoints": ["/v1/chat/completions"]})
    assert not decision.native and "does not list" in decision.reason


def test_openai_itself_is_native() -> None:
    assert route().native
    assert route(api_base=None).native                          # the provider's default api_base
    assert route(api_base="https://eu.api.openai.com/v1").native
    assert not route(api_base="https://api.openai.com.evil.example/v1").native


def test_other_openai_compatible_servers_are_translated() -> None:
    decision = route(api_base=VLLM_BASE)
    assert not decision.native and "supported_endpoints" in decision.reason
    assert not route("groq", "https://api.groq.com/openai/v1").native
    assert not route(model_info={"supported_endpoints": "not a list"}, api_base=VLLM_BASE).native
