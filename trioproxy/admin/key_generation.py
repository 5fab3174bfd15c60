"""What the config says about ``/key/generate``: LiteLLM's ``default_key_generate_params``,
``upperbound_key_generate_params`` and ``key_generation_settings`` (all under ``litellm_settings``).

Read once at startup (:meth:`KeyGenerationPolicy.from_settings`, every problem named; ``trioproxy
check`` says them) and applied by ``keys.key_generate`` with LiteLLM's meaning
(``key_management_endpoints.generate_key_fn``):

* **defaults** fill what the request did not send: ``max_budget``, ``user_id``, ``team_id``,
  ``max_parallel_requests``, ``tpm_limit``, ``rpm_limit``, ``budget_duration`` when absent or
  null; ``models`` when absent or ``[]``; ``metadata`` when absent or ``{}``. Also ``duration``
  (LiteLLM's docs list it, its code forgets it: the author meant a default lifetime).
* **upper bounds** (``max_budget``, ``max_parallel_requests``, ``tpm_limit``, ``rpm_limit``,
  ``budget_duration``, ``duration``): a request above one is a 400 ``<field> is over max limit set
  in config - user_value=…; max_value=…``; a request without the field gets the bound (so a key
  never lives longer than ``duration``, never has an unbounded budget). They apply to every caller,
  the master key included, as in LiteLLM.
* **key_generation_settings** decides who besides a proxy admin may generate keys. Without it
  trioproxy's rule stands (only proxy admins generate keys, ``docs/keys.md``). With it, LiteLLM's:
  a *team key* (``team_id`` set) may be made by a member of that team whose team role is in
  ``team_key_generation.allowed_team_member_roles`` (default ``["admin", "user"]``), for
  themselves or another member; a *personal key* by a user whose role is in
  ``personal_key_generation.allowed_user_roles`` (no list: any internal user), for themselves only.
  ``required_params`` must be in the request (team keys: not for proxy admins; personal keys: for
  everyone, as in LiteLLM). A non-admin's key belongs to them (``user_id`` defaults to theirs), and
  may not set ``permissions``, ``spend``, ``budget_id``, ``organization_id`` or ``blocked``: those
  would let a user lift what an admin set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..store.money import from_micros
from .errors import bad_request, forbidden
from .validation import (
    duration,
    integer,
    json_object,
    money,
    optional,
    string,
    string_list,
    validate,
)

__all__ = ["KeyGenerationPolicy", "KeyGenerationSettingsError"]

DEFAULT_FIELDS = {
    "max_budget": optional(money), "user_id": optional(string), "team_id": optional(string),
    "max_parallel_requests": optional(integer(0)), "tpm_limit": optional(integer(0)),
    "rpm_limit": optional(integer(0)), "budget_duration": optional(duration), "duration": optional(duration),
    "models": optional(string_list), "metadata": optional(json_object),
}
UPPER_FIELDS = {
    "max_budget": optional(money), "max_parallel_requests": optional(integer(0)), "tpm_limit": optional(integer(0)),
    "rpm_limit": optional(integer(0)), "budget_duration": optional(duration), "duration": optional(duration),
}
#: fields a non-admin may not set on a key they generate (module docstring)
ADMIN_ONLY_FIELDS = ("permissions", "spend", "budget_id", "organization_id", "blocked")
_NUMBERS = ("max_budget", "max_parallel_requests", "tpm_limit", "rpm_limit")
_DURATIONS = ("budget_duration", "duration")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class KeyGenerationSettingsError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _checked(section: str, value: Any, fields: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    try:
        out = validate(value, fields, f"litellm_settings.{section}")
    except Exception as exc:   # validate's 400: its message names the field
        problems.append(str(getattr(exc, "message", exc)))
        return {}
    return {k: v for k, v in out.items() if v is not None}


def _roles(value: Any, where: str, problems: list[str]) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: expected a list of role names")
        return None
    return tuple(value)


@dataclass(frozen=True)
class GenerationRule:
    allowed_roles: tuple[str, ...] | None = None
    required_params: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyGenerationPolicy:
    defaults: Mapping[str, Any] = field(default_factory=dict)
    upper: Mapping[str, Any] = field(default_factory=dict)
    #: ``key_generation_settings`` given at all (then non-admins may generate keys by its rules)
    delegated: bool = False
    team: GenerationRule = GenerationRule(("admin", "user"))
    personal: GenerationRule | None = None

    @classmethod
    def from_settings(cls, litellm_settings: Mapping[str, Any]) -> KeyGenerationPolicy | None:
        """The policy of ``litellm_settings``, ``None`` when it sets none of the three keys;
        :class:`KeyGenerationSettingsError` listing every problem."""
        keys = ("default_key_generate_params", "upperbound_key_generate_params", "key_generation_settings")
        if not any(litellm_settings.get(k) is not None for k in keys):
            return None
        problems: list[str] = []
        defaults = _checked(keys[0], litellm_settings.get(keys[0]), DEFAULT_FIELDS, problems)
        upper = _checked(keys[1], litellm_settings.get(keys[1]), UPPER_FIELDS, problems)
        raw = litellm_settings.get(keys[2])
        team, personal = GenerationRule(("admin", "user")), None
        if raw is not None:
            if not isinstance(raw, Mapping):
                problems.append(f"litellm_settings.{keys[2]}: expected a mapping")
                raw = {}
            unknown = [k for k in raw if k not in ("team_key_generation", "personal_key_generation")]
            if unknown:
                problems.append(f"litellm_settings.{keys[2]}: unknown key(s) {', '.join(map(repr, unknown))}; "
                                "known: team_key_generation, personal_key_generation")
            for name in ("team_key_generation", "personal_key_generation"):
                section = raw.get(name)
                if section is None:
                    continue
                where = f"litellm_settings.{keys[2]}.{name}"
                if not isinstance(section, Mapping):
                    problems.append(f"{where}: expected a mapping")
                    continue
                role_key = "allowed_team_member_roles" if name == "team_key_generation" else "allowed_user_roles"
                extra = [k for k in section if k not in (role_key, "required_params")]
                if extra:
                    problems.append(f"{where}: unknown key(s) {', '.join(map(repr, extra))}; known: {role_key}, "
                                    "required_params")
                roles = _roles(section.get(role_key), f"{where}.{role_key}", problems)
                required = _roles(section.get("required_params"), f"{where}.required_params", problems) or ()
                if name == "team_key_generation":
                    team = GenerationRule(roles if roles is not None else ("admin", "user"), required)
                else:
                    personal = GenerationRule(roles, required)
        if problems:
            raise KeyGenerationSettingsError(problems)
        return cls(defaults, upper, raw is not None, team, personal)

    # -- applied by /key/generate ------------------------------------------------------------
    def apply(self, fields: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        """``fields`` (validated) with the defaults filled in and the upper bounds enforced (400)."""
        out = dict(fields)
        for name, value in self.defaults.items():
            current = out.get(name)
            if current is None or (name in ("models", "metadata") and not current):
                out[name] = value
        for name, bound in self.upper.items():
            value = out.get(name)
            if value is None:
                out[name] = bound
                continue
            if name in _NUMBERS:
                over = value > bound
                shown, limit = (from_micros(value), from_micros(bound)) if name == "max_budget" else (value, bound)
            else:
                start = now or _EPOCH
                over = value.after(start) > bound.after(start)
                shown, limit = str(value), str(bound)
            if over:
                raise bad_request(f"{name} is over max limit set in config - user_value={shown}; max_value={limit}",
                                  param=name)
        return out

    def check_non_admin(self, *, role: str | None, user_id: str | None, fields: dict[str, Any], sent: Mapping[str, Any],
                        team_role: str | None) -> dict[str, Any]:
        """A non-admin's request by ``key_generation_settings`` (403/400 as LiteLLM), with ``user_id``
        defaulted to the caller's. ``team_role``: the caller's role in ``fields['team_id']``'s team
        (``None``: not a member). Raises 403 when the settings do not delegate key generation."""
        if not self.delegated:
            raise forbidden("user not allowed to access this route. Route=/key/generate is an admin only route")
        locked = [name for name in ADMIN_ONLY_FIELDS if name in sent]
        if locked:
            raise forbidden(f"Only a proxy admin may set {', '.join(locked)} on a key.")
        team_id = fields.get("team_id")
        if team_id is not None:
            if team_role is None:
                raise bad_request(f"User={user_id} not assigned to team={team_id}", param="team_id")
            allowed = self.team.allowed_roles
            if allowed is not None and team_role not in allowed:
                raise bad_request(f"Team member role {team_role} not in allowed_team_member_roles={list(allowed)}",
                                  param="team_id")
            _required(self.team.required_params, sent)
            out = dict(fields)
            out.setdefault("user_id", user_id)
            return out
        if fields.get("user_id") not in (None, user_id):
            raise forbidden(f"User can only create keys for themselves. Got user_id={fields.get('user_id')}, "
                            f"Your ID={user_id}")
        rule = self.personal
        if rule is not None and rule.allowed_roles is not None and role not in rule.allowed_roles:
            raise bad_request(f"Personal key creation has been restricted by admin. Allowed roles="
                              f"{list(rule.allowed_roles)}. Your role={role}")
        if rule is not None:
            _required(rule.required_params, sent)
        return {**fields, "user_id": user_id}

    def check_admin_personal(self, fields: Mapping[str, Any], sent: Mapping[str, Any]) -> None:
        """LiteLLM applies ``personal_key_generation.required_params`` to admins too (team keys: not)."""
        if fields.get("team_id") is None and self.personal is not None:
            _required(self.personal.required_params, sent)


def _required(params: tuple[str, ...], sent: Mapping[str, Any]) -> None:
    for name in params:
        if name not in sent:
            raise bad_request(f"Required param {name} not in data", param=name)
