"""Budget resets on time, even when no request arrives: a small service over ``SpendRepository.roll_due``.

LiteLLM resets budgets in a sweep every 10 minutes by default (``proxy_budget_rescheduler_min_time`` /
``_max_time``), so a 3 s window reopens up to 10 minutes late. Here the limiter already reopens a
budget exactly at its window's end (anchored windows, ``admission.py``); this service makes the
*stored* spend and ``budget_reset_at`` follow on time too, so ``/key/info`` and friends show the new
window at once:

* it rolls every overdue row (``roll_due``: spend → 0, ``budget_reset_at`` → the end of the window
  containing now — whole windows forward, never re-aligned to the clock), then sleeps until the
  earliest ``budget_reset_at`` in the store (at most ``max_sleep``);
* it rolls team memberships too (``max_budget_in_team`` with a ``budget_duration``);
* it wakes early on every invalidation of a key, team, user or customer (in this process, or from
  others through the coordination bus): a budget just set with a short window is rolled on time too;
* rolls are compare-and-set in the store, so N processes running this service roll a row once; the
  spend writer also rolls a row itself before adding to it (no window is ever counted twice).

LiteLLM's sweep settings are accepted by the config (they change nothing here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import trio

from ..store.errors import StoreError
from ..store.invalidation import Invalidation, InvalidationBus
from ..store.repositories.base import utcnow

__all__ = ["BudgetResetService"]

log = logging.getLogger("trioproxy.spend.resets")


class _Roller(Protocol):
    async def roll_due(self, *, now: datetime | None = None) -> Any: ...


class BudgetResetService:
    def __init__(self, repo: _Roller, bus: InvalidationBus | None = None, *,
                 clock: Callable[[], datetime] = utcnow, max_sleep: float = 60.0, retry_delay: float = 1.0):
        self.repo = repo
        self.clock = clock
        self.max_sleep = max_sleep
        self.retry_delay = retry_delay
        self._wake = trio.Event()
        #: times ``roll_due`` ran at, and how many rows each roll reset (tests read these)
        self.rolls: list[tuple[datetime, int]] = []
        self._rolled = trio.Event()
        if bus is not None:
            bus.subscribe(self._on_event)
            bus.on_reset(lambda: self._wake.set())

    def _on_event(self, event: Invalidation) -> None:
        if not self._wake.is_set():
            self._wake.set()

    async def wait_for_roll(self) -> tuple[datetime, int]:
        """The next roll that changed something (tests)."""
        while True:
            await self._rolled.wait()
            self._rolled = trio.Event()
            if self.rolls and self.rolls[-1][1]:
                return self.rolls[-1]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._wake = trio.Event()
            now = self.clock()
            try:
                rolled = await self.repo.roll_due(now=now)
            except StoreError as exc:
                log.warning("budget reset postponed: %s", exc)
                await trio.sleep(self.retry_delay)
                continue
            self.rolls.append((now, len(rolled.events)))
            self._rolled.set()
            delay = self.max_sleep
            if rolled.next_due is not None:
                delay = min(delay, max(0.0, (rolled.next_due - self.clock()).total_seconds()))
            with trio.move_on_after(delay):
                await self._wake.wait()

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - the services interface
        await trio.lowlevel.checkpoint()
        return True
