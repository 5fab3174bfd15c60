"""``guardrail: guardrails_ai`` through a real ``trioproxy run`` and the official openai client,
against a strict fake Guardrails AI server; with LiteLLM's mode chosen by request tag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from conftest import MASTER_KEY, upstream_model
from support.fake_guardrails import FakeGuardrailsAI
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess

QUIET = """
from trioproxy import CustomLogger

class Quiet(CustomLogger):
    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        pass

handler = Quiet()
"""


def test_pre_call_forwards_the_validated_text_and_post_call_blocks(
        fake_upstream: FakeUpstream, start_proxy: Callable[..., ProxyProcess]) -> None:
    with FakeGuardrailsAI() as guard:
        base = {"guardrail": "guardrails_ai", "guard_name": "detect-pii", "api_base": guard.url}
        config: dict[str, Any] = {
            "model_list": [upstream_model(fake_upstream, "gpt-test", "up-model")],
            "general_settings": {"master_key": MASTER_KEY},
            # a logging callback: logging_only rewrites what callbacks receive, so it runs when there is one
            "litellm_settings": {"num_retries": 0, "callbacks": ["quiet.handler"]},
            "guardrails": [
                {"guardrail_name": "gai", "litellm_params": {
                    **base, "default_on": True,
                    "mode": {"tags": {"User-Agent: claude-cli": "post_call", "logs-only": "logging_only"},
                             "default": ["pre_call", "post_call"]}}},
            ],
        }
        proxy = start_proxy(config, files={"quiet.py": QUIET})
        client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
        fake_upstream.set_behavior("up-model", Behavior(content="fine answer"))
        answer = client.chat.completions.create(model="gpt-test", messages=[
            {"role": "system", "content": "mail ops@example.com"}, {"role": "user", "content": "mail me: a@example.com"}])
        assert answer.choices[0].message.content == "fine answer"
        sent = fake_upstream.requests[-1].json["messages"]
        assert [m["content"] for m in sent] == ["mail ops@example.com", "mail me: <EMAIL_ADDRESS>"]
        assert [s.json() for s in guard.requests] == [{"llmOutput": "mail me: a@example.com"},
                                                      {"llmOutput": "fine answer"}]
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "toxic words"}])
        assert caught.value.body["message"] == "Violated guardrail policy"
        fake_upstream.set_behavior("up-model", Behavior(content="a toxic answer"))
        cli = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30,
                            default_headers={"User-Agent": "claude-cli/2.0"})
        with pytest.raises(openai.BadRequestError):        # the claude-cli tag: post_call only
            cli.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "toxic question"}])
        assert fake_upstream.requests[-1].json["messages"][-1]["content"] == "toxic question"

        # logging_only (the tag "logs-only"): the request is untouched; the logged copy is validated
        fake_upstream.set_behavior("up-model", Behavior(content="ok"))
        guard.requests.clear()
        client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "logs b@example.com"}],
                                       extra_body={"metadata": {"tags": ["logs-only"]}})
        assert fake_upstream.requests[-1].json["messages"][-1]["content"] == "logs b@example.com"
        guard.wait_for(lambda requests: any(r.json() == {"llmOutput": "logs b@example.com"} for r in requests))
        assert guard.problems == []
