"""Every management endpoint through a real ``trioproxy run``, on SQLite and on PostgreSQL.

Keys, teams, internal users, customers (and the ``/end_user`` aliases), budgets and the audit log:
LiteLLM's paths, fields and answers; who may call what; bad input gets LiteLLM's status and a
precise message; authorization comes before the body is even parsed.
"""

from __future__ import annotations

import uuid

from support.keys_support import MASTER, Api, error


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- keys ------------------------------------------------------------------------------------------

def test_key_generate_info_update_list(api: Api) -> None:
    alias = uid("ci")
    made = api.new_key(key_alias=alias, duration="30d", models=["gpt-test"], max_budget=10, budget_duration="1mo",
                       rpm_limit=60, tags=["ci"], metadata={"spend_logs_metadata": {"owner": "ci"}},
                       permissions={"hide_secrets": False})
    key = made["key"]
    assert key.startswith("sk-") and len(key) >= 35
    assert made["token"] == made["token_id"] and len(made["token"]) == 64
    assert made["key_name"] == f"sk-...{key[-4:]}" and made["key_alias"] == alias
    assert made["max_budget"] == 10.0 and made["spend"] == 0.0 and made["expires"].endswith("+00:00")
    assert made["metadata"] == {"spend_logs_metadata": {"owner": "ci"}, "tags": ["ci"]}

    by_key = api.ok(api.get("/key/info", {"key": key}))
    by_hash = api.ok(api.get("/key/info", {"key": made["token"]}))
    assert by_key == by_hash and by_key["key"] == made["token"] and "token" not in by_key["info"]
    assert by_key["info"]["key_alias"] == alias and by_key["info"]["rpm_limit"] == 60
    own = api.ok(api.get("/key/info", key=key))               # a key reads its own info without ?key=
    assert own["info"]["key_alias"] == alias

    updated = api.ok(api.post("/key/update", {"key": key, "rpm_limit": 120}))
    assert updated["rpm_limit"] == 120 and updated["max_budget"] == 10.0       # only what was sent changed
    assert api.ok(api.get("/key/info", key=key))["info"]["rpm_limit"] == 120

    listed = api.ok(api.get("/key/list", {"key_alias": alias}))
    assert listed == {"keys": [made["token"]], "total_count": 1, "current_page": 1, "total_pages": 1}
    full = api.ok(api.get("/key/list", {"key_alias": alias, "return_full_object": "true"}))
    assert full["keys"][0]["key_alias"] == alias


def test_key_info_of_another_key_is_refused(api: Api) -> None:
    mine, other = api.new_key()["key"], api.new_key()
    refused = api.get("/key/info", {"key": other["token"]}, key=mine)
    assert refused.status_code == 403 and "not allowed to access this key's info" in error(refused)["message"]
    master_self = api.get("/key/info")
    assert master_self.status_code == 400 and error(master_self)["param"] == "key"


def test_bring_your_own_key_and_duplicates(api: Api) -> None:
    own = "sk-own-" + uuid.uuid4().hex
    alias = uid("dup")
    made = api.new_key(key=own, key_alias=alias)
    assert made["key"] == own
    assert api.chat(own).status_code == 200
    again = api.post("/key/generate", {"key": own})
    assert again.status_code == 400 and own not in again.text and error(again)["param"] == "key"
    dup = api.post("/key/generate", {"key_alias": alias})
    assert dup.status_code == 400
    assert error(dup)["message"] == (f"Key with alias '{alias}' already exists. Unique key aliases across all keys "
                                     "are required.")
    bad = api.post("/key/generate", {"key": "not-a-key"})
    assert bad.status_code == 400 and error(bad)["param"] == "key"


def test_bad_input_gets_a_precise_400(api: Api) -> None:
    unknown = api.post("/key/generate", {"modles": ["x"], "colour": "red"})
    assert unknown.status_code == 400
    assert "'modles', 'colour'" in error(unknown)["message"] and error(unknown)["param"] == "modles"
    wrong_type = api.post("/key/generate", {"max_budget": "lots"})
    assert wrong_type.status_code == 400 and error(wrong_type)["param"] == "max_budget"
    duration = api.post("/key/generate", {"duration": "3x"})
    assert duration.status_code == 400 and error(duration)["param"] == "duration"
    assert "invalid duration '3x'" in error(duration)["message"]
    no_team = api.post("/key/generate", {"team_id": "no-such-team"})
    assert no_team.status_code == 400
    assert error(no_team)["message"] == "Unable to find team object in database. Team ID: no-such-team"
    not_json = api.post("/key/generate", b"{not json")
    assert not_json.status_code == 400 and "not valid JSON" in error(not_json)["message"]
    not_object = api.post("/key/generate", [1, 2])
    assert not_object.status_code == 400 and "must be a JSON object" in error(not_object)["message"]


