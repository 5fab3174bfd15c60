"""Budget windows on the store's side: rolls on time (virtual time), whole windows forward, a budget
added later, customers through their budget row, records that arrive after their window ended."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import trio
import trio.testing

from trioproxy.spend import build_record
from trioproxy.spend.resets import BudgetResetService
from trioproxy.store import Actor, LocalInvalidationBus, Store
from trioproxy.store.budget_windows import roll_forward, window_start
from trioproxy.store.durations import parse_duration
from trioproxy.store.repositories.spend import Rolled

from .spend_helpers import BASE, inputs, rows, scalar

ADMIN = Actor("admin")


def test_window_arithmetic() -> None:
    d = parse_duration("30s")
    assert roll_forward(BASE, d, BASE - timedelta(seconds=1)) == BASE
    assert roll_forward(BASE, d, BASE) == BASE + timedelta(seconds=30)
    assert roll_forward(BASE, d, BASE + timedelta(seconds=95)) == BASE + timedelta(seconds=120)
    assert window_start(BASE, d) == BASE - timedelta(seconds=30)
    mo = parse_duration("1mo")
    jan31 = datetime(2026, 1, 31, 10, tzinfo=BASE.tzinfo)
    assert roll_forward(jan31, mo, jan31 + timedelta(days=1)) == datetime(2026, 2, 28, 10, tzinfo=BASE.tzinfo)
    assert window_start(datetime(2026, 3, 31, tzinfo=BASE.tzinfo), mo) == datetime(2026, 2, 28, tzinfo=BASE.tzinfo)


class FakeRepo:
    """``roll_due`` over a schedule of reset times, in virtual time."""

    def __init__(self, clock: Any):
        self.clock = clock
        self.due: list[datetime] = []
        self.calls: list[datetime] = []
        self.reset: list[datetime] = []

    async def roll_due(self, *, now: datetime | None = None) -> Rolled:
        await trio.lowlevel.checkpoint()
        assert now is not None
        self.calls.append(now)
        done = [d for d in self.due if d <= now]
        self.reset += done
        self.due = [d for d in self.due if d > now] + [d + timedelta(seconds=3) for d in done]
        return Rolled(events=[object()] * len(done), next_due=min(self.due) if self.due else None)  # type: ignore[list-item]


async def test_the_service_rolls_exactly_at_each_window_end(autojump_clock: trio.testing.MockClock) -> None:
    def clock() -> datetime:
        return BASE + timedelta(seconds=trio.current_time())

    repo = FakeRepo(clock)
    repo.due = [BASE + timedelta(seconds=3)]                  # a 3 s budget set at BASE
    bus = LocalInvalidationBus()
    service = BudgetResetService(repo, bus, clock=clock, max_sleep=600)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        for n in (1, 2, 3):
            at, count = await service.wait_for_roll()
            assert at == BASE + timedelta(seconds=3 * n) and count == 1
        # a budget added later (LiteLLM #34270) with a 1 s window: the admin mutation's invalidation
        # wakes the service, which then rolls that budget on time as well
        await trio.sleep(0.5)                                  # now 9.5 s; next 3 s roll due at 12 s
        repo.due.append(clock() + timedelta(seconds=1))
        bus.publish(trio_invalidation())
        at, _ = await service.wait_for_roll()
        assert at == BASE + timedelta(seconds=10.5)
        nursery.cancel_scope.cancel()


def trio_invalidation() -> Any:
    from trioproxy.store import Invalidation
    return Invalidation.key("x" * 64)


async def _spend_of(store: Store, table: str, pk: str, value: str) -> dict[str, Any]:
    [row] = await rows(store, f'SELECT "spend", "budget_reset_at" FROM "{table}" WHERE "{pk}" = :v', {"v": value})
    return row


async def test_roll_due_resets_every_kind_of_budget_whole_windows_forward(store: Store) -> None:
    reset = BASE + timedelta(seconds=30)
    await store.teams.create({"team_id": "t1", "budget_duration": "30s", "budget_reset_at": reset}, [], ADMIN)
    await store.users.create({"user_id": "u1", "budget_duration": "1h", "budget_reset_at": BASE + timedelta(hours=1)}, ADMIN)
    await store.keys.create({"token": "a" * 64, "key_name": "sk-...aaaa", "team_id": "t1", "user_id": "u1",
                             "budget_duration": "30s", "budget_reset_at": reset}, ADMIN)
    await store.keys.create({"token": "b" * 64, "key_name": "sk-...bbbb"}, ADMIN)      # lifetime
    await store.budgets.create({"budget_id": "bud", "max_budget": 10, "budget_duration": "30s",
                                "budget_reset_at": reset}, ADMIN)
    await store.customers.create({"user_id": "c1", "budget_id": "bud"}, ADMIN)
    await store.spend.write([build_record(inputs("r1", spend=700, key="a" * 64, team="t1", user="u1",
                                                 end_user="c1")).to_row(),
                             build_record(inputs("r2", spend=300, key="b" * 64)).to_row()])
    assert (await _spend_of(store, "virtual_keys", "token", "a" * 64))["spend"] == 700
    published = len(store.bus.published)  # type: ignore[attr-defined]

    rolled = await store.spend.roll_due(now=BASE + timedelta(seconds=29))
    assert rolled.events == [] and rolled.next_due == reset
    rolled = await store.spend.roll_due(now=BASE + timedelta(seconds=95))   # three windows later
    assert rolled.next_due == BASE + timedelta(seconds=120)
    key = await _spend_of(store, "virtual_keys", "token", "a" * 64)
    assert key["spend"] == 0
    assert (await scalar(store, 'SELECT "spend" FROM "teams"')) == 0
    assert (await scalar(store, 'SELECT "spend" FROM "end_users" WHERE "user_id" = \'c1\'')) == 0
    assert (await scalar(store, 'SELECT "spend" FROM "internal_users"')) == 700          # its hour is not over
    assert (await _spend_of(store, "virtual_keys", "token", "b" * 64))["spend"] == 300   # lifetime
    [k] = await store.keys.get_many(["a" * 64])
    assert k["budget_reset_at"] == BASE + timedelta(seconds=120)
    [b] = [await store.budgets.get("bud")]
    assert b is not None and b["budget_reset_at"] == BASE + timedelta(seconds=120)
    kinds = {(e.kind, e.id) for e in store.bus.published[published:]}  # type: ignore[attr-defined]
    assert {("key", "a" * 64), ("team", "t1"), ("customer", "c1")} <= kinds
    # the ledger keeps everything
    assert await scalar(store, 'SELECT SUM("spend") AS s FROM "spend_logs"') == 1000


async def test_a_record_written_after_its_window_ended_does_not_count_in_the_new_one(
        store: Store, clock: Any) -> None:
    reset = BASE + timedelta(seconds=30)
    await store.keys.create({"token": "a" * 64, "key_name": "sk-...aaaa", "budget_duration": "30s",
                             "budget_reset_at": reset}, ADMIN)
    late = build_record(inputs("late", spend=500, key="a" * 64, at=BASE + timedelta(seconds=20))).to_row()
    fresh = build_record(inputs("fresh", spend=40, key="a" * 64, at=BASE + timedelta(seconds=31))).to_row()
    # the store was down across the reset: both arrive at 12:00:40; the writer rolls the key first
    await store.spend.write([late, fresh], now=BASE + timedelta(seconds=40))
    key = await _spend_of(store, "virtual_keys", "token", "a" * 64)
    assert key["spend"] == 40
    assert (await store.keys.get("a" * 64))["budget_reset_at"] == BASE + timedelta(seconds=60)  # type: ignore[index]
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == 2


async def test_a_budget_duration_added_later_resets_the_carried_spend(store: Store) -> None:
    await store.keys.create({"token": "a" * 64, "key_name": "sk-...aaaa"}, ADMIN)
    await store.spend.write([build_record(inputs("before", spend=900, key="a" * 64)).to_row()])
    # /key/update budget_duration=30s at 12:00:10 (the admin layer sets budget_reset_at = now + 30 s)
    await store.keys.update("a" * 64, {"budget_duration": "30s", "budget_reset_at": BASE + timedelta(seconds=40)}, ADMIN)
    await store.spend.roll_due(now=BASE + timedelta(seconds=39))
    assert (await _spend_of(store, "virtual_keys", "token", "a" * 64))["spend"] == 900   # the first window carries it
    await store.spend.roll_due(now=BASE + timedelta(seconds=40))
    assert (await _spend_of(store, "virtual_keys", "token", "a" * 64))["spend"] == 0


async def test_the_reset_service_on_a_real_store(store: Store, clock: Any) -> None:
    """Real store, wall time injected: the service resets a due key and sleeps until the next one."""
    await store.keys.create({"token": "a" * 64, "key_name": "sk-...aaaa", "budget_duration": "1h",
                             "budget_reset_at": BASE + timedelta(seconds=1)}, ADMIN)
    await store.spend.write([build_record(inputs("x", spend=5, key="a" * 64)).to_row()])
    clock.advance(2)
    service = BudgetResetService(store.spend, store.bus, clock=clock, max_sleep=600)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        at, count = await service.wait_for_roll()
        assert count == 1 and at == BASE + timedelta(seconds=2)
        nursery.cancel_scope.cancel()
    assert (await _spend_of(store, "virtual_keys", "token", "a" * 64))["spend"] == 0


async def test_a_team_member_budget_window_rolls_on_time_and_before_the_writer_adds(store: Store) -> None:
    """``max_budget_in_team`` with ``budget_duration`` (revision 0003): rolled by ``roll_due`` whole windows
    forward, rolled by the writer before it adds, a late record not counted in the new window."""
    reset = BASE + timedelta(seconds=30)
    await store.teams.create({"team_id": "t1"}, [], ADMIN)
    await store.teams.add_members("t1", [{"user_id": "u1", "role": "user"}, {"user_id": "u2", "role": "user"}],
                                  ADMIN, max_budget_in_team=5_000_000)
    await store.teams.update_member("t1", {"user_id": "u1"}, {"budget_duration": "30s", "budget_reset_at": reset},
                                    ADMIN)
    member = {"key": "a" * 64, "team": "t1", "user": "u1"}
    await store.spend.write([build_record(inputs("m1", spend=700, **member)).to_row(),
                             build_record(inputs("m2", spend=300, key="b" * 64, team="t1", user="u2")).to_row()])

    async def member_row(user: str) -> dict[str, Any]:
        [row] = await rows(store, 'SELECT "spend", "budget_reset_at" FROM "team_memberships" '
                                  'WHERE "team_id" = \'t1\' AND "user_id" = :u', {"u": user})
        return row

    assert (await member_row("u1"))["spend"] == 700
    published = len(store.bus.published)  # type: ignore[attr-defined]
    rolled = await store.spend.roll_due(now=BASE + timedelta(seconds=29))
    assert rolled.events == [] and rolled.next_due == reset
    rolled = await store.spend.roll_due(now=BASE + timedelta(seconds=95))       # three windows later
    assert rolled.next_due == BASE + timedelta(seconds=120)
    assert (await member_row("u1"))["spend"] == 0
    assert (await member_row("u2"))["spend"] == 300                              # lifetime: untouched
    kinds = {(e.kind, e.id) for e in store.bus.published[published:]}  # type: ignore[attr-defined]
    assert {("user", "u1"), ("team", "t1")} <= kinds
    [m] = [m for m in await store.teams.members("t1") if m["user_id"] == "u1"]
    assert m["budget_reset_at"] == BASE + timedelta(seconds=120)

    # the writer rolls the row itself (no reset service): a record of the old window (the store was
    # down across the reset) stays in the ledger only; one of the new window counts
    late = build_record(inputs("late", spend=500, at=BASE + timedelta(seconds=110), **member)).to_row()
    fresh = build_record(inputs("fresh", spend=40, at=BASE + timedelta(seconds=121), **member)).to_row()
    await store.spend.write([late, fresh], now=BASE + timedelta(seconds=130))
    row = await member_row("u1")
    assert row["spend"] == 40
    assert await scalar(store, 'SELECT SUM("spend") AS s FROM "spend_logs" WHERE "user_id" = \'u1\'') == 1240
    [m] = [m for m in await store.teams.members("t1") if m["user_id"] == "u1"]
    assert m["budget_reset_at"] == BASE + timedelta(seconds=150)
