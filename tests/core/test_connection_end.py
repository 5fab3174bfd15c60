"""``core/disconnect.py``: the connection's end cancels the request registered at that moment, once."""

from __future__ import annotations

import trio

from trioproxy.core.disconnect import CONNECTION_END, ConnectionEnd


async def test_the_end_cancels_the_registered_request_only() -> None:
    end = ConnectionEnd()
    answered = trio.CancelScope()
    end.cancel_on_end(answered)
    end.release(answered)              # answered: no longer the connection's concern
    with trio.CancelScope() as current:
        end.cancel_on_end(current)
        end.release(answered)          # a stale release does not unregister the current request
        end.ended()
        await trio.sleep_forever()     # cancelled by the end
    assert current.cancelled_caught
    assert not answered.cancel_called


async def test_a_request_registered_after_the_end_is_cancelled_at_once() -> None:
    end = ConnectionEnd()
    end.ended()
    with trio.CancelScope() as late:
        end.cancel_on_end(late)
        await trio.sleep_forever()
    assert late.cancelled_caught


async def test_tasks_spawned_under_a_connection_see_its_end() -> None:
    end = ConnectionEnd()
    seen: list[ConnectionEnd | None] = []

    async def request_task() -> None:
        seen.append(CONNECTION_END.get())

    async def connection_task() -> None:
        CONNECTION_END.set(end)   # as the server's connection class does in its run()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(request_task)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection_task)
        nursery.start_soon(request_task)   # another connection's task: not this end
    assert end in seen and seen.count(end) == 1
    assert CONNECTION_END.get() is None
