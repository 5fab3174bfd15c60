"""LiteLLM's logging integrations by name, in a real ``trioproxy run`` with the official openai client.

The proxy's integrations send to :class:`~support.fake_collectors.FakeCollectors` (strict: auth
headers, encodings, SigV4 recomputed). Each test stops the proxy with SIGTERM before reading what
arrived: the graceful shutdown drains the logging queue and the OpenTelemetry SDK flushes at exit,
so every event that will ever be sent has been, without sleeping.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY, upstream_model
from support.fake_collectors import FakeCollectors
from support.fake_upstream import Behavior


@pytest.fixture
def collectors() -> Iterator[FakeCollectors]:
    with FakeCollectors() as fake:
        yield fake


def _env(c: FakeCollectors) -> dict[str, str]:
    k = c.creds
    return {
        "LANGFUSE_PUBLIC_KEY": k.langfuse_public, "LANGFUSE_SECRET_KEY": k.langfuse_secret, "LANGFUSE_HOST": c.url,
        "DD_API_KEY": k.dd_api_key, "DD_SITE": "datadoghq.com", "DD_BASE_URL": c.url, "DD_SERVICE": "my-proxy",
        "GENERIC_LOGGER_ENDPOINT": f"{c.url}/generic", "GENERIC_LOGGER_HEADERS": f"Authorization=Bearer {k.generic_token}",
        "LANGSMITH_API_KEY": k.langsmith_key, "LANGSMITH_BASE_URL": c.url,
        "OTEL_EXPORTER": "otlp_http", "OTEL_ENDPOINT": c.url, "OTEL_HEADERS": f"Authorization=Bearer%20{k.otel_token}",
        "OTEL_SERVICE_NAME": "trioproxy-test", "OTEL_BSP_SCHEDULE_DELAY": "100",
        "AWS_SECRET_ACCESS_KEY_FOR_LOGS": k.aws_secret,
        "SLACK_WEBHOOK_URL": f"{c.url}/slack",
        "OPENMETER_API_KEY": k.openmeter_key, "OPENMETER_API_ENDPOINT": c.url,
        "ATHINA_API_KEY": k.athina_key, "ATHINA_BASE_URL": c.url,
    }


def _config(fake_upstream: Any, c: FakeCollectors, **litellm: Any) -> dict[str, Any]:
    """Every integration at once; model ``gpt-bad`` answers 400 upstream."""
    fake_upstream.set_behavior("bad-model", Behavior(status=400, error_message="bad request upstream",
                                                     error_type="invalid_request_error"))
    k = c.creds
    return {
        "model_list": [upstream_model(fake_upstream),
                       upstream_model(fake_upstream, model_name="gpt-bad", upstream_name="bad-model")],
        "general_settings": {"master_key": MASTER_KEY, "alerting": ["slack"], "alert_types": ["llm_exceptions"]},
        "litellm_settings": {
            "callbacks": ["langfuse", "otel", "datadog", "s3_v2", "langsmith", "aws_sqs"],
            "success_callback": ["generic_api", "openmeter", "athina"],
            "s3_callback_params": {"s3_bucket_name": k.bucket, "s3_region_name": k.region, "s3_path": "proxy-logs",
                                   "s3_endpoint_url": c.url, "s3_aws_access_key_id": k.aws_key_id,
                                   "s3_aws_secret_access_key": "os.environ/AWS_SECRET_ACCESS_KEY_FOR_LOGS"},
            "aws_sqs_callback_params": {"sqs_queue_url": f"{c.url}/123456789012/log-queue", "sqs_region_name": k.region,
                                        "sqs_aws_access_key_id": k.aws_key_id,
                                        "sqs_aws_secret_access_key": "os.environ/AWS_SECRET_ACCESS_KEY_FOR_LOGS"},
            "langfuse_default_tags": ["cache_hit"],
            **litellm,
        },
    }


def _run_requests(proxy: Any) -> str:
    client = openai.OpenAI(api_key=MASTER_KEY, base_url=proxy.url, max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello there"}], user="end-user-7",
        extra_body={"metadata": {"tags": ["team-a"], "generation_name": "my-generation", "trace_id": "trace-42"}})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-bad", messages=[{"role": "user", "content": "please fail"}],
                                       extra_body={"metadata": {"trace_id": "trace-43"}})
    return answer.id


def test_each_integration_sends_what_litellm_sends(start_proxy: Any, fake_upstream: Any,
                                                   collectors: FakeCollectors) -> None:
    proxy = start_proxy(_config(fake_upstream, collectors), env=_env(collectors))
    answer_id = _run_requests(proxy)
    assert proxy.terminate(signal.SIGTERM) == 0
    logs = proxy.logs()
    c = collectors
    assert c.problems == []

    # langfuse: one ingestion batch per request, a trace and a generation named as LiteLLM names them
    batches = [r.payload["batch"] for r in c.on("/api/public/ingestion")]
    assert len(batches) == 2
    by_trace = {b[0]["body"]["id"]: {e["type"]: e["body"] for e in b} for b in batches}
    ok, failed = by_trace["trace-42"], by_trace["trace-43"]
    assert ok["trace-create"]["name"] == "litellm-acompletion"
    assert ok["trace-create"]["userId"] == "end-user-7"
    assert "team-a" in ok["trace-create"]["tags"] and "cache_hit:False" in ok["trace-create"]["tags"]
    generation = ok["generation-create"]
    assert generation["name"] == "my-generation" and generation["traceId"] == "trace-42"
    assert generation["model"] == "up-model" and generation["level"] == "DEFAULT"
    assert generation["input"] == [{"role": "user", "content": "hello there"}]
    assert generation["usage"]["total"] > 0 and generation["usage"]["unit"] == "TOKENS"
    assert failed["generation-create"]["level"] == "ERROR"
    assert "bad request upstream" in failed["generation-create"]["statusMessage"]

    # datadog: gzip'd logs, the StandardLoggingPayload as the message, status by outcome
    logs_dd = [log for r in c.on("/api/v2/logs") for log in r.payload]
    assert sorted(log["status"] for log in logs_dd) == ["error", "info"]
    message = json.loads(next(log for log in logs_dd if log["status"] == "info")["message"])
    assert message["status"] == "success" and message["call_type"] == "acompletion"
    assert message["model_group"] == "gpt-test" and message["request_tags"] == ["team-a"]
    assert all(log["service"] == "my-proxy" and log["ddsource"] == "litellm" for log in logs_dd)

    # s3_v2: one object per request under <s3_path>/<date>/time-…_<id>.json, SigV4-signed (checked)
    objects = c.on(f"/{c.creds.bucket}/")
    assert len(objects) == 2
    assert all(o.path.startswith(f"/{c.creds.bucket}/proxy-logs/") and o.path.endswith(".json") for o in objects)
    assert {o.payload["status"] for o in objects} == {"success", "failure"}
    assert all(o.path.endswith(f"_{o.payload['id']}.json") for o in objects)

    # aws_sqs: one SendMessage per request (SigV4 for sqs checked), the payload as the message body
    assert sorted(m.payload["status"] for m in c.on("/123456789012/log-queue")) == ["failure", "success"]

    # generic_api (success_callback: successes only): a JSON array of StandardLoggingPayloads
    generic = c.on("/generic")
    assert len(generic) == 1 and generic[0].payload[0]["response"]["id"] == answer_id

    # openmeter and athina (successes only, as in LiteLLM)
    (event,) = [r.payload for r in c.on("/api/v1/events")]
    assert event["subject"] == "end-user-7" and event["type"] == "litellm_tokens" and event["id"] == answer_id
    assert event["data"]["total_tokens"] > 0 and event["data"]["model"] == "up-model"
    (inference,) = [r.payload for r in c.on("/api/v1/log/inference")]
    assert inference["prompt"] == [{"role": "user", "content": "hello there"}]
    assert inference["response"]["id"] == answer_id

    # langsmith: an llm run per request
    runs = [run for r in c.on("/runs/batch") for run in r.payload["post"]]
    assert len(runs) == 2 and all(run["run_type"] == "llm" and run["session_name"] == "litellm-completion"
                                  for run in runs)

    # otel: a litellm_request span per request, OK and ERROR, service name from OTEL_SERVICE_NAME
    spans = []
    for r in c.on("/v1/traces"):
        for resource_spans in r.payload.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
            assert service == "trioproxy-test"
            for scope in resource_spans.scope_spans:
                spans += list(scope.spans)
    assert sorted(s.name for s in spans) == ["litellm_request", "litellm_request"]
    assert sorted(s.status.code for s in spans) == [1, 2]   # OK, ERROR
    attrs = {a.key: a for a in spans[0].attributes}
    assert attrs["gen_ai.request.model"].value.string_value == "up-model"

    # slack: the failed request, as an llm_exceptions alert
    alerts = c.on("/slack")
    assert len(alerts) == 1 and "llm_exceptions" in alerts[0].payload["text"]

    # never a secret: not in any payload sent, not in the proxy's log
    sent = b"".join(r.body if r.path != "/api/v2/logs" else json.dumps(r.payload).encode() for r in c.received)
    for secret in [*c.creds.all_secrets(), MASTER_KEY, UPSTREAM_KEY]:
        assert secret.encode() not in sent
        assert secret not in logs


def test_a_failing_endpoint_never_fails_a_request(start_proxy: Any, fake_upstream: Any,
                                                  collectors: FakeCollectors) -> None:
    collectors.fail_paths = {"/api/public/ingestion", "/generic", "/api/v2/logs"}
    config = _config(fake_upstream, collectors)
    config["litellm_settings"]["callbacks"] = ["langfuse", "datadog"]
    proxy = start_proxy(config, env=_env(collectors))
    client = openai.OpenAI(api_key=MASTER_KEY, base_url=proxy.url, max_retries=0)
    for _ in range(3):
        assert client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}]).id
    collectors.wait_for("/generic", 3)
    metrics = httpx.get(f"{proxy.base_url}/metrics", headers={"Authorization": f"Bearer {MASTER_KEY}"}).text
    assert proxy.terminate(signal.SIGTERM) == 0
    logs = proxy.logs()
    assert "generic_api: POST " in logs and "answered 500" in logs
    assert 'callback="generic_api"' in metrics
    for secret in [*collectors.creds.all_secrets(), MASTER_KEY, UPSTREAM_KEY]:
        assert secret not in logs


def test_a_hanging_endpoint_never_delays_a_request(start_proxy: Any, fake_upstream: Any,
                                                  collectors: FakeCollectors) -> None:
    """Every answer arrives while the endpoint holds every delivery unanswered: deliveries are off
    the request path (no timing involved: the hold is an event the test releases afterwards)."""
    collectors.hold_paths = {"/generic"}
    proxy = start_proxy(_config(fake_upstream, collectors, callbacks=[]), env=_env(collectors))
    client = openai.OpenAI(api_key=MASTER_KEY, base_url=proxy.url, max_retries=0)
    for _ in range(3):
        assert client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}]).id
    assert len(collectors.wait_for("/generic", 3)) == 3
    assert not collectors.release.is_set()   # none of them has been answered, yet every request was
    collectors.release.set()
    assert proxy.terminate(signal.SIGTERM) == 0
    assert collectors.problems == []


def test_a_missing_key_is_a_startup_error_naming_the_variable(start_proxy: Any, fake_upstream: Any,
                                                             collectors: FakeCollectors) -> None:
    env = _env(collectors)
    env["DD_API_KEY"] = ""
    with pytest.raises(RuntimeError, match="'datadog' logging integration needs DD_API_KEY") as caught:
        start_proxy(_config(fake_upstream, collectors), env=env)
    for secret in collectors.creds.all_secrets():
        assert secret not in str(caught.value)


def test_gcs_bucket_uploads_one_object_per_request(start_proxy: Any, fake_upstream: Any, collectors: FakeCollectors,
                                                   tmp_path: Any) -> None:
    """A real service-account file: google-auth signs a JWT, the fake token endpoint issues the token
    the upload must carry."""
    from support.fake_google import FakeGoogle

    with FakeGoogle() as google:
        collectors.gcs_tokens = google.tokens
        config = _config(fake_upstream, collectors)
        config["litellm_settings"]["callbacks"] = ["gcs_bucket"]
        env = {**_env(collectors), "GCS_BUCKET_NAME": "my-logs/proxy", "STORAGE_EMULATOR_HOST": collectors.url,
               "GCS_PATH_SERVICE_ACCOUNT": str(google.service_account_file(tmp_path))}
        proxy = start_proxy(config, env=env)
        answer_id = _run_requests(proxy)
        assert proxy.terminate(signal.SIGTERM) == 0
    uploads = collectors.on("/upload/storage/v1/b/my-logs/o")
    assert collectors.problems == [] and len(uploads) == 2
    names = sorted(httpx.URL(u.path).params["name"] for u in uploads)
    assert names[0].startswith("proxy/") and names[0].endswith(f"/{answer_id}")
    assert "/failure-" in names[1]
    assert {u.payload["status"] for u in uploads} == {"success", "failure"}


def test_gcs_pubsub_publishes_each_success(start_proxy: Any, fake_upstream: Any, collectors: FakeCollectors,
                                           tmp_path: Any) -> None:
    """LiteLLM's docs' config (``callbacks: ["gcs_pubsub"]``): one base64 message per successful request,
    under an OAuth token google-auth got from the fake token endpoint; failures are not published."""
    from support.fake_google import FakeGoogle

    with FakeGoogle() as google:
        collectors.gcs_tokens = google.tokens
        config = _config(fake_upstream, collectors)
        config["litellm_settings"]["callbacks"] = ["gcs_pubsub"]
        env = {**_env(collectors), "GCS_PUBSUB_PROJECT_ID": "my-project", "GCS_PUBSUB_TOPIC_ID": "litellm-logs",
               "PUBSUB_EMULATOR_HOST": collectors.url,
               "GCS_PATH_SERVICE_ACCOUNT": str(google.service_account_file(tmp_path))}
        proxy = start_proxy(config, env=env)
        answer_id = _run_requests(proxy)
        assert proxy.terminate(signal.SIGTERM) == 0
    published = collectors.on("/v1/projects/my-project/topics/litellm-logs:publish")
    assert collectors.problems == [] and len(published) == 1
    (message,) = published[0].payload
    assert message["status"] == "success" and message["response"]["id"] == answer_id


def test_deepeval_sends_one_trace_per_request(start_proxy: Any, fake_upstream: Any,
                                              collectors: FakeCollectors) -> None:
    """LiteLLM's docs' config (``success_callback`` and ``failure_callback: ["deepeval"]``)."""
    config = _config(fake_upstream, collectors)
    config["litellm_settings"].update(callbacks=[], success_callback=["deepeval"], failure_callback=["deepeval"])
    env = {**_env(collectors), "CONFIDENT_API_KEY": collectors.creds.confident_key,
           "CONFIDENT_BASE_URL": collectors.url, "LITELM_ENVIRONMENT": "staging"}
    proxy = start_proxy(config, env=env)
    answer_id = _run_requests(proxy)
    assert proxy.terminate(signal.SIGTERM) == 0
    assert collectors.problems == []
    traces = {t.payload["llmSpans"][0]["status"]: t.payload for t in collectors.on("/v1/tracing")}
    ok, failed = traces["SUCCESS"]["llmSpans"][0], traces["ERRORED"]["llmSpans"][0]
    assert traces["SUCCESS"]["environment"] == "staging"
    assert ok["name"] == "litellm_success_callback" and ok["model"] == "up-model"
    assert ok["input"] == [{"role": "user", "content": "hello there"}] and ok["inputTokenCount"] > 0
    assert ok["output"] and answer_id
    assert failed["name"] == "litellm_failure_callback" and "bad request upstream" in failed["output"]
    assert collectors.creds.confident_key not in proxy.logs()


def test_galileo_logs_in_and_ingests_each_success(start_proxy: Any, fake_upstream: Any,
                                                  collectors: FakeCollectors) -> None:
    """LiteLLM's docs' config (``success_callback: ["galileo"]``); a token that goes stale is renewed once."""
    config = _config(fake_upstream, collectors)
    config["litellm_settings"].update(callbacks=[], success_callback=["galileo"])
    env = {**_env(collectors), "GALILEO_BASE_URL": f"{collectors.url}/galileo", "GALILEO_PROJECT_ID": "proj-1",
           "GALILEO_USERNAME": "proxy-user", "GALILEO_PASSWORD": collectors.creds.galileo_password}
    proxy = start_proxy(config, env=env)
    _run_requests(proxy)                                      # one success, one failure (not logged)
    collectors.wait_for("/galileo/projects/proj-1/observe/ingest", 1)
    collectors.galileo_logins += 1                            # the proxy's token is stale from now on
    client = openai.OpenAI(api_key=MASTER_KEY, base_url=proxy.url, max_retries=0)
    client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "again"}])
    assert proxy.terminate(signal.SIGTERM) == 0
    assert collectors.problems == []
    accepted = [r.payload["records"][0] for r in collectors.on("/galileo/projects/proj-1/observe/ingest")
                if r.payload is not None]
    assert [r["input_text"] for r in accepted] == ["hello there", "again"]
    assert accepted[0]["node_type"] == "acompletion" and accepted[0]["model"] == "up-model"
    assert json.loads(accepted[0]["output_text"])["role"] == "assistant" and accepted[0]["num_input_tokens"] > 0
    assert collectors.creds.galileo_password not in proxy.logs()
