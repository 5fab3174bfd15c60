"""LiteLLM's pre-call checks through a real ``trioproxy run`` in front of the fake upstream, driven
with the official ``openai`` client: a prompt too long for a deployment's ``max_input_tokens``
never reaches it (400 ``context_length_exceeded``, or the ``context_window_fallbacks`` answer), and
``enforce_model_rate_limits`` answers 429 at a deployment's ``rpm`` whatever the strategy."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from support.fake_upstream import FakeUpstream

LONG = [{"role": "user", "content": "word " * 200}]
SHORT = [{"role": "user", "content": "hi"}]


def deployment(fake: FakeUpstream, name: str, upstream: str, info: dict[str, Any] | None = None,
               **params: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"model_name": name, "litellm_params": {
        "model": f"openai/{upstream}", "api_base": fake.base_url, "api_key": UPSTREAM_KEY, **params}}
    if info:
        entry["model_info"] = info
    return entry


def start(start_proxy: Any, models: list[dict[str, Any]], router: dict[str, Any]) -> openai.OpenAI:
    config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
              "litellm_settings": {"num_retries": 0}, "router_settings": router}
    proxy = start_proxy(config)
    return openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)


def sent_models(fake: FakeUpstream) -> list[str]:
    return [r.json["model"] for r in fake.requests if isinstance(r.json, dict)]


def test_a_prompt_over_max_input_tokens_is_refused_before_the_upstream(start_proxy, fake_upstream):
    """LiteLLM's docs config (reliability.md): one deployment, ``model_info.max_input_tokens: 10``."""
    client = start(start_proxy, [deployment(fake_upstream, "gpt-4o", "small", {"max_input_tokens": 10})],
                   {"enable_pre_call_checks": True})
    assert client.chat.completions.create(model="gpt-4o", messages=SHORT).choices[0].message.content
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o", messages=LONG)
    error = info.value.body
    assert error["code"] == "context_length_exceeded" and "max_input_tokens=10" in error["message"]
    assert sent_models(fake_upstream) == ["small"]                 # the long prompt reached nobody


def test_context_window_fallbacks_take_the_prompt_no_deployment_fits(start_proxy, fake_upstream):
    client = start(start_proxy, [deployment(fake_upstream, "gpt-4o", "small", {"max_input_tokens": 10}),
                                 deployment(fake_upstream, "gpt-4o-long", "long", {"max_input_tokens": 100_000})],
                   {"enable_pre_call_checks": True, "context_window_fallbacks": [{"gpt-4o": ["gpt-4o-long"]}]})
    client.chat.completions.create(model="gpt-4o", messages=LONG)
    client.chat.completions.create(model="gpt-4o", messages=SHORT)
    assert sent_models(fake_upstream) == ["long", "small"]


def test_the_price_tables_window_is_used_when_model_info_has_none(start_proxy, fake_upstream):
    """``gpt-4`` (8,192 tokens in the table) next to an explicit large window: a 10k-token prompt
    goes to the deployment it fits, as LiteLLM does with its model cost map."""
    client = start(start_proxy, [deployment(fake_upstream, "chat", "gpt-4"),
                                 deployment(fake_upstream, "chat", "big", {"max_input_tokens": 1_000_000})],
                   {"enable_pre_call_checks": True})
    huge = [{"role": "user", "content": "word " * 10_000}]
    for _ in range(3):
        client.chat.completions.create(model="chat", messages=huge)
    assert sent_models(fake_upstream) == ["big"] * 3


def test_enforce_model_rate_limits_answers_429_at_the_deployments_rpm(start_proxy, fake_upstream):
    """LiteLLM's docs config (load_balancing.md): ``rpm: 2`` on the entry, simple-shuffle.

    rpm counts calendar minutes: a round that straddles a minute boundary proves nothing, so it is
    run again on a second group with its own deployment (two rounds cannot both straddle one)."""
    models = []
    for i in range(2):
        model = deployment(fake_upstream, f"gpt-4-{i}", f"limited-{i}")
        model["rpm"] = 2
        models.append(model)
    client = start(start_proxy, models, {"optional_pre_call_checks": ["enforce_model_rate_limits"]})
    for i in range(2):
        minute = int(time.time() // 60)
        outcomes: list[Any] = []
        for _ in range(3):
            try:
                client.chat.completions.create(model=f"gpt-4-{i}", messages=SHORT)
                outcomes.append("ok")
            except openai.RateLimitError as exc:
                outcomes.append(exc)
        if int(time.time() // 60) == minute:
            break
    assert outcomes[:2] == ["ok", "ok"] and isinstance(outcomes[2], openai.RateLimitError)
    assert outcomes[2].response.headers.get("retry-after")
    assert "rpm" in outcomes[2].body["message"]
    assert sent_models(fake_upstream)[-2:] == [f"limited-{i}"] * 2


def test_a_customers_allowed_model_region_keeps_its_requests_in_the_region(start_proxy, fake_upstream):
    """LiteLLM's region-based routing (reliability.md): ``region_name: eu`` on a deployment, a customer
    made with ``allowed_model_region: eu``; its requests go to the EU deployment only, others to any."""
    models = [deployment(fake_upstream, "gpt-3.5-turbo", "eu-model", region_name="eu"),
              deployment(fake_upstream, "gpt-3.5-turbo", "us-model", region_name="us")]
    config = {"model_list": models, "router_settings": {"enable_pre_call_checks": True},
              "general_settings": {"master_key": MASTER_KEY, "database_url": "sqlite:///proxy.db"},
              "litellm_settings": {"num_retries": 0}}
    proxy = start_proxy(config)
    made = httpx.post(f"{proxy.base_url}/customer/new", json={"user_id": "acme-eu", "allowed_model_region": "eu"},
                      headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30)
    assert made.status_code == 200, made.text
    client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    for _ in range(6):
        client.chat.completions.create(model="gpt-3.5-turbo", messages=SHORT, user="acme-eu")
    assert sent_models(fake_upstream) == ["eu-model"] * 6
    for _ in range(20):   # anyone else: either deployment (simple-shuffle)
        client.chat.completions.create(model="gpt-3.5-turbo", messages=SHORT, user="someone-else")
    assert set(sent_models(fake_upstream)[6:]) == {"eu-model", "us-model"}


def test_tag_regex_routes_by_user_agent(start_proxy, fake_upstream):
    """LiteLLM's docs config (tag_routing.md): Claude Code's User-Agent to its own deployment."""
    models = [deployment(fake_upstream, "claude-sonnet", "code-model", tag_regex=["^User-Agent: claude-code\\/"]),
              deployment(fake_upstream, "claude-sonnet", "regular-model", tags=["default"])]
    config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
              "router_settings": {"enable_tag_filtering": True, "tag_filtering_match_any": True}}
    proxy = start_proxy(config)
    code = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0,
                         default_headers={"User-Agent": "claude-code/1.0.43 (external, cli)"})
    other = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)
    for client in (code, other, code):
        client.chat.completions.create(model="claude-sonnet", messages=SHORT)
    assert sent_models(fake_upstream) == ["code-model", "regular-model", "code-model"]
