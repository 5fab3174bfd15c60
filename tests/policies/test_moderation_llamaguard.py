"""``llamaguard_moderations`` through a real ``trioproxy run``, the guard model served by the fake upstream.

The guard is an ordinary ``model_list`` entry (``llama-guard``) whose OpenAI-compatible server is the
same fake upstream as the main model; the tests script its answer per request (``safe``, ``unsafe``
with category codes, an error) and read exactly what the proxy sent it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess, write_config

HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}
CATEGORIES = "O1: Violence and Hate.\nShould not\n- Help people plan or engage in violence.\nO7: Cooking.\n"


def config(fake: FakeUpstream, **settings: Any) -> dict[str, Any]:
    guard = upstream_model(fake, "llama-guard", "guard-upstream", input_cost_per_token=0.000001,
                           output_cost_per_token=0.000002)
    return {"model_list": [upstream_model(fake, "gpt-test", "up-model"), guard],
            "general_settings": {"master_key": MASTER_KEY},
            "litellm_settings": {"num_retries": 0, "callbacks": ["llamaguard_moderations"],
                                 "llamaguard_model_name": "llama-guard", **settings}}


def chat(proxy: ProxyProcess, *messages: tuple[str, str], **extra: Any) -> httpx.Response:
    body = {"model": "gpt-test", "messages": [{"role": r, "content": c} for r, c in messages], **extra}
    return httpx.post(f"{proxy.url}/chat/completions", headers=HEADERS, json=body, timeout=30)


def guard_requests(fake: FakeUpstream) -> list[Any]:
    return [r for r in fake.requests if (r.json or {}).get("model") == "guard-upstream"]


def request_records(proxy: ProxyProcess) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in proxy.logs().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "trioproxy.requests"]


def test_safe_prompt_passes_and_the_guard_call_is_logged_with_the_request(
        fake_upstream: FakeUpstream, start_proxy: Callable[..., ProxyProcess]) -> None:
    fake_upstream.set_behavior("guard-upstream", Behavior(content="safe"))
    proxy = start_proxy(config(fake_upstream), args=["--log-format", "json"])
    response = chat(proxy, ("system", "Be helpful"), ("user", "How do I bake bread?"))
    assert response.status_code == 200, response.text
    [guard] = guard_requests(fake_upstream)
    assert guard.path == "/v1/chat/completions"
    assert guard.json["messages"] == [{"role": "user", "content": "How do I bake bread?"}]   # the last message
    assert guard.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert proxy.terminate() == 0
    [record] = [r for r in request_records(proxy) if r.get("model") == "gpt-test"]
    logged = record["metadata"]["llamaguard_moderations"]
    assert logged["verdict"] == "safe" and logged["categories"] == []
    assert logged["model"] == "llama-guard" and "guard-upstream" in logged["deployment"]
    assert logged["prompt_tokens"] == 5 and logged["completion_tokens"] == 1     # the fake counts words
    assert logged["response_cost"] == 5 * 0.000001 + 1 * 0.000002
    assert logged["latency_seconds"] >= 0
    assert any(h["handler"] == "llamaguard_moderations" and h["phase"] == "moderation"
               for h in record["timings"]["hooks"])


def test_unsafe_answer_rejects_with_the_categories(fake_upstream: FakeUpstream,
                                                   start_proxy: Callable[..., ProxyProcess]) -> None:
    fake_upstream.set_behavior("guard-upstream", Behavior(content="  unsafe\n  S1,S10"))
    proxy = start_proxy(config(fake_upstream))
    response = chat(proxy, ("user", "something harmful"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "guardrail_violation"
    assert error["message"] == "Violated content safety policy (llamaguard_moderations: unsafe categories S1, S10)"
    metrics = httpx.get(f"{proxy.base_url}/metrics", headers=HEADERS, timeout=30).text
    assert 'trioproxy_guardrail_rejections_total{guardrail="llamaguard_moderations"} 1.0' in metrics


def test_the_categories_file_is_in_the_prompt_sent_to_the_guard(fake_upstream: FakeUpstream,
                                                                start_proxy: Callable[..., ProxyProcess]) -> None:
    fake_upstream.set_behavior("guard-upstream", Behavior(content="unsafe\nO7"))
    proxy = start_proxy(config(fake_upstream, llamaguard_unsafe_content_categories="categories.txt"),
                        files={"categories.txt": CATEGORIES})
    response = chat(proxy, ("user", "first turn"), ("assistant", "ok"), ("user", "Give me a recipe"))
    assert response.status_code == 400 and "unsafe categories O7" in response.json()["error"]["message"]
    [guard] = guard_requests(fake_upstream)
    assert guard.path == "/v1/completions"          # raw prompt: no chat template wraps it again
    prompt = guard.json["prompt"]
    assert prompt.startswith("[INST] Task: Check if there is unsafe content in 'User' messages")
    assert f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{CATEGORIES.strip()}\n<END UNSAFE CONTENT CATEGORIES>" in prompt
    assert "User: Give me a recipe" in prompt and "first turn" not in prompt


def test_guard_outage_fails_closed_unless_fail_open(fake_upstream: FakeUpstream,
                                                    start_proxy: Callable[..., ProxyProcess]) -> None:
    fake_upstream.set_behavior("guard-upstream", Behavior(status=500, error_message="guard crashed"))
    closed = start_proxy(config(fake_upstream))
    response = chat(closed, ("user", "hello"))
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "guardrail_unavailable"
    assert "'llamaguard_moderations'" in error["message"] and "HTTP 500" in error["message"]
    opened = start_proxy(config(fake_upstream, llamaguard_fail_open=True))
    assert chat(opened, ("user", "hello")).status_code == 200
    assert "request let through (llamaguard_fail_open: true)" in opened.logs()
    fake_upstream.set_behavior("guard-upstream", Behavior(content="I think this is fine"))
    assert chat(closed, ("user", "hello")).status_code == 503   # not a Llama Guard answer: no verdict


def test_the_guard_model_must_be_in_the_model_list(fake_upstream: FakeUpstream, tmp_path: Any) -> None:
    raw = config(fake_upstream, llamaguard_model_name="sagemaker/jumpstart-dft-meta-textgeneration-llama-guard-7b")
    path = write_config(tmp_path, raw)
    done = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert ("litellm_settings.llamaguard_model_name 'sagemaker/jumpstart-dft-meta-textgeneration-llama-guard-7b' "
            "is not a model_name of model_list (models: gpt-test, llama-guard)") in done.stderr
