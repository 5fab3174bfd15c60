"""The spend endpoints (LiteLLM's ``/spend/*`` and ``/global/spend*``), independent of any web framework.

Same conventions as ``trioproxy/admin``: ``async def op(ctx, caller, data) -> answer``, errors are
``trioproxy.errors`` classes with LiteLLM's statuses, and :data:`SPEND_ROUTES` is a route table of
:class:`~trioproxy.admin.Route` the HTTP layer registers beside ``admin.ROUTES`` (its ``ctx`` is a
:class:`SpendContext`, which *is* an ``AdminContext``, so one context can serve both tables).

======================================  ==============================================================
route                                   answer
======================================  ==============================================================
``GET /spend/logs``                     ``[row, …]`` newest first (``request_id``, ``api_key`` (key or
                                        hash), ``user_id``, ``start_date``/``end_date``; ``limit`` ≤ 10 000,
                                        default 1 000). A non-admin key sees only its own rows.
``GET /spend/tags``                     ``[{individual_request_tag, log_count, total_spend}]``
``GET /global/spend``                   ``{spend, max_budget}``: spend in the proxy budget's current window
                                        (``litellm_settings.budget_duration``), else all time
``GET /global/spend/logs``              ``[{date, spend}]`` per UTC day (``api_key`` narrows it)
``GET /global/spend/keys``              ``[{api_key, total_spend, key_alias, key_name}]`` top ``limit`` (5)
``GET /global/spend/teams``             ``{daily_spend: [{date, <team>: spend}], teams, total_spend_per_team}``
``GET|POST /global/spend/end_users``    ``[{end_user, total_spend, total_count}]`` (``api_key``,
                                        ``startTime``/``endTime`` as LiteLLM's body, or ``start_date``)
``GET /global/spend/models``            ``[{model, total_spend}]`` top ``limit`` (5)
``POST /spend/calculate``               ``{cost}`` of ``{model, messages}`` (prompt only, as LiteLLM) or of
                                        ``{completion_response: {model, usage}}``
======================================  ==============================================================

The dashboards (``/global/spend/keys|teams|end_users|models``) cover the last 30 days by default
(LiteLLM's ``Last30d…`` views) and accept ``start_date``/``end_date`` (``YYYY-MM-DD``, inclusive).
Money is USD in answers (micro-USD in the store).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import trio

from ..admin.access import Access, Caller, require
from ..admin.common import AdminContext, store_errors, token_of
from ..admin.errors import bad_request
from ..admin.routes import Route
from ..admin.validation import date_or_time, json_object, query_int, string, validate
from ..observability.prices import Price, compute_cost, usage_from_response
from ..observability.tokens import estimate_usage
from ..store.money import from_micros
from .admission import AdmissionSettings, proxy_window_start

__all__ = ["SPEND_ROUTES", "SpendContext"]


@dataclass
class SpendContext(AdminContext):
    """``AdminContext`` plus what spend answers need: proxy budget settings and model prices."""

    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    price_of: Callable[[str], Price | None] = lambda model: None
    clock: Callable[[], float] = time.time


def _usd(micros: int | None) -> float:
    return from_micros(micros or 0) or 0.0


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def log_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``spend_logs`` row as LiteLLM's ``/spend/logs`` shows it (``messages``, ``response`` and
    ``proxy_server_request`` only when ``store_prompts_in_spend_logs`` kept them)."""
    view = {
        "request_id": row["request_id"], "call_type": row["call_type"], "api_key": row["api_key"],
        "spend": _usd(row["spend"]), "total_tokens": row["total_tokens"], "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"], "startTime": _time(row["start_time"]),
        "endTime": _time(row["end_time"]), "completionStartTime": _time(row.get("completion_start_time")),
        "request_duration_ms": row.get("request_duration_ms"), "model": row["model"], "model_id": row.get("model_id"),
        "model_group": row.get("model_group"), "custom_llm_provider": row.get("custom_llm_provider"),
        "api_base": row.get("api_base"), "user": row.get("user_id"), "metadata": row.get("metadata") or {},
        "cache_hit": row.get("cache_hit"), "cache_key": row.get("cache_key"),
        "request_tags": row.get("request_tags") or [], "team_id": row.get("team_id"),
        "organization_id": row.get("organization_id"), "end_user": row.get("end_user"),
        "requester_ip_address": row.get("requester_ip_address"), "status": row.get("status"),
        "session_id": row.get("session_id"),
    }
    for name in ("messages", "response", "proxy_server_request"):
        if row.get(name) is not None:
            view[name] = row[name]
    return view


def _date(value: Any) -> str:
    return date_or_time(value).astimezone(UTC).strftime("%Y-%m-%d")


def _range(query: Mapping[str, Any], ctx: SpendContext, *, default_days: int | None = 30) -> tuple[str | None, str | None]:
    start = query.get("start_date")
    end = query.get("end_date")
    if start is None and default_days is not None:
        start = (datetime.fromtimestamp(ctx.clock(), UTC) - timedelta(days=default_days)).strftime("%Y-%m-%d")
    return start, end


