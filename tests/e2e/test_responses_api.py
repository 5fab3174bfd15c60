"""``POST /v1/responses`` through a real ``trioproxy run`` with hooks, logging and cost (issue #15 item 9).

The request is translated to a chat completion before any hook runs, so the chat hooks see the
text a client sent as ``input`` (a guardrail cannot be bypassed by switching APIs), and the answer
is written back in the Responses shape — plain, streamed, or as errors (``core/responses_wire.py``).
What the upstream received is read from the fake upstream's records; what the logging callback saw
from the file it writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess, write_config

HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}

HOOKS = '''
import json, os
from trioproxy import CustomGuardrail, CustomLogger

class Block(CustomGuardrail):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        text = json.dumps(data["messages"])
        if "forbidden" in text:
            raise ValueError("forbidden word")
        if "canned" in text:
            return "a canned answer"
        for message in data["messages"]:
            if isinstance(message.get("content"), str):
                message["content"] = message["content"].replace("secret", "[masked]")
        return data

class RejectAnswer(CustomGuardrail):
    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        if "BLOCKED" in json.dumps(response):
            raise ValueError("the answer is blocked")

class Log(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        with open(os.environ["LOG_FILE"], "a") as f:
            f.write(json.dumps({"call_type": kwargs.get("call_type"), "cost": kwargs.get("response_cost"),
                                "messages": kwargs.get("messages")}) + "\\n")

log = Log()
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("responses")
    log_file = directory / "log.jsonl"
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        config = {
            "model_list": [upstream_model(fake, "gpt-4o", "gpt-4o"), upstream_model(fake, "broken", "up-broken")],
            "general_settings": {"master_key": MASTER_KEY},
            "litellm_settings": {"num_retries": 0, "callbacks": ["hooks.log"]},
            "guardrails": [
                {"guardrail_name": "block", "litellm_params": {"guardrail": "hooks.Block", "mode": "pre_call",
                                                               "default_on": True}},
                {"guardrail_name": "reject-answer", "litellm_params": {"guardrail": "hooks.RejectAnswer",
                                                                       "mode": "post_call", "default_on": True}},
            ],
        }
        path = write_config(directory, config, files={"hooks.py": HOOKS})
        with ProxyProcess(path, env={"LOG_FILE": str(log_file)}) as proxy:
            yield {"proxy": proxy, "fake": fake, "log": log_file}


@pytest.fixture
def ctx(env: dict[str, Any]) -> dict[str, Any]:
    env["fake"].reset()
    return env


def client(ctx: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=ctx["proxy"].url, api_key=MASTER_KEY, max_retries=0)


def post(ctx: dict[str, Any], **body: Any) -> httpx.Response:
    return httpx.post(f"{ctx['proxy'].url}/responses", headers=HEADERS, timeout=30, json=body)


def events(ctx: dict[str, Any], **body: Any) -> list[dict[str, Any]]:
    out = []
    with httpx.stream("POST", f"{ctx['proxy'].url}/responses", headers=HEADERS, timeout=30,
                      json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[len("data: "):]))
    return out


def test_the_pre_call_hook_sees_input_as_messages_and_masks_it(ctx: dict[str, Any]) -> None:
    response = client(ctx).responses.create(model="gpt-4o", input="my secret plan", instructions="be brief")
    assert response.output_text == "Hello from the fake upstream." and response.status == "completed"
    sent = ctx["fake"].requests[-1].json
    assert sent["messages"] == [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "my [masked] plan"}]


def test_a_guardrail_cannot_be_bypassed_through_input(ctx: dict[str, Any]) -> None:
    for request in ({"input": "a forbidden request"},
                    {"input": [{"role": "user", "content": [{"type": "input_text", "text": "forbidden"}]}]}):
        response = post(ctx, model="gpt-4o", **request)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "guardrail_violation"
    with httpx.stream("POST", f"{ctx['proxy'].url}/responses", headers=HEADERS, timeout=30,
                      json={"model": "gpt-4o", "input": "forbidden", "stream": True}) as streamed:
        assert streamed.status_code == 400
    assert ctx["fake"].requests == []


def test_a_pre_call_string_is_the_answer_plain_and_streamed(ctx: dict[str, Any]) -> None:
    response = client(ctx).responses.create(model="gpt-4o", input="canned please")
    assert response.output_text == "a canned answer"
    streamed = events(ctx, model="gpt-4o", input="canned please")
    assert "".join(e["delta"] for e in streamed if e["type"] == "response.output_text.delta") == "a canned answer"
    assert streamed[-1]["type"] == "response.completed"
    assert ctx["fake"].requests == []


def test_a_stream_rejected_after_its_first_byte_ends_with_response_failed(ctx: dict[str, Any]) -> None:
    ctx["fake"].set_behavior("gpt-4o", Behavior(content="this answer is BLOCKED"))
    streamed = events(ctx, model="gpt-4o", input="hi")
    assert [e["type"] for e in streamed[-2:]] == ["error", "response.failed"]
    assert "the answer is blocked" in streamed[-2]["message"]
    plain = post(ctx, model="gpt-4o", input="hi")
    assert plain.status_code == 400 and "the answer is blocked" in plain.json()["error"]["message"]


def test_upstream_errors_keep_their_status(ctx: dict[str, Any]) -> None:
    ctx["fake"].set_behavior("up-broken", Behavior(status=429, error_message="slow down", error_type="rate_limit"))
    with pytest.raises(openai.RateLimitError):
        client(ctx).responses.create(model="broken", input="hi")
    ctx["fake"].set_behavior("up-broken", Behavior(content="cut short", chunks=4, stream_end="close"))
    streamed = events(ctx, model="broken", input="hi")
    assert streamed[-1]["type"] == "response.failed"
    assert streamed[-2]["code"] == "upstream_stream_interrupted"


def test_an_untranslatable_request_is_a_400_naming_the_field(ctx: dict[str, Any]) -> None:
    response = post(ctx, model="gpt-4o", input="hi", tools=[{"type": "web_search"}])
    assert response.status_code == 400 and response.json()["error"]["param"].startswith("tools")
    assert post(ctx, model="no-such-model", input="hi").status_code == 404


def test_logged_like_chat_with_its_cost(start_proxy: Any, tmp_path: Path) -> None:
    log_file = tmp_path / "log.jsonl"
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        proxy = start_proxy({"model_list": [upstream_model(fake, "gpt-4o", "gpt-4o")],
                             "general_settings": {"master_key": MASTER_KEY},
                             "litellm_settings": {"callbacks": ["hooks.log"]}},
                            files={"hooks.py": HOOKS}, env={"LOG_FILE": str(log_file)})
        with proxy:
            llm = openai.OpenAI(base_url=proxy.base_url, api_key=MASTER_KEY, max_retries=0)   # /responses, no /v1
            llm.responses.create(model="gpt-4o", input="log me")
            list(llm.responses.create(model="gpt-4o", input="log me too", stream=True))
            proxy.terminate()   # drains the logging queue
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["messages"][-1]["content"] for line in lines] == ["log me", "log me too"]
    assert all(line["call_type"] == "completion" and line["cost"] > 0 for line in lines)
