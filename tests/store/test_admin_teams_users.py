"""``/team/*`` and ``/user/*`` operations on both backends."""

from __future__ import annotations

import pytest

from trioproxy.admin import AdminContext, Caller, keys, teams, users
from trioproxy.store import Store
from trioproxy.store.key_cache import InvalidKeyError

from .admin_helpers import MASTER, PLAIN, VIEWER, error_of


async def test_team_new_info_update(admin: AdminContext, store: Store) -> None:
    team = await teams.team_new(admin, MASTER, {
        "team_alias": "eng", "max_budget": 2, "models": ["gpt-4o"], "tags": ["t"],
        "members_with_roles": [{"role": "admin", "user_id": "alice"}, {"role": "user", "user_email": "b@x.io"}]})
    assert team["team_alias"] == "eng" and team["max_budget"] == 2.0 and team["spend"] == 0.0
    assert team["metadata"] == {"tags": ["t"]} and team["blocked"] is False and team["admins"] == ["alice"]
    assert {m["user_id"] for m in team["members_with_roles"]} >= {"alice"} and len(team["members_with_roles"]) == 2
    key = await keys.key_generate(admin, MASTER, {"team_id": team["team_id"]})
    info = await teams.team_info(admin, MASTER, {"team_id": team["team_id"]})
    assert info["team_info"]["team_id"] == team["team_id"] and [k["token"] for k in info["keys"]] == [key["token"]]
    assert {m["user_id"] for m in info["team_memberships"]} == {m["user_id"] for m in team["members_with_roles"]}
    updated = await teams.team_update(admin, MASTER, {"team_id": team["team_id"], "rpm_limit": 9})
    assert updated["team_id"] == team["team_id"] and updated["data"]["rpm_limit"] == 9
    assert updated["data"]["models"] == ["gpt-4o"]


async def test_a_proxy_admin_user_creating_a_team_becomes_its_admin(admin: AdminContext) -> None:
    boss = Caller(role="proxy_admin", token="b" * 64, user_id="boss")
    team = await teams.team_new(admin, boss, {"max_budget": 2})
    assert team["members_with_roles"][0]["user_id"] == "boss" and team["members_with_roles"][0]["role"] == "admin"


async def test_team_errors(admin: AdminContext) -> None:
    await teams.team_new(admin, MASTER, {"team_id": "fixed"})
    status, err = await error_of(teams.team_new(admin, MASTER, {"team_id": "fixed"}))
    assert status == 400 and "already exists" in err["message"]
    status, err = await error_of(teams.team_info(admin, MASTER, {"team_id": "gone"}))
    assert status == 404 and err["message"] == "Team not found, passed team_id=gone"
    status, err = await error_of(teams.team_update(admin, MASTER, {"team_id": "gone", "rpm_limit": 1}))
    assert status == 404
    status, err = await error_of(teams.team_delete(admin, MASTER, {"team_ids": ["fixed", "gone"]}))
    assert status == 404 and "gone" in err["message"]
    status, err = await error_of(teams.team_new(admin, MASTER, {"members_with_roles": [{"role": "boss",
                                                                                        "user_id": "x"}]}))
    assert status == 400 and err["param"] == "members_with_roles"
    status, err = await error_of(teams.team_new(admin, MASTER, {"budget_duration": "3x"}))
    assert status == 400 and err["param"] == "budget_duration"
    status, err = await error_of(teams.team_new(admin, VIEWER, {}))
    assert status == 403


async def test_team_info_for_its_keys_and_members_only(admin: AdminContext, store: Store) -> None:
    await teams.team_new(admin, MASTER, {"team_id": "t1", "members_with_roles": [{"user_id": "m"}]})
    await teams.team_new(admin, MASTER, {"team_id": "t2"})
    team_key = await keys.key_generate(admin, MASTER, {"team_id": "t1"})
    member_key = await keys.key_generate(admin, MASTER, {"user_id": "m"})
    for made in (team_key, member_key):
        caller = Caller.from_record(await store.key_cache.authenticate(made["key"]))
        assert (await teams.team_info(admin, caller, {"team_id": "t1"}))["team_id"] == "t1"
        status, _ = await error_of(teams.team_info(admin, caller, {"team_id": "t2"}))
        assert status == 403
    assert (await teams.team_info(admin, VIEWER, {"team_id": "t2"}))["team_id"] == "t2"


