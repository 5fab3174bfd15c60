"""Which Redis the proxy shares its state through, from LiteLLM's settings: one function.

Issue #13: *any one* of these turns on shared limits, budgets, revocation and blocks, because
LiteLLM users configure Redis in whichever place their docs showed them and expect the whole
proxy to share it. The first one present wins, in this order (an explicit setting of ours, then
the router's, then the response cache's, then the environment):

1. ``general_settings.coordination_redis`` — a URL (``redis://``, ``rediss://``, ``unix://``) or a
   mapping ``{url}`` / ``{host, port, password, username, db, ssl}``; ``false`` turns shared state
   off even when one of the others is set (a proxy that must stay alone on a shared machine).
2. ``router_settings.redis_url``, else ``router_settings.redis_host`` / ``redis_port`` /
   ``redis_password`` (LiteLLM's router uses them for routing only; here the whole proxy does).
3. ``litellm_settings.cache_params`` with ``type: redis`` (``url``/``redis_url``, or ``host``,
   ``port``, ``password``, ``username``, ``ssl``): the response cache's Redis.
4. ``$REDIS_URL``, else ``$REDIS_HOST`` / ``$REDIS_PORT`` / ``$REDIS_PASSWORD`` (``$REDIS_USERNAME``,
   ``$REDIS_SSL``) — LiteLLM's variables.

Besides where, two knobs of ours: ``general_settings.coordination_failure_policy`` (``closed``, the
default: limits and budgets answer 503 while Redis cannot; ``open``: admit unchecked, logged and
counted) and ``general_settings.coordination_redis_timeout`` (seconds a Redis call may take, 0.5 by
default: a request is answered within 1 s during an outage).

The function reads plain mappings (``config.general_settings`` …) so this package stays below
``config`` in the layer table; ``proxy.py`` turns a :class:`ValueError` into a startup error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .redis import DEFAULT_TIMEOUT, RedisURL

__all__ = ["FailurePolicy", "RedisSettings", "describe", "redis_settings_from"]

FailurePolicy = Literal["closed", "open"]

#: values of ``$REDIS_SSL`` / ``ssl`` that mean TLS (LiteLLM reads the variable as a boolean string)
_TRUE = frozenset({"1", "true", "yes", "on"})


class _Settings(Protocol):
    """What :func:`redis_settings_from` reads of a ``ProxyConfig`` (its validated YAML sections)."""

    @property
    def general_settings(self) -> Mapping[str, Any]: ...

    @property
    def router_settings(self) -> Mapping[str, Any]: ...

    @property
    def litellm_settings(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class RedisSettings:
    """Where the shared state lives and how the proxy behaves when it cannot be reached.

    ``source`` names the setting that turned it on (for the startup log and ``trioproxy check``);
    ``repr`` never shows the password (``RedisURL`` hides it).
    """

    url: RedisURL
    source: str
    timeout: float = DEFAULT_TIMEOUT
    failure_policy: FailurePolicy = "closed"

    @property
    def fail_open(self) -> bool:
        return self.failure_policy == "open"

    @property
    def secrets(self) -> list[str]:
        """What the secret scrubber must hide."""
        return [self.url.password] if self.url.password else []


def redis_settings_from(config: _Settings, environ: Mapping[str, str]) -> RedisSettings | None:
    """The shared-state Redis the config (or the environment) names, or ``None`` (embedded mode).

    Raises :class:`ValueError` naming the setting that is wrong (a port that is not a number, a URL
    with another scheme, a policy other than ``closed``/``open``).
    """
    general = config.general_settings
    found = _locate(general, config.router_settings, config.litellm_settings, environ)
    if found is None:
        return None
    url, source = found
    policy = general.get("coordination_failure_policy", "closed")
    if policy not in ("closed", "open"):
        raise ValueError(f"general_settings.coordination_failure_policy: expected 'closed' or 'open', got {policy!r}")
    timeout = general.get("coordination_redis_timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 10:
        raise ValueError("general_settings.coordination_redis_timeout: expected seconds, more than 0 and at most "
                         f"10, got {timeout!r}")
    return RedisSettings(url=url, source=source, timeout=float(timeout), failure_policy=policy)


def _locate(general: Mapping[str, Any], router: Mapping[str, Any], litellm: Mapping[str, Any],
            environ: Mapping[str, str]) -> tuple[RedisURL, str] | None:
    explicit = general.get("coordination_redis")
    if explicit is False:
        return None
    if explicit is not None and explicit is not True:
        where = "general_settings.coordination_redis"
        if isinstance(explicit, str):
            return _parse(explicit, where), where
        if isinstance(explicit, Mapping):
            return _from_parts(explicit, where), where
        raise ValueError(f"{where}: expected a Redis URL, a mapping (host, port, password …) or false, "
                         f"got {type(explicit).__name__}")
    if router.get("redis_url"):
        return _parse(str(router["redis_url"]), "router_settings.redis_url"), "router_settings.redis_url"
    if router.get("redis_host"):
        parts = {"host": router["redis_host"], "port": router.get("redis_port"),
                 "password": router.get("redis_password"), "username": router.get("redis_username")}
        return _from_parts(parts, "router_settings.redis_host"), "router_settings.redis_host"
    cache = litellm.get("cache_params")
    if isinstance(cache, Mapping) and cache.get("type") == "redis":
        where = "litellm_settings.cache_params"
        if cache.get("host") or cache.get("url") or cache.get("redis_url"):
            return _from_parts(cache, where), where
    if environ.get("REDIS_URL"):
        return _parse(environ["REDIS_URL"], "$REDIS_URL"), "$REDIS_URL"
    if environ.get("REDIS_HOST"):
        parts = {"host": environ["REDIS_HOST"], "port": environ.get("REDIS_PORT"),
                 "password": environ.get("REDIS_PASSWORD"), "username": environ.get("REDIS_USERNAME"),
                 "ssl": environ.get("REDIS_SSL")}
        return _from_parts(parts, "$REDIS_HOST"), "$REDIS_HOST"
    return None


def _parse(url: str, where: str) -> RedisURL:
    try:
        return RedisURL.parse(url.strip())
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _from_parts(parts: Mapping[str, Any], where: str) -> RedisURL:
    """``{url}`` or ``{host, port, password, username, db, ssl}`` → :class:`RedisURL`."""
    url = parts.get("url") or parts.get("redis_url")
    if url:
        return _parse(str(url), where)
    host = parts.get("host")
    if not isinstance(host, str) or not host.strip():
        raise ValueError(f"{where}: a Redis host (or url) is required")
    port = parts.get("port")
    try:
        port_number = 6379 if port in (None, "") else int(port)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: port must be a number between 1 and 65535, got {port!r}") from None
    if isinstance(port, bool) or not 0 < port_number < 65536:
        raise ValueError(f"{where}: port must be a number between 1 and 65535, got {port!r}")
    db = parts.get("db", 0)
    if isinstance(db, bool) or not isinstance(db, int | str) or not str(db).isdigit():
        raise ValueError(f"{where}: db must be a number ≥ 0, got {db!r}")
    tls = str(parts.get("ssl") or "").strip().lower() in _TRUE or parts.get("ssl") is True
    password = parts.get("password")
    username = parts.get("username")
    return RedisURL(host=host.strip(), port=port_number, db=int(db),
                    username=str(username) if username else None,
                    password=str(password) if password not in (None, "") else None, tls=tls)


def describe(settings: RedisSettings) -> str:
    """One line for the log and ``trioproxy check`` (no password)."""
    auth = " (password set)" if settings.url.password else ""
    return (f"{settings.url.address}{auth} from {settings.source}; timeout {settings.timeout:g} s, "
            f"fail {settings.failure_policy}")

