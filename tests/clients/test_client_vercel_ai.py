"""The Vercel AI SDK (``ai`` + ``@ai-sdk/openai`` on npm) against a real trioproxy.

``openai.chat(model)`` is the chat-completions model of the SDK; its default ``openai(model)`` calls
the Responses API, which trioproxy translates to chat completions (or forwards untranslated to an
upstream that serves it: ``relay-native``). Each case is
``node tests/clients/node/vercel_ai.mjs <case>``.
"""

from __future__ import annotations

import json

import pytest

from .conftest import CHAT, ClientProxy, run_node
from .test_client_node_openai import float_embeddings

ECHO = f"This is a fake answer from {CHAT} to: What is the capital of France?"


@pytest.mark.parametrize("case", ["chat", "chat_stream"])
def test_chat(client_proxy: ClientProxy, case: str) -> None:
    result = run_node("vercel_ai.mjs", case, client_proxy)
    assert result["text"] == ECHO and result["finishReason"] == "stop"
    assert result["usage"]["inputTokens"] > 0 and result["usage"]["outputTokens"] > 0


def test_embed_and_embed_many(client_proxy: ClientProxy) -> None:
    result = run_node("vercel_ai.mjs", "embeddings", client_proxy)
    expected = float_embeddings(client_proxy, ["first text", "second text"])
    assert result["one"] == expected[0] and result["many"] == expected


def test_tool_call_then_answer(client_proxy: ClientProxy) -> None:
    """The model calls the tool, the SDK runs it and sends its result, the model answers in text."""
    result = run_node("vercel_ai.mjs", "tools", client_proxy)
    first, second = result["steps"]
    assert first["finishReason"] == "tool-calls"
    assert first["toolCalls"] == [{"toolName": "weather", "input": {"city": "fake", "days": 1}}]
    assert first["toolResults"] == [{"city": "fake", "days": 1, "forecast": "sunny"}]
    assert second["finishReason"] == "stop" and result["text"] == ECHO


def test_streamed_tool_call_then_answer(client_proxy: ClientProxy) -> None:
    result = run_node("vercel_ai.mjs", "tools_stream", client_proxy)
    assert result["toolCalls"] == [{"toolName": "weather", "input": {"city": "fake", "days": 1}}]
    assert result["text"] == ECHO


def test_generate_object(client_proxy: ClientProxy) -> None:
    result = run_node("vercel_ai.mjs", "object", client_proxy)
    assert result["object"] == {"name": "fake", "population": 0, "landmarks": ["fake"]}


def test_errors_are_api_call_errors(client_proxy: ClientProxy) -> None:
    for case, status, code in (("unauthorized", 401, "invalid_api_key"), ("unknown_model", 404, "model_not_found"),
                               ("rate_limited", 429, "rate_limit_exceeded")):
        result = run_node("vercel_ai.mjs", case, client_proxy)
        assert result["isAPICallError"] and result["error"]["status"] == status
        assert json.loads(result["error"]["responseBody"])["error"]["code"] == code


def test_interrupted_stream_is_an_error_part(client_proxy: ClientProxy) -> None:
    result = run_node("vercel_ai.mjs", "broken_stream", client_proxy)
    assert result["text"] and result["errors"]
    assert "incomplete" in json.dumps(result["errors"])


@pytest.mark.parametrize("case", ["responses", "responses_stream"])
def test_default_model_is_the_responses_api(client_proxy: ClientProxy, case: str) -> None:
    """``openai(model)``, the AI SDK's default, calls POST /responses (issue #15 item 9)."""
    result = run_node("vercel_ai.mjs", case, client_proxy)
    assert result["text"] == ECHO and result["finishReason"] == "stop"


@pytest.mark.parametrize("case", ["responses_native", "responses_native_stream"])
def test_the_responses_api_forwarded_natively(client_proxy: ClientProxy, case: str) -> None:
    """A deployment that serves /v1/responses gets the SDK's body untranslated (docs/responses_api.md)."""
    client_proxy.upstream.reset()
    result = run_node("vercel_ai.mjs", case, client_proxy)
    assert result["text"] == "Hello from the fake upstream." and result["finishReason"] == "stop"
    assert result["usage"]["inputTokens"] > 0 and result["usage"]["outputTokens"] > 0
    (sent,) = client_proxy.upstream.requests
    assert sent.path == "/v1/responses" and sent.json["model"] == "up-native" and "input" in sent.json
