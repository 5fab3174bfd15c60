"""LiteLLM's budget routing through a real ``trioproxy run`` in front of the fake upstream: once a
provider's spend reaches ``provider_budget_config``'s limit its deployments are left out (another
provider takes the requests; with none, 429 "crossed budget"), a deployment's own
``max_budget`` / ``budget_duration`` likewise, and a request tag's ``tag_budget_config``."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from support.fake_upstream import FakeUpstream

USER = [{"role": "user", "content": "hello"}]


def deployment(fake: FakeUpstream, name: str, model: str, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": model, "api_base": fake.base_url,
                                                   "api_key": UPSTREAM_KEY, **params}}


def start(start_proxy: Any, models: list[dict[str, Any]], router: dict[str, Any] | None = None,
          litellm: dict[str, Any] | None = None) -> openai.OpenAI:
    config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
              "litellm_settings": {"num_retries": 0, **(litellm or {})}, "router_settings": router or {}}
    proxy = start_proxy(config)
    return openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)


def sent_models(fake: FakeUpstream) -> list[str]:
    return [r.json["model"] for r in fake.requests if isinstance(r.json, dict)]


def test_a_provider_over_budget_is_routed_around_then_refused(start_proxy, fake_upstream):
    """LiteLLM's docs config (provider_budget_routing.md): openai's budget 1e-12 USD a day. The
    first request spends more than that; the next ones go to the other provider of the group."""
    models = [deployment(fake_upstream, "chat", "openai/gpt-4o", order=1),
              deployment(fake_upstream, "chat", "hosted_vllm/gpt-4o-mini", order=2),
              deployment(fake_upstream, "only-openai", "openai/gpt-4o")]
    client = start(start_proxy, models, {"provider_budget_config": {
        "openai": {"budget_limit": 0.000000000001, "time_period": "1d"}}})
    client.chat.completions.create(model="chat", messages=USER)
    client.chat.completions.create(model="chat", messages=USER)
    client.chat.completions.create(model="chat", messages=USER)
    assert sent_models(fake_upstream) == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="only-openai", messages=USER)
    assert "crossed budget" in info.value.body["message"] and "'openai'" in info.value.body["message"]
    assert info.value.response.headers["retry-after"]
    assert len(fake_upstream.requests) == 3


def test_a_deployment_budget(start_proxy, fake_upstream):
    models = [deployment(fake_upstream, "gpt-4o", "openai/gpt-4o", max_budget=0.000000000001,
                         budget_duration="1d", order=1),
              deployment(fake_upstream, "gpt-4o", "openai/gpt-4o-mini", max_budget=100, budget_duration="30d",
                         order=2)]
    client = start(start_proxy, models)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", messages=USER)
    assert sent_models(fake_upstream) == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]


def test_a_tag_budget(start_proxy, fake_upstream):
    client = start(start_proxy, [deployment(fake_upstream, "gpt-4o", "openai/gpt-4o")],
                   litellm={"tag_budget_config": {"product:chat-bot": {"max_budget": 0.000000000001,
                                                                      "budget_duration": "1d"}}})
    tagged = {"metadata": {"tags": ["product:chat-bot"]}}
    client.chat.completions.create(model="gpt-4o", messages=USER, extra_body=tagged)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=USER, extra_body=tagged)
    assert "tag 'product:chat-bot'" in info.value.body["message"]
    client.chat.completions.create(model="gpt-4o", messages=USER)          # untagged: not this budget
    assert len(fake_upstream.requests) == 2
