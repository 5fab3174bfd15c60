"""Rate limits, parallel slots and budgets as one atomic reservation per request: the interface.

The spend layer (#11) turns a request's key/team/user/customer/model rules into a list of
:class:`Check`\\ s and calls, around the upstream call::

    admission = await admit(limiter, request_id, checks)      # refused → 429 / budget_exceeded
    try:
        ... call the upstream ...
        await limiter.settle(request_id, tokens=usage.total_tokens, cost=cost_micros)
    finally:
        await limiter.release(request_id)      # no-op after settle; always runs (shielded)

Two implementations pass one conformance suite (``tests/coordination/test_limiter_conformance.py``):
:class:`~trioproxy.coordination.limiter_memory.InProcessLimiter` (embedded mode: one process owns
the state, no I/O) and :class:`~trioproxy.coordination.limiter_redis.RedisLimiter` (one Lua
script per reserve, one per settle/release: N instances share the counters exactly).

The rules (the same in both; ``docs/deploy.md`` "Shared state" explains them to operators):

* **One rule for every kind: refuse when ``used ≥ limit``**, otherwise admit and add ``amount``. For
  rpm and max_parallel (amount 1) that is "at most ``limit``"; for tpm and budgets it is
  LiteLLM's rule — the call that crosses the line is served, the next one refused — made race-free
  because the check and the reservation are one atomic step. So fifty concurrent requests against
  a budget that fits ten admit at most eleven.
* **All or nothing.** Every check is evaluated first; only if all pass is anything reserved. A
  request refused for parallelism consumes no RPM (LiteLLM #39309).
* **Windows.** ``rpm`` and ``tpm`` are *sliding logs*: a request counts for exactly ``window``
  seconds after its admission (at most ``limit`` requests in *any* 60-second span, no 2× burst at a
  fixed window's edge, no "about a minute"); memory is one entry per admitted request in the
  window. Refusals say exactly when the oldest entries leave (``retry_after``). ``budget`` windows
  (``budget_duration``) are anchored at the time the budget was set or last reset:
  window id = ⌊(now − anchor) / duration⌋, so a reset happens on time without a sweep, and a
  budget added later starts its own window. Without a duration the budget is for the lifetime.
* **Exactly-once settle.** A reservation leaves a record keyed by request id; :meth:`settle`
  applies ``actual − estimate`` (tpm: tokens, budget: cost) only if it deletes that record, so a
  retried settle (timeout with unknown outcome) or a settle after release is a no-op.
  :meth:`release` is a settle with zero actuals: the parallel slot is freed, tpm and budget give
  back their estimate, the rpm entry stays (an admitted request counts, whatever its outcome).
* **Leases, not leaks.** A reservation has a deadline (``lease``, default 30 s); the owning
  process renews its open reservations while they run (:meth:`run`), and a sweeper in every
  process releases reservations whose deadline passed — those of a crashed instance — so no
  phantom spend or slot remains (LiteLLM #27639, #1477).
* **Seeding.** A budget counter that does not exist (first use, Redis restarted) starts from the
  check's ``seed`` (the ledger's recorded spend for the window): atomically, once (SET NX
  semantics), never additively (LiteLLM #28247).
* **Money is integers** (micro-USD), tokens are integers: no float drift.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import trio

from ..errors import ServiceUnavailableError
from .errors import CoordinationError, CoordinationUnavailable

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_MAX_RESERVATION_AGE",
    "Admission",
    "BudgetWindow",
    "Check",
    "Kind",
    "Limiter",
    "admit",
    "budget_window",
]

log = logging.getLogger("trioproxy.coordination.limiter")

#: seconds a reservation lives without renewal (a crashed instance's slots come back after this)
DEFAULT_LEASE = 30.0
#: seconds the owning process keeps renewing one reservation. A reservation that is still open
#: after this was leaked (a bug skipped its settle and release): it stops being renewed, so the
#: sweep ends it one lease later, and an error names it. Longer than any request may last
#: (``build_proxy`` raises it above the configured request timeout and stream duration).
DEFAULT_MAX_RESERVATION_AGE = 3600.0


class Kind(StrEnum):
    RPM = "rpm"                    # requests admitted in a sliding window
    TPM = "tpm"                    # tokens in a sliding window: reserve an estimate, settle actuals
    MAX_PARALLEL = "max_parallel"  # requests in flight
    BUDGET = "budget"              # micro-USD: recorded spend + reservations in flight


@dataclass(frozen=True, slots=True)
class Check:
    """One counter a request must fit in.

    ``key`` names the counter (the caller's choice, e.g. ``"key:<hash>"``, ``"team:<id>"``,
    ``"key:<hash>:model:gpt-4o"``); counters of different kinds never collide. ``amount`` is what
    the request reserves: ignored for rpm and max_parallel (1), the estimated tokens for tpm, the
    estimated cost in micro-USD for a budget. ``window`` is the sliding window in seconds for
    rpm/tpm (default 60) and the ``budget_duration`` in seconds for a budget (None: lifetime).
    ``anchor`` is the unix time the budget's windows count from (when it was set or last reset).
    ``seed`` is the ledger's recorded spend for the current window, used only when the counter
    does not exist yet (and, when ``seed_window`` is given, only in that window id).
    """

    key: str
    kind: Kind
    limit: int
    amount: int = 1
    window: float | None = 60.0
    anchor: float = 0.0
    seed: int | None = None
    seed_window: int | None = None
    #: derived once here, read on every reservation: what it reserves, its window and anchor in ms
    cost: int = field(init=False, repr=False, compare=False)
    window_ms: int = field(init=False, repr=False, compare=False)
    anchor_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = self.kind
        if type(kind) is not Kind:
            try:
                kind = Kind(kind)
            except ValueError:
                raise ValueError(f"unknown limiter check kind {self.kind!r}") from None
            object.__setattr__(self, "kind", kind)
        if not self.key:
            raise ValueError("a limiter check needs a counter key")
        if self.limit < 0 or self.amount < 0:
            raise ValueError(f"limit and amount must be ≥ 0 (check {kind} {self.key!r})")
        window = self.window
        if window is not None and window <= 0 or (window is None and kind is not Kind.BUDGET
                                                  and kind is not Kind.MAX_PARALLEL):
            raise ValueError(f"{kind} check {self.key!r} needs a window > 0 seconds"
                             + (" (or None: lifetime)" if kind is Kind.BUDGET else ""))
        object.__setattr__(self, "cost", self.amount if kind is Kind.TPM or kind is Kind.BUDGET else 1)
        object.__setattr__(self, "window_ms", math.floor(window * 1000) if window is not None else 0)
        object.__setattr__(self, "anchor_ms", math.floor(self.anchor * 1000))


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to :meth:`Limiter.reserve`.

    ``used[i]`` is check ``i``'s counter after this reservation (admitted) or as found (refused):
    rpm/tpm in the window, in-flight requests, or micro-USD spent + reserved. ``refused`` lists the
    indexes of the checks that refused; ``retry_after`` is when all of them could admit again,
    in seconds (None when nobody can know: parallel slots, a lifetime budget).
    ``degraded``: admitted without checking because the shared state was down and the policy is
    fail-open.
    """

    admitted: bool
    checks: tuple[Check, ...]
    used: tuple[int, ...]
    refused: tuple[int, ...] = ()
    retry_after: float | None = None
    degraded: bool = False

    @property
    def refused_check(self) -> Check | None:
        return self.checks[self.refused[0]] if self.refused else None

    def remaining(self, index: int) -> int:
        """``limit − used`` of check ``index``, never below 0 (for the rate-limit headers)."""
        return max(0, self.checks[index].limit - self.used[index]) if self.used else 0


