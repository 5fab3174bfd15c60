"""The disk response cache (LiteLLM's ``cache_params.type: disk``): entries round-trip through the
directory across instances, ``s-maxage`` reads the stored time, foreign or broken entries are
misses, a directory that cannot be opened leaves the proxy serving uncached; the config's
``disk_cache_dir`` (LiteLLM's default, ``~``, relative paths); and through real ``trioproxy run``
processes: a hit, and a hit after a restart."""

from __future__ import annotations

import time
from pathlib import Path

import diskcache
import openai
import pytest
import trio

from conftest import MASTER_KEY, upstream_model
from support.fake_upstream import Behavior
from trioproxy.caching.disk_cache import DiskResponseCache
from trioproxy.config import ConfigError, parse_config


async def _started(nursery: trio.Nursery, directory: Path) -> DiskResponseCache:
    cache = DiskResponseCache(directory)
    await nursery.start(cache.run)
    return cache


async def test_entries_survive_the_instance_that_wrote_them(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        writer = await _started(nursery, tmp_path / "c")
        writer.set("k", b'{"answer": 1}', 600)
        await writer.drain(10)              # stores what was queued, then closes the directory
        assert writer.stored == 1 and writer.dropped == 0
        reader = await _started(nursery, tmp_path / "c")
        assert await reader.get("k") == b'{"answer": 1}'
        assert await reader.get("missing") is None
        await reader.drain(10)


async def test_s_maxage_and_foreign_entries(tmp_path: Path) -> None:
    raw = diskcache.Cache(str(tmp_path / "c"))
    raw.set("old", b"%.6f:" % (time.time() - 100) + b"stale", expire=600)
    raw.set("foreign", b"written by someone else", expire=600)
    raw.set("pickled", {"not": "bytes"}, expire=600)
    raw.close()
    async with trio.open_nursery() as nursery:
        cache = await _started(nursery, tmp_path / "c")
        assert await cache.get("old", max_age=1000) == b"stale"
        assert await cache.get("old", max_age=10) is None
        assert await cache.get("foreign") is None and await cache.get("pickled") is None
        await cache.drain(10)


async def test_ttl_is_diskcaches_expiry(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        cache = await _started(nursery, tmp_path / "c")
        cache.set("k", b"v", 600)
        cache.set("zero", b"v", 0)          # a ttl of 0 stores nothing
        await cache.drain(10)
    raw = diskcache.Cache(str(tmp_path / "c"))
    value, expire_time = raw.get("k", expire_time=True)
    assert value.endswith(b":v") and 590 < expire_time - time.time() <= 600
    assert raw.get("zero") is None
    raw.close()


async def test_a_directory_that_cannot_be_opened_means_misses(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    async with trio.open_nursery() as nursery:
        cache = await _started(nursery, blocker / "cache")
        cache.set("k", b"v", 60)
        assert await cache.get("k") is None
        await cache.drain(1)
    assert "cannot open the disk cache" in caplog.text


def test_disk_cache_dir_is_litellms_default_relative_to_the_config(tmp_path: Path, monkeypatch) -> None:
    def directory(**params) -> str:
        config = parse_config({"model_list": [], "litellm_settings": {
            "cache": True, "cache_params": {"type": "disk", **params}}}, "c.yaml", tmp_path)
        assert config.litellm.cache.type == "disk"
        return config.litellm.cache.disk_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert directory() == str(tmp_path / ".litellm_cache")
    assert directory(disk_cache_dir="cache/here") == str(tmp_path / "cache" / "here")
    assert directory(disk_cache_dir="/tmp/litellm-cache") == "/tmp/litellm-cache"
    assert directory(disk_cache_dir="~/.litellm/cache") == str(tmp_path / "home" / ".litellm" / "cache")
    assert not (tmp_path / ".litellm_cache").exists()          # loading touches no disk
    with pytest.raises(ConfigError) as info:
        parse_config({"model_list": [], "litellm_settings": {"cache": True, "cache_params": {
            "type": "disk", "disk_cache_dir": 3}}}, "c.yaml", tmp_path)
    assert "litellm_settings.cache_params.disk_cache_dir" in str(info.value)


def _ask(proxy, content: str):
    client = openai.OpenAI(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)
    return client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": content}])


def test_trioproxy_run_answers_from_the_disk_and_after_a_restart(start_proxy, fake_upstream, tmp_path) -> None:
    """LiteLLM's docs config (caching.md): ``type: disk`` with ``disk_cache_dir``."""
    config = {"model_list": [upstream_model(fake_upstream)], "general_settings": {"master_key": MASTER_KEY},
              "litellm_settings": {"cache": True, "cache_params": {
                  "type": "disk", "disk_cache_dir": str(tmp_path / "litellm-cache"), "ttl": 600}}}
    fake_upstream.set_behavior("up-model", Behavior(content="kept on disk"))
    first = start_proxy(config, subdir="first")
    assert "x-litellm-cache-key" not in _ask(first, "remember me").headers
    assert first.terminate() == 0           # a graceful stop stores the queued writes
    second = start_proxy(config, subdir="second")
    hit = _ask(second, "remember me")
    assert "x-litellm-cache-key" in hit.headers
    assert hit.parse().choices[0].message.content == "kept on disk"
    assert len(fake_upstream.requests) == 1
    assert "x-litellm-cache-key" not in _ask(second, "something else").headers
