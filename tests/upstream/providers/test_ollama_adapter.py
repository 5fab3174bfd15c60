"""Ollama's native API (``ollama_chat/`` → /api/chat, ``ollama/`` → /api/generate) through the AdapterProvider."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest
import trio

from support.native_fakes.harness import collect_stream, deployment, provider_for
from support.native_fakes.ollama_fake import OllamaFake
from trioproxy.errors import BadRequestError, NotFoundError
from trioproxy.upstream.providers.adapter import StreamInterruptedError

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture
def fake():
    with OllamaFake() as server:
        yield server
        assert not server.errors, server.errors


def chat(fake, model="llama3.2", **params):
    return deployment(f"ollama_chat/{model}", api_base=fake.base_url, **params)


def body(**extra):
    return {"model": "llama3.2", "messages": [{"role": "system", "content": "Be kind."},
                                              {"role": "user", "content": "Hi"}], **extra}


async def test_chat_options_and_usage(fake):
    async with provider_for() as provider:
        answer = orjson.loads((await provider.send(chat(fake), "chat/completions",
                                                   body(max_tokens=20, temperature=0.1, stop="x", num_ctx=4096,
                                                        keep_alive="5m"))).body)
    sent = fake.last.json
    assert fake.last.path == "/api/chat"
    assert sent["messages"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    assert sent["options"] == {"num_predict": 20, "temperature": 0.1, "stop": ["x"], "num_ctx": 4096}
    assert sent["stream"] is False and sent["keep_alive"] == "5m"
    assert answer["choices"][0]["message"]["content"] == "Hello from the fake Ollama."
    assert answer["usage"] == {"prompt_tokens": 17, "completion_tokens": 8, "total_tokens": 25}
    assert fake.violations == []


async def test_streaming_ndjson(fake):
    async with provider_for() as provider:
        events = await collect_stream(await provider.open_stream(chat(fake), "chat/completions", body(stream=True)))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == \
        "Hello from the fake Ollama."
    assert chunks[-1]["usage"]["prompt_tokens"] == 17 and chunks[-1]["choices"] == []
    assert fake.last.json["stream"] is True
    assert fake.violations == []


async def test_tool_call_round_trip(fake):
    fake.script.tool_call = {"name": "get_weather", "arguments": {"city": "Rome"}}
    async with provider_for() as provider:
        first = orjson.loads((await provider.send(chat(fake), "chat/completions", body(tools=[WEATHER]))).body)
        assert fake.last.json["tools"] == [WEATHER]
        choice = first["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        call = choice["message"]["tool_calls"][0]
        assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Rome"}'}
        follow = body(tools=[WEATHER])
        follow["messages"] += [choice["message"], {"role": "tool", "tool_call_id": call["id"], "content": "25 C"}]
        await provider.send(chat(fake), "chat/completions", follow)
        sent = fake.last.json["messages"]
        assert sent[2]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]
        assert sent[3] == {"role": "tool", "content": "25 C", "tool_name": "get_weather"}
        events = await collect_stream(await provider.open_stream(chat(fake), "chat/completions",
                                                                 body(stream=True, tools=[WEATHER])))
    calls = [c for c in events[:-1] if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
    assert calls[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert [c["choices"][0]["finish_reason"] for c in events[:-1] if c["choices"]][-1] == "tool_calls"
    assert fake.violations == []


async def test_images_as_base64(fake):
    png = base64.b64encode(b"image-bytes").decode()
    async with provider_for() as provider:
        await provider.send(chat(fake), "chat/completions", {"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}]})
    assert fake.last.json["messages"][0] == {"role": "user", "content": "what?", "images": [png]}


async def test_generate_route_for_ollama_prefix_and_completions(fake):
    async with provider_for() as provider:
        dep = deployment("ollama/llama3.2", api_base=fake.base_url)
        answer = orjson.loads((await provider.send(dep, "chat/completions", body())).body)
        assert fake.last.path == "/api/generate"
        assert fake.last.json["system"] == "Be kind." and fake.last.json["prompt"] == "Hi"
        assert answer["choices"][0]["message"]["content"] == "Hello from the fake Ollama."
        text = orjson.loads((await provider.send(dep, "completions", {"model": "m", "prompt": "Once upon"})).body)
        assert text["object"] == "text_completion" and text["choices"][0]["text"] == "Hello from the fake Ollama."
        events = await collect_stream(await provider.open_stream(dep, "completions",
                                                                 {"model": "m", "prompt": "Once", "stream": True}))
        assert "".join(c["choices"][0]["text"] for c in events[:-1] if c["choices"]) == "Hello from the fake Ollama."
        with pytest.raises(BadRequestError) as caught:
            await provider.send(dep, "chat/completions", body(tools=[WEATHER]))
        assert "tools" in caught.value.message
    assert fake.violations == []


async def test_embeddings_usage_from_prompt_eval_count(fake):
    async with provider_for() as provider:
        answer = orjson.loads((await provider.send(chat(fake, model="nomic-embed-text"), "embeddings",
                                                   {"model": "m", "input": ["a b", "c d e"],
                                                    "encoding_format": "base64"})).body)
    assert fake.last.json == {"model": "nomic-embed-text", "input": ["a b", "c d e"]}
    assert answer["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    assert struct.unpack("<2f", base64.b64decode(answer["data"][1]["embedding"])) == (0.125, 5.0)


async def test_unknown_model_is_a_404(fake):
    async with provider_for() as provider:
        with pytest.raises(NotFoundError) as caught:
            await provider.send(chat(fake, model="nope"), "chat/completions", body())
    assert "model 'nope' not found" in caught.value.message


async def test_stream_without_done_line_is_interrupted(fake):
    fake.script.truncate = True
    async with provider_for() as provider:
        stream = await provider.open_stream(chat(fake), "chat/completions", body(stream=True))
        with pytest.raises(StreamInterruptedError):
            await collect_stream(stream)


async def test_closing_a_stream_early_closes_the_connection(fake):
    fake.script.hang = True
    async with provider_for() as provider:
        stream = await provider.open_stream(chat(fake), "chat/completions", body(stream=True))
        pieces = stream.aiter_bytes()
        await pieces.__anext__()
        await pieces.aclose()
        await stream.aclose()
        assert await trio.to_thread.run_sync(fake.last.disconnected.wait, 10.0)
