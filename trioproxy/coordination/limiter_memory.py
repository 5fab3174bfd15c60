"""The in-process limiter: embedded mode, one process owns every counter; pure Python, no I/O.

The arithmetic is the Redis script's, line for line (milliseconds, integers, the same windows,
the same record per request), so the two pass one conformance suite. Atomicity comes from Trio:
each operation runs without an await between its checks and its writes, so no other task can
interleave; cancellation is honoured *before* the operation (``checkpoint_if_cancelled``) and never
after it (``cancel_shielded_checkpoint``), so a caller never loses an admission it was given.

**Idle counters are evicted** (the sweep, every ``idle_evict / 4`` seconds), so memory follows the
subjects active lately, not every subject ever seen — the request's ``user`` is any string a client
sends, and each new one is a customer with its own counters (``max_end_user_budget``):

* a sliding log (rpm/tpm) whose entries all left its window, and a parallel count at 0: dropping
  them changes nothing (an absent counter reads 0);
* a budget counter whose key starts with one of ``evictable_budgets`` (default ``customer:``), with
  no reservation open on it, unused for ``idle_evict`` seconds, and only while
  ``can_forget_budgets()`` says the ledger has every record (the spend writer's queue is empty):
  its next use seeds it again from the customer's row, whose spend then includes everything the
  counter held. ``idle_evict`` must exceed the customer cache's TTL, so that row is re-read (the
  proxy sets it so). Keys, teams and users are rows an admin created (bounded); the proxy and
  per-model budgets are seeded once per window from the ledger (``spend/admission.py``) and so are
  never evicted.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import trio

from .limiter import (
    DEFAULT_LEASE,
    DEFAULT_MAX_RESERVATION_AGE,
    Admission,
    Check,
    Kind,
    LimiterService,
    combine_retry_after,
    validate_checks,
)

__all__ = ["InProcessLimiter"]


@dataclass(slots=True)
class _Entry:
    at: int          # ms
    request_id: str
    amount: int


@dataclass(slots=True)
class _Log:
    """A sliding log: entries in admission order, their total, and an index by request id."""

    window_ms: int
    entries: deque[_Entry] = field(default_factory=deque)
    by_request: dict[str, _Entry] = field(default_factory=dict)
    total: int = 0

    def expire(self, cutoff: int) -> None:
        entries = self.entries
        while entries and entries[0].at <= cutoff:
            entry = entries.popleft()
            self.total -= entry.amount
            if self.by_request.get(entry.request_id) is entry:
                del self.by_request[entry.request_id]


@dataclass(slots=True)
class _Taken:
    kind: Kind
    key: str
    amount: int
    window: int        # budget: window id
    window_ms: int
    anchor_ms: int


#: seconds a counter may stay unused before the sweep may evict it (see the module docstring)
DEFAULT_IDLE_EVICT = 600.0


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000)


class InProcessLimiter(LimiterService):
    """:class:`~trioproxy.coordination.limiter.Limiter` for one process.

    ``clock`` returns unix seconds (budget windows are anchored on wall-clock time); tests pass
    ``trio.current_time`` or a fake.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, lease: float = DEFAULT_LEASE,
                 sweep_interval: float = 1.0, max_age: float = DEFAULT_MAX_RESERVATION_AGE,
                 idle_evict: float = DEFAULT_IDLE_EVICT, evictable_budgets: tuple[str, ...] = ("customer:",),
                 can_forget_budgets: Callable[[], bool] = lambda: True) -> None:
        super().__init__(lease=lease, sweep_interval=sweep_interval, max_age=max_age)
        self.clock = clock
        self._logs: dict[tuple[Kind, str], _Log] = {}
        self._parallel: dict[str, int] = {}
        self._budgets: dict[str, dict[int, int]] = {}
        self._records: dict[str, list[_Taken]] = {}
        self._deadlines: dict[str, int] = {}
        self.idle_evict_ms = _ms(idle_evict)
        self.evictable_budgets = evictable_budgets
        self.can_forget_budgets = can_forget_budgets
        #: evictable budget counters → when a request last reserved on them (ms)
        self._budget_seen: dict[str, int] = {}
        self._next_evict: int | None = None
        self.evicted = 0         # counters evicted (all kinds)

    # -- reading --------------------------------------------------------------------------------------
    def _log(self, check: Check, now: int) -> _Log:
        log = self._logs.get((check.kind, check.key))
        if log is None:
            log = self._logs[(check.kind, check.key)] = _Log(check.window_ms)
        log.expire(now - check.window_ms)
        return log

    @staticmethod
    def _window_id(check: Check, now: int) -> int:
        if not check.window_ms:
            return 0
        return (now - check.anchor_ms) // check.window_ms

    def _budget_value(self, check: Check, wid: int) -> int | None:
        windows = self._budgets.get(check.key)
        return None if windows is None else windows.get(wid)

    def _used(self, check: Check, now: int) -> int:
        kind = check.kind
        if kind is Kind.RPM:
            return len(self._log(check, now).entries)
        if kind is Kind.TPM:
            return self._log(check, now).total
        if kind is Kind.MAX_PARALLEL:
            return self._parallel.get(check.key, 0)
        wid = self._window_id(check, now)
        value = self._budget_value(check, wid)
        if value is None:
            value = self._seed(check, wid)
        return value

    @staticmethod
    def _seed(check: Check, wid: int) -> int:
        if check.seed is not None and (check.seed_window is None or check.seed_window == wid):
            return check.seed
        return 0

    def _wait(self, check: Check, now: int) -> float | None:
        """Seconds until ``check`` could admit again (None: unknown or never)."""
        kind = check.kind
        if kind is Kind.MAX_PARALLEL:
            return None
        if kind is Kind.BUDGET:
            if check.window is None:
                return None
            window_ms = check.window_ms
            end = check.anchor_ms + (self._window_id(check, now) + 1) * window_ms
            return (end - now) / 1000
        log = self._log(check, now)
        window_ms = check.window_ms
        if kind is Kind.RPM:
            index = len(log.entries) - check.limit
            if check.limit == 0 or index >= len(log.entries):
                return None
            return (log.entries[index].at + window_ms - now) / 1000
        left = log.total
        for entry in log.entries:
            left -= entry.amount
            if left < check.limit:
                return (entry.at + window_ms - now) / 1000
        return None

    # -- the operations -------------------------------------------------------------------------------
    def reserve_now(self, request_id: str, checks: Sequence[Check], lease: float | None = None) -> Admission:
        """:meth:`reserve` without the checkpoints (synchronous; for embedded callers and tests)."""
        checks = validate_checks(checks)
        now = _ms(self.clock())
        if request_id in self._records:
            return Admission(True, checks, tuple(self._used(c, now) for c in checks))
        used = [self._used(c, now) for c in checks]
        refused = tuple(i for i, c in enumerate(checks) if used[i] >= c.limit)
        if refused:
            retry = combine_retry_after([self._wait(checks[i], now) for i in refused],
                                        [checks[i].kind for i in refused],
                                        [checks[i].window for i in refused])
            return Admission(False, checks, tuple(used), refused, retry)
        taken: list[_Taken] = []
        for i, check in enumerate(checks):
            kind, amount = check.kind, check.cost
            window_id = 0
            if kind in (Kind.RPM, Kind.TPM):
                entry = _Entry(now, request_id, amount)
                log = self._log(check, now)
                log.entries.append(entry)
                log.by_request[request_id] = entry
                log.total += amount
            elif kind is Kind.MAX_PARALLEL:
                self._parallel[check.key] = used[i] + 1
            else:
                window_id = self._window_id(check, now)
                windows = self._budgets.setdefault(check.key, {})
                if window_id not in windows:
                    for old in [w for w in windows if w < window_id - 1]:
                        del windows[old]   # what the Redis hash field pruning does
                windows[window_id] = used[i] + amount
                if check.key.startswith(self.evictable_budgets):
                    self._budget_seen[check.key] = now
            used[i] += amount
            taken.append(_Taken(kind, check.key, amount, window_id, check.window_ms, check.anchor_ms))
        self._records[request_id] = taken
        self._deadlines[request_id] = now + _ms(self.lease if lease is None else lease)
        self._own[request_id] = 0
        return Admission(True, checks, tuple(used))

    def settle_now(self, request_id: str, tokens: int, cost: int) -> bool:
        self._own.pop(request_id, None)
        taken = self._records.pop(request_id, None)
        if taken is None:
            return False
        del self._deadlines[request_id]
        now = _ms(self.clock())
        for item in taken:
            if item.kind is Kind.TPM:
                log = self._logs.get((item.kind, item.key))
                entry = log.by_request.get(request_id) if log else None
                if log is not None and entry is not None:   # still in the window
                    log.total += tokens - entry.amount
                    entry.amount = tokens
            elif item.kind is Kind.MAX_PARALLEL:
                left = self._parallel.get(item.key, 0) - 1
                if left > 0:
                    self._parallel[item.key] = left
                else:                   # an absent count is 0: nothing kept for an idle subject
                    self._parallel.pop(item.key, None)
            elif item.kind is Kind.BUDGET:
                windows = self._budgets.get(item.key)
                if windows is None:
                    continue
                current = (now - item.anchor_ms) // item.window_ms if item.window_ms else 0
                if current == item.window:
                    if item.window in windows:
                        windows[item.window] += cost - item.amount
                else:   # the window rolled over: the estimate leaves the old one, the cost lands now
                    if item.window in windows:
                        windows[item.window] -= item.amount
                    if current in windows:
                        windows[current] += cost
        return True

    async def reserve(self, request_id: str, checks: Sequence[Check], *,
                      lease: float | None = None) -> Admission:
        await trio.lowlevel.checkpoint_if_cancelled()
        admission = self.reserve_now(request_id, checks, lease)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return admission

    async def settle(self, request_id: str, *, tokens: int, cost: int) -> bool:
        await trio.lowlevel.checkpoint_if_cancelled()
        applied = self.settle_now(request_id, tokens, cost)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return applied

    async def release(self, request_id: str) -> bool:
        # no checkpoint_if_cancelled: releasing from a cancelled request's ``finally`` must work
        applied = self.settle_now(request_id, 0, 0)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return applied

    async def usage(self, checks: Sequence[Check]) -> tuple[int, ...]:
        await trio.lowlevel.checkpoint()
        now = _ms(self.clock())
        return tuple(self._used(c, now) for c in validate_checks(checks))

    async def forget(self, kind: Kind, key: str) -> None:
        await trio.lowlevel.checkpoint()
        if kind in (Kind.RPM, Kind.TPM):
            self._logs.pop((kind, key), None)
        elif kind is Kind.MAX_PARALLEL:
            self._parallel.pop(key, None)
        else:
            self._budgets.pop(key, None)
            self._budget_seen.pop(key, None)

    def sweep_now(self) -> int:
        now = _ms(self.clock())
        expired = [rid for rid, deadline in self._deadlines.items() if deadline <= now]
        for rid in expired:
            self.settle_now(rid, 0, 0)
        if self._next_evict is None:
            self._next_evict = now + self.idle_evict_ms // 4
        elif now >= self._next_evict:
            self._next_evict = now + self.idle_evict_ms // 4
            self.evicted += self.evict_idle(now)
        return len(expired)

    def evict_idle(self, now: int) -> int:
        """Drop the counters the module docstring calls idle; returns how many."""
        evicted = 0
        logs = self._logs
        for ident, log in list(logs.items()):
            log.expire(now - log.window_ms)
            if not log.entries:
                del logs[ident]
                evicted += 1
        seen = self._budget_seen
        cutoff = now - self.idle_evict_ms
        idle = [key for key, at in seen.items() if at <= cutoff]
        if idle and self.can_forget_budgets():
            open_keys = {item.key for taken in self._records.values() for item in taken if item.kind is Kind.BUDGET}
            for key in idle:
                if key not in open_keys:
                    del seen[key]
                    self._budgets.pop(key, None)
                    evicted += 1
        return evicted

    async def sweep(self) -> int:
        swept = self.sweep_now()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return swept

    async def _renew(self, request_ids: Sequence[str], lease: float) -> None:
        deadline = _ms(self.clock()) + _ms(lease)
        for rid in request_ids:
            if rid in self._deadlines:
                self._deadlines[rid] = deadline
        await trio.lowlevel.cancel_shielded_checkpoint()

    @property
    def open_reservations(self) -> int:
        return len(self._records)
