"""The request path's view of keys: ``await key_cache.authenticate(api_key)`` → :class:`AuthRecord`.

A cache hit costs a SHA-256 of the presented key, one dict lookup and a few comparisons (measured
in ``bench/auth_cache.py``); no database, no thread. A miss is one ``SELECT`` (the key joined with
its user, team and membership, or the row a grace-period hash points to) in a worker thread.

Entries are keyed by the SHA-256 of the *presented* key and indexed by the row's token, team and
user, so an invalidation of a key, a team or a user drops every entry it concerns at once —
including a rotated key's old hash during its grace period. See ``loading_cache.py`` for the rules
(single-flight loads, generation counter against stale fills, negative entries, TTL backstop).

A miss the store cannot answer is a 503 (``unavailable.py``), never a 401.

Unknown keys: cached as "not found" for ``negative_ttl`` (10 s by default) in a bounded table. A
key created in this process publishes its hash first, so it works on its very first request; a
key created by another process is found after at most ``negative_ttl`` if someone presented it
here before it existed (only possible for a bring-your-own ``key``), or at once after issue #13's
bus delivers the creation.

The record is immutable (frozen dataclass, JSON values frozen to ``MappingProxyType`` and tuples)
so the request path cannot write into the cache (LiteLLM #25553); ``spend`` in it is a snapshot
at load time, not a live counter (issue #11 keeps live spend in counters).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from ..auth.identity import UserAPIKeyAuth, hash_key
from ..errors import AuthenticationError
from .database import Database
from .errors import StoreUnavailable
from .invalidation import Invalidation, InvalidationBus
from .loading_cache import MISS, LoadingCache, _add, _remove
from .money import from_micros
from .schema import (
    deprecated_keys,
    internal_users,
    team_memberships,
    teams,
    virtual_keys,
)
from .sql import Conn, codec_for, encode_time
from .sql_select import select_list
from .unavailable import OutageLog, StoreUnavailableError, unavailable_is_503

__all__ = [
    "AuthRecord",
    "BlockedKeyError",
    "ExpiredKeyError",
    "InvalidKeyError",
    "KeyCache",
    "StoreUnavailableError",
    "freeze",
    "thaw",
]


# --- errors (LiteLLM's messages) ----------------------------------------------------------------

class InvalidKeyError(AuthenticationError):
    """No such key (never existed, deleted, rotated without grace, or its grace period ended)."""


class ExpiredKeyError(AuthenticationError):
    error_type = "expired_key"
    default_code = "expired_key"


class BlockedKeyError(AuthenticationError):
    default_code = "key_blocked"


def _invalid(token: str) -> InvalidKeyError:
    return InvalidKeyError(f"Authentication Error, Invalid proxy server token passed. key={token}, not found in db. "
                           "Create key via `/key/generate` call.")


# --- immutable values ---------------------------------------------------------------------------

def freeze(value: Any) -> Any:
    """JSON value → read-only form: dicts as ``MappingProxyType``, lists as tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})


