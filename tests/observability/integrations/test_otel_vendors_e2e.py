"""``arize``, ``arize_phoenix`` and ``langtrace`` (LiteLLM's OpenTelemetry-based integrations) in a
real ``trioproxy run`` with the official openai client: Arize over OTLP/gRPC to a strict local gRPC
collector, Phoenix and Langtrace over OTLP/HTTP to the strict HTTP collectors. The proxy is stopped
with SIGTERM before reading (the SDK flushes at exit), so no waiting is involved."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_collectors import FakeCollectors
from support.fake_otlp_grpc import FakeGrpcCollector
from support.fake_upstream import Behavior
from trioproxy.config import parse_config
from trioproxy.hooks.loader import HandlerLoadError
from trioproxy.observability.integrations import make_integration

ARIZE_SPACE, ARIZE_KEY = "arize-space-0123456789", "arize-SECRET-api-key-0123456789"


@pytest.fixture
def collectors() -> Iterator[FakeCollectors]:
    with FakeCollectors() as fake:
        yield fake


@pytest.fixture
def arize() -> Iterator[FakeGrpcCollector]:
    with FakeGrpcCollector(required={"space_id": ARIZE_SPACE, "api_key": ARIZE_KEY}) as fake:
        yield fake


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        value = a.value
        out[a.key] = value.string_value if value.HasField("string_value") else (
            value.int_value if value.HasField("int_value") else value.double_value)
    return out


def _http_spans(collectors: FakeCollectors, path: str) -> list[tuple[dict[str, str], Any]]:
    out = []
    for r in collectors.on(path):
        for resource in r.payload.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource.resource.attributes}
            out += [(attrs, span) for scope in resource.scope_spans for span in scope.spans]
    return out


def test_arize_phoenix_and_langtrace_send_spans_litellm_style(start_proxy: Any, fake_upstream: Any,
                                                             collectors: FakeCollectors,
                                                             arize: FakeGrpcCollector) -> None:
    fake_upstream.set_behavior("bad-model", Behavior(status=400, error_message="bad request upstream",
                                                     error_type="invalid_request_error"))
    config = {
        "model_list": [upstream_model(fake_upstream),
                       upstream_model(fake_upstream, model_name="gpt-bad", upstream_name="bad-model")],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"callbacks": ["arize", "arize_phoenix", "langtrace"]},
        # as LiteLLM's docs configure Arize: the keys under environment_variables
        "environment_variables": {"ARIZE_SPACE_KEY": ARIZE_SPACE, "ARIZE_API_KEY": ARIZE_KEY,
                                  "ARIZE_ENDPOINT": arize.url, "ARIZE_PROJECT_NAME": "my-arize-project"},
    }
    env = {"PHOENIX_API_KEY": collectors.creds.phoenix_key,
           "PHOENIX_COLLECTOR_HTTP_ENDPOINT": f"{collectors.url}/phoenix/v1/traces",
           "PHOENIX_PROJECT_NAME": "my-phoenix-project",
           "LANGTRACE_API_KEY": collectors.creds.langtrace_key, "LANGTRACE_API_HOST": f"{collectors.url}/api/trace",
           "OTEL_BSP_SCHEDULE_DELAY": "100"}
    proxy = start_proxy(config, env=env)
    client = openai.OpenAI(api_key=MASTER_KEY, base_url=proxy.url, max_retries=0)
    answer = client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hello there"}],
                                            user="end-user-7", temperature=0.5)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-bad", messages=[{"role": "user", "content": "please fail"}])
    assert proxy.terminate(signal.SIGTERM) == 0
    logs = proxy.logs()
    assert collectors.problems == [] and arize.problems == []

    # arize: gRPC with space_id / api_key metadata, OpenInference attributes, the project as service name
    spans = arize.spans()
    assert sorted(s.status.code for s in spans) == [1, 2]          # OK, ERROR
    assert {r["service.name"] for r in arize.resources()} == {"my-arize-project"}
    ok = _attrs(next(s for s in spans if s.status.code == 1))
    assert ok["openinference.span.kind"] == "LLM" and ok["llm.model_name"] == "up-model"
    assert ok["input.value"] == "hello there" and ok["llm.input_messages.0.message.role"] == "user"
    assert ok["output.value"] == answer.choices[0].message.content
    assert ok["llm.output_messages.0.message.role"] == "assistant"
    assert ok["llm.token_count.total"] == answer.usage.total_tokens
    assert ok["user.id"] == "end-user-7" and json.loads(ok["llm.invocation_parameters"])["temperature"] == 0.5

    # arize_phoenix (self-hosted, OTLP/HTTP, Bearer key): the same attributes, the project as resource
    phoenix = _http_spans(collectors, "/phoenix/v1/traces")
    assert len(phoenix) == 2
    assert {attrs["openinference.project.name"] for attrs, _ in phoenix} == {"my-phoenix-project"}
    assert {_attrs(span)["openinference.span.kind"] for _, span in phoenix} == {"LLM"}

    # langtrace: api_key header, otel's attributes plus the provider, prompts and completions as events
    langtrace = [span for _, span in _http_spans(collectors, "/api/trace")]
    assert len(langtrace) == 2
    good = next(s for s in langtrace if s.status.code == 1)
    assert _attrs(good)["langtrace.service.name"] == "openai"
    events = {e.name: {a.key: a.value.string_value for a in e.attributes} for e in good.events}
    assert json.loads(events["gen_ai.content.prompt"]["gen_ai.prompt"]) == [{"role": "user", "content": "hello there"}]
    assert json.loads(events["gen_ai.content.completion"]["gen_ai.completion"])[0]["content"] == \
        answer.choices[0].message.content

    # never a secret in the proxy's log
    for secret in (ARIZE_KEY, collectors.creds.phoenix_key, collectors.creds.langtrace_key, MASTER_KEY, UPSTREAM_KEY):
        assert secret not in logs


def test_a_refusing_collector_never_fails_a_request(start_proxy: Any, fake_upstream: Any,
                                                   arize: FakeGrpcCollector) -> None:
    config = {"model_list": [upstream_model(fake_upstream)], "general_settings": {"master_key": MASTER_KEY},
              "litellm_settings": {"callbacks": ["arize"]}}
    proxy = start_proxy(config, env={"ARIZE_SPACE_KEY": ARIZE_SPACE, "ARIZE_API_KEY": "arize-WRONG-key-0123456789",
                                     "ARIZE_ENDPOINT": arize.url, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    client = openai.OpenAI(api_key=MASTER_KEY, base_url=proxy.url, max_retries=0)
    for _ in range(2):
        assert client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}]).id
    assert proxy.terminate(signal.SIGTERM) == 0
    assert arize.received == [] and arize.problems          # refused, and the requests were answered
    assert "arize-WRONG-key-0123456789" not in proxy.logs()


def _config() -> Any:
    return parse_config({"model_list": []}, "c.yaml", Path("."))


def test_settings_follow_litellm_and_missing_keys_stop_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ARIZE_SPACE_KEY", "ARIZE_SPACE_ID", "ARIZE_API_KEY", "ARIZE_ENDPOINT", "ARIZE_HTTP_ENDPOINT",
                 "PHOENIX_API_KEY", "PHOENIX_COLLECTOR_ENDPOINT", "PHOENIX_COLLECTOR_HTTP_ENDPOINT",
                 "LANGTRACE_API_KEY", "LANGTRACE_API_HOST"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(HandlerLoadError, match="ARIZE_SPACE_KEY .or ARIZE_SPACE_ID. and ARIZE_API_KEY"):
        make_integration("arize", _config())
    with pytest.raises(HandlerLoadError, match="needs PHOENIX_API_KEY for Arize's hosted Phoenix"):
        make_integration("arize_phoenix", _config())
    with pytest.raises(HandlerLoadError, match="needs LANGTRACE_API_KEY"):
        make_integration("langtrace", _config())
    monkeypatch.setenv("ARIZE_SPACE_ID", "space")
    monkeypatch.setenv("ARIZE_API_KEY", "arize-SECRET-scrub-me-42")
    default = make_integration("arize", _config())
    assert (default.protocol, default.endpoint) == ("otlp_grpc", "https://otlp.arize.com/v1")
    monkeypatch.setenv("ARIZE_HTTP_ENDPOINT", "https://otlp.arize.com/v1")
    http = make_integration("arize", _config())
    assert (http.protocol, http.endpoint) == ("otlp_http", "https://otlp.arize.com/v1/traces")
    monkeypatch.setenv("ARIZE_ENDPOINT", "https://otlp.arize.com/v1")     # LiteLLM: gRPC wins when both are set
    assert make_integration("arize", _config()).protocol == "otlp_grpc"
    monkeypatch.setenv("PHOENIX_API_KEY", "phoenix-SECRET-scrub-me-42")
    hosted = make_integration("arize_phoenix", _config())
    assert (hosted.protocol, hosted.endpoint) == ("otlp_http", "https://app.phoenix.arize.com/v1/traces")
    monkeypatch.setenv("LANGTRACE_API_KEY", "langtrace-SECRET-scrub-me-42")
    assert make_integration("langtrace", _config()).endpoint == "https://langtrace.ai/api/trace"
    secrets = set(_config().secrets())
    assert {"arize-SECRET-scrub-me-42", "phoenix-SECRET-scrub-me-42", "langtrace-SECRET-scrub-me-42"} <= secrets
