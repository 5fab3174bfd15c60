"""``to_chat_request``: every Responses request field, every input item and content part, every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from trioproxy.errors import BadRequestError
from trioproxy.responses_api import (
    IGNORED,
    PASSED,
    REFUSED,
    TRANSLATED,
    referenced_item_ids,
    to_chat_request,
)
from trioproxy.responses_api.request import BUILTIN_ITEM_TYPES, BUILTIN_TOOL_TYPES

WEATHER = {"type": "function", "name": "weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
           "strict": True}
CHAT_WEATHER = {"type": "function", "function": {"name": "weather", "description": "The weather in a city",
                                                 "parameters": WEATHER["parameters"], "strict": True}}
CLOCK = {"type": "function", "name": "clock", "parameters": {"type": "object", "properties": {}}}


def chat(**body: Any) -> dict[str, Any]:
    return to_chat_request({"model": "m", **body})


def refused(**body: Any) -> BadRequestError:
    with pytest.raises(BadRequestError) as caught:
        to_chat_request({"model": "m", **body})
    assert caught.value.status_code == 400
    return caught.value


# --- the tables ----------------------------------------------------------------------------------

#: every field of ``ResponseCreateParamsBase`` in the OpenAI Python SDK the tables were written
#: against (openai 2.54); a field added later passes through untouched, like any unknown field
SDK_FIELDS_2_54 = {
    "background", "context_management", "conversation", "include", "input", "instructions",
    "max_output_tokens", "max_tool_calls", "metadata", "model", "moderation", "parallel_tool_calls",
    "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
    "reasoning", "safety_identifier", "service_tier", "store", "stream_options", "temperature", "text",
    "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user", "stream",
}


def test_every_responses_field_is_in_exactly_one_table() -> None:
    tables = [set(TRANSLATED), set(PASSED), set(IGNORED), set(REFUSED)]
    for i, a in enumerate(tables):
        for b in tables[i + 1:]:
            assert not a & b
    assert set().union(*tables) == SDK_FIELDS_2_54


def test_the_tables_name_only_fields_the_installed_sdk_knows() -> None:
    from openai.types.responses.response_create_params import ResponseCreateParamsBase

    known = set(ResponseCreateParamsBase.__annotations__) | {"stream"}
    assert set(TRANSLATED) | PASSED | set(IGNORED) | set(REFUSED) <= known


# --- top-level fields ----------------------------------------------------------------------------


def test_a_string_input_is_one_user_message() -> None:
    assert chat(input="Hello") == {"model": "m", "messages": [{"role": "user", "content": "Hello"}]}


def test_instructions_become_the_first_system_message() -> None:
    body = chat(instructions="Be brief.", input="Hello")
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert chat(instructions="", input="Hi")["messages"] == [{"role": "user", "content": "Hi"}]
    assert chat(instructions="Only instructions.")["messages"] == [{"role": "system", "content": "Only instructions."}]
    err = refused(instructions=["not", "text"], input="Hi")
    assert (err.param, err.code) == ("instructions", "invalid_type")


def test_model_and_input_are_required() -> None:
    with pytest.raises(BadRequestError) as caught:
        to_chat_request({"input": "Hi"})
    assert (caught.value.param, caught.value.code) == ("model", "missing_required_parameter")
    with pytest.raises(BadRequestError) as caught:
        to_chat_request({"model": 7, "input": "Hi"})
    assert (caught.value.param, caught.value.code) == ("model", "invalid_type")
    assert (refused().param, refused().code) == ("input", "missing_required_parameter")
    assert refused(input=[]).param == "input"
    assert refused(input=42).code == "invalid_type"
    with pytest.raises(BadRequestError):
        to_chat_request(["not", "an", "object"])  # type: ignore[arg-type]


def test_sampling_and_identity_fields_are_copied() -> None:
    values = {"temperature": 0.2, "top_p": 0.9, "user": "u-1", "safety_identifier": "hash-1",
              "prompt_cache_key": "k", "prompt_cache_retention": "24h", "service_tier": "flex"}
    assert set(values) == PASSED
    body = chat(input="Hi", **values)
    for field, value in values.items():
        assert body[field] == value
    assert "temperature" not in chat(input="Hi", temperature=None)


def test_ignored_fields_are_not_sent_upstream() -> None:
    values = {"store": True, "include": ["reasoning.encrypted_content"], "truncation": "auto",
              "max_tool_calls": 3, "stream_options": {"include_obfuscation": False},
              "context_management": [{"type": "compaction"}], "prompt_cache_options": {"mode": "implicit"}}
    assert set(values) == set(IGNORED)
    body = chat(input="Hi", **values)
    assert body == {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize("field, value", [
    ("previous_response_id", "resp_123"),
    ("conversation", "conv_123"),
    ("prompt", {"id": "pmpt_123"}),
    ("background", True),
    ("moderation", {"model": "omni-moderation-latest"}),
])
def test_fields_that_need_openais_own_responses_api_are_refused(field: str, value: Any) -> None:
    assert field in REFUSED
    err = refused(input="Hi", **{field: value})
    assert err.param == field
    assert err.code == "unsupported_parameter"
    assert REFUSED[field] in err.message


def test_refused_fields_given_as_null_or_false_are_accepted() -> None:
    body = chat(input="Hi", previous_response_id=None, conversation=None, prompt=None, background=False,
                moderation=None)
    assert body == {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


def test_fields_outside_the_responses_api_pass_through() -> None:
    body = chat(input="Hi", top_k=40, guardrails=["mask"], mock_response="canned", cache={"no-cache": True})
    assert body["top_k"] == 40
    assert body["guardrails"] == ["mask"]
    assert body["mock_response"] == "canned"
    assert body["cache"] == {"no-cache": True}
    # an extra field never replaces what the translation wrote
    body = chat(input="Hi", messages=[{"role": "user", "content": "smuggled"}], stream=True,
                stream_options={"include_usage": False})
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    assert body["stream_options"] == {"include_usage": True}


def test_stream_asks_for_the_usage_chunk() -> None:
    assert chat(input="Hi", stream=True)["stream_options"] == {"include_usage": True}
    assert chat(input="Hi", stream=True)["stream"] is True
    assert "stream" not in chat(input="Hi", stream=False)
    assert refused(input="Hi", stream="yes").param == "stream"


def test_max_output_tokens() -> None:
    assert chat(input="Hi", max_output_tokens=64)["max_tokens"] == 64
    body = to_chat_request({"model": "m", "input": "Hi", "max_output_tokens": 64},
                           max_tokens_field="max_completion_tokens")
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body
    for bad in (0, -1, 1.5, True, "64"):
        assert refused(input="Hi", max_output_tokens=bad).param == "max_output_tokens"
    with pytest.raises(ValueError):
        to_chat_request({"model": "m", "input": "Hi"}, max_tokens_field="n")


def test_metadata_is_the_proxys() -> None:
    assert chat(input="Hi", metadata={"tags": "a"})["metadata"] == {"tags": "a"}
    assert refused(input="Hi", metadata="tags").param == "metadata"


def test_reasoning_effort() -> None:
    body = chat(input="Hi", reasoning={"effort": "low", "summary": "auto"})
    assert body["reasoning_effort"] == "low"
    assert "reasoning" not in body
    assert "reasoning_effort" not in chat(input="Hi", reasoning={"summary": "auto"})
    assert refused(input="Hi", reasoning={"effort": "extreme"}).param == "reasoning.effort"
    assert refused(input="Hi", reasoning="low").param == "reasoning"


def test_logprobs_are_asked_when_include_names_them() -> None:
    body = chat(input="Hi", include=["message.output_text.logprobs"], top_logprobs=3)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 3)
    assert "top_logprobs" not in chat(input="Hi", top_logprobs=3)
    assert refused(input="Hi", top_logprobs=21).param == "top_logprobs"
    assert refused(input="Hi", include="logprobs").param == "include"


# --- text.format ---------------------------------------------------------------------------------


def test_json_schema_text_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    body = chat(input="Hi", text={"format": {"type": "json_schema", "name": "city", "schema": schema,
                                             "description": "A city", "strict": True}})
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "city", "schema": schema, "description": "A city", "strict": True}}
    unnamed = chat(input="Hi", text={"format": {"type": "json_schema", "schema": schema}})
    assert unnamed["response_format"]["json_schema"]["name"] == "response"


def test_json_object_text_and_verbosity() -> None:
    assert chat(input="Hi", text={"format": {"type": "json_object"}})["response_format"] == {"type": "json_object"}
    assert "response_format" not in chat(input="Hi", text={"format": {"type": "text"}})
    assert chat(input="Hi", text={"verbosity": "low"})["verbosity"] == "low"


@pytest.mark.parametrize("text, param", [
    ("json", "text"),
    ({"format": "json"}, "text.format"),
    ({"format": {"type": "yaml"}}, "text.format.type"),
    ({"format": {}}, "text.format.type"),
    ({"format": {"type": "json_schema", "name": "x"}}, "text.format.schema"),
    ({"format": {"type": "json_schema", "schema": []}}, "text.format.schema"),
    ({"verbosity": "loud"}, "text.verbosity"),
])
def test_bad_text_settings_name_the_field(text: Any, param: str) -> None:
    assert refused(input="Hi", text=text).param == param


# --- tools ---------------------------------------------------------------------------------------


def test_function_tools_become_chat_tools() -> None:
    body = chat(input="Hi", tools=[WEATHER, CLOCK], parallel_tool_calls=False)
    assert body["tools"] == [CHAT_WEATHER, {"type": "function", "function": {
        "name": "clock", "parameters": {"type": "object", "properties": {}}}}]
    assert body["parallel_tool_calls"] is False
    minimal = chat(input="Hi", tools=[{"type": "function", "name": "ping", "parameters": None, "strict": None}])
    assert minimal["tools"] == [{"type": "function", "function": {"name": "ping"}}]


def test_parallel_tool_calls_and_tool_choice_only_travel_with_tools() -> None:
    body = chat(input="Hi", parallel_tool_calls=True, tool_choice="auto", tools=[])
    assert "parallel_tool_calls" not in body and "tool_choice" not in body and "tools" not in body
    assert chat(input="Hi", tool_choice="none")  # fine: nothing to choose from
    err = refused(input="Hi", tool_choice="required")
    assert err.param == "tool_choice"


@pytest.mark.parametrize("kind", sorted(BUILTIN_TOOL_TYPES))
def test_built_in_tools_are_refused_by_name(kind: str) -> None:
    err = refused(input="Hi", tools=[WEATHER, {"type": kind}])
    assert err.param == "tools[1]"
    assert err.code == "unsupported_parameter"
    assert repr(kind) in err.message and "built-in tool" in err.message
    assert "model_info.supported_endpoints" in err.message


@pytest.mark.parametrize("tool, param", [
    ("weather", "tools[0]"),
    ({"name": "x"}, "tools[0].type"),
    ({"type": "plugin", "name": "x"}, "tools[0].type"),
    ({"type": "function"}, "tools[0].name"),
    ({"type": "function", "name": "x", "parameters": "{}"}, "tools[0].parameters"),
    ({"type": "function", "name": "x", "strict": "yes"}, "tools[0].strict"),
    ({"type": "function", "name": "x", "description": 3}, "tools[0].description"),
])
def test_bad_tools_name_the_field(tool: Any, param: str) -> None:
    assert refused(input="Hi", tools=[tool]).param == param
    assert refused(input="Hi", tools={"type": "function"}).param == "tools"


def test_tool_choice_strings_and_function() -> None:
    for choice in ("auto", "none", "required"):
        assert chat(input="Hi", tools=[WEATHER], tool_choice=choice)["tool_choice"] == choice
        assert chat(input="Hi", tools=[WEATHER], tool_choice={"type": choice})["tool_choice"] == choice
    body = chat(input="Hi", tools=[WEATHER, CLOCK], tool_choice={"type": "function", "name": "clock"})
    assert body["tool_choice"] == {"type": "function", "function": {"name": "clock"}}
    assert refused(input="Hi", tools=[WEATHER], tool_choice={"type": "function", "name": "nope"}).param == "tool_choice.name"
    assert refused(input="Hi", tools=[WEATHER], tool_choice={"type": "function"}).param == "tool_choice.name"
    assert refused(input="Hi", tools=[WEATHER], tool_choice="sometimes").param == "tool_choice"
    assert refused(input="Hi", tools=[WEATHER], tool_choice=3).param == "tool_choice"


def test_allowed_tools_narrow_the_tools() -> None:
    body = chat(input="Hi", tools=[WEATHER, CLOCK], tool_choice={
        "type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "weather"}]})
    assert body["tools"] == [CHAT_WEATHER]
    assert body["tool_choice"] == "required"
    err = refused(input="Hi", tools=[WEATHER], tool_choice={
        "type": "allowed_tools", "mode": "auto", "tools": [{"type": "web_search"}]})
    assert err.param == "tool_choice.tools[0]"
    assert refused(input="Hi", tools=[WEATHER], tool_choice={
        "type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "nope"}]}).param == "tool_choice.tools"
    assert refused(input="Hi", tools=[WEATHER], tool_choice={
        "type": "allowed_tools", "mode": "sometimes", "tools": []}).param == "tool_choice.mode"
    assert refused(input="Hi", tools=[WEATHER], tool_choice={
        "type": "allowed_tools", "mode": "auto", "tools": []}).param == "tool_choice.tools"


def test_a_tool_choice_of_a_built_in_tool_is_refused() -> None:
    err = refused(input="Hi", tools=[WEATHER], tool_choice={"type": "web_search_preview"})
    assert err.param == "tool_choice" and "'web_search_preview'" in err.message


# --- input items ---------------------------------------------------------------------------------


def test_messages_by_role() -> None:
    body = chat(input=[
        {"role": "developer", "content": "Answer in French."},
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Rule one."},
                                                          {"type": "input_text", "text": "Rule two."}]},
        {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Bon", "annotations": []},
                     {"type": "output_text", "text": "jour", "annotations": []}]},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "Non."}]},
    ])
    assert body["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "system", "content": "Rule one.\nRule two."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "assistant", "content": "Non."},
    ]


def test_user_content_parts() -> None:
    body = chat(input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is in these?"},
        {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "original"},
        {"type": "input_image", "image_url": "https://example.com/b.png", "detail": None},
        {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
    ]}])
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
    ]


@pytest.mark.parametrize("message, param", [
    ({"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}, "input[0].content[0].file_id"),
    ({"role": "user", "content": [{"type": "input_image"}]}, "input[0].content[0].image_url"),
    ({"role": "user", "content": [{"type": "input_image", "image_url": "https://x", "detail": "huge"}]},
     "input[0].content[0].detail"),
    ({"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}, "input[0].content[0].file_id"),
    ({"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}, "input[0].content[0].file_url"),
    ({"role": "user", "content": [{"type": "input_audio"}]}, "input[0].content[0].input_audio"),
    ({"role": "user", "content": [{"type": "input_text", "text": 3}]}, "input[0].content[0].text"),
    ({"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}, "input[0].content[0].type"),
    ({"role": "user", "content": [{"text": "no type"}]}, "input[0].content[0].type"),
    ({"role": "user", "content": ["bare"]}, "input[0].content[0]"),
    ({"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]}, "input[0].content[0]"),
    ({"role": "user", "content": 3}, "input[0].content"),
    ({"role": "user"}, "input[0].content"),
    ({"role": "tool", "content": "x"}, "input[0].role"),
    ({"type": "message", "content": "x"}, "input[0].role"),
])
def test_bad_messages_name_the_field(message: dict[str, Any], param: str) -> None:
    assert refused(input=[message]).param == param


def test_function_calls_join_the_assistant_turn_and_outputs_become_tool_messages() -> None:
    body = chat(input=[
        {"role": "user", "content": "Weather in Paris and the time?"},
        {"role": "assistant", "content": "Let me check."},
        {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "weather", "arguments": '{"city":"Paris"}',
         "status": "completed"},
        {"type": "function_call", "call_id": "call_b", "name": "clock", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_a", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_b",
         "output": [{"type": "input_text", "text": "12:00"}, {"type": "input_text", "text": " UTC"}]},
    ])
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and the time?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "clock", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00 UTC"},
    ]


def test_a_function_call_after_a_user_message_opens_an_assistant_turn() -> None:
    body = chat(input=[{"role": "user", "content": "Hi"},
                       {"type": "function_call", "call_id": "c1", "name": "clock", "arguments": "{}"},
                       {"type": "function_call_output", "call_id": "c1", "output": "noon"}])
    assert body["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "clock", "arguments": "{}"}}]}


@pytest.mark.parametrize("item, param", [
    ({"type": "function_call", "name": "clock", "arguments": "{}"}, "input[1].call_id"),
    ({"type": "function_call", "call_id": "c", "arguments": "{}"}, "input[1].name"),
    ({"type": "function_call", "call_id": "c", "name": "clock", "arguments": {}}, "input[1].arguments"),
    ({"type": "function_call_output", "output": "x"}, "input[1].call_id"),
    ({"type": "function_call_output", "call_id": "never-called", "output": "x"}, "input[1].call_id"),
])
def test_bad_function_items_name_the_field(item: dict[str, Any], param: str) -> None:
    assert refused(input=[{"role": "user", "content": "Hi"}, item]).param == param


def test_function_call_output_carries_text_only() -> None:
    call = {"type": "function_call", "call_id": "c", "name": "camera", "arguments": "{}"}
    err = refused(input=[call, {"type": "function_call_output", "call_id": "c",
                                "output": [{"type": "input_image", "image_url": "https://x"}]}])
    assert err.param == "input[1].output[0]"
    assert refused(input=[call, {"type": "function_call_output", "call_id": "c", "output": 3}]).param == "input[1].output"


def test_reasoning_items_are_not_replayed() -> None:
    body = chat(input=[{"role": "user", "content": "Hi"},
                       {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}],
                        "encrypted_content": "gAAA"},
                       {"role": "assistant", "content": "Hello"}])
    assert body["messages"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


def test_item_references() -> None:
    items = [{"role": "user", "content": "Hi"}, {"type": "item_reference", "id": "rs_abc"},
             {"type": "item_reference", "id": "msg_abc"}, {"role": "user", "content": "More"}]
    assert referenced_item_ids({"input": items}) == ["rs_abc", "msg_abc"]
    assert referenced_item_ids({"input": "text"}) == []
    err = refused(input=items)
    assert err.param == "input[2]" and "'msg_abc'" in err.message and "store = false" in err.message
    stored = {"msg_abc": {"id": "msg_abc", "type": "message", "role": "assistant", "status": "completed",
                          "content": [{"type": "output_text", "text": "Hello", "annotations": []}]}}
    body = to_chat_request({"model": "m", "input": items}, items=stored)
    assert body["messages"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                                {"role": "user", "content": "More"}]
    assert refused(input=[{"type": "item_reference"}]).param == "input[0].id"
    with pytest.raises(BadRequestError) as caught:
        to_chat_request({"model": "m", "input": [{"type": "item_reference", "id": "x"}]},
                        items={"x": {"type": "item_reference", "id": "x"}})
    assert caught.value.param == "input[0]"


@pytest.mark.parametrize("kind", sorted(BUILTIN_ITEM_TYPES))
def test_items_of_built_in_tools_are_refused_by_type(kind: str) -> None:
    err = refused(input=[{"role": "user", "content": "Hi"}, {"type": kind, "id": "x"}])
    assert err.param == "input[1]" and repr(kind) in err.message


def test_unknown_and_untyped_items() -> None:
    assert refused(input=[{"type": "telepathy"}]).param == "input[0].type"
    assert refused(input=[{"content": "no role"}]).param == "input[0].type"
    assert refused(input=["bare string"]).param == "input[0]"