# --- /spend/logs, /spend/tags --------------------------------------------------------------------------

async def spend_logs(ctx: SpendContext, caller: Caller, data: Any) -> list[dict[str, Any]]:
    route = "/spend/logs"
    require(caller, Access.SELF, route)
    store = ctx.require_store()
    query = validate(data, {"request_id": string, "api_key": string, "user_id": string,
                            "start_date": date_or_time, "end_date": date_or_time, "limit": lambda v: v}, route)
    limit = query_int(query.get("limit"), "limit", route, default=1000, maximum=10_000)
    api_key = token_of(query["api_key"]) if query.get("api_key") else None
    user_id = query.get("user_id")
    if not caller.can_read_all:                 # a plain key reads its own rows only
        if api_key is not None and api_key != caller.token:
            raise bad_request("You can only view the spend logs of your own key", param="api_key")
        api_key = caller.token
    end = query.get("end_date")
    if end is not None and isinstance(data.get("end_date"), str) and len(data["end_date"]) == 10:
        end = end + timedelta(days=1)           # a bare end date includes that day
    with store_errors():
        rows = await store.spend.logs(request_id=query.get("request_id"), api_key=api_key, user_id=user_id,
                                      start=query.get("start_date"), end=end, limit=limit)
    return [log_view(r) for r in rows]


async def spend_tags(ctx: SpendContext, caller: Caller, data: Any) -> list[dict[str, Any]]:
    route = "/spend/tags"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    query = validate(data, {"start_date": _date, "end_date": _date}, route)
    with store_errors():
        rows = await store.spend.daily("tag", start_date=query.get("start_date"), end_date=query.get("end_date"))
    rows.sort(key=lambda r: (-r["spend"], r["entity_id"]))
    return [{"individual_request_tag": r["entity_id"], "log_count": r["api_requests"], "total_spend": _usd(r["spend"])}
            for r in rows]


# --- /global/spend* -----------------------------------------------------------------------------------

async def global_spend(ctx: SpendContext, caller: Caller, data: Any) -> dict[str, Any]:
    route = "/global/spend"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    validate(data, {}, route)
    since = proxy_window_start(ctx.admission, ctx.clock())
    with store_errors():
        spend = await store.spend.spend_since(datetime.fromtimestamp(since, UTC))
    return {"spend": _usd(spend), "max_budget": from_micros(ctx.admission.proxy_max_budget)}


async def global_spend_logs(ctx: SpendContext, caller: Caller, data: Any) -> list[dict[str, Any]]:
    route = "/global/spend/logs"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    query = validate(data, {"api_key": string, "start_date": _date, "end_date": _date}, route)
    api_key = token_of(query["api_key"]) if query.get("api_key") else None
    start, end = _range(query, ctx)
    with store_errors():
        rows = await store.spend.daily("key", entity_id=api_key, start_date=start, end_date=end, group_by=("date",))
    out = [{"date": r["date"], "spend": _usd(r["spend"])} for r in rows]
    if api_key is not None:
        for item in out:
            item["api_key"] = api_key
    return out


async def global_spend_keys(ctx: SpendContext, caller: Caller, data: Any) -> list[dict[str, Any]]:
    route = "/global/spend/keys"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    query = validate(data, {"limit": lambda v: v, "start_date": _date, "end_date": _date}, route)
    limit = query_int(query.get("limit"), "limit", route, default=5, maximum=1000)
    start, end = _range(query, ctx)
    with store_errors():
        rows = await store.spend.daily("key", start_date=start, end_date=end)
        rows = sorted((r for r in rows if r["entity_id"]), key=lambda r: (-r["spend"], r["entity_id"]))[:limit]
        names = await store.spend.names("virtual_keys", [r["entity_id"] for r in rows])
    return [{"api_key": r["entity_id"], "total_spend": _usd(r["spend"]),
             "key_alias": names.get(r["entity_id"], {}).get("key_alias"),
             "key_name": names.get(r["entity_id"], {}).get("key_name")} for r in rows]


async def global_spend_teams(ctx: SpendContext, caller: Caller, data: Any) -> dict[str, Any]:
    route = "/global/spend/teams"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    query = validate(data, {"start_date": _date, "end_date": _date}, route)
    start, end = _range(query, ctx)
    with store_errors():
        rows = await store.spend.daily("team", start_date=start, end_date=end, group_by=("date", "entity_id"))
        names = await store.spend.names("teams", [r["entity_id"] for r in rows])

    def name(team_id: str) -> str:
        return names.get(team_id, {}).get("team_alias") or team_id

    daily: dict[str, dict[str, Any]] = {}
    totals: dict[str, int] = {}
    for r in rows:
        daily.setdefault(r["date"], {"date": r["date"]})[name(r["entity_id"])] = _usd(r["spend"])
        totals[r["entity_id"]] = totals.get(r["entity_id"], 0) + r["spend"]
    return {"daily_spend": list(daily.values()), "teams": sorted({name(t) for t in totals}),
            "total_spend_per_team": [{"team_id": t, "team_alias": name(t), "total_spend": _usd(s)}
                                     for t, s in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]}