@dataclass(frozen=True, slots=True)
class BudgetWindow:
    id: int
    start: float
    end: float


def budget_window(now: float, anchor: float, duration: float) -> BudgetWindow:
    """The budget window containing ``now``: windows of ``duration`` seconds from ``anchor``.

    ``end`` is ``budget_reset_at``. Both implementations use this arithmetic (the Redis script in
    milliseconds of the server's clock).
    """
    wid = math.floor((now - anchor) / duration)
    start = anchor + wid * duration
    return BudgetWindow(wid, start, start + duration)


@runtime_checkable
class Limiter(Protocol):
    """What the spend layer uses. Both implementations also have ``run``/``drain`` (a service)."""

    async def reserve(self, request_id: str, checks: Sequence[Check], *,
                      lease: float | None = None) -> Admission:
        """Check every counter and, only if all pass, reserve on all of them atomically.

        Idempotent per ``request_id``: while its reservation exists, a repeated call admits without
        reserving again (a retry after a timeout cannot double-count).
        """
        ...

    async def settle(self, request_id: str, *, tokens: int, cost: int) -> bool:
        """Replace the estimates by the actuals (tokens for tpm, micro-USD for budgets) and free the
        parallel slot. True if this call applied it; False if already settled/released/swept."""
        ...

    async def release(self, request_id: str) -> bool:
        """Give back everything but the rpm entry (a failed or cancelled request). Idempotent."""
        ...

    async def usage(self, checks: Sequence[Check]) -> tuple[int, ...]:
        """The counters as they stand (no reservation): for ``/key/info`` and headers."""
        ...

    async def forget(self, kind: Kind, key: str) -> None:
        """Drop a counter (every window of a budget): it is seeded again on next use. For admin
        resets of spend; reservations in flight on it are lost from it."""
        ...

    async def sweep(self) -> int:
        """Release reservations whose lease expired; returns how many."""
        ...