def test_key_delete_answers_as_passed_and_is_all_or_nothing(api: Api) -> None:
    a, b, c = api.new_key(), api.new_key(), api.new_key(key_alias=uid("del"))
    missing = api.post("/key/delete", {"keys": [a["key"], "sk-never-existed-123"]})
    assert missing.status_code == 404 and "sk-...-123" in error(missing)["message"]
    assert "sk-never-existed-123" not in missing.text
    assert api.chat(a["key"]).status_code == 200                     # nothing was deleted
    deleted = api.ok(api.post("/key/delete", {"keys": [a["key"], b["token"]], "key_aliases": [c["key_alias"]]}))
    assert deleted == {"deleted_keys": [a["token"], b["token"], c["key_alias"]]}
    assert a["key"] not in str(deleted)
    for made in (a, b, c):
        refused = api.chat(made["key"])
        assert refused.status_code == 401 and error(refused)["type"] == "authentication_error"
    again = api.post("/key/delete", {"keys": [b["token"]]})
    assert again.status_code == 404


def test_key_block_unblock(api: Api) -> None:
    made = api.new_key()
    blocked = api.ok(api.post("/key/block", {"key": made["key"]}))
    assert blocked["blocked"] is True
    refused = api.chat(made["key"])
    assert refused.status_code == 401
    assert error(refused)["message"] == "Key is blocked. Update via /key/unblock if you're an admin."
    assert api.ok(api.post("/key/unblock", {"key": made["token"]}))["blocked"] is False
    assert api.chat(made["key"]).status_code == 200


def test_key_regenerate_both_paths(api: Api) -> None:
    made = api.new_key(key_alias=uid("rot"), max_budget=3, metadata={"owner": "x"})
    rotated = api.ok(api.post("/key/regenerate", {"key": made["key"]}))
    new = rotated["key"]
    assert new != made["key"] and rotated["token"] != made["token"] and rotated["rotation_count"] == 1
    assert rotated["key_alias"] == made["key_alias"] and rotated["max_budget"] == 3.0
    assert rotated["metadata"] == {"owner": "x"}
    assert api.chat(made["key"]).status_code == 401                  # the old secret: refused at once
    assert api.chat(new).status_code == 200
    # the path form, with a grace period that keeps the old secret valid for a while
    again = api.ok(api.post(f"/key/{new}/regenerate", {"grace_period": "1h"}))
    assert again["rotation_count"] == 2
    assert api.chat(new).status_code == 200 and api.chat(again["key"]).status_code == 200
    by_hash = api.ok(api.post(f"/key/{again['token']}/regenerate", {}))
    assert api.chat(by_hash["key"]).status_code == 200
    assert api.chat(again["key"]).status_code == 401


# -- teams -----------------------------------------------------------------------------------------

