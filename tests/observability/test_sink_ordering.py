"""The logging sink's order and isolation (``observability/sink.py``): ordering across drops, hung sync callbacks, drain counts."""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing
from test_logging_sink import DEPLOYMENT, finished, success

from trioproxy.observability.callbacks import Callback
from trioproxy.observability.payload import PRE_API_CALL, LogEvent
from trioproxy.observability.sink import LoggingSink


async def test_a_dropped_event_does_not_let_its_successor_overtake_its_predecessor(autojump_clock):
    """pre#1 is being delivered (slow), pre#2 (a retry) is dropped from the full queue: success must
    still come after pre#1, not run next to it."""
    seen: list[tuple[str, int, float]] = []

    async def pre(model, messages, kwargs):
        await trio.sleep(3)
        seen.append(("pre", 0, trio.current_time()))

    async def ok(kwargs, response_obj, start_time, end_time):
        seen.append(("success", 0, trio.current_time()))

    sink = LoggingSink([Callback("p", PRE_API_CALL, pre, True, "pre"),
                        Callback("s", "successful_api_call", ok, True, "event")],
                       queue_size=1, workers=2)
    ctx = finished(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
        sink.submit(LogEvent(PRE_API_CALL, ctx, DEPLOYMENT, ctx.upstream_body, 1))
        await trio.testing.wait_all_tasks_blocked()       # a worker is delivering pre#1
        sink.submit(LogEvent(PRE_API_CALL, ctx, DEPLOYMENT, ctx.upstream_body, 2))
        sink.submit(LogEvent("success", ctx))             # full: pre#2 is dropped
        assert sink.dropped == 1
        await sink.drain(30)
        nursery.cancel_scope.cancel()
    assert [(kind, t - t0) for kind, _, t in seen] == [("pre", pytest.approx(3)), ("success", pytest.approx(3))]
    assert not sink._forward


async def test_a_chain_of_dropped_events_keeps_the_order_and_leaves_nothing_behind(autojump_clock):
    """Two requests, several events each dropped in a row; the survivors keep their order."""
    order: list[tuple[str, int]] = []

    async def pre(model, messages, kwargs):
        await trio.sleep(1)
        order.append(("pre", kwargs["litellm_params"]["metadata"]["n"]))

    async def ok(kwargs, response_obj, start_time, end_time):
        order.append(("success", kwargs["litellm_params"]["metadata"]["n"]))

    sink = LoggingSink([Callback("p", PRE_API_CALL, pre, True, "pre"),
                        Callback("s", "successful_api_call", ok, True, "event")],
                       queue_size=2, workers=4)
    a, b = finished(1), finished(2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        await trio.testing.wait_all_tasks_blocked()
        sink.submit(LogEvent(PRE_API_CALL, a, DEPLOYMENT, a.upstream_body, 1))
        await trio.testing.wait_all_tasks_blocked()       # a's pre#1 in delivery (1 s)
        for attempt in (2, 3, 4):
            sink.submit(LogEvent(PRE_API_CALL, a, DEPLOYMENT, a.upstream_body, attempt))
            sink.submit(LogEvent(PRE_API_CALL, b, DEPLOYMENT, b.upstream_body, attempt))
        sink.submit(LogEvent("success", a))
        sink.submit(LogEvent("success", b))
        await sink.drain(30)
        nursery.cancel_scope.cancel()
    assert ("pre", 1) in order and order.index(("pre", 1)) < order.index(("success", 1))
    assert ("success", 2) in order
    assert sink.dropped == 6
    assert not sink._forward


async def test_hung_sync_callbacks_do_not_stall_the_workers():
    """threads=1 and one sync callback hung in its thread: the token is kept by that thread (Python
    cannot kill it), but the proxy's own thread work (the token estimate) must not wait for it."""
    release = threading.Event()
    abandoned = trio.Event()
    second_delivered = trio.Event()

    def sync_cb(kwargs, response_obj, start_time, end_time):
        if kwargs["litellm_params"]["metadata"]["n"] == 1:
            release.wait(30)

    async def async_cb(kwargs, response_obj, start_time, end_time):
        if kwargs["litellm_params"]["metadata"]["n"] == 2:
            second_delivered.set()

    def on_error(name: str, reason: str) -> None:
        if (name, reason) == ("sync.hangs", "timeout"):
            abandoned.set()

    sink = LoggingSink([Callback("sync.hangs", "successful_api_call", sync_cb, False, "event"),
                        Callback("rec", "successful_api_call", async_cb, True, "event")],
                       threads=1, callback_timeout=0.2, on_callback_error=on_error)
    needs_estimate = finished(2)
    needs_estimate.usage = None
    needs_estimate.cost_source = None
    needs_estimate.response = {"object": "chat.completion",
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}]}
    assert sink.cost.needs_estimate(needs_estimate)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sink.run)
            sink.submit(success(1))
            with trio.fail_after(10):
                await abandoned.wait()               # the thread still runs, and holds the only token
            sink.submit(LogEvent("success", needs_estimate))
            with trio.fail_after(10):                 # without its own limiter: for ever (until release)
                await second_delivered.wait()
            assert needs_estimate.cost_source == "estimate"
            nursery.cancel_scope.cancel()
    finally:
        release.set()
