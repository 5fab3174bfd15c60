"""Azure OpenAI (``azure/<deployment>``): OpenAI's API under Azure's paths and auth.

* URL: ``{api_base}/openai/deployments/{deployment}/{endpoint}?api-version={api_version}``; with
  ``api_version`` ``v1`` / ``latest`` / ``preview`` the v1 API, ``{api_base}/openai/v1/{endpoint}``
  (the deployment name then goes in the body's ``model``), as LiteLLM does.
* Auth: ``api-key: <api_key>``, or ``Authorization: Bearer <azure_ad_token>`` (Entra ID). Fallbacks as
  LiteLLM: ``AZURE_API_BASE``, ``AZURE_API_VERSION`` (default ``2025-02-01-preview``),
  ``AZURE_OPENAI_API_KEY`` / ``AZURE_API_KEY``, ``AZURE_AD_TOKEN``.
* Streams: Azure's first chunk (``prompt_filter_results``, empty ``choices``) is not relayed; the
  content-filter error (400, ``code: content_filter``) becomes ``ContentPolicyViolationError``.
* Cost: an Azure deployment name says nothing about the model, so :meth:`pricing_model` returns
  ``model_info.base_model`` (LiteLLM's way to price one) or ``base_model`` from ``litellm_params``,
  else the dated model name Azure puts in its answer (``gpt-4o-2024-08-06``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from ...errors import ProxyError
from .adapter import Call, NativeRequest
from .errormap import openai_error
from .openai_like import OpenAICompatibleAdapter, Preset, join_url
from .params import CHAT_PARAMS, COMPLETION_PARAMS, EMBEDDING_PARAMS
from .settings import SettingsReader

__all__ = ["DEFAULT_API_VERSION", "AzureAdapter", "AzureSettings"]

DEFAULT_API_VERSION = "2025-02-01-preview"
_V1 = ("v1", "latest", "preview")
_AZURE = Preset("azure", None, endpoints=frozenset({"chat/completions", "completions", "embeddings"}))


@dataclass(frozen=True, slots=True)
class AzureSettings:
    preset: Preset
    api_base: str
    api_key: str | None
    azure_ad_token: str | None
    api_version: str
    deployment: str
    base_model: str | None
    model: str                  # what the v1 API gets in ``model`` (the deployment name)


class AzureAdapter(OpenAICompatibleAdapter):
    name = "azure"
    settings_names = frozenset({"api_base", "api_key", "api_version", "azure_ad_token", "base_model"})
    secret_settings = frozenset({"api_key", "azure_ad_token"})

    def configure(self, prefix: str, model: str, params: Mapping[str, Any], environ: Mapping[str, str]) -> AzureSettings:
        read = SettingsReader(prefix, model, params, environ)
        api_base = read.required("api_base", ("AZURE_API_BASE",),
                                 "e.g. https://my-resource.openai.azure.com")
        api_version = read.text("api_version", ("AZURE_API_VERSION",), DEFAULT_API_VERSION) or DEFAULT_API_VERSION
        api_key = read.text("api_key", ("AZURE_OPENAI_API_KEY", "AZURE_API_KEY"))
        token = read.text("azure_ad_token", ("AZURE_AD_TOKEN",))
        if token and token.startswith("oidc/"):
            read.problems.append(f"azure/{model}: 'azure_ad_token: oidc/…' (token exchange) is not supported; "
                                 "give the token itself or an api_key")
        if not api_key and not token:
            read.problems.append(f"azure/{model} needs 'api_key' or 'azure_ad_token' in litellm_params (or "
                                 "AZURE_API_KEY / AZURE_AD_TOKEN in the environment)")
        info = params.get("model_info")
        base_model = info.get("base_model") if isinstance(info, Mapping) else None
        base_model = base_model or read.text("base_model")
        read.check()
        return AzureSettings(_AZURE, api_base.rstrip("/"), api_key, token, api_version, model,
                             base_model if isinstance(base_model, str) else None, model)

    def supported_params(self, endpoint: str, settings: Any) -> frozenset[str]:
        return {"chat/completions": CHAT_PARAMS, "completions": COMPLETION_PARAMS,
                "embeddings": EMBEDDING_PARAMS}.get(endpoint, frozenset())

    def secrets(self, settings: AzureSettings) -> list[str]:
        return [s for s in (settings.api_key, settings.azure_ad_token) if s]

    def pricing_model(self, settings: AzureSettings, answer_model: str | None) -> str | None:
        if settings.base_model:
            return settings.base_model
        return answer_model or None

    def url(self, settings: AzureSettings, endpoint: str) -> str:
        base = settings.api_base
        if settings.api_version in _V1:
            root = base if base.endswith("/openai/v1") else join_url(base.removesuffix("/openai"), "openai/v1")
            return join_url(root, endpoint)
        root = base.removesuffix("/openai")
        deployment = quote(settings.deployment, safe="")
        return (f"{root}/openai/deployments/{deployment}/{endpoint}"
                f"?api-version={quote(settings.api_version, safe='')}")

    def headers(self, settings: AzureSettings, stream: bool) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
        if settings.azure_ad_token:
            headers["authorization"] = f"Bearer {settings.azure_ad_token}"
        elif settings.api_key:
            headers["api-key"] = settings.api_key
        return headers

    def build(self, call: Call) -> list[NativeRequest]:
        settings: AzureSettings = call.settings
        body = self.body(call)
        if settings.api_version not in _V1:
            body.pop("model", None)     # the deployment in the path names the model
        return [NativeRequest("POST", self.url(settings, call.endpoint), self.headers(settings, call.stream),
                              orjson.dumps(body))]

    def error(self, call: Call | None, status: int, body: bytes,
              headers: Mapping[str, str] | None = None) -> ProxyError:
        return openai_error(status, body)
