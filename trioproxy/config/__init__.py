"""Configuration: the YAML file (the LiteLLM proxy's layout) → typed, frozen values.

Public API of the package (everything else in it is private by convention):
:func:`load_config`, :func:`load_default_config`, :func:`parse_config`, :class:`ConfigError`,
:class:`ProxyConfig` with its sections (:class:`GeneralSettings`, :class:`LitellmSettings`,
:class:`RouterSettings`, :class:`HttpPoolSettings`, :class:`CacheSettings`), :class:`Deployment`,
:class:`GuardrailSpec`, :class:`PassThroughEndpoint`, :func:`size_limit_bytes` (MiB → bytes, the one conversion) and
``MODEL_PARAMS`` (the ``litellm_params`` section of the schema, read by the corpus report),
``CACHED_CALL_TYPES`` / ``UNSERVED_CALL_TYPES`` (the cache's call type names, LiteLLM's),
``builtin_guardrail_message`` / ``builtin_callback_message`` (what to say about a LiteLLM built-in).

Modules: ``validators.py`` (a tiny schema language), ``schema.py`` (the sections: the reference in
code), ``deployment_params.py`` / ``moderation_keys.py`` (the key lists the schema accepts),
``litellm_catalog.py`` (what LiteLLM's configs name that trioproxy does not have, and the message),
``model.py`` (the typed result, each default written once), ``env.py`` (``os.environ/NAME``),
``build.py`` (the order: environment, secret managers, validation, typed values), ``providers.py``
(the native providers' prefixes and settings, as data), ``live.py`` (:class:`LiveSecrets`: deployments
with the values a secret refresh read).

May import: ``errors``, ``masking``, ``secret_managers`` (resolving references while loading),
``upstream.routing`` (validating ``router_settings``: pure rules, a layer below this one).
"""

from ..errors import ConfigError
from .build import load_config, load_default_config, parse_config
from .litellm_catalog import (
    ALWAYS_ON_CALLBACKS,
    builtin_callback_message,
    builtin_guardrail_message,
)
from .model import (
    CacheSettings,
    Deployment,
    GeneralSettings,
    GuardrailSpec,
    HttpPoolSettings,
    LitellmSettings,
    PassThroughEndpoint,
    ProxyConfig,
    RouterSettings,
    size_limit_bytes,
)
from .schema import CACHED_CALL_TYPES, MODEL_PARAMS, UNSERVED_CALL_TYPES

__all__ = [
    "ALWAYS_ON_CALLBACKS",
    "CACHED_CALL_TYPES",
    "MODEL_PARAMS",
    "UNSERVED_CALL_TYPES",
    "builtin_callback_message",
    "builtin_guardrail_message",
    "CacheSettings",
    "ConfigError",
    "Deployment",
    "GeneralSettings",
    "GuardrailSpec",
    "HttpPoolSettings",
    "LitellmSettings",
    "PassThroughEndpoint",
    "ProxyConfig",
    "RouterSettings",
    "load_config",
    "load_default_config",
    "parse_config",
    "size_limit_bytes",
]
