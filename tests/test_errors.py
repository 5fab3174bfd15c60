"""Unit tests of the one mapping from errors to the OpenAI envelope (``trioproxy.errors``)."""

from __future__ import annotations

from typing import Any

import pytest

from trioproxy import errors
from trioproxy.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    HookCrashedError,
    HookTimeoutError,
    HTTPException,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    ProxyError,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
    error_body,
    for_status,
    to_envelope,
    to_proxy_error,
)


def check_envelope(body: dict[str, Any]) -> dict[str, Any]:
    """The envelope's shape: exactly the four keys, real strings, never the string "None"."""
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert isinstance(error["type"], str) and error["type"] and error["type"] != "None"
    assert isinstance(error["code"], str) and error["code"] and error["code"] != "None"
    assert error["param"] is None or (isinstance(error["param"], str) and error["param"] != "None")
    return error


ALL_CLASSES = [cls for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, ProxyError)
               and cls not in (HookCrashedError, HookTimeoutError)]


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_every_class_gives_a_well_formed_envelope(cls: type[ProxyError]) -> None:
    status, body = to_envelope(cls("something went wrong"))
    error = check_envelope(body)
    assert status == cls.status_code
    assert error["message"] == "something went wrong"
    assert error["type"] == cls.error_type


@pytest.mark.parametrize(("exc", "status", "type_", "code"), [
    (BadRequestError("bad"), 400, "invalid_request_error", "400"),
    (ContextWindowExceededError("long"), 400, "invalid_request_error", "context_length_exceeded"),
    (AuthenticationError("who"), 401, "authentication_error", "invalid_api_key"),
    (PermissionDeniedError("no"), 403, "permission_denied", "403"),
    (NotFoundError("where"), 404, "invalid_request_error", "model_not_found"),
    (RateLimitError("slow down"), 429, "rate_limit_error", "rate_limit_exceeded"),
    (APIConnectionError("down"), 502, "api_connection_error", "upstream_unreachable"),
    (ServiceUnavailableError("busy"), 503, "service_unavailable", "service_unavailable"),
    (Timeout("late"), 504, "timeout", "timeout"),
    (APIError("teapot", status_code=418), 418, "api_error", "418"),
])
def test_status_type_and_code(exc: ProxyError, status: int, type_: str, code: str) -> None:
    got_status, body = to_envelope(exc)
    error = check_envelope(body)
    assert (got_status, error["type"], error["code"]) == (status, type_, code)


def test_param_is_null_or_a_string() -> None:
    assert check_envelope(error_body(BadRequestError("x")))["param"] is None
    err = BadRequestError("Missing required parameter: 'model'.", param="model", code="missing_parameter")
    error = check_envelope(error_body(err))
    assert error["param"] == "model"
    assert error["code"] == "missing_parameter"


def test_seed_style_constructor_arguments_keep_the_envelope_well_formed() -> None:
    # litellm.RateLimitError(message, llm_provider, model, response=...) as the seeds' handlers write it
    err = RateLimitError("too many", "openai", "gpt-4o", response=None)
    assert (err.llm_provider, err.model) == ("openai", "gpt-4o")
    check_envelope(error_body(err))
    # a numeric code and param, as some handler files pass them, still become strings
    error = check_envelope(error_body(BadRequestError("bad", code=400, param=0)))  # type: ignore[arg-type]
    assert (error["code"], error["param"]) == ("400", "0")


def test_a_plain_exception_becomes_a_generic_500_without_its_text() -> None:
    status, body = to_envelope(ValueError("secret internals: /etc/passwd"))
    error = check_envelope(body)
    assert status == 500
    assert "secret internals" not in error["message"]
    assert "Traceback" not in error["message"]
    assert error["type"] == "internal_server_error"


