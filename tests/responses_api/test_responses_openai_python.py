"""Golden tests: the translator's output read by the OpenAI Python SDK's own models and parsers.

Two levels. Strict: every event and response object is validated by the SDK's pydantic models
(``openai.types.responses``: required fields, literal types, nested item and part unions), which is
stricter than the SDK at run time (it builds models without validation). Real: the SDK's client
talks HTTP to the translating server (``translating_server.py``) — its SSE decoder, its stream
accumulator (``responses.stream`` → ``ResponseStreamState``), ``output_text``, ``responses.parse``
with a pydantic ``text_format``, its error classes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from trioproxy.errors import UpstreamStreamInterruptedError
from trioproxy.responses_api import (
    ResponsesStreamTranslator,
    chat_response_to_response,
    to_chat_request,
)

from .translating_server import ServerThread, scripted_chat, scripted_chunks

EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)
WEATHER = {"type": "function", "name": "weather", "description": "The weather in a city", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                          "required": ["city", "days"], "additionalProperties": False}}
CITY_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
               "required": ["name", "population"], "additionalProperties": False}

#: one request per kind of answer the scripted model gives
CASES: dict[str, dict[str, Any]] = {
    "text": {"model": "m", "input": "Hello there", "instructions": "Be brief.", "temperature": 0.3,
             "metadata": {"team": "a"}},
    "tool_call": {"model": "m", "input": "Weather?", "tools": [WEATHER], "tool_choice": "required",
                  "parallel_tool_calls": False},
    "json_schema": {"model": "m", "input": "A city", "text": {"format": {"type": "json_schema", "name": "city",
                                                                          "schema": CITY_SCHEMA, "strict": True}}},
    "json_object": {"model": "m", "input": "JSON please", "text": {"format": {"type": "json_object"}}},
    "reasoning": {"model": "thinker", "input": "Hi", "reasoning": {"effort": "low", "summary": "auto"}},
    "refusal": {"model": "refuser", "input": "Something bad"},
    "length": {"model": "length", "input": "Go on", "max_output_tokens": 4},
    "tool_result": {"model": "m", "tools": [WEATHER], "input": [
        {"role": "user", "content": "Weather?"},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city":"Paris","days":1}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]},
}


def translated_stream(request: dict[str, Any]) -> list[dict[str, Any]]:
    chat = to_chat_request({**request, "stream": True})
    translator = ResponsesStreamTranslator(request)
    events: list[dict[str, Any]] = []
    try:
        for chunk in scripted_chunks(chat):
            events += translator.feed(chunk)
    except UpstreamStreamInterruptedError as exc:
        return events + translator.fail(exc)
    return events + translator.finish()


@pytest.fixture
def client(responses_server: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=responses_server.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


# --- strict: the SDK's models validate every object ------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_event_validates_as_the_sdks_event_model(case: str) -> None:
    events = translated_stream(CASES[case])
    for event in events:
        model = EVENTS.validate_python(event)
        assert model.type == event["type"]
        assert model.sequence_number == event["sequence_number"]
    final = Response.model_validate(events[-1]["response"])
    assert final.status == ("incomplete" if case == "length" else "completed")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_whole_response_validates_as_the_sdks_response(case: str) -> None:
    request = CASES[case]
    response = Response.model_validate(chat_response_to_response(scripted_chat(to_chat_request(request)), request))
    assert response.object == "response" and response.id.startswith("resp_")
    if case == "text":
        assert response.output_text == "You said: Hello there"
        assert response.instructions == "Be brief." and response.metadata == {"team": "a"}
    if case == "tool_call":
        call = response.output[0]
        assert call.type == "function_call" and call.name == "weather"
        assert json.loads(call.arguments) == {"city": "Paris", "days": 1}
    if case == "reasoning":
        assert [item.type for item in response.output] == ["reasoning", "message"]
    if case == "refusal":
        assert response.output[0].content[0].type == "refusal"


def test_a_failed_stream_validates_too() -> None:
    events = translated_stream({"model": "broken", "input": "Hi"})
    parsed = [EVENTS.validate_python(e) for e in events]
    assert [type(p).__name__ for p in parsed[-2:]] == ["ResponseErrorEvent", "ResponseFailedEvent"]
    assert parsed[-1].response.status == "failed" and parsed[-1].response.error.code == "server_error"


def test_the_sdks_stream_accumulator_rebuilds_the_final_response() -> None:
    """``ResponseStreamState`` (what ``client.responses.stream`` runs) over the translated events."""
    for case in ("text", "tool_call", "reasoning", "refusal", "json_schema"):
        state: ResponseStreamState[Any] = ResponseStreamState(input_tools=openai.omit, text_format=openai.omit)
        snapshots = []
        for event in translated_stream(CASES[case]):
            for out in state.handle_event(EVENTS.validate_python(event)):
                if out.type == "response.output_text.delta":
                    snapshots.append(out.snapshot)
        final = state._completed_response
        assert final is not None
        whole = Response.model_validate(chat_response_to_response(
            scripted_chat(to_chat_request(CASES[case])), CASES[case]))
        assert final.output_text == whole.output_text
        if snapshots:
            assert snapshots[-1] == final.output_text


def test_the_accumulator_parses_a_text_format_model() -> None:
    class City(pydantic.BaseModel):
        name: str
        population: int

    state: ResponseStreamState[City] = ResponseStreamState(input_tools=openai.omit, text_format=City)
    parsed = []
    for event in translated_stream(CASES["json_schema"]):
        for out in state.handle_event(EVENTS.validate_python(event)):
            if out.type == "response.output_text.done":
                parsed.append(out.parsed)
    assert parsed == [City(name="Paris", population=1)]
    assert state._completed_response is not None and state._completed_response.output_parsed == parsed[0]


# --- real: the SDK's client over HTTP ---------------------------------------------------------------


def test_create(client: openai.OpenAI) -> None:
    response = client.responses.create(model="m", input="What is the capital of France?", instructions="Be brief.")
    assert response.output_text == "You said: What is the capital of France?"
    assert response.status == "completed" and response.model == "up-m"
    assert response.usage is not None and response.usage.total_tokens == response.usage.input_tokens + 8


def test_create_stream(client: openai.OpenAI, responses_server: ServerThread) -> None:
    events = list(client.responses.create(model="m", input="Hello", stream=True))
    names = [type(e).__name__ for e in events]
    assert names[:4] == ["ResponseCreatedEvent", "ResponseInProgressEvent", "ResponseOutputItemAddedEvent",
                         "ResponseContentPartAddedEvent"]
    assert names[-1] == "ResponseCompletedEvent"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "You said: Hello"
    assert events[-1].response.usage.output_tokens == 3
    raw = responses_server.stream_bytes[-1]
    assert raw.startswith(b"event: response.created\ndata: {") and b"[DONE]" not in raw


def test_stream_helper_final_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="m", input="Hello") as stream:
        snapshots = [e.snapshot for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert snapshots[-1] == final.output_text == "You said: Hello"
    assert final.id.startswith("resp_") and final.output[0].id.startswith("msg_")


def test_parse_with_a_pydantic_text_format(client: openai.OpenAI, responses_server: ServerThread) -> None:
    class City(pydantic.BaseModel):
        name: str
        population: int

    parsed = client.responses.parse(model="m", input="A city", text_format=City)
    assert parsed.output_parsed == City(name="Paris", population=1)
    sent = responses_server.chat_requests[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "City"
    with client.responses.stream(model="m", input="A city", text_format=City) as stream:
        assert stream.get_final_response().output_parsed == City(name="Paris", population=1)


def test_tool_call_round_trip(client: openai.OpenAI, responses_server: ServerThread) -> None:
    first = client.responses.create(model="m", input="Weather in Paris?", tools=[WEATHER])
    call = first.output[0]
    assert call.type == "function_call" and call.status == "completed"
    second = client.responses.create(model="m", tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Paris?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21°C"},
    ])
    assert second.output_text == "The tool said: sunny, 21°C"
    assert responses_server.chat_requests[-1]["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.call_id, "type": "function", "function": {"name": "weather", "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21°C"},
    ]


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    with client.responses.stream(model="m", input="Weather?", tools=[WEATHER]) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    call = final.output[0]
    assert "".join(deltas) == call.arguments and json.loads(call.arguments) == {"city": "Paris", "days": 1}


def test_a_refused_request_is_a_bad_request_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="Hi", tools=[{"type": "web_search"}])
    assert caught.value.status_code == 400
    assert caught.value.param == "tools[0]" and caught.value.code == "unsupported_parameter"
    assert "'web_search' is a built-in tool" in caught.value.body["message"]


def test_a_broken_stream_ends_with_the_error_events(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="broken", input="Hi", stream=True))
    error, failed = events[-2:]
    assert error.type == "error" and error.code == "upstream_stream_interrupted"
    assert failed.type == "response.failed" and failed.response.error.message == error.message
    with client.responses.stream(model="broken", input="Hi") as stream, \
            pytest.raises(RuntimeError, match="response.completed"):
        stream.get_final_response()      # the SDK's helper: no completed response to return
