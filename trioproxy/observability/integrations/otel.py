"""LiteLLM's ``otel`` integration: one ``litellm_request`` span per request, through the
maintained OpenTelemetry SDK and its OTLP/HTTP exporter.

Why the SDK fits Trio: the callback only creates and ends a span with the request's own start and
end times (CPU, no I/O; ``bench/otel_span_cost.py`` measures it) and the SDK's
``BatchSpanProcessor`` hands it to its own export thread, which batches, encodes protobuf and POSTs
``<OTEL_ENDPOINT>/v1/traces``. The Trio thread never waits on the collector; a full SDK queue
drops spans (the SDK's ``OTEL_BSP_MAX_QUEUE_SIZE``, 2048). Spans still queued at exit are flushed by
the SDK's exit handler. Measured (``bench/otel_span_cost.py --spans 1000 --rounds 3``, median, shared
2-core machine under a test run): 109 µs of process CPU per span with the SDK, export thread
included, against 515 µs for OTLP/JSON written by hand and posted per span (that variant would
need its own buffer, timer and shutdown flush to batch: what the SDK's processor already is).

Environment, as LiteLLM reads it: ``OTEL_EXPORTER`` (``otlp_http``, ``console``; ``OTEL_ENDPOINT``
alone means ``otlp_http``), ``OTEL_ENDPOINT``, ``OTEL_HEADERS`` (``k=v,k2=v2``),
``OTEL_SERVICE_NAME`` / ``OTEL_TRACER_NAME`` (``litellm``); ``OTEL_EXPORTER=otlp_grpc`` (or
``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``) sends over gRPC through the SDK's gRPC exporter, whose own
thread does the I/O as well; the ``OTEL_EXPORTER_OTLP_*`` names
take precedence, as in LiteLLM. ``callback_settings.otel.message_logging: false`` leaves out the
messages and answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...hooks.loader import HandlerLoadError
from .base import Integration, IntegrationSettings, env, parse_headers

__all__ = ["SPAN_NAME", "OpenTelemetryLogger", "OtlpTarget", "make_exporter", "traces_endpoint"]

SPAN_NAME = "litellm_request"


def traces_endpoint(endpoint: str) -> str:
    """LiteLLM's normalisation: the OTLP/HTTP traces path is ``/v1/traces`` (``…/v1`` gets ``/traces``)."""
    endpoint = endpoint.rstrip("/")
    for signal in ("/v1/traces", "/v1/logs", "/v1/metrics"):
        if endpoint.endswith(signal):
            return endpoint[: -len(signal)] + "/v1/traces"
    return endpoint + ("/traces" if endpoint.endswith("/v1") else "/v1/traces")


def _flat(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    return orjson.dumps(value, default=str).decode()


@dataclass(frozen=True, slots=True)
class OtlpTarget:
    """Where and how spans go: what each OpenTelemetry-based integration derives from its variables."""

    #: ``otlp_http`` (OTLP/HTTP protobuf), ``otlp_grpc`` or ``console``
    protocol: str
    #: the full URL (HTTP: the traces path included) or the gRPC endpoint
    endpoint: str | None
    headers: dict[str, str] = field(default_factory=dict)
    service_name: str = "litellm"
    #: extra resource attributes (e.g. Phoenix's ``openinference.project.name``)
    resource: dict[str, str] = field(default_factory=dict)


def make_exporter(target: OtlpTarget) -> Any:
    """The SDK's exporter for ``target`` (made once, handed to the batch processor at the first span)."""
    if target.protocol == "otlp_http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=target.endpoint, headers=target.headers)
    if target.protocol == "otlp_grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError:
            raise HandlerLoadError("OTLP over gRPC needs the OpenTelemetry gRPC exporter: "
                                   "pip install 'trioproxy[otel]'") from None
        endpoint = str(target.endpoint)
        # gRPC metadata keys must be lower case (the collector rejects the call otherwise)
        return GrpcExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"),
                            headers={k.lower(): v for k, v in target.headers.items()})
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter
    return ConsoleSpanExporter()


def _require_sdk(name: str) -> None:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise HandlerLoadError(f"LiteLLM's {name!r} logging integration needs the OpenTelemetry SDK: "
                               "pip install 'trioproxy[otel]'") from None


