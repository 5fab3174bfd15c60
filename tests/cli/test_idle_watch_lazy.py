"""The connection's idle watcher is not told when a request starts, yet its deadlines stay exact.

``HeadDeadlineTCPServer`` no longer moves its watcher's cancel-scope deadline three times per request
(bench/README.md, "CPU per request"): the watcher wakes at most ``min(keep-alive, head timeout)``
apart, compares the real deadline with the clock, and sleeps again; a new deadline that would come
before its wake-up moves it earlier. These tests drive one connection's state in virtual time
(``autojump_clock``), with requests served longer than both timers, and check the close happens at
the real deadline, not at a wake-up and not later.
"""

from __future__ import annotations

from typing import Any

import trio
from hypercorn.events import Updated

from trioproxy.cli.server_connection import HeadDeadlineTCPServer


class _Config:
    def __init__(self, keep_alive: float) -> None:
        self.keep_alive_timeout = keep_alive


class _Context:
    def __init__(self) -> None:
        self.terminated = trio.Event()


def _bare_server(head_timeout: float, keep_alive: float) -> tuple[HeadDeadlineTCPServer, list[float]]:
    """The watcher's part of a connection (no socket, no Hypercorn protocol); closes recorded with their time."""
    server: Any = object.__new__(HeadDeadlineTCPServer)
    server.config = _Config(keep_alive)
    server.context = _Context()
    server.protocol = None
    server._held_head = None
    server._head_timeout = head_timeout
    server._head_started = trio.current_time()
    server._idle_since = server._head_started
    server._recheck_every = max(0.5, min(head_timeout, keep_alive))
    server._head_bytes = False
    server._busy = False
    server._idle_scope = None
    server._idle_ended = False
    closed: list[float] = []

    async def close() -> None:
        closed.append(trio.current_time())

    server._initiate_server_close = close
    return server, closed


async def _serve_one(server: HeadDeadlineTCPServer, seconds: float) -> None:
    """A head arrives, the request is served for ``seconds``, the response completes (kept alive)."""
    server._bytes_arrived()
    await server.protocol_send(Updated(idle=False))
    await trio.sleep(seconds)
    await server.protocol_send(Updated(idle=True))


async def test_requests_longer_than_both_timers_then_keep_alive_expires_on_time(autojump_clock: Any) -> None:
    server, closed = _bare_server(head_timeout=10, keep_alive=75)
    async with trio.open_nursery() as nursery:
        await nursery.start(server._watch_idle)
        await trio.sleep(1)
        for _ in range(3):
            await _serve_one(server, 100)    # the watcher wakes several times during each
            assert closed == []
            await trio.sleep(5)              # idle well within the keep-alive wait
        idle_from = trio.current_time() - 5
        await trio.sleep(200)
    assert closed == [idle_from + 75]


async def test_a_head_begun_after_a_request_is_held_to_the_head_deadline(autojump_clock: Any) -> None:
    server, closed = _bare_server(head_timeout=10, keep_alive=75)
    async with trio.open_nursery() as nursery:
        await nursery.start(server._watch_idle)
        await _serve_one(server, 30)
        await trio.sleep(7.25)               # idle, then the next head's first byte
        server._bytes_arrived()
        head_from = trio.current_time()
        await trio.sleep(100)
    assert closed == [head_from + 10]


async def test_a_keep_alive_shorter_than_the_wake_up_moves_the_watcher_earlier(autojump_clock: Any) -> None:
    """keep-alive 0.2 s: the wake-up period is 0.5 s at least, so ending a request must move it."""
    server, closed = _bare_server(head_timeout=10, keep_alive=0.2)
    async with trio.open_nursery() as nursery:
        await nursery.start(server._watch_idle)
        await _serve_one(server, 0.1)
        idle_from = trio.current_time()
        await trio.sleep(5)
    assert closed == [idle_from + 0.2]


async def test_the_first_head_is_held_to_its_deadline_from_the_accept(autojump_clock: Any) -> None:
    server, closed = _bare_server(head_timeout=10, keep_alive=75)
    accepted = server._head_started
    async with trio.open_nursery() as nursery:
        await nursery.start(server._watch_idle)
        await trio.sleep(3)
        server._bytes_arrived()              # a head begins, never completes
        await trio.sleep(60)
    assert closed == [accepted + 10]


async def test_shutdown_closes_an_idle_connection_at_once_and_leaves_a_busy_one(autojump_clock: Any) -> None:
    idle, idle_closed = _bare_server(head_timeout=10, keep_alive=75)
    busy, busy_closed = _bare_server(head_timeout=10, keep_alive=75)
    async with trio.open_nursery() as nursery:
        await nursery.start(idle._watch_idle)
        await nursery.start(busy._watch_idle)
        await _serve_one(idle, 1)
        busy._bytes_arrived()
        await busy.protocol_send(Updated(idle=False))
        await trio.sleep(20)                 # the busy one's watcher woke and slept again meanwhile
        idle.context.terminated.set()
        busy.context.terminated.set()
        stopped_at = trio.current_time()
    assert idle_closed == [stopped_at]
    assert busy_closed == []
    assert busy._idle_scope is None          # its watcher ended (Hypercorn closes it after the response)
