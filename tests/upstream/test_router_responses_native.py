"""Which ``/v1/responses`` requests may be forwarded natively: ``Router.responses_native`` (rule 1 of
docs/responses_api.md "Native or translated") and the route each deployment gets at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trioproxy.config import parse_config
from trioproxy.upstream.router import Router

NATIVE = {"supported_endpoints": ["/v1/responses"]}


def model(name: str, litellm_model: str, *, native: bool = False, **params: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"model_name": name, "litellm_params": {"model": litellm_model, **params}}
    if native:
        entry["model_info"] = NATIVE
    return entry


def router(models: list[dict[str, Any]], **router_settings: Any) -> Router:
    raw: dict[str, Any] = {"model_list": models}
    if router_settings:
        raw["router_settings"] = router_settings
    return Router.from_config(parse_config(raw, "c.yaml", Path.cwd()), {})


LOCAL = "http://127.0.0.1:9/v1"


def test_each_deployment_gets_its_route_at_load() -> None:
    config = parse_config({"model_list": [
        model("openai", "openai/gpt-4o"),
        model("opted-out", "openai/gpt-4o", use_chat_completions_api=True),
        model("vllm", "openai/qwen", native=True, api_base=LOCAL),
        model("vllm-plain", "openai/qwen", api_base=LOCAL),
        model("preset", "hosted_vllm/qwen", native=True, api_base=LOCAL),
        model("fake", "fake/echo"),
    ]}, "c.yaml", Path.cwd())
    routes = {d.model_name: d.responses_native for d in config.deployments}
    assert routes == {"openai": True, "opted-out": False, "vllm": True, "vllm-plain": False, "preset": False,
                      "fake": False}
    assert any("supported_endpoints" in w and "hosted_vllm" in w for w in config.warnings)


def test_native_only_when_every_deployment_of_the_group_is() -> None:
    r = router([model("both", "openai/a", native=True, api_base=LOCAL), model("both", "openai/b", native=True,
                                                                              api_base=LOCAL),
                model("mixed", "openai/a", native=True, api_base=LOCAL), model("mixed", "openai/b", api_base=LOCAL)])
    assert r.responses_native("both") is True
    assert r.responses_native("mixed") is False
    assert r.responses_native("unknown") is False


def test_aliases_and_wildcards_lead_to_the_deployments_they_match() -> None:
    r = router([model("n", "openai/a", native=True, api_base=LOCAL), model("*", "*")],
               model_group_alias={"alias": "n"})
    assert r.responses_native("alias") is True
    assert r.responses_native("openai/gpt-4.1") is True          # "*" at OpenAI itself
    assert r.responses_native("anthropic/claude-sonnet-4") is False   # "*" matched another provider


def test_every_group_a_fallback_may_reach_must_be_native_too() -> None:
    models = [model("n", "openai/a", native=True, api_base=LOCAL), model("n2", "openai/b", native=True, api_base=LOCAL),
              model("chat", "openai/c", api_base=LOCAL)]
    assert router(models, fallbacks=[{"n": ["n2"]}]).responses_native("n") is True
    assert router(models, fallbacks=[{"n": ["n2"]}, {"n2": ["chat"]}]).responses_native("n") is False  # transitive
    assert router(models, context_window_fallbacks=[{"n": ["chat"]}]).responses_native("n") is False
    assert router(models, default_fallbacks=["chat"]).responses_native("n") is False
    assert router(models).responses_native("n", request_fallbacks=["chat"]) is False
    assert router(models, fallbacks=[{"n": ["chat"]}]).responses_native("n", fallbacks_disabled=True) is True
    assert router(models).responses_native("n", request_fallbacks=["nowhere"]) is True   # skipped by the plan too
