"""Admission when the shared state or the ledger misbehaves: a reserve whose caller leaves (client
disconnect, timeout) is released, a settle whose reply is lost is retried by the release, seed loads
from a slow or failing ledger are shared (never queued one behind another), and requests that no
check can refuse (the master key, soft budgets only) are never refused because Redis is down.

The Redis cases run against a redis-server of the test's own (paused with SIGSTOP); the others use
in-memory stand-ins of the limiter and the ledger, in virtual time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from support.coordination_support import OwnRedisServer
from trioproxy.coordination import InProcessLimiter
from trioproxy.coordination.errors import RedisUnavailable
from trioproxy.coordination.limiter import Admission, Check, Kind
from trioproxy.coordination.limiter_redis import RedisLimiter
from trioproxy.coordination.redis import RedisClient
from trioproxy.errors import ServiceUnavailableError
from trioproxy.observability.prices import Price
from trioproxy.spend import RecordInputs, SpendWriter
from trioproxy.spend.admission import AdmissionSettings, Admitter, RequestFacts
from trioproxy.store.errors import StoreUnavailable

PRICE = Price(0.000001, 0.000002)
NOW = 1_800_000_000.0
_EMPTY = MappingProxyType({})


def auth_record(token: str = "t" * 64, **fields: Any) -> SimpleNamespace:
    """What ``plan_checks`` reads of a ``store.AuthRecord``: no team, user or membership."""
    values: dict[str, Any] = dict(
        token=token, key_name="sk-...tttt", key_alias=None, user_id=None, team_id=None, team=None, user=None,
        membership=None, max_budget=None, soft_budget=None, spend=0, budget_duration=None, budget_reset_at=None,
        tpm_limit=None, rpm_limit=None, max_parallel_requests=None, model_max_budget=_EMPTY,
        model_rpm_limit=_EMPTY, model_tpm_limit=_EMPTY)
    values.update(fields)
    return SimpleNamespace(**values)


def facts(cost_micros: int = 1000, model: str = "gpt-4o") -> RequestFacts:
    return RequestFacts(model=model, prompt_tokens=cost_micros, output_tokens=0, price=PRICE)


# --- a reserve whose caller leaves is released ----------------------------------------------------

@pytest.fixture
async def paused_redis() -> AsyncIterator[OwnRedisServer]:
    own = OwnRedisServer()
    await trio.to_thread.run_sync(own.start)
    yield own
    own.close()


async def test_a_client_disconnect_during_the_reserve_frees_the_parallel_slot(
        paused_redis: OwnRedisServer, nursery: trio.Nursery) -> None:
    """The reserve script is on the wire when the client disconnects: Redis will still run it.
    ``Admitter.admit`` must release by request id (same connection: Redis runs it after the
    reserve), or the key's only parallel slot stays taken until the lease ends (30 s)."""
    client = RedisClient(paused_redis.url, timeout=30, stall_timeout=60)   # no timeouts in this test
    await nursery.start(client.run)
    limiter = RedisLimiter(client, prefix="lim:")
    admitter = Admitter(limiter, clock=lambda: NOW)
    auth = auth_record(max_parallel_requests=1)
    slot = [Check(f"key:{auth.token}", Kind.MAX_PARALLEL, 1, window=None)]
    await limiter.reserve("warm-up", [Check("other", Kind.RPM, limit=1)])  # scripts loaded: no NOSCRIPT below
    assert await limiter.release("warm-up") is True
    paused_redis.pause()
    left = trio.Event()
    disconnect = trio.CancelScope()

    async def request() -> None:
        with disconnect:
            await admitter.admit("r1", auth, facts())
        left.set()

    try:
        nursery.start_soon(request)
        await trio.testing.wait_all_tasks_blocked()                      # the reserve is sent, Redis is stopped
        disconnect.cancel()
        await trio.testing.wait_all_tasks_blocked()
    finally:
        paused_redis.resume()
    with trio.fail_after(20):
        await left.wait()
        assert await limiter.usage(slot) == (0,)                         # the slot came back at once
        assert await limiter.open_reservations() == 0
        assert (await admitter.admit("r2", auth, facts())).admission.admitted


