"""A real ``trioproxy run`` process between the official ``openai`` package and a fake upstream.

One proxy and one fake upstream serve the whole module (a process costs about a second); each
scenario has its own model name, scripted at the fake with ``fake.set_behavior``. The test that
stops the shared proxy with SIGTERM is the last one of the module.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_upstream import Behavior, FakeUpstream, RecordedRequest, fake_embedding
from support.proxy_process import ProxyProcess, write_config

CONTENT = "The quick brown fox jumps over the lazy dog."
MASKED_UPSTREAM_KEY = f"{UPSTREAM_KEY[:3]}...{UPSTREAM_KEY[-4:]}"
MESSAGES = [{"role": "user", "content": "Say something"}]

#: every response body any test of this module received, for the leak check
BODIES: list[str] = []


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deployment_at(port: int, model_name: str, upstream_name: str) -> dict[str, Any]:
    return {"model_name": model_name,
            "litellm_params": {"model": f"openai/{upstream_name}", "api_base": f"http://127.0.0.1:{port}/v1",
                               "api_key": UPSTREAM_KEY}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        upstream.set_behavior("*", Behavior(content=CONTENT))
        yield upstream
        assert not upstream.errors, upstream.errors


@pytest.fixture(scope="module")
def proxy(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    dead = closed_port()
    config = {
        "model_list": [
            upstream_model(fake, "chat", "up-chat"),
            upstream_model(fake, "stream", "up-stream"),
            upstream_model(fake, "tools", "up-tools"),
            upstream_model(fake, "text", "up-text"),
            upstream_model(fake, "embed", "up-embed"),
            upstream_model(fake, "async", "up-async"),
            upstream_model(fake, "err-4xx", "up-4xx"),
            upstream_model(fake, "err-ctx", "up-ctx"),
            upstream_model(fake, "err-429", "up-429"),
            upstream_model(fake, "err-5xx", "up-5xx"),
            upstream_model(fake, "err-5xx-stream", "up-5xx-stream"),
            upstream_model(fake, "slow", "up-slow", timeout=0.3),
            upstream_model(fake, "slow-stream", "up-slow-stream", timeout=0.3),
            upstream_model(fake, "hangup", "up-hangup"),
            deployment_at(dead, "refused", "up-refused"),
            upstream_model(fake, "disconnect", "up-disconnect"),
            upstream_model(fake, "lb", "up-lb-a"),
            upstream_model(fake, "lb", "up-lb-b"),
            upstream_model(fake, "lb-dead", "up-lb-live"),
            deployment_at(dead, "lb-dead", "up-lb-dead"),
            upstream_model(fake, "sigterm", "up-sigterm"),
        ],
        "router_settings": {"num_retries": 1},
        "general_settings": {"master_key": MASTER_KEY, "graceful_shutdown_timeout": 60},
    }
    directory = tmp_path_factory.mktemp("proxy")
    process = ProxyProcess(write_config(directory, config))
    yield process
    process.kill()


# -- helpers --------------------------------------------------------------------------------------


def _remember(response: httpx.Response) -> None:
    response.read()
    BODIES.append(response.text)


async def _aremember(response: httpx.Response) -> None:
    await response.aread()
    BODIES.append(response.text)


@pytest.fixture(scope="module")
def http(proxy: ProxyProcess) -> Iterator[httpx.Client]:
    """A plain client with the master key; every response body is kept for the leak check."""
    with httpx.Client(base_url=proxy.url, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30,
                      event_hooks={"response": [_remember]}) as client:
        yield client


class Sent:
    """The JSON bodies the openai client put on the wire."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []

    def hook(self, request: httpx.Request) -> None:
        self.bodies.append(json.loads(request.content) if request.content else None)

    async def ahook(self, request: httpx.Request) -> None:
        self.hook(request)

    @property
    def last(self) -> Any:
        return self.bodies[-1]


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def client(proxy: ProxyProcess, sent: Sent) -> Iterator[openai.OpenAI]:
    http_client = httpx.Client(event_hooks={"request": [sent.hook], "response": [_remember]}, timeout=30)
    with openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, http_client=http_client) as sdk:
        yield sdk


