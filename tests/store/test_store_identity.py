"""Teams, memberships, internal users, customers, budgets and the audit log, on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trioproxy.auth import hash_key
from trioproxy.store import Actor, Conflict, Invalidation, MissingReference, NotFound, Store
from trioproxy.store.repositories.base import mutate, write_audit_tx
from trioproxy.store.repositories.keys import create_key_tx

ADMIN = Actor("admin")


def key_row(clear: str, **extra: object) -> dict[str, object]:
    return {"token": hash_key(clear), "key_name": f"sk-...{clear[-4:]}", **extra}


# --- teams and memberships ----------------------------------------------------------------------

async def test_team_create_with_members_creates_users(store: Store) -> None:
    team, members = await store.teams.create(
        {"team_alias": "eng", "max_budget": 2_000_000, "models": ["gpt-4o"]},
        [{"role": "admin", "user_id": "alice"}, {"role": "user", "user_email": "bob@example.com"}], ADMIN)
    assert team["team_alias"] == "eng" and team["spend"] == 0 and team["blocked"] is False
    assert ("alice", "admin") in [(m["user_id"], m["role"]) for m in members] and len(members) == 2
    bob = [m for m in members if m["user_email"] == "bob@example.com"][0]
    assert (await store.users.get(bob["user_id"]))["user_role"] == "internal_user"
    assert (await store.teams.get_with_members(team["team_id"]))[1] == members
    with pytest.raises(Conflict):
        await store.teams.create({"team_id": team["team_id"]}, [], ADMIN)
    tables = {r["table_name"] for r in (await store.audit.list(size=100)).rows}
    assert {"LiteLLM_TeamTable", "LiteLLM_UserTable", "LiteLLM_TeamMembership"} <= tables


async def test_team_update_block_and_list(store: Store) -> None:
    t1, _ = await store.teams.create({"team_id": "t1", "metadata": {"tags": ["x"]}, "rpm_limit": 5}, [], ADMIN)
    await store.teams.create({"team_id": "t2", "organization_id": "org"}, [{"user_id": "carol"}], ADMIN)
    after = await store.teams.update("t1", {"rpm_limit": 50}, ADMIN)
    assert after["rpm_limit"] == 50 and after["metadata"] == {"tags": ["x"]}
    assert (await store.teams.set_blocked("t1", True, ADMIN))["blocked"] is True
    assert (await store.audit.list(action="blocked")).rows[0]["object_id"] == "t1"
    assert [t["team_id"] for t in (await store.teams.list()).rows] == ["t1", "t2"]
    assert [t["team_id"] for t in (await store.teams.list(user_id="carol")).rows] == ["t2"]
    assert [t["team_id"] for t in (await store.teams.list(organization_id="org")).rows] == ["t2"]
    assert [t["team_id"] for t in (await store.teams.list(page=2, size=1)).rows] == ["t2"]
    with pytest.raises(NotFound):
        await store.teams.update("nope", {"rpm_limit": 1}, ADMIN)


async def test_deleting_a_team_deletes_its_keys_and_memberships(store: Store) -> None:
    await store.teams.create({"team_id": "t1"}, [{"user_id": "dave"}], ADMIN)
    await store.teams.create({"team_id": "t2"}, [], ADMIN)
    k1 = await store.keys.create(key_row("sk-team-key-1-xxxxxxxxxxxxxxxxx", team_id="t1"), ADMIN)
    k2 = await store.keys.create(key_row("sk-team-key-2-xxxxxxxxxxxxxxxxx", team_id="t2"), ADMIN)
    with pytest.raises(NotFound):
        await store.teams.delete(["t1", "missing"], ADMIN)
    assert await store.keys.get(k1["token"]) is not None
    await store.teams.delete(["t1"], ADMIN)
    assert await store.keys.get(k1["token"]) is None and await store.keys.get(k2["token"]) is not None
    assert await store.teams.get("t1") is None
    assert await store.teams.memberships_of_user("dave") == []
    assert await store.users.get("dave") is not None      # the user stays
    published = store.bus.published
    assert Invalidation.team("t1") in published and Invalidation.key(k1["token"]) in published
    deleted = {(r["table_name"], r["object_id"]) for r in (await store.audit.list(action="deleted")).rows}
    assert deleted == {("LiteLLM_TeamTable", "t1"), ("LiteLLM_VerificationToken", k1["token"])}


async def test_members_add_update_remove(store: Store) -> None:
    await store.teams.create({"team_id": "t"}, [], ADMIN)
    added = await store.teams.add_members("t", [{"user_id": "u1", "role": "user"},
                                                {"user_email": "e@x.io", "role": "admin"}], ADMIN,
                                          max_budget_in_team=1_000_000)
    assert [a["max_budget_in_team"] for a in added] == [1_000_000, 1_000_000]
    with pytest.raises(Conflict):
        await store.teams.add_members("t", [{"user_id": "u1"}], ADMIN)
    with pytest.raises(NotFound):
        await store.teams.add_members("nope", [{"user_id": "u1"}], ADMIN)
    updated = await store.teams.update_member("t", {"user_email": "e@x.io"}, {"role": "user"}, ADMIN)
    assert updated["role"] == "user"
    assert await store.teams.remove_member("t", {"user_id": "u1"}, ADMIN) == "u1"
    with pytest.raises(NotFound):
        await store.teams.remove_member("t", {"user_id": "u1"}, ADMIN)
    with pytest.raises(NotFound):
        await store.teams.update_member("t", {"user_id": "ghost"}, {"role": "admin"}, ADMIN)
    assert [m["user_email"] for m in await store.teams.members("t")] == ["e@x.io"]


# --- users --------------------------------------------------------------------------------------

async def test_user_with_key_and_teams_in_one_transaction(store: Store) -> None:
    await store.teams.create({"team_id": "t"}, [], ADMIN)
    user, key = await store.users.create({"user_id": "erin", "user_email": "erin@x.io", "user_role": "proxy_admin",
                                          "max_budget": 9_000_000}, ADMIN, teams_to_join=["t"],
                                         key=key_row("sk-erin-key-xxxxxxxxxxxxxxxxxxxxx"))
    assert user["user_role"] == "proxy_admin" and key["user_id"] == "erin"
    assert [m["team_id"] for m in await store.teams.memberships_of_user("erin")] == ["t"]
    # a missing team rolls the whole creation back: no user, no key
    with pytest.raises(NotFound):
        await store.users.create({"user_id": "frank"}, ADMIN, teams_to_join=["missing"],
                                 key=key_row("sk-frank-key-xxxxxxxxxxxxxxxxxxxx"))
    assert await store.users.get("frank") is None
    assert await store.keys.get(hash_key("sk-frank-key-xxxxxxxxxxxxxxxxxxxx")) is None
    with pytest.raises(Conflict) as info:
        await store.users.create({"user_id": "other", "user_email": "erin@x.io"}, ADMIN)
    assert info.value.field == "user_email"


async def test_user_update_list_delete(store: Store, clock) -> None:
    for i, role in enumerate(["internal_user", "proxy_admin_viewer", "internal_user"]):
        clock.advance(1)
        await store.users.create({"user_id": f"u{i}", "user_role": role}, ADMIN)
    await store.keys.create(key_row("sk-u0-key-xxxxxxxxxxxxxxxxxxxxxxx", user_id="u0"), ADMIN)
    await store.teams.create({"team_id": "t"}, [{"user_id": "u0"}], ADMIN)
    after = await store.users.update("u0", {"max_budget": 1, "models": ["a"]}, ADMIN)
    assert after["max_budget"] == 1 and after["models"] == ["a"] and after["user_role"] == "internal_user"
    page = await store.users.list(role="internal_user", size=1)
    assert page.total == 2 and [u["user_id"] for u in page.rows] == ["u0"]
    assert [u["user_id"] for u in (await store.users.list(team_id="t")).rows] == ["u0"]
    assert [u["user_id"] for u in (await store.users.list(user_ids=["u1", "u2"])).rows] == ["u1", "u2"]
    await store.users.delete(["u0"], ADMIN)
    assert await store.users.get("u0") is None
    assert await store.keys.get(hash_key("sk-u0-key-xxxxxxxxxxxxxxxxxxxxxxx")) is None
    assert await store.teams.members("t") == []
    with pytest.raises(NotFound):
        await store.users.delete(["u0"], ADMIN)


# --- customers and budgets ----------------------------------------------------------------------

async def test_customers_and_their_budgets(store: Store) -> None:
    budget = await store.budgets.create({"budget_id": "small", "max_budget": 1_000_000, "rpm_limit": 10}, ADMIN)
    assert budget["max_budget"] == 1_000_000
    with pytest.raises(Conflict):
        await store.budgets.create({"budget_id": "small"}, ADMIN)
    customer, b = await store.customers.create({"user_id": "c1", "budget_id": "small", "alias": "Acme"}, ADMIN)
    assert b["budget_id"] == "small" and customer["blocked"] is False
    with pytest.raises(MissingReference):
        await store.customers.create({"user_id": "c2", "budget_id": "nope"}, ADMIN)
    c3, own = await store.customers.create({"user_id": "c3"}, ADMIN, new_budget={"max_budget": 5})
    assert own["max_budget"] == 5 and c3["budget_id"] == own["budget_id"]
    with pytest.raises(Conflict):
        await store.customers.create({"user_id": "c1"}, ADMIN)
    after, b = await store.customers.update("c1", {"default_model": "gpt-4o"}, ADMIN, budget_changes={"rpm_limit": 20})
    assert after["default_model"] == "gpt-4o" and b["rpm_limit"] == 20 and after["alias"] == "Acme"
    rows, total = await store.customers.list()
    assert total == 2 and [c["user_id"] for c, _ in rows] == ["c1", "c3"]
    await store.customers.delete(["c1"], ADMIN)
    assert await store.customers.get("c1") is None
    with pytest.raises(NotFound):
        await store.customers.delete(["c1"], ADMIN)


async def test_block_upserts_and_unblock(store: Store) -> None:
    await store.customers.create({"user_id": "known"}, ADMIN)
    changed = await store.customers.set_blocked(["known", "never-seen"], True, ADMIN)
    assert changed == ["known", "never-seen"]
    assert await store.customers.blocked_ids() == ["known", "never-seen"]
    assert await store.customers.set_blocked(["known"], True, ADMIN) == []          # already blocked
    assert await store.customers.set_blocked(["known", "ghost"], False, ADMIN) == ["known"]
    assert await store.customers.blocked_ids() == ["never-seen"]
    actions = sorted(r["action"] for r in (await store.audit.list(table_name="LiteLLM_EndUserTable")).rows)
    assert actions == ["blocked", "blocked", "created", "unblocked"]


async def test_budget_update_and_delete_invalidate_their_customers(store: Store) -> None:
    await store.budgets.create({"budget_id": "b"}, ADMIN)
    await store.customers.create({"user_id": "c", "budget_id": "b"}, ADMIN)
    await store.budgets.update("b", {"max_budget": 3}, ADMIN)
    assert store.bus.published[-1] == Invalidation.customer("c")
    await store.budgets.delete(["b"], ADMIN)
    assert (await store.customers.get("c"))[0]["budget_id"] is None    # ON DELETE SET NULL
    assert (await store.budgets.list()).total == 0


# --- audit --------------------------------------------------------------------------------------

async def test_audit_filters_pages_and_get(store: Store, clock) -> None:
    for i in range(5):
        clock.advance(60)
        await store.teams.create({"team_id": f"t{i}"}, [], Actor("alice" if i < 3 else "bob"))
    page = await store.audit.list(size=2)
    assert page.total == 5 and page.total_pages == 3 and [r["object_id"] for r in page.rows] == ["t4", "t3"]
    assert {r["object_id"] for r in (await store.audit.list(changed_by="bob")).rows} == {"t3", "t4"}
    assert (await store.audit.list(object_id="t2")).rows[0]["changed_by"] == "alice"
    since = clock.now - timedelta(seconds=90)
    assert [r["object_id"] for r in (await store.audit.list(start_date=since)).rows] == ["t4", "t3"]
    assert [r["object_id"] for r in (await store.audit.list(end_date=since)).rows] == ["t2", "t1", "t0"]
    one = page.rows[0]
    assert await store.audit.get(one["id"]) == one
    assert await store.audit.get("missing") is None


async def test_audit_is_in_the_same_transaction_as_the_change(store: Store) -> None:
    """A mutation whose transaction fails after its audit row was written leaves neither."""
    clear = "sk-audit-tx-xxxxxxxxxxxxxxxxxxxxxxxx"

    def create_then_fail(conn, inv) -> None:
        create_key_tx(conn, store.ctx, key_row(clear), ADMIN)   # the key row and its audit row
        write_audit_tx(conn, store.ctx, ADMIN, action="updated", table="virtual_keys", object_id="x",
                       before=None, updated={})
        raise RuntimeError("the change fails after its audit rows were written")

    with pytest.raises(RuntimeError):
        await mutate(store.ctx, create_then_fail)
    assert await store.keys.get(hash_key(clear)) is None
    assert (await store.audit.list()).total == 0
