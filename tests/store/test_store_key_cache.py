"""The request path's key cache: hits without the database, misses loaded once, every mutation
invalidating at once, no stale fill from a racing load, rotation grace, customers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio
import trio.testing

from trioproxy.auth import hash_key
from trioproxy.store import Actor, Store
from trioproxy.store.key_cache import BlockedKeyError, ExpiredKeyError, InvalidKeyError, KeyCache
from trioproxy.store.loading_cache import MISS

ADMIN = Actor("admin")
CLEAR = "sk-cache-test-KEY-0123456789abcdefghijkl"
TOKEN = hash_key(CLEAR)


async def setup_key(store: Store, **extra: object) -> None:
    await store.teams.create({"team_id": "t", "team_alias": "Team T", "models": ["m-team"],
                              "metadata": {"tags": ["team-tag"]}}, [{"user_id": "u", "role": "admin"}], ADMIN)
    await store.users.update("u", {"user_role": "proxy_admin_viewer", "max_budget": 5}, ADMIN)
    await store.keys.create({"token": TOKEN, "key_name": "sk-...ijkl", "key_alias": "alias", "user_id": "u",
                             "team_id": "t", "models": ["m1"], "metadata": {"tags": ["k"]},
                             "permissions": {"hide_secrets": False}, "max_budget": 2_000_000, "rpm_limit": 7,
                             **extra}, ADMIN)


async def test_a_hit_does_not_touch_the_database(store: Store) -> None:
    await setup_key(store)
    cache = store.key_cache
    record = await cache.authenticate(CLEAR)
    assert cache.stats.loads == 1
    assert record.token == TOKEN and record.key_alias == "alias" and record.models == ("m1",)
    assert record.user_role == "proxy_admin_viewer" and record.user.max_budget == 5
    assert record.team.team_alias == "Team T" and record.team.models == ("m-team",)
    assert record.membership.role == "admin" and record.max_budget == 2_000_000 and record.rpm_limit == 7
    for _ in range(5):
        assert await cache.authenticate(CLEAR) is record
    assert cache.stats.loads == 1 and cache.stats.hits == 5
    assert cache.lookup(TOKEN) is record


async def test_the_record_is_immutable_and_hooks_get_copies(store: Store) -> None:
    await setup_key(store)
    record = await store.key_cache.authenticate(CLEAR)
    with pytest.raises(TypeError):
        record.metadata["tags"] = []  # type: ignore[index]
    with pytest.raises(AttributeError):
        record.blocked = True  # type: ignore[misc]
    auth = record.to_user_api_key_auth()
    assert auth.api_key == TOKEN and auth.user_role == "proxy_admin_viewer" and auth.team_alias == "Team T"
    assert auth.metadata == {"tags": ["k"]} and auth.team_metadata == {"tags": ["team-tag"]}
    assert auth.max_budget == 2.0 and auth.spend == 0.0 and auth.permissions == {"hide_secrets": False}
    auth.metadata["tags"].append("changed")
    assert record.metadata["tags"] == ("k",)


async def test_unknown_keys_are_refused_and_briefly_remembered(store: Store, monotonic) -> None:
    cache = store.key_cache
    with pytest.raises(InvalidKeyError) as info:
        await cache.authenticate(CLEAR)
    assert info.value.status_code == 401 and TOKEN in info.value.message and CLEAR not in info.value.message
    with pytest.raises(InvalidKeyError):
        await cache.authenticate(CLEAR)
    assert cache.stats.loads == 1 and cache.stats.negative_hits == 1
    monotonic.advance(cache.negative_ttl + 0.001)
    with pytest.raises(InvalidKeyError):
        await cache.authenticate(CLEAR)
    assert cache.stats.loads == 2
    # creating the key (bring your own) drops the negative entry at once
    await setup_key(store)
    assert (await cache.authenticate(CLEAR)).token == TOKEN


async def test_positive_entries_expire_after_the_ttl(store: Store, monotonic) -> None:
    await setup_key(store)
    cache = store.key_cache
    await cache.authenticate(CLEAR)
    monotonic.advance(cache.ttl - 0.001)
    await cache.authenticate(CLEAR)
    assert cache.stats.loads == 1
    monotonic.advance(0.002)
    await cache.authenticate(CLEAR)
    assert cache.stats.loads == 2


async def test_blocked_team_blocked_and_expired(store: Store, clock) -> None:
    await setup_key(store, expires=clock.now + timedelta(hours=1))
    cache = store.key_cache
    await cache.authenticate(CLEAR)
    await store.keys.set_blocked(TOKEN, True, ADMIN)
    with pytest.raises(BlockedKeyError, match="Key is blocked"):
        await cache.authenticate(CLEAR)
    await store.keys.set_blocked(TOKEN, False, ADMIN)
    await cache.authenticate(CLEAR)
    await store.teams.set_blocked("t", True, ADMIN)
    with pytest.raises(BlockedKeyError, match="Team=t is blocked"):
        await cache.authenticate(CLEAR)
    await store.teams.set_blocked("t", False, ADMIN)
    await cache.authenticate(CLEAR)
    clock.advance(3600)
    with pytest.raises(ExpiredKeyError, match="Expired Key") as info:
        await cache.authenticate(CLEAR)
    assert info.value.error_type == "expired_key" and info.value.status_code == 401


MUTATIONS = {
    "key update": lambda s: s.keys.update(TOKEN, {"rpm_limit": 99}, ADMIN),
    "key block": lambda s: s.keys.set_blocked(TOKEN, True, ADMIN),
    "key delete": lambda s: s.keys.delete([TOKEN], ADMIN),
    "key rotate": lambda s: s.keys.rotate(TOKEN, new_token="1" * 64, new_key_name="x", grace_until=None,
                                          changes={}, actor=ADMIN),
    "team update": lambda s: s.teams.update("t", {"models": ["other"]}, ADMIN),
    "team block": lambda s: s.teams.set_blocked("t", True, ADMIN),
    "team delete": lambda s: s.teams.delete(["t"], ADMIN),
    "member update": lambda s: s.teams.update_member("t", {"user_id": "u"}, {"role": "user"}, ADMIN),
    "member remove": lambda s: s.teams.remove_member("t", {"user_id": "u"}, ADMIN),
    "user update": lambda s: s.users.update("u", {"user_role": "proxy_admin"}, ADMIN),
    "user delete": lambda s: s.users.delete(["u"], ADMIN),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
async def test_every_mutation_invalidates_the_cached_key_at_once(store: Store, mutation: str) -> None:
    await setup_key(store)
    before = await store.key_cache.authenticate(CLEAR)
    await MUTATIONS[mutation](store)
    assert store.key_cache.lookup(TOKEN) is MISS
    try:
        after = await store.key_cache.authenticate(CLEAR)
    except (InvalidKeyError, BlockedKeyError):
        return          # deleted, rotated away, blocked: refused on the very next request
    assert after != before


async def test_rotation_with_and_without_grace(store: Store, clock) -> None:
    await setup_key(store)
    cache = store.key_cache
    await cache.authenticate(CLEAR)
    second = "sk-second-secret-zzzzzzzzzzzzzzzzzzzzzz"
    await store.keys.rotate(TOKEN, new_token=hash_key(second), new_key_name="sk-...zzzz",
                            grace_until=clock.now + timedelta(minutes=10), changes={}, actor=ADMIN)
    old = await cache.authenticate(CLEAR)            # still valid during the grace period…
    assert old.token == hash_key(second) and old.grace_until == clock.now + timedelta(minutes=10)
    assert (await cache.authenticate(second)).token == hash_key(second)
    clock.advance(600)
    with pytest.raises(InvalidKeyError):             # …and refused when it ends, even from the cache
        await cache.authenticate(CLEAR)
    assert (await cache.authenticate(second)).key_alias == "alias"
    # without a grace period the previous secret is refused on the very next request
    third = "sk-third-secret-yyyyyyyyyyyyyyyyyyyyyyy"
    await store.keys.rotate(hash_key(second), new_token=hash_key(third), new_key_name="sk-...yyyy",
                            grace_until=None, changes={}, actor=ADMIN)
    with pytest.raises(InvalidKeyError):
        await cache.authenticate(second)
    assert (await cache.authenticate(third)).token == hash_key(third)


async def test_a_rotation_ends_the_grace_of_earlier_rotations(store: Store, clock) -> None:
    """Secrets of earlier rotations never outlive the newest rotation's grace; without a grace (a
    leaked key) every earlier secret dies at once, not when its own grace would have ended."""
    await setup_key(store)
    cache = store.key_cache
    second, third, fourth = ("sk-second-" + "s" * 30, "sk-third-" + "t" * 31, "sk-fourth-" + "f" * 30)
    await store.keys.rotate(TOKEN, new_token=hash_key(second), new_key_name="sk-...ssss",
                            grace_until=clock.now + timedelta(days=1), changes={}, actor=ADMIN)
    assert (await cache.authenticate(CLEAR)).token == hash_key(second)
    await store.keys.rotate(hash_key(second), new_token=hash_key(third), new_key_name="sk-...tttt",
                            grace_until=clock.now + timedelta(minutes=5), changes={}, actor=ADMIN)
    first_grace = await cache.authenticate(CLEAR)        # the first secret: capped to the new grace
    assert first_grace.token == hash_key(third) and first_grace.grace_until == clock.now + timedelta(minutes=5)
    assert (await cache.authenticate(second)).token == hash_key(third)
    await store.keys.rotate(hash_key(third), new_token=hash_key(fourth), new_key_name="sk-...ffff",
                            grace_until=None, changes={}, actor=ADMIN)
    for dead in (CLEAR, second, third):
        with pytest.raises(InvalidKeyError):
            await cache.authenticate(dead)
    assert (await cache.authenticate(fourth)).token == hash_key(fourth)


class GatedDatabase:
    """Wraps the real database: a read runs, then waits at a gate before returning its result."""

    def __init__(self, db) -> None:
        self.db = db
        self.gate = trio.Event()
        self.first_read_done = trio.Event()
        self.reads_done = 0

    async def read(self, fn):
        result = await self.db.read(fn)
        self.reads_done += 1
        if self.reads_done == 1:
            self.first_read_done.set()
            await self.gate.wait()
        return result


async def test_a_load_racing_an_invalidation_does_not_store_stale_data(store: Store) -> None:
    await setup_key(store)
    gated = GatedDatabase(store.db)
    cache = KeyCache(gated, store.bus)  # type: ignore[arg-type]
    outcome: list[object] = []

    async def request() -> None:
        try:
            outcome.append(await cache.authenticate(CLEAR))
        except BlockedKeyError as exc:
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(request)
        await gated.first_read_done.wait()
        assert gated.reads_done == 1                     # the load read the key while it was unblocked
        await store.keys.set_blocked(TOKEN, True, ADMIN)  # committed and published meanwhile
        gated.gate.set()
    assert cache.stats.stale_loads == 1 and cache.stats.loads == 2
    assert isinstance(outcome[0], BlockedKeyError)
    assert cache.lookup(TOKEN).blocked is True           # the stale load was not stored


async def test_concurrent_misses_share_one_load(store: Store) -> None:
    await setup_key(store)
    gated = GatedDatabase(store.db)
    cache = KeyCache(gated, store.bus)  # type: ignore[arg-type]
    results: list[object] = []

    async def request() -> None:
        results.append(await cache.authenticate(CLEAR))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(request)
        await gated.first_read_done.wait()
        await trio.testing.wait_all_tasks_blocked()
        gated.gate.set()
    assert cache.stats.loads == 1 and len(results) == 10 and len({id(r) for r in results}) == 1


async def test_a_bus_reset_clears_everything(store: Store) -> None:
    await setup_key(store)
    await store.key_cache.authenticate(CLEAR)
    await store.customer_cache.is_blocked("someone")
    store.bus.reset()  # type: ignore[attr-defined]
    assert store.key_cache.lookup(TOKEN) is MISS and store.customer_cache.lookup("someone") is MISS


async def test_blocked_customers(store: Store, monotonic) -> None:
    cache = store.customer_cache
    assert await cache.is_blocked("c1") is False
    assert await cache.is_blocked("c1") is False
    assert cache.stats.loads == 1                      # unknown customers are remembered too
    await store.customers.set_blocked(["c1"], True, ADMIN)
    assert await cache.is_blocked("c1") is True        # at once, not after a TTL
    await store.customers.set_blocked(["c1"], False, ADMIN)
    assert await cache.is_blocked("c1") is False
    await store.budgets.create({"budget_id": "b", "rpm_limit": 3}, ADMIN)
    await store.customers.update("c1", {"budget_id": "b"}, ADMIN)
    record = await cache.get("c1")
    assert record.rpm_limit == 3 and record.budget_id == "b"
    await store.customers.delete(["c1"], ADMIN)
    assert await cache.get("c1") is None
