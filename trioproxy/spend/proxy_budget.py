"""The proxy budget's window start, read from the store at startup (``litellm_settings.budget_duration``).

Issue #11's rule for every budget: a window starts when the budget is set, not on the clock. A
config-defined budget has no "set" moment of its own, so the first start of a proxy with that
``budget_duration`` is the moment: ``SpendRepository.proxy_budget_start`` stores it once (LiteLLM
keeps the same thing in its ``litellm-proxy-budget`` row's ``budget_reset_at``), and every instance
and restart steps windows from it. A changed duration is a budget set anew: its windows start at
that start. The proxy budget keeps no spend column (its spend is the ledger's, seeded per window),
so nothing needs rolling: the start alone fixes every later window.

Startup never waits on this: if the store does not answer, the windows stay UTC-aligned (logged)
and the read is retried every ``retry_delay`` seconds until it succeeds.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

import trio

from ..store.errors import StoreError
from .admission import AdmissionSettings

__all__ = ["ProxyBudgetAnchorService"]

log = logging.getLogger("trioproxy.spend.proxy_budget")


class _StartSource(Protocol):
    async def proxy_budget_start(self, duration: str, *, now: datetime | None = None) -> datetime: ...


class ProxyBudgetAnchorService:
    def __init__(self, repo: _StartSource, settings: AdmissionSettings, *, retry_delay: float = 5.0):
        self.repo = repo
        self.settings = settings
        self.retry_delay = retry_delay
        #: set once the anchor has been read (tests)
        self.anchored = trio.Event()

    async def _load(self) -> bool:
        duration = self.settings.proxy_budget_duration
        assert duration is not None
        try:
            start = await self.repo.proxy_budget_start(str(duration))
        except StoreError as exc:
            log.warning("proxy budget window start not read (%s): its windows are UTC-aligned until it is", exc)
            return False
        self.settings.proxy_anchor.start = start.timestamp()
        self.anchored.set()
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.settings.proxy_max_budget is None or self.settings.proxy_budget_duration is None:
            self.anchored.set()
            task_status.started()
            await trio.sleep_forever()
        loaded = await self._load()
        task_status.started()
        while not loaded:
            await trio.sleep(self.retry_delay)
            loaded = await self._load()
        await trio.sleep_forever()

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - the services interface
        await trio.lowlevel.checkpoint()
        return True
