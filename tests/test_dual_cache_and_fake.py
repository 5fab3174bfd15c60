"""``DualCache`` (the cache handed to pre-call hooks) and the fake provider's knobs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import trio

from trioproxy import DualCache
from trioproxy.config import parse_config
from trioproxy.errors import RateLimitError
from trioproxy.upstream.fake import FakeProvider


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A hand-driven monotonic clock for the cache's TTLs."""
    now = [1000.0]
    monkeypatch.setattr("trioproxy.caching.dual_cache.time.monotonic", lambda: now[0])
    return now


def test_sync_get_set_ttl_and_delete(clock):
    cache = DualCache()
    assert cache.get_cache("missing") is None
    cache.set_cache("k", {"v": 1}, ttl=10)
    assert cache.get_cache(key="k") == {"v": 1}
    clock[0] += 9.999
    assert cache.get_cache("k") == {"v": 1}
    clock[0] += 0.001
    assert cache.get_cache("k") is None                       # expired exactly at its TTL
    cache.set_cache("k", 1)
    cache.delete_cache("k")
    assert cache.get_cache("k") is None


def test_increment_keeps_the_window(clock):
    cache = DualCache()
    assert cache.increment_cache("n", 1, ttl=60) == 1
    clock[0] += 30
    assert cache.increment_cache("n", 2) == 3                 # no TTL given: the first one's window stays
    clock[0] += 30
    assert cache.get_cache("n") is None


async def test_async_forms_share_the_store(clock):
    cache = DualCache(default_ttl=5)
    await cache.async_set_cache("a", "x")
    assert cache.get_cache("a") == "x"
    assert await cache.async_increment_cache("b", 2) == 2
    assert await cache.async_batch_get_cache(["a", "b", "c"]) == ["x", 2, None]
    clock[0] += 5
    assert await cache.async_get_cache("a") is None            # the default TTL applies


def test_max_size_evicts_expired_then_oldest(clock):
    cache = DualCache(max_size=2)
    cache.set_cache("old", 1, ttl=1)
    cache.set_cache("keep", 2)
    clock[0] += 2
    cache.set_cache("new", 3)                                  # "old" expired: it goes first
    assert cache.get_cache("keep") == 2 and cache.get_cache("new") == 3
    cache.set_cache("newest", 4)                               # full: the oldest entry goes
    assert cache.get_cache("keep") is None and len(cache) == 2


def _deployment(**params):
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/fm", **params}}]}
    return parse_config(raw, "<test>", Path.cwd()).deployments[0]


async def test_fake_error_injection_is_deterministic():
    provider = FakeProvider()
    deployment = _deployment(fail_rate=0.25, fail_status=429)
    outcomes = []
    for _ in range(8):
        try:
            await provider.send(deployment, "chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
            outcomes.append("ok")
        except RateLimitError:
            outcomes.append("429")
    assert outcomes == ["ok", "ok", "ok", "429"] * 2              # every 4th request fails


async def test_fake_latency_and_mock_response(autojump_clock):
    provider = FakeProvider()
    deployment = _deployment(latency=2.5, mock_response="fixed answer", chunk_latency=0.5)
    response = await provider.send(deployment, "chat/completions", {"messages": []})
    assert trio.current_time() == pytest.approx(2.5)
    assert orjson.loads(response.body)["choices"][0]["message"]["content"] == "fixed answer"
    stream = await provider.open_stream(deployment, "chat/completions", {"messages": []})
    assert trio.current_time() == pytest.approx(5.0)
    pieces = [piece async for piece in stream.aiter_bytes()]
    assert pieces[-1] == b"data: [DONE]\n\n"
    assert trio.current_time() == pytest.approx(5.0 + 0.5 * (len(pieces) - 1))
