"""LiteLLM's OpenTelemetry-based integrations by name: ``arize``, ``arize_phoenix``, ``langtrace``.

Each is the ``otel`` integration (``otel.py``: one ``litellm_request`` span per request, the SDK's
batch processor and export thread, nothing on the Trio thread) with the endpoint, headers and span
attributes LiteLLM gives it (``litellm_logging._init_custom_logger_compatible_class`` and
``integrations/arize/``, ``integrations/langtrace.py``):

* ``arize``: ``ARIZE_SPACE_KEY`` (or ``ARIZE_SPACE_ID``) and ``ARIZE_API_KEY``, sent as the OTLP
  headers ``space_id`` and ``api_key``. ``ARIZE_ENDPOINT`` → OTLP over gRPC to it;
  else ``ARIZE_HTTP_ENDPOINT`` → OTLP/HTTP (``/v1/traces`` added, as the ``otel`` integration
  does); neither → gRPC to ``https://otlp.arize.com/v1`` (LiteLLM's order and default).
  ``ARIZE_PROJECT_NAME`` is the service name. Attributes: OpenInference's (``openinference.span.kind:
  LLM``, ``llm.model_name``, ``llm.provider``, ``input.value``, ``llm.input_messages.<i>.message.role``
  / ``.content``, ``output.value``, ``llm.output_messages.<i>…``, ``llm.token_count.prompt`` /
  ``completion`` / ``total``, ``llm.invocation_parameters``, ``metadata``, ``user.id``,
  ``llm.tools.<i>.tool.name``…), what Arize's UI reads. **Decision**: LiteLLM reads neither key as
  required; trioproxy refuses to start without them (Arize rejects every span without them).
* ``arize_phoenix``: ``PHOENIX_COLLECTOR_HTTP_ENDPOINT`` (OTLP/HTTP, ``/v1/traces`` made sure of), else
  ``PHOENIX_COLLECTOR_ENDPOINT`` (gRPC), else Arize's hosted ``https://app.phoenix.arize.com/v1/traces``.
  ``PHOENIX_API_KEY``: the header ``api_key`` for the hosted endpoint (required there),
  ``Authorization: Bearer`` for a self-hosted one (optional). ``PHOENIX_PROJECT_NAME`` becomes the
  resource attribute ``openinference.project.name``. Attributes as ``arize``.
* ``langtrace``: ``LANGTRACE_API_KEY`` (required) as the header ``api_key``, OTLP/HTTP to
  ``https://langtrace.ai/api/trace`` (LiteLLM's URL, used as given); **trioproxy's addition**:
  ``LANGTRACE_API_HOST`` (Langtrace's SDK variable for a self-hosted Langtrace) replaces it.
  Attributes: ``otel``'s plus ``langtrace.service.name`` (the provider), and the events
  ``gen_ai.content.prompt`` (``gen_ai.prompt``: the messages as JSON) and
  ``gen_ai.content.completion`` (``gen_ai.completion``), as LiteLLM's ``LangtraceAttributes``.

Message logging off (``turn_off_message_logging``, ``callback_settings.<name>.message_logging:
false``) leaves out every message and answer attribute and event. The keys join the secret
scrubber (``config/logging_keys.py``) and are only ever sent as headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ...hooks.loader import HandlerLoadError
from .base import env
from .otel import OpenTelemetryLogger, OtlpTarget, traces_endpoint

__all__ = ["ArizeLogger", "ArizePhoenixLogger", "LangtraceLogger", "openinference_attributes"]

ARIZE_DEFAULT_ENDPOINT = "https://otlp.arize.com/v1"
PHOENIX_HOSTED_ENDPOINT = "https://app.phoenix.arize.com/v1/traces"
LANGTRACE_ENDPOINT = "https://langtrace.ai/api/trace"


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _text(content: Any) -> Any:
    """A message's content as an attribute value (a list of parts becomes JSON)."""
    return content if isinstance(content, str) or content is None else _json(content)


def openinference_attributes(payload: Mapping[str, Any], message_logging: bool) -> dict[str, Any]:
    """The OpenInference attributes LiteLLM's Arize/Phoenix integrations set (module docstring)."""
    attrs: dict[str, Any] = {
        "openinference.span.kind": "LLM",
        "llm.model_name": payload["model"],
        "llm.provider": payload["custom_llm_provider"] or "Unknown",
        "llm.request.type": payload["call_type"],
        "llm.is_streaming": str(bool(payload["stream"])),
        "metadata": _json(payload["metadata"] or {}),
    }
    params = dict(payload["model_parameters"] or {})
    for key in ("max_tokens", "temperature", "top_p"):
        if params.get(key):
            attrs[f"llm.request.{key}"] = params[key]
    user = params.get("user") or payload.get("end_user")
    if user:
        attrs["llm.user"] = attrs["user.id"] = user
    tools = params.pop("tools", None)
    if params:
        attrs["llm.invocation_parameters"] = _json(params)
    for index, tool in enumerate(tools if isinstance(tools, list) else ()):
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict):
            attrs[f"llm.tools.{index}.tool.name"] = function.get("name")
            attrs[f"llm.tools.{index}.tool.description"] = function.get("description")
            attrs[f"llm.tools.{index}.tool.parameters"] = _json(function.get("parameters"))
    response = payload["response"] if isinstance(payload["response"], dict) else {}
    if response.get("id"):
        attrs["llm.response.id"] = response["id"]
    if response.get("model"):
        attrs["llm.response.model"] = response["model"]
    if payload["total_tokens"]:
        attrs["llm.token_count.total"] = payload["total_tokens"]
    if payload["prompt_tokens"]:
        attrs["llm.token_count.prompt"] = payload["prompt_tokens"]
    if payload["completion_tokens"]:
        attrs["llm.token_count.completion"] = payload["completion_tokens"]
    if message_logging:
        messages = payload["messages"] if isinstance(payload["messages"], list) else []
        if messages and isinstance(messages[-1], dict):
            attrs["input.value"] = _text(messages[-1].get("content", ""))
        for index, message in enumerate(messages):
            if isinstance(message, dict):
                attrs[f"llm.input_messages.{index}.message.role"] = message.get("role")
                attrs[f"llm.input_messages.{index}.message.content"] = _text(message.get("content", ""))
        for index, choice in enumerate(response.get("choices") or ()):
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict):
                attrs["output.value"] = _text(message.get("content", ""))
                attrs[f"llm.output_messages.{index}.message.role"] = message.get("role")
                attrs[f"llm.output_messages.{index}.message.content"] = _text(message.get("content", ""))
    return {k: v for k, v in attrs.items() if v is not None}