def thaw(value: Any) -> Any:
    """The inverse of :func:`freeze`: fresh dicts and lists a hook may change freely.

    On every request of a virtual key (``to_user_api_key_auth``): exact type checks first, because
    ``isinstance`` against the ``Mapping`` ABC costs more than the copy of a small metadata dict.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is MappingProxyType or kind is dict:
        return {k: thaw(v) for k, v in value.items()} if value else {}
    if kind is tuple or kind is list:
        return [thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    return value


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


@dataclass(frozen=True, slots=True)
class UserInfo:
    user_id: str
    user_role: str
    user_email: str | None
    models: tuple[str, ...]
    metadata: Mapping[str, Any]
    max_budget: int | None          # micro-USD
    spend: int                      # micro-USD, at load time
    budget_duration: str | None
    budget_reset_at: datetime | None
    tpm_limit: int | None
    rpm_limit: int | None
    max_parallel_requests: int | None
    model_max_budget: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TeamInfo:
    team_id: str
    team_alias: str | None
    organization_id: str | None
    models: tuple[str, ...]
    metadata: Mapping[str, Any]
    blocked: bool
    max_budget: int | None
    soft_budget: int | None
    spend: int
    budget_duration: str | None
    budget_reset_at: datetime | None
    tpm_limit: int | None
    rpm_limit: int | None
    max_parallel_requests: int | None
    model_aliases: Mapping[str, Any]
    model_max_budget: Mapping[str, Any]
    model_rpm_limit: Mapping[str, Any]
    model_tpm_limit: Mapping[str, Any]
    guardrails: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class MembershipInfo:
    role: str
    max_budget_in_team: int | None
    spend: int
    budget_duration: str | None = None
    budget_reset_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuthRecord:
    """Everything authentication and limits need about a key, its user and its team."""

    token: str                           # SHA-256 hex of the row's *current* key
    key_name: str
    key_alias: str | None
    user_id: str | None
    team_id: str | None
    organization_id: str | None
    models: tuple[str, ...]
    aliases: Mapping[str, Any]
    config: Mapping[str, Any]
    metadata: Mapping[str, Any]
    permissions: Mapping[str, Any]
    enforced_params: tuple[Any, ...]
    guardrails: tuple[Any, ...]
    allowed_routes: tuple[Any, ...]
    max_budget: int | None               # micro-USD
    soft_budget: int | None
    spend: int                           # micro-USD, snapshot at load time
    budget_duration: str | None
    budget_reset_at: datetime | None
    tpm_limit: int | None
    rpm_limit: int | None
    max_parallel_requests: int | None
    model_max_budget: Mapping[str, Any]
    model_rpm_limit: Mapping[str, Any]
    model_tpm_limit: Mapping[str, Any]
    blocked: bool
    expires: datetime | None
    expires_ts: float | None             # epoch seconds, for the per-request comparison
    grace_until: datetime | None         # set when the presented key is a rotated-away one
    grace_until_ts: float | None
    user: UserInfo | None
    team: TeamInfo | None
    membership: MembershipInfo | None

    @property
    def user_role(self) -> str | None:
        return self.user.user_role if self.user is not None else None

    @property
    def team_blocked(self) -> bool:
        return self.team is not None and self.team.blocked

    def to_user_api_key_auth(self) -> UserAPIKeyAuth:
        """What hooks receive: fresh, mutable copies (a hook changing them never touches the cache)."""
        team = self.team
        return UserAPIKeyAuth(
            api_key=self.token,
            key_alias=self.key_alias,
            key_name=self.key_name,
            user_id=self.user_id,
            user_role=self.user_role,
            team_id=self.team_id,
            team_alias=team.team_alias if team else None,
            org_id=self.organization_id,
            models=list(self.models),
            metadata=thaw(self.metadata),
            team_metadata=thaw(team.metadata) if team else {},
            permissions=thaw(self.permissions),
            max_parallel_requests=self.max_parallel_requests,
            tpm_limit=self.tpm_limit,
            rpm_limit=self.rpm_limit,
            max_budget=from_micros(self.max_budget),
            spend=from_micros(self.spend) or 0.0,
            soft_budget=from_micros(self.soft_budget),
            budget_duration=self.budget_duration,
            expires=self.expires.isoformat() if self.expires is not None else None,
            user_email=self.user.user_email if self.user is not None else None,
            team_models=list(team.models) if team else [],
            team_max_budget=from_micros(team.max_budget) if team else None,
            team_spend=from_micros(team.spend) if team else None,
            team_tpm_limit=team.tpm_limit if team else None,
            team_rpm_limit=team.rpm_limit if team else None,
            team_member_spend=from_micros(self.membership.spend) if self.membership else None,
        )


# --- loading ------------------------------------------------------------------------------------

#: one statement per miss: the key by its hash, or the key a grace-period hash points to, with
#: its user, team and membership (all primary-key lookups)
_LOAD_KEY_SQL = (
    f"SELECT {select_list('k', virtual_keys)}, {select_list('u', internal_users)}, "
    f"{select_list('t', teams)}, {select_list('m', team_memberships)}, "
    '(SELECT d."revoke_at" FROM "deprecated_keys" d WHERE d."token" = :h AND d."revoke_at" > :now) AS "d__revoke_at" '
    'FROM "virtual_keys" k '
    'LEFT JOIN "internal_users" u ON u."user_id" = k."user_id" '
    'LEFT JOIN "teams" t ON t."team_id" = k."team_id" '
    'LEFT JOIN "team_memberships" m ON m."team_id" = k."team_id" AND m."user_id" = k."user_id" '
    'WHERE k."token" = COALESCE((SELECT d."active_token" FROM "deprecated_keys" d '
    'WHERE d."token" = :h AND d."revoke_at" > :now), :h)'
)


def user_info(u: Mapping[str, Any]) -> UserInfo:
    """An ``internal_users`` row (decoded) → :class:`UserInfo`."""
    return UserInfo(
        user_id=u["user_id"], user_role=u["user_role"], user_email=u["user_email"],
        models=freeze(u["models"] or []), metadata=freeze(u["metadata"] or {}),
        max_budget=u["max_budget"], spend=u["spend"] or 0, budget_duration=u["budget_duration"],
        budget_reset_at=u["budget_reset_at"], tpm_limit=u["tpm_limit"], rpm_limit=u["rpm_limit"],
        max_parallel_requests=u["max_parallel_requests"],
        model_max_budget=freeze(u["model_max_budget"] or {}))


def team_info(t: Mapping[str, Any]) -> TeamInfo:
    """A ``teams`` row (decoded) → :class:`TeamInfo`."""
    return TeamInfo(
        team_id=t["team_id"], team_alias=t["team_alias"], organization_id=t["organization_id"],
        models=freeze(t["models"] or []), metadata=freeze(t["metadata"] or {}), blocked=bool(t["blocked"]),
        max_budget=t["max_budget"], soft_budget=t["soft_budget"], spend=t["spend"] or 0,
        budget_duration=t["budget_duration"], budget_reset_at=t["budget_reset_at"],
        tpm_limit=t["tpm_limit"], rpm_limit=t["rpm_limit"], max_parallel_requests=t["max_parallel_requests"],
        model_aliases=freeze(t["model_aliases"] or {}), model_max_budget=freeze(t["model_max_budget"] or {}),
        model_rpm_limit=freeze(t["model_rpm_limit"] or {}), model_tpm_limit=freeze(t["model_tpm_limit"] or {}),
        guardrails=freeze(t["guardrails"] or []))


def load_auth_record_tx(conn: Conn, token: str, now: datetime) -> AuthRecord | None:
    raw = conn.one(_LOAD_KEY_SQL, {"h": token, "now": encode_time(now, conn.dialect)})  # type: ignore[arg-type]
    if raw is None:
        return None
    d = conn.dialect
    k = codec_for(virtual_keys, d).decode(raw, "k__")  # type: ignore[arg-type]
    grace = codec_for(deprecated_keys, d).decode(raw, "d__").get("revoke_at")  # type: ignore[arg-type]
    if k["token"] != token and grace is None:
        return None
    user = team = membership = None
    if raw.get("u__user_id") is not None:
        user = user_info(codec_for(internal_users, d).decode(raw, "u__"))  # type: ignore[arg-type]
    if raw.get("t__team_id") is not None:
        team = team_info(codec_for(teams, d).decode(raw, "t__"))  # type: ignore[arg-type]
    if raw.get("m__user_id") is not None:
        m = codec_for(team_memberships, d).decode(raw, "m__")  # type: ignore[arg-type]
        membership = MembershipInfo(role=m["role"], max_budget_in_team=m["max_budget_in_team"], spend=m["spend"] or 0,
                                    budget_duration=m["budget_duration"], budget_reset_at=m["budget_reset_at"])
    return AuthRecord(
        token=k["token"], key_name=k["key_name"], key_alias=k["key_alias"], user_id=k["user_id"],
        team_id=k["team_id"], organization_id=k["organization_id"],
        models=freeze(k["models"] or []), aliases=freeze(k["aliases"] or {}), config=freeze(k["config"] or {}),
        metadata=freeze(k["metadata"] or {}), permissions=freeze(k["permissions"] or {}),
        enforced_params=freeze(k["enforced_params"] or []), guardrails=freeze(k["guardrails"] or []),
        allowed_routes=freeze(k["allowed_routes"] or []),
        max_budget=k["max_budget"], soft_budget=k["soft_budget"], spend=k["spend"] or 0,
        budget_duration=k["budget_duration"], budget_reset_at=k["budget_reset_at"],
        tpm_limit=k["tpm_limit"], rpm_limit=k["rpm_limit"], max_parallel_requests=k["max_parallel_requests"],
        model_max_budget=freeze(k["model_max_budget"] or {}), model_rpm_limit=freeze(k["model_rpm_limit"] or {}),
        model_tpm_limit=freeze(k["model_tpm_limit"] or {}),
        blocked=bool(k["blocked"]), expires=k["expires"], expires_ts=_ts(k["expires"]),
        grace_until=grace if k["token"] != token else None,
        grace_until_ts=_ts(grace) if k["token"] != token else None,
        user=user, team=team, membership=membership)


class KeyCache(LoadingCache[AuthRecord]):
    """Virtual keys for the request path. Subscribes to ``bus`` at construction."""

    def __init__(self, db: Database, bus: InvalidationBus, *, ttl: float = 60.0, negative_ttl: float = 10.0,
                 max_entries: int = 100_000, max_negative: int = 10_000,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        self._db = db
        self._clock = clock        # wall clock (epoch seconds): expiry and grace periods are wall times
        super().__init__(self._load_record, ttl=ttl, negative_ttl=negative_ttl, max_entries=max_entries,
                         max_negative=max_negative, monotonic=monotonic, live=lambda: bus.live,
                         stale_errors=(StoreUnavailable,))
        self._by_row: dict[str, set[str]] = {}
        self._by_team: dict[str, set[str]] = {}
        self._by_user: dict[str, set[str]] = {}
        self._outage = OutageLog("key", monotonic)
        bus.subscribe(self._on_event)
        bus.on_reset(self.clear)

    async def _load_record(self, token: str) -> AuthRecord | None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        return await self._db.read(lambda conn: load_auth_record_tx(conn, token, now))

    async def find(self, token: str) -> AuthRecord | None:
        """The record of the key whose hash is ``token`` (hit or load), or ``None``; a 503 when the
        store cannot answer."""
        record = self.lookup(token)
        if record is MISS:
            with unavailable_is_503(self._outage):
                record = await self.get(token)
        return record  # type: ignore[return-value]

    async def authenticate(self, api_key: str) -> AuthRecord:
        """The key's record, or a 401 with LiteLLM's message (unknown, blocked, team blocked, expired).

        The clear key is hashed here and goes nowhere else.
        """
        token = hash_key(api_key)
        record = self.lookup(token)
        if record is MISS:
            with unavailable_is_503(self._outage):
                record = await self.get(token)
        if record is None:
            raise _invalid(token)
        now = self._clock()
        if record.grace_until_ts is not None and now >= record.grace_until_ts:  # type: ignore[union-attr]
            raise _invalid(token)
        if record.blocked:  # type: ignore[union-attr]
            raise BlockedKeyError("Key is blocked. Update via /key/unblock if you're an admin.")
        team = record.team  # type: ignore[union-attr]
        if team is not None and team.blocked:
            raise BlockedKeyError(f"Team={team.team_id} is blocked. Update via /team/unblock if you're an admin.",
                                  code="team_blocked")
        expires_ts = record.expires_ts  # type: ignore[union-attr]
        if expires_ts is not None and now >= expires_ts:
            raise ExpiredKeyError(
                f"Authentication Error - Expired Key. Key Expiry time {record.expires.isoformat()} "  # type: ignore[union-attr]
                f"and current time {datetime.fromtimestamp(now, record.expires.tzinfo).isoformat()}")  # type: ignore[union-attr]
        return record  # type: ignore[return-value]

    # --- invalidation ----------------------------------------------------------------------------

    def _index(self, key: str, record: AuthRecord) -> None:
        _add(self._by_row, record.token, key)
        _add(self._by_team, record.team_id, key)
        _add(self._by_user, record.user_id, key)

    def _unindex(self, key: str, record: AuthRecord) -> None:
        _remove(self._by_row, record.token, key)
        _remove(self._by_team, record.team_id, key)
        _remove(self._by_user, record.user_id, key)

    def _clear_indexes(self) -> None:
        self._by_row.clear()
        self._by_team.clear()
        self._by_user.clear()

    def _on_event(self, event: Invalidation) -> None:
        if event.kind == "key":
            self.invalidate([event.id, *self._by_row.get(event.id, ())])
        elif event.kind == "team":
            self.invalidate(self._by_team.get(event.id, ()))
        elif event.kind == "user":
            self.invalidate(self._by_user.get(event.id, ()))
        elif event.kind == "all":
            self.clear()
