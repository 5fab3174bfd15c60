"""``/key/*`` operations: answers, validation, permissions, and the clear key shown only once."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from trioproxy.admin import AdminContext, Caller, keys
from trioproxy.auth import hash_key
from trioproxy.store import Store
from trioproxy.store.key_cache import InvalidKeyError

from .admin_helpers import MASTER, PLAIN, VIEWER, error_of
from .store_helpers import read_all_bytes_and_rows


async def test_generate_answers_once_with_the_clear_key(admin: AdminContext, store: Store, clock) -> None:
    answer = await keys.key_generate(admin, MASTER, {
        "key_alias": "ci", "duration": "1h", "models": ["gpt-4o"], "max_budget": 10, "budget_duration": "30d",
        "tpm_limit": 1000, "rpm_limit": 10, "max_parallel_requests": 2, "tags": ["team-a"],
        "metadata": {"spend_logs_metadata": {"owner": "ci"}}, "permissions": {"hide_secrets": False},
        "enforced_params": ["user"], "guardrails": ["g1"], "model_max_budget": {"gpt-4o": {"budget_limit": 0.5,
                                                                                             "time_period": "1d"}}})
    clear = answer["key"]
    assert re.fullmatch(r"sk-[A-Za-z0-9_-]{43}", clear)
    assert answer["token"] == answer["token_id"] == hash_key(clear) and answer["key_name"] == f"sk-...{clear[-4:]}"
    assert answer["expires"] == (clock.now + timedelta(hours=1)).isoformat()
    assert answer["budget_reset_at"] == (clock.now + timedelta(days=30)).isoformat()
    assert answer["max_budget"] == 10.0 and answer["spend"] == 0.0 and answer["budget_duration"] == "30d"
    assert answer["metadata"] == {"spend_logs_metadata": {"owner": "ci"}, "tags": ["team-a"]}
    assert answer["model_max_budget"] == {"gpt-4o": {"budget_limit": 0.5, "time_period": "1d"}}
    stored = await store.keys.get(hash_key(clear))
    assert stored["max_budget"] == 10_000_000
    assert stored["model_max_budget"]["gpt-4o"]["budget_limit_micros"] == 500_000
    json.dumps(answer)                                     # a plain JSON answer
    # every later answer names the key by its hash only
    later = [await keys.key_info(admin, MASTER, {"key": clear}),
             await keys.key_update(admin, MASTER, {"key": clear, "rpm_limit": 11}),
             await keys.key_block(admin, MASTER, {"key": clear}),
             await keys.key_unblock(admin, MASTER, {"key": hash_key(clear)}),
             await keys.key_list(admin, MASTER, {"return_full_object": "true"}),
             await keys.key_delete(admin, MASTER, {"keys": [clear]})]
    assert clear not in json.dumps(later) and clear[3:] not in json.dumps(later)
    audit = (await store.audit.list(size=100)).rows
    assert len(audit) == 5 and clear not in json.dumps(audit, default=str)


async def test_generate_with_a_custom_key_and_duplicates(admin: AdminContext) -> None:
    custom = "sk-my-own-custom-key-000000000000"
    answer = await keys.key_generate(admin, MASTER, {"key": custom, "key_alias": "mine"})
    assert answer["key"] == custom and answer["token"] == hash_key(custom)
    status, err = await error_of(keys.key_generate(admin, MASTER, {"key": custom}))
    assert status == 400 and err["param"] == "key" and custom not in err["message"]
    status, err = await error_of(keys.key_generate(admin, MASTER, {"key_alias": "mine"}))
    assert status == 400 and err["message"] == ("Key with alias 'mine' already exists. Unique key aliases "
                                                 "across all keys are required.")
    status, err = await error_of(keys.key_generate(admin, MASTER, {"key": "not-a-virtual-key"}))
    assert status == 400 and "must start with 'sk-'" in err["message"]


@pytest.mark.parametrize("body, param, words", [
    ({"max_budget": "10"}, "max_budget", "expected a number"),
    ({"models": "gpt-4o"}, "models", "expected a list of strings"),
    ({"duration": "3x"}, "duration", "invalid duration '3x'"),
    ({"budget_duration": "1.5h"}, "budget_duration", "invalid duration"),
    ({"rpm_limit": 1.5}, "rpm_limit", "expected an integer"),
    ({"blocked": "yes"}, "blocked", "expected true or false"),
    ({"max_budget": -1}, "max_budget", "must not be negative"),
    ({"metadata": []}, "metadata", "expected an object"),
    ({"key_alais": "x", "tmp_limit": 1}, "key_alais", "unknown field(s) 'key_alais', 'tmp_limit'"),
])
async def test_generate_validation(admin: AdminContext, body: dict, param: str, words: str) -> None:
    status, err = await error_of(keys.key_generate(admin, MASTER, body))
    assert status == 400 and err["param"] == param and words in err["message"]
    assert err["type"] == "invalid_request_error" and err["code"] == "400"


async def test_a_key_of_a_missing_team_is_refused(admin: AdminContext) -> None:
    status, err = await error_of(keys.key_generate(admin, MASTER, {"team_id": "ghost"}))
    assert status == 400 and err["message"] == "Unable to find team object in database. Team ID: ghost"


@pytest.mark.parametrize("op", ["key_generate", "key_update", "key_delete", "key_block", "key_unblock",
                                "key_regenerate"])
@pytest.mark.parametrize("caller", [VIEWER, PLAIN], ids=["viewer", "plain"])
async def test_changes_are_for_admins(admin: AdminContext, op: str, caller: Caller) -> None:
    status, err = await error_of(getattr(keys, op)(admin, caller, {"key": "sk-whatever-123456"}))
    assert status == 403 and "is an admin only route" in err["message"]


async def test_key_info_rules(admin: AdminContext, store: Store) -> None:
    mine = await keys.key_generate(admin, MASTER, {"user_id": "u1"})
    other = await keys.key_generate(admin, MASTER, {})
    record = await store.key_cache.authenticate(mine["key"])
    me = Caller.from_record(record)
    info = await keys.key_info(admin, me, {})
    assert info["key"] == mine["token"] and "token" not in info["info"] and info["info"]["user_id"] == "u1"
    assert (await keys.key_info(admin, me, {"key": mine["key"]}))["info"]["key_name"] == mine["key_name"]
    status, err = await error_of(keys.key_info(admin, me, {"key": other["token"]}))
    assert status == 403 and err["message"].startswith("You are not allowed to access this key's info")
    assert (await keys.key_info(admin, VIEWER, {"key": other["token"]}))["key"] == other["token"]
    status, err = await error_of(keys.key_info(admin, MASTER, {"key": "sk-never-existed-0000000000"}))
    assert status == 404 and "sk-...0000" in err["message"] and "never-existed" not in err["message"]


async def test_update_changes_only_what_is_sent(admin: AdminContext, store: Store) -> None:
    made = await keys.key_generate(admin, MASTER, {"models": ["a"], "metadata": {"x": 1}, "rpm_limit": 5})
    answer = await keys.key_update(admin, MASTER, {"key": made["key"], "tpm_limit": 7, "tags": ["t"]})
    assert answer["key"] == made["token"] and answer["tpm_limit"] == 7 and answer["rpm_limit"] == 5
    assert answer["models"] == ["a"] and answer["metadata"] == {"x": 1, "tags": ["t"]}
    status, err = await error_of(keys.key_update(admin, MASTER, {"key": "0" * 64, "rpm_limit": 1}))
    assert status == 404 and err["message"] == f"Key not found: {'0' * 64}"
    status, err = await error_of(keys.key_update(admin, MASTER, {"rpm_limit": 1}))
    assert status == 400 and err["param"] == "key"


async def test_delete_by_key_hash_and_alias(admin: AdminContext, store: Store) -> None:
    a = await keys.key_generate(admin, MASTER, {})
    b = await keys.key_generate(admin, MASTER, {})
    c = await keys.key_generate(admin, MASTER, {"key_alias": "c-alias"})
    await store.key_cache.authenticate(a["key"])
    status, err = await error_of(keys.key_delete(admin, MASTER, {"keys": [a["key"], "1" * 64]}))
    assert status == 404 and "1" * 64 in err["message"]
    assert await store.keys.get(a["token"]) is not None                 # nothing deleted
    answer = await keys.key_delete(admin, MASTER, {"keys": [a["key"], b["token"]], "key_aliases": ["c-alias"]})
    assert answer == {"deleted_keys": [a["token"], b["token"], "c-alias"]}
    with pytest.raises(InvalidKeyError):                                # refused on the very next request
        await store.key_cache.authenticate(a["key"])
    assert await store.keys.get(c["token"]) is None
    status, err = await error_of(keys.key_delete(admin, MASTER, {"key_aliases": ["c-alias"]}))
    assert status == 404
    status, err = await error_of(keys.key_delete(admin, MASTER, {}))
    assert status == 400


async def test_list_pages_and_filters(admin: AdminContext, clock) -> None:
    made = []
    for i in range(5):
        clock.advance(1)
        made.append(await keys.key_generate(admin, MASTER, {"user_id": "u" if i < 3 else "w"}))
    page = await keys.key_list(admin, VIEWER, {"user_id": "u", "size": "2", "page": "2"})
    assert page == {"keys": [made[2]["token"]], "total_count": 3, "current_page": 2, "total_pages": 2}
    full = await keys.key_list(admin, MASTER, {"return_full_object": "true", "user_id": "w"})
    assert [k["token"] for k in full["keys"]] == [made[3]["token"], made[4]["token"]]
    status, err = await error_of(keys.key_list(admin, MASTER, {"size": "1000"}))
    assert status == 400 and err["param"] == "size"
    status, _ = await error_of(keys.key_list(admin, PLAIN, {}))
    assert status == 403


async def test_regenerate_keeps_the_row_and_kills_the_old_secret(admin: AdminContext, store: Store) -> None:
    made = await keys.key_generate(admin, MASTER, {"key_alias": "rot", "max_budget": 3, "metadata": {"m": 1}})
    await store.key_cache.authenticate(made["key"])
    new = await keys.key_regenerate(admin, MASTER, {"key": made["key"], "rpm_limit": 4})
    assert new["key"] != made["key"] and new["token"] == hash_key(new["key"])
    assert new["key_alias"] == "rot" and new["max_budget"] == 3.0 and new["metadata"] == {"m": 1}
    assert new["rpm_limit"] == 4 and new["rotation_count"] == 1
    with pytest.raises(InvalidKeyError):
        await store.key_cache.authenticate(made["key"])
    assert (await store.key_cache.authenticate(new["key"])).key_alias == "rot"


async def test_regenerate_by_path_with_grace_and_custom_new_key(admin: AdminContext, store: Store, clock) -> None:
    made = await keys.key_generate(admin, MASTER, {})
    custom = "sk-brand-new-custom-secret-00000000"
    new = await keys.key_regenerate(admin, MASTER, {"key": made["token"], "new_key": custom, "grace_period": "2h"})
    assert new["key"] == custom
    assert (await store.key_cache.authenticate(made["key"])).token == hash_key(custom)   # old: grace
    clock.advance(2 * 3600)
    with pytest.raises(InvalidKeyError):
        await store.key_cache.authenticate(made["key"])
    status, err = await error_of(keys.key_regenerate(admin, MASTER, {"key": custom, "grace_period": "3x"}))
    assert status == 400 and err["param"] == "grace_period"
    status, err = await error_of(keys.key_regenerate(admin, MASTER, {"key": "2" * 64}))
    assert status == 404
    status, err = await error_of(keys.key_regenerate(admin, MASTER, {"key": custom, "grace_period": "31d"}))
    assert status == 400 and err["param"] == "grace_period" and "at most 30 days" in err["message"]
    assert (await keys.key_regenerate(admin, MASTER, {"key": custom, "grace_period": "30d"}))["rotation_count"] == 2


async def test_without_a_database(store: Store) -> None:
    status, err = await error_of(keys.key_generate(AdminContext(None), MASTER, {}))
    assert status == 501 and "Connect Proxy to database to generate keys" in err["message"]


async def test_the_clear_key_is_not_in_the_database(admin: AdminContext, store: Store, db_url: str,
                                                    backend: str) -> None:
    made = await keys.key_generate(admin, MASTER, {"key_alias": "grep-me"})
    rotated = await keys.key_regenerate(admin, MASTER, {"key": made["key"], "grace_period": "1h"})
    await store.drain(5)
    everything = read_all_bytes_and_rows(db_url, backend)
    assert b"grep-me" in everything and rotated["token"].encode() in everything
    for clear in (made["key"], rotated["key"]):
        assert clear.encode() not in everything and clear[3:].encode() not in everything
