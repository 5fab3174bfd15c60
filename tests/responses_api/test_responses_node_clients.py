"""Golden tests: the OpenAI Node SDK and the Vercel AI SDK read the translation's answers and streams.

``tests/clients/node/responses_translation.mjs`` (installed by ``scripts/bootstrap``: ``npm ci``)
runs each case against the translating server; the Node SDK's SSE decoder and ``ResponseStream``
accumulator, and the AI SDK's ``openai(model)`` (its default model factory, the Responses API) with
``generateText``/``streamText``/``generateObject``, tools over several steps, reasoning, errors. All
cases run in one Node process (see the script), once per test session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .translating_server import ServerThread

NODE_DIR = Path(__file__).parent.parent / "clients" / "node"
SCRIPT = "responses_translation.mjs"
CASES = [
    "node_create", "node_stream", "node_stream_helper", "node_tool_round_trip", "node_tool_stream",
    "node_stream_error", "node_refused_field", "ai_generate", "ai_stream", "ai_tools", "ai_tools_stream",
    "ai_object", "ai_reasoning", "ai_incomplete", "ai_refusal", "ai_multi_turn", "ai_multi_turn_no_store",
    "ai_stream_error", "ai_stream_error_early",
]
QUESTION = "What is the capital of France?"
ECHO = f"You said: {QUESTION}"


@pytest.fixture(scope="module")
def node(responses_server: ServerThread) -> dict[str, Any]:
    executable = shutil.which("node")
    assert executable, "node is not on PATH: these tests need Node >= 20"
    assert (NODE_DIR / "node_modules").is_dir(), "tests/clients/node/node_modules is missing: run ./scripts/bootstrap"
    done = subprocess.run([executable, str(NODE_DIR / SCRIPT), *CASES], cwd=NODE_DIR, capture_output=True, text=True,
                          env={**os.environ, "RESPONSES_URL": responses_server.base_url}, timeout=300)
    assert done.returncode == 0, f"node {SCRIPT} exited {done.returncode}:\n{done.stderr}\n{done.stdout}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def case(results: dict[str, Any], name: str) -> Any:
    result = results[name]
    assert "thrown" not in result, result["thrown"]
    return result


# --- the OpenAI Node SDK -------------------------------------------------------------------------


def test_node_create(node: dict[str, Any]) -> None:
    result = case(node, "node_create")
    assert (result["object"], result["status"], result["outputText"]) == ("response", "completed", ECHO)
    assert result["id"].startswith("resp_") and result["model"] == "up-m" and result["instructions"] == "Be brief."
    assert result["usage"]["total_tokens"] == result["usage"]["input_tokens"] + result["usage"]["output_tokens"]


def test_node_stream(node: dict[str, Any]) -> None:
    result = case(node, "node_stream")
    assert result["types"][:4] == ["response.created", "response.in_progress", "response.output_item.added",
                                   "response.content_part.added"]
    assert result["types"][-4:] == ["response.output_text.done", "response.content_part.done",
                                    "response.output_item.done", "response.completed"]
    assert result["sequence"] == list(range(len(result["types"])))
    assert result["text"] == ECHO and result["error"] is None
    final = result["final"]
    assert final["status"] == "completed" and final["usage"]["output_tokens"] == 8
    assert [item["id"] for item in final["output"]] == result["itemIds"]     # one id per item, everywhere


def test_node_stream_helper_accumulates(node: dict[str, Any]) -> None:
    result = case(node, "node_stream_helper")
    assert result["outputText"] == ECHO and result["status"] == "completed"
    assert result["snapshots"][0] == "You" and result["snapshots"][-1] == ECHO


def test_node_tool_round_trip(node: dict[str, Any], responses_server: ServerThread) -> None:
    result = case(node, "node_tool_round_trip")
    call = result["call"]
    assert (call["type"], call["name"]) == ("function_call", "weather")
    assert json.loads(call["arguments"]) == {"city": "Paris", "days": 1}
    assert call["id"].startswith("fc_") and call["callId"].startswith("call_")
    assert result["outputText"] == 'The tool said: {"forecast":"sunny"}'
    tool_turns = [c["messages"] for c in responses_server.chat_requests
                  if any(m.get("tool_call_id") == call["callId"] for m in c["messages"])]
    assert tool_turns and tool_turns[0][1]["tool_calls"][0]["id"] == call["callId"]


def test_node_streamed_tool_call_is_parsed(node: dict[str, Any]) -> None:
    result = case(node, "node_tool_stream")
    assert result["name"] == "weather" and result["status"] == "completed"
    assert json.loads(result["arguments"]) == result["parsedArguments"] == {"city": "Paris", "days": 1}


def test_node_sees_the_error_events_of_a_broken_stream(node: dict[str, Any]) -> None:
    result = case(node, "node_stream_error")
    assert result["types"][-2:] == ["error", "response.failed"]
    assert result["text"] == "Half an answer"
    assert result["error"]["code"] == "upstream_stream_interrupted"
    assert result["final"]["status"] == "failed" and result["final"]["error"]["code"] == "server_error"


def test_node_gets_a_400_for_a_refused_field(node: dict[str, Any]) -> None:
    error = case(node, "node_refused_field")["error"]
    assert (error["status"], error["param"], error["code"]) == (400, "previous_response_id", "unsupported_parameter")


# --- the Vercel AI SDK (openai(model): the Responses API) ------------------------------------------


def test_ai_generate_text(node: dict[str, Any]) -> None:
    result = case(node, "ai_generate")
    assert (result["text"], result["finishReason"], result["modelId"]) == (ECHO, "stop", "up-m")
    assert result["responseId"].startswith("resp_")
    assert result["usage"]["outputTokens"] == 8 and result["usage"]["totalTokens"] == result["usage"]["inputTokens"] + 8


def test_ai_stream_text(node: dict[str, Any]) -> None:
    result = case(node, "ai_stream")
    assert (result["text"], result["finishReason"]) == (ECHO, "stop")
    assert result["usage"]["outputTokens"] == 8


@pytest.mark.parametrize("name", ["ai_tools", "ai_tools_stream"])
def test_ai_tools_over_two_steps(node: dict[str, Any], name: str) -> None:
    result = case(node, name)
    assert result["text"] == 'The tool said: {"city":"Paris","days":1,"forecast":"sunny"}'
    if name == "ai_tools":
        first, second = result["steps"]
        assert first["finishReason"] == "tool-calls" and second["finishReason"] == "stop"
        assert first["toolCalls"] == [{"toolName": "weather", "input": {"city": "Paris", "days": 1}}]
        assert first["toolResults"] == [{"city": "Paris", "days": 1, "forecast": "sunny"}]
    else:
        assert result["finishReasons"] == ["tool-calls", "stop"]
        assert result["toolCalls"] == [{"toolName": "weather", "input": {"city": "Paris", "days": 1}}]


def test_ai_generate_object_through_json_schema(node: dict[str, Any], responses_server: ServerThread) -> None:
    result = case(node, "ai_object")
    assert result["object"] == {"name": "Paris", "population": 1, "landmarks": ["Paris"]}
    assert any((c.get("response_format") or {}).get("type") == "json_schema" for c in responses_server.chat_requests)


def test_ai_reasoning_parts(node: dict[str, Any]) -> None:
    result = case(node, "ai_reasoning")
    assert result["reasoning"] == "The user greets me; I answer kindly." and result["text"] == ECHO
    assert {"reasoning-start", "reasoning-delta", "reasoning-end", "text-delta"} <= set(result["parts"])


def test_ai_finish_reasons_of_incomplete_and_refused_answers(node: dict[str, Any]) -> None:
    result = case(node, "ai_incomplete")
    assert (result["text"], result["finishReason"], result["raw"]) == ("This answer was cut", "length",
                                                                       "max_output_tokens")
    result = case(node, "ai_refusal")
    assert (result["text"], result["finishReason"]) == ("I can't help with that.", "content-filter")


def test_ai_stream_error_part(node: dict[str, Any]) -> None:
    result = case(node, "ai_stream_error")
    assert result["text"] == "Half an answer" and result["finishReason"] == "error"
    assert [e["message"] for e in result["errors"]] == ["The upstream closed the stream before its end (no [DONE])."]


def test_ai_stream_failing_before_any_output_is_an_api_call_error(node: dict[str, Any]) -> None:
    errors = case(node, "ai_stream_error_early")["errors"]
    assert errors == [{"name": "AI_APICallError", "isAPICallError": True, "statusCode": 500,
                       "message": "The upstream closed the stream before its end (no [DONE])."}]


def test_ai_multi_turn_needs_store_false(node: dict[str, Any]) -> None:
    """The AI SDK's default (store: true) sends the earlier answer as an item_reference: a clear 400.

    With ``providerOptions.openai.store = false`` it sends the text itself, and the turn works.
    """
    result = case(node, "ai_multi_turn")
    assert result["text"] is None and result["error"]["statusCode"] == 400
    assert "item_reference" in result["error"]["message"] and "store = false" in result["error"]["message"]
    assert case(node, "ai_multi_turn_no_store") == {"text": "You said: And of Germany?", "error": None}
