"""``get_async_httpx_client``: the HTTP client LiteLLM hands its handler files, for calling a service.

LiteLLM's custom-guardrail example calls its moderation service through
``get_async_httpx_client(llm_provider=httpxSpecialProvider.GuardrailCallback)`` and awaits
``client.post(url, json=..., headers=..., timeout=...)``, which returns an ``httpx.Response``.
This is the same interface on httpx under Trio. Each call opens a connection and closes it when
the answer is read (nothing is pooled between calls, so nothing outlives a request or leaks at
shutdown); a handler that calls a service on every request and wants pooling keeps its own
``httpx.AsyncClient``, opened in a service's ``run`` (README "Handlers and the hook order").
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import httpx

__all__ = ["AsyncHTTPHandler", "get_async_httpx_client", "httpxSpecialProvider"]

#: seconds, when neither the client nor the call says (LiteLLM's default is 600)
DEFAULT_TIMEOUT = 60.0


class httpxSpecialProvider(StrEnum):
    """Which of LiteLLM's client pools a caller asks for (one kind of client here, whatever the name)."""

    LoggingCallback = "logging_callback"
    GuardrailCallback = "guardrail_callback"
    Caching = "caching"
    Oauth2Check = "oauth2_check"
    SecretManager = "secret_manager"
    PassThroughEndpoint = "pass_through_endpoint"
    PromptFactory = "prompt_factory"


class AsyncHTTPHandler:
    """LiteLLM's ``AsyncHTTPHandler``: ``get`` / ``post`` / ``put`` / ``delete`` returning ``httpx.Response``."""

    def __init__(self, timeout: float | httpx.Timeout | None = None, **_litellm_kwargs: Any) -> None:
        self.timeout = timeout if timeout is not None else DEFAULT_TIMEOUT

    async def request(self, method: str, url: str, *, timeout: float | httpx.Timeout | None = None,  # noqa: ASYNC109 - LiteLLM's signature; httpx applies it
                      stream: bool = False, **kwargs: Any) -> httpx.Response:
        if stream:
            raise NotImplementedError("stream=True is not supported by trioproxy's get_async_httpx_client; "
                                      "use an httpx.AsyncClient of your own")
        async with httpx.AsyncClient(timeout=timeout if timeout is not None else self.timeout) as client:
            return await client.request(method, url, **kwargs)

    async def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, params=params, headers=headers, **kwargs)

    async def post(self, url: str, data: Any = None, json: Any = None, params: Any = None, headers: Any = None,
                   **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, data=data, json=json, params=params, headers=headers, **kwargs)

    async def put(self, url: str, data: Any = None, json: Any = None, params: Any = None, headers: Any = None,
                  **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, data=data, json=json, params=params, headers=headers, **kwargs)

    async def delete(self, url: str, data: Any = None, json: Any = None, params: Any = None, headers: Any = None,
                     **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, data=data, json=json, params=params, headers=headers, **kwargs)


def get_async_httpx_client(llm_provider: Any = None, params: dict[str, Any] | None = None) -> AsyncHTTPHandler:
    """An :class:`AsyncHTTPHandler` (``params``: LiteLLM's, ``timeout`` is honoured)."""
    return AsyncHTTPHandler(**(params or {}))