async def test_team_delete_deletes_its_keys_at_once(admin: AdminContext, store: Store) -> None:
    await teams.team_new(admin, MASTER, {"team_id": "t"})
    made = await keys.key_generate(admin, MASTER, {"team_id": "t"})
    await store.key_cache.authenticate(made["key"])
    assert await teams.team_delete(admin, MASTER, {"team_ids": ["t"]}) == {"deleted_teams": ["t"]}
    with pytest.raises(InvalidKeyError):
        await store.key_cache.authenticate(made["key"])
    status, _ = await error_of(teams.team_info(admin, MASTER, {"team_id": "t"}))
    assert status == 404


async def test_team_block_and_unblock(admin: AdminContext, store: Store) -> None:
    await teams.team_new(admin, MASTER, {"team_id": "t"})
    assert (await teams.team_block(admin, MASTER, {"team_id": "t"}))["blocked"] is True
    assert (await teams.team_unblock(admin, MASTER, {"team_id": "t"}))["blocked"] is False
    status, _ = await error_of(teams.team_block(admin, MASTER, {"team_id": "nope"}))
    assert status == 404


async def test_members(admin: AdminContext, store: Store) -> None:
    await teams.team_new(admin, MASTER, {"team_id": "t"})
    added = await teams.team_member_add(admin, MASTER, {"team_id": "t", "member": [
        {"role": "user", "user_id": "u1"}, {"role": "admin", "user_email": "e@x.io"}], "max_budget_in_team": 1.5})
    assert len(added["members_with_roles"]) == 2 and len(added["updated_users"]) == 2
    assert [m["max_budget_in_team"] for m in added["updated_team_memberships"]] == [1.5, 1.5]
    status, err = await error_of(teams.team_member_add(admin, MASTER, {"team_id": "t",
                                                                       "member": {"user_id": "u1"}}))
    assert status == 400 and "already in team" in err["message"]
    status, _ = await error_of(teams.team_member_add(admin, MASTER, {"team_id": "no", "member": {"user_id": "u"}}))
    assert status == 404
    upd = await teams.team_member_update(admin, MASTER, {"team_id": "t", "user_email": "e@x.io",
                                                         "max_budget_in_team": 3})
    assert upd["max_budget_in_team"] == 3.0 and upd["role"] == "admin" and upd["user_email"] == "e@x.io"
    after = await teams.team_member_delete(admin, MASTER, {"team_id": "t", "user_id": "u1"})
    assert [m["user_email"] for m in after["members_with_roles"]] == ["e@x.io"]
    status, _ = await error_of(teams.team_member_delete(admin, MASTER, {"team_id": "t", "user_id": "u1"}))
    assert status == 404
    status, _ = await error_of(teams.team_member_update(admin, MASTER, {"team_id": "t", "user_id": "u1"}))
    assert status == 400


async def test_a_member_budget_window_starts_when_it_is_set(admin: AdminContext, store: Store, clock) -> None:
    """``budget_duration`` on /team/member_add and /team/member_update (LiteLLM's member budget row):
    ``budget_reset_at = now + duration`` each time it is set; ``null`` makes it lifetime again."""
    from datetime import datetime, timedelta

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    await teams.team_new(admin, MASTER, {"team_id": "t"})
    added = await teams.team_member_add(admin, MASTER, {"team_id": "t", "member": {"user_id": "u1"},
                                                        "max_budget_in_team": 2, "budget_duration": "1d"})
    [m] = added["updated_team_memberships"]
    assert m["budget_duration"] == "1d" and at(m["budget_reset_at"]) == clock() + timedelta(days=1)
    assert m["litellm_budget_table"]["budget_duration"] == "1d"
    clock.advance(60)
    upd = await teams.team_member_update(admin, MASTER, {"team_id": "t", "user_id": "u1", "budget_duration": "30s"})
    assert upd["budget_duration"] == "30s" and at(upd["budget_reset_at"]) == clock() + timedelta(seconds=30)
    assert upd["max_budget_in_team"] == 2.0
    upd = await teams.team_member_update(admin, MASTER, {"team_id": "t", "user_id": "u1", "budget_duration": None})
    assert upd["budget_duration"] is None and upd["budget_reset_at"] is None
    status, err = await error_of(teams.team_member_update(admin, MASTER, {"team_id": "t", "user_id": "u1",
                                                                          "budget_duration": "soon"}))
    assert status == 400 and err["param"] == "budget_duration"


