"""The logging sink on its own: bounded queue, isolation of callbacks, ordering, shutdown drain.

Virtual time (``autojump_clock``) wherever no thread is involved, so "abandoned at its time limit"
is asserted as an exact virtual time, not a tolerance.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from trioproxy.config import parse_config
from trioproxy.context import RequestContext
from trioproxy.core.pipeline import CHAT
from trioproxy.masking import SecretScrubber, mask_secret
from trioproxy.observability.callbacks import Callback
from trioproxy.observability.error_throttle import Admitted, ErrorThrottle
from trioproxy.observability.payload import PRE_API_CALL, LogEvent
from trioproxy.observability.sink import LoggingSink

KEY = "sk-unit-SECRET-0123456789abcdef"
scrubber = SecretScrubber([KEY])

CONFIG = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/gpt-4o"}}]},
                      "<test>", Path.cwd())
DEPLOYMENT = CONFIG.deployments[0]


def finished(n: int = 0, error: Exception | None = None) -> RequestContext:
    ctx = RequestContext(route=CHAT, request_headers={})
    ctx.data = {"model": "m", "messages": [{"role": "user", "content": f"request {n}"}], "metadata": {"n": n}}
    ctx.requested_model = "m"
    ctx.deployment = DEPLOYMENT
    ctx.upstream_body = {"model": "gpt-4o", "messages": ctx.data["messages"]}
    ctx.response = {"object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    ctx.usage = ctx.response["usage"]
    ctx.cost_source = "usage"
    ctx.status = 200 if error is None else 500
    ctx.error = error
    ctx.end = ctx.start
    return ctx


def success(n: int = 0) -> LogEvent:
    return LogEvent("success", finished(n))


class Recorder:
    """Async callbacks for every event; records (event type, request number, time)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, float]] = []

    def callbacks(self, *events: str, delay: float = 0.0) -> list[Callback]:
        async def fn(kwargs, response_obj=None, start_time=None, end_time=None):
            await trio.sleep(delay)
            self.seen.append((kwargs["log_event_type"], kwargs["litellm_params"]["metadata"]["n"],
                              trio.current_time()))

        async def pre(model, messages, kwargs):
            await fn(kwargs)

        return [Callback(f"rec.{e}", e, pre if e == PRE_API_CALL else fn, True,
                         "pre" if e == PRE_API_CALL else "event") for e in events]


async def test_full_queue_drops_the_oldest_counts_and_warns_once(caplog):
    recorder = Recorder()
    sink = LoggingSink(recorder.callbacks("successful_api_call"), queue_size=3)
    with caplog.at_level(logging.WARNING, logger="trioproxy.logging"):
        for n in range(6):
            sink.submit(success(n))          # no worker runs yet: the queue fills
    assert sink.dropped == 3 and sink.depth == 3
    warnings = [r for r in caplog.records if "logging queue full" in r.getMessage()]
    assert len(warnings) == 1                # rate-limited: one warning for the burst
    await sink.drain(5)
    assert sorted(n for _, n, _ in recorder.seen) == [3, 4, 5]   # the newest survive