def test_team_lifecycle(api: Api) -> None:
    team_id, alice, bob = uid("team"), uid("alice"), uid("bob")
    team = api.ok(api.post("/team/new", {"team_id": team_id, "team_alias": "eng", "max_budget": 100,
                                         "models": ["gpt-test"], "tags": ["eng"],
                                         "members_with_roles": [{"role": "admin", "user_id": alice},
                                                                {"role": "user", "user_email": f"{bob}@x.io"}]}))
    assert team["team_id"] == team_id and team["admins"] == [alice] and team["spend"] == 0.0
    assert team["metadata"] == {"tags": ["eng"]} and team["models"] == ["gpt-test"]
    key = api.new_key(team_id=team_id)
    member_key = api.new_key(user_id=alice)

    info = api.ok(api.get("/team/info", {"team_id": team_id}))
    assert info["team_id"] == team_id and info["team_info"]["team_alias"] == "eng"
    assert [k["token"] for k in info["keys"]] == [key["token"]]
    assert alice in {m["user_id"] for m in info["team_memberships"]} and len(info["team_memberships"]) == 2
    assert api.get("/team/info", {"team_id": team_id}, key=key["key"]).status_code == 200   # a key of the team
    assert api.get("/team/info", {"team_id": team_id}, key=member_key["key"]).status_code == 200  # a member
    outsider = api.get("/team/info", {"team_id": team_id}, key=api.new_key()["key"])
    assert outsider.status_code == 403

    updated = api.ok(api.post("/team/update", {"team_id": team_id, "rpm_limit": 600}))
    assert updated["team_id"] == team_id and updated["data"]["rpm_limit"] == 600
    carol = uid("carol")
    added = api.ok(api.post("/team/member_add", {"team_id": team_id, "member": {"role": "user", "user_id": carol},
                                                 "max_budget_in_team": 5}))
    assert any(m["user_id"] == carol for m in added["members_with_roles"])
    changed = api.ok(api.post("/team/member_update", {"team_id": team_id, "user_id": carol, "role": "admin",
                                                      "max_budget_in_team": 8}))
    assert changed["role"] == "admin" and changed["max_budget_in_team"] == 8.0
    assert team_id in [t["team_id"] for t in api.ok(api.get("/user/info", {"user_id": carol}))["teams"]]
    removed = api.ok(api.post("/team/member_delete", {"team_id": team_id, "user_email": f"{bob}@x.io"}))
    assert all(m.get("user_email") != f"{bob}@x.io" for m in removed["members_with_roles"])

    assert api.ok(api.post("/team/block", {"team_id": team_id}))["blocked"] is True
    refused = api.chat(key["key"])
    assert refused.status_code == 401 and f"Team={team_id} is blocked" in error(refused)["message"]
    assert api.ok(api.post("/team/unblock", {"team_id": team_id}))["blocked"] is False
    assert api.chat(key["key"]).status_code == 200
    listed = api.ok(api.get("/team/list"))
    assert team_id in [t["team_id"] for t in listed]

    assert api.ok(api.post("/team/delete", {"team_ids": [team_id]})) == {"deleted_teams": [team_id]}
    assert api.chat(key["key"]).status_code == 401                  # its keys are refused at once
    gone = api.get("/team/info", {"team_id": team_id})
    assert gone.status_code == 404 and error(gone)["message"] == f"Team not found, passed team_id={team_id}"
    assert api.post("/team/delete", {"team_ids": [team_id]}).status_code == 404


# -- internal users --------------------------------------------------------------------------------

def test_user_lifecycle(api: Api) -> None:
    ann, other = uid("ann"), uid("other")
    made = api.ok(api.post("/user/new", {"user_id": ann, "user_email": f"{ann}@x.io", "user_role": "internal_user",
                                         "max_budget": 20, "key_alias": uid("laptop"), "duration": "90d"}))
    assert made["user_id"] == ann and made["max_budget"] == 20.0 and made["key"].startswith("sk-")
    assert api.chat(made["key"]).status_code == 200
    other_key = api.ok(api.post("/user/new", {"user_id": other}))["key"]

    info = api.ok(api.get("/user/info", {"user_id": ann}))
    assert info["user_id"] == ann and info["user_info"]["user_id"] == ann
    assert [k["token"] for k in info["keys"]] == [made["token"]]
    assert api.get("/user/info", {"user_id": ann}, key=made["key"]).status_code == 200     # its own
    assert api.get("/user/info", key=made["key"]).json()["user_id"] == ann               # by its key alone
    refused = api.get("/user/info", {"user_id": ann}, key=other_key)
    assert refused.status_code == 403

    updated = api.ok(api.post("/user/update", {"user_id": ann, "user_role": "proxy_admin_viewer"}))
    assert updated["user_id"] == ann and updated["data"]["user_role"] == "proxy_admin_viewer"
    listed = api.ok(api.get("/user/list", {"user_ids": f"{ann},{other}"}))
    assert {u["user_id"] for u in listed["users"]} == {ann, other} and listed["total"] == 2

    assert api.ok(api.post("/user/delete", {"user_ids": [ann]})) == {"deleted_users": [ann]}
    assert api.chat(made["key"]).status_code == 401                 # their keys go with them
    assert api.get("/user/info", {"user_id": ann}).status_code == 404


