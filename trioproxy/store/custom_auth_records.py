"""A ``general_settings.custom_auth`` caller as a key record (``auth/custom_auth.py`` asks for it).

Like a JWT's (``jwt_records.py``): the request path reads a virtual key's
:class:`~.key_cache.AuthRecord` for model access, route lists, limits and budgets, so what the
function returns gets the same shape and every check reads it the same way. No database row is read
or written: the function is the source of truth.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..auth.identity import UserAPIKeyAuth
from .key_cache import AuthRecord, TeamInfo, UserInfo, _ts, freeze
from .money import to_micros

__all__ = ["record_for_custom_auth"]


def _with_v1_twins(routes: list[Any]) -> list[Any]:
    """``/chat/completions`` also as ``/v1/chat/completions`` (and back): a custom_auth author who lists
    an OpenAI route means the endpoint, whichever spelling the client's SDK sends (LiteLLM never
    checks these lists for a custom_auth caller unless told to, so its docs never had to say)."""
    out = list(routes)
    for route in routes:
        if isinstance(route, str) and route.startswith("/"):
            twin = route[3:] if route.startswith("/v1/") else f"/v1{route}"
            if twin not in out:
                out.append(twin)
    return out


def record_for_custom_auth(user: UserAPIKeyAuth, token: str) -> AuthRecord:
    """The record of a caller a ``general_settings.custom_auth`` function returned (``auth/custom_auth.py``).

    Like a JWT's (``jwt_records.py``): the request path reads a virtual key's record for model access,
    route lists, limits and budgets, so the function's answer gets the same shape and every check
    reads it the same way. ``token`` is the hashed key (the limit and budget counters' name); the
    user row carries ``user_role`` (the route rules' role) and ``user_*`` limits; the team row the
    ``team_*`` fields. Spend starts from the returned ``spend`` / ``team_spend`` (the function's
    own ledger, as LiteLLM reads them): there is no row in the database to add to.
    """
    expires: datetime | None = None
    if user.expires:
        try:
            expires = datetime.fromisoformat(str(user.expires))
        except ValueError:
            expires = None
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
    info = None
    if user.user_id is not None or user.user_role is not None:
        info = UserInfo(user_id=user.user_id, user_role=user.user_role, user_email=user.user_email,  # type: ignore[arg-type]
                        models=(), metadata=freeze({}), max_budget=to_micros(user.user_max_budget), spend=0,
                        budget_duration=None, budget_reset_at=None, tpm_limit=user.user_tpm_limit,
                        rpm_limit=user.user_rpm_limit, max_parallel_requests=None, model_max_budget=freeze({}))
    team = None
    if user.team_id is not None:
        team = TeamInfo(team_id=user.team_id, team_alias=user.team_alias, organization_id=user.org_id,
                        models=freeze(list(user.team_models or [])), metadata=freeze(user.team_metadata or {}),
                        blocked=False, max_budget=to_micros(user.team_max_budget), soft_budget=None,
                        spend=to_micros(user.team_spend) or 0, budget_duration=None, budget_reset_at=None,
                        tpm_limit=user.team_tpm_limit, rpm_limit=user.team_rpm_limit, max_parallel_requests=None,
                        model_aliases=freeze({}), model_max_budget=freeze({}), model_rpm_limit=freeze({}),
                        model_tpm_limit=freeze({}), guardrails=())
    return AuthRecord(
        token=token, key_name=user.key_name or "custom_auth", key_alias=user.key_alias, user_id=user.user_id,
        team_id=user.team_id, organization_id=user.org_id, models=freeze(list(user.models or [])),
        aliases=freeze(user.aliases or {}), config=freeze(user.config or {}), metadata=freeze(user.metadata or {}),
        permissions=freeze(user.permissions or {}), enforced_params=(), guardrails=(),
        allowed_routes=freeze(_with_v1_twins(user.allowed_routes or [])), max_budget=to_micros(user.max_budget),
        soft_budget=to_micros(user.soft_budget), spend=to_micros(user.spend) or 0,
        budget_duration=None, budget_reset_at=None, tpm_limit=user.tpm_limit,
        rpm_limit=user.rpm_limit, max_parallel_requests=user.max_parallel_requests,
        model_max_budget=freeze(user.model_max_budget or {}), model_rpm_limit=freeze(user.rpm_limit_per_model or {}),
        model_tpm_limit=freeze(user.tpm_limit_per_model or {}), blocked=bool(user.blocked), expires=expires,
        expires_ts=_ts(expires), grace_until=None, grace_until_ts=None, user=info, team=team, membership=None)
