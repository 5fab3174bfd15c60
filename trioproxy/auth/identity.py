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

import copy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Literal, Protocol

from ..masking import mask_secret

__all__ = ["Identity", "KeyRecord", "UserAPIKeyAuth", "VirtualKeys", "hash_key", "is_key_hash"]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


_HASH = re.compile(r"[0-9a-f]{64}")


def is_key_hash(value: str) -> bool:
    """A SHA-256 hex digest (how keys are shown in lists and audit rows): never a credential."""
    return len(value) == 64 and _HASH.fullmatch(value) is not None


@dataclass(init=False)
class UserAPIKeyAuth:
    """The caller, as the seeds describe it.

    LiteLLM's pydantic model ignores keyword arguments it does not know; so does this class, but it
    keeps them in :attr:`extra` (a ``custom_auth`` function may return fields of a newer LiteLLM).
    ``token=`` (LiteLLM's hashed key) is accepted as ``api_key`` when no ``api_key`` is given.
    """

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
    # what a custom_auth function may return (LiteLLM's docs/proxy/custom_auth.md "Fields Reference")
    allowed_routes: list[str] = field(default_factory=list)
    user_tpm_limit: int | None = None
    user_rpm_limit: int | None = None
    user_max_budget: float | None = None
    team_member_tpm_limit: int | None = None
    team_member_rpm_limit: int | None = None
    tpm_limit_per_model: dict[str, int] | None = None
    rpm_limit_per_model: dict[str, int] | None = None
    model_max_budget: dict[str, Any] = field(default_factory=dict)
    end_user_tpm_limit: int | None = None
    end_user_rpm_limit: int | None = None
    end_user_max_budget: float | None = None
    aliases: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    blocked: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __init__(self, **kwargs: Any) -> None:
        token = kwargs.pop("token", None)
        if kwargs.get("api_key") is None and token is not None:
            kwargs["api_key"] = token
        known = self.__dataclass_fields__
        extra = {name: kwargs.pop(name) for name in list(kwargs) if name not in known}
        if type(self) is UserAPIKeyAuth:
            # built on every request (one per request, for the hooks): the defaults copied from a
            # precomputed dict, then the given fields: 1.8 µs instead of 6.9 µs per call with the
            # generic loop below (3 % of the proxy's CPU per request, bench/README.md)
            state = self.__dict__
            state.update(_PLAIN_DEFAULTS)
            for name, factory in _DEFAULT_FACTORIES:
                state[name] = factory()
            state.update(kwargs)
        else:   # a subclass (a handler file's own fields, setters): every field through setattr
            for name, spec in known.items():
                if name in kwargs:
                    value = kwargs[name]
                elif spec.default_factory is not MISSING:
                    value = spec.default_factory()
                else:
                    value = spec.default
                setattr(self, name, value)
        if extra:
            self.extra = {**self.extra, **extra}
        if isinstance(self.expires, datetime):   # LiteLLM accepts a datetime (its docs' example)
            when = self.expires if self.expires.tzinfo else self.expires.astimezone()
            self.expires = when.isoformat()
        if isinstance(self.user_role, Enum):   # LitellmUserRoles.PROXY_ADMIN → "proxy_admin"
            self.user_role = str(self.user_role.value)

    @property
    def token(self) -> str | None:  # the seeds' name for the hashed key
        return self.api_key

    @property
    def is_admin(self) -> bool:
        return self.user_role == "proxy_admin"


#: :class:`UserAPIKeyAuth`'s defaults: plain values (shared, immutable) and factories (fresh per object)
_PLAIN_DEFAULTS: dict[str, Any] = {
    name: spec.default for name, spec in UserAPIKeyAuth.__dataclass_fields__.items()
    if spec.default_factory is MISSING}
_DEFAULT_FACTORIES: tuple[tuple[str, Any], ...] = tuple(
    (name, spec.default_factory) for name, spec in UserAPIKeyAuth.__dataclass_fields__.items()
    if spec.default_factory is not MISSING)


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


Kind = Literal["open", "master_key", "virtual_key", "jwt", "custom_auth", "anonymous"]


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller, as authentication decided it.

    ``kind``: ``open`` (no master key configured: everyone is an anonymous admin), ``master_key``,
    ``virtual_key``, ``jwt`` (a verified JWT; ``record`` is built from its claims and the store's
    team and user, so model access, limits and budgets read it like a key's), ``anonymous`` (no or a
    refused credential on a route the route rules made public: no role, no rights), ``custom_auth``
    (what ``general_settings.custom_auth`` returned: ``record`` is built from it, ``user`` is the
    returned object itself, key hashed).
    ``token``: the SHA-256 of the key (for a virtual key, its row's current token).
    ``record``: the virtual key's cached, immutable record (``None`` otherwise).
    ``jwt``: the verified token's :class:`~trioproxy.access.JWTIdentity`.
    """

    kind: Kind
    token: str | None = None
    alias: str | None = None          # master key / open proxy: the presented key, masked
    record: Any = None
    jwt: Any = None
    user: Any = None                  # custom_auth: the UserAPIKeyAuth the function returned

    @classmethod
    def anonymous(cls) -> Identity:
        return cls("anonymous")

    @classmethod
    def from_jwt(cls, jwt: Any, record: Any) -> Identity:
        return cls("jwt", record.token, record.key_alias, record, jwt)

    @classmethod
    def custom(cls, record: Any, user: UserAPIKeyAuth) -> Identity:
        return cls("custom_auth", record.token, record.key_alias, record, None, user)

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
        return self.kind in ("open", "master_key")

    @property
    def user_role(self) -> str | None:
        if self.record is not None:
            return self.record.user_role  # type: ignore[no-any-return]
        return "proxy_admin" if self.is_master else None

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
        if self.user is not None:   # custom_auth: its own answer, every field it set (a fresh copy)
            try:
                return copy.deepcopy(self.user)  # type: ignore[no-any-return]
            except Exception:   # an object the function put in that cannot be copied: a shallow copy
                return copy.copy(self.user)  # type: ignore[no-any-return]
        if self.record is not None:
            user = self.record.to_user_api_key_auth()
            if self.jwt is not None:   # the customer the token names, for spend (end_user_id_jwt_field)
                user.end_user_id = self.jwt.end_user_id
                user.metadata.setdefault("jwt_subject", self.jwt.subject)
            return user  # type: ignore[no-any-return]
        if self.kind == "master_key":
            return UserAPIKeyAuth(api_key=self.token, key_alias=self.alias, user_id="admin", user_role="proxy_admin")
        if self.kind == "anonymous":
            return UserAPIKeyAuth()
        return UserAPIKeyAuth(api_key=self.token, key_alias=self.alias, user_role="proxy_admin")
