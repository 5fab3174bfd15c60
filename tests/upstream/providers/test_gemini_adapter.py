"""Gemini (AI Studio) and Vertex AI through the AdapterProvider, against the strict Google fakes."""

from __future__ import annotations

import json

import orjson
import pytest
import trio

from support.native_fakes.google_fake import GoogleFake, make_service_account
from support.native_fakes.harness import collect_stream, deployment, provider_for
from trioproxy.errors import AuthenticationError, RateLimitError, ServiceUnavailableError
from trioproxy.observability.prices import PriceTable, compute_cost, usage_from_response
from trioproxy.upstream.providers.adapter import ProviderConfigError, StreamInterruptedError

KEY = "AIzaSyFAKE-gemini-key-0123456789abcdef"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": False,
    "$schema": "http://json-schema.org/draft-07/schema#"}}}


@pytest.fixture
def studio():
    with GoogleFake(api_key=KEY) as server:
        yield server
        assert not server.errors, server.errors


@pytest.fixture(scope="module")
def service_account():
    info, public_key = make_service_account("http://placeholder/token")
    return info, public_key


@pytest.fixture
def vertex(service_account):
    info, public_key = service_account
    with GoogleFake(public_key=public_key, client_email=info["client_email"]) as server:
        server.credentials = {**info, "token_uri": f"{server.base_url}/token"}
        yield server
        assert not server.errors, server.errors


def gemini(fake, **params):
    return deployment("gemini/gemini-2.5-flash", **{"api_base": f"{fake.base_url}/v1beta", "api_key": KEY, **params})


def vertex_dep(fake, **params):
    return deployment("vertex_ai/gemini-2.5-flash", **{
        "api_base": fake.base_url, "vertex_project": "fake-project", "vertex_location": "us-central1",
        "vertex_credentials": json.dumps(fake.credentials), **params})


def body(**extra):
    return {"model": "gemini-2.5-flash", "messages": [{"role": "system", "content": "Answer in French."},
                                                       {"role": "user", "content": "Hello"}], **extra}


async def test_chat_system_instruction_usage_with_thinking_and_cost(studio):
    async with provider_for() as provider:
        answer = orjson.loads((await provider.send(gemini(studio), "chat/completions",
                                                   body(max_tokens=50, top_k=3, stop=["x"]))).body)
    exchange = studio.last
    assert exchange.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert exchange.headers["x-goog-api-key"] == KEY and "key" not in exchange.query
    sent = exchange.json
    assert sent["systemInstruction"] == {"parts": [{"text": "Answer in French."}]}
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]
    assert sent["generationConfig"] == {"maxOutputTokens": 50, "topK": 3, "stopSequences": ["x"]}
    message = answer["choices"][0]["message"]
    assert message["content"] == "Hello from the fake Gemini." and message["reasoning_content"] == "thinking..."
    usage = answer["usage"]
    # 12 + 6 + 20 != 38? it is 38: candidates exclude thoughts, so thinking is added to completion
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (12, 26)
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 20}
    assert usage["prompt_tokens_details"] == {"cached_tokens": 3}
    price = PriceTable.load_default().lookup("gemini/gemini-2.5-flash")
    assert compute_cost(price, *usage_from_response(answer)) == pytest.approx(12 * 3e-7 + 26 * 2.5e-6)
    assert studio.violations == []


async def test_streaming_cumulative_usage_takes_the_last(studio):
    studio.script.text = "un deux trois"
    async with provider_for() as provider:
        events = await collect_stream(await provider.open_stream(gemini(studio), "chat/completions", body(stream=True)))
    assert studio.last.query["alt"] == ["sse"] and studio.last.path.endswith(":streamGenerateContent")
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "un deux trois"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 12
    assert chunks[-1]["usage"]["completion_tokens"] == 26      # the final cumulative figure, not a sum
    assert studio.violations == []


async def test_tool_call_round_trip_and_schema_cleaned(studio):
    studio.script.tool_call = {"name": "get_weather", "args": {"city": "Lyon"}}
    async with provider_for() as provider:
        first = orjson.loads((await provider.send(gemini(studio), "chat/completions",
                                                  body(tools=[WEATHER], tool_choice="required"))).body)
        declaration = studio.last.json["tools"][0]["functionDeclarations"][0]
        assert "additionalProperties" not in declaration["parameters"] and "$schema" not in declaration["parameters"]
        assert studio.last.json["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
        choice = first["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        call = choice["message"]["tool_calls"][0]
        assert call["id"].startswith("call_") and call["function"] == {"name": "get_weather",
                                                                        "arguments": '{"city":"Lyon"}'}
        follow = body(tools=[WEATHER])
        follow["messages"] += [choice["message"], {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 21}'}]
        second = orjson.loads((await provider.send(gemini(studio), "chat/completions", follow)).body)
    assert second["choices"][0]["message"]["content"] == "Hello from the fake Gemini."
    contents = studio.last.json["contents"]
    assert contents[1] == {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}}]}
    assert contents[2] == {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                                          "response": {"temp": 21}}}]}
    assert studio.violations == []


