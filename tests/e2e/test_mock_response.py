"""``mock_response`` is answered by the proxy, never sent upstream (issue #15 item 11), through a real
``trioproxy run`` in front of a fake OpenAI upstream that records what reaches it.

LiteLLM answers a request carrying ``mock_response`` (in its body, or in the deployment's
``litellm_params``) without calling the provider, whatever the provider: so does trioproxy
(``trioproxy/upstream/fake/mock.py``). The model must exist; LiteLLM's error strings raise the
error they name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import FakeUpstream
from support.proxy_process import ProxyProcess, write_config

HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        config = {
            "model_list": [upstream_model(fake, "relay", "up-relay"),
                           upstream_model(fake, "always-mocked", "up-mocked", mock_response="configured answer")],
            "general_settings": {"master_key": MASTER_KEY},
            "litellm_settings": {"num_retries": 0},
        }
        path = write_config(tmp_path_factory.mktemp("mock_response"), config)
        with ProxyProcess(path) as proxy:
            yield {"proxy": proxy, "fake": fake}


@pytest.fixture
def ctx(env: dict[str, Any]) -> dict[str, Any]:
    env["fake"].reset()
    return env


def client(ctx: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=ctx["proxy"].url, api_key=MASTER_KEY, max_retries=0)


def test_a_request_mock_is_answered_without_the_upstream(ctx: dict[str, Any]) -> None:
    answer = client(ctx).chat.completions.create(model="relay", messages=MESSAGES,
                                                 extra_body={"mock_response": "mocked", "n": 2})
    assert [c.message.content for c in answer.choices] == ["mocked", "mocked"]
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    assert ctx["fake"].requests == []


def test_a_streamed_mock(ctx: dict[str, Any]) -> None:
    stream = client(ctx).chat.completions.create(model="relay", messages=MESSAGES, stream=True,
                                                 extra_body={"mock_response": "a mocked stream"})
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "a mocked stream"
    assert ctx["fake"].requests == []


def test_a_text_completion_mock(ctx: dict[str, Any]) -> None:
    answer = client(ctx).completions.create(model="relay", prompt="Say hi", extra_body={"mock_response": "hi"})
    assert answer.choices[0].text == "hi" and ctx["fake"].requests == []


def test_a_deployment_mock_on_a_real_provider(ctx: dict[str, Any]) -> None:
    answer = client(ctx).chat.completions.create(model="always-mocked", messages=MESSAGES)
    assert answer.choices[0].message.content == "configured answer"
    again = client(ctx).chat.completions.create(model="always-mocked", messages=MESSAGES,
                                                extra_body={"mock_response": "the request's own"})
    assert again.choices[0].message.content == "the request's own"
    assert ctx["fake"].requests == []


@pytest.mark.parametrize(("mock", "status", "code"), [
    ("litellm.RateLimitError", 429, "rate_limit_exceeded"),
    ("litellm.ContextWindowExceededError", 400, "context_length_exceeded"),
    ("litellm.InternalServerError", 500, "500"),
    ("Exception: content_filter_policy", 400, "content_policy_violation"),
])
def test_litellm_mock_errors_raise_what_they_name(ctx: dict[str, Any], mock: str, status: int, code: str) -> None:
    response = httpx.post(f"{ctx['proxy'].url}/chat/completions", headers=HEADERS, timeout=30,
                          json={"model": "relay", "messages": MESSAGES, "mock_response": mock})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert ctx["fake"].requests == []


def test_a_dict_mock_is_the_whole_answer(ctx: dict[str, Any]) -> None:
    mock = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "from a dict"},
                         "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 3,
                                                              "total_tokens": 4}}
    response = httpx.post(f"{ctx['proxy'].url}/chat/completions", headers=HEADERS, timeout=30,
                          json={"model": "relay", "messages": MESSAGES, "mock_response": mock})
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "from a dict" and body["object"] == "chat.completion"
    assert body["model"] == "up-relay"


def test_an_unknown_model_is_still_a_404(ctx: dict[str, Any]) -> None:
    response = httpx.post(f"{ctx['proxy'].url}/chat/completions", headers=HEADERS, timeout=30,
                          json={"model": "no-such-model", "messages": MESSAGES, "mock_response": "x"})
    assert response.status_code == 404


def test_without_a_mock_the_upstream_answers(ctx: dict[str, Any]) -> None:
    answer = client(ctx).chat.completions.create(model="relay", messages=MESSAGES)
    assert answer.choices[0].message.content == "Hello from the fake upstream."
    (record,) = ctx["fake"].requests
    assert "mock_response" not in json.dumps(record.json)
