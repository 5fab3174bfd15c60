"""Logging callbacks in a real ``trioproxy run`` process, through the official OpenAI SDK.

The callbacks (written next to the config) append one JSON line per call to a file named by an
environment variable. Each test stops the proxy with SIGTERM before reading it: a graceful shutdown
drains the logging queue, so after it every event that will ever be delivered has been, and
"exactly one" can be asserted without sleeping or polling.
"""

from __future__ import annotations

import json
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior

RECORDER = '''
import json
import os
import threading

from trioproxy import CustomLogger, HTTPException

_lock = threading.Lock()
PATH = os.environ["TRIOPROXY_TEST_EVENTS"]


def _case(kwargs):
    return ((kwargs.get("litellm_params") or {}).get("metadata") or {}).get("case")


def record(kind, kwargs, **extra):
    line = json.dumps({"kind": kind, "id": kwargs.get("litellm_call_id"), "case": _case(kwargs),
                       "event": kwargs.get("log_event_type"), **extra, "kwargs": kwargs}, default=str)
    with _lock, open(PATH, "a") as f:
        f.write(line + "\\n")


class Recorder(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if (data.get("metadata") or {}).get("case") == "pre-call-rejection":
            raise HTTPException(status_code=400, detail="rejected before the call")

    async def async_moderation_hook(self, data, user_api_key_dict, call_type):
        if (data.get("metadata") or {}).get("case") == "moderation-rejection":
            raise HTTPException(status_code=400, detail="Violated content safety policy")

    def log_pre_api_call(self, model, messages, kwargs):
        record("pre", kwargs, model=model, messages=messages)

    def log_post_api_call(self, kwargs, response_obj, start_time, end_time):
        record("post", kwargs)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        record("success", kwargs, cache_hit=kwargs["cache_hit"], cost=kwargs["response_cost"],
               streamed=kwargs.get("complete_streaming_response"),
               status=kwargs["standard_logging_object"]["status_code"])

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        record("failure", kwargs, status=kwargs["standard_logging_object"]["status_code"],
               error=type(kwargs["exception"]).__name__)


handler = Recorder()


def get_transformed_inputs(kwargs):
    record("input", kwargs, body=kwargs["additional_args"]["complete_input_dict"])


def track_cost_callback(kwargs, completion_response, start_time, end_time):
    record("cost", kwargs, cost=kwargs["response_cost"])


def log_metadata(kwargs, completion_response, start_time, end_time):
    record("metadata", kwargs, metadata=kwargs["litellm_params"]["metadata"])


async def on_failure(kwargs, completion_response, start_time, end_time):
    record("failure_fn", kwargs)
'''

CALLBACK_SETTINGS = {
    "callbacks": ["recorder.handler"],
    "input_callback": ["recorder.get_transformed_inputs"],
    "success_callback": ["recorder.track_cost_callback", "recorder.log_metadata"],
    "failure_callback": ["recorder.on_failure"],
    "num_retries": 0,
}
MESSAGES = [{"role": "user", "content": "Hi 👋 - i'm openai"}]


def start(start_proxy, tmp_path: Path, config: dict[str, Any], args: list[str] | None = None):
    events = tmp_path / "events.jsonl"
    proxy = start_proxy(config, files={"recorder.py": RECORDER}, env={"TRIOPROXY_TEST_EVENTS": str(events)},
                        args=args)
    client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
    return proxy, client, events


def stop_and_read(proxy, events: Path) -> tuple[list[dict[str, Any]], str]:
    """SIGTERM (drains the logging queue), then every event line and the proxy's log."""
    assert proxy.terminate(signal.SIGTERM) == 0
    text = events.read_text() if events.exists() else ""
    logs = proxy.logs()
    for secret in (MASTER_KEY, UPSTREAM_KEY):
        assert secret not in text, "a secret reached a callback payload"
        assert secret not in logs, "a secret reached the log"
    return [json.loads(line) for line in text.splitlines()], logs