async def test_safety_blocks_are_content_filter_answers(studio):
    studio.script.finish_reason = "SAFETY"
    async with provider_for() as provider:
        answer = orjson.loads((await provider.send(gemini(studio), "chat/completions", body())).body)
        assert answer["choices"][0]["finish_reason"] == "content_filter"
        studio.script.block_prompt = True
        blocked = orjson.loads((await provider.send(gemini(studio), "chat/completions", body())).body)
    assert blocked["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": None},
                                     "finish_reason": "content_filter"}
    assert blocked["usage"]["prompt_tokens"] == 12


async def test_errors(studio):
    async with provider_for() as provider:
        wrong = "AIzaSyWRONG-key-abcdefghijklmnop"
        with pytest.raises(AuthenticationError) as caught:
            await provider.send(gemini(studio, api_key=wrong), "chat/completions", body())
        assert wrong not in caught.value.message and caught.value.status_code == 401
        studio.script.fail = (429, "Resource has been exhausted (e.g. check quota).")
        with pytest.raises(RateLimitError):
            await provider.send(gemini(studio), "chat/completions", body())
        studio.script.fail = (503, "The model is overloaded. Please try again later.")
        with pytest.raises(ServiceUnavailableError):
            await provider.send(gemini(studio), "chat/completions", body())


async def test_stream_cut_before_finish_reason_is_interrupted(studio):
    studio.script.truncate = True
    async with provider_for() as provider:
        stream = await provider.open_stream(gemini(studio), "chat/completions", body(stream=True))
        with pytest.raises(StreamInterruptedError):
            await collect_stream(stream)


async def test_closing_a_stream_early_closes_the_connection(studio):
    studio.script.hang = True
    async with provider_for() as provider:
        stream = await provider.open_stream(gemini(studio), "chat/completions", body(stream=True))
        pieces = stream.aiter_bytes()
        await pieces.__anext__()
        await pieces.aclose()
        await stream.aclose()
        assert await trio.to_thread.run_sync(studio.last.disconnected.wait, 10.0)


async def test_embeddings_batch_with_estimated_usage(studio):
    async with provider_for() as provider:
        answer = orjson.loads((await provider.send(
            deployment("gemini/gemini-embedding-001", api_base=f"{studio.base_url}/v1beta", api_key=KEY),
            "embeddings", {"model": "m", "input": ["hello world", "bye"], "dimensions": 2})).body)
    sent = studio.last.json["requests"]
    assert sent[0] == {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello world"}]},
                       "outputDimensionality": 2}
    assert [d["embedding"] for d in answer["data"]] == [[0.25, 11.0], [0.25, 3.0]]
    assert answer["usage"]["prompt_tokens"] == 3       # AI Studio reports none: estimated (2 + 1)


async def test_vertex_chat_with_service_account_token(vertex):
    async with provider_for() as provider:
        dep = vertex_dep(vertex)
        answer = orjson.loads((await provider.send(dep, "chat/completions", body())).body)
        await provider.send(dep, "chat/completions", body())
        events = await collect_stream(await provider.open_stream(dep, "chat/completions", body(stream=True)))
        # the service account's private key is a secret the scrubber now knows
        assert provider.scrubber.scrub(vertex.credentials["private_key"]) != vertex.credentials["private_key"]
    assert answer["choices"][0]["message"]["content"] == "Hello from the fake Gemini."
    assert vertex.token_requests == 1          # one token, reused while valid
    assert vertex.last.path == "/v1/projects/fake-project/locations/us-central1/publishers/google/models/" \
                               "gemini-2.5-flash:streamGenerateContent"
    assert events[-1] == "[DONE]"
    assert vertex.violations == []


async def test_vertex_embeddings_usage_summed_from_statistics(vertex):
    async with provider_for() as provider:
        answer = orjson.loads((await provider.send(
            deployment("vertex_ai/text-embedding-005", api_base=vertex.base_url, vertex_project="fake-project",
                       vertex_credentials=json.dumps(vertex.credentials)),
            "embeddings", {"model": "m", "input": ["a b c", "d e"]})).body)
    assert vertex.last.path.endswith("/models/text-embedding-005:predict")
    assert vertex.last.json == {"instances": [{"content": "a b c"}, {"content": "d e"}]}
    assert answer["usage"]["prompt_tokens"] == 5
    assert answer["data"][0]["embedding"] == [0.5, 5.0]


async def test_vertex_settings():
    async with provider_for(environ={"VERTEXAI_PROJECT": "p1"}) as provider:
        settings = provider.prepare(deployment("vertex_ai/gemini-2.5-pro")).settings
        assert (settings.project, settings.location) == ("p1", "us-central1")
        from trioproxy.upstream.providers.vertex import VertexAdapter

        adapter = VertexAdapter()
        assert adapter.method_url(settings, "generateContent", False) == (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1/publishers/google/"
            "models/gemini-2.5-pro:generateContent")
        global_settings = provider.prepare(deployment("vertex_ai/gemini-2.5-pro", index=1,
                                                      vertex_location="global")).settings
        assert adapter.method_url(global_settings, "x", True).startswith("https://aiplatform.googleapis.com/v1/")
    async with provider_for() as provider:
        with pytest.raises(ProviderConfigError) as caught:
            provider.prepare(deployment("vertex_ai/gemini-2.5-pro"))
    assert "vertex_project" in str(caught.value)
