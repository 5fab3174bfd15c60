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