def seen_by_upstream(fake: FakeUpstream, upstream_name: str) -> list[RecordedRequest]:
    return [r for r in fake.requests if isinstance(r.json, dict) and r.json.get("model") == upstream_name]


def last_seen(fake: FakeUpstream, upstream_name: str) -> RecordedRequest:
    records = seen_by_upstream(fake, upstream_name)
    assert records, f"the upstream saw no request for {upstream_name!r}"
    return records[-1]


def assert_forwarded(fake: FakeUpstream, client_body: dict[str, Any], upstream_name: str) -> RecordedRequest:
    """The upstream got exactly the client's JSON, with ``model`` rewritten, and the provider key."""
    record = last_seen(fake, upstream_name)
    assert record.json == {**client_body, "model": upstream_name}
    assert record.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert MASTER_KEY not in json.dumps(record.headers)
    return record


def wait_for_disconnect_of(fake: FakeUpstream, upstream_name: str) -> RecordedRequest:
    """``fake.wait_for_disconnect()`` until the early disconnect of a request for ``upstream_name``."""
    for _ in range(50):
        record = fake.wait_for_disconnect(timeout=10)
        if isinstance(record.json, dict) and record.json.get("model") == upstream_name:
            return record
    raise AssertionError(f"no early disconnect of a request for {upstream_name!r}")


def envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is ``status`` with a well-formed OpenAI error envelope; returns its ``error``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"] not in ("", "None")
    assert isinstance(error["code"], str) and error["code"] not in ("", "None")
    assert error["param"] is None or isinstance(error["param"], str)
    assert "Traceback" not in response.text
    return error


def sse_payloads(raw: str) -> list[str]:
    return [line[len("data: "):] for line in raw.split("\n") if line.startswith("data: ")]


# -- the official SDK, sync ---------------------------------------------------------------------------


def test_chat_completion(client: openai.OpenAI, sent: Sent, fake: FakeUpstream) -> None:
    completion = client.chat.completions.create(model="chat", messages=MESSAGES, temperature=0.3, user="u-1",
                                                max_tokens=20, seed=7)
    assert completion.choices[0].message.content == CONTENT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "up-chat"
    assert completion.usage is not None and completion.usage.completion_tokens == len(CONTENT.split())
    assert sent.last["model"] == "chat"
    assert_forwarded(fake, sent.last, "up-chat")


def test_chat_completion_n_2(client: openai.OpenAI, sent: Sent, fake: FakeUpstream) -> None:
    completion = client.chat.completions.create(model="chat", messages=MESSAGES, n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert all(c.message.content == CONTENT for c in completion.choices)
    assert_forwarded(fake, sent.last, "up-chat")


def test_chat_streaming_with_usage(client: openai.OpenAI, sent: Sent, fake: FakeUpstream) -> None:
    stream = client.chat.completions.create(model="stream", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == CONTENT
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == len(CONTENT.split())
    assert sent.last["stream"] is True
    assert_forwarded(fake, sent.last, "up-stream")


def test_chat_streaming_without_usage(client: openai.OpenAI, sent: Sent, fake: FakeUpstream) -> None:
    chunks = list(client.chat.completions.create(model="stream", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CONTENT
    assert all(c.usage is None for c in chunks), "no usage chunk for a client that did not ask for one"
    assert all(c.choices for c in chunks)
    # the proxy asks the upstream for usage (to account for the request); nothing else differs
    record = last_seen(fake, "up-stream")
    expected = {**sent.last, "model": "up-stream"}
    assert {k: v for k, v in record.json.items() if k != "stream_options"} == expected
    assert record.json["stream_options"] == {"include_usage": True}


def test_chat_streaming_n_2(client: openai.OpenAI, sent: Sent, fake: FakeUpstream) -> None:
    chunks = list(client.chat.completions.create(model="stream", messages=MESSAGES, stream=True, n=2,
                                                 stream_options={"include_usage": True}))
    for index in (0, 1):
        text = "".join(choice.delta.content or "" for c in chunks for choice in c.choices if choice.index == index)
        assert text == CONTENT
    assert_forwarded(fake, sent.last, "up-stream")


TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}]

TOOL_MESSAGES = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21}"},
]


