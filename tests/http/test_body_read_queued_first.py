"""The fast path takes a request body's queued messages without waiting, then waits for the rest.

``ProxyASGI._read_body`` first takes what Hypercorn already queued (``receive_nowait`` of its memory
channel, through the unread-body guard), and enters the body deadline's cancel scope only when it
must wait (bench/README.md, "CPU per request"). These tests drive it on a Trio memory channel, as
Hypercorn gives it, with the rest arriving only once the reader waits (``wait_all_tasks_blocked``),
and the deadline in virtual time.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from trioproxy.errors import RequestTimeoutError, RequestTooLargeError
from trioproxy.http.asgi import ProxyASGI, _Disconnected
from trioproxy.http.unread_body import UnreadBodyGuard, receive_nowait_of


def _app(limit: int = 1024, timeout: float = 5.0) -> Any:
    return SimpleNamespace(max_body_bytes=limit, max_body_mb=limit / 1024 / 1024, body_timeout=timeout)


def _part(data: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


async def _read(app: Any, receive: Any) -> Any:
    return await ProxyASGI._read_body(app, {}, receive, {})


def test_only_a_memory_channel_receive_or_the_guard_over_one_has_a_nowait_form() -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](4)

    async def other() -> dict[str, Any]:
        return _part(b"", False)

    assert receive_nowait_of(receive.receive) == receive.receive_nowait
    assert receive_nowait_of(other) is None
    assert receive_nowait_of(UnreadBodyGuard(other, None, 5, 1.0).receive) is None
    guard = UnreadBodyGuard(receive.receive, None, 5, 1.0)
    assert receive_nowait_of(guard.receive) == guard.receive_nowait


async def test_a_body_queued_whole_is_read_without_waiting() -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](4)
    guard = UnreadBodyGuard(receive.receive, None, 6, 1.0)
    send.send_nowait(_part(b"abc", True))
    send.send_nowait(_part(b"def", False))
    assert await _read(_app(), guard.receive) == b"abcdef"
    assert guard._received_all.is_set()


async def test_part_queued_and_the_rest_arriving_later_is_joined_in_order() -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](4)
    guard = UnreadBodyGuard(receive.receive, None, 9, 1.0)
    send.send_nowait(_part(b"abc", True))
    result: list[Any] = []
    async with trio.open_nursery() as nursery:
        async def read() -> None:
            result.append(await _read(_app(), guard.receive))
        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        assert not guard._received_all.is_set()
        await send.send(_part(b"def", True))
        await send.send(_part(b"ghi", False))
    assert result == [b"abcdefghi"]
    assert guard._received_all.is_set()


async def test_a_queued_disconnect_ends_the_read() -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](4)
    send.send_nowait(_part(b"abc", True))
    send.send_nowait({"type": "http.disconnect"})
    with pytest.raises(_Disconnected):
        await _read(_app(), receive.receive)


async def test_too_large_counts_queued_and_later_parts_alike() -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](4)
    send.send_nowait(_part(b"x" * 600, True))
    result: list[Any] = []
    async with trio.open_nursery() as nursery:
        async def read() -> None:
            result.append(await _read(_app(limit=1000), receive.receive))
        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        await send.send(_part(b"y" * 600, True))
    assert isinstance(result[0], RequestTooLargeError)


async def test_the_deadline_counts_from_the_first_wait_and_reports_every_byte(autojump_clock: Any) -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](4)
    send.send_nowait(_part(b"abcd", True))      # then nothing more arrives
    started = trio.current_time()
    error = await _read(_app(timeout=5.0), receive.receive)
    assert isinstance(error, RequestTimeoutError)
    assert trio.current_time() - started == 5.0
    assert "4 bytes arrived" in str(error)