class _ReserveThenFail:
    """A limiter whose reserve is applied but whose reply is lost (a timeout): ``CoordinationUnavailable``."""

    def __init__(self) -> None:
        self.inner = InProcessLimiter(clock=lambda: NOW)
        self.released: list[str] = []

    async def reserve(self, request_id: str, checks: Sequence[Check], *, lease: float | None = None) -> Admission:
        self.inner.reserve_now(request_id, checks, lease)
        raise RedisUnavailable("no reply to EVALSHA in time")

    async def settle(self, request_id: str, *, tokens: int, cost: int) -> bool:
        return self.inner.settle_now(request_id, tokens, cost)

    async def release(self, request_id: str) -> bool:
        self.released.append(request_id)
        return self.inner.settle_now(request_id, 0, 0)


async def test_a_reserve_with_unknown_outcome_is_released_before_the_503() -> None:
    limiter = _ReserveThenFail()
    admitter = Admitter(limiter, clock=lambda: NOW)                       # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailableError):
        await admitter.admit("r1", auth_record(max_parallel_requests=1), facts())
    assert limiter.released == ["r1"]
    assert limiter.inner.open_reservations == 0


# --- a settle whose reply is lost is retried by the release ---------------------------------------

class _SettleLost:
    """The first settle never reaches the server (the connection dropped before it was written)."""

    def __init__(self) -> None:
        self.inner = InProcessLimiter(clock=lambda: NOW)
        self.fail_next_settle = True

    async def reserve(self, request_id: str, checks: Sequence[Check], *, lease: float | None = None) -> Admission:
        return self.inner.reserve_now(request_id, checks, lease)

    async def settle(self, request_id: str, *, tokens: int, cost: int) -> bool:
        if self.fail_next_settle:
            self.fail_next_settle = False
            raise RedisUnavailable("connection to Redis lost")
        return self.inner.settle_now(request_id, tokens, cost)

    async def release(self, request_id: str) -> bool:
        return self.inner.settle_now(request_id, 0, 0)


async def test_a_failed_settle_is_completed_by_the_release_with_the_actual_cost() -> None:
    limiter = _SettleLost()
    admitter = Admitter(limiter, clock=lambda: NOW)                       # type: ignore[arg-type]
    auth = auth_record(max_budget=100_000, max_parallel_requests=1)
    reservation = await admitter.admit("r1", auth, facts(1000))
    try:
        assert await reservation.settle(tokens=40, cost_micros=7000) is False   # logged, never raised
    finally:
        with trio.CancelScope(shield=True):
            await reservation.release()
    budget = Check(f"key:{auth.token}", Kind.BUDGET, 100_000, window=None)
    slot = Check(f"key:{auth.token}", Kind.MAX_PARALLEL, 1, window=None)
    assert await limiter.inner.usage([budget, slot]) == (7000, 0)        # the real cost, the slot freed
    assert limiter.inner.open_reservations == 0


class _DownAfterAdmission(_SettleLost):
    """Redis went away while the request ran: every settle and release fails."""

    async def settle(self, request_id: str, *, tokens: int, cost: int) -> bool:
        raise RedisUnavailable("Redis unavailable at redis://127.0.0.1:6379/0: connection refused")

    async def release(self, request_id: str) -> bool:
        raise RedisUnavailable("Redis unavailable at redis://127.0.0.1:6379/0: connection refused")


async def test_redis_lost_mid_request_never_fails_the_answer_or_skips_its_spend_record(tmp_path: Path) -> None:
    """The documented integration: settle in the ``try``, release then ``writer.finished`` in the
    shielded ``finally``. A settle or release that raised would turn an answered request into an
    error and skip ``finished`` — its record then stored only by the next start, as a failure costing
    0. The lease ends the reservation instead."""
    store = _MemorySink()
    writer = SpendWriter(store, tmp_path / "outbox", flush_interval=0.01)
    admitter = Admitter(_DownAfterAdmission(), clock=lambda: NOW)        # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        reservation = await admitter.admit("r1", auth_record(max_parallel_requests=1), facts())
        base = writer.admitted(RecordInputs(request_id="r1", call_type="acompletion", start_time=NOW,
                                            end_time=NOW))
        try:
            await reservation.settle(tokens=10, cost_micros=2500)       # the upstream answered
        finally:
            with trio.CancelScope(shield=True):
                await reservation.release()
                writer.finished(base.complete(end_time=NOW + 1, spend_micros=2500, prompt_tokens=10))
        assert await writer.drain(30)
        nursery.cancel_scope.cancel()
    assert [(r["request_id"], r["spend"], r["status"]) for r in store.rows] == [("r1", 2500, "success")]