def test_tools_and_unknown_fields_pass_through_untouched(client: openai.OpenAI, sent: Sent,
                                                         fake: FakeUpstream) -> None:
    extra = {"top_k": 5, "vendor_extension": {"nested": [1, 2.5, None, "x"], "flag": False}, "unicode": "héllo ✓"}
    completion = client.chat.completions.create(
        model="tools", messages=TOOL_MESSAGES, tools=TOOLS, tool_choice="auto", parallel_tool_calls=False,
        response_format={"type": "json_object"}, logit_bias={"50256": -100}, stop=["\n\n"], extra_body=extra)
    assert completion.choices[0].message.content == CONTENT
    for key, value in extra.items():
        assert sent.last[key] == value
    record = assert_forwarded(fake, sent.last, "up-tools")
    assert record.json["tools"] == TOOLS
    assert record.json["messages"] == TOOL_MESSAGES


def test_tools_pass_through_when_streaming(client: openai.OpenAI, sent: Sent, fake: FakeUpstream) -> None:
    chunks = list(client.chat.completions.create(
        model="tools", messages=TOOL_MESSAGES, tools=TOOLS, tool_choice={"type": "function",
                                                                         "function": {"name": "get_weather"}},
        stream=True, stream_options={"include_usage": True}, extra_body={"vendor_extension": {"a": 1}}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CONTENT
    assert_forwarded(fake, sent.last, "up-tools")


def test_text_completion(client: openai.OpenAI, sent: Sent, fake: FakeUpstream) -> None:
    completion = client.completions.create(model="text", prompt="Once upon a time", max_tokens=16, echo=False)
    assert completion.object == "text_completion"
    assert completion.choices[0].text == CONTENT
    assert_forwarded(fake, sent.last, "up-text")


def test_text_completion_streaming(client: openai.OpenAI, sent: Sent, fake: FakeUpstream) -> None:
    chunks = list(client.completions.create(model="text", prompt=["Once", "upon"], stream=True,
                                            stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == CONTENT
    assert chunks[-1].usage is not None
    assert_forwarded(fake, sent.last, "up-text")


def test_embeddings(client: openai.OpenAI, sent: Sent, fake: FakeUpstream) -> None:
    result = client.embeddings.create(model="embed", input=["first text", "second text"])
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == pytest.approx(fake_embedding("first text"))
    assert result.data[1].embedding == pytest.approx(fake_embedding("second text"))
    assert_forwarded(fake, sent.last, "up-embed")
    floats = client.embeddings.create(model="embed", input="one", encoding_format="float", dimensions=4)
    assert floats.data[0].embedding == pytest.approx(fake_embedding("one", 4))
    assert_forwarded(fake, sent.last, "up-embed")


def test_models_list(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["chat", "stream", "tools", "text", "embed", "async", "err-4xx", "err-ctx", "err-429", "err-5xx",
                   "err-5xx-stream", "slow", "slow-stream", "hangup", "refused", "disconnect", "lb", "lb-dead",
                   "sigterm"]


def test_every_endpoint_is_also_served_without_v1(proxy: ProxyProcess, fake: FakeUpstream) -> None:
    with httpx.Client(base_url=proxy.base_url, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30,
                      event_hooks={"response": [_remember]}) as bare:
        chat = bare.post("/chat/completions", json={"model": "chat", "messages": MESSAGES})
        assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == CONTENT
        text = bare.post("/completions", json={"model": "text", "prompt": "x"})
        assert text.status_code == 200 and text.json()["choices"][0]["text"] == CONTENT
        embed = bare.post("/embeddings", json={"model": "embed", "input": "x", "encoding_format": "float"})
        assert embed.status_code == 200 and embed.json()["data"][0]["embedding"] == pytest.approx(fake_embedding("x"))
        models = bare.get("/models")
        assert models.status_code == 200 and "chat" in [m["id"] for m in models.json()["data"]]
    assert last_seen(fake, "up-embed").path == "/v1/embeddings"


def test_sdk_raises_the_relayed_upstream_error(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.set_behavior("up-ctx", Behavior(status=400, error_code="context_length_exceeded", error_type="invalid_request_error",
                                         error_message="This model's maximum context length is 8 tokens."))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="err-ctx", messages=MESSAGES)
    assert info.value.status_code == 400
    assert info.value.code == "context_length_exceeded"
    assert "maximum context length is 8 tokens" in info.value.message
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)


# -- the official SDK, async ---------------------------------------------------------------------------


def test_async_client(proxy: ProxyProcess, fake: FakeUpstream) -> None:
    sent = Sent()

    async def main() -> tuple[Any, list[Any], Any]:
        http_client = httpx.AsyncClient(event_hooks={"request": [sent.ahook], "response": [_aremember]}, timeout=30)
        async with openai.AsyncOpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0,
                                      http_client=http_client) as sdk:
            completion = await sdk.chat.completions.create(model="async", messages=MESSAGES, temperature=0)
            stream = await sdk.chat.completions.create(model="async", messages=MESSAGES, stream=True,
                                                       stream_options={"include_usage": True})
            chunks = [chunk async for chunk in stream]
            embeddings = await sdk.embeddings.create(model="embed", input="hello")
            return completion, chunks, embeddings

    completion, chunks, embeddings = asyncio.run(main())
    assert completion.choices[0].message.content == CONTENT
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CONTENT
    assert chunks[-1].usage is not None
    assert embeddings.data[0].embedding == pytest.approx(fake_embedding("hello"))
    assert len(sent.bodies) == 3
    streamed = [r for r in seen_by_upstream(fake, "up-async") if r.json.get("stream")]
    plain = [r for r in seen_by_upstream(fake, "up-async") if not r.json.get("stream")]
    assert plain[-1].json == {**sent.bodies[0], "model": "up-async"}
    assert streamed[-1].json == {**sent.bodies[1], "model": "up-async"}
    assert streamed[-1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


# -- request errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/chat/completions", "/completions", "/embeddings"])
def test_malformed_json(http: httpx.Client, path: str) -> None:
    error = envelope(http.post(path, content=b'{"model": "chat", "messages": [', headers={"content-type": "application/json"}), 400)
    assert error["type"] == "invalid_request_error"
    assert "JSON" in error["message"]
    envelope(http.post(path, content=b"", headers={"content-type": "application/json"}), 400)
    envelope(http.post(path, json=["not", "an", "object"]), 400)


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/chat/completions", {"messages": MESSAGES}, "model"),
    ("/chat/completions", {"model": "chat"}, "messages"),
    ("/completions", {"model": "text"}, "prompt"),
    ("/embeddings", {"model": "embed"}, "input"),
])
def test_missing_required_field(http: httpx.Client, path: str, body: dict[str, Any], field: str) -> None:
    error = envelope(http.post(path, json=body), 400)
    assert error["param"] == field
    assert f"'{field}'" in error["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"model": 42, "messages": MESSAGES}, "model"),
    ({"model": "chat", "messages": "hello"}, "messages"),
    ({"model": "chat", "messages": ["hello"]}, "messages[0]"),
    ({"model": "chat", "messages": MESSAGES, "stream": "yes"}, "stream"),
])
def test_wrong_types(http: httpx.Client, body: dict[str, Any], field: str) -> None:
    error = envelope(http.post("/chat/completions", json=body), 400)
    assert error["param"] == field
    assert field in error["message"]


def test_unknown_model(http: httpx.Client) -> None:
    error = envelope(http.post("/chat/completions", json={"model": "gpt-nope", "messages": MESSAGES}), 404)
    assert "gpt-nope" in error["message"]
    assert "/v1/models" in error["message"], "says how to list the available models"
    assert error["param"] == "model"
    envelope(http.post("/embeddings", json={"model": "gpt-nope", "input": "x"}), 404)


def test_unknown_route_and_wrong_method(http: httpx.Client, proxy: ProxyProcess) -> None:
    error = envelope(http.get("/nope"), 404)
    assert "/v1/chat/completions" in error["message"]
    envelope(httpx.post(f"{proxy.base_url}/v2/whatever", json={}), 404)
    envelope(http.get("/chat/completions"), 405)


# -- authentication ------------------------------------------------------------------------------------


def test_missing_key(proxy: ProxyProcess) -> None:
    for path, body in (("/chat/completions", {"model": "chat", "messages": MESSAGES}),
                       ("/completions", {"model": "text", "prompt": "x"}), ("/embeddings", {"model": "embed", "input": "x"})):
        response = httpx.post(proxy.url + path, json=body)
        BODIES.append(response.text)
        error = envelope(response, 401)
        # the route decision's answer, before the body is read (LiteLLM's type and message)
        assert error["type"] == "auth_error" and error["message"] == "Authentication Error, No api key passed in."
    response = httpx.get(proxy.url + "/models")
    BODIES.append(response.text)
    envelope(response, 401)


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer sk-wrong-key-0000000000"},
    {"Authorization": f"Bearer {MASTER_KEY}x"},
    {"Authorization": f"Basic {MASTER_KEY}"},
    {"api-key": "sk-wrong-key-0000000000"},
])
def test_wrong_key(proxy: ProxyProcess, headers: dict[str, str]) -> None:
    response = httpx.post(f"{proxy.url}/chat/completions", json={"model": "chat", "messages": MESSAGES},
                          headers=headers)
    BODIES.append(response.text)
    error = envelope(response, 401)
    # a wrong key: the authenticator's error; no usable key at all ("Basic …"): the route decision's
    assert error["type"] == ("auth_error" if headers.get("Authorization", "").startswith("Basic") else
                             "authentication_error")
    assert "sk-wrong-key-0000000000" not in error["message"], "a presented key is never echoed in full"


