"""The refresh service in virtual time: rounds at exact times, changes reported, failures kept quiet.

The reads go through an injected ``run_sync`` that calls the manager inline (the clock stays virtual:
a real thread hop makes the autojump clock jump while the thread runs). One test uses the real
``trio.to_thread.run_sync`` and checks the reads happen off the Trio thread.
"""

from __future__ import annotations

import threading
from typing import Any

import trio
import trio.testing

from trioproxy.secret_managers.base import SecretManagerUnreachable
from trioproxy.secret_managers.refresh import SecretRefresher
from trioproxy.secret_managers.resolve import SecretResolver
from trioproxy.secret_managers.settings import KeyManagementSettings


class Manager:
    name = "hashicorp_vault"

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.fail = False
        self.threads: list[int] = []

    def read(self, name: str) -> str | None:
        self.threads.append(threading.get_ident())
        if self.fail:
            raise SecretManagerUnreachable(self.name, "HTTP 503")
        return self.values.get(name)


async def inline(fn: Any, *args: Any, limiter: Any = None) -> Any:
    async with limiter:
        await trio.lowlevel.checkpoint()
        return fn(*args)


def refresher(manager: Manager, changes: list[tuple[float, str, str]], **kw: Any) -> SecretRefresher:
    resolver = SecretResolver(KeyManagementSettings("hashicorp_vault"), manager, {})
    return SecretRefresher(resolver, ["A", "B"], {"A": "a1", "B": "b1"}, interval=60,
                           on_change=lambda name, value: changes.append((trio.current_time(), name, value)), **kw)


async def test_changes_are_reported_at_each_interval(autojump_clock: trio.testing.MockClock) -> None:
    manager = Manager({"A": "a1", "B": "b1"})
    changes: list[tuple[float, str, str]] = []
    service = refresher(manager, changes, run_sync=inline)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await trio.sleep(30)
        manager.values["A"] = "a2"                  # rotated in the manager between rounds
        await trio.sleep(60)                        # t = 90: the round at t = 60 saw it
        assert changes == [(60.0, "A", "a2")]
        manager.values["B"] = "b2"
        await trio.sleep(40)                        # t = 130: the round at t = 120
        assert changes == [(60.0, "A", "a2"), (120.0, "B", "b2")]
        assert service.rounds == 2
        await service.drain(5)
    assert trio.current_time() == 130.0             # between rounds, drain stops at once


async def test_a_failed_round_keeps_the_old_value_and_the_next_round_retries(
        autojump_clock: trio.testing.MockClock) -> None:
    manager = Manager({"A": "a1", "B": "b1"})
    changes: list[tuple[float, str, str]] = []
    service = refresher(manager, changes, run_sync=inline)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        manager.fail = True
        manager.values["A"] = "a2"
        await trio.sleep(61)
        assert changes == [] and service.failures == 2
        manager.fail = False
        await trio.sleep(60)
        assert changes == [(120.0, "A", "a2")]
        await service.drain(5)


async def test_drain_waits_for_the_round_in_progress(autojump_clock: trio.testing.MockClock) -> None:
    manager = Manager({"A": "a2", "B": "b1"})
    changes: list[tuple[float, str, str]] = []
    release = trio.Event()

    async def slow(fn: Any, *args: Any, limiter: Any = None) -> Any:
        await release.wait()
        return fn(*args)

    service = refresher(manager, changes, run_sync=slow)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        await trio.sleep(61)                        # the round started at t = 60 and waits

        async def finish_later() -> None:
            await trio.sleep(2)
            release.set()

        nursery.start_soon(finish_later)
        await service.drain(10)
        assert trio.current_time() == 63.0          # drained when the round finished, not at the deadline
        assert changes == [(63.0, "A", "a2")]


async def test_reads_run_in_worker_threads() -> None:
    manager = Manager({"A": "a2", "B": "b1"})
    changes: list[tuple[float, str, str]] = []
    service = refresher(manager, changes, limiter=trio.CapacityLimiter(1))
    assert await service.refresh_once() == ["A"]
    assert manager.threads and threading.get_ident() not in manager.threads
    assert [(name, value) for _, name, value in changes] == [("A", "a2")]
