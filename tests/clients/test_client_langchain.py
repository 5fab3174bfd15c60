"""LangChain (``langchain-openai``: ChatOpenAI, OpenAIEmbeddings) against a real trioproxy.

OpenAIEmbeddings tokenizes its input with tiktoken by default and sends token-id arrays, not
strings (tiktoken's cl100k_base comes from LiteLLM's package: see conftest).
"""

from __future__ import annotations

import json

import httpx
import openai
import pydantic
import pytest
import tiktoken
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from .conftest import BROKEN_STREAM, CHAT, EMBED, OVERLOADED, RELAY_CHAT, UPSTREAM_TEXT, ClientProxy

QUESTION = "What is the capital of France?"
ECHO = f"This is a fake answer from {CHAT} to: {QUESTION}"


@pytest.fixture(scope="module")
def chat(client_proxy: ClientProxy) -> ChatOpenAI:
    return ChatOpenAI(model=CHAT, base_url=client_proxy.url, api_key=client_proxy.key, max_retries=0)


@tool
def get_weather(city: str, days: int) -> str:
    """The weather in a city for the next days."""
    return f"sunny in {city} for {days} days"


class City(pydantic.BaseModel):
    """A city."""

    name: str
    population: int
    landmarks: list[str]


def test_invoke(chat: ChatOpenAI) -> None:
    answer = chat.invoke([SystemMessage("Be brief."), HumanMessage(QUESTION)])
    assert isinstance(answer, AIMessage) and answer.content == ECHO
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] > 0
    assert answer.response_metadata["finish_reason"] == "stop"


def test_stream(chat: ChatOpenAI, client_proxy: ClientProxy) -> None:
    assert "".join(chunk.content for chunk in chat.stream(QUESTION)) == ECHO
    relayed = ChatOpenAI(model=RELAY_CHAT, base_url=client_proxy.url, api_key=client_proxy.key, max_retries=0)
    assert "".join(chunk.content for chunk in relayed.stream(QUESTION)) == UPSTREAM_TEXT


def test_embeddings_send_token_arrays(client_proxy: ClientProxy) -> None:
    embeddings = OpenAIEmbeddings(model=EMBED, base_url=client_proxy.url, api_key=client_proxy.key, max_retries=0)
    vectors = embeddings.embed_documents(["first text", "second text"])
    query = embeddings.embed_query("first text")
    tokens = tiktoken.get_encoding("cl100k_base")
    expected = httpx.post(f"{client_proxy.url}/embeddings", headers={"Authorization": f"Bearer {client_proxy.key}"},
                          json={"model": EMBED, "encoding_format": "float",
                                "input": [tokens.encode("first text"), tokens.encode("second text")]}).json()
    assert vectors == [d["embedding"] for d in expected["data"]] and query == vectors[0]


def test_bind_tools(chat: ChatOpenAI) -> None:
    answer = chat.bind_tools([get_weather]).invoke(QUESTION)
    (call,) = answer.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "fake", "days": 0} and call["id"]
    assert answer.response_metadata["finish_reason"] == "tool_calls"
    # the tool's result goes back; the model answers in text
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    final = chat.bind_tools([get_weather]).invoke([HumanMessage(QUESTION), answer, result])
    assert final.content == ECHO and final.tool_calls == []


def test_streamed_tool_call(chat: ChatOpenAI) -> None:
    chunks = list(chat.bind_tools([get_weather]).stream(QUESTION))
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    (call,) = merged.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "fake", "days": 0}


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_structured_output(chat: ChatOpenAI, method: str) -> None:
    structured = chat.with_structured_output(City, method=method)
    prompt = QUESTION if method != "json_mode" else \
        f"{QUESTION} Answer in JSON with this schema: {json.dumps(City.model_json_schema())}"
    city = structured.invoke(prompt)
    assert city == City(name="fake", population=0, landmarks=["fake"])


def test_errors_are_openai_exceptions(chat: ChatOpenAI, client_proxy: ClientProxy) -> None:
    bad = ChatOpenAI(model=CHAT, base_url=client_proxy.url, api_key="sk-wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.invoke(QUESTION)
    with pytest.raises(openai.NotFoundError):
        chat.model_copy(update={"model_name": "no-such-model"}).invoke(QUESTION)
    unknown = ChatOpenAI(model="no-such-model", base_url=client_proxy.url, api_key=client_proxy.key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        list(unknown.stream(QUESTION))
    overloaded = ChatOpenAI(model=OVERLOADED, base_url=client_proxy.url, api_key=client_proxy.key, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        overloaded.invoke(QUESTION)
    broken = ChatOpenAI(model=BROKEN_STREAM, base_url=client_proxy.url, api_key=client_proxy.key, max_retries=0)
    with pytest.raises(openai.APIError, match="incomplete"):
        list(broken.stream(QUESTION))


def test_use_responses_api(client_proxy: ClientProxy) -> None:
    """``ChatOpenAI(use_responses_api=True)`` (issue #15 item 9)."""
    chat = ChatOpenAI(model=CHAT, base_url=client_proxy.url, api_key=client_proxy.key, max_retries=0,
                      use_responses_api=True)
    assert chat.invoke(QUESTION).text == ECHO
