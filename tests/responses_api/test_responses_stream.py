"""``ResponsesStreamTranslator``: every event, in order, with stable ids and sequence numbers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from trioproxy.errors import BadRequestError, RateLimitError, UpstreamStreamInterruptedError
from trioproxy.responses_api import ResponsesStreamTranslator, encode_event, encode_events
from trioproxy.streaming import SSEParser

from .translating_server import counting_ids

REQUEST = {"model": "gpt-test", "input": "Hi", "stream": True}
USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "up-model",
            "choices": choices, **extra}


def translator(request: dict[str, Any] = REQUEST) -> ResponsesStreamTranslator:
    return ResponsesStreamTranslator(request, new_id=counting_ids(), clock=lambda: 1_800_000_000.0)


def run(chunks: list[dict[str, Any]], request: dict[str, Any] = REQUEST) -> list[dict[str, Any]]:
    t = translator(request)
    events = [e for c in chunks for e in t.feed(c)]
    return events + t.finish()


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def check_sequence(events: list[dict[str, Any]]) -> None:
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_a_text_stream() -> None:
    events = run([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
                  chunk({}, "stop"), chunk(usage=USAGE)])
    check_sequence(events)
    assert types(events) == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    created, in_progress, added, part_added, d1, d2, text_done, part_done, item_done, completed = events
    assert created["response"]["status"] == "in_progress" and created["response"]["output"] == []
    assert created["response"]["id"] == "resp_0001" and created["response"]["model"] == "up-model"
    assert created["response"]["created_at"] == 1_700_000_000 and created["response"]["usage"] is None
    assert in_progress["response"] == created["response"]
    assert added["item"] == {"id": "msg_0002", "type": "message", "status": "in_progress", "role": "assistant",
                             "content": []}
    assert part_added == {"type": "response.content_part.added", "sequence_number": 3, "item_id": "msg_0002",
                          "output_index": 0, "content_index": 0,
                          "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}
    assert (d1["delta"], d2["delta"], d1["item_id"], d1["output_index"], d1["content_index"], d1["logprobs"]) == (
        "Hel", "lo", "msg_0002", 0, 0, [])
    assert (text_done["text"], part_done["part"]["text"]) == ("Hello", "Hello")
    assert item_done["item"]["status"] == "completed" and item_done["item"]["content"][0]["text"] == "Hello"
    final = completed["response"]
    assert (final["status"], final["id"], final["completed_at"]) == ("completed", "resp_0001", 1_800_000_000)
    assert final["output"] == [item_done["item"]]
    assert final["usage"] == {"input_tokens": 9, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                              "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0},
                              "total_tokens": 13}


def test_ids_are_stable_within_a_response() -> None:
    t = ResponsesStreamTranslator(REQUEST)          # real random ids
    events = t.feed(chunk({"content": "a"})) + t.feed(chunk({"content": "b"})) + t.finish()
    response_ids = {e["response"]["id"] for e in events if "response" in e}
    assert response_ids == {t.response_id} and t.response_id.startswith("resp_")
    item_ids = {e.get("item_id") or e["item"]["id"] for e in events if "item_id" in e or "item" in e}
    assert len(item_ids) == 1 and next(iter(item_ids)).startswith("msg_")
    assert t.response is not None and t.response["output"][0]["id"] in item_ids


def test_the_response_id_can_be_given() -> None:
    t = ResponsesStreamTranslator(REQUEST, response_id="resp_given")
    assert all(e["response"]["id"] == "resp_given" for e in t.finish() if "response" in e)


def test_a_stream_without_usage_completes_with_usage_null() -> None:
    events = run([chunk({"content": "x"}, "stop")])
    assert events[-1]["response"]["usage"] is None


def test_a_tool_call_stream() -> None:
    events = run([
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"), chunk(usage=USAGE)])
    check_sequence(events)
    assert types(events)[2:] == [
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    added, d1, d2, done, item_done, completed = events[2:]
    assert added["item"] == {"id": "fc_0002", "type": "function_call", "status": "in_progress", "call_id": "call_a",
                             "name": "weather", "arguments": ""}
    assert (d1["item_id"], d1["output_index"], d1["delta"], d2["delta"]) == ("fc_0002", 0, '{"city":', '"Paris"}')
    assert (done["arguments"], done["name"], done["item_id"]) == ('{"city":"Paris"}', "weather", "fc_0002")
    assert item_done["item"] == {**added["item"], "status": "completed", "arguments": '{"city":"Paris"}'}
    assert completed["response"]["output"] == [item_done["item"]]
    assert completed["response"]["status"] == "completed"


def test_interleaved_parallel_calls_each_get_their_own_arguments() -> None:
    def call(index: int, **fields: Any) -> dict[str, Any]:
        return chunk({"tool_calls": [{"index": index, **fields}]})

    events = run([
        call(0, id="call_a", function={"name": "weather", "arguments": '{"ci'}),
        call(1, id="call_b", function={"name": "clock", "arguments": '{"zo'}),
        call(0, function={"arguments": 'ty":"Paris"}'}),
        call(1, function={"arguments": 'ne":"UTC"}'}),
        chunk({}, "tool_calls")])
    check_sequence(events)
    final = events[-1]["response"]["output"]
    assert [(i["name"], i["call_id"], i["arguments"]) for i in final] == [
        ("weather", "call_a", '{"city":"Paris"}'), ("clock", "call_b", '{"zone":"UTC"}')]
    # no delta for an item after its done event
    done_at = {e["item_id"]: n for n, e in enumerate(events) if e["type"] == "response.function_call_arguments.done"}
    for n, e in enumerate(events):
        if e["type"] == "response.function_call_arguments.delta":
            assert n < done_at[e["item_id"]]


def test_arguments_before_the_name_are_held_and_a_missing_call_id_is_minted() -> None:
    events = run([chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
                  chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "1}"}}]}),
                  chunk({}, "tool_calls")])
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["name"] == "f" and added["item"]["call_id"] == "call_0003"
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert deltas == ['{"a":', "1}"]
    assert events[-1]["response"]["output"][0]["arguments"] == '{"a":1}'


def test_a_call_that_never_got_a_name_is_still_closed() -> None:
    events = run([chunk({"tool_calls": [{"index": 0, "id": "call_x", "function": {"arguments": "{}"}}]})])
    assert types(events)[2:] == ["response.output_item.added", "response.function_call_arguments.delta",
                                 "response.function_call_arguments.done", "response.output_item.done",
                                 "response.completed"]
    assert events[-1]["response"]["output"][0] == {"id": "fc_0002", "type": "function_call", "status": "completed",
                                                   "call_id": "call_x", "name": "", "arguments": "{}"}


def test_arguments_sent_as_an_object_and_the_legacy_function_call() -> None:
    events = run([chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": {"a": 1}}}]})])
    assert events[-1]["response"]["output"][0]["arguments"] == '{"a":1}'
    events = run([chunk({"function_call": {"name": "clock", "arguments": ""}}),
                  chunk({"function_call": {"arguments": "{}"}}), chunk({}, "function_call")])
    assert events[-1]["response"]["output"][0]["name"] == "clock"
    assert events[-1]["response"]["output"][0]["arguments"] == "{}"


def test_text_then_a_call_closes_the_message_first() -> None:
    events = run([chunk({"content": "Let me check."}),
                  chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}),
                  chunk({}, "tool_calls")])
    order = [(e["type"], e.get("output_index")) for e in events
             if e["type"] in ("response.output_item.added", "response.output_item.done")]
    assert order == [("response.output_item.added", 0), ("response.output_item.done", 0),
                     ("response.output_item.added", 1), ("response.output_item.done", 1)]
    assert [i["type"] for i in events[-1]["response"]["output"]] == ["message", "function_call"]


def test_reasoning_then_text() -> None:
    events = run([chunk({"reasoning_content": "Six "}), chunk({"reasoning": "times seven."}),
                  chunk({"content": "42"}), chunk({}, "stop")])
    check_sequence(events)
    assert types(events)[2:] == [
        "response.output_item.added", "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]
    reasoning_added = events[2]
    assert reasoning_added["item"] == {"id": "rs_0002", "type": "reasoning", "summary": []}
    text_done = events[6]
    assert (text_done["summary_index"], text_done["text"]) == (0, "Six times seven.")
    assert events[8]["item"] == {"id": "rs_0002", "type": "reasoning",
                                 "summary": [{"type": "summary_text", "text": "Six times seven."}]}
    assert [i["type"] for i in events[-1]["response"]["output"]] == ["reasoning", "message"]


def test_a_refusal_part() -> None:
    events = run([chunk({"refusal": "I can't"}), chunk({"refusal": " help."}), chunk({}, "stop")])
    assert types(events)[2:] == ["response.output_item.added", "response.content_part.added",
                                 "response.refusal.delta", "response.refusal.delta", "response.refusal.done",
                                 "response.content_part.done", "response.output_item.done", "response.completed"]
    assert events[3]["part"] == {"type": "refusal", "refusal": ""}
    assert events[6]["refusal"] == "I can't help."
    assert events[-1]["response"]["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help."}]


def test_text_logprobs_travel_with_the_deltas() -> None:
    piece = {"index": 0, "delta": {"content": "Hi"}, "finish_reason": None,
             "logprobs": {"content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}]}}
    events = run([{**chunk(), "choices": [piece]}, chunk({}, "stop")])
    delta = next(e for e in events if e["type"] == "response.output_text.delta")
    expected = [{"token": "Hi", "bytes": [72, 105], "logprob": -0.5, "top_logprobs": []}]
    assert delta["logprobs"] == expected
    assert next(e for e in events if e["type"] == "response.output_text.done")["logprobs"] == expected
    assert events[-1]["response"]["output"][0]["content"][0]["logprobs"] == expected


def test_length_ends_with_response_incomplete() -> None:
    events = run([chunk({"content": "Cut"}), chunk({}, "length"), chunk(usage=USAGE)])
    assert events[-1]["type"] == "response.incomplete"
    final = events[-1]["response"]
    assert (final["status"], final["incomplete_details"], final["completed_at"]) == (
        "incomplete", {"reason": "max_output_tokens"}, None)
    assert final["output"][0]["status"] == "incomplete"
    assert final["usage"]["output_tokens"] == 4
    events = run([chunk({"content": "x"}, "content_filter")])
    assert events[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}


def test_other_choices_are_ignored() -> None:
    other = {**chunk(), "choices": [{"index": 1, "delta": {"content": "other"}, "finish_reason": None}]}
    events = run([chunk({"content": "mine"}), other, chunk({}, "stop")])
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "mine"


def test_an_empty_stream_completes_with_no_output() -> None:
    t = translator()
    events = t.finish()
    assert types(events) == ["response.created", "response.in_progress", "response.completed"]
    assert events[0]["response"]["model"] == "gpt-test"      # no chunk named the upstream's model
    assert events[-1]["response"]["output"] == []


def test_a_failure_mid_stream() -> None:
    t = translator()
    events = t.feed(chunk({"content": "Half"}))
    events += t.fail(UpstreamStreamInterruptedError("The upstream closed the stream early."))
    check_sequence(events)
    assert types(events)[-2:] == ["error", "response.failed"]
    error, failed = events[-2:]
    assert error == {"type": "error", "sequence_number": 5, "code": "upstream_stream_interrupted",
                     "message": "The upstream closed the stream early.", "param": None}
    response = failed["response"]
    assert (response["status"], response["error"]) == ("failed", {"code": "server_error",
                                                                   "message": "The upstream closed the stream early."})
    assert response["output"][0]["status"] == "in_progress"          # cut, not finished
    assert response["output"][0]["content"][0]["text"] == "Half"
    assert t.response == response


def test_a_failure_before_the_first_chunk_still_starts_the_response() -> None:
    events = translator().fail(RateLimitError("Slow down."))
    assert types(events) == ["response.created", "response.in_progress", "error", "response.failed"]
    assert events[2]["code"] == "rate_limit_exceeded"
    assert events[3]["response"]["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize("error, event_code, failed_code", [
    (BadRequestError("Blocked by a guardrail.", param="input"), "400", "invalid_prompt"),
    ({"error": {"message": "Overloaded.", "type": "server_error", "code": "503", "param": None}}, "503", "server_error"),
    ({"error": {"message": "Too many.", "code": "429"}}, "429", "rate_limit_exceeded"),
    ({"message": "Bare.", "code": None}, None, "server_error"),
])
def test_failure_codes(error: Any, event_code: str | None, failed_code: str) -> None:
    events = translator().fail(error)
    assert events[-2]["code"] == event_code
    assert events[-1]["response"]["error"]["code"] == failed_code


def test_the_usage_seen_before_a_failure_is_kept() -> None:
    t = translator()
    t.feed(chunk(usage=USAGE))
    assert t.fail(UpstreamStreamInterruptedError("x"))[-1]["response"]["usage"]["total_tokens"] == 13


def test_nothing_after_the_end() -> None:
    t = translator()
    t.finish()
    for call in (lambda: t.feed(chunk({"content": "x"})), t.finish, lambda: t.fail(RateLimitError("x"))):
        with pytest.raises(RuntimeError):
            call()


def test_events_are_framed_as_openai_frames_them() -> None:
    event = {"type": "response.output_text.delta", "sequence_number": 4, "delta": "é"}
    assert encode_event(event) == (b'event: response.output_text.delta\n'
                                   b'data: {"type":"response.output_text.delta","sequence_number":4,"delta":"\xc3\xa9"}\n\n')
    events = run([chunk({"content": "Hello"}), chunk({}, "stop")])
    data = encode_events(events)
    assert data.startswith(b"event: response.created\ndata: ") and data.endswith(b"\n\n")
    assert b"[DONE]" not in data
    # the proxy's own SSE parser reads it back, event by event
    assert [orjson.loads(p) for p in SSEParser().feed(data)] == events


def test_event_objects_are_snapshots() -> None:
    """Events hold copies: later deltas do not change an item already sent."""
    t = translator()
    added = [e for e in t.feed(chunk({"content": "a"})) if e["type"] == "response.output_item.added"][0]
    t.feed(chunk({"content": "b"}))
    t.finish()
    assert added["item"]["content"] == [] and added["item"]["status"] == "in_progress"


def test_chunks_as_the_proxys_stream_relay_parses_them() -> None:
    """Upstream SSE bytes → ``SSEParser`` → ``parse_chunk`` (``ModelResponseStream`` objects) → the translator."""
    from trioproxy.streaming import DONE, frame, parse_chunk

    from .translating_server import scripted_chunks

    chat = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": True,
            "stream_options": {"include_usage": True},
            "tools": [{"type": "function", "function": {"name": "clock", "parameters": {"type": "object"}}}]}
    plain = list(scripted_chunks(chat))
    wire = b"".join(frame(c) for c in plain) + b"data: [DONE]\n\n"
    parsed = [parse_chunk(p, chat=True) for p in SSEParser().feed(wire)]
    assert parsed[-1] is DONE
    assert type(parsed[0]).__name__ == "ModelResponseStream"
    assert run(parsed[:-1]) == run(plain)
    with pytest.raises(TypeError, match="fail"):
        translator().feed(["not", "a", "chunk"])  # type: ignore[arg-type]


def test_a_name_repeated_in_later_deltas_is_kept_once() -> None:
    events = run([chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "clock", "arguments": ""}}]}),
                  chunk({"tool_calls": [{"index": 0, "function": {"name": "clock", "arguments": "{}"}}]})])
    assert events[-1]["response"]["output"][0]["name"] == "clock"