def test_a_plain_exception_from_a_handler_names_the_handler() -> None:
    original = KeyError("x")
    err = to_proxy_error(original, handler="my_handler", phase="async_pre_call_hook")
    assert isinstance(err, HookCrashedError)
    assert err.__cause__ is original
    status, body = to_envelope(err)
    error = check_envelope(body)
    assert status == 500
    assert "my_handler" in error["message"] and "async_pre_call_hook" in error["message"]
    assert "KeyError" in error["message"]
    assert error["code"] == "hook_error"


def test_hook_timeout() -> None:
    err = HookTimeoutError("slow_handler", "async_moderation_hook", 2.5)
    status, body = to_envelope(err)
    error = check_envelope(body)
    assert status == 500
    assert error["code"] == "hook_timeout"
    assert "slow_handler" in error["message"] and "2.5 s" in error["message"]


def test_http_exception_with_a_string_detail() -> None:
    status, body = to_envelope(HTTPException(status_code=403, detail="Forbidden word used"))
    error = check_envelope(body)
    assert status == 403
    assert error["message"] == "Forbidden word used"
    assert error["type"] == "permission_denied"


@pytest.mark.parametrize(("detail", "message"), [
    ({"error": "Violated content safety policy"}, "Violated content safety policy"),
    ({"message": "plain message"}, "plain message"),
    ({"error": {"message": "nested message"}}, "nested message"),
    ({"reason": "x", "n": 1}, '{"reason":"x","n":1}'),
    (["a", "b"], '["a","b"]'),
])
def test_http_exception_with_a_structured_detail(detail: Any, message: str) -> None:
    status, body = to_envelope(HTTPException(status_code=400, detail=detail))
    error = check_envelope(body)
    assert status == 400
    assert error["message"] == message
    assert error["type"] == "invalid_request_error"


def test_http_exception_keeps_its_status_and_headers() -> None:
    exc = HTTPException(status_code=429, detail="slow down", headers={"retry-after": "3"})
    err = to_proxy_error(exc)
    assert isinstance(err, RateLimitError)
    assert err.headers == {"retry-after": "3"}
    assert err.__cause__ is exc
    status, body = to_envelope(HTTPException(status_code=418, detail="teapot"))
    assert status == 418
    assert check_envelope(body)["type"] == "api_error"


def test_anything_shaped_like_an_http_exception_is_one() -> None:
    class StarletteLike(Exception):
        def __init__(self) -> None:
            self.status_code = 401
            self.detail = "go away"

    status, body = to_envelope(StarletteLike())
    assert status == 401
    assert check_envelope(body)["message"] == "go away"


@pytest.mark.parametrize(("status", "cls"), [
    (400, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError), (404, NotFoundError),
    (408, Timeout), (429, RateLimitError), (500, InternalServerError), (502, APIConnectionError),
    (503, ServiceUnavailableError), (504, Timeout), (418, APIError), (529, APIError),
])
def test_for_status_picks_the_class_by_status(status: int, cls: type[ProxyError]) -> None:
    err = for_status(status, "upstream said no")
    assert type(err) is cls
    assert err.status_code == status
    got_status, body = to_envelope(err)
    assert got_status == status
    assert check_envelope(body)["message"] == "upstream said no"


@pytest.mark.parametrize(("code", "cls"), [
    ("context_length_exceeded", ContextWindowExceededError),
    ("content_policy_violation", ContentPolicyViolationError),
    ("content_filter", ContentPolicyViolationError),
    ("something_else", BadRequestError),
])
def test_for_status_picks_the_class_by_upstream_code(code: str, cls: type[ProxyError]) -> None:
    err = for_status(400, "This model's maximum context length is 8192 tokens", code=code, param="messages")
    assert type(err) is cls
    status, body = to_envelope(err)
    error = check_envelope(body)
    assert status == 400
    assert error["code"] == code
    assert error["param"] == "messages"


def test_for_status_without_a_code_uses_the_class_default() -> None:
    error = check_envelope(to_envelope(for_status(429, "slow", code=None))[1])
    assert error["code"] == "rate_limit_exceeded"