def test_roles_decide_what_a_key_may_call(api: Api) -> None:
    admin_user, viewer, plain = uid("admin"), uid("viewer"), uid("plain")
    admin_key = api.ok(api.post("/user/new", {"user_id": admin_user, "user_role": "proxy_admin"}))["key"]
    viewer_key = api.ok(api.post("/user/new", {"user_id": viewer, "user_role": "proxy_admin_viewer"}))["key"]
    plain_key = api.ok(api.post("/user/new", {"user_id": plain}))["key"]

    assert api.post("/key/generate", {}, key=admin_key).status_code == 200     # a proxy_admin user's key
    assert api.get("/key/list", key=viewer_key).status_code == 200             # viewers read…
    assert api.get("/audit", key=viewer_key).status_code == 200
    write = api.post("/team/new", {}, key=viewer_key)                           # …and change nothing
    assert write.status_code == 403
    # the route decision's answer to a viewer writing (LiteLLM's message for that role)
    assert error(write)["message"] == ("user not allowed to access this route, role= proxy_admin_viewer. "
                                       "Trying to access: /team/new")
    read = api.get("/key/list", key=plain_key)
    assert read.status_code == 403
    assert error(read)["message"] == ("user not allowed to access this route, role= internal_user. "
                                      "Trying to access: /key/list")
    # authorization comes before the body: garbage from a caller without the right is a 403, not a 400
    for body in (b"{not json", {"unknown_field": 1}, {"duration": "3x"}):
        assert api.post("/key/generate", body, key=plain_key).status_code == 403
    no_key = api.client.post("/key/generate", json={})
    assert no_key.status_code == 401
    wrong = api.post("/key/generate", {}, key="sk-not-a-real-key-000")
    assert wrong.status_code == 401


# -- customers, budgets ----------------------------------------------------------------------------

def test_customer_lifecycle_and_aliases(api: Api) -> None:
    acme = uid("acme")
    made = api.ok(api.post("/customer/new", {"user_id": acme, "alias": "Acme", "max_budget": 50, "rpm_limit": 10,
                                             "allowed_model_region": "eu"}))
    assert made["user_id"] == acme and made["blocked"] is False and made["litellm_budget_table"]["max_budget"] == 50.0
    assert api.ok(api.get("/customer/info", {"end_user_id": acme}))["alias"] == "Acme"
    assert api.ok(api.get("/end_user/info", {"end_user_id": acme}))["alias"] == "Acme"
    updated = api.ok(api.post("/end_user/update", {"user_id": acme, "default_model": "gpt-test", "max_budget": 80}))
    assert updated["default_model"] == "gpt-test" and updated["litellm_budget_table"]["max_budget"] == 80.0
    assert acme in [c["user_id"] for c in api.ok(api.get("/customer/list"))]
    assert api.ok(api.post("/customer/delete", {"user_ids": [acme]})) == {"deleted_customers": [acme]}
    missing = api.get("/customer/info", {"end_user_id": acme})
    assert missing.status_code == 404 and error(missing)["message"] == f"End User Id={acme} does not exist in db"
    assert api.post("/customer/delete", {"user_ids": [acme]}).status_code == 404
    long_id = api.post("/customer/block", {"user_ids": ["x" * 256]})
    assert long_id.status_code == 400 and error(long_id)["param"] == "user_ids"


def test_budget_new_is_attached_by_id(api: Api) -> None:
    budget_id, customer = uid("tier"), uid("cust")
    budget = api.ok(api.post("/budget/new", {"budget_id": budget_id, "max_budget": 10, "rpm_limit": 100,
                                             "budget_duration": "1mo"}))
    assert budget["budget_id"] == budget_id and budget["max_budget"] == 10.0 and budget["budget_reset_at"]
    attached = api.ok(api.post("/customer/new", {"user_id": customer, "budget_id": budget_id}))
    assert attached["litellm_budget_table"]["rpm_limit"] == 100
    assert api.post("/budget/new", {"budget_id": budget_id}).status_code == 400       # taken


