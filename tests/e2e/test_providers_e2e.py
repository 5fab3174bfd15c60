"""Every native provider end to end: a real ``trioproxy run`` in front of the provider's faithful local
fake (``support/native_fakes``), driven with the official ``openai`` client (issue #16).

For each provider, one proxy serves: non-streaming and streaming chat (the system prompt where the
native API wants it), a tool-call round trip, usage and cost (the ``x-trioproxy-response-cost``
header and the cost in the request log, checked against the price table and the usage the client
got), an upstream error mapped to the right status with no key in the answer, embeddings where the
provider has them, a native stream that ends without its terminator (an ``upstream_stream_interrupted``
error event, never ``[DONE]``), and a client that leaves mid-stream closing the upstream connection.
The fakes refuse anything the real API would (``violations``): none may be recorded.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from conftest import MASTER_KEY
from support.native_fakes.anthropic_fake import AnthropicFake
from support.native_fakes.azure_fake import AzureFake
from support.native_fakes.bedrock_fake import BedrockFake
from support.native_fakes.google_fake import GoogleFake, make_service_account
from support.native_fakes.ollama_fake import OllamaFake
from support.native_fakes.server import NativeFake
from trioproxy.observability.prices import Price, PriceTable

SYSTEM = "You answer in one short sentence."
USER = {"role": "user", "content": "What is the weather in Paris?"}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
ANTHROPIC_KEY = "sk-ant-api03-SECRET-0123456789abcdefghij"
AZURE_KEY = "azure-SECRET-key-0123456789abcdef"
AWS_ACCESS_KEY = "AKIDEXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
GEMINI_KEY = "AIzaSyFAKE-gemini-key-0123456789abcdef"
TOGETHER_KEY = "together-SECRET-key-0123456789abcdef"
WRONG_KEY = "sk-WRONG-SECRET-key-9876543210fedcba"
TABLE = PriceTable.load_default()


@dataclass
class Case:
    """One provider: its fake, its deployments and what its native API must have received."""

    name: str
    make_fake: Callable[[], NativeFake]
    chat: Callable[[Any], dict[str, Any]]           # litellm_params of the chat model
    bad: Callable[[Any], dict[str, Any]] | None     # litellm_params of a deployment the upstream refuses
    error_status: int
    system_placed: Callable[[dict[str, Any]], bool]
    tool_call: dict[str, Any]                       # the fake's script.tool_call
    tool_result_sent: Callable[[dict[str, Any]], bool]
    price: Price | None                             # what the chat model is priced at
    secrets: tuple[str, ...]
    embed: Callable[[Any], dict[str, Any]] | None = None
    embedding_of: Callable[[str], list[float]] | None = None
    chat_info: dict[str, Any] = field(default_factory=dict)     # the chat entry's model_info
    scripted_error: tuple[Any, ...] | None = None   # set on the fake's script instead of a bad deployment


def _last_content(body: dict[str, Any]) -> Any:
    return body["messages"][-1]["content"]


CASES = [
    Case(
        "anthropic", lambda: AnthropicFake(ANTHROPIC_KEY),
        chat=lambda f: {"model": "anthropic/claude-haiku-4-5", "api_base": f.base_url, "api_key": ANTHROPIC_KEY},
        bad=lambda f: {"model": "anthropic/claude-haiku-4-5", "api_base": f.base_url, "api_key": WRONG_KEY},
        error_status=401,
        system_placed=lambda b: b["system"] == [{"type": "text", "text": SYSTEM}]
        and all(m["role"] != "system" for m in b["messages"]),
        tool_call={"name": "get_weather", "input": {"city": "Paris"}},
        tool_result_sent=lambda b: any(block.get("type") == "tool_result" for block in _last_content(b)),
        price=TABLE.lookup("anthropic/claude-haiku-4-5"), secrets=(ANTHROPIC_KEY, WRONG_KEY),
    ),
    Case(
        "azure", lambda: AzureFake(AZURE_KEY),
        chat=lambda f: {"model": "azure/prod-gpt4o", "api_base": f.base_url, "api_key": AZURE_KEY,
                        "api_version": "2024-10-21"},
        chat_info={"base_model": "azure/gpt-4o-mini"},       # LiteLLM's way to price an Azure deployment
        bad=lambda f: {"model": "azure/prod-gpt4o", "api_base": f.base_url, "api_key": WRONG_KEY,
                       "api_version": "2024-10-21"},
        error_status=401,
        system_placed=lambda b: b["messages"][0] == {"role": "system", "content": SYSTEM},
        tool_call={"name": "get_weather", "arguments": '{"city": "Paris"}'},
        tool_result_sent=lambda b: b["messages"][-1]["role"] == "tool",
        price=TABLE.lookup("azure/gpt-4o-mini"), secrets=(AZURE_KEY, WRONG_KEY),
        embed=lambda f: {"model": "azure/prod-embedder", "api_base": f.base_url, "api_key": AZURE_KEY,
                         "api_version": "2024-10-21"},
        embedding_of=lambda text: [0.5, float(len(text))],
    ),
    Case(
        "bedrock", lambda: BedrockFake(AWS_ACCESS_KEY, AWS_SECRET),
        chat=lambda f: {"model": "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0", "api_base": f.base_url,
                        "aws_access_key_id": AWS_ACCESS_KEY, "aws_secret_access_key": AWS_SECRET,
                        "aws_region_name": "us-east-1"},
        bad=lambda f: {"model": "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0", "api_base": f.base_url,
                       "aws_access_key_id": "AKIAWRONGEXAMPLE", "aws_secret_access_key": WRONG_KEY,
                       "aws_region_name": "us-east-1"},
        error_status=403,
        system_placed=lambda b: b["system"] == [{"text": SYSTEM}],
        tool_call={"name": "get_weather", "input": {"city": "Paris"}},
        tool_result_sent=lambda b: any("toolResult" in block for block in _last_content(b)),
        price=TABLE.lookup("bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0"), secrets=(AWS_SECRET, WRONG_KEY),
        embed=lambda f: {"model": "bedrock/amazon.titan-embed-text-v2:0", "api_base": f.base_url,
                         "aws_access_key_id": AWS_ACCESS_KEY, "aws_secret_access_key": AWS_SECRET,
                         "aws_region_name": "us-east-1"},
        embedding_of=lambda text: [round(0.001 * (len(text) + i), 6) for i in range(4)],
    ),
    Case(
        "gemini", lambda: GoogleFake(api_key=GEMINI_KEY),
        chat=lambda f: {"model": "gemini/gemini-2.5-flash", "api_base": f"{f.base_url}/v1beta", "api_key": GEMINI_KEY},
        bad=lambda f: {"model": "gemini/gemini-2.5-flash", "api_base": f"{f.base_url}/v1beta", "api_key": WRONG_KEY},
        error_status=401,       # Google answers an invalid key with 400 API_KEY_INVALID
        system_placed=lambda b: b["systemInstruction"] == {"parts": [{"text": SYSTEM}]},
        tool_call={"name": "get_weather", "args": {"city": "Paris"}},
        tool_result_sent=lambda b: any("functionResponse" in p for p in b["contents"][-1]["parts"]),
        price=TABLE.lookup("gemini/gemini-2.5-flash"), secrets=(GEMINI_KEY, WRONG_KEY),
        embed=lambda f: {"model": "gemini/gemini-embedding-001", "api_base": f"{f.base_url}/v1beta",
                         "api_key": GEMINI_KEY},
        embedding_of=lambda text: [0.25, float(len(text)), -1.0],
    ),
    Case(
        "vertex_ai", lambda: _vertex_fake(),
        chat=lambda f: {"model": "vertex_ai/gemini-2.5-flash", "api_base": f.base_url, "vertex_project": "fake-project",
                        "vertex_location": "us-central1", "vertex_credentials": json.dumps(f.credentials)},
        bad=None, scripted_error=(429, "Resource has been exhausted (e.g. check quota)."), error_status=429,
        system_placed=lambda b: b["systemInstruction"] == {"parts": [{"text": SYSTEM}]},
        tool_call={"name": "get_weather", "args": {"city": "Paris"}},
        tool_result_sent=lambda b: any("functionResponse" in p for p in b["contents"][-1]["parts"]),
        price=TABLE.lookup("vertex_ai/gemini-2.5-flash"), secrets=(),
        embed=lambda f: {"model": "vertex_ai/text-embedding-005", "api_base": f.base_url,
                         "vertex_project": "fake-project", "vertex_credentials": json.dumps(f.credentials)},
        embedding_of=lambda text: [0.5, float(len(text))],
    ),
    Case(
        "ollama_chat", lambda: OllamaFake(),
        chat=lambda f: {"model": "ollama_chat/llama3.2", "api_base": f.base_url,
                        "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
        bad=lambda f: {"model": "ollama_chat/no-such-model", "api_base": f.base_url},
        error_status=404,
        system_placed=lambda b: b["messages"][0] == {"role": "system", "content": SYSTEM},
        tool_call={"name": "get_weather", "arguments": {"city": "Paris"}},
        tool_result_sent=lambda b: b["messages"][-1]["role"] == "tool",
        price=Price(1e-6, 2e-6), secrets=(),
        embed=lambda f: {"model": "ollama/nomic-embed-text", "api_base": f.base_url},
        embedding_of=lambda text: [0.125, float(len(text))],
    ),
    Case(
        "together_ai", lambda: AzureFake(TOGETHER_KEY, mode="openai", prefix="/v1"),
        chat=lambda f: {"model": "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "api_base": f"{f.base_url}/v1",
                        "api_key": TOGETHER_KEY},
        bad=lambda f: {"model": "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "api_base": f"{f.base_url}/v1",
                       "api_key": WRONG_KEY},
        error_status=401,
        system_placed=lambda b: b["messages"][0] == {"role": "system", "content": SYSTEM},
        tool_call={"name": "get_weather", "arguments": '{"city": "Paris"}'},
        tool_result_sent=lambda b: b["messages"][-1]["role"] == "tool",
        price=TABLE.lookup("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"), secrets=(TOGETHER_KEY, WRONG_KEY),
        embed=lambda f: {"model": "together_ai/BAAI/bge-large-en-v1.5", "api_base": f"{f.base_url}/v1",
                         "api_key": TOGETHER_KEY},
        embedding_of=lambda text: [0.5, float(len(text))],
    ),
]


def _vertex_fake() -> GoogleFake:
    info, public_key = make_service_account("http://placeholder/token")
    fake = GoogleFake(public_key=public_key, client_email=info["client_email"])
    fake.credentials = info     # type: ignore[attr-defined]   (token_uri set once the port is known)
    return fake


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def served(request: pytest.FixtureRequest, start_proxy: Any) -> Iterator[tuple[Case, Any, Any, openai.OpenAI]]:
    case: Case = request.param
    with case.make_fake() as fake:
        if case.name == "vertex_ai":
            fake.credentials = {**fake.credentials, "token_uri": f"{fake.base_url}/token"}
        models = [{"model_name": "chat", "litellm_params": case.chat(fake), "model_info": case.chat_info}]
        if case.bad is not None:
            models.append({"model_name": "refused", "litellm_params": case.bad(fake)})
        if case.embed is not None:
            models.append({"model_name": "embedder", "litellm_params": case.embed(fake)})
        if case.name == "azure":       # no base_model: priced by the dated model Azure's answer names
            models.append({"model_name": "chat-dated", "litellm_params": case.chat(fake)})
        config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
                  "litellm_settings": {"num_retries": 0}}
        proxy = start_proxy(config, args=["--log-format", "json"])
        client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
        yield case, fake, proxy, client
        assert fake.violations == [], fake.violations
        assert not fake.errors, fake.errors


def _tag(case: str) -> dict[str, Any]:
    return {"extra_body": {"metadata": {"case": case}}}


def _expected_cost(price: Price | None, usage: Any) -> float | None:
    if price is None:
        return None
    return usage.prompt_tokens * price.input_cost_per_token + usage.completion_tokens * price.output_cost_per_token


def test_provider_end_to_end(served: tuple[Case, Any, Any, openai.OpenAI]) -> None:
    case, fake, proxy, client = served
    text = fake.script.text
    costs: dict[str, float | None] = {}

    # non-streaming chat: the system prompt where the native API wants it; usage; cost in the header
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "system", "content": SYSTEM}, USER], **_tag("plain"))
    answer = raw.parse()
    assert answer.choices[0].message.content == text
    assert answer.choices[0].finish_reason == "stop"
    assert case.system_placed(fake.last.json), fake.last.json
    usage = answer.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    costs["plain"] = _expected_cost(case.price, usage)
    assert costs["plain"] is not None
    assert float(raw.headers["x-trioproxy-response-cost"]) == pytest.approx(costs["plain"])

    # streaming chat, with the usage chunk the client asked for
    chunks = list(client.chat.completions.create(
        model="chat", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "system", "content": SYSTEM}, USER], **_tag("stream")))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert case.system_placed(fake.last.json), fake.last.json
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    costs["stream"] = _expected_cost(case.price, chunks[-1].usage)

    # a tool-call round trip
    fake.script.tool_call = case.tool_call
    first = client.chat.completions.create(model="chat", messages=[USER], tools=[WEATHER], **_tag("tool-call"))
    calls = first.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert first.choices[0].finish_reason == "tool_calls"
    follow = [USER, first.choices[0].message.model_dump(exclude_none=True),
              {"role": "tool", "tool_call_id": calls[0].id, "content": "Sunny, 21 °C"}]
    second = client.chat.completions.create(model="chat", messages=follow, tools=[WEATHER], **_tag("tool-result"))
    assert second.choices[0].message.content == text
    assert case.tool_result_sent(fake.last.json), fake.last.json
    fake.script.tool_call = None

    # an upstream error: the right status, no key in the answer
    if case.scripted_error is not None:
        fake.script.fail = case.scripted_error
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="refused" if case.bad else "chat", messages=[USER], **_tag("error"))
    fake.script.fail = None
    assert refused.value.status_code == case.error_status, refused.value.response.text
    assert refused.value.response.json()["error"]["message"]
    for secret in case.secrets:
        assert secret not in refused.value.response.text

    # embeddings (the openai client asks for base64: the proxy encodes the provider's floats)
    if case.embed is not None:
        assert case.embedding_of is not None
        vectors = client.embeddings.create(model="embedder", input=["hello world", "bye"], **_tag("embeddings"))
        for got, text_in in zip(vectors.data, ["hello world", "bye"], strict=True):   # float32 on the wire
            assert got.embedding == pytest.approx(case.embedding_of(text_in), rel=1e-6)
        assert vectors.usage.prompt_tokens > 0
    else:
        with pytest.raises(openai.BadRequestError) as no_embeddings:
            client.embeddings.create(model="chat", input="hello")
        assert "does not serve /v1/embeddings" in no_embeddings.value.message

    # a native stream without its terminator: an error event, never [DONE]
    fake.script.truncate = True
    with pytest.raises(openai.APIError) as interrupted:
        list(client.chat.completions.create(model="chat", stream=True, messages=[USER], **_tag("truncated")))
    fake.script.truncate = False
    assert interrupted.value.code == "upstream_stream_interrupted"

    # a client that leaves mid-stream: the upstream connection is closed (the provider stops)
    fake.script.hang = True
    seen = len(fake.exchanges)
    stream = client.chat.completions.create(model="chat", stream=True, messages=[USER], **_tag("disconnect"))
    assert next(iter(stream)) is not None
    stream.close()
    exchange = fake.wait_for(seen + 1)[seen]
    assert exchange.disconnected.wait(10), "the proxy did not close the upstream connection"
    fake.script.hang = False

    if case.name == "azure":
        dated = client.chat.completions.create(model="chat-dated", messages=[USER], **_tag("dated"))
        costs["dated"] = _expected_cost(TABLE.lookup("azure/gpt-4o-2024-11-20"), dated.usage)

    # the request log: the cost settled from the provider's usage; no secret anywhere
    assert proxy.terminate(signal.SIGTERM) == 0
    logs = proxy.logs()
    for secret in case.secrets:
        assert secret not in logs
    records = {r["metadata"]["case"]: r for r in (json.loads(line) for line in logs.splitlines()
                                                  if line.startswith("{"))
               if r.get("logger") == "trioproxy.requests" and r.get("metadata")}
    for name, expected in costs.items():
        assert records[name]["response_cost"] == pytest.approx(expected), name
        assert records[name]["cost_source"] == "usage"
        assert records[name]["provider"] == case.name
    assert records["truncated"]["error_code"] == "upstream_stream_interrupted"
    assert records["error"]["status_code"] == case.error_status


def test_bad_provider_settings_stop_startup_naming_the_key(tmp_path: Any) -> None:
    """``prepare()`` runs for every deployment at startup: each problem names its key path, all at once,
    and no credential is printed (``trioproxy run`` and ``trioproxy check`` alike)."""
    import os
    import subprocess
    import sys

    from support.proxy_process import write_config

    config = {"model_list": [
        {"model_name": "a", "litellm_params": {"model": "azure/prod", "api_key": AZURE_KEY}},
        {"model_name": "b", "litellm_params": {"model": "vertex_ai/gemini-2.5-flash",
                                               "vertex_credentials": "{not json " + AWS_SECRET}},
        {"model_name": "c", "litellm_params": {"model": "hosted_vllm/llama", "api_key": TOGETHER_KEY}}]}
    path = write_config(tmp_path, config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VERTEX", "GOOGLE_", "HOSTED_VLLM"))}
    for command in (["run", str(path), "--port", "0"], ["check", str(path)]):
        done = subprocess.run([sys.executable, "-m", "trioproxy", *command], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL, env=env, cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        output = done.stdout + done.stderr
        assert "model_list[0].litellm_params: azure/prod needs 'api_base'" in output
        assert "model_list[1].litellm_params: vertex_credentials looks like JSON but does not parse" in output
        assert "model_list[2].litellm_params: hosted_vllm/llama needs 'api_base'" in output
        for secret in (AZURE_KEY, AWS_SECRET, TOGETHER_KEY):
            assert secret not in output


def test_a_preset_configured_as_on_litellm(start_proxy: Any) -> None:
    """``model: groq/…`` with ``api_key: os.environ/GROQ_API_KEY`` works as on LiteLLM: the preset's
    base comes from its environment variable (``GROQ_API_BASE``, here the local fake in Groq's path)."""
    key = "gsk_SECRET_groq_0123456789abcdef"
    with AzureFake(key, mode="openai", prefix="/openai/v1") as groq:
        config = {"model_list": [{"model_name": "llama", "litellm_params": {
                      "model": "groq/llama3-8b-8192", "api_key": "os.environ/GROQ_API_KEY"}}],
                  "general_settings": {"master_key": MASTER_KEY}}
        proxy = start_proxy(config, env={"GROQ_API_KEY": key, "GROQ_API_BASE": f"{groq.base_url}/openai/v1"})
        client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
        answer = client.chat.completions.create(model="llama", messages=[USER], extra_body={"metadata": {"a": 1}})
        assert answer.choices[0].message.content == groq.script.text
        assert groq.last.json["model"] == "llama3-8b-8192" and "metadata" not in groq.last.json
        streamed = list(client.chat.completions.create(model="llama", messages=[USER], stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == groq.script.text
        assert groq.violations == []
        assert proxy.terminate(signal.SIGTERM) == 0
        assert key not in proxy.logs()