class _MemorySink:
    def __init__(self) -> None:
        self.rows: list[Mapping[str, Any]] = []

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        await trio.lowlevel.checkpoint()
        self.rows += rows
        return [r["request_id"] for r in rows]


# --- seeds from the ledger: shared, never queued behind each other --------------------------------

class _Ledger:
    """``SpendRepository.spend_since`` stand-in: each call waits, then answers or fails."""

    def __init__(self, *, delay: float = 30.0, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.calls: list[str | None] = []
        self.hang_for: set[str | None] = set()

    async def spend_since(self, since: datetime, *, api_key: str | None = None, model: str | None = None) -> int:
        self.calls.append(model)
        if model in self.hang_for:
            await trio.sleep_forever()
        await trio.sleep(self.delay)
        if self.fail:
            raise StoreUnavailable("database unavailable")
        return 0


async def test_requests_waiting_for_one_seed_share_its_failure(autojump_clock: trio.testing.MockClock) -> None:
    """The proxy budget needs a ledger seed at the start of each window. With the database down, the
    waiting requests share the one failing load: 503 after one load's time, not one after another."""
    ledger = _Ledger(delay=30, fail=True)
    admitter = Admitter(InProcessLimiter(clock=lambda: NOW), AdmissionSettings(proxy_max_budget=10_000_000,
                                                                              proxy_budget_duration="1d"),
                        seeds=ledger, clock=lambda: NOW)
    failures: list[BaseException] = []

    async def request(i: int) -> None:
        try:
            await admitter.admit(f"r{i}", auth_record(), facts())
        except StoreUnavailable as exc:
            failures.append(exc)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(request, i)
    assert len(failures) == 10
    assert len(ledger.calls) == 1                                        # one load for all of them
    assert trio.current_time() - start <= 30


async def test_a_slow_seed_does_not_hold_up_other_counters(autojump_clock: trio.testing.MockClock) -> None:
    """A key's per-model budget whose ledger query hangs must not stop another model's requests."""
    ledger = _Ledger(delay=0)
    ledger.hang_for.add("slow-model")
    admitter = Admitter(InProcessLimiter(clock=lambda: NOW), seeds=ledger, clock=lambda: NOW)
    auth = auth_record(model_max_budget=MappingProxyType({
        "slow-model": {"budget_limit": 1.0, "time_period": "1d"},
        "gpt-4o": {"budget_limit": 1.0, "time_period": "1d"}}))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(admitter.admit, "stuck", auth, facts(model="slow-model"))
        await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(60):
            reservation = await admitter.admit("free", auth, facts(model="gpt-4o"))
        assert reservation.admission.admitted
        nursery.cancel_scope.cancel()


# --- requests nothing can refuse are not refused when the shared state is down ---------------------

class _Down:
    async def reserve(self, request_id: str, checks: Sequence[Check], *, lease: float | None = None) -> Admission:
        raise RedisUnavailable("Redis unavailable at redis://127.0.0.1:6379/0: connection refused")

    async def settle(self, request_id: str, *, tokens: int, cost: int) -> bool:
        raise RedisUnavailable("down")

    async def release(self, request_id: str) -> bool:
        raise RedisUnavailable("down")


async def test_the_master_key_is_never_refused_because_redis_is_down() -> None:
    admitter = Admitter(_Down(), AdmissionSettings(proxy_max_budget=10_000_000), clock=lambda: NOW)  # type: ignore[arg-type]
    reservation = await admitter.admit("m1", None, facts(), master=True)
    assert reservation.admission.admitted and reservation.admission.degraded
    # a key is bound by the proxy budget: fail closed (the default policy)
    with pytest.raises(ServiceUnavailableError):
        await admitter.admit("k1", auth_record(), facts())
    # a soft budget only counts (it never refuses): not refused either
    counted_only = Admitter(_Down(), clock=lambda: NOW)                  # type: ignore[arg-type]
    soft = await counted_only.admit("s1", auth_record(soft_budget=5), facts())
    assert soft.admission.admitted and soft.admission.degraded
    with pytest.raises(ServiceUnavailableError):
        await counted_only.admit("k2", auth_record(soft_budget=5, rpm_limit=10), facts())
