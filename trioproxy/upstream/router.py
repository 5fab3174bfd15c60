"""Choosing a deployment for a model name, and retrying on another when one fails.

Several deployments under one ``model_name`` are load-balanced by weight (``simple-shuffle``). A
deployment that fails with a connection error, a timeout while connecting, or a 5xx *before any
byte reached the client* is retried on another (``num_retries``, default 2); the deployments not yet
tried are preferred. Client errors (4xx) are never retried: the same request would fail again.

The router only ever runs before the first byte of the answer is sent: for streams, "success" is
the upstream's status line, so a stream is never retried halfway.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

from ..errors import APIConnectionError, NotFoundError, ProxyError, ServiceUnavailableError, Timeout
from .base import Provider, UpstreamResponse, UpstreamStream
from .errors import status_is_retryable

if TYPE_CHECKING:
    from ..config import Deployment, ProxyConfig

__all__ = ["Router", "is_retryable"]

log = logging.getLogger("trioproxy.router")


def is_retryable(error: ProxyError) -> bool:
    """Whether another deployment may answer where this attempt failed.

    An error made by an upstream transport says so itself (``error.retryable``, recorded where it
    was made: ``upstream/errors.py``). Otherwise (a provider adapter's own error): connection errors
    and 503s are retryable, a timeout is not (it may have reached the model), and a status decides
    the rest (``status_is_retryable``).
    """
    if error.retryable is not None:
        return error.retryable
    if isinstance(error, APIConnectionError | ServiceUnavailableError):
        return True
    if isinstance(error, Timeout):
        return False
    return status_is_retryable(getattr(error, "upstream_status", None) or error.status_code)


class Router:
    def __init__(self, config: ProxyConfig, providers: dict[str, Provider], rng: random.Random | None = None) -> None:
        self._groups = config.model_groups
        self._providers = providers
        self._num_retries = config.num_retries
        self._rng = rng or random.Random()

    @property
    def model_names(self) -> list[str]:
        return list(self._groups)

    def deployments(self, model: str) -> list[Deployment]:
        group = self._groups.get(model)
        if not group:
            raise NotFoundError(
                f"Model {model!r} is not served by this proxy. GET /v1/models lists the available models.",
                param="model",
            )
        return group

    def _order(self, group: list[Deployment]) -> list[Deployment]:
        """A weighted shuffle: the first is the weighted pick, the rest the fallbacks in turn."""
        if len(group) == 1:
            return list(group)
        remaining = list(group)
        ordered = []
        while remaining:
            weights = [max(d.weight, 0.0) for d in remaining]
            pick = self._rng.choices(remaining, weights=weights)[0] if sum(weights) > 0 else remaining[0]
            ordered.append(pick)
            remaining.remove(pick)
        return ordered

    def _retries_for(self, group: list[Deployment]) -> int:
        explicit = [d.max_retries for d in group if d.max_retries is not None]
        return min(explicit) if explicit else self._num_retries

    async def _call(self, model: str, endpoint: str, body: dict[str, Any], stream: bool,
                    on_attempt: Any = None) -> tuple[Deployment, Any]:
        group = self.deployments(model)
        order = self._order(group)
        attempts = self._retries_for(group) + 1
        last: ProxyError | None = None
        for attempt in range(attempts):
            deployment = order[attempt % len(order)]
            outgoing = dict(deployment.extra_params)
            outgoing.update(body)
            outgoing["model"] = deployment.upstream_model
            if on_attempt is not None:
                on_attempt(deployment, outgoing)
            provider = self._providers[deployment.provider]
            try:
                if stream:
                    return deployment, await provider.open_stream(deployment, endpoint, outgoing)
                return deployment, await provider.send(deployment, endpoint, outgoing)
            except ProxyError as exc:
                last = exc
                if attempt + 1 >= attempts or not is_retryable(exc):
                    raise
                log.warning("deployment %s of %r failed (%s); retrying on %s", deployment.label, model,
                            exc.status_code, order[(attempt + 1) % len(order)].label)
        assert last is not None
        raise last

    async def send(self, model: str, endpoint: str, body: dict[str, Any],
                   on_attempt: Any = None) -> tuple[Deployment, UpstreamResponse]:
        return await self._call(model, endpoint, body, False, on_attempt)

    async def open_stream(self, model: str, endpoint: str, body: dict[str, Any],
                          on_attempt: Any = None) -> tuple[Deployment, UpstreamStream]:
        return await self._call(model, endpoint, body, True, on_attempt)
