"""The proxy budget's window (``litellm_settings.max_budget`` / ``budget_duration``) starts at the
first start, stored in the database (revision 0004), not on the UTC clock: the stored start on both
backends, the anchor service over a real store, and admission reopening exactly one duration after
that start (virtual time), with the ledger seeding the window."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from trioproxy.auth import hash_key
from trioproxy.coordination import InProcessLimiter
from trioproxy.observability.prices import Price
from trioproxy.spend import build_record
from trioproxy.spend.admission import (
    AdmissionSettings,
    Admitter,
    BudgetExceededError,
    ProxyBudgetAnchor,
    RequestFacts,
    proxy_window_start,
)
from trioproxy.spend.proxy_budget import ProxyBudgetAnchorService
from trioproxy.store import Actor, Store, StoreUnavailable

from .spend_helpers import BASE, FakeClock, inputs

PRICE = Price(0.000001, 0.000002)
KEY = "sk-proxy-window-test-key-000000001"


def facts(cost_micros: int) -> RequestFacts:
    return RequestFacts(model="gpt-4o", end_user=None, prompt_tokens=cost_micros, output_tokens=0, price=PRICE)


class Clock:
    def __init__(self) -> None:
        self.t = BASE.timestamp()

    def __call__(self) -> float:
        return self.t


async def test_the_first_start_is_stored_and_shared_a_new_duration_starts_anew(store: Store) -> None:
    first = BASE + timedelta(seconds=17)
    assert await store.spend.proxy_budget_start("30s", now=first) == first
    # a restart, another instance: the stored start, not theirs
    assert await store.spend.proxy_budget_start("30s", now=first + timedelta(hours=5)) == first
    # the operator changed the duration: the budget is set anew, its first window starts now
    later = first + timedelta(days=2)
    assert await store.spend.proxy_budget_start("1d", now=later) == later
    assert await store.spend.proxy_budget_start("1d", now=later + timedelta(days=9)) == later


async def test_the_anchor_service_reads_it_and_admission_reopens_one_duration_after_it(
        store: Store, clock: FakeClock) -> None:
    clock.advance(17)                                     # the proxy first starts at 12:00:17
    settings = AdmissionSettings(proxy_max_budget=2_000, proxy_budget_duration="30s")
    service = ProxyBudgetAnchorService(store.spend, settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        assert service.anchored.is_set() and settings.proxy_anchor.start == (BASE + timedelta(seconds=17)).timestamp()
        nursery.cancel_scope.cancel()
    # spend already in this window (recorded at 12:00:20) seeds it; spend before its start does not
    await store.spend.write([build_record(inputs("before", spend=5_000, at=BASE + timedelta(seconds=10))).to_row(),
                             build_record(inputs("inside", spend=1_000, at=BASE + timedelta(seconds=20))).to_row()])
    t = Clock()
    t.t = (BASE + timedelta(seconds=25)).timestamp()
    assert proxy_window_start(settings, t.t) == (BASE + timedelta(seconds=17)).timestamp()
    admitter = Admitter(InProcessLimiter(clock=t), settings, seeds=store.spend, clock=t)
    await (await admitter.admit("a1", None, facts(100), master=True)).settle(tokens=1, cost_micros=1_000)
    await store.keys.create({"token": hash_key(KEY), "key_name": "sk-...0001"}, Actor("admin"))
    auth = await store.key_cache.authenticate(KEY)
    with pytest.raises(BudgetExceededError, match="Current cost: 0.002, Max budget: 0.002") as info:
        await admitter.admit("a2", auth, facts(100))
    assert info.value.headers["retry-after"] == "22"         # 12:00:47, not the clock's 12:00:30
    t.t = (BASE + timedelta(seconds=30)).timestamp()         # a UTC-aligned window would reopen here
    with pytest.raises(BudgetExceededError):
        await admitter.admit("a3", auth, facts(100))
    t.t = (BASE + timedelta(seconds=47)).timestamp()         # one duration after the stored start
    assert proxy_window_start(settings, t.t) == t.t
    await (await admitter.admit("a4", auth, facts(100))).settle(tokens=1, cost_micros=1_000)


async def test_months_step_from_the_stored_start() -> None:
    jan31 = BASE.replace(month=1, day=31)
    settings = AdmissionSettings(proxy_max_budget=1, proxy_budget_duration="1mo",
                                 proxy_anchor=ProxyBudgetAnchor(jan31.timestamp()))
    await trio.lowlevel.checkpoint()
    in_march = BASE.replace(month=3, day=10).timestamp()
    assert proxy_window_start(settings, in_march) == BASE.replace(month=2, day=28).timestamp()
    assert proxy_window_start(settings, BASE.replace(month=2, day=1).timestamp()) == jan31.timestamp()


class DownThenUp:
    def __init__(self, store: Store):
        self.store = store
        self.down = True
        self.failed = trio.Event()

    async def proxy_budget_start(self, duration: str, *, now: object = None) -> object:
        if self.down:
            self.failed.set()
            raise StoreUnavailable("database stopped")
        return await self.store.spend.proxy_budget_start(duration)


async def test_a_store_down_at_startup_does_not_hold_the_start_and_is_retried(
        store: Store, autojump_clock: trio.testing.MockClock) -> None:
    settings = AdmissionSettings(proxy_max_budget=2_000, proxy_budget_duration="1h")
    repo = DownThenUp(store)
    service = ProxyBudgetAnchorService(repo, settings, retry_delay=5)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)              # started although the store did not answer
        assert settings.proxy_anchor.start is None    # UTC-aligned meanwhile
        assert proxy_window_start(settings, BASE.timestamp() + 1) == BASE.timestamp()
        repo.down = False
        await service.anchored.wait()
        assert settings.proxy_anchor.start == BASE.timestamp()
        nursery.cancel_scope.cancel()
