"""The official OpenAI Node SDK (``openai`` on npm) against a real trioproxy.

Each case is ``node tests/clients/node/openai_sdk.mjs <case>`` (installed by scripts/bootstrap
from the committed package-lock.json); the script prints its result as JSON.
"""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest

from support.fake_upstream import fake_embedding

from .conftest import CHAT, EMBED, ClientProxy, run_node

ECHO = f"This is a fake answer from {CHAT} to: What is the capital of France?"
WEATHER = {"type": "object", "required": ["city", "days", "unit"], "additionalProperties": False,
           "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7},
                          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}


def float_embeddings(proxy: ClientProxy, texts: list[str]) -> list[list[float]]:
    response = httpx.post(f"{proxy.url}/embeddings", headers={"Authorization": f"Bearer {proxy.key}"},
                          json={"model": EMBED, "input": texts, "encoding_format": "float"})
    response.raise_for_status()
    return [d["embedding"] for d in response.json()["data"]]


@pytest.mark.parametrize("case", ["chat", "stream"])
def test_chat(client_proxy: ClientProxy, case: str) -> None:
    result = run_node("openai_sdk.mjs", case, client_proxy)
    assert result["content"] == ECHO and result["finish"] == "stop"
    assert result["usage"]["total_tokens"] > 0


def test_embeddings_default_base64(client_proxy: ClientProxy) -> None:
    """The Node SDK asks for base64 unless told otherwise and decodes little-endian float32."""
    result = run_node("openai_sdk.mjs", "embeddings", client_proxy)
    expected = float_embeddings(client_proxy, ["first text", "second text"])
    assert result["byDefault"] == expected == result["asFloat"]
    assert result["relayed"] == pytest.approx(fake_embedding("first text"))
    assert result["usage"]["prompt_tokens"] == 4


@pytest.mark.parametrize("case", ["tools", "tools_stream"])
def test_tool_call(client_proxy: ClientProxy, case: str) -> None:
    result = run_node("openai_sdk.mjs", case, client_proxy)
    assert result["finish"] == "tool_calls"
    (call,) = result["toolCalls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather" and call["id"]
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER)


def test_json_schema(client_proxy: ClientProxy) -> None:
    result = run_node("openai_sdk.mjs", "json_schema", client_proxy)
    jsonschema.validate(json.loads(result["content"]), WEATHER)


def test_errors_are_the_sdks_own_types(client_proxy: ClientProxy) -> None:
    unauthorized = run_node("openai_sdk.mjs", "unauthorized", client_proxy)
    assert unauthorized["isAuthenticationError"] and unauthorized["error"]["status"] == 401
    assert unauthorized["error"]["code"] == "invalid_api_key"
    unknown = run_node("openai_sdk.mjs", "unknown_model", client_proxy)
    assert unknown["isNotFoundError"] and unknown["error"]["status"] == 404
    assert unknown["error"]["code"] == "model_not_found"
    limited = run_node("openai_sdk.mjs", "rate_limited", client_proxy)
    assert limited["isRateLimitError"] and limited["error"]["code"] == "rate_limit_exceeded"


def test_interrupted_stream_throws(client_proxy: ClientProxy) -> None:
    result = run_node("openai_sdk.mjs", "broken_stream", client_proxy)
    assert result["isAPIError"] and "incomplete" in result["error"]["message"] and result["content"]


def test_models_list(client_proxy: ClientProxy) -> None:
    assert {CHAT, EMBED} <= set(run_node("openai_sdk.mjs", "models", client_proxy)["models"])


def test_models_retrieve(client_proxy: ClientProxy) -> None:
    """``client.models.retrieve(id)``: GET /v1/models/{model} (issue #15 item 8)."""
    assert run_node("openai_sdk.mjs", "model_retrieve", client_proxy) == {"id": CHAT, "object": "model"}


@pytest.mark.parametrize("case", ["responses", "responses_stream"])
def test_responses(client_proxy: ClientProxy, case: str) -> None:
    """``client.responses.create`` (issue #15 item 9), plain and streamed."""
    result = run_node("openai_sdk.mjs", case, client_proxy)
    assert result.get("outputText", result.get("text")) == f"This is a fake answer from {CHAT} to: What is the capital of France?"
