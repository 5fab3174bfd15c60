"""``/customer/*`` (+ ``/end_user/*``, ``/user/unblock``), ``/budget/new``, ``GET /audit``, and the
route table."""

from __future__ import annotations

import json

import pytest

from trioproxy.admin import ROUTES, Access, AdminContext, audit, customers, find_route, keys, teams
from trioproxy.store import Store

from .admin_helpers import MASTER, PLAIN, VIEWER, error_of


async def test_customer_lifecycle(admin: AdminContext, store: Store) -> None:
    made = await customers.customer_new(admin, MASTER, {"user_id": "acme", "alias": "Acme", "max_budget": 5,
                                                        "rpm_limit": 3, "allowed_model_region": "eu"})
    assert made["user_id"] == "acme" and made["blocked"] is False and made["spend"] == 0.0
    assert made["litellm_budget_table"]["max_budget"] == 5.0 and made["litellm_budget_table"]["rpm_limit"] == 3
    info = await customers.customer_info(admin, VIEWER, {"end_user_id": "acme"})
    assert info == made
    upd = await customers.customer_update(admin, MASTER, {"user_id": "acme", "default_model": "m", "max_budget": 7})
    assert upd["default_model"] == "m" and upd["litellm_budget_table"]["max_budget"] == 7.0
    assert upd["alias"] == "Acme"
    assert [c["user_id"] for c in await customers.customer_list(admin, MASTER, {})] == ["acme"]
    assert await customers.customer_delete(admin, MASTER, {"user_ids": ["acme"]}) == {"deleted_customers": ["acme"]}
    status, err = await error_of(customers.customer_info(admin, MASTER, {"end_user_id": "acme"}))
    assert status == 404 and err["message"] == "End User Id=acme does not exist in db"


async def test_customer_errors(admin: AdminContext) -> None:
    await customers.customer_new(admin, MASTER, {"user_id": "c"})
    status, err = await error_of(customers.customer_new(admin, MASTER, {"user_id": "c"}))
    assert status == 400 and err["message"] == "Customer already exists, passed user_id=c. Please pass a new user_id."
    status, err = await error_of(customers.customer_new(admin, MASTER, {"alias": "no id"}))
    assert status == 400 and err["param"] == "user_id"
    status, err = await error_of(customers.customer_new(admin, MASTER, {"user_id": "d", "budget_id": "nope"}))
    assert status == 400 and err["param"] == "budget_id"
    status, err = await error_of(customers.customer_new(admin, MASTER, {"user_id": "d", "budget_id": "b",
                                                                        "max_budget": 1}))
    assert status == 400 and "not both" in err["message"]
    status, err = await error_of(customers.customer_delete(admin, MASTER, {"user_ids": ["c", "x"]}))
    assert status == 404 and "x" in err["message"]
    status, err = await error_of(customers.customer_update(admin, MASTER, {"user_id": "x", "alias": "a"}))
    assert status == 404
    status, _ = await error_of(customers.customer_new(admin, VIEWER, {"user_id": "v"}))
    assert status == 403


async def test_block_survives_in_the_database_and_reaches_the_cache(admin: AdminContext, store: Store,
                                                                     make_store) -> None:
    assert await store.customer_cache.is_blocked("spammer") is False
    assert await customers.customer_block(admin, MASTER, {"user_ids": ["spammer", "other"]}) == {
        "blocked_users": ["spammer", "other"]}
    assert await store.customer_cache.is_blocked("spammer") is True
    async with make_store() as restarted:          # a second store on the same database: a restart
        assert await restarted.customer_cache.is_blocked("spammer") is True
    # the seed's /user/unblock is the same operation as /customer/unblock
    route, _ = find_route("POST", "/user/unblock")
    assert await route.handler(admin, MASTER, {"user_ids": ["spammer"]}) == {"unblocked_users": ["spammer"]}
    assert await store.customer_cache.is_blocked("spammer") is False
    assert await store.customers.blocked_ids() == ["other"]


async def test_budget_new(admin: AdminContext) -> None:
    made = await customers.budget_new(admin, MASTER, {"budget_id": "tier-1", "max_budget": 10, "rpm_limit": 100,
                                                      "budget_duration": "1mo"})
    assert made["budget_id"] == "tier-1" and made["max_budget"] == 10.0 and made["budget_reset_at"]
    status, _ = await error_of(customers.budget_new(admin, MASTER, {"budget_id": "tier-1"}))
    assert status == 400
    attached = await customers.customer_new(admin, MASTER, {"user_id": "c", "budget_id": "tier-1"})
    assert attached["litellm_budget_table"]["rpm_limit"] == 100