class OpenTelemetryLogger(Integration):
    name = "otel"

    def __init__(self, settings: IntegrationSettings) -> None:
        super().__init__(settings)
        _require_sdk(self.name)
        target = self.target()
        exporter = make_exporter(target)
        #: the URL spans go to (None for the console)
        self.endpoint: str | None = target.endpoint
        self.protocol = target.protocol
        self._make_exporter = lambda: exporter
        self._service_name = target.service_name
        self._resource = target.resource
        self._tracer_name = env("OTEL_TRACER_NAME", "litellm") or "litellm"
        self.provider: Any = None
        self._tracer: Any = None

    def target(self) -> OtlpTarget:
        """LiteLLM's ``otel`` variables (module docstring)."""
        endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT") or env("OTEL_ENDPOINT")
        exporter_name = env("OTEL_EXPORTER_OTLP_PROTOCOL") or env("OTEL_EXPORTER") or (
            "otlp_http" if endpoint else "console")
        headers = parse_headers(env("OTEL_EXPORTER_OTLP_HEADERS") or env("OTEL_HEADERS"))
        service = env("OTEL_SERVICE_NAME", "litellm") or "litellm"
        if exporter_name in ("otlp_http", "http/protobuf", "otlp_grpc", "grpc"):
            if not endpoint:
                raise HandlerLoadError(f"LiteLLM's 'otel' logging integration with OTEL_EXPORTER={exporter_name} "
                                       "needs OTEL_ENDPOINT (the collector's URL)")
            if exporter_name in ("otlp_grpc", "grpc"):
                return OtlpTarget("otlp_grpc", endpoint, headers, service)
            return OtlpTarget("otlp_http", traces_endpoint(endpoint), headers, service)
        if exporter_name == "console":
            return OtlpTarget("console", None, headers, service)
        raise HandlerLoadError(f"OTEL_EXPORTER={exporter_name!r} is not supported by trioproxy's 'otel' "
                               "integration: use otlp_http (OTLP over HTTP, which every collector accepts), "
                               "otlp_grpc or console")

    @property
    def tracer(self) -> Any:
        """Made at the first span: ``trioproxy check`` (and each config the corpus loads) builds the
        integration without starting the SDK's export thread."""
        if self._tracer is None:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            self.provider = TracerProvider(resource=Resource.create({"service.name": self._service_name,
                                                                     **self._resource}))
            self.provider.add_span_processor(BatchSpanProcessor(self._make_exporter()))
            self._tracer = self.provider.get_tracer(self._tracer_name)
        return self._tracer

    def attributes(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat" if payload["call_type"] == "acompletion" else payload["call_type"],
            "gen_ai.system": payload["custom_llm_provider"] or "unknown",
            "gen_ai.provider.name": payload["custom_llm_provider"] or "unknown",
            "gen_ai.framework": "litellm",
            "gen_ai.request.model": payload["model"],
            "llm.request.type": payload["call_type"],
            "llm.is_streaming": str(bool(payload["stream"])),
            "gen_ai.usage.input_tokens": payload["prompt_tokens"],
            "gen_ai.usage.output_tokens": payload["completion_tokens"],
            "gen_ai.usage.total_tokens": payload["total_tokens"],
            "gen_ai.cost.total_cost": payload["response_cost"],
            "litellm.call_id": payload["id"],
            "hidden_params": _flat(payload["hidden_params"]),
        }
        params = payload["model_parameters"]
        for key, attr in (("max_tokens", "gen_ai.request.max_tokens"), ("temperature", "gen_ai.request.temperature"),
                          ("top_p", "gen_ai.request.top_p")):
            if params.get(key) is not None:
                attrs[attr] = params[key]
        if payload.get("end_user"):
            attrs["llm.user"] = payload["end_user"]
        for key, value in (payload["metadata"] or {}).items():
            if value is not None:
                attrs[f"metadata.{key}"] = _flat(value)
        response = payload["response"]
        if isinstance(response, dict):
            if response.get("id"):
                attrs["gen_ai.response.id"] = response["id"]
            if response.get("model"):
                attrs["gen_ai.response.model"] = response["model"]
        if self.message_logging:
            attrs["gen_ai.input.messages"] = _flat(payload["messages"])
            if isinstance(response, dict) and response.get("choices"):
                attrs["gen_ai.output.messages"] = _flat([c.get("message") for c in response["choices"]])
        return {k: v for k, v in attrs.items() if v is not None}

    def events(self, payload: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Span events (none for ``otel``; Langtrace puts prompts and completions there)."""
        return []

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = self.tracer.start_span(SPAN_NAME, start_time=int(payload["startTime"] * 1e9),
                                      attributes=self.attributes(payload))
        for event, attributes in self.events(payload):
            span.add_event(event, attributes=attributes, timestamp=int(payload["endTime"] * 1e9))
        if payload["status"] == "failure":
            span.set_status(Status(StatusCode.ERROR, str(payload["error_str"] or "")))
        else:
            span.set_status(Status(StatusCode.OK))
        span.end(end_time=int(payload["endTime"] * 1e9))   # queued for the SDK's export thread
