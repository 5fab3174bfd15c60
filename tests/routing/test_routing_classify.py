"""``classify``: one test per row of ``classify.py``'s table."""

from __future__ import annotations

import httpx
import pytest

from trioproxy.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
    for_status,
)
from trioproxy.upstream.routing import ErrorKind, FallbackKind, classify
from trioproxy.upstream.routing.classify import fallback_kind


def upstream(status: int, message: str = "failed", **kw):
    error = for_status(status, message, **kw)
    error.upstream_status = status
    return error


@pytest.mark.parametrize("error, kind", [
    (ContextWindowExceededError("too long"), ErrorKind.CONTEXT_WINDOW),
    (upstream(400, "x", code="context_length_exceeded"), ErrorKind.CONTEXT_WINDOW),
    (upstream(400, "This model's maximum context length is 4096 tokens"), ErrorKind.CONTEXT_WINDOW),
    (upstream(413, "prompt is too long: 300000 tokens > 200000 maximum"), ErrorKind.CONTEXT_WINDOW),
    (ContentPolicyViolationError("no"), ErrorKind.CONTENT_POLICY),
    (upstream(400, "x", code="content_filter"), ErrorKind.CONTENT_POLICY),
    (upstream(400, "The response was filtered due to the prompt triggering Azure OpenAI's content "
                   "management policy"), ErrorKind.CONTENT_POLICY),
    (APIConnectionError("refused"), ErrorKind.CONNECTION),
    (Timeout("slow"), ErrorKind.TIMEOUT),
    (upstream(408), ErrorKind.TIMEOUT),
    (RateLimitError("slow down"), ErrorKind.RATE_LIMITED),
    (upstream(429), ErrorKind.RATE_LIMITED),
    (AuthenticationError("bad key"), ErrorKind.AUTH),
    (PermissionDeniedError("no"), ErrorKind.AUTH),
    (upstream(402, "insufficient credit"), ErrorKind.PAYMENT),
    (NotFoundError("no such model"), ErrorKind.NOT_FOUND),
    (upstream(500), ErrorKind.SERVER),
    (upstream(503), ErrorKind.SERVER),
    (ServiceUnavailableError("busy"), ErrorKind.SERVER),
    (upstream(422, "bad schema"), ErrorKind.BAD_REQUEST),
    (BadRequestError("invalid temperature"), ErrorKind.BAD_REQUEST),
    (RuntimeError("a bug"), ErrorKind.OTHER),
])
def test_classify(error, kind):
    assert classify(error) is kind


def test_the_upstream_status_wins_over_the_errors_own():
    error = APIError("relayed", status_code=502)
    error.upstream_status = 429
    assert classify(error) is ErrorKind.RATE_LIMITED


def test_a_timeout_caused_by_the_transport_is_a_timeout():
    try:
        raise Timeout("read timed out") from httpx.ReadTimeout("read")
    except Timeout as error:
        assert classify(error) is ErrorKind.TIMEOUT


def test_fallback_kind():
    assert fallback_kind(ErrorKind.CONTEXT_WINDOW) is FallbackKind.CONTEXT_WINDOW
    assert fallback_kind(ErrorKind.CONTENT_POLICY) is FallbackKind.CONTENT_POLICY
    assert {fallback_kind(k) for k in ErrorKind} - {FallbackKind.CONTEXT_WINDOW, FallbackKind.CONTENT_POLICY} \
        == {FallbackKind.GENERAL}
