"""Routing end to end (issue #15, item 1): a real ``trioproxy run`` with LiteLLM's routing keys, in
front of the fake OpenAI-compatible upstream (and, for ``anthropic/*``, the Anthropic fake), driven
with the official ``openai`` client. Each deployment is told apart by the upstream model it sends.

Rule families: wildcard model names, ``model_group_alias``, fallbacks (general, context-window,
content-policy, the request's own, ``disable_fallbacks``, never after the first byte), cooldowns,
each strategy's choice, tags. The exact rules are unit-tested in virtual time (``tests/routing/``);
these prove the proxy runs them: config → router → pipeline → logs.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from conftest import MASTER_KEY, UPSTREAM_KEY
from support.fake_upstream import Behavior, FakeUpstream
from support.native_fakes.anthropic_fake import AnthropicFake

USER = [{"role": "user", "content": "hello"}]
ANTHROPIC_KEY = "sk-ant-api03-SECRET-routing-0123456789"


def deployment(fake: FakeUpstream, name: str, upstream: str, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": f"openai/{upstream}", "api_base": fake.base_url,
                                                   "api_key": UPSTREAM_KEY, **params}}


def start(start_proxy: Any, models: list[dict[str, Any]], router: dict[str, Any] | None = None,
          litellm: dict[str, Any] | None = None) -> tuple[Any, openai.OpenAI]:
    config = {"model_list": models, "general_settings": {"master_key": MASTER_KEY},
              "litellm_settings": {"num_retries": 0, **(litellm or {})}, "router_settings": router or {}}
    proxy = start_proxy(config, args=["--log-format", "json"])
    return proxy, openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)


def sent_models(fake: FakeUpstream) -> list[str]:
    return [r.json["model"] for r in fake.requests if isinstance(r.json, dict)]


def chat(client: openai.OpenAI, model: str, case: str | None = None, **extra: Any) -> Any:
    body = {"metadata": {"case": case}} if case else {}
    return client.chat.completions.create(model=model, messages=USER, extra_body={**body, **extra})


def request_records(proxy: Any) -> dict[str, dict[str, Any]]:
    """The request log's records by ``metadata.case`` (after a graceful stop drained the log queue)."""
    assert proxy.terminate(signal.SIGTERM) == 0
    lines = [json.loads(line) for line in proxy.logs().splitlines() if line.startswith("{")]
    return {r["metadata"]["case"]: r for r in lines
            if r.get("logger") == "trioproxy.requests" and r.get("metadata", {}).get("case")}


# -- model names: wildcards and aliases ---------------------------------------------------------------


def test_wildcards_pass_the_model_asked_for_and_are_not_listed(start_proxy: Any, fake_upstream: FakeUpstream) -> None:
    with AnthropicFake(ANTHROPIC_KEY) as anthropic:
        models = [deployment(fake_upstream, "gpt-test", "exact-model"),
                  {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_base": fake_upstream.base_url,
                                                                "api_key": UPSTREAM_KEY}},
                  {"model_name": "anthropic/*", "litellm_params": {"model": "anthropic/*", "api_base": anthropic.base_url,
                                                                   "api_key": ANTHROPIC_KEY}}]
        proxy, client = start(start_proxy, models)
        assert chat(client, "gpt-test").choices[0].message.content
        assert chat(client, "openai/gpt-4o").model == "gpt-4o"          # openai/* → gpt-4o
        assert chat(client, "gpt-4o-mini").model == "gpt-4o-mini"       # a bare name: openai/* (inferred)
        assert sent_models(fake_upstream) == ["exact-model", "gpt-4o", "gpt-4o-mini"]
        claude = chat(client, "claude-haiku-4-5")                       # claude… → anthropic/* → the adapter
        assert claude.choices[0].message.content == anthropic.script.text
        assert anthropic.last.json["model"] == "claude-haiku-4-5"
        assert [m.id for m in client.models.list()] == ["gpt-test"]      # patterns are not callable models
        for nobody in ("openai/*", "mistral/mistral-large"):             # '*' matches no pattern; no mistral/*
            with pytest.raises(openai.NotFoundError):
                chat(client, nobody)


def test_health_calls_the_configured_models_not_the_wildcards(start_proxy: Any, fake_upstream: FakeUpstream) -> None:
    models = [deployment(fake_upstream, "gpt-test", "exact-model"),
              {"model_name": "openai/*", "litellm_params": {"model": "openai/*", "api_base": fake_upstream.base_url,
                                                            "api_key": UPSTREAM_KEY}}]
    proxy, _ = start(start_proxy, models)
    body = httpx.get(f"{proxy.base_url}/health", headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=30).json()
    assert [e["model_name"] for e in body["healthy_endpoints"]] == ["gpt-test"] and body["unhealthy_count"] == 0
    assert sent_models(fake_upstream) == ["exact-model"]


