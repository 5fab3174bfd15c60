"""``mock_response``: answered by the proxy itself, never sent upstream (LiteLLM's ``mock_completion``).

LiteLLM answers a request that carries ``mock_response`` (in its body, or in the deployment's
``litellm_params``) without calling the provider: the model must exist and route as usual, the
hooks, logging and cost run as for any answer, and the provider is never contacted. trioproxy does
the same for every provider: :class:`MockingProvider` wraps each real one (``proxy.py``) and
answers such requests with the fake provider's machinery (echo-free: the text is the mock).

* a string: the assistant's text (plain or streamed; ``n`` choices), with usage counted as the
  fake counts it, so the cost is the deployment's price × those tokens, as LiteLLM prices a mock;
* LiteLLM's error strings raise the error they name: ``litellm.RateLimitError`` (429),
  ``litellm.ContextWindowExceededError`` (400 ``context_length_exceeded``),
  ``litellm.InternalServerError`` (500), and ``Exception: content_filter_policy…`` (400
  ``content_policy_violation``) — the router retries them like the real thing, which is what
  LiteLLM's users test with them;
* a dict: the whole chat completion (missing ``id``/``object``/``created``/``model`` filled in);
  streamed, its first choice's text is streamed.

The ``fake/…`` provider already answers ``mock_response`` itself (with its latency and error
injection), so it is not wrapped.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from ...errors import (
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    ProxyError,
    RateLimitError,
)
from ..base import Provider, UpstreamResponse, UpstreamStream
from .provider import FakeProvider
from .reply import next_id

if TYPE_CHECKING:
    from ...config import Deployment

__all__ = ["MockingProvider", "mock_of"]

#: LiteLLM's mock error strings → the error they raise (``litellm/main.py`` ``_handle_mock_potential_exceptions``)
_ERRORS: dict[str, tuple[type[ProxyError], str]] = {
    "litellm.RateLimitError": (RateLimitError, "this is a mock rate limit error"),
    "litellm.ContextWindowExceededError": (ContextWindowExceededError, "this is a mock context window exceeded error"),
    "litellm.InternalServerError": (InternalServerError, "this is a mock internal server error"),
}


def mock_of(deployment: Deployment, body: dict[str, Any]) -> Any:
    """The mock answer a request gets (the request's own wins over the deployment's), or None."""
    if "mock_response" in body:
        return body["mock_response"]
    return deployment.fake.get("mock_response")


def _raise_if_error(mock: str, deployment: Deployment) -> None:
    if mock in _ERRORS:
        cls, message = _ERRORS[mock]
        raise cls(message, model=deployment.upstream_model, llm_provider=deployment.provider)
    if mock.startswith("Exception: content_filter_policy"):
        raise ContentPolicyViolationError(mock, model=deployment.upstream_model, llm_provider=deployment.provider)


def _text_of_dict(mock: dict[str, Any]) -> str:
    choices = mock.get("choices")
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = first.get("message") if isinstance(first.get("message"), dict) else {}
    content = message.get("content", first.get("text"))
    return content if isinstance(content, str) else ""


class MockingProvider:
    """A provider that answers ``mock_response`` requests locally and passes the others to ``inner``."""

    def __init__(self, inner: Provider, fake: FakeProvider) -> None:
        self.inner = inner
        self.fake = fake

    @property
    def applies_param_policy(self) -> bool:
        """Whether ``inner`` applies LiteLLM's parameter policy itself (``upstream/router.py`` asks)."""
        return bool(getattr(self.inner, "applies_param_policy", False))

    def _local(self, deployment: Deployment, body: dict[str, Any], endpoint: str) -> tuple[Any, dict[str, Any]]:
        mock = mock_of(deployment, body)
        if isinstance(mock, str):
            _raise_if_error(mock, deployment)
        elif not isinstance(mock, dict):
            raise BadRequestError("'mock_response' must be a string or a chat completion object.",
                                  param="mock_response", code="invalid_type")
        if endpoint == "embeddings":
            raise BadRequestError("'mock_response' answers chat and text completions only.", param="mock_response",
                                  code="invalid_value")
        text = mock if isinstance(mock, str) else _text_of_dict(mock)
        return mock, {**body, "mock_response": text}

    async def send(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> UpstreamResponse:
        if mock_of(deployment, body) is None:
            return await self.inner.send(deployment, endpoint, body)
        mock, local = self._local(deployment, body, endpoint)
        if isinstance(mock, dict):
            answer = {"id": f"chatcmpl-mock-{next_id()}", "object": "chat.completion", "created": int(time.time()),
                      "model": deployment.upstream_model, **mock}
            return UpstreamResponse(200, {"content-type": "application/json"}, orjson.dumps(answer))
        return await self.fake.send(deployment, endpoint, local)

    async def open_stream(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> UpstreamStream:
        if mock_of(deployment, body) is None:
            return await self.inner.open_stream(deployment, endpoint, body)
        _mock, local = self._local(deployment, body, endpoint)
        return await self.fake.open_stream(deployment, endpoint, local)