def test_customer_block_unblock_and_the_seeds_user_unblock(api: Api, upstream) -> None:  # type: ignore[no-untyped-def]
    spammer = uid("spammer")
    assert api.chat(MASTER, user=spammer).status_code == 200           # not blocked: cached as "no row"
    assert api.ok(api.post("/customer/block", {"user_ids": [spammer]})) == {"blocked_users": [spammer]}
    before = len(upstream.requests)
    refused = api.chat(MASTER, user=spammer)                            # the very next request
    assert refused.status_code == 403 and error(refused)["code"] == "user_blocked"
    assert len(upstream.requests) == before                             # refused before the upstream
    key = api.new_key()["key"]
    assert api.chat(key, user=spammer).status_code == 403               # whatever key it comes with
    assert api.ok(api.post("/customer/unblock", {"user_ids": [spammer]})) == {"unblocked_users": [spammer]}
    assert api.chat(MASTER, user=spammer).status_code == 200
    api.ok(api.post("/end_user/block", {"user_ids": [spammer]}))
    assert api.chat(MASTER, user=spammer).status_code == 403
    assert api.ok(api.post("/user/unblock", {"user_ids": [spammer]})) == {"unblocked_users": [spammer]}
    assert api.chat(MASTER, user=spammer).status_code == 200


def test_the_configs_blocked_user_list_and_the_database_combine(api: Api) -> None:
    """``blocked_user_list`` (config) blocks too; unblocking such an id in the database says it stays
    blocked by the config."""
    assert api.chat(MASTER, user="config-blocked").status_code == 403
    answer = api.ok(api.post("/customer/unblock", {"user_ids": ["config-blocked", "someone-else"]}))
    assert answer == {"unblocked_users": ["config-blocked", "someone-else"], "still_blocked_by_config": ["config-blocked"]}
    assert api.chat(MASTER, user="config-blocked").status_code == 403


# -- audit -----------------------------------------------------------------------------------------

def test_audit_log_endpoints(api: Api) -> None:
    team_id = uid("audited")
    api.ok(api.post("/team/new", {"team_id": team_id, "max_budget": 2}))
    api.ok(api.post("/team/update", {"team_id": team_id, "max_budget": 3}, headers={"litellm-changed-by": "alice"}))
    page = api.ok(api.get("/audit", {"object_id": team_id, "table_name": "LiteLLM_TeamTable"}))
    assert page["total"] == 2 and page["page"] == 1 and page["total_pages"] == 1
    updated, created = page["audit_logs"]                                # newest first
    assert set(created) == {"id", "updated_at", "changed_by", "changed_by_api_key", "action", "table_name",
                            "object_id", "before_value", "updated_values"}
    assert created["action"] == "created" and created["before_value"] is None
    assert created["updated_values"]["max_budget"] == 2.0 and created["changed_by"] == "admin"
    assert updated["action"] == "updated" and updated["changed_by"] == "alice"
    assert updated["before_value"]["max_budget"] == 2.0 and updated["updated_values"] == {"max_budget": 3.0}
    # the master key leaves no hash of itself in the audit log: viewers read it
    assert created["changed_by_api_key"] == "" and updated["changed_by_api_key"] == ""
    assert api.ok(api.get(f"/audit/{created['id']}")) == created
    assert api.get("/audit/no-such-id").status_code == 404
    paged = api.ok(api.get("/audit", {"object_id": team_id, "page_size": "1", "page": "2"}))
    assert [r["action"] for r in paged["audit_logs"]] == ["created"] and paged["total_pages"] == 2
    assert api.get("/audit", {"page_size": "101"}).status_code == 400
    assert api.get("/audit", {"action": "exploded"}).status_code == 400


def test_an_admin_keys_changes_are_audited_by_its_hash_and_user(api: Api) -> None:
    boss = uid("boss")
    made = api.ok(api.post("/user/new", {"user_id": boss, "user_role": "proxy_admin"}))
    created = api.ok(api.post("/key/generate", {"key_alias": uid("by-boss")}, key=made["key"]))
    [row] = api.ok(api.get("/audit", {"object_id": created["token"]}))["audit_logs"]
    assert row["changed_by"] == boss and row["changed_by_api_key"] == made["token"]
    assert created["key"] not in str(row)


def test_a_management_body_over_the_cap_is_a_413(api: Api) -> None:
    too_big = api.post("/key/generate", b'{"metadata": {"x": "' + b"y" * (1024 * 1024) + b'"}}')
    assert too_big.status_code == 413
