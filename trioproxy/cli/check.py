"""``trioproxy check CONFIG``: validate, print the models (keys masked) and the hooks that will run."""

from __future__ import annotations

import argparse
import sys

from ..config import ConfigError, ProxyConfig
from ..masking import SecretScrubber, mask_secret
from ..proxy import check_handlers
from .common import load

__all__ = ["check"]


def _describe(config: ProxyConfig) -> list[str]:
    lines = [f"config: {config.source}"]
    lines.append("models:")
    for name, group in config.model_groups.items():
        for d in group:
            key = f", api_key {mask_secret(d.api_key)}" if d.api_key else ""
            extra = f", extra params {sorted(d.extra_params)}" if d.extra_params else ""
            lines.append(f"  {name:<24} -> {d.label}{key}{extra}")
    master = config.master_key
    lines.append(f"master key: {mask_secret(master) if master else 'NONE (the proxy is open to anyone who can reach it)'}")
    if config.guardrails:
        lines.append("guardrails:")
        for g in config.guardrails:
            lines.append(f"  {g.name:<24} {g.class_path} mode={','.join(g.modes)} default_on={g.default_on}"
                         f" stream_mode={g.stream_mode}")
    return lines


def check(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
        handlers, logging_callbacks = check_handlers(config)
    except ConfigError as exc:
        print("config is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    scrub = SecretScrubber(config.secrets()).scrub
    for line in _describe(config):
        print(scrub(line))
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
