"""The spend endpoints' logic on both backends: answer shapes (LiteLLM's), filters, access."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from trioproxy.admin import Caller
from trioproxy.errors import BadRequestError, PermissionDeniedError
from trioproxy.observability.prices import Price
from trioproxy.spend import build_record
from trioproxy.spend.admission import AdmissionSettings
from trioproxy.spend.endpoints import SPEND_ROUTES, SpendContext
from trioproxy.store import Actor, Store

from .spend_helpers import BASE, inputs

ADMIN = Caller.master()
A, B = "a" * 64, "b" * 64


def _route(method: str, path: str) -> Any:
    [route] = [r for r in SPEND_ROUTES if r.method == method and r.path == path]
    return route.handler


async def _fill(store: Store) -> SpendContext:
    actor = Actor("admin")
    await store.teams.create({"team_id": "t1", "team_alias": "Prod Team"}, [], actor)
    await store.keys.create({"token": A, "key_name": "sk-...aaaa", "key_alias": "alpha", "team_id": "t1"}, actor)
    await store.keys.create({"token": B, "key_name": "sk-...bbbb", "user_id": None}, actor)
    recs = [
        inputs("r1", spend=100_000, key=A, team="t1", end_user="c1", tags=["prod", "chat"], at=BASE),
        inputs("r2", spend=250_000, key=A, team="t1", end_user="c2", tags=["prod"], at=BASE + timedelta(hours=1)),
        inputs("r3", spend=50_000, key=B, end_user="c1", model="gpt-4o-mini", at=BASE - timedelta(days=1)),
        inputs("r4", spend=0, key=B, status="failure", at=BASE - timedelta(days=1)),
    ]
    await store.spend.write([build_record(i).to_row() for i in recs])
    prices = {"gpt-4o": Price(0.0000025, 0.00001)}
    return SpendContext(store, admission=AdmissionSettings(proxy_max_budget=10_000_000),
                        price_of=prices.get, clock=lambda: BASE.timestamp() + 7200)


async def test_spend_logs_filters_and_shape(store: Store) -> None:
    ctx = await _fill(store)
    logs = _route("GET", "/spend/logs")
    [row] = await logs(ctx, ADMIN, {"request_id": "r2"})
    assert row["spend"] == 0.25 and row["api_key"] == A and row["request_tags"] == ["prod"]
    assert row["startTime"].startswith("2026-01-01T13:00:00") and row["status"] == "success"
    assert row["metadata"]["user_api_key"] == A and row["metadata"]["user_api_key_team_id"] == "t1"
    assert [r["request_id"] for r in await logs(ctx, ADMIN, {"api_key": A})] == ["r2", "r1"]
    assert [r["request_id"] for r in await logs(ctx, ADMIN, {"start_date": "2025-12-31", "end_date": "2025-12-31"})] \
        == ["r4", "r3"]
    # a plain key sees only its own rows, whatever it asks for
    own = Caller(role="internal_user", token=B)
    assert {r["request_id"] for r in await logs(ctx, own, {})} == {"r3", "r4"}
    with pytest.raises(BadRequestError):
        await logs(ctx, own, {"api_key": A})
    with pytest.raises(BadRequestError, match="unknown field"):
        await logs(ctx, ADMIN, {"nope": 1})


async def test_tags_and_global_views(store: Store) -> None:
    ctx = await _fill(store)
    assert await _route("GET", "/spend/tags")(ctx, ADMIN, {}) == [
        {"individual_request_tag": "prod", "log_count": 2, "total_spend": 0.35},
        {"individual_request_tag": "chat", "log_count": 1, "total_spend": 0.1}]
    assert await _route("GET", "/global/spend")(ctx, ADMIN, {}) == {"spend": 0.4, "max_budget": 10.0}
    assert await _route("GET", "/global/spend/logs")(ctx, ADMIN, {}) == [
        {"date": "2025-12-31", "spend": 0.05}, {"date": "2026-01-01", "spend": 0.35}]
    assert await _route("GET", "/global/spend/keys")(ctx, ADMIN, {"limit": "1"}) == [
        {"api_key": A, "total_spend": 0.35, "key_alias": "alpha", "key_name": "sk-...aaaa"}]
    teams = await _route("GET", "/global/spend/teams")(ctx, ADMIN, {})
    assert teams["teams"] == ["Prod Team"]
    assert teams["daily_spend"] == [{"date": "2026-01-01", "Prod Team": 0.35}]
    assert teams["total_spend_per_team"] == [{"team_id": "t1", "team_alias": "Prod Team", "total_spend": 0.35}]
    assert await _route("POST", "/global/spend/end_users")(ctx, ADMIN, {"api_key": A}) == [
        {"end_user": "c2", "total_spend": 0.25, "total_count": 1}, {"end_user": "c1", "total_spend": 0.1, "total_count": 1}]
    assert (await _route("GET", "/global/spend/end_users")(ctx, ADMIN, {}))[0]["end_user"] == "c2"
    assert await _route("GET", "/global/spend/models")(ctx, ADMIN, {}) == [
        {"model": "gpt-4o", "total_spend": 0.35}, {"model": "gpt-4o-mini", "total_spend": 0.05}]


async def test_global_views_are_for_admins(store: Store) -> None:
    ctx = await _fill(store)
    with pytest.raises(PermissionDeniedError):
        await _route("GET", "/global/spend")(ctx, Caller(role="internal_user", token=B), {})


async def test_spend_calculate(store: Store) -> None:
    ctx = await _fill(store)
    calc = _route("POST", "/spend/calculate")
    caller = Caller(role="internal_user", token=B)
    answer = await calc(ctx, caller, {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]})
    assert answer["cost"] == pytest.approx(9 * 0.0000025)           # 4 framing + 2 words + 3 priming
    answer = await calc(ctx, caller, {"completion_response": {"model": "gpt-4o",
                                                              "usage": {"prompt_tokens": 10, "completion_tokens": 5}}})
    assert answer["cost"] == pytest.approx(10 * 0.0000025 + 5 * 0.00001)
    with pytest.raises(BadRequestError, match="not mapped to a price"):
        await calc(ctx, caller, {"model": "unknown", "messages": []})
