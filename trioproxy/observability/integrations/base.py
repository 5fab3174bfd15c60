"""What every built-in logging integration shares: the two CustomLogger methods, settings, HTTP.

An integration is an ordinary CustomLogger object (``async_log_success_event`` /
``async_log_failure_event``): the logging sink (``observability/sink.py``) calls it from its
bounded queue, off the request path, under ``general_settings.callback_timeout_seconds``; a
failing or slow endpoint raises or times out there, which is counted
(``trioproxy_logging_callback_errors_total``) and logged rate-limited — never seen by a request.
Each delivery is one HTTP request (a batch of one): see docs/logging.md for why no timer batching.

Keys of the services come from the environment variables LiteLLM reads and are only ever put in
request headers: an error says which integration, which URL (credentials masked) and which status,
never a header.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

import httpx

from ...config import ProxyConfig
from ...hooks.loader import HandlerLoadError
from ...masking import mask_url
from .standard_payload import standard_logging_payload

__all__ = ["Integration", "IntegrationError", "IntegrationSettings", "env", "env_overrides", "parse_headers",
           "require_env"]

#: an integration's own HTTP deadline: below the default callback timeout (10 s), so a slow
#: endpoint ends as this error (with its URL) rather than as an anonymous callback timeout
HTTP_TIMEOUT = 8.0


class IntegrationError(Exception):
    """A send that failed: the integration, the URL (masked) and the status. Never a key."""


class IntegrationSettings:
    """What an integration may read from the config: ``litellm_settings`` and ``callback_settings``."""

    def __init__(self, config: ProxyConfig | None) -> None:
        self.litellm: Mapping[str, Any] = config.litellm_settings if config is not None else {}
        self.general: Mapping[str, Any] = config.general_settings if config is not None else {}
        self.callback_settings: Mapping[str, Any] = (
            getattr(config, "callback_settings", None) or {}) if config is not None else {}

    def message_logging(self, name: str) -> bool:
        """False when ``turn_off_message_logging`` or ``callback_settings.<name>.message_logging: false``."""
        own = self.callback_settings.get(name)
        if isinstance(own, Mapping) and "message_logging" in own:
            return bool(own["message_logging"])
        return not bool(self.litellm.get("turn_off_message_logging", False))

    @property
    def redact_user_api_key_info(self) -> bool:
        return bool(self.litellm.get("redact_user_api_key_info", False))


#: variables that take the place of the environment's while a per-team integration is built
#: (``observability/team_logging.py``: LiteLLM's ``langfuse_public_key`` & co. of a team)
_OVERRIDES: ContextVar[Mapping[str, str]] = ContextVar("integration_env_overrides", default=MappingProxyType({}))


@contextmanager
def env_overrides(values: Mapping[str, str]) -> Iterator[None]:
    """While building an integration: :func:`env` reads ``values`` before the environment."""
    token = _OVERRIDES.set(dict(values))
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def env(name: str, default: str | None = None) -> str | None:
    value = _OVERRIDES.get().get(name) or os.environ.get(name)
    return value if value not in (None, "") else default


def require_env(integration: str, *names: str) -> str:
    """The first of ``names`` set in the environment; a startup error naming them when none is."""
    for name in names:
        value = env(name)
        if value is not None:
            return value
    raise HandlerLoadError(f"LiteLLM's {integration!r} logging integration needs {' or '.join(names)} in the "
                           "environment (docs/logging.md)")


def parse_headers(text: str | None) -> dict[str, str]:
    """``k1=v1,k2=v2`` (LiteLLM's ``OTEL_HEADERS`` / ``GENERIC_LOGGER_HEADERS``); ``%20`` decoded."""
    from urllib.parse import unquote

    headers: dict[str, str] = {}
    for item in (text or "").split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            headers[key.strip()] = unquote(value.strip())
    return headers


class Integration:
    """Base of the built-in integrations. Subclasses set ``name`` and write :meth:`send`."""

    name = "integration"
    #: which events LiteLLM's integration logs (most log both)
    logs_success = True
    logs_failure = True

    def __init__(self, settings: IntegrationSettings) -> None:
        self.settings = settings
        self.message_logging = settings.message_logging(self.name)
        self._client: httpx.AsyncClient | None = None

    # -- the CustomLogger interface the sink calls -------------------------------------------------
    async def async_log_success_event(self, kwargs: dict[str, Any], response_obj: Any,
                                      start_time: Any, end_time: Any) -> None:
        if self.logs_success:
            await self.send(self.payload(kwargs, response_obj), kwargs, response_obj)

    async def async_log_failure_event(self, kwargs: dict[str, Any], response_obj: Any,
                                      start_time: Any, end_time: Any) -> None:
        if self.logs_failure:
            await self.send(self.payload(kwargs, response_obj), kwargs, response_obj)

    def payload(self, kwargs: Mapping[str, Any], response: Any) -> dict[str, Any]:
        return standard_logging_payload(kwargs, response, message_logging=self.message_logging,
                                        redact_user_api_key_info=self.settings.redact_user_api_key_info)

    async def send(self, payload: dict[str, Any], kwargs: Mapping[str, Any], response: Any) -> None:
        raise NotImplementedError

    # -- HTTP --------------------------------------------------------------------------------------
    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:   # made on first use: the event loop is Trio's by then
            self._client = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
        return self._client

    async def request(self, method: str, url: str, *, content: bytes | str,
                      headers: Mapping[str, str]) -> httpx.Response:
        """One request; :class:`IntegrationError` for a transport error or a non-2xx answer."""
        where = f"{self.name}: {method} {mask_url(url)}"
        try:
            response = await self.client.request(method, url, content=content, headers=dict(headers))
        except httpx.HTTPError as exc:
            raise IntegrationError(f"{where} failed: {type(exc).__name__}") from None
        if response.status_code >= 300:
            body = " ".join(response.text[:200].split())
            raise IntegrationError(f"{where} answered {response.status_code}: {body}")
        return response

    def __repr__(self) -> str:
        return f"<trioproxy built-in logging integration {self.name!r}>"
