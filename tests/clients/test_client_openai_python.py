"""The official OpenAI Python SDK (sync and async, under Trio) against a real trioproxy.

Models: ``fake-chat`` / ``text-embedding-3-small`` are the built-in fake provider; ``relay-*`` go
through the proxy's OpenAI-compatible provider to tests/support/fake_upstream.py.
"""

from __future__ import annotations

import json
import math

import jsonschema
import openai
import pydantic
import pytest

from support.fake_upstream import fake_embedding

from .conftest import (
    BROKEN_STREAM,
    CHAT,
    EMBED,
    OVERLOADED,
    RELAY_CHAT,
    RELAY_EMBED,
    UPSTREAM_TEXT,
    ClientProxy,
)

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
ECHO = f"This is a fake answer from {CHAT} to: What is the capital of France?"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7},
                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "days", "unit"],
            "additionalProperties": False,
        },
    },
}
CLOCK_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def client(client_proxy: ClientProxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=client_proxy.url, api_key=client_proxy.key, max_retries=0)


def test_chat(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=CHAT, messages=MESSAGES)
    assert completion.choices[0].message.content == ECHO
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=CHAT, messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ECHO
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_relayed_chat_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=RELAY_CHAT, messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == UPSTREAM_TEXT


def test_embeddings_default_base64_equals_float(client: openai.OpenAI) -> None:
    """The SDK asks for base64 when the caller names no format and decodes it itself."""
    default = client.embeddings.create(model=EMBED, input=["first text", "second text"])
    floats = client.embeddings.create(model=EMBED, input=["first text", "second text"], encoding_format="float")
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert [d.index for d in default.data] == [0, 1] and default.data[0].embedding != default.data[1].embedding
    assert math.isclose(sum(v * v for v in default.data[0].embedding), 1.0, rel_tol=1e-5)
    assert default.usage.prompt_tokens == 4


def test_embeddings_dimensions(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model=EMBED, input="hello", dimensions=256)
    assert len(result.data[0].embedding) == 256


def test_embeddings_token_arrays(client: openai.OpenAI) -> None:
    one = client.embeddings.create(model=EMBED, input=[15339, 1917, 0])           # one token-id array: ONE input
    many = client.embeddings.create(model=EMBED, input=[[15339, 1917, 0], [9906]])
    assert len(one.data) == 1 and one.usage.prompt_tokens == 3
    assert len(many.data) == 2 and many.data[0].embedding == one.data[0].embedding
    assert many.usage.prompt_tokens == 4


def test_relayed_embeddings_default_base64(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model=RELAY_EMBED, input="first text")
    assert result.data[0].embedding == pytest.approx(fake_embedding("first text"))


def test_tool_call(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=CHAT, messages=MESSAGES, tools=[WEATHER_TOOL, CLOCK_TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_TOOL["function"]["parameters"])


def test_tool_choice_names_a_tool_and_a_tool_result_gets_text(client: openai.OpenAI) -> None:
    named = client.chat.completions.create(model=CHAT, messages=MESSAGES, tools=[WEATHER_TOOL, CLOCK_TOOL],
                                           tool_choice={"type": "function", "function": {"name": "get_time"}})
    call = named.choices[0].message.tool_calls[0]
    assert call.function.name == "get_time" and call.function.arguments == "{}"
    follow_up = [*MESSAGES, named.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "12:00"}]
    answer = client.chat.completions.create(model=CHAT, messages=follow_up, tools=[WEATHER_TOOL, CLOCK_TOOL])
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content == ECHO


def test_tool_call_stream_helper(client: openai.OpenAI) -> None:
    """The SDK's streaming helper accumulates the tool call's argument pieces."""
    with client.chat.completions.stream(model=CHAT, messages=MESSAGES, tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "fake", "days": 1, "unit": "celsius"}


class City(pydantic.BaseModel):
    name: str
    population: int
    coastal: bool
    landmarks: list[str]


def test_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    """``chat.completions.parse``: ``response_format`` json_schema (strict) → an instance."""
    completion = client.chat.completions.parse(model=CHAT, messages=MESSAGES, response_format=City)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, City) and parsed.landmarks == ["fake"]


