"""LlamaIndex (``llama-index-llms-openai``, ``llama-index-embeddings-openai``) against a real trioproxy.

LlamaIndex's ``OpenAI`` LLM checks model names against OpenAI's list (context window, function
calling), so the proxy serves the fake under ``gpt-4o-mini`` for it.
"""

from __future__ import annotations

import httpx
import openai
import pydantic
import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI

from .conftest import EMBED, KNOWN_BROKEN_STREAM, KNOWN_CHAT, KNOWN_OVERLOADED, ClientProxy

QUESTION = "What is the capital of France?"
ECHO = f"This is a fake answer from {KNOWN_CHAT} to: {QUESTION}"


@pytest.fixture(scope="module")
def llm(client_proxy: ClientProxy) -> OpenAI:
    return OpenAI(model=KNOWN_CHAT, api_base=client_proxy.url, api_key=client_proxy.key, max_retries=0)


def get_weather(city: str, days: int) -> str:
    """The weather in a city for the next days."""
    return f"sunny in {city} for {days} days"


class City(pydantic.BaseModel):
    """A city."""

    name: str
    population: int


def test_complete_and_chat(llm: OpenAI) -> None:
    assert llm.complete(QUESTION).text == ECHO
    answer = llm.chat([ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content=QUESTION)])
    assert answer.message.content == ECHO
    assert answer.raw.usage.total_tokens > 0


def test_stream_chat_and_complete(llm: OpenAI) -> None:
    deltas = [r.delta for r in llm.stream_chat([ChatMessage(role="user", content=QUESTION)])]
    assert "".join(deltas) == ECHO and len(deltas) > 1
    assert [r.text for r in llm.stream_complete(QUESTION)][-1] == ECHO


def test_embeddings(client_proxy: ClientProxy) -> None:
    model = OpenAIEmbedding(model_name=EMBED, api_base=client_proxy.url, api_key=client_proxy.key, max_retries=0)
    batch = model.get_text_embedding_batch(["first text", "second text"])
    single = model.get_text_embedding("first text")
    expected = httpx.post(f"{client_proxy.url}/embeddings", headers={"Authorization": f"Bearer {client_proxy.key}"},
                          json={"model": EMBED, "input": ["first text", "second text"]}).json()
    assert batch == [d["embedding"] for d in expected["data"]] and single == batch[0]


def test_tool_call(llm: OpenAI) -> None:
    weather = FunctionTool.from_defaults(fn=get_weather)
    response = llm.chat_with_tools([weather], user_msg=QUESTION)
    (call,) = llm.get_tool_calls_from_response(response)
    assert call.tool_name == "get_weather" and call.tool_kwargs == {"city": "fake", "days": 0}
    # predict_and_call: the model calls the tool, LlamaIndex runs it
    output = llm.predict_and_call([weather], user_msg=QUESTION)
    assert output.response == "sunny in fake for 0 days"


def test_streamed_tool_call(llm: OpenAI) -> None:
    weather = FunctionTool.from_defaults(fn=get_weather)
    *_, last = llm.stream_chat_with_tools([weather], user_msg=QUESTION)
    (call,) = llm.get_tool_calls_from_response(last)
    assert call.tool_name == "get_weather" and call.tool_kwargs == {"city": "fake", "days": 0}


def test_structured_predict(llm: OpenAI) -> None:
    city = llm.structured_predict(City, PromptTemplate("Describe the capital of {country}."), country="France")
    assert city == City(name="fake", population=0)


def test_errors_are_openai_exceptions(client_proxy: ClientProxy) -> None:
    bad = OpenAI(model=KNOWN_CHAT, api_base=client_proxy.url, api_key="sk-wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.complete(QUESTION)
    unknown = OpenAI(model="gpt-4o", api_base=client_proxy.url, api_key=client_proxy.key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        unknown.complete(QUESTION)


@pytest.mark.parametrize("name", [KNOWN_OVERLOADED, KNOWN_BROKEN_STREAM])
def test_upstream_failures_are_openai_exceptions(client_proxy: ClientProxy, name: str) -> None:
    """A 429 from the fake provider, and a stream its upstream breaks."""
    llm = OpenAI(model=name, api_base=client_proxy.url, api_key=client_proxy.key, max_retries=0)
    if name == KNOWN_OVERLOADED:
        with pytest.raises(openai.RateLimitError):
            llm.complete(QUESTION)
    else:
        with pytest.raises(openai.APIError, match="incomplete"):
            list(llm.stream_chat([ChatMessage(role="user", content=QUESTION)]))