def test_api_key_header_works(proxy: ProxyProcess, fake: FakeUpstream) -> None:
    response = httpx.post(f"{proxy.url}/chat/completions", json={"model": "chat", "messages": MESSAGES},
                          headers={"api-key": MASTER_KEY})
    BODIES.append(response.text)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == CONTENT
    response = httpx.get(f"{proxy.url}/models", headers={"api-key": MASTER_KEY})
    assert response.status_code == 200


def test_azure_style_route_with_api_key_header(proxy: ProxyProcess, fake: FakeUpstream) -> None:
    response = httpx.post(f"{proxy.base_url}/openai/deployments/chat/chat/completions?api-version=2024-06-01",
                          json={"model": "chat", "messages": MESSAGES}, headers={"api-key": MASTER_KEY})
    BODIES.append(response.text)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == CONTENT


def test_health_routes_need_no_key(proxy: ProxyProcess) -> None:
    live = httpx.get(f"{proxy.base_url}/health/liveliness")
    assert live.status_code == 200
    ready = httpx.get(f"{proxy.base_url}/health/readiness")
    assert ready.status_code == 200
    assert ready.json()["status"] == "healthy"
    BODIES.extend([live.text, ready.text])


# -- upstream errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("upstream", "model", "status", "type_", "code"), [
    ("up-4xx", "err-4xx", 400, "invalid_request_error", "bad_thing"),
    ("up-ctx", "err-ctx", 400, "invalid_request_error", "context_length_exceeded"),
    ("up-429", "err-429", 429, "rate_limit_error", "rate_limit_exceeded"),
    ("up-5xx", "err-5xx", 503, "service_unavailable", "service_unavailable"),
])
def test_upstream_error_is_relayed_with_its_status_and_message(
        http: httpx.Client, fake: FakeUpstream, upstream: str, model: str, status: int, type_: str,
        code: str | None) -> None:
    message = f"the upstream refuses (it was called with {UPSTREAM_KEY})"
    fake.set_behavior(upstream, Behavior(status=status, error_message=message, error_type="upstream_type",
                                         error_code=None if code in ("rate_limit_exceeded", "service_unavailable") else code))
    error = envelope(http.post("/chat/completions", json={"model": model, "messages": MESSAGES}), status)
    assert "the upstream refuses" in error["message"]
    assert UPSTREAM_KEY not in error["message"]
    assert MASKED_UPSTREAM_KEY in error["message"], "the provider key is shown masked"
    assert error["type"] == type_
    assert error["code"] == code


