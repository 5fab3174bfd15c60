"""An admitted request's spend ticket is finished once and closed once on the way out of a stream,
even when closing what the stream opened overruns its cleanup deadline (``core/relay.py``
``StreamRelay._cleanup``), in virtual time.

The meter is an in-memory fake that counts ``finish`` and ``close`` (the real one's contract:
``spend/meter.py``); admission happens at the built-in pre-call step ``limits_and_budgets``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import trio
from test_request_outcomes import Failures, Outcomes, disconnect_at

from support.inprocess import Upstream, call, chat_body, collect, make_pipeline
from trioproxy import HTTPException
from trioproxy.core.run import CLEANUP_DEADLINE
from trioproxy.errors import ClientDisconnectedError
from trioproxy.hooks.steps import LimitsAndBudgets


class CountingTicket:
    def __init__(self) -> None:
        self.finished = 0
        self.closed = 0

    def finish(self, ctx: Any) -> None:
        self.finished += 1

    async def close(self, ctx: Any) -> None:
        if not self.finished:
            self.finish(ctx)
        self.closed += 1
        await trio.lowlevel.checkpoint()

    def headers(self) -> dict[str, str]:
        return {}


class CountingMeter:
    def __init__(self) -> None:
        self.tickets: list[CountingTicket] = []

    async def admit(self, ctx: Any, peer: str | None) -> CountingTicket:
        await trio.lowlevel.checkpoint()
        ticket = CountingTicket()
        self.tickets.append(ticket)
        return ticket


class SlowToCloseIterator:
    """An iterator hook whose generator takes longer than the cleanup deadline to close
    (a user's hook flushing something slow in its ``finally``)."""

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        try:
            async for item in response:
                yield item
        finally:
            await trio.sleep(CLEANUP_DEADLINE * 2)


class SlowSecondChunk:
    """A per-chunk hook that is slow on the second chunk: the client leaves while it runs, with the
    iterator hook's generator suspended at its ``yield`` (so it is closed by the cleanup)."""

    def __init__(self) -> None:
        self.seen = 0

    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        self.seen += 1
        if self.seen == 2:
            await trio.sleep(60)
        return response


async def test_a_slow_closing_iterator_hook_does_not_skip_the_outcome_or_the_spend_close(autojump_clock):
    outcomes, failures, meter = Outcomes(), Failures(), CountingMeter()
    upstream = Upstream(words=["a", "b", "c", "d", "e"], chunk_delay=1.0)
    pipeline = make_pipeline([LimitsAndBudgets(), SlowToCloseIterator(), SlowSecondChunk(), failures], upstream=upstream,
                             observers=[outcomes])
    pipeline.rules = dataclasses.replace(pipeline.rules, meter=meter)

    # the client leaves at t = 2.5, during the per-chunk hook's sleep on the second chunk
    frames, propagated = await disconnect_at(2.5, pipeline, chat_body(stream=True))

    assert propagated and frames
    [ticket] = meter.tickets
    assert (ticket.finished, ticket.closed) == (1, 1)
    assert outcomes.events == [("failure", "ClientDisconnectedError")]
    assert len(failures.seen) == 1
    assert upstream.closed_at is not None


# -- the other ways out: each finishes the ticket once and closes it once ------------------------------


class RefusesAfterAdmission:
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        raise HTTPException(status_code=403, detail="refused after admission")


class SlowAfterAdmission:
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        await trio.sleep(60)


def metered(handlers: list[Any], **kwargs: Any) -> tuple[Any, CountingMeter, Outcomes]:
    outcomes, meter = Outcomes(), CountingMeter()
    pipeline = make_pipeline([LimitsAndBudgets(), *handlers], observers=[outcomes], **kwargs)
    pipeline.rules = dataclasses.replace(pipeline.rules, meter=meter)
    return pipeline, meter, outcomes


def counts(meter: CountingMeter) -> tuple[int, int]:
    [ticket] = meter.tickets
    return ticket.finished, ticket.closed


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_finishes_and_closes_once(autojump_clock, stream):
    pipeline, meter, outcomes = metered([])
    frames = await collect(await call(pipeline, chat_body(stream=stream)))
    assert b"Hello" in b"".join(frames)
    assert counts(meter) == (1, 1) and outcomes.events == [("success", 200)]


async def test_an_upstream_error_finishes_and_closes_once(autojump_clock):
    pipeline, meter, outcomes = metered([], upstream=Upstream(status=500))
    response = await call(pipeline, chat_body())
    assert response.status >= 500
    assert counts(meter) == (1, 1) and len(outcomes.events) == 1


async def test_a_hook_refusal_after_admission_finishes_and_closes_once(autojump_clock):
    pipeline, meter, outcomes = metered([RefusesAfterAdmission()])
    response = await call(pipeline, chat_body())
    assert response.status == 403
    assert counts(meter) == (1, 1) and len(outcomes.events) == 1


async def test_a_graceful_shutdown_503_finishes_and_closes_once(autojump_clock):
    pipeline, meter, outcomes = metered([SlowAfterAdmission()])
    async with trio.open_nursery() as nursery:
        async def stop_soon() -> None:
            await trio.sleep(1)
            pipeline.stop_streams()
        nursery.start_soon(stop_soon)
        response = await call(pipeline, chat_body())
    assert response.status == 503
    assert counts(meter) == (1, 1) and outcomes.events == [("failure", "ShuttingDownError")]


async def test_a_stream_stopped_by_shutdown_finishes_and_closes_once(autojump_clock):
    pipeline, meter, outcomes = metered([], upstream=Upstream(words=["a", "b", "c", "d"], chunk_delay=1.0))
    response = await call(pipeline, chat_body(stream=True))

    def stop(frame: bytes) -> None:
        pipeline.stop_streams()

    frames = await collect(response, on_frame=stop)
    assert b"shutdown" in frames[-1]
    assert counts(meter) == (1, 1) and outcomes.events == [("failure", "ShuttingDownError")]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_disconnect_before_the_answer_finishes_and_closes_once(autojump_clock, stream):
    pipeline, meter, outcomes = metered([SlowAfterAdmission()])
    _, propagated = await disconnect_at(1.0, pipeline, chat_body(stream=stream))
    assert propagated
    assert counts(meter) == (1, 1) and outcomes.events == [("failure", "ClientDisconnectedError")]


# -- a close that raises (a limiter's bug) does not turn an answer into a 500 ---------------------------


class BrokenCloseTicket(CountingTicket):
    async def close(self, ctx: Any) -> None:
        await super().close(ctx)
        raise RuntimeError("limiter bug")


class BrokenCloseMeter(CountingMeter):
    async def admit(self, ctx: Any, peer: str | None) -> CountingTicket:
        await trio.lowlevel.checkpoint()
        ticket = BrokenCloseTicket()
        self.tickets.append(ticket)
        return ticket


@pytest.mark.parametrize("stream", [False, True])
async def test_a_close_that_raises_keeps_the_answer(autojump_clock, stream):
    pipeline, meter, outcomes = metered([])
    meter = BrokenCloseMeter()
    pipeline.rules = dataclasses.replace(pipeline.rules, meter=meter)
    response = await call(pipeline, chat_body(stream=stream))
    frames = await collect(response)
    assert response.status == 200 and b"Hello" in b"".join(frames)
    assert counts(meter) == (1, 1) and outcomes.events == [("success", 200)]


# -- a disconnect while the upstream call fans out (a nursery: providers/provider.py ``_fetch_all``) ---


async def test_a_disconnect_during_a_fanned_out_upstream_call_reports_one_outcome(autojump_clock, monkeypatch):
    failures = Failures()
    pipeline, meter, outcomes = metered([failures])

    async def fanned_out(*args: Any, **kwargs: Any) -> Any:
        # what _fetch_all does: several requests in one nursery; cancelled from outside, the nursery
        # raises a group of Cancelled (re-raised as is when no ProxyError is among them)
        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(trio.sleep, 60)
        raise AssertionError("not reached")

    monkeypatch.setattr(pipeline.router, "send", fanned_out)
    _, propagated = await disconnect_at(1.0, pipeline, chat_body())

    assert propagated
    assert len(failures.seen) == 1 and isinstance(failures.seen[0], ClientDisconnectedError)
    assert outcomes.events == [("failure", "ClientDisconnectedError")]
    assert counts(meter) == (1, 1)
