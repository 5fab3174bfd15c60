"""Every row of the hook table, non-streaming and streaming, through a real server and socket.

One ``trioproxy run`` process serves all scenarios: three handlers (A, B, C, in config order)
react to markers in the last user message and record every call ("A:pre_call") in a JSON-lines
file, so tests can assert both what the client got and the order the hooks ran in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess, write_config

SCENARIO_HANDLERS = r'''
import json, os
import trioproxy
from trioproxy import CustomLogger, HTTPException

LOG = os.environ["HOOK_LOG"]

def record(name, phase, data):
    marker = ""
    for message in (data or {}).get("messages") or []:
        if isinstance(message.get("content"), str):
            marker = message["content"]
    with open(LOG, "a") as f:
        f.write(json.dumps({"handler": name, "phase": phase, "prompt": marker}) + "\n")

def prompt(data):
    messages = (data or {}).get("messages") or []
    return messages[-1].get("content", "") if messages else ""


class Scenario(CustomLogger):
    def __init__(self, name):
        self.name = name

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        record(self.name, "pre_call", data)
        text = prompt(data)
        if self.name == "A":
            if "[reject-string]" in text:
                return "Sorry, I cannot help with that."
            if "[reject-exception]" in text:
                return ValueError("rejected by A")
            if "[raise-http]" in text:
                raise HTTPException(status_code=418, detail="A is a teapot")
            if "[crash-pre]" in text:
                raise RuntimeError("A crashed")
            if "[context-window]" in text:
                raise trioproxy.ContextWindowExceededError(message="prompt too long", model="x", llm_provider="openai")
            if "[replace-data]" in text:
                new = dict(data)
                new["messages"] = [{"role": "user", "content": "replaced by A"}]
                return new
        if self.name == "B" and text == "replaced by A":
            # B sees A's data
            data["messages"][0]["content"] += " then B"
        return None

    async def async_moderation_hook(self, data, user_api_key_dict, call_type):
        record(self.name, "moderation", data)
        if self.name == "B" and "[moderate-after-flag]" in prompt(data):
            # reject only once the test saw the request arrive upstream (deterministic race)
            import trio
            while not os.path.exists(LOG + ".flag"):
                await trio.sleep(0.01)
            raise HTTPException(status_code=400, detail="B says no")
        if self.name == "B" and "[moderate]" in prompt(data):
            raise HTTPException(status_code=400, detail="B says no")
        data["messages"] = []   # moderation cannot change what is sent

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        record(self.name, "post_call_success", data)
        text = prompt(data)
        if "[post-replace]" in text and self.name == "A" and response.get("object") == "chat.completion":
            response.choices[0].message.content = "rewritten by A"
            return response
        if "[post-replace]" in text and self.name == "B" and response.get("object") == "chat.completion":
            # B sees A's replacement
            response.choices[0].message.content += " and B"
            return response
        if "[post-raise]" in text and self.name == "C":
            raise HTTPException(status_code=422, detail="C rejects the answer")
        return None

    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        with open(LOG, "a") as f:
            f.write(json.dumps({"handler": self.name, "phase": "post_call_streaming"}) + "\n")
        choices = response.get("choices") or []
        if self.name == "A" and choices and "delta" in choices[0]:
            content = choices[0]["delta"].get("content")
            if isinstance(content, str) and content.strip() == "BOOM":
                raise ValueError("chunk hook failed")
            if isinstance(content, str):
                choices[0]["delta"]["content"] = content.replace("secret", "[hidden]")
                return response
        return None

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        record(self.name, "streaming_iterator", request_data)
        async for item in response:
            for choice in item.get("choices") or []:
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str) and "[tag-stream]" in prompt(request_data):
                    delta["content"] = delta["content"] + self.name
            yield item

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict,
                                           traceback_str=None):
        record(self.name, "failure", request_data)
        with open(LOG, "a") as f:
            f.write(json.dumps({"handler": self.name, "phase": "failure_exception",
                                "type": type(original_exception).__name__}) + "\n")
        text = prompt(request_data)
        if "[fail-transform]" in text and self.name == "B":
            return HTTPException(status_code=503, detail="Friendly: please retry later")
        if "[fail-transform]" in text and self.name == "C":
            return HTTPException(status_code=500, detail="C is too late: B already replaced the error")
        if "[context-window]" in text and self.name == "B":
            if isinstance(original_exception, trioproxy.ContextWindowExceededError):
                return HTTPException(status_code=400, detail="Your prompt is too long.")
        if self.name == "A":
            raise RuntimeError("a broken failure hook is logged and ignored")
        return None

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None):
        record(self.name, "response_headers", data)
        if self.name == "B":
            raise RuntimeError("B's headers hook is broken")
        return {"x-from": self.name, f"x-{self.name.lower()}": "yes",
                "x-saw-client-header": (request_headers or {}).get("x-client", "")}


handler_a = Scenario("A")
handler_b = Scenario("B")
handler_c = Scenario("C")
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    directory = tmp_path_factory.mktemp("hooks")
    log = directory / "hooks.jsonl"
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        config = {
            "model_list": [
                {"model_name": "gpt-test", "litellm_params": {"model": "openai/up-model", "api_base": fake.base_url,
                                                              "api_key": UPSTREAM_KEY}},
                {"model_name": "gpt-error", "litellm_params": {"model": "openai/up-error", "api_base": fake.base_url,
                                                               "api_key": UPSTREAM_KEY}},
            ],
            "litellm_settings": {"callbacks": ["scenarios.handler_a", "scenarios.handler_b", "scenarios.handler_c"],
                                 "num_retries": 0},
            "general_settings": {"master_key": MASTER_KEY},
        }
        path = write_config(directory, config, files={"scenarios.py": SCENARIO_HANDLERS})
        with ProxyProcess(path, env={"HOOK_LOG": str(log)}) as proxy:
            yield {"proxy": proxy, "fake": fake, "log": log}
        assert not fake.errors


@pytest.fixture
def ctx(env: dict) -> dict:
    env["log"].write_text("")
    env["fake"].reset()
    return env


def records(ctx: dict, phase: str | None = None) -> list[dict]:
    lines = [json.loads(line) for line in Path(ctx["log"]).read_text().splitlines() if line]
    return [r for r in lines if phase is None or r["phase"] == phase]


def order(ctx: dict, phase: str) -> list[str]:
    return [r["handler"] for r in records(ctx, phase)]


def client(ctx: dict) -> openai.OpenAI:
    return openai.OpenAI(base_url=ctx["proxy"].url, api_key=MASTER_KEY, max_retries=0)


def post(ctx: dict, content: str, model: str = "gpt-test", **extra) -> httpx.Response:
    return httpx.post(f"{ctx['proxy'].url}/chat/completions",
                      json={"model": model, "messages": [{"role": "user", "content": content}], **extra},
                      headers={"authorization": f"Bearer {MASTER_KEY}", "x-client": "hello"}, timeout=30)


def stream_events(ctx: dict, content: str, model: str = "gpt-test") -> tuple[httpx.Response, list]:
    events = []
    with httpx.stream("POST", f"{ctx['proxy'].url}/chat/completions",
                      json={"model": model, "stream": True, "messages": [{"role": "user", "content": content}]},
                      headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=30) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        for line in response.iter_lines():
            if line.startswith("data: "):
                payload = line[6:]
                events.append("[DONE]" if payload == "[DONE]" else json.loads(payload))
    return response, events


def stream_text(events: list) -> str:
    return "".join((e["choices"][0].get("delta") or {}).get("content") or ""
                   for e in events if isinstance(e, dict) and e.get("choices"))


# -- the order of every phase -------------------------------------------------------------------

def test_success_runs_every_phase_in_config_order(ctx):
    response = post(ctx, "plain request")
    assert response.status_code == 200
    for phase in ("pre_call", "post_call_success", "response_headers"):
        assert order(ctx, phase) == ["A", "B", "C"], phase
    # moderation hooks run concurrently (racing the upstream): each once, in no promised order
    assert sorted(order(ctx, "moderation")) == ["A", "B", "C"]
    assert records(ctx, "failure") == []
    phases = [r["phase"] for r in records(ctx)]
    # pre-call before moderation, post-call before headers
    assert phases.index("pre_call") < phases.index("moderation")
    assert max(i for i, p in enumerate(phases) if p == "post_call_success") < phases.index("response_headers")


def test_stream_runs_iterators_and_chunk_hooks_in_order(ctx):
    ctx["fake"].set_behavior("up-model", Behavior(content="one two three"))
    response, events = stream_events(ctx, "[tag-stream] go")
    assert response.status_code == 200
    assert events[-1] == "[DONE]"
    # each iterator wraps the previous one's output in config order: every item passes A, then B,
    # then C (the role chunk's empty content becomes "ABC"). The generators *start* outermost
    # first (C pulls from B pulls from A), so their start records read C, B, A.
    assert stream_text(events) == "ABConeABC twoABC threeABC"
    assert order(ctx, "streaming_iterator") == ["C", "B", "A"]
    assert order(ctx, "post_call_success") == ["A", "B", "C"]      # once, with the assembled answer
    assert order(ctx, "response_headers") == ["A", "B", "C"]
    per_chunk = order(ctx, "post_call_streaming")
    assert per_chunk[:3] == ["A", "B", "C"] and len(per_chunk) % 3 == 0


# -- pre-call -----------------------------------------------------------------------------------

def test_pre_call_string_answers_chat_with_200(ctx):
    answer = client(ctx).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "[reject-string]"}])
    assert answer.choices[0].message.content == "Sorry, I cannot help with that."
    assert answer.object == "chat.completion"
    assert ctx["fake"].requests == []                                # nothing went upstream
    assert order(ctx, "pre_call") == ["A"]                            # the chain stops at A


def test_pre_call_string_streams_as_chunks(ctx):
    chunks = list(client(ctx).chat.completions.create(
        model="gpt-test", stream=True, messages=[{"role": "user", "content": "[reject-string]"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Sorry, I cannot help with that."


def test_pre_call_string_answers_text_completion(ctx):
    answer = client(ctx).completions.create(model="gpt-test", prompt="x")
    assert answer.object == "text_completion"
    # (no marker: a normal answer) — now with the marker
    marker = httpx.post(f"{ctx['proxy'].url}/completions",
                        json={"model": "gpt-test", "prompt": "[reject-string]",
                              "messages": [{"role": "user", "content": "[reject-string]"}]},
                        headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert marker.status_code == 200
    assert marker.json()["choices"][0]["text"] == "Sorry, I cannot help with that."


def test_pre_call_string_on_embeddings_is_a_400(ctx):
    response = httpx.post(f"{ctx['proxy'].url}/embeddings",
                          json={"model": "gpt-test", "input": "x",
                                "messages": [{"role": "user", "content": "[reject-string]"}]},
                          headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Sorry, I cannot help with that."


def test_pre_call_returned_exception_rejects_with_400(ctx):
    response = post(ctx, "[reject-exception]")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "rejected by A"
    assert order(ctx, "failure") == ["A", "B", "C"]


def test_pre_call_http_exception_keeps_its_status(ctx):
    response = post(ctx, "[raise-http]")
    assert response.status_code == 418
    assert response.json()["error"]["message"] == "A is a teapot"


def test_pre_call_crash_is_a_500_naming_handler_and_phase(ctx):
    response = post(ctx, "[crash-pre]")
    assert response.status_code == 500
    error = response.json()["error"]
    assert "scenarios.handler_a" in error["message"] and "async_pre_call_hook" in error["message"]
    assert "Traceback" not in response.text
    assert order(ctx, "failure") == ["A", "B", "C"]
    # failure hooks see the handler's own exception, not the proxy's wrapper
    assert {r["type"] for r in records(ctx, "failure_exception")} == {"RuntimeError"}


def test_pre_call_replaced_data_chains_and_reaches_upstream(ctx):
    response = post(ctx, "[replace-data]")
    assert response.status_code == 200
    sent = ctx["fake"].requests[0].json
    assert sent["messages"] == [{"role": "user", "content": "replaced by A then B"}]
    assert sent["model"] == "up-model"


# -- moderation ---------------------------------------------------------------------------------

def test_moderation_rejection_is_the_answer(ctx):
    response = post(ctx, "[moderate]")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "B says no"


def test_moderation_rejection_closes_the_upstream_connection(ctx):
    import threading

    ctx["fake"].set_behavior("up-model", Behavior(delay=30))
    flag = Path(str(ctx["log"]) + ".flag")
    flag.unlink(missing_ok=True)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", post(ctx, "[moderate-after-flag]")))
    thread.start()
    ctx["fake"].wait_for_requests(1, timeout=10)      # the upstream is now generating
    flag.write_text("reject now")
    thread.join(timeout=30)
    flag.unlink()
    assert result["r"].status_code == 400
    request = ctx["fake"].wait_for_disconnect(timeout=10)     # the upstream request was abandoned
    assert request.client_disconnected_early and not request.completed


def test_moderation_cannot_change_what_is_sent(ctx):
    response = post(ctx, "keep my message")
    assert response.status_code == 200
    assert ctx["fake"].requests[0].json["messages"] == [{"role": "user", "content": "keep my message"}]


def test_moderation_rejects_a_stream_before_any_byte(ctx):
    ctx["fake"].set_behavior("up-model", Behavior(delay=10))
    response, events = stream_events(ctx, "[moderate]")
    assert response.status_code == 400 and events == []
    assert response.json()["error"]["message"] == "B says no"


# -- post-call ----------------------------------------------------------------------------------

def test_post_call_replacements_chain(ctx):
    answer = client(ctx).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "[post-replace]"}])
    assert answer.choices[0].message.content == "rewritten by A and B"


def test_post_call_raise_fails_the_call(ctx):
    response = post(ctx, "[post-raise]")
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "C rejects the answer"
    assert order(ctx, "failure") == ["A", "B", "C"]


def test_post_call_raise_on_stream_ends_with_error_event(ctx):
    response, events = stream_events(ctx, "[post-raise]")
    assert response.status_code == 200                     # the status line was already sent
    assert "[DONE]" not in events
    assert events[-1]["error"]["message"] == "C rejects the answer"
    assert order(ctx, "failure") == ["A", "B", "C"]


# -- per-chunk hooks ----------------------------------------------------------------------------

def test_chunk_hook_replaces_chunks(ctx):
    ctx["fake"].set_behavior("up-model", Behavior(content="my secret plan"))
    _, events = stream_events(ctx, "tell me")
    assert stream_text(events) == "my [hidden] plan"


def test_chunk_hook_raise_ends_stream_with_error_event(ctx):
    ctx["fake"].set_behavior("up-model", Behavior(content="fine BOOM never"))
    response, events = stream_events(ctx, "tell me")
    assert response.status_code == 200
    assert stream_text(events) == "fine"
    assert "[DONE]" not in events
    assert "scenarios.handler_a" in events[-1]["error"]["message"]


# -- failure ------------------------------------------------------------------------------------

def test_failure_hooks_first_http_exception_wins(ctx):
    ctx["fake"].set_behavior("up-error", Behavior(status=500, error_message="ugly provider error"))
    response = post(ctx, "[fail-transform]", model="gpt-error")
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "Friendly: please retry later"
    assert order(ctx, "failure") == ["A", "B", "C"]            # every failure hook ran, exactly once


def test_failure_hook_transforms_context_window_error(ctx):
    response = post(ctx, "[context-window]")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Your prompt is too long."
    assert {r["type"] for r in records(ctx, "failure_exception")} == {"ContextWindowExceededError"}


def test_failure_transform_applies_to_streams_before_first_byte(ctx):
    ctx["fake"].set_behavior("up-error", Behavior(status=500))
    response, events = stream_events(ctx, "[fail-transform]", model="gpt-error")
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "Friendly: please retry later"


def test_upstream_error_without_transform_is_relayed(ctx):
    ctx["fake"].set_behavior("up-error", Behavior(status=429, error_message="slow down", error_type="rate_limit"))
    response = post(ctx, "plain", model="gpt-error")
    assert response.status_code == 429
    assert "slow down" in response.json()["error"]["message"]
    assert order(ctx, "failure") == ["A", "B", "C"]


# -- response headers ---------------------------------------------------------------------------

def test_headers_merge_in_order_and_survive_a_broken_handler(ctx):
    response = post(ctx, "plain")
    assert response.headers["x-from"] == "C"                     # later handlers win
    assert response.headers["x-a"] == "yes" and response.headers["x-c"] == "yes"   # B raised; A and C kept
    assert response.headers["x-saw-client-header"] == "hello"
    assert order(ctx, "response_headers") == ["A", "B", "C"]


def test_headers_on_failure_and_on_streams(ctx):
    failed = post(ctx, "[raise-http]")
    assert failed.status_code == 418 and failed.headers["x-from"] == "C"
    with httpx.stream("POST", f"{ctx['proxy'].url}/chat/completions",
                      json={"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
                      headers={"authorization": f"Bearer {MASTER_KEY}"}) as streamed:
        assert streamed.headers["x-from"] == "C"                 # before the first chunk
        streamed.read()
    assert order(ctx, "response_headers") == ["A", "B", "C", "A", "B", "C"]


# -- disconnect ---------------------------------------------------------------------------------

def test_disconnect_mid_stream_runs_failure_hooks_once_and_closes_upstream(ctx):
    ctx["fake"].set_behavior("up-model", Behavior(content="a b c d e f g h", chunk_delay=0.5))
    with httpx.stream("POST", f"{ctx['proxy'].url}/chat/completions",
                      json={"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "go"}]},
                      headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                break                                               # one chunk, then hang up
    request = ctx["fake"].wait_for_disconnect(timeout=10)
    assert request.client_disconnected_early
    # the failure hooks run once each, with a client-disconnected error, right after the upstream
    # was closed: wait for them (a bounded wait for a condition, not a timed assertion)
    import time

    deadline = time.monotonic() + 20
    while len(records(ctx, "failure")) < 3 and time.monotonic() < deadline:
        httpx.get(f"{ctx['proxy'].base_url}/health/liveliness")
    assert order(ctx, "failure") == ["A", "B", "C"]
    assert {r["type"] for r in records(ctx, "failure_exception")} == {"ClientDisconnectedError"}
    assert order(ctx, "post_call_success") == []


# -- loading ------------------------------------------------------------------------------------

BROKEN = {
    "missing_module.yaml": ("nothere.handler", "cannot find module 'nothere'"),
    "syntax.yaml": ("broken_syntax.handler", "SyntaxError"),
    "import_error.yaml": ("broken_import.handler", "ModuleNotFoundError"),
    "attribute.yaml": ("good.proxy_handler_instanc", "did you mean 'proxy_handler_instance'"),
    "misspelt.yaml": ("misspelt.proxy_handler_instance", "did you mean 'async_pre_call_hook'"),
    "sync.yaml": ("sync_hook.proxy_handler_instance", "must be 'async def'"),
}
BROKEN_FILES = {
    "broken_syntax.py": "def handler(:\n    pass\n",
    "broken_import.py": "import does_not_exist_anywhere\nhandler = 1\n",
    "good.py": "from trioproxy import CustomLogger\nproxy_handler_instance = CustomLogger()\n",
    "misspelt.py": ("from trioproxy import CustomLogger\nclass H(CustomLogger):\n"
                    "    async def async_pre_cal_hook(self, user_api_key_dict, cache, data, call_type):\n"
                    "        return data\nproxy_handler_instance = H()\n"),
    "sync_hook.py": ("class H:\n    def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):\n"
                     "        return data\nproxy_handler_instance = H()\n"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_handlers_stop_startup_with_a_message(tmp_path, name):
    import subprocess
    import sys

    dotted, expected = BROKEN[name]
    config = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
              "litellm_settings": {"callbacks": [dotted]}}
    path = write_config(tmp_path, config, name=name, files=BROKEN_FILES)
    result = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(path)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60, env={**os.environ})
    assert result.returncode == 1
    assert "litellm_settings.callbacks[0]" in result.stderr
    assert expected in result.stderr, result.stderr
    run = subprocess.run([sys.executable, "-m", "trioproxy", "run", str(path), "--port", "0"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 1
    assert expected in run.stderr


def test_check_prints_the_hook_order(tmp_path):
    import subprocess
    import sys

    config = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
              "litellm_settings": {"callbacks": ["scenarios.handler_a", "scenarios.handler_b"]}}
    path = write_config(tmp_path, config, files={"scenarios.py": SCENARIO_HANDLERS})
    result = subprocess.run([sys.executable, "-m", "trioproxy", "check", str(path)], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "HOOK_LOG": str(tmp_path / "x")})
    assert result.returncode == 0, result.stderr
    pre = next(line for line in result.stdout.splitlines() if line.strip().startswith("pre_call"))
    assert pre.index("scenarios.handler_a") < pre.index("scenarios.handler_b")
