"""Guardrails that implement only ``apply_guardrail`` (issue #15 item 6), through a real ``trioproxy run``.

LiteLLM's custom-guardrail docs lead with this one method; a class that defines it and no hook
gets the hooks of its modes made from it (``trioproxy/hooks/apply_guardrail.py``): pre_call rewrites
the request's texts, during_call blocks while the upstream call is in flight, post_call rewrites a
plain answer and checks a streamed one before ``[DONE]``. What the upstream received is read from
the fake upstream's records.
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

DATA = Path(__file__).resolve().parents[1] / "data" / "guardrails"
HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}


def guard(name: str, cls: str, mode: str, **params: Any) -> dict[str, Any]:
    return {"guardrail_name": name, "litellm_params": {"guardrail": f"apply_only_guardrails.{cls}", "mode": mode,
                                                        **params}}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    config = {
        "model_list": [],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"num_retries": 0},
        "guardrails": [
            guard("mask-pre", "MaskAndBlock", "pre_call"),
            guard("block-during", "MaskAndBlock", "during_call"),
            guard("check-post", "MaskAndBlock", "post_call"),
            guard("check-post-buffered", "MaskAndBlock", "post_call", stream_mode="buffer"),
            guard("old-style", "OldStyle", "pre_call"),
            guard("wrong-count", "WrongCount", "pre_call"),
        ],
    }
    directory = tmp_path_factory.mktemp("apply_guardrail")
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        config["model_list"] = [upstream_model(fake, "gpt-4", "up-model")]
        path = write_config(directory, config, files={
            "apply_only_guardrails.py": (DATA / "apply_only_guardrails.py").read_text()})
        with ProxyProcess(path) as proxy:
            yield {"proxy": proxy, "fake": fake}


@pytest.fixture
def ctx(env: dict[str, Any]) -> dict[str, Any]:
    env["fake"].reset()
    return env


def post(ctx: dict[str, Any], content: str, guardrails: list[str], **extra: Any) -> httpx.Response:
    return httpx.post(f"{ctx['proxy'].url}/chat/completions", headers=HEADERS, timeout=30,
                      json={"model": "gpt-4", "messages": [{"role": "user", "content": content}],
                            "guardrails": guardrails, **extra})


def sse(ctx: dict[str, Any], content: str, guardrails: list[str]) -> list[Any]:
    frames: list[Any] = []
    with httpx.stream("POST", f"{ctx['proxy'].url}/chat/completions", headers=HEADERS, timeout=30,
                      json={"model": "gpt-4", "stream": True, "guardrails": guardrails,
                            "messages": [{"role": "user", "content": content}]}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                payload = line[len("data: "):]
                frames.append(payload if payload == "[DONE]" else json.loads(payload))
    return frames


def text_of(frames: list[Any]) -> str:
    return "".join((c.get("delta") or {}).get("content") or ""
                   for f in frames if isinstance(f, dict) for c in f.get("choices") or [])


def test_pre_call_rewrites_what_the_upstream_receives(ctx: dict[str, Any]) -> None:
    response = post(ctx, "tell me the secret-word", ["mask-pre"])
    assert response.status_code == 200, response.text
    assert ctx["fake"].requests[-1].json["messages"][-1]["content"] == "tell me the [MASKED]"


def test_pre_call_blocks_before_the_upstream(ctx: dict[str, Any]) -> None:
    response = post(ctx, "please block-me", ["mask-pre"])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "guardrail_violation" and "'mask-pre'" in error["message"]
    assert "blocked request text" in error["message"]
    assert ctx["fake"].requests == []


def test_during_call_blocks_and_cannot_change_what_was_sent(ctx: dict[str, Any]) -> None:
    assert post(ctx, "please block-me", ["block-during"]).status_code == 400
    assert post(ctx, "the secret-word", ["block-during"]).status_code == 200
    assert ctx["fake"].requests[-1].json["messages"][-1]["content"] == "the secret-word"


def test_post_call_rewrites_a_plain_answer(ctx: dict[str, Any]) -> None:
    client = openai.OpenAI(base_url=ctx["proxy"].url, api_key=MASTER_KEY, max_retries=0)
    answer = client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}],
                                            extra_body={"guardrails": ["check-post"]})
    assert answer.choices[0].message.content == "Howdy from the fake upstream."


def test_post_call_blocks_a_plain_answer(ctx: dict[str, Any]) -> None:
    ctx["fake"].set_behavior("up-model", Behavior(content="this answer is BLOCKED"))
    response = post(ctx, "hi", ["check-post"])
    assert response.status_code == 400 and "blocked response text" in response.json()["error"]["message"]


def test_post_call_checks_a_stream_before_done(ctx: dict[str, Any]) -> None:
    frames = sse(ctx, "hi", ["check-post"])
    assert frames[-1] == "[DONE]" and text_of(frames) == "Hello from the fake upstream."
    ctx["fake"].set_behavior("up-model", Behavior(content="this answer is BLOCKED"))
    frames = sse(ctx, "hi", ["check-post"])
    assert "[DONE]" not in frames and frames[-1]["error"]["type"] == "guardrail_violation"
    assert text_of(frames) == "this answer is BLOCKED"          # pass_through: sent, then the error


def test_post_call_buffered_stream_sends_nothing_when_blocked(ctx: dict[str, Any]) -> None:
    ctx["fake"].set_behavior("up-model", Behavior(content="this answer is BLOCKED"))
    frames = sse(ctx, "hi", ["check-post-buffered"])
    assert text_of(frames) == "" and frames[-1]["error"]["type"] == "guardrail_violation"


def test_the_old_one_text_signature(ctx: dict[str, Any]) -> None:
    assert post(ctx, "an old-word here", ["old-style"]).status_code == 200
    assert ctx["fake"].requests[-1].json["messages"][-1]["content"] == "an [OLD] here"
    assert post(ctx, "forbidden", ["old-style"]).status_code == 400


def test_returning_the_wrong_number_of_texts_is_the_guardrails_error(ctx: dict[str, Any]) -> None:
    response = post(ctx, "hi", ["wrong-count"])
    assert response.status_code == 400
    assert "returned 0 texts for 1" in response.json()["error"]["message"]
    assert ctx["fake"].requests == []
