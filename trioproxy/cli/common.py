"""What every command shares: logging setup, and reading the config as ``run`` and ``check`` do."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys

from ..config import ConfigError, ProxyConfig, load_config, load_default_config
from ..secret_managers.kms_env import decrypt_kms_environment

__all__ = ["load", "setup_logging"]


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from ..observability.logfmt import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # one line per request (the structured record, see docs/logging.md): for log shippers, so on
    # with --log-format json; in text logs only at --log-level debug
    requests_level = logging.INFO if fmt == "json" or level == "debug" else logging.WARNING
    logging.getLogger("trioproxy.requests").setLevel(requests_level)


def load(path: str | None) -> ProxyConfig:
    """The config. Raises ConfigError with every problem: the config's and, when it has problems,
    its handlers' and logging callbacks' too (one run lists them all, issue #15)."""
    from ..proxy import config_problems

    # secret managers (docs/secrets.md): USE_AWS_KMS decrypts LITELLM_SECRET_AWS_KMS_<NAME> into <NAME> first
    decrypted = decrypt_kms_environment()
    try:
        config = load_config(path) if path else load_default_config()
    except ConfigError as exc:
        raise ConfigError(config_problems(exc)) from None
    if decrypted:
        # the decrypted values are secrets wherever they end up: the composition root's scrubber learns them
        values = tuple(os.environ[name] for name in decrypted if os.environ.get(name))
        config = dataclasses.replace(config, managed_secrets=config.managed_secrets + values)
    return config