async def test_audit_endpoints(admin: AdminContext, store: Store, clock) -> None:
    made = await keys.key_generate(admin, MASTER, {"key_alias": "audited"})
    clock.advance(10)
    await teams.team_new(admin, MASTER, {"team_id": "t"})
    clock.advance(10)
    await keys.key_block(admin, MASTER, {"key": made["key"]})
    page = await audit.audit_list(admin, VIEWER, {"page_size": "2"})
    assert page["total"] == 3 and page["total_pages"] == 2 and page["page"] == 1
    assert [r["action"] for r in page["audit_logs"]] == ["blocked", "created"]
    first = page["audit_logs"][0]
    assert set(first) == {"id", "updated_at", "changed_by", "changed_by_api_key", "action", "table_name",
                          "object_id", "before_value", "updated_values"}
    assert first["object_id"] == made["token"] and first["changed_by"] == "admin"
    # the master key leaves no hash of itself (an unsalted SHA-256 readable by viewers could be brute-forced)
    assert first["changed_by_api_key"] == "" and first["updated_at"].endswith("+00:00")
    keyed = await audit.audit_list(admin, MASTER, {"table_name": "LiteLLM_VerificationToken", "action": "created"})
    assert [r["object_id"] for r in keyed["audit_logs"]] == [made["token"]]
    assert made["key"] not in json.dumps(keyed)
    dated = await audit.audit_list(admin, MASTER, {"start_date": (clock.now.replace(microsecond=0)).isoformat()})
    assert [r["action"] for r in dated["audit_logs"]] == ["blocked"]
    assert await audit.audit_get(admin, MASTER, {"id": first["id"]}) == first
    status, err = await error_of(audit.audit_get(admin, MASTER, {"id": "nope"}))
    assert status == 404
    for bad in ({"page_size": "101"}, {"action": "exploded"}, {"start_date": "yesterday"}, {"colour": "red"}):
        status, _ = await error_of(audit.audit_list(admin, MASTER, bad))
        assert status == 400, bad
    status, _ = await error_of(audit.audit_list(admin, PLAIN, {}))
    assert status == 403


async def test_changed_by_header_is_honoured_for_admins_only(admin: AdminContext, store: Store) -> None:
    from trioproxy.admin import Caller

    await teams.team_new(admin, Caller.master(changed_by="alice@corp"), {"team_id": "t"})
    rows = (await store.audit.list()).rows
    assert rows[0]["changed_by"] == "alice@corp"


async def test_a_virtual_admin_key_is_audited_by_its_hash(admin: AdminContext, store: Store) -> None:
    from trioproxy.admin import Caller

    boss = Caller(role="proxy_admin", token="a" * 64, user_id="boss")
    await teams.team_new(admin, boss, {"team_id": "t2"})
    row = (await store.audit.list()).rows[0]
    assert row["changed_by"] == "boss" and row["changed_by_api_key"] == "a" * 64


def test_the_route_table_covers_every_endpoint() -> None:
    paths = {(r.method, r.path) for r in ROUTES}
    expected = {
        ("POST", p) for p in (
            "/key/generate", "/key/update", "/key/delete", "/key/block", "/key/unblock", "/key/regenerate",
            "/key/{key}/regenerate", "/team/new", "/team/update", "/team/delete", "/team/member_add",
            "/team/member_update", "/team/member_delete", "/team/block", "/team/unblock", "/user/new",
            "/user/update", "/user/delete", "/user/unblock", "/customer/new", "/customer/update",
            "/customer/delete", "/customer/block", "/customer/unblock", "/end_user/new", "/end_user/update",
            "/end_user/delete", "/end_user/block", "/end_user/unblock", "/budget/new")
    } | {("GET", p) for p in ("/key/info", "/key/list", "/team/info", "/team/list", "/user/info", "/user/list",
                              "/customer/info", "/customer/list", "/end_user/info", "/end_user/list", "/audit",
                              "/audit/{id}", "/v2/team/list")}
    assert paths == expected
    assert len(paths) == len(ROUTES)
    assert {r.path for r in ROUTES if r.access is Access.SELF} == {"/key/info", "/user/info", "/team/info"}
    assert all(r.source == ("query" if r.method == "GET" else "body") for r in ROUTES)


@pytest.mark.parametrize("method, path, expected, params", [
    ("POST", "/key/sk-abc/regenerate", "/key/{key}/regenerate", {"key": "sk-abc"}),
    ("GET", "/audit/1234", "/audit/{id}", {"id": "1234"}),
    ("GET", "/audit", "/audit", {}),
    ("POST", "/end_user/block", "/end_user/block", {}),
])
def test_find_route(method: str, path: str, expected: str, params: dict) -> None:
    route, found = find_route(method, path)
    assert route.path == expected and found == params


def test_find_route_misses() -> None:
    assert find_route("GET", "/key/generate") is None
    assert find_route("POST", "/nope") is None