def test_json_object_mode(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=CHAT, messages=MESSAGES, response_format={"type": "json_object"})
    assert json.loads(completion.choices[0].message.content) == {"answer": ECHO}


def test_n_choices_and_logprobs(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=CHAT, messages=MESSAGES, n=3, logprobs=True, top_logprobs=2)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    logprobs = completion.choices[0].logprobs.content
    assert "".join(t.token for t in logprobs) == ECHO
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].logprob == t.logprob < 0 for t in logprobs)
    stream = client.chat.completions.create(model=CHAT, messages=MESSAGES, n=2, stream=True)
    texts = ["", ""]
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == [ECHO, ECHO]


def test_legacy_completions(client: openai.OpenAI) -> None:
    completion = client.completions.create(model=CHAT, prompt="Say hi", logprobs=1)
    assert completion.choices[0].text == f"This is a fake answer from {CHAT} to: Say hi"
    assert completion.choices[0].logprobs.tokens[0] == "This"


def test_models_list(client: openai.OpenAI) -> None:
    assert {CHAT, EMBED, RELAY_CHAT} <= {model.id for model in client.models.list()}


def test_mock_response_is_answered_by_the_proxy(client: openai.OpenAI) -> None:
    """LiteLLM answers a per-request ``mock_response`` itself (issue #15 item 11): so does trioproxy,
    also for a model relayed to an OpenAI-compatible upstream."""
    completion = client.chat.completions.create(model=RELAY_CHAT, messages=MESSAGES,
                                                extra_body={"mock_response": "mocked"})
    assert completion.choices[0].message.content == "mocked"


def test_models_retrieve(client: openai.OpenAI) -> None:
    """GET /v1/models/{model} (issue #15 item 8)."""
    assert client.models.retrieve(CHAT).id == CHAT


def test_wrong_key_is_an_authentication_error(client_proxy: ClientProxy) -> None:
    bad = openai.OpenAI(base_url=client_proxy.url, api_key="sk-wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model=CHAT, messages=MESSAGES)
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"


def test_unknown_model_is_a_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-model", input="x")


def test_upstream_429_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=OVERLOADED, messages=MESSAGES)
    assert info.value.code == "rate_limit_exceeded"


def test_interrupted_stream_raises_an_api_error(client: openai.OpenAI) -> None:
    """The proxy ends a broken stream with an error event, never ``[DONE]``: the SDK raises."""
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model=BROKEN_STREAM, messages=MESSAGES, stream=True):
            received.append(chunk)
    assert "incomplete" in info.value.message and received


def test_bad_parameter_is_a_bad_request_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=EMBED, input="x", dimensions=0)
    assert info.value.param == "dimensions"


async def test_async_client_under_trio(client_proxy: ClientProxy) -> None:
    client = openai.AsyncOpenAI(base_url=client_proxy.url, api_key=client_proxy.key, max_retries=0)
    completion = await client.chat.completions.create(model=CHAT, messages=MESSAGES)
    assert completion.choices[0].message.content == ECHO
    stream = await client.chat.completions.create(model=CHAT, messages=MESSAGES, stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == ECHO
    embedding = await client.embeddings.create(model=EMBED, input="hello")
    assert len(embedding.data[0].embedding) == 16
    await client.close()


# --- the Responses API (issue #15 item 9): translated to chat completions, answered in its shape ---

def test_responses(client: openai.OpenAI) -> None:
    response = client.responses.create(model=CHAT, input="What is the capital of France?")
    assert response.output_text == ECHO and response.status == "completed"
    assert response.usage is not None and response.usage.output_tokens > 0


def test_responses_stream(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=CHAT, input="What is the capital of France?", stream=True))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == ECHO
    assert events[-1].type == "response.completed"


def test_responses_tool_call(client: openai.OpenAI) -> None:
    tool = {"type": "function", "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    response = client.responses.create(model=CHAT, input="What is the capital of France?", tools=[tool])
    (call,) = [item for item in response.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "fake"}


def test_responses_relayed_to_an_openai_compatible_upstream(client: openai.OpenAI) -> None:
    response = client.responses.create(model=RELAY_CHAT, input="hi", instructions="be brief")
    assert response.output_text == UPSTREAM_TEXT