async def test_team_list(admin: AdminContext, clock) -> None:
    for i in range(3):
        clock.advance(1)
        await teams.team_new(admin, MASTER, {"team_id": f"t{i}", "members_with_roles": [{"user_id": f"u{i}"}]})
    listed = await teams.team_list(admin, VIEWER, {})
    assert [t["team_id"] for t in listed] == ["t0", "t1", "t2"] and listed[0]["members_with_roles"]
    assert [t["team_id"] for t in await teams.team_list(admin, MASTER, {"user_id": "u1"})] == ["t1"]
    assert [t["team_id"] for t in await teams.team_list(admin, MASTER, {"page": "2", "page_size": "2"})] == ["t2"]
    status, _ = await error_of(teams.team_list(admin, PLAIN, {}))
    assert status == 403


# --- users --------------------------------------------------------------------------------------

async def test_user_new_answers_with_a_working_key(admin: AdminContext, store: Store) -> None:
    await teams.team_new(admin, MASTER, {"team_id": "t"})
    answer = await users.user_new(admin, MASTER, {
        "user_id": "ann", "user_email": "ann@x.io", "user_role": "proxy_admin", "max_budget": 4,
        "teams": ["t"], "key_alias": "ann-key", "duration": "1d"})
    assert answer["user_id"] == "ann" and answer["max_budget"] == 4.0 and answer["key"].startswith("sk-")
    assert answer["key_alias"] == "ann-key" and answer["teams"] == ["t"] and answer["expires"] is not None
    record = await store.key_cache.authenticate(answer["key"])
    assert record.user_id == "ann" and record.user_role == "proxy_admin"
    # that key is an admin: it may create keys
    made = await keys.key_generate(admin, Caller.from_record(record), {})
    assert (await store.keys.get(made["token"]))["created_by"] == "ann"
    no_key = await users.user_new(admin, MASTER, {"auto_create_key": False})
    assert "key" not in no_key and no_key["user_id"]


async def test_user_new_errors(admin: AdminContext) -> None:
    await users.user_new(admin, MASTER, {"user_id": "x", "user_email": "x@x.io"})
    status, err = await error_of(users.user_new(admin, MASTER, {"user_id": "x"}))
    assert status == 400 and "already exists" in err["message"]
    status, err = await error_of(users.user_new(admin, MASTER, {"user_role": "root"}))
    assert status == 400 and err["param"] == "user_role"
    status, err = await error_of(users.user_new(admin, MASTER, {"teams": ["missing"]}))
    assert status == 404
    status, _ = await error_of(users.user_new(admin, VIEWER, {}))
    assert status == 403


async def test_user_info_update_delete_list(admin: AdminContext, store: Store, clock) -> None:
    await teams.team_new(admin, MASTER, {"team_id": "t"})
    made = await users.user_new(admin, MASTER, {"user_id": "bo", "teams": ["t"]})
    clock.advance(1)
    await users.user_new(admin, MASTER, {"user_id": "cy", "user_role": "proxy_admin_viewer"})
    me = Caller.from_record(await store.key_cache.authenticate(made["key"]))
    info = await users.user_info(admin, me, {})
    assert info["user_id"] == "bo" and info["user_info"]["user_id"] == "bo"
    assert [k["token"] for k in info["keys"]] == [made["token"]] and [t["team_id"] for t in info["teams"]] == ["t"]
    status, err = await error_of(users.user_info(admin, me, {"user_id": "cy"}))
    assert status == 403 and "key not allowed to access this user's info" in err["message"]
    status, _ = await error_of(users.user_info(admin, MASTER, {"user_id": "nobody"}))
    assert status == 404
    upd = await users.user_update(admin, MASTER, {"user_id": "bo", "max_budget": 1, "user_role": "proxy_admin"})
    assert upd["data"]["max_budget"] == 1.0 and upd["data"]["user_role"] == "proxy_admin"
    assert (await store.key_cache.authenticate(made["key"])).user_role == "proxy_admin"   # invalidated at once
    listing = await users.user_list(admin, VIEWER, {"page_size": "1"})
    assert listing["total"] == 2 and listing["total_pages"] == 2 and listing["users"][0]["user_id"] == "bo"
    assert [u["user_id"] for u in (await users.user_list(admin, MASTER, {"user_ids": "cy"}))["users"]] == ["cy"]
    assert [u["user_id"] for u in (await users.user_list(admin, MASTER, {"team_id": "t"}))["users"]] == ["bo"]
    assert await users.user_delete(admin, MASTER, {"user_ids": ["bo"]}) == {"deleted_users": ["bo"]}
    with pytest.raises(InvalidKeyError):
        await store.key_cache.authenticate(made["key"])
    status, _ = await error_of(users.user_delete(admin, MASTER, {"user_ids": ["bo"]}))
    assert status == 404
