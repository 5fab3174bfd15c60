"""A verified JWT's caller as a key record: the store's team and user, bound like a virtual key's.

Why a record: the request path already reads a virtual key's :class:`~.key_cache.AuthRecord` for
model access (``auth.key_rules``), limits and budgets (``spend``/``coordination``), the hooks'
``UserAPIKeyAuth`` and the management routes' caller. A JWT caller gets the same record shape,
built from its claims and the store's rows, so every one of those reads a JWT's team, user and
budgets exactly as they read a key's — no second code path to drift.

The record of a JWT (``record_for``):

* ``token``: SHA-256 of ``jwt:<iss>:<sub>`` — stable per subject, so spend and limits follow the
  person or client, not each short-lived token (LiteLLM keys JWT spend by the token's hash, its
  issue #40398). ``key_name`` ``jwt``; ``key_alias`` ``jwt:<sub>``.
* ``team``: the team named by the token (``team_id_jwt_field`` / ``team_id_default``) must exist
  (401 ``Team doesn't exist in db…``), unless ``team_id_upsert`` creates it (empty: no models
  restriction, no budget). A blocked team is a 401, as for its keys. The team's models, limits and
  budget then bind the token: ``models`` is empty, so the team's list decides.
* several teams (``team_ids_jwt_field``, no single team named): authentication binds none
  (``needs_team``); once the request's model is known the pipeline asks ``record_for_model``,
  which binds — as LiteLLM's ``JWTAuthManager.find_team_with_model_access`` — the first listed
  team (token order) that exists, is not blocked and may use the model, so its models, limits and
  budget apply and it pays; none → 403 ``No team has access to the requested model: …``. An
  ``x-litellm-team-id`` header picks a listed team instead (another: 403, as LiteLLM's
  ``get_team_id_from_header``). With ``enforce_team_based_model_access``, a token with no team at
  all is a 403.
* ``user``: the user named by ``user_id_jwt_field``, created on first use with role
  ``internal_user`` when ``user_id_upsert`` is true; an admin-scope token is ``proxy_admin``
  whatever the stored role says. Membership (``team_memberships``) when both are known.
* ``expires``: the token's ``exp``.

Team and user rows are cached for ``ttl`` seconds (the key cache's TTL) and dropped on the store's
team/user invalidations; a store that cannot answer is a 503 (never a 401).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..auth.identity import hash_key
from ..auth.key_rules import TeamModelAccessDenied, model_allowed
from ..errors import AuthenticationError, PermissionDeniedError
from .errors import Conflict
from .invalidation import Invalidation
from .key_cache import AuthRecord, MembershipInfo, TeamInfo, UserInfo, team_info, user_info
from .repositories.base import Actor, get_tx
from .schema import internal_users, team_memberships, teams
from .unavailable import OutageLog, unavailable_is_503

if TYPE_CHECKING:
    from .store import Store

__all__ = ["JWTRecords"]

_ACTOR = Actor(changed_by="jwt_auth")
_MAX_ENTRIES = 10_000

Rows = tuple[TeamInfo | None, UserInfo | None, MembershipInfo | None]


class JWTRecords:
    """``record_for(jwt)``: the :class:`AuthRecord` a verified JWT calls with (module docstring)."""

    def __init__(self, store: Store, *, ttl: float = 60.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl = ttl
        self._monotonic = monotonic
        self._rows: dict[tuple[str | None, str | None], tuple[Rows, float]] = {}
        self._outage = OutageLog("JWT team/user", monotonic)
        store.bus.subscribe(self._on_event)
        store.bus.on_reset(self._rows.clear)

    def _on_event(self, event: Invalidation) -> None:
        if event.kind in ("team", "user", "all"):
            self._rows.clear()

    async def record_for(self, jwt: Any) -> AuthRecord:
        team_id: str | None = jwt.team_id
        user_id: str | None = jwt.user_id
        if (jwt.enforce_team_based_model_access and team_id is None and not jwt.team_ids
                and str(jwt.role) != "proxy_admin"):
            raise PermissionDeniedError("No teams found in token. `enforce_team_based_model_access` is set to True. "
                                        "Token must belong to a team.", code="team_not_found")
        with unavailable_is_503(self._outage):
            team, user, membership = await self._load(team_id, user_id)
            if team_id is not None and team is None:
                if not jwt.team_id_upsert:
                    raise AuthenticationError(f"Team doesn't exist in db. Team={team_id}. Create team via "
                                              "`/team/new` call.", code="team_not_found")
                await self._create(lambda: self._store.teams.create({"team_id": team_id}, [], _ACTOR))
                team, user, membership = await self._load(team_id, user_id, fresh=True)
            if user_id is not None and user is None and jwt.user_id_upsert:
                values = {"user_id": user_id, "user_role": "internal_user"}
                if jwt.user_email:
                    values["user_email"] = jwt.user_email
                await self._create(lambda: self._store.users.create(values, _ACTOR))
                team, user, membership = await self._load(team_id, user_id, fresh=True)
        if team is not None and team.blocked:
            raise AuthenticationError(f"Team={team.team_id} is blocked. Update via /team/unblock if you're an "
                                      "admin.", code="key_blocked")
        return self._record(jwt, team_id, team, user, membership)

    @staticmethod
    def needs_team(jwt: Any) -> bool:
        """A token that lists teams (``team_ids_jwt_field``) but names none: its team is chosen per
        request (:meth:`record_for_model`), never left unbound on a model route."""
        return bool(jwt.team_ids) and jwt.team_id is None and str(jwt.role) != "proxy_admin"

    async def record_for_model(self, jwt: Any, model: str | None, header_team_id: str | None = None) -> AuthRecord:
        """The record of a several-teams token for one request, bound to the team that serves it.

        As LiteLLM's ``JWTAuthManager.auth_builder``: an ``x-litellm-team-id`` header picks the team
        (it must be one the token lists: 403 otherwise; it must exist: 401 as for a named team).
        Else the first team, in the token's order, that exists, is not blocked and may use
        ``model`` (``find_team_with_model_access``); none → 403 "No team has access to the requested
        model". Without a model (no team can be judged) the record stays unbound, as in LiteLLM.
        """
        team_ids = tuple(dict.fromkeys(jwt.team_ids))
        user_id: str | None = jwt.user_id
        if header_team_id is not None:
            if header_team_id not in team_ids:
                raise PermissionDeniedError(
                    f"Team '{header_team_id}' from x-litellm-team-id header is not in your JWT's allowed teams. "
                    f"Allowed teams: {list(team_ids)}", code="team_not_allowed")
            return await self.record_for(dataclasses.replace(jwt, team_id=header_team_id))
        if model is None:
            return await self.record_for(jwt)
        with unavailable_is_503(self._outage):
            for team_id in team_ids:
                team, user, membership = await self._load(team_id, user_id)
                if team is not None and not team.blocked and model_allowed(team.models, model):
                    return self._record(jwt, team_id, team, user, membership)
        raise TeamModelAccessDenied(
            f"No team has access to the requested model: {model}. Checked teams={list(team_ids)}. "
            "Check `/models` to see all available models.", param="model")

    @staticmethod
    def _record(jwt: Any, team_id: str | None, team: TeamInfo | None, user: UserInfo | None,
                membership: MembershipInfo | None) -> AuthRecord:
        user_id: str | None = jwt.user_id
        if str(jwt.role) == "proxy_admin":
            user = _admin(user, user_id or jwt.subject)
        subject = jwt.subject or user_id or team_id or ""
        expires = datetime.fromtimestamp(jwt.expires_at, UTC) if jwt.expires_at is not None else None
        return AuthRecord(
            token=hash_key(f"jwt:{jwt.issuer or ''}:{subject}"), key_name="jwt", key_alias=f"jwt:{subject}",
            user_id=user_id, team_id=team_id, organization_id=jwt.org_id,
            models=(), aliases={}, config={}, metadata={}, permissions={}, enforced_params=(), guardrails=(),
            allowed_routes=(), max_budget=None, soft_budget=None, spend=0, budget_duration=None,
            budget_reset_at=None, tpm_limit=None, rpm_limit=None, max_parallel_requests=None,
            model_max_budget={}, model_rpm_limit={}, model_tpm_limit={}, blocked=False,
            expires=expires, expires_ts=jwt.expires_at, grace_until=None, grace_until_ts=None,
            user=user, team=team, membership=membership)

    async def _create(self, create: Callable[[], Any]) -> None:
        try:
            await create()
        except Conflict:
            pass   # another request (or process) created it first

    async def _load(self, team_id: str | None, user_id: str | None, *, fresh: bool = False) -> Rows:
        key = (team_id, user_id)
        now = self._monotonic()
        cached = self._rows.get(key)
        if cached is not None and not fresh and now < cached[1]:
            return cached[0]

        def read(conn: Any) -> Rows:
            t = get_tx(conn, teams, team_id=team_id) if team_id is not None else None
            u = get_tx(conn, internal_users, user_id=user_id) if user_id is not None else None
            m = (get_tx(conn, team_memberships, team_id=team_id, user_id=user_id)
                 if t is not None and u is not None else None)
            return (team_info(t) if t else None, user_info(u) if u else None,
                    MembershipInfo(role=m["role"], max_budget_in_team=m["max_budget_in_team"], spend=m["spend"] or 0)
                    if m else None)

        rows = await self._store.db.read(read)
        if len(self._rows) >= _MAX_ENTRIES:
            self._rows.clear()
        self._rows[key] = (rows, now + self._ttl)
        return rows


def _admin(user: UserInfo | None, user_id: str | None) -> UserInfo:
    """An admin-scope token is a proxy admin, whatever (or whether) the store knows of its user."""
    if user is not None:
        return dataclasses.replace(user, user_role="proxy_admin")
    return UserInfo(user_id=user_id or "", user_role="proxy_admin", user_email=None, models=(), metadata={},
                    max_budget=None, spend=0, budget_duration=None, budget_reset_at=None, tpm_limit=None,
                    rpm_limit=None, max_parallel_requests=None, model_max_budget={})
