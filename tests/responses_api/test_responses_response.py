"""``chat_response_to_response``: output items, status, usage, the echoed settings, ids."""

from __future__ import annotations

from typing import Any

from trioproxy.responses_api import chat_response_to_response, referenceable_items, to_chat_request

from .translating_server import counting_ids

REQUEST = {"model": "gpt-test", "input": "Hi", "instructions": "Be brief.", "temperature": 0.5,
           "max_output_tokens": 100, "metadata": {"team": "a"}, "user": "u-1"}
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
         "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}


def answer(message: dict[str, Any], finish: str | None = "stop", **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "up-model",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": USAGE, **extra}


def translate(chat_answer: dict[str, Any], request: dict[str, Any] = REQUEST) -> dict[str, Any]:
    return chat_response_to_response(chat_answer, request, new_id=counting_ids(), clock=lambda: 1_800_000_000.5)


def test_a_text_answer() -> None:
    response = translate(answer({"content": "Hello!"}))
    assert response["id"] == "resp_0002"
    assert response["object"] == "response"
    assert (response["status"], response["created_at"], response["completed_at"]) == ("completed", 1_700_000_000,
                                                                                      1_800_000_000)
    assert response["model"] == "up-model"
    assert response["output"] == [{"id": "msg_0001", "type": "message", "status": "completed", "role": "assistant",
                                   "content": [{"type": "output_text", "text": "Hello!", "annotations": [],
                                                "logprobs": []}]}]
    assert response["usage"] == {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
                                 "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
                                 "total_tokens": 17}
    assert (response["error"], response["incomplete_details"]) == (None, None)


def test_the_request_settings_are_echoed() -> None:
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}, "strict": True}]
    fmt = {"type": "json_schema", "name": "city", "schema": {"type": "object"}}
    request = {**REQUEST, "tools": tools, "tool_choice": "required", "parallel_tool_calls": False,
               "text": {"format": fmt, "verbosity": "low"}, "reasoning": {"effort": "low"}, "top_p": 0.9,
               "store": True, "truncation": "auto", "prompt_cache_key": "k", "service_tier": "flex"}
    response = translate(answer({"content": "{}"}), request)
    assert response["instructions"] == "Be brief."
    assert (response["temperature"], response["top_p"], response["max_output_tokens"]) == (0.5, 0.9, 100)
    assert (response["tools"], response["tool_choice"], response["parallel_tool_calls"]) == (tools, "required", False)
    assert response["text"] == {"format": fmt, "verbosity": "low"}
    assert response["reasoning"] == {"effort": "low", "summary": None}
    assert (response["metadata"], response["user"]) == ({"team": "a"}, "u-1")
    assert response["store"] is False                  # never stored, whatever was asked
    assert (response["truncation"], response["prompt_cache_key"], response["service_tier"]) == ("auto", "k", "flex")
    assert response["previous_response_id"] is None and response["background"] is False


def test_defaults_when_the_request_sets_nothing() -> None:
    response = translate(answer({"content": "x"}), {"model": "m", "input": "Hi"})
    assert (response["tools"], response["tool_choice"], response["parallel_tool_calls"]) == ([], "auto", True)
    assert response["text"] == {"format": {"type": "text"}, "verbosity": None}
    assert (response["metadata"], response["instructions"], response["truncation"]) == ({}, None, "disabled")


def test_tool_calls_become_function_call_items() -> None:
    response = translate(answer({"content": None, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
        {"type": "function", "function": {"name": "clock", "arguments": {"zone": "UTC"}}},
    ]}, "tool_calls"))
    assert response["status"] == "completed"
    assert response["output"] == [
        {"id": "fc_0001", "type": "function_call", "status": "completed", "call_id": "call_a", "name": "weather",
         "arguments": '{"city":"Paris"}'},
        {"id": "fc_0002", "type": "function_call", "status": "completed", "call_id": "call_0003", "name": "clock",
         "arguments": '{"zone":"UTC"}'},
    ]


def test_text_with_tool_calls_and_the_legacy_function_call() -> None:
    response = translate(answer({"content": "Checking.", "function_call": {"name": "clock", "arguments": "{}"}}))
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["output"][1]["name"] == "clock"


