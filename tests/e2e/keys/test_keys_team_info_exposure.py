"""``/team/info`` through a real ``trioproxy run`` (SQLite and PostgreSQL): a plain member sees
the team and its members but only their own keys and membership; the team's admin sees all."""

from __future__ import annotations

import uuid

from support.keys_support import Api


def test_a_member_sees_only_their_own_keys_and_spend(api: Api) -> None:
    team_id, lead, ann, bob = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("team", "lead", "ann", "bob"))
    api.ok(api.post("/team/new", {"team_id": team_id, "members_with_roles": [
        {"role": "admin", "user_id": lead}, {"role": "user", "user_id": ann}, {"role": "user", "user_id": bob}]}))
    made = {user: api.new_key(user_id=user, team_id=team_id) for user in (lead, ann, bob)}
    assert api.chat(made[bob]["key"]).status_code == 200          # bob has some spend

    mine = api.ok(api.get("/team/info", {"team_id": team_id}, key=made[ann]["key"]))
    assert [k["key_name"] for k in mine["keys"]] == [made[ann]["key_name"]]
    assert [m["user_id"] for m in mine["team_memberships"]] == [ann]
    assert {m["user_id"] for m in mine["team_info"]["members_with_roles"]} == {lead, ann, bob}
    assert made[bob]["token"] not in str(mine) and made[lead]["token"] not in str(mine)

    everything = api.ok(api.get("/team/info", {"team_id": team_id}, key=made[lead]["key"]))
    assert {k["key_name"] for k in everything["keys"]} == {made[u]["key_name"] for u in (lead, ann, bob)}
    assert {m["user_id"] for m in everything["team_memberships"]} == {lead, ann, bob}
    assert api.ok(api.get("/team/info", {"team_id": team_id})) == everything        # the master key too
