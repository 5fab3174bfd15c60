"""``lunary`` in a real ``trioproxy run`` with the official openai client, configured as LiteLLM's
docs configure it (``success_callback`` and ``failure_callback``), against the strict Lunary ingest
fake (Bearer key, ``{"events": [...]}``). The proxy is stopped with SIGTERM before reading: the
graceful shutdown drains the logging queue, so every event that will be sent has been."""

from __future__ import annotations

import hashlib
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_collectors import FakeCollectors
from support.fake_upstream import Behavior
from trioproxy.config import parse_config
from trioproxy.hooks.loader import HandlerLoadError
from trioproxy.observability.integrations import make_integration
from trioproxy.observability.integrations.lunary import lunary_run_id, parse_messages


@pytest.fixture
def collectors() -> Iterator[FakeCollectors]:
    with FakeCollectors() as fake:
        yield fake


def test_lunary_gets_a_start_and_an_end_event_per_request(start_proxy: Any, fake_upstream: Any,
                                                           collectors: FakeCollectors) -> None:
    fake_upstream.set_behavior("bad-model", Behavior(status=400, error_message="bad request upstream",
                                                     error_type="invalid_request_error"))
    config = {
        "model_list": [upstream_model(fake_upstream),
                       upstream_model(fake_upstream, model_name="gpt-bad", upstream_name="bad-model")],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"success_callback": ["lunary"], "failure_callback": ["lunary"]},
    }
    key = collectors.creds.lunary_key
    proxy = start_proxy(config, env={"LUNARY_PRIVATE_KEY": key, "LUNARY_API_URL": collectors.url})
    client = openai.OpenAI(api_key=MASTER_KEY, base_url=proxy.url, max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello there"}], user="end-user-7",
        temperature=0.5, extra_body={"metadata": {"tags": ["team-a"], "parent_run_id": "parent-1"}})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-bad", messages=[{"role": "system", "content": "be brief"},
                                                                   {"role": "user", "content": "please fail"}])
    assert proxy.terminate(signal.SIGTERM) == 0
    assert collectors.problems == []
    batches = [r.payload["events"] for r in collectors.on("/v1/runs/ingest")]
    assert sorted(len(b) for b in batches) == [2, 2]
    ok = next(b for b in batches if b[1]["event"] == "end")
    failed = next(b for b in batches if b[1]["event"] == "error")

    start, end = ok
    assert start["event"] == "start" and start["type"] == "llm" and start["runtime"] == "litellm"
    assert start["runId"] == end["runId"]
    assert start["parentRunId"] == lunary_run_id("parent-1", key)
    assert start["name"] == "up-model" and start["userId"] == "end-user-7" and start["tags"] == ["team-a"]
    assert start["input"] == {"role": "user", "content": "hello there"}         # one message: not a list
    assert start["params"]["temperature"] == 0.5 and "user" not in start["params"]
    assert end["output"] == {"role": "assistant", "content": answer.choices[0].message.content}
    assert end["tokensUsage"] == {"completion": answer.usage.completion_tokens, "prompt": answer.usage.prompt_tokens}
    assert start["timestamp"] <= end["timestamp"]

    assert failed[0]["input"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "please fail"}]
    assert "bad request upstream" in failed[1]["error"]["stack"] and failed[1]["output"] is None

    # the key goes in the Authorization header only: never in a body, never in the proxy's log
    assert all(key.encode() not in r.body for r in collectors.received)
    logs = proxy.logs()
    for secret in (key, MASTER_KEY, UPSTREAM_KEY):
        assert secret not in logs


def test_a_refusing_lunary_never_fails_a_request(start_proxy: Any, fake_upstream: Any,
                                                 collectors: FakeCollectors) -> None:
    config = {"model_list": [upstream_model(fake_upstream)], "general_settings": {"master_key": MASTER_KEY},
              "litellm_settings": {"success_callback": ["lunary"]}}
    proxy = start_proxy(config, env={"LUNARY_PUBLIC_KEY": "lunary-WRONG-key-0123456789",
                                     "LUNARY_API_URL": collectors.url})
    client = openai.OpenAI(api_key=MASTER_KEY, base_url=proxy.url, max_retries=0)
    assert client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}]).id
    collectors.wait_for("/v1/runs/ingest", 1)
    assert proxy.terminate(signal.SIGTERM) == 0
    logs = proxy.logs()
    assert "lunary: POST " in logs and "answered 401" in logs
    assert "lunary-WRONG-key-0123456789" not in logs


def test_lunary_needs_a_key_and_cleans_messages_as_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LUNARY_PRIVATE_KEY", "LUNARY_PUBLIC_KEY", "LUNARY_APP_ID"):
        monkeypatch.delenv(name, raising=False)
    config = parse_config({"model_list": []}, "c.yaml", Path("."))
    with pytest.raises(HandlerLoadError, match="needs LUNARY_PRIVATE_KEY or LUNARY_PUBLIC_KEY or LUNARY_APP_ID"):
        make_integration("lunary", config)
    assert parse_messages([{"message": {"role": "assistant", "content": "x", "extra": 1}}]) == \
        {"role": "assistant", "content": "x"}
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    assert parse_messages([{"role": "assistant", "content": None, "tool_calls": [call]}, "plain"]) == \
        [{"role": "assistant", "content": None, "tool_calls": [call]}, "plain"]
    # the SDK's run id: the first 128 bits of sha256(seed + key)
    assert lunary_run_id("abc", "k") == str(uuid.UUID(hashlib.sha256(b"abck").hexdigest()[:32]))
