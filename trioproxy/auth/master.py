"""The master key, and the one entry point that turns a request's credentials into a caller.

:class:`Authenticator` is built once by the composition root and used by the fast path (the
pipeline, before any hook) and by every Quart route (``http/auth.py``). Virtual keys (issue #10),
JWT, IP allowlists and route rules (issue #12) plug in here, at one place. Today it knows the
master key only: compared in constant time (``hmac.compare_digest``); without one the proxy is open
and every caller is an anonymous admin (the CLI warns about that loudly at startup).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from ..errors import AuthenticationError, PermissionDeniedError
from ..masking import mask_secret
from .identity import UserAPIKeyAuth, hash_key

__all__ = ["Authenticator", "authenticate", "extract_key"]


def extract_key(headers: Mapping[str, str]) -> str | None:
    """``Authorization: Bearer <key>`` or Azure-style ``api-key: <key>``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    api_key = headers.get("api-key")
    return api_key.strip() if api_key else None


def authenticate(master_key: str | None, headers: Mapping[str, str]) -> UserAPIKeyAuth:
    """The caller for this request, or ``AuthenticationError`` (401).

    Without a master key the proxy is open and every caller is an anonymous admin; the CLI warns
    about that loudly at startup.
    """
    presented = extract_key(headers)
    if master_key is None:
        if presented is None:
            return UserAPIKeyAuth(user_role="proxy_admin")
        return UserAPIKeyAuth(api_key=hash_key(presented), key_alias=mask_secret(presented), user_role="proxy_admin")
    if presented is None:
        raise AuthenticationError(
            "No API key provided. Send 'Authorization: Bearer <key>' (or an 'api-key' header)."
        )
    if not hmac.compare_digest(presented.encode(), master_key.encode()):
        raise AuthenticationError(f"Invalid API key: {mask_secret(presented)}")
    return UserAPIKeyAuth(
        api_key=hash_key(presented),
        key_alias=mask_secret(presented),
        user_id="admin",
        user_role="proxy_admin",
    )


class Authenticator:
    """Who is calling, for every route: one object, so new credential kinds plug in at one place."""

    def __init__(self, master_key: str | None) -> None:
        self.master_key = master_key

    def authenticate(self, headers: Mapping[str, str], peer: str | None = None) -> UserAPIKeyAuth:
        """The caller, or :class:`AuthenticationError` (401). ``peer``: the client's address (for
        the IP rules to come; unused with the master key alone)."""
        return authenticate(self.master_key, headers)

    def require_admin(self, caller: UserAPIKeyAuth, what: str) -> None:
        """403 ``admin_only`` unless ``caller`` is the proxy admin; ``what`` names the route."""
        if not caller.is_admin:
            raise PermissionDeniedError(f"Only the proxy admin may call {what}.", code="admin_only")