async def global_spend_end_users(ctx: SpendContext, caller: Caller, data: Any) -> list[dict[str, Any]]:
    route = "/global/spend/end_users"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    query = validate(data or {}, {"api_key": string, "startTime": _date, "endTime": _date, "start_date": _date,
                                  "end_date": _date, "limit": lambda v: v}, route)
    limit = query_int(query.get("limit"), "limit", route, default=100, maximum=10_000)
    query.setdefault("start_date", query.get("startTime"))
    query.setdefault("end_date", query.get("endTime"))
    start, end = _range({k: v for k, v in query.items() if v is not None}, ctx)
    api_key = token_of(query["api_key"]) if query.get("api_key") else None
    with store_errors():
        rows = await store.spend.daily("end_user", start_date=start, end_date=end, group_by=("entity_id", "api_key"))
    totals: dict[str, list[int]] = {}
    for r in rows:
        if api_key is not None and r["api_key"] != api_key:
            continue
        t = totals.setdefault(r["entity_id"], [0, 0])
        t[0] += r["spend"]
        t[1] += r["api_requests"]
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
    return [{"end_user": u, "total_spend": _usd(s), "total_count": n} for u, (s, n) in ordered]


async def global_spend_models(ctx: SpendContext, caller: Caller, data: Any) -> list[dict[str, Any]]:
    route = "/global/spend/models"
    require(caller, Access.ADMIN_READ, route)
    store = ctx.require_store()
    query = validate(data, {"limit": lambda v: v, "start_date": _date, "end_date": _date}, route)
    limit = query_int(query.get("limit"), "limit", route, default=5, maximum=1000)
    start, end = _range(query, ctx)
    with store_errors():
        rows = await store.spend.daily("key", start_date=start, end_date=end, group_by=("model",))
    rows.sort(key=lambda r: (-r["spend"], r["model"]))
    return [{"model": r["model"], "total_spend": _usd(r["spend"])} for r in rows[:limit]]


# --- /spend/calculate ---------------------------------------------------------------------------------

async def spend_calculate(ctx: SpendContext, caller: Caller, data: Any) -> dict[str, Any]:
    """``{model, messages}`` → the prompt's cost (as LiteLLM's ``completion_cost(model, messages)``);
    ``{completion_response}`` → the cost of its ``usage``. The token count runs in a worker thread
    (the estimator is CPU work: ~0.3 µs per character)."""
    route = "/spend/calculate"
    require(caller, Access.SELF, route)
    query = validate(data, {"model": string, "messages": lambda v: v, "completion_response": json_object}, route)
    response = query.get("completion_response")
    model = query.get("model") or (response or {}).get("model")
    if not model:
        raise bad_request(f"{route}: 'model' is required (or a completion_response with its model)", param="model")
    price = ctx.price_of(model)
    if price is None:
        raise bad_request(f"Model={model} is not mapped to a price: set input_cost_per_token / "
                          "output_cost_per_token on its deployment", param="model")
    if response is not None:
        prompt, completion = usage_from_response(response)
        if prompt is None and completion is None:
            raise bad_request(f"{route}: completion_response has no usage", param="completion_response")
    else:
        messages = query.get("messages")
        if not isinstance(messages, list):
            raise bad_request(f"{route}: 'messages' must be a list of chat messages", param="messages")
        prompt, completion = await trio.to_thread.run_sync(estimate_usage, {"messages": messages}, "")
    return {"cost": compute_cost(price, prompt, completion) or 0.0}


def _route(method: str, path: str, handler: Any, access: Access) -> Route:
    return Route(method, path, handler, access, "body" if method == "POST" else "query")  # type: ignore[arg-type]


SPEND_ROUTES: tuple[Route, ...] = (
    _route("GET", "/spend/logs", spend_logs, Access.SELF),
    _route("GET", "/spend/tags", spend_tags, Access.ADMIN_READ),
    _route("GET", "/global/spend", global_spend, Access.ADMIN_READ),
    _route("GET", "/global/spend/logs", global_spend_logs, Access.ADMIN_READ),
    _route("GET", "/global/spend/keys", global_spend_keys, Access.ADMIN_READ),
    _route("GET", "/global/spend/teams", global_spend_teams, Access.ADMIN_READ),
    _route("GET", "/global/spend/end_users", global_spend_end_users, Access.ADMIN_READ),
    _route("POST", "/global/spend/end_users", global_spend_end_users, Access.ADMIN_READ),
    _route("GET", "/global/spend/models", global_spend_models, Access.ADMIN_READ),
    _route("POST", "/spend/calculate", spend_calculate, Access.SELF),
)

