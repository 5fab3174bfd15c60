"""The shared response cache (``cache_params.type: redis``) across two real ``trioproxy run``
instances on one real Redis: an answer stored by one is a hit on the other, plain or streamed,
namespaces kept apart, TTLs set in Redis, and only a hit is marked (``x-litellm-cache-key``,
``cache_hit: true`` in the request's log record)."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import openai
import pytest

from conftest import MASTER_KEY, upstream_model
from support.fake_upstream import Behavior
from support.redis_watch import KeyspaceWatcher, redis_command

MESSAGES = [{"role": "user", "content": "what is shared?"}]


def _config(fake, redis_url: str, namespace: str, **params):
    parts = urlsplit(redis_url)
    cache_params = {"type": "redis", "host": parts.hostname, "port": parts.port, "ttl": 600,
                    "namespace": namespace, **params}
    return {"model_list": [upstream_model(fake)],
            "litellm_settings": {"cache": True, "cache_params": cache_params},
            "general_settings": {"master_key": MASTER_KEY}}


def _client(proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)


@pytest.fixture
def two_instances(start_proxy, fake_upstream, redis_url):
    namespace = f"t{uuid.uuid4().hex[:10]}"
    config = _config(fake_upstream, redis_url, namespace)
    fake_upstream.set_behavior("up-model", Behavior(content="Redis keeps it for everyone"))
    a = start_proxy(config, args=["--log-format", "json"], subdir="a")
    b = start_proxy(config, args=["--log-format", "json"], subdir="b")
    return a, b, namespace


def _request_logs(proxy) -> list[dict]:
    lines = [json.loads(line) for line in proxy.logs().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "trioproxy.requests"]


def test_an_answer_stored_by_one_instance_is_a_hit_on_the_other(two_instances, fake_upstream, redis_url):
    a, b, namespace = two_instances
    with KeyspaceWatcher(redis_url, f"trioproxy:cache:{namespace}:*") as watcher:
        first = _client(a).chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
        stored = watcher.wait_set()
    assert "x-litellm-cache-key" not in first.headers and "x-trioproxy-cache-hit" not in first.headers
    assert len(fake_upstream.requests) == 1

    hit = _client(b).chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    assert len(fake_upstream.requests) == 1                          # answered from Redis
    assert hit.headers["x-trioproxy-cache-hit"] == "true"
    assert "trioproxy:cache:" + hit.headers["x-litellm-cache-key"] == stored
    assert hit.headers["x-litellm-cache-key"].startswith(namespace + ":")
    assert hit.parse().choices[0].message.content == first.parse().choices[0].message.content

    # a stream on the other instance replays the stored answer, with usage when asked
    text, usage = "", None
    for chunk in _client(b).chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True,
                                                    stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    assert text == "Redis keeps it for everyone" and usage is not None
    assert len(fake_upstream.requests) == 1

    # another namespace (the request's own) is another entry: a miss that reaches the upstream
    other = _client(a).chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES, extra_body={"cache": {"namespace": f"{namespace}-other"}})
    assert "x-litellm-cache-key" not in other.headers and len(fake_upstream.requests) == 2

    # the logging record: cache_hit and the key on the hit only
    [miss_record] = [r for r in _request_logs(a) if r["status_code"] == 200][:1]
    assert miss_record["cache_hit"] is False and miss_record["cache_key"] is None
    hits = [r for r in _request_logs(b) if r["status_code"] == 200]
    assert [r["cache_hit"] for r in hits] == [True, True]
    assert {r["cache_key"] for r in hits} == {hit.headers["x-litellm-cache-key"]}
    assert all(r["response_cost"] in (0, 0.0, None) for r in hits)


def test_a_streamed_answer_stored_by_one_instance_serves_plain_requests_on_the_other(
        two_instances, fake_upstream, redis_url):
    a, b, namespace = two_instances
    with KeyspaceWatcher(redis_url, f"trioproxy:cache:{namespace}:*") as watcher:
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in _client(a).chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True) if chunk.choices)
        watcher.wait_set()
    hit = _client(b).chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
    assert hit.headers["x-trioproxy-cache-hit"] == "true"
    assert hit.parse().choices[0].message.content == streamed
    assert len(fake_upstream.requests) == 1


def test_entries_expire_in_redis_after_their_ttl(two_instances, fake_upstream, redis_url):
    """The TTL is Redis's own expiry (``SET … PX``): the configured one, or the request's ``cache.ttl``;
    an entry Redis expired is a miss on every instance (its expiry moved to the past, no waiting)."""
    a, b, namespace = two_instances
    with KeyspaceWatcher(redis_url, f"trioproxy:cache:{namespace}:*") as watcher:
        _client(a).chat.completions.create(model="gpt-test", messages=MESSAGES)
        default_key = watcher.wait_set()
        _client(a).chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "short"}],
                                           extra_body={"cache": {"ttl": 5}})
        short_key = watcher.wait_set()
    assert 590_000 < redis_command(redis_url, "PTTL", default_key) <= 600_000
    assert 0 < redis_command(redis_url, "PTTL", short_key) <= 5_000

    # s-maxage: the entry's age comes from Redis (stored ttl − remaining), not from any clock
    redis_command(redis_url, "PEXPIRE", default_key, 500_000)        # as if stored 100 s ago
    young = _client(b).chat.completions.with_raw_response.create(
        model="gpt-test", messages=MESSAGES, extra_body={"cache": {"s-maxage": 60}})
    assert "x-litellm-cache-key" not in young.headers                   # older than 60 s: a miss
    assert len(fake_upstream.requests) == 3

    redis_command(redis_url, "PEXPIREAT", short_key, 1)               # its ttl has passed
    expired = _client(b).chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "short"}])
    assert "x-litellm-cache-key" not in expired.headers and len(fake_upstream.requests) == 4


def test_redis_down_means_misses_not_errors(start_proxy, fake_upstream):
    """A cache whose Redis cannot be reached answers every request from the upstream (one warning)."""
    from support.coordination_support import free_port

    config = _config(fake_upstream, f"redis://127.0.0.1:{free_port()}", "down")
    fake_upstream.set_behavior("up-model", Behavior(content="still answered"))
    proxy = start_proxy(config)
    client = _client(proxy)
    answers = [client.chat.completions.with_raw_response.create(model="gpt-test", messages=MESSAGES)
               for _ in range(3)]
    assert [r.parse().choices[0].message.content for r in answers] == ["still answered"] * 3
    assert all("x-litellm-cache-key" not in r.headers for r in answers)
    assert len(fake_upstream.requests) == 3
    logs = proxy.logs()
    assert logs.count("response cache: Redis lookup failed") == 1
