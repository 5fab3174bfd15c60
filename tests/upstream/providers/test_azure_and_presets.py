"""Azure OpenAI and the OpenAI-compatible presets (groq/, mistral/, hosted_vllm/…) through the AdapterProvider."""

from __future__ import annotations

import orjson
import pytest
import trio

from support.native_fakes.azure_fake import AzureFake
from support.native_fakes.harness import collect_stream, deployment, provider_for
from trioproxy.errors import AuthenticationError, BadRequestError, ContentPolicyViolationError
from trioproxy.observability.prices import PriceTable
from trioproxy.upstream.providers.adapter import ProviderConfigError, StreamInterruptedError
from trioproxy.upstream.providers.azure import AzureAdapter
from trioproxy.upstream.providers.openai_like import PRESETS

KEY = "azure-key-0123456789abcdef0123456789"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture
def azure():
    with AzureFake(KEY, ad_token="eyJ0eXAiOiJKV1QiLCJhbGciOi.fake-entra-token") as server:
        yield server
        assert not server.errors, server.errors


def azure_dep(fake, **params):
    return deployment("azure/my-gpt4o", **{"api_base": fake.base_url, "api_key": KEY,
                                           "api_version": "2024-10-21", **params})


def body(**extra):
    return {"model": "my-gpt4o", "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
            **extra}


async def test_azure_chat_path_api_key_and_version(azure):
    async with provider_for() as provider:
        answer = orjson.loads((await provider.send(azure_dep(azure), "chat/completions", body())).body)
    exchange = azure.last
    assert exchange.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert exchange.query["api-version"] == ["2024-10-21"]
    assert exchange.headers["api-key"] == KEY and "authorization" not in exchange.headers
    assert "model" not in exchange.json and "api_version" not in exchange.json
    assert exchange.json["messages"][0] == {"role": "system", "content": "sys"}
    assert answer["choices"][0]["message"]["content"] == "Hello from the fake Azure."
    assert azure.violations == []


async def test_azure_ad_token_and_v1_api(azure):
    token = "eyJ0eXAiOiJKV1QiLCJhbGciOi.fake-entra-token"
    async with provider_for() as provider:
        await provider.send(azure_dep(azure, api_key=None, azure_ad_token=token, api_version="v1"),
                            "chat/completions", body())
    assert azure.last.path == "/openai/v1/chat/completions" and azure.last.json["model"] == "my-gpt4o"
    assert azure.last.headers["authorization"] == f"Bearer {token}" and "api-key" not in azure.last.headers


async def test_azure_stream_skips_the_empty_first_chunk(azure):
    async with provider_for() as provider:
        events = await collect_stream(await provider.open_stream(
            azure_dep(azure), "chat/completions", body(stream=True, stream_options={"include_usage": True})))
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"     # prompt_filter_results chunk not relayed
    assert events[-2]["choices"] == [] and events[-2]["usage"]["total_tokens"] == 17
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"]) == \
        "Hello from the fake Azure."


async def test_azure_content_filter_and_bad_key(azure):
    async with provider_for() as provider:
        azure.script.content_filter = True
        with pytest.raises(ContentPolicyViolationError) as caught:
            await provider.send(azure_dep(azure), "chat/completions", body())
        assert caught.value.status_code == 400 and caught.value.code == "content_filter"
        wrong = "azure-WRONG-key-abcdefghijklmnop"
        with pytest.raises(AuthenticationError) as caught_key:
            await provider.send(azure_dep(azure, api_key=wrong), "chat/completions", body())
    assert wrong not in caught_key.value.message and "invalid subscription key" in caught_key.value.message


async def test_azure_tool_round_trip_and_embeddings_base64(azure):
    azure.script.tool_call = {"name": "get_weather", "arguments": "{}"}
    async with provider_for() as provider:
        first = orjson.loads((await provider.send(azure_dep(azure), "chat/completions", body(tools=[WEATHER]))).body)
        message = first["choices"][0]["message"]
        follow = body(tools=[WEATHER])
        follow["messages"] += [message, {"role": "tool", "tool_call_id": "call_azure1", "content": "sunny"}]
        second = orjson.loads((await provider.send(azure_dep(azure), "chat/completions", follow)).body)
        assert second["choices"][0]["message"]["content"] == "Hello from the fake Azure."
        emb = orjson.loads((await provider.send(azure_dep(azure), "embeddings",
                                                {"model": "m", "input": ["a", "bb"], "encoding_format": "float"})).body)
    assert azure.last.path == "/openai/deployments/my-gpt4o/embeddings"
    assert emb["data"][1]["embedding"] == [0.5, 2.0] and emb["usage"]["prompt_tokens"] == 4


async def test_azure_stream_without_done_is_interrupted_and_early_close(azure):
    async with provider_for() as provider:
        azure.script.truncate = True
        with pytest.raises(StreamInterruptedError):
            await collect_stream(await provider.open_stream(azure_dep(azure), "chat/completions", body(stream=True)))
        azure.script.truncate, azure.script.hang = False, True
        stream = await provider.open_stream(azure_dep(azure), "chat/completions", body(stream=True))
        pieces = stream.aiter_bytes()
        await pieces.__anext__()
        await pieces.aclose()
        await stream.aclose()
        assert await trio.to_thread.run_sync(azure.last.disconnected.wait, 10.0)


