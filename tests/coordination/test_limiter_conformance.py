"""One conformance suite, two limiters: in-process (embedded) and Redis (shared).

Every test runs against both with the same fake clock (the Redis scripts take the caller's time
instead of the server's ``TIME`` when a clock is injected), so windows, leases and retry-after are
asserted exactly. The Redis variant runs against the suite's real Redis server, one key prefix
per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from support.coordination_support import FakeClock
from trioproxy.coordination.limiter import Check, Kind, Limiter, budget_window
from trioproxy.coordination.limiter_memory import InProcessLimiter
from trioproxy.coordination.limiter_redis import RedisLimiter
from trioproxy.coordination.redis import RedisClient

RPM, TPM, PAR, BUDGET = Kind.RPM, Kind.TPM, Kind.MAX_PARALLEL, Kind.BUDGET


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, fake_clock: FakeClock, key_prefix: str,
                  nursery: trio.Nursery) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        yield InProcessLimiter(clock=fake_clock, lease=30)
        return
    # only this variant needs the server; a generous per-command timeout: these tests are about
    # atomicity, and 50 scripts queued on a loaded 2-core machine can wait past the 0.5 s default
    client = RedisClient(request.getfixturevalue("redis_url"), timeout=10.0)
    await nursery.start(client.run)
    await client.wait_connected()
    yield RedisLimiter(client, prefix=key_prefix, clock=fake_clock, lease=30)
    await client.aclose()


async def test_rpm_sliding_window_is_exact(limiter: Limiter, fake_clock: FakeClock) -> None:
    check = [Check("k1", RPM, limit=3, window=60)]
    for i in range(3):
        assert (await limiter.reserve(f"r{i}", check)).admitted
        fake_clock.advance(10)
    # admitted at t = 0, 10, 20; now t = 30: full until the first entry leaves at t = 60
    refused = await limiter.reserve("r3", check)
    assert not refused.admitted and refused.refused == (0,)
    assert refused.used == (3,) and refused.retry_after == 30
    assert refused.refused_check == check[0] and refused.remaining(0) == 0
    fake_clock.advance(29.999)
    assert (await limiter.reserve("r4", check)).retry_after == pytest.approx(0.001)
    fake_clock.advance(0.001)          # t = 60: the t = 0 entry is out (a window is [t, t + 60))
    admitted = await limiter.reserve("r5", check)
    assert admitted.admitted and admitted.used == (3,)


async def test_a_refusal_reserves_nothing(limiter: Limiter) -> None:
    """Refused for parallelism → no RPM consumed (LiteLLM #39309), nothing else either."""
    checks = [Check("k", RPM, limit=10), Check("k", PAR, limit=1), Check("k", TPM, limit=1000, amount=50),
              Check("k", BUDGET, limit=10**6, amount=500, window=None)]
    assert (await limiter.reserve("a", checks)).admitted
    refused = await limiter.reserve("b", checks)
    assert not refused.admitted and refused.refused == (1,) and refused.retry_after is None
    assert await limiter.usage(checks) == (1, 1, 50, 500)


async def test_settle_applies_actuals_exactly_once(limiter: Limiter) -> None:
    checks = [Check("k", TPM, limit=10_000, amount=800), Check("k", BUDGET, limit=10**6, amount=4_000, window=None),
              Check("k", PAR, limit=5), Check("k", RPM, limit=100)]
    admission = await limiter.reserve("req-1", checks)
    assert admission.admitted and admission.used == (800, 4_000, 1, 1)
    assert await limiter.settle("req-1", tokens=120, cost=600) is True
    assert await limiter.usage(checks) == (120, 600, 0, 1)
    # a retried settle (lost acknowledgement) and a release afterwards change nothing
    assert await limiter.settle("req-1", tokens=120, cost=600) is False
    assert await limiter.release("req-1") is False
    assert await limiter.usage(checks) == (120, 600, 0, 1)


async def test_release_gives_back_all_but_the_request_count(limiter: Limiter) -> None:
    checks = [Check("k", TPM, limit=10_000, amount=800), Check("k", BUDGET, limit=10**6, amount=4_000, window=None),
              Check("k", PAR, limit=1), Check("k", RPM, limit=100)]
    assert (await limiter.reserve("r", checks)).admitted
    assert not (await limiter.reserve("r2", checks)).admitted      # the one slot is taken
    assert await limiter.release("r") is True
    assert await limiter.usage(checks) == (0, 0, 0, 1)
    assert (await limiter.reserve("r3", checks)).admitted          # the slot is back


async def test_budget_the_call_that_crosses_is_served(limiter: Limiter) -> None:
    """LiteLLM's example: budget 0.05 $, calls of 0.026 $ → calls 1 and 2 served, call 3 refused."""
    check = [Check("key:abc", BUDGET, limit=50_000, amount=26_000, window=None)]
    for i in (1, 2):
        assert (await limiter.reserve(f"c{i}", check)).admitted
        assert await limiter.settle(f"c{i}", tokens=0, cost=26_000)
    third = await limiter.reserve("c3", check)
    assert not third.admitted and third.used == (52_000,) and third.retry_after is None


async def test_budget_counts_reservations_in_flight(limiter: Limiter) -> None:
    check = [Check("team:t", BUDGET, limit=100, amount=40, window=None)]
    assert (await limiter.reserve("a", check)).used == (40,)
    assert (await limiter.reserve("b", check)).used == (80,)
    assert (await limiter.reserve("c", check)).used == (120,)     # 80 < 100: served, crosses
    assert not (await limiter.reserve("d", check)).admitted
    await limiter.release("a")                                     # an estimate given back
    assert (await limiter.reserve("d", check)).admitted


async def test_budget_seed_is_used_once_and_never_added(limiter: Limiter) -> None:
    seeded = Check("user:u", BUDGET, limit=50_000, amount=1_000, window=None, seed=48_000)
    assert await limiter.usage([seeded]) == (48_000,)              # missing counter reads as the seed
    assert (await limiter.reserve("a", [seeded])).used == (49_000,)
    # a later (stale or different) seed does not overwrite or add to the live counter
    again = Check("user:u", BUDGET, limit=50_000, amount=1_000, window=None, seed=0)
    assert (await limiter.reserve("b", [again])).used == (50_000,)
    assert not (await limiter.reserve("c", [again])).admitted


async def test_budget_windows_are_anchored_at_the_budget_start(limiter: Limiter,
                                                               fake_clock: FakeClock) -> None:
    anchor = fake_clock.now - 10           # budget set 10 s ago, budget_duration 30 s
    check = [Check("key:w", BUDGET, limit=100, amount=100, window=30, anchor=anchor)]
    window = budget_window(fake_clock.now, anchor, 30)
    assert (window.id, window.end) == (0, anchor + 30)
    assert (await limiter.reserve("a", check)).admitted
    await limiter.settle("a", tokens=0, cost=100)
    refused = await limiter.reserve("b", check)
    assert not refused.admitted and refused.retry_after == 20      # reopens at anchor + 30, exactly
    fake_clock.advance(19.999)
    assert not (await limiter.reserve("b", check)).admitted
    fake_clock.advance(0.001)
    reopened = await limiter.reserve("b", check)
    assert reopened.admitted and reopened.used == (100,)


async def test_budget_seed_only_for_its_window(limiter: Limiter, fake_clock: FakeClock) -> None:
    anchor = fake_clock.now - 45           # window 1 of 30 s windows
    stale = Check("key:s", BUDGET, limit=100, amount=1, window=30, anchor=anchor, seed=99, seed_window=0)
    assert await limiter.usage([stale]) == (0,)                    # the ledger's seed was for window 0
    fresh = Check("key:s", BUDGET, limit=100, amount=1, window=30, anchor=anchor, seed=99, seed_window=1)
    assert await limiter.usage([fresh]) == (99,)


async def test_settle_after_the_window_rolled_over(limiter: Limiter, fake_clock: FakeClock) -> None:
    anchor = fake_clock.now - 25
    check = Check("key:r", BUDGET, limit=10_000, amount=100, window=30, anchor=anchor)
    assert (await limiter.reserve("old", [check])).admitted        # window 0
    fake_clock.advance(10)                                          # window 1
    assert (await limiter.reserve("new", [check])).admitted
    await limiter.settle("old", tokens=0, cost=70)                  # its cost lands in window 1
    assert await limiter.usage([check]) == (170,)


async def test_tpm_serves_the_crossing_call_and_settles_actuals(limiter: Limiter,
                                                                fake_clock: FakeClock) -> None:
    def tpm(estimate: int) -> list[Check]:
        return [Check("k", TPM, limit=100, amount=estimate, window=60)]
    assert (await limiter.reserve("a", tpm(80))).admitted
    fake_clock.advance(5)
    assert (await limiter.reserve("b", tpm(80))).used == (160,)    # 80 < 100: served
    fake_clock.advance(5)
    refused = await limiter.reserve("c", tpm(1))
    assert not refused.admitted and refused.retry_after == 50      # "a" leaves at t = 60 → 80 < 100
    await limiter.settle("b", tokens=10, cost=0)
    assert (await limiter.reserve("c", tpm(1))).used == (91,)
    fake_clock.advance(50)                                          # "a" slid out
    assert await limiter.usage(tpm(0)) == (11,)


async def test_reserve_is_idempotent_per_request_id(limiter: Limiter) -> None:
    checks = [Check("k", RPM, limit=5), Check("k", PAR, limit=5)]
    assert (await limiter.reserve("same", checks)).used == (1, 1)
    again = await limiter.reserve("same", checks)                  # a retry after a lost reply
    assert again.admitted and again.used == (1, 1)
    assert await limiter.release("same") and await limiter.usage(checks) == (1, 0)


async def test_lease_expiry_releases_a_crashed_reservation(limiter: Limiter, fake_clock: FakeClock) -> None:
    checks = [Check("k", PAR, limit=1), Check("k", BUDGET, limit=1_000, amount=900, window=None)]
    assert (await limiter.reserve("lost", checks, lease=5)).admitted
    fake_clock.advance(4.999)
    assert await limiter.sweep() == 0
    fake_clock.advance(0.001)
    assert await limiter.sweep() == 1
    assert await limiter.usage(checks) == (0, 0)                   # no phantom slot or spend
    assert await limiter.settle("lost", tokens=5, cost=5) is False  # too late: counted nowhere


async def test_limit_zero_always_refuses(limiter: Limiter) -> None:
    refused = await limiter.reserve("r", [Check("k", RPM, limit=0)])
    assert not refused.admitted and refused.retry_after is None


async def test_retry_after_is_the_longest_wait(limiter: Limiter, fake_clock: FakeClock) -> None:
    checks = [Check("k", RPM, limit=1, window=10), Check("k", TPM, limit=1, amount=1, window=60)]
    assert (await limiter.reserve("a", checks)).admitted
    refused = await limiter.reserve("b", checks)
    assert refused.refused == (0, 1) and refused.retry_after == 60
    lifetime = checks + [Check("k", BUDGET, limit=0, window=None)]
    assert (await limiter.reserve("c", lifetime)).retry_after is None   # waiting never helps


async def test_forget_drops_a_counter(limiter: Limiter) -> None:
    check = Check("k", BUDGET, limit=1_000, amount=10, window=None, seed=500)
    await limiter.reserve("a", [check])
    assert await limiter.usage([check]) == (510,)
    await limiter.forget(BUDGET, "k")
    assert await limiter.usage([check]) == (500,)                  # seeded again from the ledger


async def test_one_check_per_counter(limiter: Limiter) -> None:
    with pytest.raises(ValueError, match="checked twice"):
        await limiter.reserve("r", [Check("k", RPM, limit=1), Check("k", RPM, limit=2)])
    # same key, different kinds: different counters
    assert (await limiter.reserve("r", [Check("k", RPM, limit=1), Check("k", PAR, limit=1)])).admitted


async def test_fifty_concurrent_reservations_against_a_budget_that_fits_ten(limiter: Limiter) -> None:
    """All fifty wait at a barrier, then reserve at once: the call that crosses is served, no more."""
    go = trio.Event()
    results: list[bool] = []

    async def one(i: int, check: Check) -> None:
        await go.wait()
        results.append((await limiter.reserve(f"{check.key}-{i}", [check])).admitted)

    for key, limit, admitted in (("fits-ten", 10 * 1_000, 10), ("fits-ten-and-a-half", 10_500, 11)):
        results.clear()
        go = trio.Event()
        check = Check(key, BUDGET, limit=limit, amount=1_000, window=None)
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(one, i, check)
            await trio.testing.wait_all_tasks_blocked()
            go.set()
        assert len(results) == 50 and results.count(True) == admitted


def test_check_validation() -> None:
    with pytest.raises(ValueError, match="window"):
        Check("k", RPM, limit=1, window=0)
    with pytest.raises(ValueError, match="≥ 0"):
        Check("k", BUDGET, limit=-1)
    with pytest.raises(ValueError, match="counter key"):
        Check("", RPM, limit=1)


async def test_a_client_chosen_id_cannot_name_another_counters_total(limiter: Limiter) -> None:
    """Customer ids are the client's (``user``): a customer named ``x:sum`` must not share tokens with
    customer ``x``, whose tpm total the Redis script keeps next to its log."""
    plain = [Check("customer:x", TPM, limit=1000, amount=600)]
    suffixed = [Check("customer:x:sum", TPM, limit=1000, amount=600)]
    assert (await limiter.reserve("a", plain)).admitted
    assert (await limiter.reserve("b", suffixed)).admitted
    assert await limiter.usage(plain) == (600,)
    assert await limiter.usage(suffixed) == (600,)
