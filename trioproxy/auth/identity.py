"""Who is calling: :class:`Identity` (the result of authentication) and :class:`UserAPIKeyAuth`
(the seeds' type: what hooks receive), and the one key hash.

Hooks never see the raw key: ``UserAPIKeyAuth.api_key`` is its SHA-256 hash (as the seeds store
keys, and as the store keeps virtual keys). For the master key ``key_alias`` is a masked form safe
to log; for a virtual key it is the key's alias.

:class:`Identity` is immutable and carries, for a virtual key, the store's cached record (an
immutable ``AuthRecord``: the key with its user, team and membership). It is what the request path
and the management routes decide on; ``RequestContext.identity`` holds it for the request, so
budgets and limits (issue #11) and route rules (issue #12) read the same record authentication used.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..masking import mask_secret

__all__ = ["Identity", "KeyRecord", "UserAPIKeyAuth", "VirtualKeys", "hash_key", "is_key_hash"]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_HASH = re.compile(r"[0-9a-f]{64}")


def is_key_hash(value: str) -> bool:
    """A SHA-256 hex digest (how keys are shown in lists and audit rows): never a credential."""
    return len(value) == 64 and _HASH.fullmatch(value) is not None


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
    soft_budget: float | None = None
    budget_duration: str | None = None
    expires: str | None = None          # ISO 8601 with offset; None: never
    user_email: str | None = None
    # the key's team (LiteLLM's names): a team key is bound by these too
    team_models: list[str] = field(default_factory=list)
    team_max_budget: float | None = None
    team_spend: float | None = None
    team_tpm_limit: int | None = None
    team_rpm_limit: int | None = None
    team_member_spend: float | None = None
    # more of LiteLLM's fields that handler files read (issue #15): empty unless a key says otherwise
    allowed_cache_controls: list[str] = field(default_factory=list)   # e.g. ["no-cache", "no-store"]
    request_route: str | None = None
    parent_otel_span: Any = None

    @property
    def token(self) -> str | None:  # the seeds' name for the hashed key
        return self.api_key

    @property
    def is_admin(self) -> bool:
        return self.user_role == "proxy_admin"


class KeyRecord(Protocol):
    """What authentication needs of a virtual key's record (the store's ``AuthRecord``)."""

    token: str
    user_id: str | None
    team_id: str | None
    models: tuple[str, ...]
    enforced_params: tuple[Any, ...]
    guardrails: tuple[Any, ...]
    permissions: Mapping[str, Any]

    @property
    def user_role(self) -> str | None: ...

    def to_user_api_key_auth(self) -> UserAPIKeyAuth: ...


class VirtualKeys(Protocol):
    """The virtual keys (the store's key cache): a record, or a 401 / 503 ``ProxyError``."""

    async def authenticate(self, api_key: str) -> Any: ...


Kind = Literal["open", "master_key", "virtual_key"]


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller, as authentication decided it.

    ``kind``: ``open`` (no master key configured: everyone is an anonymous admin), ``master_key``,
    ``virtual_key``. ``token``: the SHA-256 of the key (for a virtual key, its row's current token).
    ``record``: the virtual key's cached, immutable record (``None`` otherwise).
    """

    kind: Kind
    token: str | None = None
    alias: str | None = None          # master key / open proxy: the presented key, masked
    record: Any = None

    @classmethod
    def open(cls, presented: str | None) -> Identity:
        if presented is None:
            return cls("open")
        return cls("open", hash_key(presented), mask_secret(presented))

    @classmethod
    def master(cls, token: str, alias: str) -> Identity:
        return cls("master_key", token, alias)

    @classmethod
    def virtual(cls, record: Any) -> Identity:
        return cls("virtual_key", record.token, None, record)

    @property
    def is_master(self) -> bool:
        """The proxy's own admin credential (the master key, or anyone on an open proxy)."""
        return self.kind != "virtual_key"

    @property
    def user_role(self) -> str | None:
        return "proxy_admin" if self.record is None else self.record.user_role

    @property
    def is_admin(self) -> bool:
        return self.user_role == "proxy_admin"

    @property
    def user_id(self) -> str | None:
        if self.record is not None:
            return self.record.user_id
        return "admin" if self.kind == "master_key" else None

    @property
    def team_id(self) -> str | None:
        return self.record.team_id if self.record is not None else None

    def user_api_key_auth(self) -> UserAPIKeyAuth:
        """A fresh ``UserAPIKeyAuth`` for hooks (they may change it; the cache never sees that)."""
        if self.record is not None:
            return self.record.to_user_api_key_auth()  # type: ignore[no-any-return]
        if self.kind == "master_key":
            return UserAPIKeyAuth(api_key=self.token, key_alias=self.alias, user_id="admin", user_role="proxy_admin")
        return UserAPIKeyAuth(api_key=self.token, key_alias=self.alias, user_role="proxy_admin")