def test_a_catch_all_passes_the_requests_provider_through(start_proxy: Any) -> None:
    with AnthropicFake(ANTHROPIC_KEY) as anthropic:
        config = {"model_list": [{"model_name": "*", "litellm_params": {"model": "*"}}],
                  "general_settings": {"master_key": MASTER_KEY}}
        proxy = start_proxy(config, env={"ANTHROPIC_API_BASE": anthropic.base_url, "ANTHROPIC_API_KEY": ANTHROPIC_KEY})
        client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, timeout=30)
        assert chat(client, "anthropic/claude-haiku-4-5").choices[0].message.content == anthropic.script.text
        assert anthropic.last.json["model"] == "claude-haiku-4-5"
        assert chat(client, "fake/anything").choices[0].message.content     # the built-in fake provider
        assert [m.id for m in client.models.list()] == []
        with pytest.raises(openai.BadRequestError) as unknown:
            chat(client, "sagemaker/endpoint")
        assert unknown.value.code == "unsupported_provider"


def test_an_alias_serves_its_group_and_a_hidden_one_is_not_listed(start_proxy: Any,
                                                                 fake_upstream: FakeUpstream) -> None:
    proxy, client = start(start_proxy, [deployment(fake_upstream, "gpt-test", "up-model")],
                          router={"model_group_alias": {"fast": "gpt-test",
                                                        "secret-name": {"model": "gpt-test", "hidden": True}}})
    chat(client, "fast", "alias")
    chat(client, "secret-name")
    assert sent_models(fake_upstream) == ["up-model", "up-model"]
    assert [m.id for m in client.models.list()] == ["gpt-test", "fast"]
    assert request_records(proxy)["alias"]["model_group"] == "fast"


# -- fallbacks ----------------------------------------------------------------------------------------


