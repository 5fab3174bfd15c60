"""LiteLLM's cache settings that change what is cached or where the server comes from (issue #15):
``cache_params.mode: default_off`` (only requests sending ``"use-cache": true``), ``max_connections``,
``enable_caching_on_provider_specific_optional_params``, and ``cache: true`` with the Redis server
from LiteLLM's documented ``REDIS_HOST`` / ``REDIS_PORT`` — in-process and through real
``trioproxy run`` processes sharing one real Redis."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import openai
import orjson
import pytest
import trio

from conftest import MASTER_KEY, upstream_model
from support.app_harness import build_app, request, running
from support.fake_upstream import Behavior
from trioproxy.config import ConfigError
from trioproxy.config.build import parse_config


def chat(content: str = "hello", **extra):
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], **extra}


async def test_default_off_caches_only_requests_that_opt_in(tmp_path, autojump_clock):
    settings = {"cache": True, "cache_params": {"type": "local", "mode": "default_off"}}
    app = build_app(tmp_path, settings=settings)
    async with running(app) as state:
        await request(state, chat("plain"))
        plain_again = await request(state, chat("plain"))
        # a request that opts in is neither served an answer stored without opting in, nor...
        await request(state, chat("opted", cache={"use-cache": True}))
        t0 = trio.current_time()
        opted_again = await request(state, chat("opted", cache={"use-cache": True}))
        assert trio.current_time() == t0                                 # no upstream call
        # ...does a request that does not opt in read what an opted-in one stored
        not_opted = await request(state, chat("opted"))
        bad = await request(state, chat("x", cache={"use-cache": "yes"}))
    assert "x-trioproxy-cache-hit" not in plain_again.headers
    assert opted_again.headers["x-trioproxy-cache-hit"] == "true"
    assert "x-trioproxy-cache-hit" not in not_opted.headers
    assert bad.status == 400
    assert orjson.loads(bad.body)["error"]["param"] == "cache.use-cache"


async def test_default_on_is_the_default_and_use_cache_is_accepted(tmp_path, autojump_clock):
    app = build_app(tmp_path, settings={"cache": True, "cache_params": {"type": "local", "mode": "default_on"}})
    async with running(app) as state:
        await request(state, chat("a"))
        hit = await request(state, chat("a", cache={"use-cache": True}))
    assert hit.headers["x-trioproxy-cache-hit"] == "true"


def test_unknown_mode_is_a_startup_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        build_app(tmp_path, settings={"cache": True, "cache_params": {"type": "local", "mode": "off"}})
    assert "litellm_settings.cache_params.mode" in str(info.value)


def test_max_connections_and_provider_specific_flag_load(tmp_path, monkeypatch):
    """``max_connections`` bounds LiteLLM's Redis pool; trioproxy's cache uses one pipelined
    connection per process, within any bound. The provider-specific flag loads: trioproxy's key
    always holds every field sent upstream."""
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    config = parse_config({"model_list": [], "litellm_settings": {
        "cache": True, "cache_params": {"type": "redis", "max_connections": 100},
        "enable_caching_on_provider_specific_optional_params": True}}, "c.yaml", tmp_path)
    assert config.litellm.cache.type == "redis"
    assert not [w for w in config.warnings if "ignored" in w]
    with pytest.raises(ConfigError) as info:
        parse_config({"model_list": [], "litellm_settings": {
            "cache": True, "cache_params": {"type": "redis", "max_connections": 0}}}, "c.yaml", tmp_path)
    assert "litellm_settings.cache_params.max_connections" in str(info.value)


def test_provider_specific_params_are_in_the_key():
    from trioproxy.caching.response_cache import cache_key
    assert cache_key("", "chat/completions", chat(top_k=3)) != cache_key("", "chat/completions", chat(top_k=4))


def test_cache_true_with_the_server_in_the_environment_is_shared_by_instances(start_proxy, fake_upstream,
                                                                              redis_url):
    """LiteLLM's docs config: ``cache: true`` and nothing else; the server in REDIS_HOST/REDIS_PORT.
    One instance's answer is a hit on the other (both read the same Redis from the environment)."""
    parts = urlsplit(redis_url)
    env = {"REDIS_HOST": parts.hostname or "127.0.0.1", "REDIS_PORT": str(parts.port)}
    marker = uuid.uuid4().hex
    config = {"model_list": [upstream_model(fake_upstream)], "litellm_settings": {"cache": True},
              "general_settings": {"master_key": MASTER_KEY}}
    fake_upstream.set_behavior("up-model", Behavior(content="from the environment's Redis"))
    a = start_proxy(config, env=env, subdir="a")
    b = start_proxy(config, env=env, subdir="b")
    messages = [{"role": "user", "content": f"shared {marker}"}]
    first = openai.OpenAI(base_url=a.url, api_key=MASTER_KEY, max_retries=0).chat.completions \
        .with_raw_response.create(model="gpt-test", messages=messages)
    client_b = openai.OpenAI(base_url=b.url, api_key=MASTER_KEY, max_retries=0)
    for _ in range(50):   # the store is written after the answer: wait for it, not for a time
        second = client_b.chat.completions.with_raw_response.create(model="gpt-test", messages=messages)
        if "x-litellm-cache-key" in second.headers:
            break
    assert "x-litellm-cache-key" not in first.headers
    assert "x-litellm-cache-key" in second.headers
    assert second.parse().choices[0].message.content == "from the environment's Redis"


def test_cache_true_with_redis_in_the_environment_loads_without_a_server(start_proxy, fake_upstream):
    """Loading connects to nothing: with REDIS_HOST naming a port nobody listens on, `trioproxy run`
    starts and answers from the upstream (misses, never errors)."""
    from support.coordination_support import free_port

    config = {"model_list": [upstream_model(fake_upstream)], "litellm_settings": {"cache": True},
              "general_settings": {"master_key": MASTER_KEY}}
    fake_upstream.set_behavior("up-model", Behavior(content="no Redis needed to start"))
    proxy = start_proxy(config, env={"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(free_port())})
    client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)
    answer = client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "no Redis needed to start"
