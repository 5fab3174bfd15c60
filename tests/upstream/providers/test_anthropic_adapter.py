"""Anthropic through the AdapterProvider on real sockets, against the strict fake Messages API."""

from __future__ import annotations

import orjson
import pytest
import trio

from support.native_fakes.anthropic_fake import AnthropicFake
from support.native_fakes.harness import collect_stream, deployment, provider_for
from trioproxy.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    ProxyError,
    RateLimitError,
    ServiceUnavailableError,
)
from trioproxy.observability.prices import PriceTable, compute_cost, usage_from_response
from trioproxy.upstream.providers.adapter import StreamInterruptedError
from trioproxy.upstream.router import is_retryable

KEY = "sk-ant-api03-SECRET-0123456789abcdefghij"
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


@pytest.fixture
def fake():
    with AnthropicFake(KEY) as server:
        yield server
        assert not server.errors, server.errors


def dep(fake: AnthropicFake, **params):
    return deployment("anthropic/claude-haiku-4-5", **{"api_base": fake.base_url, "api_key": KEY, **params})


def body(**extra):
    return {"model": "claude-haiku-4-5", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello"}], **extra}


async def test_chat_system_prompt_lifted_and_max_tokens_defaulted(fake):
    async with provider_for() as provider:
        answer = await provider.send(dep(fake), "chat/completions", body())
    data = orjson.loads(answer.body)
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "Hello from the fake Claude."}
    assert data["choices"][0]["finish_reason"] == "stop"
    sent = fake.last.json
    assert sent["system"] == [{"type": "text", "text": "You are terse."}]
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert sent["max_tokens"] == 64000          # claude-haiku-4-5's output limit from the price table
    assert fake.last.headers["anthropic-version"] == "2023-06-01"
    assert fake.violations == []


async def test_usage_with_prompt_cache_fields_and_cost(fake):
    async with provider_for() as provider:
        answer = await provider.send(dep(fake), "chat/completions", body(max_tokens=50))
    usage = orjson.loads(answer.body)["usage"]
    # 21 uncached input + 5 read from the cache = 26 prompt tokens, as LiteLLM reports them
    assert usage["prompt_tokens"] == 26
    assert usage["completion_tokens"] == 7
    assert usage["prompt_tokens_details"] == {"cached_tokens": 5}
    assert usage["cache_read_input_tokens"] == 5
    assert fake.last.json["max_tokens"] == 50
    price = PriceTable.load_default().lookup("claude-haiku-4-5")
    assert price is not None
    cost = compute_cost(price, *usage_from_response({"usage": usage}))
    assert cost == pytest.approx(26 * 1e-6 + 7 * 5e-6)


async def test_streaming_chat(fake):
    fake.script.text = "one two three"
    async with provider_for() as provider:
        stream = await provider.open_stream(dep(fake), "chat/completions",
                                            body(stream=True, stream_options={"include_usage": True}))
        events = await collect_stream(stream)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "one two three"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 7
    assert chunks[-1]["usage"]["prompt_tokens"] == 26
    assert fake.last.json["stream"] is True and "stream_options" not in fake.last.json
    assert fake.violations == []


async def test_tool_call_round_trip(fake):
    fake.script.tool_call = {"name": "get_weather", "input": {"city": "Paris"}}
    async with provider_for() as provider:
        first = orjson.loads((await provider.send(dep(fake), "chat/completions",
                                                  body(tools=[WEATHER], tool_choice="required",
                                                       parallel_tool_calls=False))).body)
        choice = first["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        call = choice["message"]["tool_calls"][0]
        assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
        sent = fake.last.json
        assert sent["tools"][0]["input_schema"]["required"] == ["city"]
        assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
        messages = body()["messages"] + [choice["message"],
                                         {"role": "tool", "tool_call_id": call["id"], "content": "18 C, sunny"}]
        second = orjson.loads((await provider.send(dep(fake), "chat/completions",
                                                   {"model": "x", "messages": messages, "tools": [WEATHER]})).body)
    assert second["choices"][0]["message"]["content"] == "Hello from the fake Claude."
    turns = fake.last.json["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][-1] == {"type": "tool_use", "id": call["id"], "name": "get_weather",
                                       "input": {"city": "Paris"}}
    assert turns[2]["content"] == [{"type": "tool_result", "tool_use_id": call["id"], "content": "18 C, sunny"}]
    assert fake.violations == []


async def test_streamed_tool_call(fake):
    fake.script.tool_call = {"name": "get_weather", "input": {"city": "Paris"}}
    async with provider_for() as provider:
        stream = await provider.open_stream(dep(fake), "chat/completions", body(stream=True, tools=[WEATHER]))
        events = await collect_stream(stream)
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in events[:-1]
             if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0]["id"] == "toolu_02" and calls[0]["function"]["name"] == "get_weather"
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Paris"}'
    assert [c["choices"][0]["finish_reason"] for c in events[:-1] if c["choices"]][-1] == "tool_calls"


