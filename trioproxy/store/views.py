"""Rows → the JSON objects LiteLLM answers with (and the audit log records).

One place decides how stored values look outside: money (integer micro-USD in the store) becomes a
JSON number in USD, times become ISO 8601 with an offset, per-model budgets get their USD
``budget_limit`` back. The admin answers and the audit rows both use these, so what an operator
reads in ``GET /audit`` matches what the API answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .durations import InvalidDuration, parse_duration
from .money import from_micros, to_micros

__all__ = [
    "audit_view",
    "budget_view",
    "customer_view",
    "jsonable",
    "key_view",
    "membership_view",
    "model_budget_from_request",
    "team_view",
    "user_view",
]

_MONEY = ("max_budget", "soft_budget", "spend", "max_budget_in_team")


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def jsonable(value: Any) -> Any:
    """Datetimes to ISO strings, recursively: what goes into a JSON column of the audit log."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def model_budget_from_request(value: Mapping[str, Any]) -> dict[str, Any]:
    """``{"gpt-4o": {"budget_limit": 0.5, "time_period": "1d"}}`` (or ``{"gpt-4o": 0.5}``) → stored
    form with ``budget_limit_micros`` (money is never a float in the store). Raises ValueError for a
    negative ``budget_limit`` or a ``time_period`` that is not a duration (``"3x"`` would be read
    back as a lifetime budget)."""
    out: dict[str, Any] = {}
    for model, spec in value.items():
        if isinstance(spec, int | float) and not isinstance(spec, bool):
            spec = {"budget_limit": spec}
        if not isinstance(spec, Mapping) or "budget_limit" not in spec:
            raise ValueError(f"model_max_budget[{model!r}] must be a number or an object with 'budget_limit'")
        stored = {k: v for k, v in spec.items() if k != "budget_limit"}
        micros = to_micros(spec["budget_limit"])
        if micros is not None and micros < 0:
            raise ValueError(f"model_max_budget[{model!r}]: budget_limit must not be negative")
        period = spec.get("time_period")
        if period is not None:
            try:
                parse_duration(period)
            except InvalidDuration as exc:
                raise ValueError(f"model_max_budget[{model!r}]: time_period: {exc}") from None
        stored["budget_limit_micros"] = micros
        out[str(model)] = stored
    return out


def _model_budget_view(value: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model, spec in (value or {}).items():
        if isinstance(spec, Mapping) and "budget_limit_micros" in spec:
            shown = {k: v for k, v in spec.items() if k != "budget_limit_micros"}
            shown["budget_limit"] = from_micros(spec["budget_limit_micros"])
            out[model] = shown
        else:
            out[model] = spec
    return out


def _common(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name in _MONEY:
            out[name] = from_micros(value)
        elif name == "model_max_budget":
            out[name] = _model_budget_view(value)
        elif isinstance(value, datetime):
            out[name] = _time(value)
        else:
            out[name] = value
    return out


def key_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A key row as LiteLLM shows it (``token`` is the hash; there is no clear key in a row)."""
    return _common(row)


def user_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return _common(row)


def budget_view(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return _common(row) if row is not None else None


def membership_view(row: Mapping[str, Any]) -> dict[str, Any]:
    out = _common(row)
    out["litellm_budget_table"] = {"max_budget": out.get("max_budget_in_team"),
                                   "budget_duration": out.get("budget_duration"),
                                   "budget_reset_at": out.get("budget_reset_at")}
    return out


def team_view(row: Mapping[str, Any], members: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A team row plus ``members_with_roles`` (and LiteLLM's legacy ``admins``/``members``)."""
    out = _common(row)
    with_roles = [{"role": m["role"], "user_id": m["user_id"], "user_email": m.get("user_email")}
                  for m in members]
    out["members_with_roles"] = with_roles
    out["admins"] = [m["user_id"] for m in with_roles if m["role"] == "admin"]
    out["members"] = [m["user_id"] for m in with_roles if m["role"] != "admin"]
    return out


def customer_view(row: Mapping[str, Any], budget: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out = _common(row)
    out["litellm_budget_table"] = budget_view(budget)
    return out


def audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["updated_at"] = _time(row.get("updated_at"))
    return out