def test_azure_pricing_model_from_base_model_or_answer():
    adapter = AzureAdapter()
    with_base = adapter.configure("azure", "prod-gpt", {"api_base": "https://x", "api_key": "k",
                                                        "model_info": {"base_model": "azure/gpt-4o-mini"}}, {})
    assert adapter.pricing_model(with_base, "gpt-4o-2024-11-20") == "azure/gpt-4o-mini"
    plain = adapter.configure("azure", "prod-gpt", {"api_base": "https://x", "api_key": "k"}, {})
    assert adapter.pricing_model(plain, "gpt-4o-2024-11-20") == "gpt-4o-2024-11-20"
    table = PriceTable.load_default()
    assert table.lookup("azure/gpt-4o-mini") is not None and table.lookup("gpt-4o-2024-11-20") is not None
    with pytest.raises(ProviderConfigError) as caught:
        adapter.configure("azure", "prod-gpt", {"api_key": "k"}, {})
    assert "api_base" in str(caught.value) and "AZURE_API_BASE" in str(caught.value)
    from_env = adapter.configure("azure", "d", {}, {"AZURE_API_BASE": "https://e", "AZURE_API_KEY": "k2"})
    assert (from_env.api_base, from_env.api_key, from_env.api_version) == ("https://e", "k2", "2025-02-01-preview")


# -- presets ---------------------------------------------------------------------------------------


@pytest.fixture
def compat():
    with AzureFake("gsk_fake-groq-key-0123456789", mode="openai", prefix="/openai/v1") as server:
        yield server
        assert not server.errors, server.errors


async def test_groq_preset_with_api_base_override_and_env_key(compat):
    env = {"GROQ_API_KEY": "gsk_fake-groq-key-0123456789"}
    async with provider_for(environ=env) as provider:
        dep = deployment("groq/llama-3.3-70b-versatile", api_base=f"{compat.base_url}/openai/v1")
        answer = orjson.loads((await provider.send(dep, "chat/completions", body(top_k=4))).body)
        assert compat.last.json["model"] == "llama-3.3-70b-versatile" and compat.last.json["top_k"] == 4
        assert answer["choices"][0]["message"]["content"] == "Hello from the fake Azure."
        with pytest.raises(BadRequestError) as caught:
            await provider.send(dep, "chat/completions", body(logprobs=True))
        assert "'logprobs'" in caught.value.message and "groq" in caught.value.message
        events = await collect_stream(await provider.open_stream(dep, "chat/completions", body(stream=True)))
        assert events[-1] == "[DONE]"
        with pytest.raises(BadRequestError):
            await provider.send(dep, "embeddings", {"model": "m", "input": "x"})
    assert compat.violations == []


async def test_mistral_maps_tool_choice_and_drops_unsupported(compat):
    async with provider_for(drop_params=True) as provider:
        dep = deployment("mistral/mistral-large-latest", api_base=f"{compat.base_url}/openai", api_key="gsk_fake-groq-key-0123456789")
        # api_base without /v1 gets it appended, as LiteLLM does for mistral
        await provider.send(dep, "chat/completions", body(tools=[WEATHER], tool_choice="required", logit_bias={"1": 1},
                                                           max_completion_tokens=5))
    sent = compat.last.json
    assert compat.last.path == "/openai/v1/chat/completions"
    assert sent["tool_choice"] == "any" and "logit_bias" not in sent and sent["max_tokens"] == 5


def test_preset_defaults_match_litellm():
    assert PRESETS["groq"].api_base == "https://api.groq.com/openai/v1"
    assert PRESETS["deepseek"].api_base == "https://api.deepseek.com/beta"
    assert PRESETS["openrouter"].key_env == ("OPENROUTER_API_KEY", "OR_API_KEY")
    assert PRESETS["together_ai"].api_base == "https://api.together.ai/v1"
    assert PRESETS["fireworks_ai"].api_base == "https://api.fireworks.ai/inference/v1"
    assert PRESETS["xai"].api_base == "https://api.x.ai/v1"
    assert PRESETS["perplexity"].api_base == "https://api.perplexity.ai"
    assert PRESETS["hosted_vllm"].api_base is None and PRESETS["hosted_vllm"].default_key == "fake-api-key"


async def test_preset_configuration_rules():
    async with provider_for(environ={"FIREWORKS_AI_API_KEY": "fw-key-0123456789"}) as provider:
        fw = provider.prepare(deployment("fireworks_ai/llama-v3p1-8b-instruct")).settings
        assert fw.model == "accounts/fireworks/models/llama-v3p1-8b-instruct" and fw.api_key == "fw-key-0123456789"
        hf = provider.prepare(deployment("huggingface/together/deepseek-ai/DeepSeek-R1", index=1, api_key="hf_x")).settings
        assert (hf.api_base, hf.model) == ("https://router.huggingface.co/v1", "deepseek-ai/DeepSeek-R1:together")
        tgi = provider.prepare(deployment("huggingface/tgi", index=2, api_base="https://my-endpoint.example",
                                          api_key="hf_x")).settings
        assert tgi.api_base == "https://my-endpoint.example/v1"
        with pytest.raises(ProviderConfigError) as caught:
            provider.prepare(deployment("hosted_vllm/my-model", index=3))
        assert "api_base" in str(caught.value)
        vllm = provider.prepare(deployment("hosted_vllm/my-model", index=4, api_base="http://vllm:8000/v1")).settings
        assert vllm.api_key == "fake-api-key"
