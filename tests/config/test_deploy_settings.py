"""LiteLLM's settings of a deployment with many processes: the database in parts, the settings the
spend writer and the key cache read, and the Redis response cache's server (docs/deploy.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trioproxy.config import ConfigError
from trioproxy.config.build import cache_redis_url, database_url_from_parts, parse_config

MODEL = {"model_name": "m", "litellm_params": {"model": "fake/m"}}


def _parse(section: str, values: dict, tmp_path: Path):
    return parse_config({"model_list": [MODEL], section: values}, "c.yaml", tmp_path)


def test_database_url_from_litellms_parts() -> None:
    env = {"DATABASE_HOST": "db.internal:5433", "DATABASE_USERNAME": "llm proxy", "DATABASE_PASSWORD": "p@ss/w:rd",
           "DATABASE_NAME": "litellm"}
    assert database_url_from_parts(env) == "postgresql://llm%20proxy:p%40ss%2Fw%3Ard@db.internal:5433/litellm"
    assert database_url_from_parts({**env, "DATABASE_SCHEMA": "proxy"}).endswith(
        "/litellm?options=-csearch_path%3Dproxy")
    assert database_url_from_parts({k: v for k, v in env.items() if k != "DATABASE_PASSWORD"}) == \
        "postgresql://llm%20proxy@db.internal:5433/litellm"
    for missing in ("DATABASE_HOST", "DATABASE_USERNAME", "DATABASE_NAME"):
        assert database_url_from_parts({k: v for k, v in env.items() if k != missing}) is None


def test_database_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The config's database_url, else $DATABASE_URL, else the parts; the password is a secret."""
    monkeypatch.setenv("DATABASE_HOST", "db")
    monkeypatch.setenv("DATABASE_USERNAME", "u")
    monkeypatch.setenv("DATABASE_PASSWORD", "from-parts-secret")
    monkeypatch.setenv("DATABASE_NAME", "n")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = _parse("general_settings", {}, tmp_path)
    assert config.database_url == "postgresql://u:from-parts-secret@db/n"
    assert "from-parts-secret" in config.secrets()
    monkeypatch.setenv("DATABASE_URL", "postgresql://env/x")
    assert _parse("general_settings", {}, tmp_path).database_url == "postgresql://env/x"
    assert _parse("general_settings", {"database_url": "postgresql://cfg/y"}, tmp_path).database_url == \
        "postgresql://cfg/y"


def test_litellms_database_settings_are_carried_with_their_meaning(tmp_path: Path) -> None:
    general = _parse("general_settings", {
        "database_connection_pool_limit": 12, "proxy_batch_write_at": 2.5, "allow_requests_on_db_unavailable": True,
        "disable_spend_logs": True, "user_api_key_cache_ttl": 5}, tmp_path).general
    assert (general.database_connection_pool_limit, general.proxy_batch_write_at,
            general.allow_requests_on_db_unavailable, general.disable_spend_logs,
            general.user_api_key_cache_ttl) == (12, 2.5, True, True, 5)
    defaults = _parse("general_settings", {}, tmp_path).general
    assert (defaults.proxy_batch_write_at, defaults.allow_requests_on_db_unavailable,
            defaults.disable_spend_logs) == (None, False, False)     # None: the writer's 0.2 s (docs/spend.md)
    with pytest.raises(ConfigError) as info:
        _parse("general_settings", {"proxy_batch_write_at": 0, "disable_spend_logs": "sometimes"}, tmp_path)
    text = str(info.value)
    assert "general_settings.proxy_batch_write_at: expected a number >= 0.001" in text
    assert "general_settings.disable_spend_logs: expected true or false" in text


def test_redis_cache_server_from_cache_params_or_litellms_variables() -> None:
    assert cache_redis_url({"host": "cache", "port": 6380, "password": "s3:cret"}, {}) == \
        "redis://:s3%3Acret@cache:6380"
    assert cache_redis_url({"host": "cache", "username": "proxy", "password": "pw", "ssl": True}, {}) == \
        "rediss://proxy:pw@cache:6379"
    assert cache_redis_url({"url": "redis://x:1/2"}, {"REDIS_HOST": "ignored"}) == "redis://x:1/2"
    assert cache_redis_url({}, {"REDIS_HOST": "r", "REDIS_PORT": "7000", "REDIS_PASSWORD": "pw"}) == \
        "redis://:pw@r:7000"
    assert cache_redis_url({}, {"REDIS_URL": "redis://u/3", "REDIS_HOST": "r"}) == "redis://u/3"
    assert cache_redis_url({}, {}) is None


def test_redis_cache_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_HOST", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    config = _parse("litellm_settings", {"cache": True, "cache_params": {
        "type": "redis", "host": "cache", "port": "6379", "password": "cache-secret", "ttl": 30, "namespace": "ns",
        "supported_call_types": ["acompletion"]}}, tmp_path)
    cache = config.litellm.cache
    assert (cache.type, cache.redis_url, cache.ttl, cache.namespace) == ("redis", "redis://:cache-secret@cache:6379",
                                                                        30, "ns")
    assert "cache-secret" in config.secrets()
    with pytest.raises(ConfigError) as info:
        _parse("litellm_settings", {"cache": True, "cache_params": {"type": "redis"}}, tmp_path)
    assert "litellm_settings.cache_params.type: type: redis needs the server: cache_params.host" in str(info.value)
    local = _parse("litellm_settings", {"cache": True, "cache_params": {"type": "local", "host": "cache"}}, tmp_path)
    assert local.litellm.cache.redis_url is None
    assert any("litellm_settings.cache_params.host: a Redis server setting, ignored: the cache is type: local" in w
               for w in local.warnings)


def test_a_redis_url_of_another_scheme_is_refused_without_showing_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _parse("litellm_settings", {"cache": True, "cache_params": {"type": "redis", "url": "http://u:pw-secret@h"}},
               tmp_path)
    assert "litellm_settings.cache_params.url: a Redis URL starts with redis://" in str(info.value)
    assert "pw-secret" not in str(info.value)
