"""Which settings turn shared state on (coordination/settings.py): LiteLLM's names, in their order,
wrong values named precisely, and the password never in a repr."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from trioproxy.config import ConfigError, parse_config
from trioproxy.coordination.settings import describe, redis_settings_from
from trioproxy.proxy import build_shared_state


@dataclass
class Sections:
    general_settings: dict[str, Any] = field(default_factory=dict)
    router_settings: dict[str, Any] = field(default_factory=dict)
    litellm_settings: dict[str, Any] = field(default_factory=dict)


def test_nothing_configured_is_embedded_mode() -> None:
    assert redis_settings_from(Sections(), {}) is None


def test_coordination_redis_url() -> None:
    found = redis_settings_from(Sections({"coordination_redis": "redis://:s3cret@redis.internal:6380/2"}), {})
    assert found is not None
    assert (found.url.host, found.url.port, found.url.db, found.url.password) == ("redis.internal", 6380, 2, "s3cret")
    assert found.source == "general_settings.coordination_redis"
    assert found.timeout == 0.5 and found.failure_policy == "closed"
    assert "s3cret" not in repr(found) and "s3cret" not in describe(found)
    assert found.secrets == ["s3cret"]


def test_coordination_redis_mapping_and_knobs() -> None:
    found = redis_settings_from(Sections({
        "coordination_redis": {"host": "r1", "port": "6390", "password": "pw", "db": 3, "ssl": True},
        "coordination_failure_policy": "open", "coordination_redis_timeout": 0.25}), {})
    assert found is not None
    assert (found.url.host, found.url.port, found.url.db, found.url.tls) == ("r1", 6390, 3, True)
    assert found.fail_open and found.timeout == 0.25


def test_order_explicit_router_cache_environment() -> None:
    environ = {"REDIS_URL": "redis://env-url:1/0", "REDIS_HOST": "env-host"}
    router = {"redis_host": "router-host", "redis_port": 6381, "redis_password": "rp"}
    cache = {"type": "redis", "host": "cache-host", "port": 6382}
    both = Sections({"coordination_redis": "redis://explicit:6379"}, router, {"cache_params": cache})
    assert redis_settings_from(both, environ).url.host == "explicit"
    assert redis_settings_from(Sections({}, router, {"cache_params": cache}), environ).url.host == "router-host"
    assert redis_settings_from(Sections({}, {}, {"cache_params": cache}), environ).url.host == "cache-host"
    assert redis_settings_from(Sections(), environ).url.host == "env-url"
    only_host = redis_settings_from(Sections(), {"REDIS_HOST": "h", "REDIS_PORT": "7000", "REDIS_PASSWORD": "p"})
    assert (only_host.url.host, only_host.url.port, only_host.url.password, only_host.source) == (
        "h", 7000, "p", "$REDIS_HOST")
    assert redis_settings_from(Sections({}, {"redis_url": "rediss://u:p@ru:1/4"}), {}).url.tls


def test_local_cache_params_do_not_turn_it_on() -> None:
    assert redis_settings_from(Sections({}, {}, {"cache_params": {"type": "local"}}), {}) is None


def test_false_turns_it_off_even_with_the_environment() -> None:
    assert redis_settings_from(Sections({"coordination_redis": False}), {"REDIS_URL": "redis://x:1"}) is None


@pytest.mark.parametrize(("sections", "environ", "message"), [
    (Sections({"coordination_redis": "http://x"}), {}, "general_settings.coordination_redis: Redis URL must start"),
    (Sections({}, {"redis_host": "h", "redis_port": "six"}), {}, "router_settings.redis_host: port must be a number"),
    (Sections(), {"REDIS_HOST": "h", "REDIS_PORT": "0"}, "$REDIS_HOST: port must be a number"),
    (Sections({"coordination_redis": {"port": 1}}), {}, "a Redis host (or url) is required"),
    (Sections({"coordination_redis": "redis://x", "coordination_failure_policy": "maybe"}), {},
     "coordination_failure_policy: expected 'closed' or 'open'"),
])
def test_wrong_values_name_the_setting(sections: Sections, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")):
        redis_settings_from(sections, environ)


def _config(**sections: Any) -> Any:
    return parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}], **sections},
                        "<test>", __import__("pathlib").Path("."))


def test_the_config_accepts_litellm_names_and_hides_the_password() -> None:
    config = _config(router_settings={"redis_host": "r", "redis_port": "6379", "redis_password": "topsecret"},
                     general_settings={"coordination_failure_policy": "open"})
    assert not [w for w in config.warnings if "redis" in w]
    assert "topsecret" in config.secrets()
    found = redis_settings_from(config, {})
    assert found is not None and found.url.password == "topsecret" and found.fail_open


def test_a_bad_redis_setting_is_a_startup_error() -> None:
    config = _config(general_settings={"coordination_redis": "http://nope", "database_url": "sqlite:///x.db"})
    with pytest.raises(ConfigError, match="coordination_redis"):
        build_shared_state(config, {})
    with pytest.raises(ConfigError, match="coordination_redis: expected a Redis URL"):
        _config(general_settings={"coordination_redis": 12})


def test_without_a_database_nothing_is_shared() -> None:
    assert build_shared_state(_config(general_settings={"coordination_redis": "redis://r:1"}), {}) is None
