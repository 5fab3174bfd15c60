"""The admin layer's errors: ``trioproxy.errors`` classes with LiteLLM's statuses and messages.

LiteLLM's ``code`` on management errors is the status as a string ("400", "404"); we keep that,
so clients that match on it keep working. Messages never carry a clear key: keys named by the
caller are echoed as their hash, or masked (``sk-...abcd``) when the caller sent the clear key.
"""

from __future__ import annotations

import re

from ..errors import BadRequestError, NotFoundError, PermissionDeniedError
from ..masking import mask_secret

__all__ = ["bad_request", "describe_key", "forbidden", "is_hash", "not_found"]

_HASH = re.compile(r"^[0-9a-f]{64}$")


def is_hash(value: str) -> bool:
    return bool(_HASH.match(value))


def describe_key(value: str) -> str:
    """How a key the caller named may appear in an answer or an error: hashes as they are, clear
    keys masked."""
    return value if is_hash(value) else mask_secret(value)


def bad_request(message: str, param: str | None = None) -> BadRequestError:
    return BadRequestError(message, param=param, code="400")


def not_found(message: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(message, param=param, code="404")


def forbidden(message: str) -> PermissionDeniedError:
    return PermissionDeniedError(message, code="403")
