"""Who is calling: the master key check and the ``UserAPIKeyAuth`` handed to hooks.

The key is compared in constant time (``hmac.compare_digest``). Hooks never see the raw key:
``UserAPIKeyAuth.api_key`` is its SHA-256 hash (as the seeds store keys), and ``key_alias`` a
masked form safe to log.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from ..errors import AuthenticationError
from ..masking import mask_secret

__all__ = ["UserAPIKeyAuth", "authenticate", "extract_key", "hash_key"]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class UserAPIKeyAuth:
    """The caller, as the seeds describe it. Unknown keyword arguments are kept in ``metadata``."""

    api_key: str | None = None          # SHA-256 of the presented key, never the key itself
    key_alias: str | None = None        # masked, safe to log
    key_name: str | None = None
    user_id: str | None = None
    user_role: str | None = None        # "proxy_admin" for the master key
    team_id: str | None = None
    team_alias: str | None = None
    end_user_id: str | None = None
    org_id: str | None = None
    models: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    team_metadata: dict[str, Any] = field(default_factory=dict)
    permissions: dict[str, Any] = field(default_factory=dict)
    max_parallel_requests: int | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_budget: float | None = None
    spend: float = 0.0

    @property
    def token(self) -> str | None:  # the seeds' name for the hashed key
        return self.api_key

    @property
    def is_admin(self) -> bool:
        return self.user_role == "proxy_admin"


def extract_key(headers: Any) -> str | None:
    """``Authorization: Bearer <key>`` or Azure-style ``api-key: <key>``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    api_key = headers.get("api-key")
    return api_key.strip() if api_key else None


def authenticate(master_key: str | None, headers: Any) -> UserAPIKeyAuth:
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
