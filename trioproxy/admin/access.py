"""Who may call what, decided in one place.

==========================  ===========================================================
caller                      may
==========================  ===========================================================
master key                  everything (it is the proxy admin)
key of a ``proxy_admin``    everything
key of a                    every read (``*/info``, ``*/list``, ``GET /audit``); no change
``proxy_admin_viewer``
any other key               its own ``/key/info``, its user's ``/user/info``, its team's
                            ``/team/info`` (key bound to the team, or its user a member)
==========================  ===========================================================

Everything else is a 403 with LiteLLM's message shape
(``user not allowed to access this route. Route=/key/generate is an admin only route``).
A ``litellm-changed-by`` header is honoured for the audit log only when an admin sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..auth.identity import Identity
from ..store.key_cache import AuthRecord
from ..store.repositories.base import Actor
from .errors import forbidden

__all__ = ["Access", "Caller", "require"]

ADMIN_ROLES = ("proxy_admin",)
READ_ROLES = ("proxy_admin", "proxy_admin_viewer")
USER_ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")


class Access(Enum):
    ADMIN = "admin"            # proxy admins only
    ADMIN_READ = "admin_read"  # proxy admins and proxy_admin_viewer
    SELF = "self"              # also any key, for its own key / user / team (checked by the operation)
    #: ``/key/generate``: proxy admins, and others only when ``key_generation_settings`` delegates it
    #: (``key_generation.py``; the operation applies its rules)
    KEY_GENERATE = "key_generate"


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a management operation."""

    role: str | None
    is_master: bool = False
    token: str | None = None          # SHA-256 of the caller's key (never the key)
    user_id: str | None = None
    team_id: str | None = None
    changed_by: str | None = None     # the ``litellm-changed-by`` header, if sent

    @classmethod
    def master(cls, master_key_hash: str | None = None, *, changed_by: str | None = None) -> Caller:
        """The master key. The wiring passes no hash (:meth:`for_identity`): the audit log's
        ``changed_by_api_key`` is then empty for the master key, because an unsalted SHA-256 of it,
        readable by every viewer of ``GET /audit``, would let them brute-force a weak master key."""
        return cls(role="proxy_admin", is_master=True, token=master_key_hash, user_id=None, changed_by=changed_by)

    @classmethod
    def for_identity(cls, identity: Identity, *, changed_by: str | None = None) -> Caller:
        """The caller of a management route, from what the ``Authenticator`` decided."""
        if identity.record is not None:
            return cls.from_record(identity.record, changed_by=changed_by)
        if identity.is_master:
            return cls.master(None, changed_by=changed_by)
        return cls(role=None)   # anonymous, on a route made public: no rights

    @classmethod
    def from_record(cls, record: AuthRecord, *, changed_by: str | None = None) -> Caller:
        return cls(role=record.user_role, token=record.token, user_id=record.user_id, team_id=record.team_id,
                   changed_by=changed_by)

    @property
    def is_admin(self) -> bool:
        return self.is_master or self.role in ADMIN_ROLES

    @property
    def can_read_all(self) -> bool:
        return self.is_master or self.role in READ_ROLES

    def actor(self) -> Actor:
        if self.changed_by and self.is_admin:
            changed_by = self.changed_by
        else:
            changed_by = self.user_id or ("admin" if self.is_master else "")
        return Actor(changed_by=changed_by, api_key=self.token or "")


def require(caller: Caller, access: Access, route: str, *, delegated: bool = False) -> None:
    """403 unless ``caller`` passes ``access``; ``Access.SELF`` passes here and is narrowed by the
    operation (only it knows whose key/user/team is asked for). ``delegated``: the config lets
    non-admins generate keys (``Access.KEY_GENERATE``)."""
    if access is Access.KEY_GENERATE:
        access = Access.SELF if delegated else Access.ADMIN
    if access is Access.ADMIN and not caller.is_admin:
        raise forbidden(f"user not allowed to access this route. Route={route} is an admin only route")
    if access is Access.ADMIN_READ and not caller.can_read_all:
        raise forbidden(f"user not allowed to access this route, role= {caller.role}. Trying to access: {route}")
