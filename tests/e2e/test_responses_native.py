"""``POST /v1/responses`` forwarded untranslated to an upstream that serves it (issue #15 item 9).

A real ``trioproxy run`` in front of the strict fake upstream (``/v1/responses`` refuses chat fields,
so a translated body would be a 400), the official ``openai`` client. Deployments opt in with
``model_info.supported_endpoints``; the decision rules are ``core/responses_native.py``'s.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream
from support.proxy_process import ProxyProcess, write_config

HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}
NATIVE = {"supported_endpoints": ["/v1/chat/completions", "/v1/responses"]}
PRICES = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}

HOOKS = '''
import json, os
from trioproxy import CustomGuardrail, CustomLogger

class EditInput(CustomLogger):
    handles_responses_api = True      # reads Responses bodies: native requests keep it

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        with open(os.environ["SEEN_FILE"], "a") as f:
            f.write(json.dumps({"call_type": call_type, "input": data.get("input"),
                                "messages": data.get("messages")}) + "\\n")
        if data.get("input") == "canned please":
            return "a canned answer"
        if isinstance(data.get("input"), str):
            data["input"] = data["input"].replace("secret", "[masked]")
        return data

class Words(CustomGuardrail):
    """apply_guardrail only: reads the texts of input (pre_call) or races the upstream (during_call)."""
    async def apply_guardrail(self, inputs, request_data, input_type, logging_obj=None):
        if any("forbidden" in t for t in inputs["texts"]):
            raise ValueError("forbidden word")
        if any("stopnow" in t for t in inputs["texts"]) and self.event_hook == "during_call":
            raise ValueError("moderation says stop")
        if any("stoplater" in t for t in inputs["texts"]) and self.event_hook == "during_call":
            # rejects once the test saw the upstream stream bytes (a file it creates then)
            import trio
            while not await trio.Path(os.environ["GO_FILE"]).exists():
                await trio.sleep(0.01)
            raise ValueError("moderation says stop, later")
        return inputs

class Answers(CustomGuardrail):
    """apply_guardrail only, post_call: rewrites a plain answer, blocks a BLOCKED one."""
    async def apply_guardrail(self, inputs, request_data, input_type, logging_obj=None):
        if input_type == "response":
            if any("BLOCKED" in t for t in inputs["texts"]):
                raise ValueError("the answer is blocked")
            return {"texts": [t.replace("fake", "[redacted]") for t in inputs["texts"]]}
        return inputs

class ChatOnly(CustomGuardrail):
    """Reads messages only: a request naming it is translated, so it sees the text."""
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if "verboten" in json.dumps(data["messages"]):
            raise ValueError("chat-only guardrail saw it")

class Log(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        with open(os.environ["LOG_FILE"], "a") as f:
            f.write(json.dumps({"call_type": kwargs.get("call_type"), "cost": kwargs.get("response_cost"),
                                "model": kwargs.get("model")}) + "\\n")

class MaskLogs(CustomGuardrail):
    async def async_logging_hook(self, kwargs, result, call_type):
        return kwargs, result

edit = EditInput()
log = Log()
'''


def native(fake: FakeUpstream, name: str, upstream: str) -> dict[str, Any]:
    entry = upstream_model(fake, name, upstream, **PRICES)
    entry["model_info"] = NATIVE
    return entry


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("responses-native")
    files = {name: directory / f"{name}.jsonl" for name in ("log", "seen", "go")}
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        config = {
            "model_list": [native(fake, "gpt-n", "up-native"), native(fake, "backup", "up-backup"),
                           native(fake, "broken", "up-broken"), upstream_model(fake, "chat-only", "up-chat")],
            "general_settings": {"master_key": MASTER_KEY},
            "router_settings": {"fallbacks": [{"broken": ["backup"]}]},
            "litellm_settings": {"num_retries": 0, "callbacks": ["hooks.edit", "hooks.log"]},
            "guardrails": [
                {"guardrail_name": "words", "litellm_params": {"guardrail": "hooks.Words", "mode": "pre_call",
                                                               "default_on": True}},
                {"guardrail_name": "moderate", "litellm_params": {"guardrail": "hooks.Words", "mode": "during_call",
                                                                  "default_on": True}},
                {"guardrail_name": "answers", "litellm_params": {"guardrail": "hooks.Answers", "mode": "post_call"}},
                {"guardrail_name": "chat-only", "litellm_params": {"guardrail": "hooks.ChatOnly",
                                                                   "mode": "pre_call"}},
            ],
        }
        path = write_config(directory, config, files={"hooks.py": HOOKS})
        with ProxyProcess(path, env={"LOG_FILE": str(files["log"]), "SEEN_FILE": str(files["seen"]),
                                       "GO_FILE": str(files["go"])}) as proxy:
            yield {"proxy": proxy, "fake": fake, **files}


@pytest.fixture
def ctx(env: dict[str, Any]) -> dict[str, Any]:
    env["fake"].reset()
    env["seen"].write_text("")
    return env


def client(ctx: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=ctx["proxy"].url, api_key=MASTER_KEY, max_retries=0)


def raw_events(ctx: dict[str, Any], **body: Any) -> list[tuple[str, dict[str, Any]]]:
    """(the ``event:`` line, the ``data:`` payload) of each event."""
    out, name = [], ""
    with httpx.stream("POST", f"{ctx['proxy'].url}/responses", headers=HEADERS, timeout=30,
                      json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[len("data: "):])))
    return out


def seen(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ctx["seen"].read_text().splitlines()]


def test_forwarded_untranslated_with_the_deployments_model_and_key(ctx: dict[str, Any]) -> None:
    response = client(ctx).responses.create(model="gpt-n", input="my secret plan", instructions="be brief",
                                            store=True, metadata={"proxy": "only"})
    assert response.output_text == "Hello from the fake upstream."
    assert response.id.startswith("resp_fake")       # the upstream's id: previous_response_id finds it there
    rec = ctx["fake"].requests[-1]
    assert rec.path == "/v1/responses"
    assert rec.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert rec.json == {"model": "up-native", "input": "my [masked] plan", "instructions": "be brief",
                        "store": True}
    assert seen(ctx) == [{"call_type": "aresponses", "input": "my secret plan", "messages": None}]
    assert response.usage.input_tokens > 0


def test_streams_are_relayed_event_by_event(ctx: dict[str, Any]) -> None:
    events = raw_events(ctx, model="gpt-n", input="hello there")
    assert all(name == data["type"] for name, data in events)
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    assert "".join(d["delta"] for n, d in events if n == "response.output_text.delta") == \
        "Hello from the fake upstream."
    sent = ctx["fake"].requests[-1].json
    assert sent["stream"] is True and "stream_options" not in sent and sent["input"] == "hello there"
    llm = client(ctx)
    kinds = [e.type for e in llm.responses.create(model="gpt-n", input="hi", stream=True)]
    assert kinds[-1] == "response.completed"
    with llm.responses.stream(model="gpt-n", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello from the fake upstream." and final.status == "completed"


def test_an_apply_guardrail_guardrail_reads_input_items(ctx: dict[str, Any]) -> None:
    for request in ({"input": "a forbidden request"},
                    {"input": [{"role": "user", "content": [{"type": "input_text", "text": "forbidden"}]}]},
                    {"input": "hi", "instructions": "forbidden"}):
        response = httpx.post(f"{ctx['proxy'].url}/responses", headers=HEADERS, timeout=30,
                              json={"model": "gpt-n", **request})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "guardrail_violation"
    assert ctx["fake"].requests == []


def test_a_post_call_apply_guardrail_reads_the_responses_answer(ctx: dict[str, Any]) -> None:
    llm = client(ctx)
    plain = llm.responses.create(model="gpt-n", input="hi", extra_body={"guardrails": ["answers"]})
    assert plain.output_text == "Hello from the [redacted] upstream."
    assert ctx["fake"].requests[-1].path == "/v1/responses"
    ctx["fake"].set_behavior("up-native", Behavior(content="this answer is BLOCKED"))
    events = raw_events(ctx, model="gpt-n", input="hi", guardrails=["answers"])
    assert [name for name, _ in events[-2:]] == ["error", "response.failed"]
    assert "the answer is blocked" in events[-2][1]["message"]
    assert not any(name == "response.completed" for name, _ in events)


def test_a_chat_only_guardrail_makes_the_request_translated_so_it_sees_the_text(ctx: dict[str, Any]) -> None:
    response = httpx.post(f"{ctx['proxy'].url}/responses", headers=HEADERS, timeout=30,
                          json={"model": "gpt-n", "input": "verboten words", "guardrails": ["chat-only"]})
    assert response.status_code == 400 and "chat-only guardrail saw it" in response.text
    ok = client(ctx).responses.create(model="gpt-n", input="fine", extra_body={"guardrails": ["chat-only"]})
    assert ok.output_text == "Hello from the fake upstream."
    assert ctx["fake"].requests[-1].path == "/v1/chat/completions"
    assert seen(ctx)[-1]["call_type"] == "completion"


def test_a_deployment_without_native_responses_is_translated(ctx: dict[str, Any]) -> None:
    response = client(ctx).responses.create(model="chat-only", input="hi")
    assert response.output_text == "Hello from the fake upstream."
    rec = ctx["fake"].requests[-1]
    assert rec.path == "/v1/chat/completions" and rec.json["messages"] == [{"role": "user", "content": "hi"}]


def test_a_moderation_rejection_cancels_the_upstream(ctx: dict[str, Any]) -> None:
    held = threading.Event()        # never set: the upstream answers only when the proxy lets go
    ctx["fake"].set_behavior("up-native", Behavior(hold=held))
    response = httpx.post(f"{ctx['proxy'].url}/responses", headers=HEADERS, timeout=30,
                          json={"model": "gpt-n", "input": "please stopnow", "stream": True})
    assert response.status_code == 400 and "moderation says stop" in response.text
    assert ctx["fake"].wait_for_disconnect().path == "/v1/responses"


def test_a_moderation_rejection_closes_an_upstream_already_streaming(ctx: dict[str, Any]) -> None:
    ctx["go"].unlink(missing_ok=True)
    ctx["fake"].set_behavior("up-native", Behavior(endless=True, chunk_delay=0.01))
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: result.update(response=httpx.post(
        f"{ctx['proxy'].url}/responses", headers=HEADERS, timeout=30,
        json={"model": "gpt-n", "input": "stoplater", "stream": True})))
    thread.start()
    ctx["fake"].wait_for_requests(1)
    rec = ctx["fake"].requests[0]
    ctx["fake"].wait_until(lambda: rec.stream_bytes > 0, what="the upstream streaming")
    ctx["go"].write_text("go")
    thread.join(30)
    assert result["response"].status_code == 400 and "moderation says stop, later" in result["response"].text
    assert ctx["fake"].wait_for_disconnect() is rec


def test_client_hang_up_closes_the_upstream(ctx: dict[str, Any]) -> None:
    ctx["fake"].set_behavior("up-native", Behavior(endless=True, chunk_delay=0.01))
    with httpx.stream("POST", f"{ctx['proxy'].url}/responses", headers=HEADERS, timeout=30,
                      json={"model": "gpt-n", "input": "go on", "stream": True}) as response:
        lines = response.iter_lines()
        while "response.output_text.delta" not in next(lines):
            pass
    assert ctx["fake"].wait_for_disconnect().path == "/v1/responses"


def test_upstream_errors_before_and_after_the_first_byte(ctx: dict[str, Any]) -> None:
    ctx["fake"].set_behavior("up-native", Behavior(status=429, error_message="slow down", error_type="rate_limit"))
    with pytest.raises(openai.RateLimitError) as caught:
        client(ctx).responses.create(model="gpt-n", input="hi")
    assert UPSTREAM_KEY not in str(caught.value.body)
    ctx["fake"].set_behavior("up-native", Behavior(content="cut short here", chunks=3, stream_end="close"))
    events = raw_events(ctx, model="gpt-n", input="hi")
    assert [name for name, _ in events[-2:]] == ["error", "response.failed"]
    error, failed = events[-2][1], events[-1][1]
    assert error["code"] == "upstream_stream_interrupted"
    assert failed["response"]["status"] == "failed" and failed["response"]["error"]["code"] == "server_error"
    assert failed["sequence_number"] == error["sequence_number"] + 1 > events[-3][1]["sequence_number"]


def test_fallback_to_another_native_group_before_the_first_byte(ctx: dict[str, Any]) -> None:
    ctx["fake"].set_behavior("up-broken", Behavior(status=500, error_message="down"))
    response = client(ctx).responses.create(model="broken", input="hi")
    assert response.output_text == "Hello from the fake upstream."
    assert [r.json["model"] for r in ctx["fake"].requests] == ["up-broken", "up-backup"]
    # a stream whose first event is an error event has sent the client nothing: it falls back too
    ctx["fake"].reset()
    ctx["fake"].set_behavior("up-broken", Behavior(error_in_200={"type": "error", "code": "server_error",
                                                                 "message": "overloaded", "sequence_number": 0}))
    events = raw_events(ctx, model="broken", input="hi")
    assert events[-1][0] == "response.completed"
    assert [r.json["model"] for r in ctx["fake"].requests] == ["up-broken", "up-backup"]


def test_a_pre_call_string_is_a_responses_answer(ctx: dict[str, Any]) -> None:
    response = client(ctx).responses.create(model="gpt-n", input="canned please")
    assert response.output_text == "a canned answer" and response.object == "response"
    events = raw_events(ctx, model="gpt-n", input="canned please")
    assert "".join(d["delta"] for n, d in events if n == "response.output_text.delta") == "a canned answer"
    assert events[-1][0] == "response.completed"
    assert ctx["fake"].requests == []


def test_an_upstream_echoing_the_key_never_shows_it(ctx: dict[str, Any]) -> None:
    ctx["fake"].set_behavior("up-native", Behavior(status=401, error_message="bad key {key}", echo=True,
                                                   error_code="invalid_api_key"))
    response = httpx.post(f"{ctx['proxy'].url}/responses", headers=HEADERS, timeout=30,
                          json={"model": "gpt-n", "input": "hi"})
    assert response.status_code == 401 and set(response.json()["error"]) >= {"message", "type", "param", "code"}
    assert UPSTREAM_KEY not in response.text


def test_logged_with_call_type_aresponses_and_cost_from_responses_usage(start_proxy: Any, tmp_path: Any) -> None:
    log_file = tmp_path / "log.jsonl"
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        proxy = start_proxy({"model_list": [native(fake, "gpt-n", "up-native")],
                             "general_settings": {"master_key": MASTER_KEY},
                             "litellm_settings": {"callbacks": ["hooks.log"]}},
                            files={"hooks.py": HOOKS}, env={"LOG_FILE": str(log_file), "SEEN_FILE": "/dev/null"})
        with proxy:
            llm = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)
            plain = llm.responses.create(model="gpt-n", input="log me")
            list(llm.responses.create(model="gpt-n", input="log me too", stream=True))
            proxy.terminate()   # drains the logging queue
    rows = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [r["call_type"] for r in rows] == ["aresponses", "aresponses"]
    usage = plain.usage
    assert rows[0]["cost"] == pytest.approx(usage.input_tokens * 0.001 + usage.output_tokens * 0.002)
    assert rows[1]["cost"] > 0


def test_spend_is_recorded_once_from_the_responses_usage_sqlite(tmp_path: Any) -> None:
    """With a database (SQLite file): a virtual key's native requests are admitted, recorded once each
    under the request's id (``x-litellm-call-id``; the body keeps the upstream's ``resp_…`` id), with
    the cost of the Responses usage, and counted in the key's spend."""
    from support.keys_support import UPSTREAM_KEY as SPEND_UPSTREAM_KEY
    from support.keys_support import Api, make_database
    from support.spend_support import INPUT_PRICE, OUTPUT_PRICE, rows_of, spend_config, wait_for

    database = make_database("sqlite", tmp_path / "db", None)
    with FakeUpstream(api_key=SPEND_UPSTREAM_KEY) as fake:
        config = spend_config(fake, database.url)
        config["model_list"][0]["model_info"] = NATIVE     # gpt-test (upstream up-model): native
        with ProxyProcess(write_config(tmp_path / "proxy", config)) as proxy:
            api = Api(proxy)
            made = api.new_key()
            ids, costs = [], []
            for stream in (False, True):
                body = {"model": "gpt-test", "input": "count me please", "stream": stream}
                answer = api.post("/v1/responses", body, key=made["key"])
                assert answer.status_code == 200, answer.text
                assert fake.requests[-1].path == "/v1/responses"
                ids.append(answer.headers["x-litellm-call-id"])
                usage = answer.json()["usage"] if not stream else \
                    json.loads(answer.text.strip().split("data: ")[-1])["response"]["usage"]
                costs.append(usage["input_tokens"] * INPUT_PRICE + usage["output_tokens"] * OUTPUT_PRICE)
            for request_id, cost in zip(ids, costs, strict=True):
                (row,) = wait_for(lambda rid=request_id: rows_of(api, request_id=rid), what="the record")
                assert (row["status"], row["api_key"], row["call_type"]) == ("success", made["token"], "aresponses")
                assert row["spend"] == pytest.approx(cost)
                assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
            wait_for(lambda: api.ok(api.get("/key/info", {"key": made["key"]}))["info"]["spend"]
                     == pytest.approx(sum(costs)), what="the key's spend: both answers, each once")
            api.close()
    database.drop()


def test_a_logging_only_guardrail_makes_requests_translated(start_proxy: Any) -> None:
    """It masks the logged ``messages`` and chat answers: a native body would reach the loggers unmasked."""
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        proxy = start_proxy({"model_list": [native(fake, "gpt-n", "up-native")],
                             "general_settings": {"master_key": MASTER_KEY},
                             "guardrails": [{"guardrail_name": "mask", "litellm_params": {
                                 "guardrail": "hooks.MaskLogs", "mode": "logging_only"}}]},
                            files={"hooks.py": HOOKS}, env={"LOG_FILE": "/dev/null", "SEEN_FILE": "/dev/null"})
        with proxy:
            llm = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)
            assert llm.responses.create(model="gpt-n", input="hi").output_text == "Hello from the fake upstream."
            assert [r.path for r in fake.requests] == ["/v1/chat/completions"]
