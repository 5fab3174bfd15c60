"""The key repository on both backends: every operation, its audit row, and its invalidations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trioproxy.auth import hash_key
from trioproxy.store import Actor, Conflict, Invalidation, MissingReference, NotFound, Store
from trioproxy.store.schema import LITELLM_TABLE_NAMES

from .store_helpers import read_all_bytes_and_rows

ADMIN = Actor("admin", "f" * 64)
CLEAR = "sk-store-test-CLEAR-0123456789abcdefghijklmnop"


def key_row(clear: str = CLEAR, **extra: object) -> dict[str, object]:
    return {"token": hash_key(clear), "key_name": f"sk-...{clear[-4:]}", **extra}


async def audit_rows(store: Store, **filters: object) -> list[dict]:
    return (await store.audit.list(**filters, size=100)).rows


async def test_create_and_read(store: Store) -> None:
    row = await store.keys.create(key_row(key_alias="k1", models=["gpt-4o"], max_budget=2_500_000,
                                          metadata={"tags": ["a"], "spend_logs_metadata": {"x": 1}}), ADMIN)
    assert row["token"] == hash_key(CLEAR) and row["key_alias"] == "k1"
    assert row["models"] == ["gpt-4o"] and row["max_budget"] == 2_500_000 and row["spend"] == 0
    assert row["blocked"] is False and row["expires"] is None and row["created_by"] == "admin"
    assert row["created_at"] == store.ctx.clock()
    assert await store.keys.get(hash_key(CLEAR)) == row
    assert await store.keys.get_by_alias(["k1"]) == [row]
    assert await store.keys.get("0" * 64) is None
    [audit] = await audit_rows(store)
    assert audit["action"] == "created" and audit["table_name"] == LITELLM_TABLE_NAMES["virtual_keys"]
    assert audit["object_id"] == hash_key(CLEAR) and audit["before_value"] is None
    assert audit["updated_values"]["max_budget"] == 2.5 and audit["changed_by_api_key"] == "f" * 64
    assert store.bus.published[-1] == Invalidation.key(hash_key(CLEAR))


async def test_duplicates_are_conflicts(store: Store) -> None:
    await store.keys.create(key_row(key_alias="same"), ADMIN)
    with pytest.raises(Conflict) as info:
        await store.keys.create(key_row("sk-other-key-0000000000000000", key_alias="same"), ADMIN)
    assert info.value.field == "key_alias"
    with pytest.raises(Conflict) as info:
        await store.keys.create(key_row(), ADMIN)
    assert info.value.field == "token"
    assert len(await audit_rows(store)) == 1      # failed creations leave no audit row


async def test_a_key_of_a_missing_team_is_refused(store: Store) -> None:
    with pytest.raises(MissingReference) as info:
        await store.keys.create(key_row(team_id="nope"), ADMIN)
    assert (info.value.entity, info.value.id) == ("team", "nope")


async def test_update_changes_only_the_fields_sent(store: Store, clock) -> None:
    await store.keys.create(key_row(key_alias="a", models=["m1"], rpm_limit=5, metadata={"k": "v"}), ADMIN)
    clock.advance(60)
    after = await store.keys.update(hash_key(CLEAR), {"rpm_limit": 10, "key_alias": None}, Actor("ops"))
    assert after["rpm_limit"] == 10 and after["key_alias"] is None
    assert after["models"] == ["m1"] and after["metadata"] == {"k": "v"}
    assert after["updated_at"] == clock.now and after["updated_by"] == "ops"
    audit = (await audit_rows(store, action="updated"))[0]
    assert audit["before_value"]["rpm_limit"] == 5 and audit["updated_values"] == {"rpm_limit": 10, "key_alias": None}
    with pytest.raises(NotFound):
        await store.keys.update("0" * 64, {"rpm_limit": 1}, ADMIN)
    with pytest.raises(ValueError):
        await store.keys.update(hash_key(CLEAR), {"spend_now": 1}, ADMIN)


async def test_block_and_unblock(store: Store, clock) -> None:
    await store.keys.create(key_row(), ADMIN)
    clock.advance(1)
    assert (await store.keys.set_blocked(hash_key(CLEAR), True, ADMIN))["blocked"] is True
    clock.advance(1)
    assert (await store.keys.set_blocked(hash_key(CLEAR), False, ADMIN))["blocked"] is False
    actions = [r["action"] for r in await audit_rows(store)]
    assert actions[:2] == ["unblocked", "blocked"]
    with pytest.raises(NotFound):
        await store.keys.set_blocked("0" * 64, True, ADMIN)


async def test_delete_is_all_or_nothing(store: Store) -> None:
    a, b = key_row("sk-aaaaaaaaaaaaaaaaaaaaaaaaaaaa"), key_row("sk-bbbbbbbbbbbbbbbbbbbbbbbbbbbb")
    await store.keys.create(a, ADMIN)
    await store.keys.create(b, ADMIN)
    with pytest.raises(NotFound) as info:
        await store.keys.delete([a["token"], "0" * 64], ADMIN)
    assert info.value.ids == ["0" * 64]
    assert await store.keys.get(a["token"]) is not None
    deleted = await store.keys.delete([a["token"], b["token"]], ADMIN)
    assert {r["token"] for r in deleted} == {a["token"], b["token"]}
    assert await store.keys.get(a["token"]) is None
    deletions = await audit_rows(store, action="deleted")
    assert {r["object_id"] for r in deletions} == {a["token"], b["token"]}
    assert all(r["before_value"]["token"] in (a["token"], b["token"]) for r in deletions)


async def test_list_filters_and_pages(store: Store, clock) -> None:
    await store.teams.create({"team_id": "t1"}, [], ADMIN)
    for i in range(7):
        clock.advance(1)
        await store.keys.create(key_row(f"sk-list-{i:02d}-xxxxxxxxxxxxxxxxxxxx", user_id="u1" if i < 5 else "u2",
                                        team_id="t1" if i % 2 else None, key_alias=f"alias{i}"), ADMIN)
    page1 = await store.keys.list(user_id="u1", size=2)
    assert page1.total == 5 and page1.total_pages == 3 and len(page1.rows) == 2
    page3 = await store.keys.list(user_id="u1", size=2, page=3)
    assert [r["key_alias"] for r in page3.rows] == ["alias4"]
    assert (await store.keys.list(team_id="t1")).total == 3
    assert [r["key_alias"] for r in (await store.keys.list(key_alias="alias6")).rows] == ["alias6"]
    assert (await store.keys.list(size=100)).total == 7


async def test_rotate_without_grace_keeps_the_row(store: Store, clock) -> None:
    await store.teams.create({"team_id": "t1"}, [], ADMIN)
    old = await store.keys.create(key_row(key_alias="r", team_id="t1", max_budget=7, spend=3, metadata={"m": 1}), ADMIN)
    new_clear = "sk-rotated-NEW-KEY-zzzzzzzzzzzzzzzzzzzz"
    clock.advance(5)
    rotated = await store.keys.rotate(old["token"], new_token=hash_key(new_clear), new_key_name="sk-...zzzz",
                                      grace_until=None, changes={"rpm_limit": 9}, actor=ADMIN)
    assert rotated["token"] == hash_key(new_clear) and rotated["key_name"] == "sk-...zzzz"
    for field in ("key_alias", "team_id", "max_budget", "spend", "metadata", "created_at"):
        assert rotated[field] == old[field], field
    assert rotated["rpm_limit"] == 9 and rotated["rotation_count"] == 1 and rotated["last_rotation_at"] == clock.now
    assert await store.keys.get(old["token"]) is None
    audit = (await audit_rows(store, action="rotated"))[0]
    assert audit["object_id"] == hash_key(new_clear) and audit["before_value"]["token"] == old["token"]
    assert Invalidation.key(old["token"]) in store.bus.published[-2:]


async def test_rotate_with_grace_and_again(store: Store, clock) -> None:
    first = await store.keys.create(key_row(), ADMIN)
    second, third = hash_key("sk-second-xxxxxxxxxxxxxxxxxxxxxxx"), hash_key("sk-third-xxxxxxxxxxxxxxxxxxxxxxxx")
    await store.keys.rotate(first["token"], new_token=second, new_key_name="sk-...2", changes={},
                            grace_until=clock.now + timedelta(hours=1), actor=ADMIN)
    rows = await store.db.read(lambda c: c.all('SELECT * FROM "deprecated_keys"'))
    assert [(r["token"], r["active_token"]) for r in rows] == [(first["token"], second)]
    # rotating again: the first old hash now points at the newest row (ON UPDATE CASCADE)
    await store.keys.rotate(second, new_token=third, new_key_name="sk-...3", changes={},
                            grace_until=clock.now + timedelta(hours=1), actor=ADMIN)
    rows = await store.db.read(lambda c: c.all('SELECT * FROM "deprecated_keys" ORDER BY "token"'))
    assert {r["token"]: r["active_token"] for r in rows} == {first["token"]: third, second: third}
    # deleting the key deletes its grace hashes too
    await store.keys.delete([third], ADMIN)
    assert await store.db.read(lambda c: c.all('SELECT * FROM "deprecated_keys"')) == []


async def test_rotate_errors(store: Store) -> None:
    a = await store.keys.create(key_row(), ADMIN)
    b = await store.keys.create(key_row("sk-bbbbbbbbbbbbbbbbbbbbbbbbbbbb"), ADMIN)
    with pytest.raises(NotFound):
        await store.keys.rotate("0" * 64, new_token="1" * 64, new_key_name="x", grace_until=None, changes={},
                                actor=ADMIN)
    with pytest.raises(Conflict):
        await store.keys.rotate(a["token"], new_token=b["token"], new_key_name="x", grace_until=None, changes={},
                                actor=ADMIN)
    assert await store.keys.get(a["token"]) is not None


async def test_the_clear_key_never_reaches_the_database(store: Store, db_url: str, backend: str) -> None:
    await store.keys.create(key_row(key_alias="secret-test"), ADMIN)
    await store.keys.update(hash_key(CLEAR), {"rpm_limit": 3}, ADMIN)
    new_clear = "sk-rotation-CLEAR-9999999999999999999999"
    await store.keys.rotate(hash_key(CLEAR), new_token=hash_key(new_clear), new_key_name="sk-...9999",
                            grace_until=store.ctx.clock() + timedelta(minutes=5), changes={}, actor=ADMIN)
    await store.drain(5)
    everything = read_all_bytes_and_rows(db_url, backend)
    assert hash_key(CLEAR).encode() in everything      # the hash is there (the test reads the right place)
    assert CLEAR.encode() not in everything and new_clear.encode() not in everything
    assert CLEAR[3:].encode() not in everything


async def test_audit_off_writes_no_audit_rows(make_store) -> None:
    async with make_store(audit=False) as store:
        await store.keys.create(key_row(), ADMIN)
        await store.keys.set_blocked(hash_key(CLEAR), True, ADMIN)
        assert (await store.audit.list()).total == 0