def test_upstream_500_is_relayed_after_the_retry(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.set_behavior("up-5xx", Behavior(status=500, error_message=f"internal failure {UPSTREAM_KEY}"))
    before = len(seen_by_upstream(fake, "up-5xx"))
    error = envelope(http.post("/chat/completions", json={"model": "err-5xx", "messages": MESSAGES}), 500)
    assert "internal failure" in error["message"] and MASKED_UPSTREAM_KEY in error["message"]
    assert len(seen_by_upstream(fake, "up-5xx")) - before == 2, "num_retries: 1 → two attempts"


def test_upstream_error_on_a_stream_before_the_first_byte(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.set_behavior("up-5xx-stream", Behavior(status=400, error_message=f"no stream for {UPSTREAM_KEY}"))
    error = envelope(http.post("/chat/completions", json={"model": "err-5xx-stream", "messages": MESSAGES,
                                                           "stream": True}), 400)
    assert "no stream for" in error["message"] and UPSTREAM_KEY not in error["message"]


def test_upstream_timeout_is_504_and_the_upstream_connection_is_closed(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.set_behavior("up-slow", Behavior(delay=3))
    error = envelope(http.post("/chat/completions", json={"model": "slow", "messages": MESSAGES}), 504)
    assert error["type"] == "timeout"
    assert "slow" in error["message"]
    record = wait_for_disconnect_of(fake, "up-slow")
    assert record.client_disconnected_early
    assert len(seen_by_upstream(fake, "up-slow")) == 1, "a read timeout is not retried (it may have cost tokens)"


def test_upstream_timeout_on_a_stream_is_504(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.set_behavior("up-slow-stream", Behavior(delay=3))
    envelope(http.post("/chat/completions", json={"model": "slow-stream", "messages": MESSAGES, "stream": True}), 504)
    wait_for_disconnect_of(fake, "up-slow-stream")


def test_connection_refused_is_502(http: httpx.Client) -> None:
    error = envelope(http.post("/chat/completions", json={"model": "refused", "messages": MESSAGES}), 502)
    assert error["type"] == "api_connection_error"
    envelope(http.post("/chat/completions", json={"model": "refused", "messages": MESSAGES, "stream": True}), 502)


def test_upstream_closing_without_a_response_is_502(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.set_behavior("up-hangup", Behavior(close_without_response=True))
    error = envelope(http.post("/chat/completions", json={"model": "hangup", "messages": MESSAGES}), 502)
    assert error["type"] == "api_connection_error"
    envelope(http.post("/chat/completions", json={"model": "hangup", "messages": MESSAGES, "stream": True}), 502)


# -- streams and connections -----------------------------------------------------------------------------


def test_client_disconnect_mid_stream_closes_the_upstream_connection(proxy: ProxyProcess, fake: FakeUpstream) -> None:
    fake.set_behavior("up-disconnect", Behavior(content=CONTENT * 5, chunks=40, chunk_delay=0.2))
    with httpx.Client(timeout=30) as raw_client:
        with raw_client.stream("POST", f"{proxy.url}/chat/completions",
                               json={"model": "disconnect", "messages": MESSAGES, "stream": True},
                               headers={"Authorization": f"Bearer {MASTER_KEY}"}) as response:
            assert response.status_code == 200
            first = next(response.iter_raw())
            assert first.startswith(b"data: ")
        # leaving both blocks closes the connection to the proxy mid-stream
    record = wait_for_disconnect_of(fake, "up-disconnect")
    assert record.client_disconnected_early
    assert not record.completed


def test_load_balancing_spreads_requests_over_deployments(http: httpx.Client, fake: FakeUpstream) -> None:
    for _ in range(200):
        response = http.post("/chat/completions", json={"model": "lb", "messages": MESSAGES})
        assert response.status_code == 200, response.text
        if seen_by_upstream(fake, "up-lb-a") and seen_by_upstream(fake, "up-lb-b"):
            break
    assert seen_by_upstream(fake, "up-lb-a") and seen_by_upstream(fake, "up-lb-b"), "both deployments get traffic"


def test_a_dead_deployment_is_retried_on_the_other(http: httpx.Client, fake: FakeUpstream, proxy: ProxyProcess) -> None:
    for i in range(20):
        stream = i % 2 == 1
        response = http.post("/chat/completions", json={"model": "lb-dead", "messages": MESSAGES, "stream": stream})
        assert response.status_code == 200, response.text
        if stream:
            assert sse_payloads(response.text)[-1] == "[DONE]"
        else:
            assert response.json()["choices"][0]["message"]["content"] == CONTENT
    assert len(seen_by_upstream(fake, "up-lb-live")) == 20
    assert "up-lb-dead" in proxy.logs(), "the retry is logged"


# -- after everything: no secret anywhere; then SIGTERM (keep these two last) -----------------------------


def test_no_key_in_any_response_or_in_the_log(proxy: ProxyProcess) -> None:
    assert len(BODIES) > 50, "the leak check needs the responses of the tests above"
    for body in BODIES:
        assert UPSTREAM_KEY not in body
        assert MASTER_KEY not in body
    logs = proxy.logs()
    assert logs, "the proxy logs something"
    assert UPSTREAM_KEY not in logs
    assert MASTER_KEY not in logs
    assert "Traceback" not in logs


def test_sigterm_during_a_slow_stream_finishes_it_then_exits_0(proxy: ProxyProcess, fake: FakeUpstream) -> None:
    fake.set_behavior("up-sigterm", Behavior(content=CONTENT, chunks=10, chunk_delay=0.2))
    # an idle keep-alive connection must not hold the shutdown up to the graceful deadline
    idle = socket.create_connection(("127.0.0.1", int(proxy.base_url.rsplit(":", 1)[1])), timeout=30)
    idle.sendall(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while b"alive" not in answer:
        chunk = idle.recv(65536)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    with httpx.Client(timeout=30) as raw_client:
        with raw_client.stream("POST", f"{proxy.url}/chat/completions",
                               json={"model": "sigterm", "messages": MESSAGES, "stream": True},
                               headers={"Authorization": f"Bearer {MASTER_KEY}"}) as response:
            assert response.status_code == 200
            pieces = response.iter_raw()
            received = next(pieces)
            proxy.process.send_signal(signal.SIGTERM)
            for piece in pieces:
                received += piece
    payloads = sse_payloads(received.decode())
    assert payloads[-1] == "[DONE]"
    text = "".join(choice["delta"].get("content") or ""
                   for p in payloads[:-1] for choice in json.loads(p)["choices"])
    assert text == CONTENT
    assert last_seen(fake, "up-sigterm").completed
    assert idle.recv(65536) == b"", "the idle connection is closed at shutdown"
    idle.close()
    assert proxy.process.wait(timeout=30) == 0
    logs = proxy.logs()
    assert "SIGTERM" in logs
    assert UPSTREAM_KEY not in logs and MASTER_KEY not in logs


# -- several workers --------------------------------------------------------------------------------------


def test_two_workers(fake: FakeUpstream, tmp_path: Path) -> None:
    config = {"model_list": [upstream_model(fake, "workers", "up-workers")],
              "general_settings": {"master_key": MASTER_KEY}}
    process = ProxyProcess(write_config(tmp_path, config), args=["--workers", "2"])
    try:
        with httpx.Client(base_url=process.url, headers={"Authorization": f"Bearer {MASTER_KEY}"},
                          timeout=30) as workers_client:
            for _ in range(8):
                with httpx.Client(base_url=process.url, timeout=30,
                                  headers={"Authorization": f"Bearer {MASTER_KEY}"}) as fresh:
                    response = fresh.post("/chat/completions", json={"model": "workers", "messages": MESSAGES})
                    assert response.status_code == 200, response.text
                    assert response.json()["choices"][0]["message"]["content"] == CONTENT
            streamed = workers_client.post("/chat/completions", json={"model": "workers", "messages": MESSAGES,
                                                                      "stream": True})
            assert sse_payloads(streamed.text)[-1] == "[DONE]"
        assert len(seen_by_upstream(fake, "up-workers")) == 9
        assert process.terminate() == 0
        assert UPSTREAM_KEY not in process.logs()
    finally:
        process.kill()
