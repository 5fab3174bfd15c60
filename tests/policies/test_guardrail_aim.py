"""``guardrail: aim`` through a real ``trioproxy run`` and the official openai client, against a
strict fake of Aim's firewall API."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from conftest import MASTER_KEY, upstream_model
from support.fake_guardrails import FakeAim
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess

KEY = "aim-key-do-not-log"


def test_block_anonymize_and_restore(fake_upstream: FakeUpstream, start_proxy: Callable[..., ProxyProcess]) -> None:
    with FakeAim(KEY) as aim:
        proxy = start_proxy({
            "model_list": [upstream_model(fake_upstream, "gpt-test", "up-model")],
            "general_settings": {"master_key": MASTER_KEY},
            "litellm_settings": {"num_retries": 0},
            "environment_variables": {"AIM_API_KEY": KEY},
            "guardrails": [{"guardrail_name": "aim-guard", "litellm_params": {
                "guardrail": "aim", "mode": ["pre_call", "post_call"], "api_base": aim.url, "default_on": True}}],
        })
        client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
        fake_upstream.set_behavior("up-model", Behavior(content="Hello [NAME_1]!"))
        answer = client.chat.completions.create(model="gpt-test",
                                                messages=[{"role": "user", "content": "I am Alice"}])
        assert fake_upstream.requests[-1].json["messages"] == [{"role": "user", "content": "I am [NAME_1]"}]
        assert answer.choices[0].message.content == "Hello Alice!"
        hooks = [s.headers["x-aim-litellm-hook"] for s in aim.requests]
        assert hooks == ["pre_call", "output"]
        assert aim.requests[1].json()["messages"][-1] == {"role": "assistant", "content": "Hello [NAME_1]!"}

        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "a jailbreak"}])
        assert caught.value.body["message"] == "Jailbreak attempt detected"
        fake_upstream.set_behavior("up-model", Behavior(content="here is a jailbreak"))
        with pytest.raises(openai.APIError):               # streamed answer: checked assembled, before [DONE]
            for _ in client.chat.completions.create(model="gpt-test", stream=True,
                                                    messages=[{"role": "user", "content": "hi"}]):
                pass
        assert aim.problems == []
        assert KEY not in proxy.logs()
