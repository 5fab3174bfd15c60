"""``trioproxy check CONFIG``: validate, print the models (keys masked) and the hooks that will run."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..config import ConfigError, ProxyConfig
from ..masking import SecretScrubber, mask_secret
from ..proxy import check_startup, describe_redis, redis_settings
from .common import load

if TYPE_CHECKING:
    from ..coordination.settings import RedisSettings

__all__ = ["check"]


def _describe(config: ProxyConfig) -> list[str]:
    lines = [f"config: {config.source}"]
    lines.append("models:")
    for name, group in config.model_groups.items():
        for d in group:
            key = f", api_key {mask_secret(d.api_key)}" if d.api_key else ""
            extra = f", extra params {sorted(d.extra_params)}" if d.extra_params else ""
            lines.append(f"  {name:<24} -> {d.label}{key}{extra}")
            route = "native (forwarded as is)" if d.responses_native else "translated to chat completions"
            lines.append(f"  {'':<24}    /v1/responses: {route}: {d.responses_route_reason}")
    master = config.master_key
    lines.append(f"master key: {mask_secret(master) if master else 'NONE (the proxy is open to anyone who can reach it)'}")
    lines.append(_database(config))
    lines.append(_response_cache(config))
    if config.guardrails:
        lines.append("guardrails:")
        for g in config.guardrails:
            lines.append(f"  {g.name:<24} {g.class_path} mode={','.join(g.modes)} default_on={g.default_on}"
                         f" stream_mode={g.stream_mode}")
    return lines


def _response_cache(config: ProxyConfig) -> str:
    """The response cache: off, local, or the Redis server (without its password)."""
    from ..coordination.redis import RedisURL

    cache = config.litellm.cache
    if not cache.enabled:
        return "response cache: off"
    where = "in this process (each worker its own)"
    if cache.type == "redis" and cache.redis_url is not None:
        try:
            where = f"Redis {RedisURL.parse(cache.redis_url).address} (shared)"
        except ValueError as exc:
            where = f"Redis, invalid URL ({exc})"
    namespace = f", namespace {cache.namespace!r}" if cache.namespace else ""
    return f"response cache: {where}, ttl {cache.ttl:g} s{namespace}"


def _database(config: ProxyConfig) -> str:
    """The store, its URL with the password hidden, and whether changes are audited."""
    from ..store import InvalidDatabaseURL, parse_database_url

    url = config.database_url
    if url is None:
        return ("database: NONE (virtual keys and the management routes need general_settings.database_url; "
                "the master key works)")
    try:
        shown = parse_database_url(url).redacted()
    except InvalidDatabaseURL as exc:
        return f"database: invalid URL ({exc})"
    audit = "on" if config.litellm.store_audit_logs else "off (litellm_settings.store_audit_logs)"
    return (f"database: {shown}; audit log: {audit}; budgets, rate limits and spend records: on "
            "(limits_and_budgets in the pre-call phase, docs/spend.md)")


def _shared_state(config: ProxyConfig, shared: RedisSettings | None) -> str:
    """Where the shared state is (docs/deploy.md), without the password."""
    if shared is None:
        return "shared state: none (one process; Redis turns it on: general_settings.coordination_redis, docs/deploy.md)"
    if config.database_url is None:
        return f"shared state: none (Redis from {shared.source}, but without a database there is nothing to share)"
    return f"shared state: Redis {describe_redis(shared)}"


def check(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
        handlers, logging_callbacks = check_startup(config)
        shared = redis_settings(config)
    except ConfigError as exc:
        print("config is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    scrub = SecretScrubber(config.secrets() + (shared.secrets if shared else [])).scrub
    for line in _describe(config):
        print(scrub(line))
    print(scrub(_shared_state(config, shared)))
    print("hooks, in the order they run (phase, method, handlers):")
    for line in handlers.plan.describe():
        print(line)
    if logging_callbacks:
        print("logging callbacks: " + ", ".join(f"{c.name} ({c.event})" for c in logging_callbacks))
    for warning in config.warnings:
        print(f"warning: {warning}")
    for note in config.notes:
        print(f"note: {note}")
    print("config OK")
    return 0
