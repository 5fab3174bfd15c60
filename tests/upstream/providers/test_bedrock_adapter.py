"""Bedrock Converse / ConverseStream / InvokeModel through the AdapterProvider, SigV4 verified by the fake."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest
import trio

from support.native_fakes.bedrock_fake import BedrockFake
from support.native_fakes.harness import collect_stream, deployment, provider_for
from trioproxy.errors import (
    BadRequestError,
    ContextWindowExceededError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
)
from trioproxy.observability.prices import PriceTable
from trioproxy.upstream.providers.adapter import ProviderConfigError, StreamInterruptedError

# the example credentials of AWS's SigV4 documentation
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture
def fake():
    with BedrockFake(ACCESS_KEY, SECRET_KEY) as server:
        yield server
        assert not server.errors, server.errors


def dep(fake, model=MODEL, **params):
    settings = {"api_base": fake.base_url, "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY,
                "aws_region_name": "us-east-1", **params}
    return deployment(f"bedrock/{model}", **settings)


def body(**extra):
    return {"model": MODEL, "messages": [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Hello?"}], **extra}


async def test_converse_signed_with_sigv4_and_translated(fake):
    async with provider_for() as provider:
        answer = orjson.loads((await provider.send(dep(fake), "chat/completions",
                                                   body(max_tokens=100, temperature=0.2, stop="END", top_k=5))).body)
    assert answer["choices"][0]["message"]["content"] == "Hello from the fake Bedrock."
    assert answer["choices"][0]["finish_reason"] == "stop"
    exchange = fake.last
    assert exchange.path == "/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/converse"
    assert exchange.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    sent = exchange.json
    assert sent["system"] == [{"text": "Be brief."}]
    assert sent["messages"] == [{"role": "user", "content": [{"text": "Hello?"}]}]
    assert sent["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.2, "stopSequences": ["END"]}
    assert sent["additionalModelRequestFields"] == {"top_k": 5}
    # usage: 30 uncached + 4 cache reads; cost from the region-prefixed id in the price table
    usage = answer["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (34, 9)
    assert usage["prompt_tokens_details"] == {"cached_tokens": 4}
    assert PriceTable.load_default().lookup(f"converse/{MODEL}") is not None
    assert fake.violations == []


async def test_session_token_and_converse_prefix(fake):
    token = "FwoGZXIvYXdzEXAMPLE-session-token-0123456789"
    fake.credentials = type(fake.credentials)(ACCESS_KEY, SECRET_KEY, token)
    async with provider_for() as provider:
        await provider.send(dep(fake, model=f"converse/{MODEL}", aws_session_token=token), "chat/completions", body())
    assert fake.last.headers["x-amz-security-token"] == token
    assert fake.violations == []


async def test_wrong_secret_fails_signature_check_without_leaking_it(fake):
    wrong = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYWRONGKEYXX"
    async with provider_for() as provider:
        with pytest.raises(PermissionDeniedError) as caught:
            await provider.send(dep(fake, aws_secret_access_key=wrong), "chat/completions", body())
    assert "signature we calculated does not match" in caught.value.message
    assert wrong not in caught.value.message


async def test_streaming_event_stream_decoded(fake):
    fake.script.text = "alpha beta gamma"
    async with provider_for() as provider:
        stream = await provider.open_stream(dep(fake), "chat/completions", body(stream=True))
        events = await collect_stream(stream)
    assert fake.last.path.endswith("/converse-stream")
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "alpha beta gamma"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 9
    assert fake.violations == []


async def test_tool_call_round_trip(fake):
    fake.script.tool_call = {"name": "get_weather", "input": {"city": "Oslo"}}
    async with provider_for() as provider:
        first = orjson.loads((await provider.send(dep(fake), "chat/completions",
                                                  body(tools=[WEATHER], tool_choice="required"))).body)
        message = first["choices"][0]["message"]
        assert first["choices"][0]["finish_reason"] == "tool_calls"
        assert message["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Oslo"}'}
        assert fake.last.json["toolConfig"]["toolChoice"] == {"any": {}}
        follow = body(tools=[WEATHER])
        follow["messages"] += [message, {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"],
                                         "content": "-3 C"}]
        second = orjson.loads((await provider.send(dep(fake), "chat/completions", follow)).body)
        assert second["choices"][0]["message"]["content"] == "Hello from the fake Bedrock."
        turns = fake.last.json["messages"]
        assert turns[1]["content"] == [{"toolUse": {"toolUseId": "tooluse_fake1", "name": "get_weather",
                                                    "input": {"city": "Oslo"}}}]
        assert turns[2]["content"] == [{"toolResult": {"toolUseId": "tooluse_fake1", "content": [{"text": "-3 C"}]}}]
        stream = await provider.open_stream(dep(fake), "chat/completions", body(stream=True, tools=[WEATHER]))
        events = await collect_stream(stream)
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in events[:-1]
              if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert deltas[0]["id"] == "tooluse_fake2"
    assert "".join(d["function"]["arguments"] for d in deltas) == '{"city": "Oslo"}'
    assert fake.violations == []


async def test_image_as_bytes_and_url_refused(fake):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    content = [{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]
    async with provider_for() as provider:
        await provider.send(dep(fake), "chat/completions", {"model": "m", "messages": [{"role": "user", "content": content}]})
        assert fake.last.json["messages"][0]["content"][1] == {"image": {"format": "png", "source": {"bytes": png}}}
        with pytest.raises(BadRequestError) as caught:
            await provider.send(dep(fake), "chat/completions", {"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]})
    assert "data: URLs" in caught.value.message


@pytest.mark.parametrize(("status", "kind", "message", "error_class"), [
    (429, "ThrottlingException", "Too many requests, please wait before trying again.", RateLimitError),
    (503, "ServiceUnavailableException", "Bedrock is unable to process your request.", ServiceUnavailableError),
    (400, "ValidationException", "Input is too long for requested model.", ContextWindowExceededError),
])
async def test_errors_mapped(fake, status, kind, message, error_class):
    fake.script.fail = (status, kind, message)
    async with provider_for() as provider:
        with pytest.raises(error_class) as caught:
            await provider.send(dep(fake), "chat/completions", body())
    assert message in caught.value.message
    assert caught.value.code == ("context_length_exceeded" if status == 400 else kind)
    assert SECRET_KEY not in caught.value.message


async def test_exception_mid_stream_is_raised_mapped(fake):
    fake.script.stream_exception = ("throttlingException", "Too many tokens, please wait.")
    async with provider_for() as provider:
        stream = await provider.open_stream(dep(fake), "chat/completions", body(stream=True))
        with pytest.raises(RateLimitError) as caught:
            await collect_stream(stream)
    assert caught.value.status_code == 429


async def test_stream_without_message_stop_is_interrupted(fake):
    fake.script.truncate = True
    async with provider_for() as provider:
        stream = await provider.open_stream(dep(fake), "chat/completions", body(stream=True))
        with pytest.raises(StreamInterruptedError):
            await collect_stream(stream)


async def test_closing_a_stream_early_closes_the_connection(fake):
    fake.script.hang = True
    async with provider_for() as provider:
        stream = await provider.open_stream(dep(fake), "chat/completions", body(stream=True))
        pieces = stream.aiter_bytes()
        assert b'"role":"assistant"' in await pieces.__anext__()
        await pieces.aclose()
        await stream.aclose()
        assert await trio.to_thread.run_sync(fake.last.disconnected.wait, 10.0)


async def test_titan_embeddings_one_request_per_input_usage_summed(fake):
    async with provider_for() as provider:
        answer = orjson.loads((await provider.send(dep(fake, model="amazon.titan-embed-text-v2:0"), "embeddings",
                                                   {"model": "m", "input": ["one two", "three four five"],
                                                    "dimensions": 4, "encoding_format": "base64"})).body)
    assert len(fake.exchanges) == 2 and {e.json["inputText"] for e in fake.exchanges} == {"one two", "three four five"}
    assert answer["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    first = struct.unpack("<4f", base64.b64decode(answer["data"][0]["embedding"]))
    assert first == pytest.approx([0.007, 0.008, 0.009, 0.010])
    assert [d["index"] for d in answer["data"]] == [0, 1]
    assert fake.violations == []


async def test_cohere_embeddings_usage_from_header(fake):
    async with provider_for() as provider:
        answer = orjson.loads((await provider.send(dep(fake, model="cohere.embed-english-v3"), "embeddings",
                                                   {"model": "m", "input": ["a b c", "d"]})).body)
    assert fake.last.json == {"texts": ["a b c", "d"], "input_type": "search_document"}
    assert answer["data"][1]["embedding"] == [0.5, -0.25, 1.0]
    assert answer["usage"]["prompt_tokens"] == 4


async def test_endpoint_settings_api_base_wins():
    async with provider_for(environ={"AWS_REGION_NAME": "eu-west-1"}) as provider:
        settings = provider.prepare(deployment("bedrock/anthropic.claude-3-haiku-20240307-v1:0",
                                               aws_access_key_id="A", aws_secret_access_key="B")).settings
        assert (settings.region, settings.endpoint) == ("eu-west-1", "https://bedrock-runtime.eu-west-1.amazonaws.com")
        both = provider.prepare(deployment("bedrock/m", index=1, api_base="http://a.example",
                                           aws_bedrock_runtime_endpoint="http://b.example")).settings
        assert both.endpoint == "http://a.example"
        only = provider.prepare(deployment("bedrock/m", index=2, aws_bedrock_runtime_endpoint="http://b.example")).settings
        assert only.endpoint == "http://b.example"
        arn = "arn:aws:bedrock:ap-south-1:123456789012:inference-profile/apac.anthropic.claude-3-haiku-20240307-v1:0"
        assert provider.prepare(deployment(f"bedrock/{arn}", index=3)).settings.region == "ap-south-1"
        with pytest.raises(ProviderConfigError):
            provider.prepare(deployment("bedrock/m", index=4, aws_access_key_id="A"))


async def test_signing_runs_in_a_worker_thread(fake, monkeypatch):
    import threading

    from trioproxy.upstream.providers.bedrock import AwsSigner

    threads = []
    original = AwsSigner.sign

    def recording(self, request):
        threads.append(threading.current_thread())
        return original(self, request)

    monkeypatch.setattr(AwsSigner, "sign", recording)
    async with provider_for() as provider:
        await provider.send(dep(fake), "chat/completions", body())
    assert threads and threads[0] is not threading.current_thread()
