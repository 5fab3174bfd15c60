"""Configuration (temporary re-exports while the package is split)."""

from .schema import (
    DEFAULT_MAX_REQUEST_SIZE_MB,
    DEFAULT_REQUEST_HEADER_TIMEOUT,
    MODEL_PARAMS,
    ConfigError,
    Deployment,
    GuardrailSpec,
    ProxyConfig,
    load_config,
    load_default_config,
    parse_config,
    size_limit_bytes,
)

__all__ = [
    "DEFAULT_MAX_REQUEST_SIZE_MB",
    "DEFAULT_REQUEST_HEADER_TIMEOUT",
    "MODEL_PARAMS",
    "ConfigError",
    "Deployment",
    "GuardrailSpec",
    "ProxyConfig",
    "load_config",
    "load_default_config",
    "parse_config",
    "size_limit_bytes",
]