class LimiterService:
    """Lease renewal and sweeping shared by both implementations (a nursery service).

    The owning process renews the leases of its own open reservations every ``lease / 3``
    seconds and sweeps expired ones (anyone's) every ``sweep_interval``. A reservation is renewed
    for at most ``max_age`` seconds (counted in renewals, so virtual time tests it): after that it
    is a leak — its request's settle and release were skipped by a bug — and is left to expire.
    """

    def __init__(self, *, lease: float = DEFAULT_LEASE, sweep_interval: float = 1.0,
                 max_age: float = DEFAULT_MAX_RESERVATION_AGE) -> None:
        if lease <= 0:
            raise ValueError("lease must be > 0 seconds")
        if max_age < lease:
            raise ValueError("max_age must be at least one lease")
        self.lease = lease
        self.sweep_interval = sweep_interval
        #: renewals a reservation gets before it counts as leaked
        self.max_renewals = math.ceil(max_age / (lease / 3))
        #: request ids reserved by this process and not yet settled/released (renewed by run()),
        #: with how many times each was renewed
        self._own: dict[str, int] = {}
        self.swept = 0
        self.leaked = 0          # reservations given up as leaked (logged)

    async def _renew(self, request_ids: Sequence[str], lease: float) -> None:
        raise NotImplementedError

    async def sweep(self) -> int:
        raise NotImplementedError

    async def renew(self) -> None:
        """Extend the leases of this process's open reservations to now + ``lease``, except those
        renewed ``max_renewals`` times already: leaked, they are dropped and expire."""
        own = self._own
        if not own:
            return
        leaked = [rid for rid, renewals in own.items() if renewals >= self.max_renewals]
        for rid in leaked:
            del own[rid]
            self.leaked += 1
            log.error("reservation %s is still open after %.0f s: leaked (its settle and release never ran); "
                      "no longer renewed, the sweep releases it within %.0f s", rid,
                      self.max_renewals * self.lease / 3, self.lease)
        for rid in own:
            own[rid] += 1
        if own:
            await self._renew(sorted(own), self.lease)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        renew_every = self.lease / 3
        next_renew = trio.current_time() + renew_every
        while True:
            await trio.sleep(min(self.sweep_interval, max(0.0, next_renew - trio.current_time())))
            try:
                if trio.current_time() >= next_renew:
                    next_renew = trio.current_time() + renew_every
                    await self.renew()
                self.swept += await self.sweep()
            except CoordinationUnavailable as exc:
                log.debug("limiter maintenance skipped: %s", exc)
            except CoordinationError:
                log.exception("limiter maintenance failed; retrying")

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the services interface
        """Nothing is buffered: settle/release are awaited by their requests."""
        await trio.lowlevel.checkpoint()


async def admit(limiter: Limiter, request_id: str, checks: Sequence[Check], *,
                fail_open: bool = False, lease: float | None = None) -> Admission:
    """:meth:`Limiter.reserve` with the failure policy applied.

    Shared state unreachable → :class:`~trioproxy.errors.ServiceUnavailableError` (503, the
    default: limits and budgets are not silently switched off), or with ``fail_open`` an admission
    marked ``degraded`` (logged). The caller still calls ``release`` in its ``finally``.
    """
    if not checks:
        return Admission(True, (), ())
    try:
        return await limiter.reserve(request_id, checks, lease=lease)
    except CoordinationUnavailable as exc:
        if fail_open:
            log.warning("limits and budgets not checked for request %s (fail open): %s", request_id, exc)
            return Admission(True, tuple(checks), (), degraded=True)
        raise ServiceUnavailableError(
            "Rate limits and budgets cannot be checked right now (shared state unavailable); "
            "retry shortly.", headers={"retry-after": "1"}) from exc



def validate_checks(checks: Sequence[Check]) -> tuple[Check, ...]:
    """The checks as a tuple; one check per counter (the same counter twice is a caller's bug)."""
    seen: set[tuple[Kind, str]] = set()
    for check in checks:
        ident = (check.kind, check.key)
        if ident in seen:
            raise ValueError(f"the {check.kind} counter {check.key!r} is checked twice in one reservation")
        seen.add(ident)
    return tuple(checks)


def combine_retry_after(waits: Sequence[float | None], kinds: Sequence[Kind],
                        windows: Sequence[float | None]) -> float | None:
    """``retry_after`` of a refusal: the longest known wait among the refusing checks; None when a
    lifetime budget refused (waiting never helps) or no wait is known (parallel slots only)."""
    known = []
    for wait, kind, window in zip(waits, kinds, windows, strict=True):
        if kind is Kind.BUDGET and window is None:
            return None
        if wait is not None:
            known.append(wait)
    return max(known) if known else None
