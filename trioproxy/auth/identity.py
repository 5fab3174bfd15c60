"""``UserAPIKeyAuth``: the caller as hooks see it (the seeds' type), and the one key hash.

Hooks never see the raw key: ``UserAPIKeyAuth.api_key`` is its SHA-256 hash (as the seeds store
keys, and as the store keeps virtual keys), and ``key_alias`` a masked form safe to log.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["UserAPIKeyAuth", "hash_key"]


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
    # more of LiteLLM's fields that handler files read (issue #15): empty unless a key says otherwise
    allowed_cache_controls: list[str] = field(default_factory=list)   # e.g. ["no-cache", "no-store"]
    team_models: list[str] = field(default_factory=list)
    user_email: str | None = None
    request_route: str | None = None
    parent_otel_span: Any = None

    @property
    def token(self) -> str | None:  # the seeds' name for the hashed key
        return self.api_key

    @property
    def is_admin(self) -> bool:
        return self.user_role == "proxy_admin"
