"""The built-in ``fake`` provider answers like OpenAI where clients depend on it (issue #15 item 10).

Unit tests of ``trioproxy/upstream/fake/`` called directly; tests/clients runs the real clients
against a real proxy serving it.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from types import SimpleNamespace
from typing import Any

import jsonschema
import orjson
import pytest

from trioproxy.errors import BadRequestError
from trioproxy.upstream.fake import MAX_EMBEDDING_INPUTS, FakeProvider, schema_instance

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
ECHO = "This is a fake answer from fm to: What is the capital of France?"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city", "days"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time"}}


def deployment(**fake: Any) -> Any:
    """What the provider reads of a deployment (``fake`` knobs, upstream model, index)."""
    return SimpleNamespace(fake=fake, upstream_model="fm", index=0)


async def send(body: dict[str, Any], endpoint: str = "chat/completions", **fake: Any) -> dict[str, Any]:
    response = await FakeProvider().send(deployment(**fake), endpoint, body)
    assert response.status == 200
    return orjson.loads(response.body)


async def stream(body: dict[str, Any], endpoint: str = "chat/completions", **fake: Any) -> list[dict[str, Any]]:
    opened = await FakeProvider().open_stream(deployment(**fake), endpoint, body)
    frames = b"".join([piece async for piece in opened.aiter_bytes()]).split(b"\n\n")
    assert frames[-2:] == [b"data: [DONE]", b""]
    return [orjson.loads(frame[len(b"data: "):]) for frame in frames[:-2]]


async def rejected(body: dict[str, Any], endpoint: str = "chat/completions") -> BadRequestError:
    with pytest.raises(BadRequestError) as info:
        await send(body, endpoint)
    return info.value


# --- embeddings ---------------------------------------------------------------------------------

async def test_embedding_input_shapes_and_usage():
    text = await send({"input": "hello world"}, "embeddings")
    strings = await send({"input": ["hello world", "bye"]}, "embeddings")
    one_array = await send({"input": [9906, 1917, 0]}, "embeddings")           # ONE input of 3 tokens
    arrays = await send({"input": [[9906, 1917, 0], [1]]}, "embeddings")
    assert [len(r["data"]) for r in (text, strings, one_array, arrays)] == [1, 2, 1, 2]
    assert [r["usage"]["prompt_tokens"] for r in (text, strings, one_array, arrays)] == [2, 3, 3, 4]
    assert strings["data"][0]["embedding"] == text["data"][0]["embedding"]
    assert arrays["data"][0]["embedding"] == one_array["data"][0]["embedding"] != text["data"][0]["embedding"]
    assert [d["index"] for d in arrays["data"]] == [0, 1] and arrays["object"] == "list"


async def test_embeddings_are_unit_float32_vectors_and_base64_is_little_endian_float32():
    floats = await send({"input": ["a", "b"], "encoding_format": "float"}, "embeddings")
    encoded = await send({"input": ["a", "b"], "encoding_format": "base64"}, "embeddings")
    for as_float, as_base64 in zip(floats["data"], encoded["data"], strict=True):
        vector = as_float["embedding"]
        assert len(vector) == 16 and math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-6)
        assert list(struct.unpack("<16f", struct.pack("<16f", *vector))) == vector   # exactly float32 values
        raw = base64.b64decode(as_base64["embedding"])
        assert list(struct.unpack("<16f", raw)) == vector


async def test_embedding_dimensions():
    result = await send({"input": "x", "dimensions": 1536, "encoding_format": "base64"}, "embeddings")
    assert len(base64.b64decode(result["data"][0]["embedding"])) == 1536 * 4
    short = await send({"input": "x", "dimensions": 3}, "embeddings")
    assert len(short["data"][0]["embedding"]) == 3


@pytest.mark.parametrize(("body", "param"), [
    ({"input": []}, "input"), ({"input": [1, "a"]}, "input"), ({"input": [[1], []]}, "input"),
    ({"input": [True, 2]}, "input"), ({"input": ["x"] * (MAX_EMBEDDING_INPUTS + 1)}, "input"),
    ({"input": "x", "dimensions": 0}, "dimensions"), ({"input": "x", "dimensions": "8"}, "dimensions"),
    ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
])
async def test_embedding_bad_parameters_are_400s_naming_them(body, param):
    error = await rejected(body, "embeddings")
    assert error.param == param


# --- tools --------------------------------------------------------------------------------------

async def test_tools_get_a_call_of_the_first_tool():
    result = await send({"messages": QUESTION, "tools": [WEATHER, CLOCK]})
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_") and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "fake", "days": 1}
    assert result["usage"]["completion_tokens"] >= 1


async def test_tool_choice():
    named = await send({"messages": QUESTION, "tools": [WEATHER, CLOCK],
                        "tool_choice": {"type": "function", "function": {"name": "get_time"}}})
    call = named["choices"][0]["message"]["tool_calls"][0]["function"]
    assert call == {"name": "get_time", "arguments": "{}"}             # a tool without parameters
    none = await send({"messages": QUESTION, "tools": [WEATHER], "tool_choice": "none"})
    assert none["choices"][0]["message"] == {"role": "assistant", "content": ECHO}
    error = await rejected({"messages": QUESTION, "tools": [WEATHER],
                            "tool_choice": {"type": "function", "function": {"name": "missing"}}})
    assert error.param == "tool_choice"


async def test_after_a_tool_result_the_model_answers_in_text():
    messages = [*QUESTION, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    answer = await send({"messages": messages, "tools": [WEATHER]})
    assert answer["choices"][0]["finish_reason"] == "stop" and answer["choices"][0]["message"]["content"] == ECHO
    forced = await send({"messages": messages, "tools": [WEATHER], "tool_choice": "required"})
    assert forced["choices"][0]["finish_reason"] == "tool_calls"


async def test_mock_response_wins_over_tools_and_response_format():
    body = {"messages": QUESTION, "tools": [WEATHER], "response_format": {"type": "json_object"}}
    assert (await send(body, mock_response="fixed"))["choices"][0]["message"]["content"] == "fixed"
    assert (await send({**body, "mock_response": "asked"}))["choices"][0]["message"]["content"] == "asked"


async def test_n_tool_calls_have_their_own_ids():
    result = await send({"messages": QUESTION, "tools": [WEATHER], "n": 2})
    ids = [c["message"]["tool_calls"][0]["id"] for c in result["choices"]]
    assert len(set(ids)) == 2


async def test_streamed_tool_call_is_openais_shape():
    events = await stream({"messages": QUESTION, "tools": [WEATHER], "stream_options": {"include_usage": True}})
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    head = deltas[0]["tool_calls"][0]
    assert deltas[0]["role"] == "assistant" and deltas[0]["content"] is None
    assert head["index"] == 0 and head["id"].startswith("call_") and head["function"] == {"name": "get_weather", "arguments": ""}
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:-1])
    assert len(deltas) > 3 and json.loads(arguments) == {"city": "fake", "days": 1}
    assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "tool_calls"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] >= 1


# --- response_format and schemas ----------------------------------------------------------------

PERSON = {
    "type": "object",
    "$defs": {"Pet": {"type": "object", "properties": {"kind": {"enum": ["cat", "dog"]}, "age": {"type": "integer"}},
                      "required": ["kind", "age"], "additionalProperties": False},
              "Node": {"type": "object", "properties": {"next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}}}},
    "properties": {
        "name": {"type": "string", "minLength": 6, "maxLength": 10},
        "age": {"type": "integer", "minimum": 18, "maximum": 130},
        "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "nickname": {"anyOf": [{"type": "null"}, {"type": "string"}]},
        "email": {"type": "string", "format": "email"},
        "born": {"type": "string", "format": "date"},
        "kind": {"const": "person"},
        "active": {"type": ["boolean", "null"]},
        "pets": {"type": "array", "items": {"$ref": "#/$defs/Pet"}, "minItems": 2, "maxItems": 3},
        "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "minItems": 2},
        "both": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}},
                           {"type": "object", "properties": {"b": {"type": "integer"}}}]},
        "chain": {"$ref": "#/$defs/Node"},
        "anything": {},
    },
    "required": ["name", "age", "score", "nickname", "email", "born", "kind", "active", "pets", "pair", "both", "chain"],
    "additionalProperties": False,
}


def test_schema_instance_validates():
    instance = schema_instance(PERSON)
    jsonschema.validate(instance, PERSON, format_checker=jsonschema.FormatChecker())
    assert instance["pets"] == [{"kind": "cat", "age": 0}] * 2 and instance["kind"] == "person"
    assert instance["nickname"] == "fake" and instance["both"] == {"a": "fake", "b": 0}


@pytest.mark.parametrize("schema", [
    {"type": "integer", "exclusiveMinimum": 5, "maximum": 9}, {"type": "integer", "minimum": -3, "maximum": -1},
    {"type": "number", "minimum": 2.5}, {"type": "array", "maxItems": 0}, {"type": "string", "maxLength": 2},
    {"type": "object", "properties": {"self": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}, "required": ["self"]},
])
def test_schema_instance_bounds_and_recursion(schema):
    jsonschema.validate(schema_instance(schema), schema)


def test_a_ref_cycle_ends():
    assert schema_instance({"$ref": "#"}) == "fake"       # no type: a string, after the hard depth stop
    assert schema_instance({"$ref": "#/$defs/missing"}) == "fake"


async def test_json_schema_response_format():
    result = await send({"messages": QUESTION, "response_format": {
        "type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": PERSON}}})
    jsonschema.validate(json.loads(result["choices"][0]["message"]["content"]), PERSON)
    assert result["choices"][0]["finish_reason"] == "stop"


async def test_json_object_follows_a_schema_in_the_messages_else_wraps_the_answer():
    system = {"role": "system", "content": f"Answer with JSON matching this schema:\n\n{json.dumps(PERSON)}\n\nThanks"}
    guided = await send({"messages": [system, *QUESTION], "response_format": {"type": "json_object"}})
    jsonschema.validate(json.loads(guided["choices"][0]["message"]["content"]), PERSON)
    plain = await send({"messages": QUESTION, "response_format": {"type": "json_object"}})
    assert json.loads(plain["choices"][0]["message"]["content"]) == {"answer": ECHO}
    text = await send({"messages": QUESTION, "response_format": {"type": "text"}})
    assert text["choices"][0]["message"]["content"] == ECHO


async def test_streamed_json_answer():
    events = await stream({"messages": QUESTION, "response_format": {"type": "json_object"}})
    content = "".join(e["choices"][0]["delta"].get("content") or "" for e in events)
    assert json.loads(content) == {"answer": ECHO}


# --- n and logprobs -----------------------------------------------------------------------------

async def test_n_streams_one_choice_per_chunk():
    events = await stream({"messages": QUESTION, "n": 3})
    assert all(len(e["choices"]) == 1 for e in events)
    texts = {i: "" for i in range(3)}
    finishes = {}
    for event in events:
        choice = event["choices"][0]
        texts[choice["index"]] += choice["delta"].get("content") or ""
        finishes[choice["index"]] = choice["finish_reason"]
    assert texts == dict.fromkeys(range(3), ECHO) and finishes == dict.fromkeys(range(3), "stop")


async def test_chat_logprobs_shape():
    result = await send({"messages": QUESTION, "logprobs": True, "top_logprobs": 3, "n": 2})
    for choice in result["choices"]:
        content = choice["logprobs"]["content"]
        assert "".join(t["token"] for t in content) == ECHO and choice["logprobs"]["refusal"] is None
        for token in content:
            assert token["logprob"] < 0 and token["bytes"] == list(token["token"].encode())
            assert len(token["top_logprobs"]) == 3 and token["top_logprobs"][0]["token"] == token["token"]
            assert token["top_logprobs"][0]["logprob"] == token["logprob"]
            assert [t["logprob"] for t in token["top_logprobs"]] == sorted((t["logprob"] for t in token["top_logprobs"]),
                                                                           reverse=True)
    plain = await send({"messages": QUESTION})
    assert plain["choices"][0]["logprobs"] is None


async def test_streamed_chat_logprobs_cover_each_piece():
    events = await stream({"messages": QUESTION, "logprobs": True})
    pieces = [(e["choices"][0]["delta"].get("content"), e["choices"][0]["logprobs"]) for e in events]
    with_text = [(text, lp) for text, lp in pieces if text]
    assert with_text and all([t["token"] for t in lp["content"]] == [text] for text, lp in with_text)
    assert all(t["top_logprobs"] == [] for _, lp in with_text for t in lp["content"])


async def test_completion_logprobs_shape():
    result = await send({"prompt": "What is the capital of France?", "logprobs": 2}, "completions")
    logprobs = result["choices"][0]["logprobs"]
    assert "".join(logprobs["tokens"]) == result["choices"][0]["text"] == ECHO
    assert len(logprobs["token_logprobs"]) == len(logprobs["tokens"]) == len(logprobs["text_offset"])
    assert all(len(top) == 2 for top in logprobs["top_logprobs"])
    assert logprobs["text_offset"][:2] == [0, len(logprobs["tokens"][0])]
    events = await stream({"prompt": "What is the capital of France?", "logprobs": 1}, "completions")
    offsets = [e["choices"][0]["logprobs"]["text_offset"][0] for e in events if e["choices"][0]["text"]]
    assert offsets == logprobs["text_offset"]


@pytest.mark.parametrize(("body", "param"), [
    ({"top_logprobs": 2}, "top_logprobs"), ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"logprobs": "yes"}, "logprobs"), ({"logprobs": True, "top_logprobs": 1.5}, "top_logprobs"),
])
async def test_logprobs_parameters_are_checked(body, param):
    error = await rejected({"messages": QUESTION, **body})
    assert error.param == param
    assert (await rejected({"prompt": "x", "logprobs": 6}, "completions")).param == "logprobs"


# --- what it did before stays -------------------------------------------------------------------

async def test_echo_and_mock_response_stay():
    assert (await send({"messages": QUESTION}))["choices"][0]["message"] == {"role": "assistant", "content": ECHO}
    assert (await send({"messages": QUESTION}, mock_response="fixed"))["choices"][0]["message"]["content"] == "fixed"
    events = await stream({"messages": QUESTION})
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == ECHO
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
