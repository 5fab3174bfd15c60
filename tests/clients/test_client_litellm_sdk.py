"""LiteLLM's SDK used as a client of trioproxy (``litellm.completion`` / ``litellm.embedding``).

Two ways LiteLLM's docs point the SDK at a proxy: the ``litellm_proxy/`` provider, and ``openai/``
with ``api_base``. Both are exercised.
"""

from __future__ import annotations

import json

import httpx
import litellm
import pydantic
import pytest

from .conftest import BROKEN_STREAM, CHAT, EMBED, OVERLOADED, ClientProxy

QUESTION = "What is the capital of France?"
MESSAGES = [{"role": "user", "content": QUESTION}]
ECHO = f"This is a fake answer from {CHAT} to: {QUESTION}"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city", "days"]}}}]


pytestmark = pytest.mark.filterwarnings("ignore:Items? .* (is|are) using the .ReadOnly. qualifier:UserWarning")


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.fixture(scope="module")
def target(client_proxy: ClientProxy) -> dict[str, str]:
    return {"api_base": client_proxy.url, "api_key": client_proxy.key}


@pytest.mark.parametrize("prefix", ["litellm_proxy", "openai"])
def test_completion(target: dict[str, str], prefix: str) -> None:
    response = litellm.completion(model=f"{prefix}/{CHAT}", messages=MESSAGES, **target)
    assert response.choices[0].message.content == ECHO
    assert response.choices[0].finish_reason == "stop" and response.usage.total_tokens > 0


@pytest.mark.parametrize("prefix", ["litellm_proxy", "openai"])
def test_stream(target: dict[str, str], prefix: str) -> None:
    chunks = list(litellm.completion(model=f"{prefix}/{CHAT}", messages=MESSAGES, stream=True, **target))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ECHO
    assert litellm.stream_chunk_builder(chunks, messages=MESSAGES).choices[0].message.content == ECHO


def test_embedding(target: dict[str, str], client_proxy: ClientProxy) -> None:
    response = litellm.embedding(model=f"litellm_proxy/{EMBED}", input=["first text", "second text"], **target)
    expected = httpx.post(f"{client_proxy.url}/embeddings", headers={"Authorization": f"Bearer {client_proxy.key}"},
                          json={"model": EMBED, "input": ["first text", "second text"]}).json()
    assert [d["embedding"] for d in response.data] == [d["embedding"] for d in expected["data"]]


def test_tool_call(target: dict[str, str]) -> None:
    response = litellm.completion(model=f"litellm_proxy/{CHAT}", messages=MESSAGES, tools=TOOLS, **target)
    (call,) = response.choices[0].message.tool_calls
    assert response.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "fake", "days": 0}


def test_streamed_tool_call(target: dict[str, str]) -> None:
    chunks = list(litellm.completion(model=f"litellm_proxy/{CHAT}", messages=MESSAGES, tools=TOOLS, stream=True,
                                     **target))
    (call,) = litellm.stream_chunk_builder(chunks, messages=MESSAGES).choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "fake", "days": 0}


def test_response_format(target: dict[str, str]) -> None:
    response = litellm.completion(model=f"litellm_proxy/{CHAT}", messages=MESSAGES, response_format=City, **target)
    assert City.model_validate_json(response.choices[0].message.content) == City(name="fake", population=0)


def test_errors_are_litellm_exceptions(target: dict[str, str]) -> None:
    with pytest.raises(litellm.AuthenticationError) as info:
        litellm.completion(model=f"litellm_proxy/{CHAT}", messages=MESSAGES, api_base=target["api_base"],
                           api_key="sk-wrong-key")
    assert info.value.status_code == 401
    with pytest.raises(litellm.NotFoundError) as missing:
        litellm.completion(model="litellm_proxy/no-such-model", messages=MESSAGES, **target)
    assert missing.value.status_code == 404
    with pytest.raises(litellm.RateLimitError) as limited:
        litellm.completion(model=f"litellm_proxy/{OVERLOADED}", messages=MESSAGES, **target)
    assert limited.value.status_code == 429


def test_interrupted_stream(target: dict[str, str]) -> None:
    """LiteLLM turns the proxy's error event into its mid-stream error (a ServiceUnavailableError)."""
    with pytest.raises(litellm.ServiceUnavailableError, match="incomplete"):
        list(litellm.completion(model=f"litellm_proxy/{BROKEN_STREAM}", messages=MESSAGES, stream=True, **target))


@pytest.mark.filterwarnings("ignore:Items? .* (is|are) using the .ReadOnly. qualifier:UserWarning")
def test_responses(client_proxy: ClientProxy) -> None:
    """``litellm.responses`` against the proxy (issue #15 item 9)."""
    response = litellm.responses(model=f"litellm_proxy/{CHAT}", input=QUESTION, api_base=client_proxy.url,
                                 api_key=client_proxy.key)
    assert response.output[0].content[0].text == ECHO
