"""Google Vertex AI (``vertex_ai/<model>``): Gemini's JSON at Vertex's URLs, with OAuth tokens.

* URL: ``https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
  publishers/google/models/{model}:generateContent`` (``aiplatform.googleapis.com`` for the
  ``global`` location); a numeric model is a tuned model's endpoint (``…/endpoints/{id}:…``).
  ``api_base`` as LiteLLM reads it: a bare host gets the default path; otherwise
  ``{api_base}:{method}``.
* Settings: ``vertex_project`` (or ``VERTEXAI_PROJECT`` / ``GOOGLE_CLOUD_PROJECT``, or the
  ``project_id`` of inline credentials), ``vertex_location`` (or ``VERTEXAI_LOCATION``; default
  ``us-central1``), ``vertex_credentials``: service-account (or authorized-user) JSON, inline or a
  file path (or ``VERTEXAI_CREDENTIALS`` / ``GOOGLE_APPLICATION_CREDENTIALS``); none means
  google-auth's Application Default Credentials.
* Tokens come from ``google-auth`` (the ``trioproxy[vertex]`` extra). Reading a credentials file and
  refreshing a token are blocking I/O: they run in a worker thread (``authorize_in_thread``), one
  refresh at a time per deployment; a valid token is reused until google-auth deems it expired.
* Embeddings: ``:predict`` with ``instances: [{"content": …}]``; usage is the sum of Vertex's own
  per-input ``statistics.token_count``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from ...errors import APIConnectionError
from .adapter import Call, NativeRequest, ProviderConfigError
from .gemini import GeminiAdapter
from .settings import SettingsReader
from .shapes import embedding_list

__all__ = ["GoogleTokenSource", "VertexAdapter", "VertexSettings"]

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


class GoogleTokenSource:
    """OAuth access tokens for one deployment, via google-auth. Call only from a worker thread."""

    def __init__(self, credentials: str | dict[str, Any] | None) -> None:
        self._spec = credentials
        self._credentials: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        try:
            import google.auth
            import google.auth.transport.requests
            from google.oauth2 import credentials as user_credentials
            from google.oauth2 import service_account
        except ImportError as exc:  # pragma: no cover - the extra is part of the test install
            raise APIConnectionError("vertex_ai needs google-auth: pip install 'trioproxy[vertex]'") from exc
        spec = self._spec
        if spec is None:
            credentials, _ = google.auth.default(scopes=list(SCOPES))
            return credentials
        if isinstance(spec, str):
            with open(spec, encoding="utf-8") as handle:       # a worker thread: blocking I/O is fine here
                spec = json.load(handle)
        kind = spec.get("type") if isinstance(spec, dict) else None
        # each type loaded explicitly (google-auth's generic loaders accept any credential type)
        if kind == "service_account":
            return service_account.Credentials.from_service_account_info(spec, scopes=list(SCOPES))
        if kind == "authorized_user":
            return user_credentials.Credentials.from_authorized_user_info(spec, scopes=list(SCOPES))
        raise APIConnectionError(f"vertex_credentials of type {kind!r} are not supported (service_account or "
                                 "authorized_user; or leave them out for Application Default Credentials)")

    def token(self) -> str:
        from google.auth.transport.requests import Request

        with self._lock:
            if self._credentials is None:
                self._credentials = self._load()
            credentials = self._credentials
            if not credentials.valid:
                credentials.refresh(Request())
            return str(credentials.token)


@dataclass(frozen=True, slots=True)
class VertexSettings:
    project: str
    location: str
    model: str
    api_base: str | None
    tokens: GoogleTokenSource = field(compare=False, repr=False)
    credentials_secret: str | None = field(default=None, repr=False)


def vertex_host(location: str) -> str:
    return "https://aiplatform.googleapis.com" if location == "global" else f"https://{location}-aiplatform.googleapis.com"


def _parse_credentials(value: str | None) -> tuple[str | dict[str, Any] | None, str | None]:
    """(what google-auth loads, the secret part to scrub) from ``vertex_credentials``."""
    if value is None:
        return None, None
    text = value.strip()
    if text.startswith("{"):
        try:
            info = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ProviderConfigError(["vertex_credentials looks like JSON but does not parse"]) from None
        secret = info.get("private_key") or info.get("refresh_token") or info.get("client_secret")
        return info, secret if isinstance(secret, str) else None
    return text, None


class VertexAdapter(GeminiAdapter):
    name = "vertex_ai"
    settings_names = frozenset({"api_base", "vertex_project", "vertex_location", "vertex_credentials",
                                "vertex_ai_project", "vertex_ai_location"})
    secret_settings = frozenset({"vertex_credentials"})
    authorize_in_thread = True

    def configure(self, prefix: str, model: str, params: Mapping[str, Any], environ: Mapping[str, str]) -> VertexSettings:
        read = SettingsReader(prefix, model, params, environ)
        raw_credentials = params.get("vertex_credentials")
        if isinstance(raw_credentials, Mapping):
            raw_credentials = orjson.dumps(dict(raw_credentials)).decode()
        credentials_text = (raw_credentials if isinstance(raw_credentials, str) else None) or \
            environ.get("VERTEXAI_CREDENTIALS") or environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        credentials, secret = _parse_credentials(credentials_text)
        project = read.text("vertex_project", ("VERTEXAI_PROJECT", "GOOGLE_CLOUD_PROJECT")) or \
            read.text("vertex_ai_project")
        if not project and isinstance(credentials, dict) and isinstance(credentials.get("project_id"), str):
            project = credentials["project_id"]
        if not project:
            read.problems.append(f"vertex_ai/{model} needs 'vertex_project' in litellm_params (or VERTEXAI_PROJECT "
                                 "in the environment, or inline vertex_credentials with a project_id)")
        location = read.text("vertex_location", ("VERTEXAI_LOCATION",)) or read.text("vertex_ai_location") \
            or "us-central1"
        api_base = read.text("api_base")
        read.check()
        return VertexSettings(str(project), location, model.removeprefix("gemini/"),
                              api_base.rstrip("/") if api_base else None, GoogleTokenSource(credentials), secret)

    def secrets(self, settings: VertexSettings) -> list[str]:
        return [settings.credentials_secret] if settings.credentials_secret else []

    def method_url(self, settings: VertexSettings, method: str, stream: bool) -> str:
        model = settings.model
        if model.isdigit():
            path = f"/v1/projects/{settings.project}/locations/{settings.location}/endpoints/{model}:{method}"
        else:
            path = (f"/v1/projects/{settings.project}/locations/{settings.location}/publishers/google/models/"
                    f"{quote(model, safe='@.-_')}:{method}")
        if settings.api_base is None:
            url = vertex_host(settings.location) + path
        elif urlsplit(settings.api_base).path in ("", "/"):
            url = settings.api_base.rstrip("/") + path
        else:
            url = f"{settings.api_base}:{method}"
        return f"{url}?alt=sse" if stream else url

    def auth_headers(self, settings: VertexSettings) -> dict[str, str]:
        return {}   # the bearer token is added by sign(), in a worker thread

    def sign(self, settings: VertexSettings, request: NativeRequest) -> NativeRequest:
        request.headers["authorization"] = f"Bearer {settings.tokens.token()}"
        return request

    def embedding_request(self, call: Call, inputs: list[str]) -> NativeRequest:
        instances = []
        for text in inputs:
            instance: dict[str, Any] = {"content": text}
            if call.body.get("task_type"):
                instance["task_type"] = call.body["task_type"]
            instances.append(instance)
        body: dict[str, Any] = {"instances": instances}
        if call.body.get("dimensions"):
            body["parameters"] = {"outputDimensionality": call.body["dimensions"]}
        return NativeRequest("POST", self.method_url(call.settings, "predict", False),
                             self.headers(call.settings, False), orjson.dumps(body))

    def embedding_answer(self, call: Call, native: Mapping[str, Any], inputs: list[str]) -> dict[str, Any]:
        predictions = native.get("predictions") or []
        if len(predictions) != len(inputs):
            raise APIConnectionError("vertex_ai answered with a different number of embeddings than inputs.")
        vectors, tokens = [], 0
        for prediction in predictions:
            embeddings = prediction.get("embeddings") or {}
            vectors.append(embeddings.get("values") or [])
            tokens += int((embeddings.get("statistics") or {}).get("token_count") or 0)
        return embedding_list(vectors, model=call.settings.model, prompt_tokens=tokens,
                              encoding_format=call.body.get("encoding_format"))