async def test_raising_callback_is_logged_and_the_others_still_run(caplog):
    recorder = Recorder()

    def broken(kwargs, response_obj, start_time, end_time):
        raise RuntimeError("callback bug")

    errors: list[tuple[str, str]] = []
    callbacks = [Callback("bad.fn", "successful_api_call", broken, False, "event"),
                 *recorder.callbacks("successful_api_call")]
    sink = LoggingSink(callbacks, on_callback_error=lambda name, reason: errors.append((name, reason)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        sink.submit(success(1))
        await sink.drain(5)
        nursery.cancel_scope.cancel()
    assert [n for _, n, _ in recorder.seen] == [1]
    assert errors == [("bad.fn", "error")] and sink.callback_errors == 1
    # the traceback is formatted in a worker thread and logged as text (no exc_info left for the
    # log handler to format on the Trio thread)
    logged = [r.getMessage() for r in caplog.records if "bad.fn raised" in r.getMessage()]
    assert len(logged) == 1 and "Traceback" in logged[0] and "RuntimeError: callback bug" in logged[0]


async def test_hanging_callback_is_abandoned_at_its_time_limit(autojump_clock, caplog):
    recorder = Recorder()

    async def hangs(kwargs, response_obj, start_time, end_time):
        await trio.sleep_forever()

    errors: list[tuple[str, str]] = []
    callbacks = [Callback("slow.fn", "successful_api_call", hangs, True, "event"),
                 *recorder.callbacks("successful_api_call", delay=0.5)]
    sink = LoggingSink(callbacks, callback_timeout=2.0,
                       on_callback_error=lambda name, reason: errors.append((name, reason)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        t0 = trio.current_time()
        sink.submit(success(1))
        sink.submit(success(2))
        await sink.drain(30)
        done = trio.current_time() - t0
        nursery.cancel_scope.cancel()
    # the good callback is not held up by its hanging neighbour: both events at t = 0.5
    assert sorted((n, t - t0) for _, n, t in recorder.seen) == [(1, pytest.approx(0.5)), (2, pytest.approx(0.5))]
    # each hanging call was abandoned at exactly its 2 s limit (the two events ran in parallel)
    assert done == pytest.approx(2.0)
    assert errors == [("slow.fn", "timeout"), ("slow.fn", "timeout")]
    # both counted; logged once, the second one rate-limited and reported in the shutdown summary
    assert sum("did not finish" in r.getMessage() for r in caplog.records) == 1
    assert any("slow.fn: 1 more errors" in r.getMessage() for r in caplog.records)


async def test_events_of_one_request_are_delivered_in_order(autojump_clock):
    """A slow pre-call callback: the request's success event still comes after it."""
    seen: list[tuple[str, float]] = []

    async def pre(model, messages, kwargs):
        await trio.sleep(3)
        seen.append(("pre", trio.current_time()))

    async def ok(kwargs, response_obj, start_time, end_time):
        seen.append(("success", trio.current_time()))

    sink = LoggingSink([Callback("p", PRE_API_CALL, pre, True, "pre"),
                        Callback("s", "successful_api_call", ok, True, "event")])
    ctx = finished(7)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        t0 = trio.current_time()
        sink.submit(LogEvent(PRE_API_CALL, ctx, DEPLOYMENT, ctx.upstream_body, 1))
        sink.submit(LogEvent("success", ctx))
        await sink.drain(30)
        nursery.cancel_scope.cancel()
    assert [(kind, t - t0) for kind, t in seen] == [("pre", pytest.approx(3)), ("success", pytest.approx(3))]


async def test_sync_callbacks_run_in_worker_threads():
    threads: list[int] = []

    def sync_cb(kwargs, response_obj, start_time, end_time):
        threads.append(threading.get_ident())

    sink = LoggingSink([Callback("sync.fn", "successful_api_call", sync_cb, False, "event")])
    for n in range(3):
        sink.submit(success(n))
    await sink.drain(10)
    assert len(threads) == 3 and threading.get_ident() not in threads


async def test_drain_stops_at_its_deadline_and_reports_what_is_left(autojump_clock, caplog):
    async def slow(kwargs, response_obj, start_time, end_time):
        await trio.sleep(4)

    sink = LoggingSink([Callback("slow", "successful_api_call", slow, True, "event")],
                       workers=1, callback_timeout=60)
    for n in range(3):
        sink.submit(success(n))
    t0 = trio.current_time()
    await sink.drain(6)                      # one event takes 4 s, one worker: only 1 fits
    assert trio.current_time() - t0 == pytest.approx(6)
    assert sink.depth == 0 and sink.dropped == 2  # #1 cut off in delivery, #2 never started
    assert any("not delivered" in r.getMessage() for r in caplog.records)


async def test_submit_never_blocks_even_without_a_running_service():
    sink = LoggingSink([], queue_size=2)
    for n in range(1000):
        sink.submit(success(n))
    assert sink.depth == 2 and sink.dropped == 998


async def test_a_dropped_event_does_not_hold_up_the_next_event_of_its_request(autojump_clock):
    recorder = Recorder()
    sink = LoggingSink(recorder.callbacks(PRE_API_CALL, "successful_api_call"), queue_size=1)
    ctx = finished(3)
    sink.submit(LogEvent(PRE_API_CALL, ctx, DEPLOYMENT, ctx.upstream_body, 1))
    sink.submit(LogEvent("success", ctx))        # the queue is full: the pre event is dropped
    await sink.drain(5)
    assert [(kind, n) for kind, n, _ in recorder.seen] == [("successful_api_call", 3)]
    assert sink.dropped == 1


# -- the callback error rate limit, with an injected clock ------------------------------------------

def test_error_throttle_first_in_full_then_one_line_per_interval() -> None:
    now = [0.0]
    throttle = ErrorThrottle(60.0, clock=lambda: now[0])
    assert throttle.admit("cb") == Admitted(first=True, suppressed=0)
    assert throttle.admit("other") == Admitted(first=True, suppressed=0)     # per callback
    now[0] = 59.9
    assert [throttle.admit("cb") for _ in range(3)] == [None, None, None]
    now[0] = 60.0
    assert throttle.admit("cb") == Admitted(first=False, suppressed=3)
    now[0] = 100.0
    assert throttle.admit("cb") is None
    assert list(throttle.pending()) == [("cb", 1)] and list(throttle.pending()) == []
    assert ErrorThrottle(0.0, clock=lambda: 0.0).admit("cb") == Admitted(first=True, suppressed=0)


async def test_logging_sink_rate_limit(caplog: pytest.LogCaptureFixture) -> None:
    """A callback raising on each of 6 events at chosen clock readings: the first logged with its
    traceback, then one line per 60 s carrying the count; every error counted."""
    from test_logging_sink import success

    now = [0.0]

    def broken(kwargs: Any, response: Any, start: Any, end: Any) -> None:
        raise ValueError(f"callback bug {KEY}")

    errors: list[tuple[str, str]] = []
    sink = LoggingSink([Callback("bad.fn", "successful_api_call", broken, False, "event")],
                       scrubber=scrubber, clock=lambda: now[0],
                       on_callback_error=lambda name, reason: errors.append((name, reason)))
    caplog.set_level(logging.ERROR, logger="trioproxy.logging")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        for at in (0.0, 1.0, 30.0, 59.0, 61.0, 62.0):
            now[0] = at
            event: LogEvent = success()
            sink.submit(event)
            await event.done.wait()
        await sink.drain(5)
        nursery.cancel_scope.cancel()
    lines = [r.getMessage() for r in caplog.records if r.name == "trioproxy.logging"]
    assert len(errors) == 6 and sink.callback_errors == 6
    assert len(lines) == 3
    assert lines[0].startswith("logging callback bad.fn raised on successful_api_call")
    assert "Traceback (most recent call last)" in lines[0]
    assert f"ValueError: callback bug {mask_secret(KEY)}" in lines[0]
    assert lines[1].startswith("logging callback bad.fn raised again on successful_api_call")
    assert lines[1].endswith(f"ValueError: callback bug {mask_secret(KEY)} "
                             "(3 more errors not logged in the last 60 s)")
    assert "Traceback" not in lines[1]
    assert lines[2] == "logging callback bad.fn: 1 more errors since the last one logged"   # at shutdown
    assert not [line for line in lines if KEY in line]
    assert all(r.exc_info is None for r in caplog.records)     # nothing left to format on the Trio thread