def by_case(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        out[event["case"]].append(event)
    return out


def test_seed_examples_end_to_end(start_proxy, fake_upstream, tmp_path):
    """Counting logger, function callbacks, cost, transformed input, metadata, streaming, cache."""
    model = upstream_model(fake_upstream, input_cost_per_token=1e-6, output_cost_per_token=2e-6)
    proxy, client, events_file = start(start_proxy, tmp_path, {
        "model_list": [model],
        "litellm_settings": {**CALLBACK_SETTINGS, "cache": True, "cache_params": {"type": "local"}},
        "general_settings": {"master_key": MASTER_KEY},
    })
    fake_upstream.set_behavior("up-model", Behavior(content="A plain answer from upstream"))

    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES, temperature=0.25,
        extra_body={"metadata": {"hello": "world", "case": "plain"}})
    plain = raw.parse()
    header_cost = float(raw.headers["x-trioproxy-response-cost"])
    upstream_body = fake_upstream.requests[-1].json

    streamed = ""
    for chunk in client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "stream please"}], stream=True,
            extra_body={"metadata": {"case": "stream"}}):
        if chunk.choices and chunk.choices[0].delta.content:
            streamed += chunk.choices[0].delta.content

    cached = [client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "cache me"}], extra_body={"metadata": {"case": "cached"}})
        for _ in range(2)]
    assert "x-trioproxy-cache-hit" not in cached[0].headers
    assert cached[1].headers["x-trioproxy-cache-hit"] == "true"
    assert cached[1].parse().choices[0].message.content == cached[0].parse().choices[0].message.content

    events, _ = stop_and_read(proxy, events_file)
    cases = by_case(events)

    # non-streaming: every callback once, in order; the input callback saw the exact upstream body
    kinds = [e["kind"] for e in cases["plain"]]
    assert sorted(kinds) == ["cost", "input", "metadata", "post", "pre", "success"]
    assert kinds.index("pre") < kinds.index("post") < kinds.index("success")
    [inp] = [e for e in cases["plain"] if e["kind"] == "input"]
    assert inp["body"] == upstream_body
    [meta] = [e for e in cases["plain"] if e["kind"] == "metadata"]
    # the request's metadata, plus the caller's address where LiteLLM's callbacks read it
    assert meta["metadata"] == {"hello": "world", "case": "plain", "requester_ip_address": "127.0.0.1"}
    usage = plain.usage
    expected_cost = usage.prompt_tokens * 1e-6 + usage.completion_tokens * 2e-6
    [cost] = [e for e in cases["plain"] if e["kind"] == "cost"]
    assert cost["cost"] == pytest.approx(expected_cost) and header_cost == pytest.approx(expected_cost)

    # streaming: the complete response is what the client assembled, and it has a cost
    [success] = [e for e in cases["stream"] if e["kind"] == "success"]
    assert streamed and success["streamed"]["choices"][0]["message"]["content"] == streamed
    assert success["cost"] > 0

    # the seeds' cache example: two identical calls → pre, post, success, success
    logger_events = [e for e in cases["cached"] if e["kind"] in ("pre", "post", "success", "failure")]
    assert sorted(e["kind"] for e in logger_events) == ["post", "pre", "success", "success"]
    hits = [e for e in logger_events if e["kind"] == "success"]
    assert sorted((e["cache_hit"], e["cost"] == 0) for e in hits) == [(False, False), (True, True)]


def test_exactly_one_outcome_event_per_request(start_proxy, fake_upstream, tmp_path):
    """Success, upstream 500, timeout, pre-call and moderation rejection, client disconnect."""
    proxy, client, events_file = start(start_proxy, tmp_path, {
        "model_list": [
            upstream_model(fake_upstream, "ok", "up-ok"),
            upstream_model(fake_upstream, "err", "up-err"),
            upstream_model(fake_upstream, "slow", "up-slow", timeout=0.5),
            upstream_model(fake_upstream, "streamy", "up-streamy"),
        ],
        "litellm_settings": CALLBACK_SETTINGS,
        "general_settings": {"master_key": MASTER_KEY},
    }, args=["--log-format", "json"])
    fake_upstream.set_behavior("up-err", Behavior(status=500, error_message="upstream exploded"))
    fake_upstream.set_behavior("up-slow", Behavior(delay=5))
    fake_upstream.set_behavior("up-streamy", Behavior(content="word " * 60, chunk_delay=0.1))

    expected = {"success": (200, "success"), "upstream-500": (500, "failure"), "timeout": (504, "failure"),
                "pre-call-rejection": (400, "failure"), "moderation-rejection": (400, "failure"),
                "disconnect": (499, "failure")}
    models = {"upstream-500": "err", "timeout": "slow"}
    for case, (status, _) in expected.items():
        if case == "disconnect":
            continue
        try:
            client.chat.completions.create(model=models.get(case, "ok"), messages=MESSAGES,
                                           extra_body={"metadata": {"case": case}})
            got = 200
        except openai.APIStatusError as exc:
            got = exc.status_code
        assert got == status, case

    with httpx.Client(timeout=30) as raw_client:
        with raw_client.stream("POST", f"{proxy.url}/chat/completions", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                               json={"model": "streamy", "messages": MESSAGES, "stream": True,
                                     "metadata": {"case": "disconnect"}}) as response:
            assert response.status_code == 200
            assert next(response.iter_raw()).startswith(b"data: ")
    fake_upstream.wait_for_disconnect(timeout=10)     # the proxy noticed and closed the upstream

    events, logs = stop_and_read(proxy, events_file)
    cases = by_case(events)
    for case, (status, outcome) in expected.items():
        finals = [e for e in cases[case] if e["kind"] in ("success", "failure")]
        assert [(e["kind"], e["status"]) for e in finals] == [(outcome, status)], (case, finals)
        fns = [e for e in cases[case] if e["kind"] in ("cost", "failure_fn")]
        assert [e["kind"] for e in fns] == ["cost" if outcome == "success" else "failure_fn"], case
    assert not cases["pre-call-rejection"][0]["kwargs"]["additional_args"]["complete_input_dict"]
    assert [e["kind"] for e in cases["timeout"] if e["kind"] == "pre"] == ["pre"]   # it did reach the upstream

    # --log-format json: one structured line per request, the same outcome
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("logger") == "trioproxy.requests"]
    assert sorted((r["metadata"]["case"], r["status_code"]) for r in requests) == \
        sorted((case, status) for case, (status, _) in expected.items())
    assert all(r["key_alias"] and r["key_alias"] != MASTER_KEY for r in requests)
