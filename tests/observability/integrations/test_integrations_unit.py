"""The built-in logging integrations' payloads and settings, called directly (no proxy process).

The receiver is the strict :class:`~support.fake_collectors.FakeCollectors` on 127.0.0.1; the
``kwargs`` are shaped as the logging sink builds them (``observability/payload.py``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from support.fake_collectors import FakeCollectors
from trioproxy.config import ConfigError, parse_config
from trioproxy.hooks.loader import HandlerLoadError
from trioproxy.observability.callbacks import load_callbacks
from trioproxy.observability.integrations import IntegrationError, make_integration
from trioproxy.observability.integrations.base import IntegrationSettings
from trioproxy.observability.integrations.otel import traces_endpoint
from trioproxy.observability.integrations.standard_payload import REDACTED, standard_logging_payload

START = _dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=_dt.UTC)


def kwargs_for(status: str = "success", seconds: float = 0.5, **record: Any) -> dict[str, Any]:
    start = START.timestamp()
    return {
        "litellm_call_id": "req-1", "call_type": "completion", "model": "up-model",
        "messages": [{"role": "user", "content": "hello"}], "optional_params": {"temperature": 0.1},
        "litellm_params": {"metadata": {"tags": ["t1"]}}, "traceback_exception": "Traceback…" if status != "success" else None,
        "standard_logging_object": {
            "id": "req-1", "call_type": "completion", "status": status, "model": "gpt-test", "model_group": "gpt-test",
            "upstream_model": "up-model", "provider": "openai", "deployment": "openai/up-model at http://x",
            "api_base": "http://x", "prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8,
            "response_cost": 0.001, "start_time": start, "end_time": start + seconds, "stream": False,
            "timings": {"time_to_first_token": None}, "key_hash": "ab" * 32, "key_alias": "sk-...abcd",
            "user_id": "u1", "team_id": "team-1", "user": "end-7", "tags": ["t1"], "metadata": {"tags": ["t1"]},
            "status_code": 200 if status == "success" else 400,
            "error_class": None if status == "success" else "BadRequestError",
            "error_message": None if status == "success" else "bad", **record,
        },
    }


RESPONSE = {"id": "chatcmpl-1", "model": "up-model", "choices": [{"message": {"role": "assistant", "content": "hi"}}]}


def config_of(litellm: dict[str, Any] | None = None, general: dict[str, Any] | None = None,
              callback_settings: dict[str, Any] | None = None) -> Any:
    return parse_config({"model_list": [], "litellm_settings": litellm or {}, "general_settings": general or {},
                         "callback_settings": callback_settings or {}}, "c.yaml", Path("."))


def settings(*args: Any, **kwargs: Any) -> IntegrationSettings:
    return IntegrationSettings(config_of(*args, **kwargs))


@pytest.fixture
def collectors() -> Iterator[FakeCollectors]:
    with FakeCollectors() as fake:
        yield fake


def test_standard_logging_payload_has_litellms_shape_and_no_key() -> None:
    payload = standard_logging_payload(kwargs_for(), RESPONSE)
    assert payload["call_type"] == "acompletion" and payload["status"] == "success"
    assert payload["model"] == "up-model" and payload["model_group"] == "gpt-test"
    assert payload["messages"] == [{"role": "user", "content": "hello"}] and payload["response"] == RESPONSE
    assert payload["metadata"]["user_api_key_hash"] == "ab" * 32
    assert payload["metadata"]["user_api_key_team_id"] == "team-1" and payload["end_user"] == "end-7"
    assert payload["endTime"] - payload["startTime"] == pytest.approx(0.5)
    assert payload["request_tags"] == ["t1"] and payload["error_information"] is None
    failed = standard_logging_payload(kwargs_for("failure"), None)
    assert failed["response"] is None and failed["error_str"] == "bad"
    assert failed["error_information"]["error_class"] == "BadRequestError"


def test_message_logging_off_and_key_info_redacted() -> None:
    s = settings({"turn_off_message_logging": True, "redact_user_api_key_info": True})
    assert s.message_logging("datadog") is False
    payload = standard_logging_payload(kwargs_for(), RESPONSE, message_logging=False, redact_user_api_key_info=True)
    assert payload["messages"] == REDACTED and payload["response"] == REDACTED
    assert not [k for k in payload["metadata"] if k.startswith("user_api_key")]
    per_integration = settings(callback_settings={"otel": {"message_logging": False}})
    assert per_integration.message_logging("otel") is False and per_integration.message_logging("langfuse") is True


async def test_generic_api_formats_and_event_types(collectors: FakeCollectors, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERIC_LOGGER_ENDPOINT", f"{collectors.url}/generic")
    monkeypatch.setenv("GENERIC_LOGGER_HEADERS", f"Authorization=Bearer {collectors.creds.generic_token}")
    logger = make_integration("generic_api", config_of(
        {"generic_api_params": {"log_format": "single", "event_types": ["llm_api_failure"]}}.copy()))
    assert logger is not None
    await logger.async_log_success_event(kwargs_for(), RESPONSE, None, None)   # not an event type it logs
    await logger.async_log_failure_event(kwargs_for("failure"), None, None, None)
    (sent,) = collectors.on("/generic")
    assert sent.payload["status"] == "failure"   # "single": the object itself, not a list


async def test_a_failed_send_names_the_url_never_the_key(collectors: FakeCollectors,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_API_KEY", collectors.creds.dd_api_key)
    monkeypatch.setenv("DD_SITE", "datadoghq.com")
    monkeypatch.setenv("DD_BASE_URL", collectors.url)
    collectors.fail_paths = {"/api/v2/logs"}
    logger = make_integration("datadog", config_of())
    assert logger is not None
    with pytest.raises(IntegrationError) as caught:
        await logger.async_log_success_event(kwargs_for(), RESPONSE, None, None)
    assert f"datadog: POST {collectors.url}/api/v2/logs answered 500" in str(caught.value)
    assert collectors.creds.dd_api_key not in str(caught.value)


async def test_langfuse_refused_events_are_a_failed_delivery(collectors: FakeCollectors,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", collectors.creds.langfuse_public)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-WRONG-0123456789")
    monkeypatch.setenv("LANGFUSE_HOST", collectors.url)
    logger = make_integration("langfuse", config_of({"langfuse_default_tags": ["cache_hit"]}))
    assert logger is not None
    with pytest.raises(IntegrationError, match="answered 401"):
        await logger.async_log_success_event(kwargs_for(), RESPONSE, None, None)
    assert "sk-lf-WRONG" not in repr(collectors.problems)


async def test_slack_alerts_by_type(collectors: FakeCollectors, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{collectors.url}/slack")
    from trioproxy.observability.integrations.slack import SlackAlerting

    alerting = SlackAlerting(settings(general={"alerting": ["slack"], "alerting_threshold": 1}))
    await alerting.async_log_success_event(kwargs_for(seconds=0.5), RESPONSE, None, None)    # fast: nothing
    await alerting.async_log_success_event(kwargs_for(seconds=2.0), RESPONSE, None, None)    # slow
    await alerting.async_log_failure_event(kwargs_for("failure", error_class="BudgetExceededError"), None, None, None)
    await alerting.async_log_failure_event(kwargs_for("failure"), None, None, None)
    texts = [r.payload["text"] for r in collectors.on("/slack")]
    assert ["llm_too_slow" in texts[0], "budget_alerts" in texts[1], "llm_exceptions" in texts[2]] == [True] * 3
    assert len(texts) == 3
    only = SlackAlerting(settings(general={"alerting": ["slack"], "alert_types": ["budget_alerts"]}))
    await only.async_log_failure_event(kwargs_for("failure"), None, None, None)
    assert len(collectors.on("/slack")) == 3


def test_s3_object_key_is_litellms(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = make_integration("s3_v2", config_of({"s3_callback_params": {
        "s3_bucket_name": "b", "s3_region_name": "eu-west-1", "s3_path": "logs/", "s3_aws_access_key_id": "AKIA1",
        "s3_aws_secret_access_key": "secret-0123456789"}}))
    assert logger is not None
    payload = logger.payload(kwargs_for(), RESPONSE)
    key = logger.object_key(payload)   # type: ignore[attr-defined]
    assert key == "logs/2026-11-30/time-12-00-00-000000_req-1.json"
    assert logger.url(key) == "https://b.s3.eu-west-1.amazonaws.com/" + key   # type: ignore[attr-defined]


def test_s3_team_and_key_prefixes() -> None:
    logger = make_integration("s3", config_of({"s3_callback_params": {
        "s3_bucket_name": "b", "s3_use_team_prefix": True, "s3_use_key_prefix": True,
        "s3_aws_access_key_id": "AKIA1", "s3_aws_secret_access_key": "secret-0123456789"}}))
    assert logger is not None
    key = logger.object_key(logger.payload(kwargs_for(team_alias="team-a"), RESPONSE))   # type: ignore[attr-defined]
    assert key == "team-a/sk-...abcd/2026-11-30/time-12-00-00-000000_req-1.json"


def test_settings_problems_are_startup_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GENERIC_LOGGER_ENDPOINT", "LANGSMITH_API_KEY", "GCS_BUCKET_NAME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(HandlerLoadError, match="needs GENERIC_LOGGER_ENDPOINT"):
        make_integration("generic_api", config_of())
    with pytest.raises(HandlerLoadError, match="s3_callback_params.s3_bucket_name"):
        make_integration("s3", config_of())
    monkeypatch.setenv("OTEL_EXPORTER", "zipkin")
    with pytest.raises(HandlerLoadError, match="use otlp_http"):
        make_integration("otel", config_of())
    monkeypatch.setenv("OTEL_EXPORTER", "otlp_grpc")     # gRPC is supported; it needs its endpoint
    monkeypatch.delenv("OTEL_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    with pytest.raises(HandlerLoadError, match="needs OTEL_ENDPOINT"):
        make_integration("otel", config_of())
    config = parse_config({"model_list": [], "general_settings": {"alerting": ["slack", "email"]}}, "c.yaml",
                          Path("."))
    with pytest.raises(ConfigError, match="sends alerts to Slack only"):
        load_callbacks(config, [])


def test_otel_endpoint_gets_the_traces_path() -> None:
    assert traces_endpoint("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_endpoint("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"
    assert traces_endpoint("https://api.honeycomb.io/v1/logs") == "https://api.honeycomb.io/v1/traces"
    assert traces_endpoint("https://otlp.arize.com/v1") == "https://otlp.arize.com/v1/traces"


def test_integration_credentials_join_the_secret_scrubber(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-SECRET-scrub-me-42")
    config = parse_config({"model_list": [], "litellm_settings": {"s3_callback_params": {
        "s3_bucket_name": "b", "s3_aws_secret_access_key": "aws-SECRET-scrub-me-42"}}}, "c.yaml",
        Path("."))
    assert {"sk-lf-SECRET-scrub-me-42", "aws-SECRET-scrub-me-42"} <= set(config.secrets())
    assert isinstance(config.callback_settings, MappingProxyType)