def test_fallbacks_by_kind_of_failure(start_proxy: Any, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_behavior("up-primary", Behavior(status=500, error_message="boom"))
    fake_upstream.set_behavior("up-small", Behavior(status=400, error_code="context_length_exceeded",
                                                    error_message="This model's maximum context length is 8192 tokens"))
    fake_upstream.set_behavior("up-strict", Behavior(status=400, error_code="content_filter",
                                                     error_message="The response was filtered"))
    models = [deployment(fake_upstream, "primary", "up-primary"), deployment(fake_upstream, "backup", "up-backup"),
              deployment(fake_upstream, "small", "up-small"), deployment(fake_upstream, "large", "up-large"),
              deployment(fake_upstream, "strict", "up-strict"), deployment(fake_upstream, "lenient", "up-lenient"),
              deployment(fake_upstream, "spare", "up-spare"), deployment(fake_upstream, "lonely", "up-lonely")]
    proxy, client = start(start_proxy, models, litellm={"fallbacks": [{"primary": ["backup"]}]}, router={
        "context_window_fallbacks": [{"small": ["large"]}],
        "content_policy_fallbacks": [{"strict": ["lenient"]}],
        "default_fallbacks": ["spare"]})

    def tried(call: Callable[[], Any]) -> list[str]:
        fake_upstream.reset()
        fake_upstream.set_behavior("up-primary", Behavior(status=500, error_message="boom"))
        fake_upstream.set_behavior("up-small", Behavior(status=400, error_code="context_length_exceeded",
                                                        error_message="maximum context length is 8192 tokens"))
        fake_upstream.set_behavior("up-strict", Behavior(status=400, error_code="content_filter",
                                                         error_message="The response was filtered"))
        fake_upstream.set_behavior("up-lonely", Behavior(status=503, error_message="unavailable"))
        call()
        return sent_models(fake_upstream)

    assert tried(lambda: chat(client, "primary", "general")) == ["up-primary", "up-backup"]   # litellm_settings'
    assert tried(lambda: chat(client, "small", "context")) == ["up-small", "up-large"]
    assert tried(lambda: chat(client, "strict", "policy")) == ["up-strict", "up-lenient"]
    assert tried(lambda: chat(client, "lonely", "default")) == ["up-lonely", "up-spare"]   # no entry of its own
    # the request's own list replaces the configured one
    assert tried(lambda: chat(client, "primary", "client-side", fallbacks=["lenient"])) == ["up-primary", "up-lenient"]

    def refused() -> None:
        with pytest.raises(openai.InternalServerError):
            chat(client, "primary", "disabled", disable_fallbacks=True)
    assert tried(refused) == ["up-primary"]
    # a streamed request falls back too, before its first byte
    streamed = tried(lambda: list(client.chat.completions.create(model="primary", messages=USER, stream=True)))
    assert streamed == ["up-primary", "up-backup"]
    # routing's own fields never reach an upstream
    assert all(not {"fallbacks", "disable_fallbacks", "tags"} & set(r.json) for r in fake_upstream.requests)

    records = request_records(proxy)
    assert records["general"]["model_group"] == "backup" and records["general"]["model"] == "primary"
    assert records["general"]["attempts"] == 2 and records["general"]["status"] == "success"
    assert records["context"]["model_group"] == "large" and records["policy"]["model_group"] == "lenient"
    assert records["default"]["model_group"] == "spare"
    assert records["disabled"]["status_code"] == 500


def test_a_stream_that_fails_at_its_first_event_falls_back(start_proxy: Any, fake_upstream: FakeUpstream) -> None:
    """A 200 whose first event is an error envelope, or a body without any event: nothing reached the
    client, so the request goes on to the fallback like after an error status."""
    fake_upstream.set_behavior("up-primary", Behavior(error_in_200={"error": {
        "message": "the model is overloaded", "type": "server_error", "code": "overloaded"}}))
    fake_upstream.set_behavior("up-second", Behavior(empty_body=True))
    proxy, client = start(start_proxy, [deployment(fake_upstream, "primary", "up-primary"),
                                        deployment(fake_upstream, "second", "up-second"),
                                        deployment(fake_upstream, "backup", "up-backup")],
                          router={"fallbacks": [{"primary": ["second", "backup"]}]})
    chunks = list(client.chat.completions.create(model="primary", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the fake upstream."
    assert sent_models(fake_upstream) == ["up-primary", "up-second", "up-backup"]


def test_no_fallback_once_the_first_byte_reached_the_client(start_proxy: Any, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_behavior("up-primary", Behavior(content="one two three four", stream_end="close"))
    proxy, client = start(start_proxy, [deployment(fake_upstream, "primary", "up-primary"),
                                        deployment(fake_upstream, "backup", "up-backup")],
                          router={"fallbacks": [{"primary": ["backup"]}]})
    with pytest.raises(openai.APIError) as broken:
        for _ in client.chat.completions.create(model="primary", messages=USER, stream=True):
            pass
    assert broken.value.code == "upstream_stream_interrupted"
    assert sent_models(fake_upstream) == ["up-primary"]


# -- cooldowns ----------------------------------------------------------------------------------------


def test_a_rate_limited_deployment_cools_down(start_proxy: Any, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_behavior("up-a", Behavior(status=429, error_type="rate_limit_exceeded",
                                                error_code="rate_limit_exceeded", error_message="slow down"))
    proxy, client = start(start_proxy, [deployment(fake_upstream, "g", "up-a", order=1),
                                        deployment(fake_upstream, "g", "up-b", order=2)],
                          router={"num_retries": 1, "cooldown_time": 600})
    chat(client, "g")            # a refuses (429: a cooldown at once), b answers the retry
    chat(client, "g")            # a is cooling down: not even tried
    chat(client, "g")
    assert sent_models(fake_upstream) == ["up-a", "up-b", "up-b", "up-b"]


def test_server_errors_cool_a_deployment_down_after_allowed_fails(start_proxy: Any,
                                                                  fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_behavior("up-a", Behavior(status=500, error_message="boom"))
    proxy, client = start(start_proxy, [deployment(fake_upstream, "g", "up-a", order=1),
                                        deployment(fake_upstream, "g", "up-b", order=2)],
                          router={"num_retries": 1, "allowed_fails": 1, "cooldown_time": 600})
    for _ in range(4):
        chat(client, "g")       # a 500 is retried on b; a's second failure is one more than allowed_fails
    assert sent_models(fake_upstream) == ["up-a", "up-b", "up-a", "up-b", "up-b", "up-b"]


# -- strategies ---------------------------------------------------------------------------------------


def test_simple_shuffle_never_picks_a_zero_weight_deployment_first(start_proxy: Any,
                                                                   fake_upstream: FakeUpstream) -> None:
    proxy, client = start(start_proxy, [deployment(fake_upstream, "g", "up-weighted", weight=3),
                                        deployment(fake_upstream, "g", "up-standby", weight=0)],
                          router={"routing_strategy": "simple-shuffle"})
    for _ in range(8):
        chat(client, "g")
    assert set(sent_models(fake_upstream)) == {"up-weighted"}


def _in_thread(call: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def test_least_busy_picks_the_deployment_with_fewer_requests_in_flight(start_proxy: Any,
                                                                       fake_upstream: FakeUpstream) -> None:
    release = threading.Event()
    for name in ("up-a", "up-b"):
        fake_upstream.set_behavior(name, Behavior(hold=release))
    proxy, client = start(start_proxy, [deployment(fake_upstream, "g", "up-a"), deployment(fake_upstream, "g", "up-b")],
                          router={"routing_strategy": "least-busy"})
    held = _in_thread(lambda: chat(client, "g"))
    fake_upstream.wait_for_requests(1, timeout=10)
    busy = sent_models(fake_upstream)[0]
    fake_upstream.set_behavior("up-b" if busy == "up-a" else "up-a", Behavior())
    chat(client, "g")            # the other one has nothing in flight
    assert sent_models(fake_upstream)[1] != busy
    release.set()
    held.join(10)


def test_latency_based_routing_prefers_the_faster_deployment(start_proxy: Any, fake_upstream: FakeUpstream) -> None:
    """Made deterministic without timing: the slow deployment's requests are held until a request to
    the other one has come and gone, so each of them lasted strictly longer."""
    release = threading.Event()
    proxy, client = start(start_proxy, [deployment(fake_upstream, "g", "up-a"), deployment(fake_upstream, "g", "up-b")],
                          router={"routing_strategy": "latency-based-routing"})
    fake_upstream.set_behavior("up-a", Behavior(hold=release))
    fake_upstream.set_behavior("up-b", Behavior(hold=release))
    threads = [_in_thread(lambda: chat(client, "g"))]
    fake_upstream.wait_for_requests(1, timeout=10)
    slow = sent_models(fake_upstream)[0]
    fast = "up-b" if slow == "up-a" else "up-a"
    fake_upstream.set_behavior(fast, Behavior())
    # both are unmeasured (equal scores: a random pick) until one request reached the fast one
    while fast not in sent_models(fake_upstream):
        count = len(fake_upstream.requests)
        threads.append(_in_thread(lambda: chat(client, "g")))
        fake_upstream.wait_for_requests(count + 1, timeout=10)
    fake_upstream.wait_until(lambda: all(r.completed for r in fake_upstream.requests if r.json["model"] == fast),
                             timeout=10, what="the fast request's answer")
    release.set()
    for thread in threads:
        thread.join(10)
    before = len(fake_upstream.requests)
    for _ in range(4):
        chat(client, "g")
    assert sent_models(fake_upstream)[before:] == [fast] * 4


def test_usage_based_routing_counts_requests_per_minute(start_proxy: Any, fake_upstream: FakeUpstream) -> None:
    """rpm 1 each: two requests in one calendar minute go to different deployments and a third is a 429
    with Retry-After. Should the minute turn during the check, it is simply made again."""
    proxy, client = start(start_proxy, [deployment(fake_upstream, "g", "up-a", rpm=1),
                                        deployment(fake_upstream, "g", "up-b", rpm=1)],
                          router={"routing_strategy": "usage-based-routing-v2"})
    for _ in range(3):
        fake_upstream.reset()
        minute = int(time.time() // 60)
        outcome: list[Any] = []
        for _ in range(3):
            try:
                outcome.append(chat(client, "g").model)
            except openai.RateLimitError as exc:
                outcome.append(exc)
        if int(time.time() // 60) != minute:
            continue        # the counts were reset midway: the verdict is not this minute's
        assert sorted(outcome[:2]) == ["up-a", "up-b"]
        refused = outcome[2]
        assert isinstance(refused, openai.RateLimitError)
        assert refused.code == "no_deployments_available" and int(refused.response.headers["retry-after"]) >= 1
        return
    pytest.fail("three minute boundaries in a row")


# -- tags ---------------------------------------------------------------------------------------------


def test_tags_choose_among_a_groups_deployments(start_proxy: Any, fake_upstream: FakeUpstream) -> None:
    proxy, client = start(start_proxy, [deployment(fake_upstream, "g", "up-eu", tags=["eu"]),
                                        deployment(fake_upstream, "g", "up-us", tags=["us", "paid"]),
                                        deployment(fake_upstream, "g", "up-default", tags=["default"]),
                                        deployment(fake_upstream, "strict", "up-strict-eu", tags=["eu"])],
                          router={"enable_tag_filtering": True})
    chat(client, "g", tags=["eu"])                                       # the body's tags
    chat(client, "g", metadata={"tags": ["paid"]})                      # metadata.tags
    client.chat.completions.create(model="g", messages=USER, extra_headers={"x-litellm-tags": "us"})
    chat(client, "g")                                                    # none: the default deployment
    chat(client, "g", tags=["nowhere"])                                  # none matches: the default one
    with pytest.raises(openai.BadRequestError) as refused:
        chat(client, "strict", tags=["us"])                              # no default in this group
    assert refused.value.code == "no_deployments_with_tag"
    assert sent_models(fake_upstream) == ["up-eu", "up-us", "up-us", "up-default", "up-default"]
    assert all("tags" not in r.json for r in fake_upstream.requests)
