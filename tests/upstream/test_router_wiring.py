"""``upstream/router.py``: the routing plan driven over the providers (derived deployments for
wildcards, a bounded cache of them, the body sent, refreshed secrets)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from trioproxy.config import parse_config
from trioproxy.errors import BadRequestError
from trioproxy.upstream import router as router_module
from trioproxy.upstream.base import UpstreamResponse
from trioproxy.upstream.router import Router


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    async def send(self, deployment: Any, endpoint: str, body: dict[str, Any]) -> UpstreamResponse:
        self.calls.append((deployment, body))
        return UpstreamResponse(200, {}, b"{}")


def make(models: list[dict[str, Any]], **kwargs: Any) -> tuple[Router, dict[str, Recorder]]:
    config = parse_config({"model_list": models}, "c.yaml", Path.cwd())
    providers = {"openai": Recorder(), "anthropic": Recorder()}
    return Router.from_config(config, providers, **kwargs), providers


async def test_a_wildcard_match_is_one_derived_deployment_per_model(autojump_clock) -> None:
    router, providers = make([{"model_name": "*", "litellm_params": {"model": "*", "temperature": 0.5}}])
    for model in ("anthropic/claude-x", "anthropic/claude-x", "gpt-4o"):
        attempt, _ = await router.send(model, "chat/completions", {"messages": []})
        attempt.succeeded()
    (first, body), (second, _) = providers["anthropic"].calls
    assert first is second and first.provider == "anthropic" and first.upstream_model == "claude-x"
    assert body == {"temperature": 0.5, "messages": [], "model": "claude-x"}
    gpt, _ = providers["openai"].calls[0]
    assert gpt.api_base == "https://api.openai.com/v1"     # model "*" has no base: the provider's default


async def test_the_derived_cache_is_bounded(autojump_clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router_module, "DERIVED_CACHE_SIZE", 2)
    router, _ = make([{"model_name": "openai/*", "litellm_params": {"model": "openai/*"}}])
    for n in range(5):
        attempt, _ = await router.send(f"openai/m{n}", "chat/completions", {})
        attempt.succeeded()
    assert len(router._derived) == 2


async def test_a_provider_the_proxy_does_not_serve_is_a_400(autojump_clock) -> None:
    router, _ = make([{"model_name": "*", "litellm_params": {"model": "*"}}])
    with pytest.raises(BadRequestError) as caught:
        await router.send("sagemaker/endpoint", "chat/completions", {})
    assert caught.value.code == "unsupported_provider"


async def test_current_replaces_the_deployment_called(autojump_clock) -> None:
    router, providers = make([{"model_name": "g", "litellm_params": {"model": "openai/x", "api_key": "sk-old-0000"}}],
                             current=lambda d: dataclasses.replace(d, api_key="sk-new-1111"))
    attempt, _ = await router.send("g", "chat/completions", {})
    attempt.succeeded()
    assert providers["openai"].calls[0][0].api_key == "sk-new-1111"
