"""What ``/team/info`` shows to whom (SQLite and PostgreSQL): proxy admins, admin viewers and the
team's admins see every key and membership; a plain member, or a key bound to the team, sees the
team and who is in it, but only its own keys and its own membership (spend, budget)."""

from __future__ import annotations

from typing import Any

from trioproxy.admin import AdminContext, Caller, keys, teams
from trioproxy.store import Store

from .admin_helpers import MASTER, VIEWER, error_of


async def _caller(store: Store, made: dict[str, Any]) -> Caller:
    return Caller.from_record(await store.key_cache.authenticate(made["key"]))


async def test_members_see_their_own_keys_and_membership_admins_see_all(admin: AdminContext, store: Store) -> None:
    await teams.team_new(admin, MASTER, {"team_id": "eng", "members_with_roles": [
        {"role": "admin", "user_id": "lead"}, {"role": "user", "user_id": "ann"}, {"role": "user", "user_id": "bob"}]})
    await teams.team_new(admin, MASTER, {"team_id": "ops", "members_with_roles": [{"role": "admin", "user_id": "ann"}]})
    lead = await keys.key_generate(admin, MASTER, {"user_id": "lead", "team_id": "eng"})
    ann = await keys.key_generate(admin, MASTER, {"user_id": "ann", "team_id": "eng"})
    ann_personal = await keys.key_generate(admin, MASTER, {"user_id": "ann"})        # no team: not a team key
    ann_second = await keys.key_generate(admin, MASTER, {"user_id": "ann", "team_id": "eng", "key_alias": "ann-2"})
    bob = await keys.key_generate(admin, MASTER, {"user_id": "bob", "team_id": "eng"})
    service = await keys.key_generate(admin, MASTER, {"team_id": "eng", "key_alias": "ci"})   # team key, no user
    every_key = {k["token"] for k in (lead, ann, ann_second, bob, service)}

    for who in (MASTER, VIEWER, await _caller(store, lead)):
        info = await teams.team_info(admin, who, {"team_id": "eng"})
        assert {k["token"] for k in info["keys"]} == every_key
        assert {m["user_id"] for m in info["team_memberships"]} == {"lead", "ann", "bob"}

    for made in (ann, ann_personal):          # ann, with her team key or her personal key
        info = await teams.team_info(admin, await _caller(store, made), {"team_id": "eng"})
        assert {k["token"] for k in info["keys"]} == {ann["token"], ann_second["token"]}
        assert [m["user_id"] for m in info["team_memberships"]] == ["ann"]
        assert "spend" in info["team_memberships"][0]
        members = info["team_info"]["members_with_roles"]            # who is in the team: visible
        assert {m["user_id"] for m in members} == {"lead", "ann", "bob"}
        assert all(set(m) == {"role", "user_id", "user_email"} for m in members)
        assert info["team_info"]["team_id"] == "eng" and "spend" in info["team_info"]
        for hidden in (bob["token"], lead["token"], service["token"]):
            assert hidden not in str(info)

    # ann is an admin of ops, not of eng: there she sees everything
    ops = await teams.team_info(admin, await _caller(store, ann), {"team_id": "ops"})
    assert [m["user_id"] for m in ops["team_memberships"]] == ["ann"]

    # a team key without a user sees itself only
    info = await teams.team_info(admin, await _caller(store, service), {"team_id": "eng"})
    assert [k["token"] for k in info["keys"]] == [service["token"]] and info["team_memberships"] == []

    # outsiders: 403 whether or not the team exists
    outsider = await keys.key_generate(admin, MASTER, {"user_id": "zed"})
    for team_id in ("eng", "no-such-team"):
        status, err = await error_of(teams.team_info(admin, await _caller(store, outsider), {"team_id": team_id}))
        assert status == 403 and err["message"] == f"You are not allowed to access this team's info. team_id={team_id}"


async def test_a_member_promoted_to_team_admin_sees_all_on_the_next_call(admin: AdminContext, store: Store) -> None:
    await teams.team_new(admin, MASTER, {"team_id": "t", "members_with_roles": [
        {"role": "user", "user_id": "ann"}, {"role": "user", "user_id": "bob"}]})
    ann = await keys.key_generate(admin, MASTER, {"user_id": "ann", "team_id": "t"})
    bob = await keys.key_generate(admin, MASTER, {"user_id": "bob", "team_id": "t"})
    caller = await _caller(store, ann)
    assert [k["token"] for k in (await teams.team_info(admin, caller, {"team_id": "t"}))["keys"]] == [ann["token"]]
    await teams.team_member_update(admin, MASTER, {"team_id": "t", "user_id": "ann", "role": "admin"})
    seen = {k["token"] for k in (await teams.team_info(admin, caller, {"team_id": "t"}))["keys"]}
    assert seen == {ann["token"], bob["token"]}
