"""The errors of the access layer, as LiteLLM's clients see them.

LiteLLM answers every access decision with ``type: auth_error`` and the status as ``code``
(``{"error": {"message": ..., "type": "auth_error", "param": null, "code": "403"}}``); clients match
on that type, so these subclasses keep our hierarchy (``PermissionDeniedError`` is still a 403 for
every ``isinstance`` check in a failure hook) but carry LiteLLM's type. ``code`` is left empty so the
envelope's ``code`` becomes the status as a string, exactly like LiteLLM's.

Configuration problems are collected, never raised one at a time: :class:`AccessConfigError` holds
every problem found, each as ``key.path: message``, so the config loader can print them all with
the file name in front.
"""

from __future__ import annotations

from ..errors import (
    AuthenticationError,
    BadRequestError,
    PermissionDeniedError,
    ServiceUnavailableError,
)

__all__ = [
    "AccessConfigError",
    "AccessDenied",
    "AccessUnauthenticated",
    "AuthProviderUnavailable",
    "BadPathError",
]


class AccessDenied(PermissionDeniedError):
    """403: the caller is known but may not do this (route rule, IP allowlist, JWT routes)."""

    error_type = "auth_error"
    default_code = None


class AccessUnauthenticated(AuthenticationError):
    """401: no credential, or one that proves nothing (bad key, bad or expired JWT)."""

    error_type = "auth_error"
    default_code = None


class AuthProviderUnavailable(ServiceUnavailableError):
    """503: the identity provider's JWKS cannot be fetched and no usable copy is cached.

    Not a 401: the token may be perfectly good, the client should retry, not re-authenticate.
    """

    error_type = "auth_provider_unavailable"
    default_code = None


class BadPathError(BadRequestError):
    """400: a request path that cannot be normalised (bad UTF-8, control characters, not absolute)."""

    default_code = "invalid_path"


class AccessConfigError(ValueError):
    """Every problem found in the access settings, each ``key.path: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
