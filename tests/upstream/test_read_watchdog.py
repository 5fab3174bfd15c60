"""A streamed body's read timeout kept by the pool's watchdog (``upstream/http11/watchdog.py``).

A streamed response's reads record their deadline instead of entering a cancel scope each; one
watchdog task wakes a read that waited past it. In virtual time (``autojump_clock``) against a real
loopback server: the timeout fires within one tick after the deadline, a stream whose pieces keep
arriving never times out however long it lasts, the watchdog stops when nothing is watched, and
short timeouts keep a cancel scope per read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio

from trioproxy.config import Deployment
from trioproxy.errors import Timeout
from trioproxy.masking import SecretScrubber
from trioproxy.upstream.http11 import Http11Pool, Http11Provider
from trioproxy.upstream.http11.watchdog import WATCHED_MIN_TIMEOUT, ReadWatchdog

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@asynccontextmanager
async def serve(handler: Callable[[trio.SocketStream], Awaitable[None]]) -> AsyncIterator[int]:
    async def on_connection(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some(65536)
        try:
            await handler(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, on_connection, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


def deployment(port: int, stream_timeout: float) -> Deployment:
    return Deployment(model_name="gpt-test", provider="openai", upstream_model="up",
                      api_base=f"http://127.0.0.1:{port}/v1", api_key="sk-test", timeout=30.0,
                      stream_timeout=stream_timeout, max_retries=None, weight=1.0, extra_params={},
                      extra_headers={}, input_cost_per_token=None, output_cost_per_token=None, fake={},
                      model_info={}, index=0)


async def read_all(pool: Http11Pool, port: int, stream_timeout: float) -> tuple[list[bytes], BaseException | None]:
    provider = Http11Provider(pool, SecretScrubber([]))
    stream = await provider.open_stream(deployment(port, stream_timeout), "chat/completions", {"model": "up"})
    pieces: list[bytes] = []
    try:
        async for piece in stream.aiter_bytes():
            pieces.append(piece)
    except Timeout as exc:
        return pieces, exc
    finally:
        await stream.aclose()
    return pieces, None


async def test_a_silent_upstream_times_out_within_a_tick_of_the_deadline(autojump_clock: Any) -> None:
    closed = trio.Event()

    async def stalls(stream: trio.SocketStream) -> None:
        await stream.send_all(HEAD + chunk(b"data: 1\n\n"))
        assert await stream.receive_some(1) == b""   # until the client closes the connection
        closed.set()

    pool = Http11Pool()
    pool.read_watchdog = ReadWatchdog(tick=2.0)     # ticks at 2, 4, 6 s: the 5 s deadline is seen at 6 s
    async with serve(stalls) as port:
        started = trio.current_time()
        pieces, error = await read_all(pool, port, stream_timeout=WATCHED_MIN_TIMEOUT)
        waited = trio.current_time() - started
        await closed.wait()
    assert pieces == [b"data: 1\n\n"]
    assert isinstance(error, Timeout) and type(error.__cause__).__name__ == "ReadTimeout"
    # the watchdog's doing (a cancel scope per read would have fired at exactly 5 s)
    assert WATCHED_MIN_TIMEOUT < waited <= WATCHED_MIN_TIMEOUT + 2.0
    assert pool.connections_in_use == 0 and pool.idle_connections == 0


async def test_pieces_that_keep_coming_never_time_out(autojump_clock: Any) -> None:
    async def trickles(stream: trio.SocketStream) -> None:
        await stream.send_all(HEAD)
        for i in range(20):            # 20 pieces 4 s apart: 80 s in all, with a 5 s read timeout
            await trio.sleep(4.0)
            await stream.send_all(chunk(b"data: %d\n\n" % i))
        await stream.send_all(b"0\r\n\r\n")
        await trio.sleep_forever()

    pool = Http11Pool()
    async with serve(trickles) as port:
        pieces, error = await read_all(pool, port, stream_timeout=5.0)
    assert error is None
    assert pieces == [b"data: %d\n\n" % i for i in range(20)]


async def test_the_watchdog_stops_when_no_read_is_watched(autojump_clock: Any) -> None:
    async def answers(stream: trio.SocketStream) -> None:
        await stream.send_all(HEAD)
        await trio.sleep(1.0)
        await stream.send_all(chunk(b"data: x\n\n") + b"0\r\n\r\n")
        await trio.sleep_forever()

    pool = Http11Pool()
    watchdog = pool.read_watchdog
    async with serve(answers) as port:
        pieces, error = await read_all(pool, port, stream_timeout=60.0)
        assert watchdog._running            # it was started by the watched reads
        await trio.sleep(1.0)               # (more than one tick)
        assert not watchdog._running and not watchdog._reads
    assert pieces == [b"data: x\n\n"] and error is None


@pytest.mark.parametrize("stream_timeout", [0.5, WATCHED_MIN_TIMEOUT - 0.5])
async def test_a_short_timeout_keeps_its_own_cancel_scope(autojump_clock: Any, stream_timeout: float) -> None:
    async def stalls(stream: trio.SocketStream) -> None:
        await stream.send_all(HEAD + chunk(b"data: 1\n\n"))
        await trio.sleep_forever()

    pool = Http11Pool()
    pool.read_watchdog = ReadWatchdog(tick=100.0)   # would fire far too late if it were used
    async with serve(stalls) as port:
        started = trio.current_time()
        pieces, error = await read_all(pool, port, stream_timeout=stream_timeout)
        assert trio.current_time() - started == pytest.approx(stream_timeout)
    assert isinstance(error, Timeout)
    assert not pool.read_watchdog._running
