"""Secrets that change while the proxy runs: the current value of each ``os.environ/NAME`` reference,
and a deployment as it is with those values.

The config is frozen: a deployment's ``api_key`` is the string read at startup. When the refresh
service (``secret_managers/refresh.py``) reads a rotated value, the composition root calls
:meth:`LiveSecrets.update`; the router asks :meth:`LiveSecrets.current` for every deployment it is
about to call, and gets the configured object itself while nothing it refers to changed, else a copy
with the new values (made once per change, then reused). So a request that starts after a refresh
uses the new key, a request already under way keeps the one it started with, and providers that
prepare a deployment once (``AdapterProvider.prepare``) see a new object and prepare it anew.

What is replaced: the ``litellm_params`` whose value was written ``os.environ/NAME``
(``Deployment.secret_refs``): ``api_key``, ``api_base`` and the native providers' settings
(``provider_params``: ``aws_secret_access_key``, ``azure_ad_token``…). Telling the scrubber about a
new value is the composition root's job (it owns the scrubber); an old value is never forgotten by it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .deployment_params import looks_like_credential
from .model import Deployment

__all__ = ["LiveSecrets"]


class LiveSecrets:
    """The current values of the config's ``os.environ/`` references (see the module docstring)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values: dict[str, str] = dict(values or {})
        #: bumped by every change: a cached deployment of an older version is rebuilt
        self.version = 0
        self._cache: dict[int, tuple[Deployment, int, Deployment]] = {}

    def value(self, name: str) -> str | None:
        return self._values.get(name)

    def update(self, name: str, value: str) -> bool:
        """``os.environ/name`` now reads ``value``; returns whether it changed."""
        if self._values.get(name) == value:
            return False
        self._values[name] = value
        self.version += 1
        return True

    def current(self, deployment: Deployment) -> Deployment:
        """``deployment`` with the current values of the references it was configured with."""
        if not deployment.secret_refs or not self.version:
            return deployment
        cached = self._cache.get(id(deployment))
        if cached is not None and cached[0] is deployment and cached[1] == self.version:
            return cached[2]
        result = self._apply(deployment)
        # keyed by the configured deployment (the reference keeps its id unique): bounded by the config
        self._cache[id(deployment)] = (deployment, self.version, result)
        return result

    def _apply(self, deployment: Deployment) -> Deployment:
        changes: dict[str, Any] = {}
        provider_params: dict[str, Any] = {}
        for key, name in deployment.secret_refs.items():
            value = self._values.get(name)
            if value is None:
                continue
            if key == "api_key":
                if value != deployment.api_key:
                    changes["api_key"] = value
            elif key == "api_base":
                base = value.rstrip("/") or None
                if base != deployment.api_base:
                    changes["api_base"] = base
            elif key in deployment.provider_params and deployment.provider_params[key] != value:
                provider_params[key] = value
        if provider_params:
            changes["provider_params"] = MappingProxyType({**deployment.provider_params, **provider_params})
            changes["secret_settings"] = deployment.secret_settings + tuple(
                v for k, v in provider_params.items() if looks_like_credential(k))
        return dataclasses.replace(deployment, **changes) if changes else deployment