async def test_image_parts_translated(fake):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
               {"type": "image_url", "image_url": "https://example.com/cat.jpg"}]
    async with provider_for() as provider:
        await provider.send(dep(fake), "chat/completions",
                            {"model": "x", "messages": [{"role": "user", "content": content}]})
    blocks = fake.last.json["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    assert fake.violations == []


@pytest.mark.parametrize(("status", "kind", "message", "error_class", "client_status"), [
    (529, "overloaded_error", "Overloaded", ServiceUnavailableError, 529),
    (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", RateLimitError, 429),
    (400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum",
     ContextWindowExceededError, 400),
])
async def test_errors_mapped(fake, status, kind, message, error_class, client_status):
    fake.script.fail = (status, kind, message)
    async with provider_for() as provider:
        with pytest.raises(ProxyError) as caught:
            await provider.send(dep(fake), "chat/completions", body())
    error = caught.value
    assert isinstance(error, error_class)
    assert error.status_code == client_status
    assert message in error.message and "anthropic/claude-haiku-4-5" in error.message
    if kind == "overloaded_error":
        assert is_retryable(error)


async def test_invalid_key_error_never_shows_the_key(fake):
    wrong = "sk-ant-api03-WRONG-abcdefghijklmnop"
    async with provider_for() as provider:
        with pytest.raises(AuthenticationError) as caught:
            await provider.send(dep(fake, api_key=wrong), "chat/completions", body())
    assert caught.value.status_code == 401
    assert wrong not in caught.value.message and "invalid x-api-key" in caught.value.message


async def test_error_event_mid_stream_raises_mapped_error(fake):
    fake.script.stream_error = ("overloaded_error", "Overloaded")
    async with provider_for() as provider:
        stream = await provider.open_stream(dep(fake), "chat/completions", body(stream=True))
        with pytest.raises(ServiceUnavailableError):
            await collect_stream(stream)


async def test_stream_without_message_stop_is_an_error_not_done(fake):
    fake.script.truncate = True
    async with provider_for() as provider:
        stream = await provider.open_stream(dep(fake), "chat/completions", body(stream=True))
        received = b""
        with pytest.raises(StreamInterruptedError) as caught:
            async for piece in stream.aiter_bytes():
                received += piece
        await stream.aclose()
    assert isinstance(caught.value, APIConnectionError)
    assert caught.value.code == "upstream_stream_interrupted" and caught.value.status_code == 502
    assert b"[DONE]" not in received and b"Hello" in received


async def test_closing_a_stream_early_closes_the_upstream_connection(fake):
    fake.script.hang = True
    async with provider_for() as provider:
        stream = await provider.open_stream(dep(fake), "chat/completions", body(stream=True))
        pieces = stream.aiter_bytes()
        first = await pieces.__anext__()
        assert b'"role":"assistant"' in first
        await pieces.aclose()
        await stream.aclose()
        exchange = fake.last
        assert await trio.to_thread.run_sync(exchange.disconnected.wait, 10.0)
        assert provider.pool.idle_connections == 0


async def test_unsupported_parameter_is_a_400_naming_it_unless_dropped(fake):
    async with provider_for() as provider:
        with pytest.raises(BadRequestError) as caught:
            await provider.send(dep(fake), "chat/completions", body(logit_bias={"1": 2}))
        assert "logit_bias" in caught.value.message and "anthropic" in caught.value.message
        assert caught.value.param == "logit_bias"
        assert len(fake.exchanges) == 0
        await provider.send(dep(fake, drop_params=True), "chat/completions", body(logit_bias={"1": 2}))
        assert "logit_bias" not in fake.last.json
        await provider.send(dep(fake, index=1), "chat/completions", body(logit_bias={"1": 2}, drop_params=True))
    async with provider_for(drop_params=True) as provider:
        await provider.send(dep(fake), "chat/completions", body(frequency_penalty=1.0, top_k=5))
    assert "frequency_penalty" not in fake.last.json and fake.last.json["top_k"] == 5
    assert fake.violations == []


async def test_settings_and_proxy_fields_never_reach_anthropic(fake):
    async with provider_for() as provider:
        await provider.send(dep(fake), "chat/completions",
                            body(api_version="x", aws_region_name="us-east-1", metadata={"a": 1}, user="u-1"))
    sent = fake.last.json
    assert "api_version" not in sent and "aws_region_name" not in sent
    assert sent["metadata"] == {"user_id": "u-1"}
    assert fake.violations == []


async def test_embeddings_are_refused_with_a_clear_400(fake):
    async with provider_for() as provider:
        with pytest.raises(BadRequestError) as caught:
            await provider.send(dep(fake), "embeddings", {"model": "x", "input": "hi"})
    assert "does not serve /v1/embeddings" in caught.value.message


async def test_missing_key_is_a_configuration_error():
    from trioproxy.upstream.providers.adapter import ProviderConfigError

    async with provider_for() as provider:
        with pytest.raises(ProviderConfigError) as caught:
            provider.prepare(deployment("anthropic/claude-haiku-4-5"))
    assert "ANTHROPIC_API_KEY" in str(caught.value)
    async with provider_for(environ={"ANTHROPIC_API_KEY": KEY}) as provider:
        assert provider.prepare(deployment("anthropic/claude-haiku-4-5")).settings.api_key == KEY