class ArizeLogger(OpenTelemetryLogger):
    name = "arize"

    def target(self) -> OtlpTarget:
        space = env("ARIZE_SPACE_KEY") or env("ARIZE_SPACE_ID")
        api_key = env("ARIZE_API_KEY")
        missing = [n for n, v in (("ARIZE_SPACE_KEY (or ARIZE_SPACE_ID)", space), ("ARIZE_API_KEY", api_key)) if not v]
        if missing:
            raise HandlerLoadError(f"LiteLLM's 'arize' logging integration needs {' and '.join(missing)} in the "
                                   "environment (docs/logging.md)")
        headers = {"space_id": str(space), "api_key": str(api_key)}
        service = env("ARIZE_PROJECT_NAME") or env("OTEL_SERVICE_NAME", "litellm") or "litellm"
        grpc, http = env("ARIZE_ENDPOINT"), env("ARIZE_HTTP_ENDPOINT")
        if grpc:
            return OtlpTarget("otlp_grpc", grpc, headers, service)
        if http:
            return OtlpTarget("otlp_http", traces_endpoint(http), headers, service)
        return OtlpTarget("otlp_grpc", ARIZE_DEFAULT_ENDPOINT, headers, service)

    def attributes(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return openinference_attributes(payload, self.message_logging)


class ArizePhoenixLogger(OpenTelemetryLogger):
    name = "arize_phoenix"

    def target(self) -> OtlpTarget:
        api_key = env("PHOENIX_API_KEY")
        http, grpc = env("PHOENIX_COLLECTOR_HTTP_ENDPOINT"), env("PHOENIX_COLLECTOR_ENDPOINT")
        protocol, endpoint = ("otlp_http", traces_endpoint(http)) if http else ("otlp_grpc", grpc) if grpc else \
            ("otlp_http", PHOENIX_HOSTED_ENDPOINT)
        headers: dict[str, str] = {}
        if endpoint == PHOENIX_HOSTED_ENDPOINT:
            if not api_key:
                raise HandlerLoadError("LiteLLM's 'arize_phoenix' logging integration needs PHOENIX_API_KEY for "
                                       "Arize's hosted Phoenix (or PHOENIX_COLLECTOR_HTTP_ENDPOINT / "
                                       "PHOENIX_COLLECTOR_ENDPOINT for your own; docs/logging.md)")
            headers["api_key"] = api_key
        elif api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        project = env("PHOENIX_PROJECT_NAME")
        return OtlpTarget(protocol, str(endpoint), headers, env("OTEL_SERVICE_NAME", "litellm") or "litellm",
                          {"openinference.project.name": project} if project else {})

    def attributes(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return openinference_attributes(payload, self.message_logging)


class LangtraceLogger(OpenTelemetryLogger):
    name = "langtrace"

    def target(self) -> OtlpTarget:
        api_key = env("LANGTRACE_API_KEY")
        if not api_key:
            raise HandlerLoadError("LiteLLM's 'langtrace' logging integration needs LANGTRACE_API_KEY in the "
                                   "environment (docs/logging.md)")
        return OtlpTarget("otlp_http", env("LANGTRACE_API_HOST") or LANGTRACE_ENDPOINT, {"api_key": api_key},
                          env("OTEL_SERVICE_NAME", "litellm") or "litellm")

    def attributes(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        attrs = super().attributes(payload)
        attrs.pop("gen_ai.input.messages", None)      # Langtrace reads them from the events
        attrs.pop("gen_ai.output.messages", None)
        if payload["custom_llm_provider"]:
            attrs["langtrace.service.name"] = payload["custom_llm_provider"]
        return attrs

    def events(self, payload: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if not self.message_logging:
            return []
        out: list[tuple[str, dict[str, Any]]] = []
        if isinstance(payload["messages"], list) and payload["messages"]:
            out.append(("gen_ai.content.prompt", {"gen_ai.prompt": _json(payload["messages"])}))
        response = payload["response"]
        if isinstance(response, dict) and response.get("choices"):
            completions = [{"role": (c.get("message") or {}).get("role"), "content": (c.get("message") or {}).get("content")}
                           for c in response["choices"] if isinstance(c, dict)]
            out.append(("gen_ai.content.completion", {"gen_ai.completion": _json(completions)}))
        return out