def test_reasoning_comes_first_as_a_summary() -> None:
    for key in ("reasoning_content", "reasoning"):
        response = translate(answer({"content": "42", key: "Six times seven."}))
        assert response["output"][0] == {"id": "rs_0001", "type": "reasoning",
                                         "summary": [{"type": "summary_text", "text": "Six times seven."}]}
        assert response["output"][1]["type"] == "message"


def test_a_refusal() -> None:
    response = translate(answer({"content": None, "refusal": "I can't help with that."}))
    assert response["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]


def test_length_and_content_filter_are_incomplete() -> None:
    response = translate(answer({"content": "Cut"}, "length"))
    assert (response["status"], response["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    assert response["output"][0]["status"] == "incomplete"
    assert response["completed_at"] is None
    response = translate(answer({"content": ""}, "content_filter"))
    assert (response["status"], response["incomplete_details"]) == ("incomplete", {"reason": "content_filter"})


def test_an_empty_answer_is_an_empty_message() -> None:
    response = translate(answer({"content": None}))
    assert response["output"][0]["content"] == [{"type": "output_text", "text": "", "annotations": [], "logprobs": []}]
    response = translate({"choices": []}, {"model": "m", "input": "Hi"})
    assert response["model"] == "m" and response["usage"] is None and response["created_at"] == 1_800_000_000


def test_content_parts_in_an_answer_are_joined() -> None:
    response = translate(answer({"content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}))
    assert response["output"][0]["content"][0]["text"] == "Hello"


def test_the_first_choice_is_read() -> None:
    chat = answer({"content": "zero"})
    chat["choices"].insert(0, {"index": 1, "message": {"role": "assistant", "content": "one"}, "finish_reason": "stop"})
    assert translate(chat)["output"][0]["content"][0]["text"] == "zero"


def test_logprobs_and_annotations() -> None:
    logprobs = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
                             "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                                              {"token": "Yo", "logprob": -2}]}]}
    chat = answer({"content": "Hi", "annotations": [
        {"type": "url_citation", "url_citation": {"start_index": 0, "end_index": 2, "url": "https://x", "title": "X"}}]})
    chat["choices"][0]["logprobs"] = logprobs
    part = translate(chat)["output"][0]["content"][0]
    assert part["annotations"] == [{"type": "url_citation", "start_index": 0, "end_index": 2, "url": "https://x",
                                    "title": "X"}]
    assert part["logprobs"] == [{"token": "Hi", "bytes": [72, 105], "logprob": -0.1, "top_logprobs": [
        {"token": "Hi", "bytes": [72, 105], "logprob": -0.1}, {"token": "Yo", "bytes": [89, 111], "logprob": -2.0}]}]


def test_ids_are_fresh_by_default() -> None:
    first = chat_response_to_response(answer({"content": "a"}), REQUEST)
    second = chat_response_to_response(answer({"content": "a"}), REQUEST)
    assert first["id"].startswith("resp_") and len(first["id"]) == len("resp_") + 48
    assert first["output"][0]["id"].startswith("msg_")
    assert first["id"] != second["id"] and first["output"][0]["id"] != second["output"][0]["id"]
    assert chat_response_to_response(answer({"content": "a"}), REQUEST, response_id="resp_mine")["id"] == "resp_mine"


def test_output_items_can_be_referenced_by_a_later_request() -> None:
    """The round trip a response store would make: output → items by id → item_reference resolved."""
    response = translate(answer({"content": "Paris.", "reasoning_content": "easy", "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]}))
    items = referenceable_items(response)
    assert sorted(items) == ["fc_0003", "msg_0002"]
    follow_up = to_chat_request({"model": "m", "input": [
        {"role": "user", "content": "Capital of France?"}, {"type": "item_reference", "id": "rs_0001"},
        {"type": "item_reference", "id": "msg_0002"}, {"type": "item_reference", "id": "fc_0003"},
        {"type": "function_call_output", "call_id": "call_a", "output": "sunny"}]}, items=items)
    assert follow_up["messages"] == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
    ]
