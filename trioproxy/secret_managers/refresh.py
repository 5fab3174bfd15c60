"""Reading the referenced secrets again on an interval, off the Trio thread.

:class:`SecretRefresher` is a service of the app's lifetime, shaped like the logging sink
(``async run(*, task_status)`` in the app nursery, ``async drain(timeout)`` at shutdown). Every
``interval`` seconds it reads each name again through the same :class:`~.resolve.SecretResolver`
as startup (manager, then environment), each read in ``trio.to_thread.run_sync`` under a
``CapacityLimiter`` (the SDKs are blocking), and calls ``on_change(name, value)`` for every value
that differs from the last one it saw.

A failed read during refresh does not stop a running proxy: it is logged (name, manager, reason;
never a value) and the previous value stays in use; the next round tries again. Values are passed to
the callback only, never logged.

Wiring (``proxy.py``): the composition root builds it from what startup read
(``ProxyConfig.secret_resolution``) and starts it with the app; its callback tells the scrubber the new
value, then ``config/live.py:LiveSecrets``, from which the router takes every deployment it calls.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any

import trio

from .base import SecretManagerError
from .resolve import SecretResolver

__all__ = ["DEFAULT_LIMIT", "SecretRefresher"]

log = logging.getLogger("trioproxy.secrets")

#: concurrent reads (threads) per round
DEFAULT_LIMIT = 4

RunSync = Callable[..., Awaitable[Any]]


class SecretRefresher:
    def __init__(self, resolver: SecretResolver, names: Iterable[str], initial: Mapping[str, str], *,
                 interval: float, on_change: Callable[[str, str], None],
                 limiter: trio.CapacityLimiter | None = None, run_sync: RunSync | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self.resolver = resolver
        self.names = list(dict.fromkeys(names))
        self.interval = interval
        self.on_change = on_change
        self.limiter = limiter or trio.CapacityLimiter(DEFAULT_LIMIT)
        # injectable for tests in virtual time; the default is the real thread hop
        self._run_sync = run_sync or partial(trio.to_thread.run_sync, abandon_on_cancel=True)
        self._current: dict[str, str] = dict(initial)
        self._scope: trio.CancelScope | None = None
        self._stopped = trio.Event()
        self._stopping = False
        self._busy = False
        self.rounds = 0
        self.failures = 0

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._scope = scope
            task_status.started()
            try:
                while not self._stopping:
                    await trio.sleep(self.interval)
                    self._busy = True
                    try:
                        await self.refresh_once()
                    finally:
                        self._busy = False
            finally:
                self._stopped.set()

    async def refresh_once(self) -> list[str]:
        """One round: every name read again; returns the names whose value changed."""
        changed: list[str] = []

        async def one(name: str) -> None:
            try:
                value, _where = await self._run_sync(self.resolver.read, name, limiter=self.limiter)
            except SecretManagerError as exc:
                self.failures += 1
                log.warning("secret refresh: %s; keeping the previous value", exc.for_secret(name))
                return
            if value is None:
                self.failures += 1
                log.warning("secret refresh: os.environ/%s is %s; keeping the previous value", name,
                            self.resolver.missing(name))
                return
            if self._current.get(name) != value:
                self._current[name] = value
                changed.append(name)

        async with trio.open_nursery() as nursery:
            for name in self.names:
                nursery.start_soon(one, name)
        self.rounds += 1
        for name in sorted(changed):
            log.info("secret refresh: os.environ/%s changed in %s", name, self.resolver.manager_name)
            try:
                self.on_change(name, self._current[name])
            except Exception as exc:
                log.error("secret refresh: the change callback for %s raised", name, exc_info=exc)
        return sorted(changed)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - the services interface (app.py)
        """Stop: at once between rounds; after the round in progress, waiting at most ``timeout``."""
        self._stopping = True
        if self._scope is None:
            return
        if not self._busy:
            self._scope.cancel(reason="shutting down")
        with trio.move_on_after(timeout):
            await self._stopped.wait()
        self._scope.cancel(reason="shutdown deadline")
