"""``guardrail: generic_guardrail_api`` through a real ``trioproxy run`` and the official openai
client, against a strict fake of LiteLLM's Generic Guardrail API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, upstream_model
from support.fake_guardrails import FakeGenericGuardrail
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess

KEY = "generic-guard-key-do-not-log"


def test_block_rewrite_and_outage(fake_upstream: FakeUpstream, start_proxy: Callable[..., ProxyProcess]) -> None:
    with FakeGenericGuardrail(KEY) as guard:
        def g(name: str, mode: Any, **params: Any) -> dict[str, Any]:
            return {"guardrail_name": name, "litellm_params": {
                "guardrail": "generic_guardrail_api", "mode": mode, "api_base": guard.url, "api_key": KEY,
                "additional_provider_specific_params": {"plr_mask": True}, **params}}

        proxy = start_proxy({
            "model_list": [upstream_model(fake_upstream, "gpt-test", "up-model")],
            "general_settings": {"master_key": MASTER_KEY},
            "litellm_settings": {"num_retries": 0},
            "guardrails": [g("pillar", ["pre_call", "post_call"]),
                           g("pillar-open", "pre_call", unreachable_fallback="fail_open"),
                           g("pillar-fast", "pre_call", guardrail_timeout=0.5)],
        })
        client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
        fake_upstream.set_behavior("up-model", Behavior(content="reach me at bob@example.com"))
        answer = client.chat.completions.create(model="gpt-test", extra_body={"guardrails": ["pillar"]},
                                                messages=[{"role": "user", "content": "mail a@example.com"}])
        assert fake_upstream.requests[-1].json["messages"][-1]["content"] == "mail [EMAIL]"
        assert answer.choices[0].message.content == "reach me at [EMAIL]"
        first = guard.requests[0].json()
        assert first["texts"] == ["mail a@example.com"] and first["input_type"] == "request"
        assert first["additional_provider_specific_params"] == {"plr_mask": True}
        assert first["structured_messages"] == [{"role": "user", "content": "mail a@example.com"}]
        assert guard.requests[1].json()["input_type"] == "response"

        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="gpt-test", extra_body={"guardrails": ["pillar"]},
                                           messages=[{"role": "user", "content": "blockme"}])
        assert caught.value.body["message"] == "Content blocked by guardrail: policy 7"

        guard.hold.clear()          # the service takes no decision: the time limit decides
        try:
            response = httpx.post(f"{proxy.url}/chat/completions", timeout=30,
                                  headers={"authorization": f"Bearer {MASTER_KEY}"},
                                  json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}],
                                        "guardrails": ["pillar-fast"]})
        finally:
            guard.hold.set()
        assert response.status_code == 503
        assert "no answer within 0.5 s" in response.json()["error"]["message"]

        guard.status = 502
        response = httpx.post(f"{proxy.url}/chat/completions", timeout=30, headers={"authorization": f"Bearer {MASTER_KEY}"},
                              json={"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}],
                                    "guardrails": ["pillar"]})
        assert response.status_code == 503 and response.json()["error"]["code"] == "guardrail_unavailable"
        opened = client.chat.completions.create(model="gpt-test", extra_body={"guardrails": ["pillar-open"]},
                                                messages=[{"role": "user", "content": "hi"}])
        assert opened.choices[0].message.content
        assert guard.problems == []
        assert KEY not in proxy.logs()
