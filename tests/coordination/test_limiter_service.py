"""The limiter as a service, in virtual time: leases renewed while a request runs, swept after a
crash, released from a cancelled request's ``finally``; the failure policy of ``admit``."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trioproxy.coordination.errors import RedisUnavailable
from trioproxy.coordination.limiter import Admission, Check, Kind, admit
from trioproxy.coordination.limiter_memory import InProcessLimiter
from trioproxy.errors import ServiceUnavailableError

SLOT = [Check("key:k", Kind.MAX_PARALLEL, limit=1), Check("key:k", Kind.RPM, limit=100)]


async def test_a_long_request_keeps_its_lease_while_the_service_runs(autojump_clock: trio.testing.MockClock) -> None:
    limiter = InProcessLimiter(clock=trio.current_time, lease=3, sweep_interval=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(limiter.run)
        assert (await limiter.reserve("long", SLOT)).admitted
        await trio.sleep(60)                              # 20 leases long: renewed every second
        assert limiter.open_reservations == 1 and limiter.swept == 0
        assert await limiter.settle("long", tokens=0, cost=0)
        nursery.cancel_scope.cancel()


async def test_a_crashed_owners_reservation_is_swept_at_its_deadline(autojump_clock: trio.testing.MockClock) -> None:
    limiter = InProcessLimiter(clock=trio.current_time, lease=3, sweep_interval=0.5)
    assert (await limiter.reserve("orphan", SLOT)).admitted
    limiter._own.clear()                                  # its owner is gone: nobody renews it
    async with trio.open_nursery() as nursery:
        await nursery.start(limiter.run)                  # sweeps every 0.5 s
        await trio.sleep(2.9)
        assert limiter.open_reservations == 1             # its lease runs until t = 3 s
        await trio.sleep(0.2)
        assert limiter.open_reservations == 0 and limiter.swept == 1
        nursery.cancel_scope.cancel()
    assert await limiter.usage(SLOT) == (0, 1)            # the slot is back, the request still counted
    assert (await limiter.reserve("next", SLOT)).admitted


async def test_a_cancelled_request_releases_its_slot_in_finally(autojump_clock: trio.testing.MockClock) -> None:
    limiter = InProcessLimiter(clock=trio.current_time)

    async def request(rid: str) -> None:
        try:
            assert (await limiter.reserve(rid, SLOT)).admitted
            await trio.sleep(30)                          # the upstream call
        finally:
            with trio.CancelScope(shield=True):
                await limiter.release(rid)

    with trio.move_on_after(1):                           # the client disconnects at t = 1 s
        await request("r1")
    assert await limiter.usage(SLOT) == (0, 1)
    assert (await limiter.reserve("r2", SLOT)).admitted


class _Down:
    """A limiter whose shared state is unreachable."""

    async def reserve(self, request_id: str, checks: object, *, lease: float | None = None) -> Admission:
        raise RedisUnavailable("Redis unavailable at redis://127.0.0.1:1/0")


async def test_admit_fails_closed_with_503_by_default() -> None:
    with pytest.raises(ServiceUnavailableError) as info:
        await admit(_Down(), "r", SLOT)                   # type: ignore[arg-type]
    assert info.value.status_code == 503 and info.value.headers == {"retry-after": "1"}
    assert "127.0.0.1" not in info.value.message          # nothing about the infrastructure leaks
    assert isinstance(info.value.__cause__, RedisUnavailable)


async def test_admit_fails_open_when_configured(caplog: pytest.LogCaptureFixture) -> None:
    admission = await admit(_Down(), "r", SLOT, fail_open=True)   # type: ignore[arg-type]
    assert admission.admitted and admission.degraded
    assert "fail open" in caplog.text


async def test_admit_without_checks_touches_nothing() -> None:
    assert (await admit(_Down(), "r", [])).admitted       # type: ignore[arg-type]


async def test_a_leaked_reservation_stops_being_renewed_after_max_age(autojump_clock: trio.testing.MockClock) -> None:
    """A request whose settle and release never ran (a bug) does not hold its slot forever: after
    ``max_age`` its lease is no longer renewed and the sweep ends it one lease later."""
    limiter = InProcessLimiter(clock=trio.current_time, lease=3, sweep_interval=0.5, max_age=30)
    async with trio.open_nursery() as nursery:
        await nursery.start(limiter.run)
        assert (await limiter.reserve("leaked", SLOT)).admitted
        await trio.sleep(29)
        assert limiter.open_reservations == 1 and limiter.leaked == 0     # renewed while young
        await trio.sleep(6)                               # given up at 30 s, swept ≤ one lease later
        assert limiter.open_reservations == 0 and limiter.leaked == 1 and limiter.swept == 1
        assert (await limiter.reserve("next", SLOT)).admitted              # the slot is back
        nursery.cancel_scope.cancel()
    assert not await limiter.settle("leaked", tokens=0, cost=0)           # a late settle changes nothing


def test_max_age_is_at_least_one_lease() -> None:
    with pytest.raises(ValueError, match="max_age"):
        InProcessLimiter(lease=30, max_age=10)


CUSTOMER = [Check("customer:c", Kind.BUDGET, limit=1000, amount=100, window=None, seed=0),
            Check("customer:c", Kind.RPM, limit=100), Check("customer:c", Kind.MAX_PARALLEL, limit=5)]


async def test_idle_customer_counters_are_evicted(autojump_clock: trio.testing.MockClock) -> None:
    """Every counter of a customer unused for ``idle_evict`` seconds is dropped (memory follows the
    active customers); a budget only while the ledger has every record, and never with a request
    open on it; the next request seeds it again from the customer's row."""
    ledger_complete = [False]
    limiter = InProcessLimiter(clock=trio.current_time, sweep_interval=1, idle_evict=120,
                               can_forget_budgets=lambda: ledger_complete[0])
    async with trio.open_nursery() as nursery:
        await nursery.start(limiter.run)
        assert (await limiter.reserve("r1", CUSTOMER)).admitted
        assert await limiter.settle("r1", tokens=0, cost=40)
        assert (await limiter.reserve("open", [Check("customer:busy", Kind.BUDGET, limit=1000, amount=1,
                                                     window=None)])).admitted
        assert "customer:c" not in limiter._parallel                      # its slot is back: nothing kept
        await trio.sleep(200)
        # the rpm log emptied and went; the budget stays: the writer has not stored everything yet
        assert ("customer:c" in limiter._budgets, (Kind.RPM, "customer:c") in limiter._logs) == (True, False)
        assert await limiter.usage(CUSTOMER[:1]) == (40,)
        ledger_complete[0] = True
        await trio.sleep(60)
        assert "customer:c" not in limiter._budgets                       # evicted
        assert "customer:busy" in limiter._budgets                        # a request is open on it
        assert await limiter.release("open")
        await trio.sleep(200)
        assert limiter._budgets == {} and limiter._logs == {} and limiter._parallel == {}
        assert limiter.evicted >= 3
        nursery.cancel_scope.cancel()
    # seeded again from the row (which now holds the 40 the counter had)
    seeded = [Check("customer:c", Kind.BUDGET, limit=1000, amount=100, window=None, seed=40)]
    assert (await limiter.reserve("r2", seeded)).used == (140,)


async def test_key_team_and_user_budgets_are_never_evicted(autojump_clock: trio.testing.MockClock) -> None:
    limiter = InProcessLimiter(clock=trio.current_time, sweep_interval=1, idle_evict=60)
    for name in ("key:h", "team:t", "user:u", "proxy", "key:h:model:m"):
        check = Check(name, Kind.BUDGET, limit=1000, amount=10, window=None, seed=0)
        assert (await limiter.reserve(f"r-{name}", [check])).admitted
        assert await limiter.settle(f"r-{name}", tokens=0, cost=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(limiter.run)
        await trio.sleep(600)
        nursery.cancel_scope.cancel()
    assert sorted(limiter._budgets) == ["key:h", "key:h:model:m", "proxy", "team:t", "user:u"]
