"""OpenAI-compatible providers named by prefix (``groq/``, ``mistral/``, ``together_ai/``…).

They speak OpenAI's API already; what a preset adds is LiteLLM's defaults for that prefix — the
base URL, the environment variables holding the key (and base URL), the model-name rewriting a
provider needs (Fireworks' ``accounts/fireworks/models/…``, Hugging Face's router), and the OpenAI
parameters the provider rejects (Perplexity and Mistral take a subset; Groq refuses ``logprobs``).
Answers and streams pass through unchanged, except that a stream must end with ``[DONE]`` (its
terminator) and a chunk with empty ``choices`` and no usage (Azure's ``prompt_filter_results``) is
not relayed.

Values checked against LiteLLM's ``get_llm_provider_logic.py`` and each provider's
``get_openai_compatible_provider_info`` (LiteLLM 1.110).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ...errors import APIConnectionError, ProxyError
from ...streaming import SSEParser
from .adapter import Adapter, Call, NativeAnswer, NativeRequest, StreamDecoder
from .errormap import openai_error
from .params import CHAT_PARAMS, COMPLETION_PARAMS, EMBEDDING_PARAMS
from .settings import SettingsReader

__all__ = ["PRESETS", "OpenAICompatibleAdapter", "OpenAISSEDecoder", "Preset", "PresetSettings"]

_ALL = {"chat/completions": CHAT_PARAMS, "completions": COMPLETION_PARAMS, "embeddings": EMBEDDING_PARAMS}


@dataclass(frozen=True, slots=True)
class Preset:
    prefix: str
    api_base: str | None                    # None: the deployment must set api_base
    key_env: tuple[str, ...] = ()
    base_env: tuple[str, ...] = ()
    default_key: str | None = None          # servers that need no key (LiteLLM sends "fake-api-key")
    endpoints: frozenset[str] = frozenset({"chat/completions"})
    chat_params: frozenset[str] | None = None   # the subset taken; None: every OpenAI parameter
    refused: frozenset[str] = frozenset()       # OpenAI parameters the provider rejects


_STREAM = frozenset({"model", "messages", "stream", "stream_options"})

PRESETS: dict[str, Preset] = {p.prefix: p for p in (
    Preset("groq", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",), ("GROQ_API_BASE",),
           refused=frozenset({"logprobs", "top_logprobs", "logit_bias"})),
    Preset("mistral", "https://api.mistral.ai/v1", ("MISTRAL_AZURE_API_KEY", "MISTRAL_API_KEY"),
           ("MISTRAL_AZURE_API_BASE",), endpoints=frozenset({"chat/completions", "embeddings"}),
           chat_params=_STREAM | {"temperature", "top_p", "max_tokens", "max_completion_tokens", "tools",
                                  "tool_choice", "seed", "stop", "response_format", "parallel_tool_calls",
                                  "n", "presence_penalty", "frequency_penalty", "prompt_cache_key"}),
    Preset("deepseek", "https://api.deepseek.com/beta", ("DEEPSEEK_API_KEY",), ("DEEPSEEK_API_BASE",),
           endpoints=frozenset({"chat/completions", "completions"})),
    Preset("together_ai", "https://api.together.ai/v1",
           ("TOGETHER_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_TOKEN"),
           ("TOGETHER_AI_API_BASE",), endpoints=frozenset({"chat/completions", "completions", "embeddings"})),
    Preset("fireworks_ai", "https://api.fireworks.ai/inference/v1",
           ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"),
           ("FIREWORKS_API_BASE",), endpoints=frozenset({"chat/completions", "completions", "embeddings"})),
    Preset("openrouter", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY", "OR_API_KEY"),
           ("OPENROUTER_API_BASE",), endpoints=frozenset({"chat/completions", "completions", "embeddings"})),
    Preset("xai", "https://api.x.ai/v1", ("XAI_API_KEY",), ("XAI_API_BASE",)),
    Preset("perplexity", "https://api.perplexity.ai", ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
           ("PERPLEXITY_API_BASE",),
           chat_params=_STREAM | {"frequency_penalty", "max_tokens", "max_completion_tokens", "presence_penalty",
                                  "response_format", "temperature", "top_p", "reasoning_effort",
                                  "web_search_options"}),
    Preset("hosted_vllm", None, ("HOSTED_VLLM_API_KEY",), ("HOSTED_VLLM_API_BASE",), default_key="fake-api-key",
           endpoints=frozenset({"chat/completions", "completions", "embeddings"})),
    Preset("lm_studio", None, ("LM_STUDIO_API_KEY",), ("LM_STUDIO_API_BASE",), default_key="fake-api-key",
           endpoints=frozenset({"chat/completions", "completions", "embeddings"})),
    Preset("huggingface", "https://router.huggingface.co/v1", ("HF_TOKEN", "HUGGINGFACE_API_KEY"),
           ("HF_API_BASE", "HUGGINGFACE_API_BASE"), endpoints=frozenset({"chat/completions"})),
)}


@dataclass(frozen=True, slots=True)
class PresetSettings:
    preset: Preset
    api_base: str
    api_key: str | None
    model: str                  # the model name sent upstream


class OpenAISSEDecoder(StreamDecoder):
    """OpenAI SSE → chunk dicts; ``[DONE]`` is the terminator. Error events raise the mapped error."""

    def __init__(self, *, skip_empty: bool = True) -> None:
        self._parser = SSEParser()
        self._skip_empty = skip_empty

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        out = []
        for payload in self._parser.feed(data):
            if self.finished:
                continue
            if payload.strip() == b"[DONE]":
                self.finished = True
                continue
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise APIConnectionError("The upstream sent a stream event that is not JSON.") from None
            if not isinstance(event, dict):
                continue
            if "error" in event and "choices" not in event:
                raise openai_error(_stream_error_status(event), orjson.dumps(event))
            if self._skip_empty and not event.get("choices") and not event.get("usage"):
                continue    # Azure's first chunk: prompt_filter_results, no choices
            out.append(event)
        return out


def _stream_error_status(event: dict[str, Any]) -> int:
    err = event.get("error")
    code = err.get("code") if isinstance(err, dict) else None
    if isinstance(code, int) and 400 <= code < 600:
        return code
    if code in ("rate_limit_exceeded", "rate_limit_error"):
        return 429
    return 502


def join_url(base: str, path: str) -> str:
    return f"{base.rstrip('/')}/{path.lstrip('/')}"


class OpenAICompatibleAdapter(Adapter):
    """The presets of :data:`PRESETS`: OpenAI's API at another address."""

    name = "openai-compatible"
    settings_names = frozenset({"api_base", "api_key"})
    endpoints = frozenset({"chat/completions", "completions", "embeddings"})

    def __init__(self, presets: Mapping[str, Preset] | None = None) -> None:
        self._presets = dict(PRESETS if presets is None else presets)

    def configure(self, prefix: str, model: str, params: Mapping[str, Any], environ: Mapping[str, str]) -> PresetSettings:
        preset = self._presets[prefix]
        read = SettingsReader(prefix, model, params, environ)
        api_base = read.text("api_base", preset.base_env, preset.api_base)
        api_key = read.text("api_key", preset.key_env, preset.default_key)
        if not api_base:
            read.problems.append(f"{prefix}/{model} needs 'api_base' in litellm_params (or the environment "
                                 f"variable {' / '.join(preset.base_env)}): {prefix} has no public default")
        read.check()
        assert api_base is not None
        upstream_model = model
        if prefix == "fireworks_ai" and not model.startswith(("accounts/", "FW-")):
            upstream_model = f"accounts/fireworks/models/{model}"
        if prefix == "mistral" and not api_base.rstrip("/").endswith("/v1"):
            api_base = join_url(api_base, "v1")
        if prefix == "huggingface" and not read.text("api_base", preset.base_env):
            # the router takes "org/model" or "org/model:provider" (LiteLLM's huggingface/<provider>/<org>/<model>)
            parts = model.split("/")
            if len(parts) == 3:
                upstream_model = f"{parts[1]}/{parts[2]}:{parts[0]}"
        elif prefix == "huggingface" and not api_base.rstrip("/").endswith("/v1"):
            api_base = join_url(api_base, "v1")     # a TGI / Inference Endpoint root
        return PresetSettings(preset, api_base.rstrip("/"), api_key, upstream_model)

    def endpoints_for(self, settings: PresetSettings) -> frozenset[str]:
        return settings.preset.endpoints

    def supported_params(self, endpoint: str, settings: PresetSettings) -> frozenset[str]:
        preset = settings.preset
        if endpoint not in preset.endpoints:
            return frozenset()
        if endpoint == "chat/completions" and preset.chat_params is not None:
            return preset.chat_params
        return _ALL[endpoint] - preset.refused

    def passes_unknown_params(self, settings: PresetSettings) -> bool:
        return True

    def secrets(self, settings: PresetSettings) -> list[str]:
        key = settings.api_key
        return [key] if key and key != settings.preset.default_key else []

    def headers(self, settings: Any, stream: bool) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
        if settings.api_key:
            headers["authorization"] = f"Bearer {settings.api_key}"
        return headers

    def body(self, call: Call) -> dict[str, Any]:
        body = dict(call.body)
        body["model"] = call.settings.model
        if call.stream:
            body["stream"] = True
        elif "stream" in body:
            body.pop("stream")
            body.pop("stream_options", None)
        if call.settings.preset.prefix == "mistral":
            if body.get("tool_choice") == "required":
                body["tool_choice"] = "any"
            if "max_completion_tokens" in body:
                body.setdefault("max_tokens", body.pop("max_completion_tokens"))
        return body

    def build(self, call: Call) -> list[NativeRequest]:
        if call.endpoint not in call.settings.preset.endpoints:
            raise _unsupported_endpoint(call.settings.preset.prefix, call.endpoint)
        url = join_url(call.settings.api_base, call.endpoint)
        return [NativeRequest("POST", url, self.headers(call.settings, call.stream), orjson.dumps(self.body(call)))]

    def parse(self, call: Call, answers: list[NativeAnswer]) -> dict[str, Any]:
        body = orjson.loads(answers[0].body) if answers[0].body else None
        if not isinstance(body, dict):
            raise APIConnectionError("The upstream's answer is not a JSON object.")
        return body

    def decoder(self, call: Call) -> StreamDecoder:
        return OpenAISSEDecoder()

    def error(self, call: Call | None, status: int, body: bytes,
              headers: Mapping[str, str] | None = None) -> ProxyError:
        return openai_error(status, body)


def _unsupported_endpoint(prefix: str, endpoint: str) -> ProxyError:
    from ...errors import BadRequestError

    return BadRequestError(f"The provider {prefix!r} does not serve /v1/{endpoint}.", code="unsupported_endpoint")
