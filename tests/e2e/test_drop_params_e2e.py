"""LiteLLM's parameter policy through a real ``trioproxy run`` (issue #16, "Bad input"): a parameter a
provider cannot take is dropped when ``drop_params`` says so — the request's own, else the
deployment's ``litellm_params.drop_params``, else ``litellm_settings.drop_params`` — or when the
deployment lists it in ``additional_drop_params``; otherwise the client gets a 400 naming the
parameter and the provider, and nothing is sent upstream.

Native side: the strict Anthropic fake (it refuses unknown top-level fields, so anything that leaks
is a recorded violation). OpenAI-compatible side: the fake OpenAI upstream, which records bodies:
the policy's own fields never reach it and ``additional_drop_params`` holds there too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from support.fake_upstream import FakeUpstream
from support.native_fakes.anthropic_fake import AnthropicFake

KEY = "sk-ant-api03-SECRET-drop-params-0123456789"
USER = [{"role": "user", "content": "hello"}]


def _claude(fake: AnthropicFake, name: str, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": "anthropic/claude-haiku-4-5", "api_base": fake.base_url,
                                                   "api_key": KEY, **params}}


@pytest.fixture
def served(start_proxy: Any, fake_upstream: FakeUpstream) -> Iterator[tuple[AnthropicFake, FakeUpstream, openai.OpenAI]]:
    with AnthropicFake(KEY) as fake:
        models = [
            _claude(fake, "strict", drop_params=False),              # the deployment's False beats the default
            _claude(fake, "default"),                                # litellm_settings.drop_params: true
            _claude(fake, "listed", drop_params=False, additional_drop_params=["presence_penalty", "temperature"]),
            {"model_name": "gpt", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": fake_upstream.base_url,
                                                     "api_key": UPSTREAM_KEY, "additional_drop_params": ["user"]}},
        ]
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
                  "litellm_settings": {"num_retries": 0, "drop_params": True}}
        proxy = start_proxy(config)
        client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
        yield fake, fake_upstream, client
        assert fake.violations == [], fake.violations


def test_an_unsupported_parameter_is_a_400_naming_it_and_the_provider(served: Any) -> None:
    fake, _, client = served
    before = len(fake.exchanges)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="strict", messages=USER, presence_penalty=0.5, logit_bias={"1": 2})
    error = refused.value.response.json()["error"]
    assert error["code"] == "unsupported_params" and error["type"] == "invalid_request_error"
    assert error["param"] in ("presence_penalty", "logit_bias")   # the first the body names
    assert "anthropic" in error["message"] and "'presence_penalty'" in error["message"]
    assert "'logit_bias'" in error["message"] and "drop_params" in error["message"]
    assert len(fake.exchanges) == before, "nothing may reach the provider"


def test_the_requests_own_drop_params_wins(served: Any) -> None:
    fake, _, client = served
    answer = client.chat.completions.create(model="strict", messages=USER, presence_penalty=0.5,
                                            extra_body={"drop_params": True})
    assert answer.choices[0].message.content == fake.script.text
    assert "presence_penalty" not in fake.last.json and "drop_params" not in fake.last.json
    # and a request may turn it off where the config turned it on
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="default", messages=USER, presence_penalty=0.5,
                                       extra_body={"drop_params": False})
    assert refused.value.response.json()["error"]["param"] == "presence_penalty"


def test_litellm_settings_drop_params_is_the_default(served: Any) -> None:
    fake, _, client = served
    answer = client.chat.completions.create(model="default", messages=USER, presence_penalty=0.5, temperature=0.2)
    assert answer.choices[0].message.content == fake.script.text
    assert "presence_penalty" not in fake.last.json
    assert fake.last.json["temperature"] == 0.2


def test_additional_drop_params_drop_even_supported_parameters(served: Any) -> None:
    fake, upstream, client = served
    client.chat.completions.create(model="listed", messages=USER, presence_penalty=0.5, temperature=0.2, top_p=0.9)
    sent = fake.last.json
    assert "presence_penalty" not in sent and "temperature" not in sent and sent["top_p"] == 0.9
    # an OpenAI-compatible deployment honours its list too, and never receives the policy's fields
    client.chat.completions.create(model="gpt", messages=USER, user="alice", temperature=0.2,
                                   extra_body={"drop_params": True, "additional_drop_params": ["seed"], "seed": 3})
    body = upstream.requests[-1].json
    assert "user" not in body and body["temperature"] == 0.2
    assert "drop_params" not in body and "additional_drop_params" not in body
    assert "seed" not in body       # the request's own list applies too (LiteLLM reads it per request)
