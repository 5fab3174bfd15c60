"""The race between moderation and the upstream, and every cancellation, in virtual time.

Each test runs the real pipeline (``tests/support/inprocess.py``) under pytest-trio's
``autojump_clock`` and asserts exact virtual times: when the client got its answer, when the
upstream request was abandoned, when the stream was closed.
"""

from __future__ import annotations

import httpx
import orjson
import pytest
import trio

from support.inprocess import (
    TimedModeration,
    Upstream,
    call,
    chat_body,
    collect,
    frame_json,
    make_pipeline,
)
from trioproxy.errors import ClientDisconnectedError
from trioproxy.streaming import frame


class FailureRecorder:
    def __init__(self) -> None:
        self.seen: list[BaseException] = []

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict,
                                           traceback_str=None):
        self.seen.append(original_exception)


async def test_moderation_rejection_cancels_the_upstream_at_once(autojump_clock):
    upstream = Upstream(delay=5.0)
    moderation = TimedModeration(0.05, reject=True)
    pipeline = make_pipeline([moderation], upstream=upstream)

    response = await call(pipeline, chat_body("hello world"))

    assert trio.current_time() == pytest.approx(0.05)
    assert response.status == 400
    assert orjson.loads(response.body)["error"]["message"] == "Violated content safety policy"
    assert upstream.cancelled_at == pytest.approx(0.05)   # the upstream request was abandoned then
    assert upstream.answered_at is None


async def test_upstream_first_waits_for_the_verdict(autojump_clock):
    upstream = Upstream(delay=0.05)
    moderation = TimedModeration(1.0, reject=False)
    pipeline = make_pipeline([moderation], upstream=upstream)

    response = await call(pipeline, chat_body())

    assert upstream.answered_at == pytest.approx(0.05)
    assert trio.current_time() == pytest.approx(1.0)      # released only when moderation passed
    assert response.status == 200
    assert orjson.loads(response.body)["choices"][0]["message"]["content"] == "Hello there."


async def test_upstream_failure_cancels_moderation(autojump_clock):
    upstream = Upstream(delay=0.05, status=500, error={"error": {"message": "boom"}})
    moderation = TimedModeration(5.0, reject=False)
    failures = FailureRecorder()
    pipeline = make_pipeline([moderation, failures], upstream=upstream, settings={"num_retries": 0})

    response = await call(pipeline, chat_body())

    assert trio.current_time() == pytest.approx(0.05)
    assert moderation.cancelled_at == pytest.approx(0.05)
    assert response.status == 500
    assert "boom" in orjson.loads(response.body)["error"]["message"]
    assert len(failures.seen) == 1


async def test_first_rejecting_moderation_wins_and_cancels_the_others(autojump_clock):
    slow = TimedModeration(3.0, reject=True)
    fast = TimedModeration(0.2, reject=True)
    pipeline = make_pipeline([slow, fast], upstream=Upstream(delay=5.0))

    response = await call(pipeline, chat_body())

    assert trio.current_time() == pytest.approx(0.2)
    assert response.status == 400
    assert slow.cancelled_at == pytest.approx(0.2)


async def test_streaming_rejection_closes_the_open_stream_before_any_chunk(autojump_clock):
    upstream = Upstream(delay=0.01)            # status line and headers at t = 0.01
    moderation = TimedModeration(0.05, reject=True)
    pipeline = make_pipeline([moderation], upstream=upstream)

    response = await call(pipeline, chat_body(stream=True))

    assert trio.current_time() == pytest.approx(0.05)
    assert response.status == 400               # decided before the status line: a JSON error
    assert upstream.sent_frames == 1            # only the first event, read within the routing attempt
    assert upstream.closed_at == pytest.approx(0.05)


async def test_streaming_no_chunk_before_the_verdict(autojump_clock):
    upstream = Upstream(delay=0.05)
    moderation = TimedModeration(1.0, reject=False)
    pipeline = make_pipeline([moderation], upstream=upstream)

    response = await call(pipeline, chat_body(stream=True))
    assert trio.current_time() == pytest.approx(1.0)
    # nothing sent before the verdict, and nothing read but the first event (read within the routing
    # attempt, so that a stream failing at once is retried or falls back: upstream/primed.py)
    assert moderation.finished_at == pytest.approx(1.0)
    assert [t for t in upstream.frame_times if t < moderation.finished_at] == [pytest.approx(0.05)]

    frames = await collect(response)
    contents = [frame_json(f) for f in frames]
    assert contents[-1] == "[DONE]"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in contents[:-1] if c["choices"])
    assert text == "Hello there."


class IteratorRecorder:
    def __init__(self) -> None:
        self.closed = False

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        try:
            async for item in response:
                yield item
        finally:
            self.closed = True


async def test_disconnect_mid_stream_closes_upstream_and_runs_failure_hooks_once(autojump_clock):
    upstream = Upstream(words=["a", "b", "c", "d", "e"], chunk_delay=1.0)
    failures = FailureRecorder()
    iterator = IteratorRecorder()
    pipeline = make_pipeline([iterator, failures], upstream=upstream)

    response = await call(pipeline, chat_body(stream=True))
    received = []
    with trio.move_on_after(2.5):              # the client hangs up at t = 2.5
        await collect(response, on_frame=received.append)

    assert trio.current_time() == pytest.approx(2.5)
    assert len(received) == 3                   # frames at t = 0, 1, 2
    assert upstream.closed_at == pytest.approx(2.5)
    assert iterator.closed
    assert len(failures.seen) == 1 and isinstance(failures.seen[0], ClientDisconnectedError)


async def test_disconnect_during_the_race_cancels_everything(autojump_clock):
    upstream = Upstream(delay=5.0)
    moderation = TimedModeration(3.0, reject=False)
    failures = FailureRecorder()
    pipeline = make_pipeline([moderation, failures], upstream=upstream)

    with trio.move_on_after(0.1):
        await call(pipeline, chat_body())

    assert upstream.cancelled_at == pytest.approx(0.1)
    assert moderation.cancelled_at == pytest.approx(0.1)
    assert len(failures.seen) == 1 and isinstance(failures.seen[0], ClientDisconnectedError)


class HangingPreCall:
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        await trio.sleep_forever()


async def test_hung_hook_times_out_into_a_failure(autojump_clock):
    failures = FailureRecorder()
    pipeline = make_pipeline([HangingPreCall(), failures], general={"hook_timeout_seconds": 2})

    response = await call(pipeline, chat_body())

    assert trio.current_time() == pytest.approx(2.0)
    error = orjson.loads(response.body)["error"]
    assert response.status == 500
    assert error["code"] == "hook_timeout"
    assert "handler0" in error["message"] and "async_pre_call_hook" in error["message"]
    assert len(failures.seen) == 1


class _GroupedStream(httpx.AsyncByteStream):
    """Yields pre-grouped byte pieces at given virtual times (one upstream read each)."""

    def __init__(self, pieces: list[tuple[float, bytes]]) -> None:
        self.pieces = pieces

    async def __aiter__(self):  # type: ignore[override]
        for at, piece in self.pieces:
            await trio.sleep_until(at)
            yield piece


async def test_a_chunk_is_not_held_back_by_a_hidden_usage_chunk_in_the_same_read(autojump_clock):
    # content + the usage chunk (which this client did not ask for) arrive together at t = 0;
    # [DONE] only at t = 1: the content must reach the client at t = 0
    content = frame({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "up-model",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]})
    usage = frame({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "up-model", "choices": [],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    upstream = Upstream()

    async def handle(request: httpx.Request) -> httpx.Response:
        upstream.requests.append(orjson.loads(request.content))
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=_GroupedStream([(0.0, content + usage), (1.0, b"data: [DONE]\n\n")]))

    upstream.handle = handle  # type: ignore[method-assign]
    pipeline = make_pipeline([], upstream=upstream)
    response = await call(pipeline, chat_body(stream=True))
    arrivals = []
    await collect(response, on_frame=lambda f: arrivals.append((trio.current_time(), f)))

    assert arrivals[0][0] == pytest.approx(0.0) and b'"hi"' in arrivals[0][1]
    assert b"usage" not in b"".join(f for _, f in arrivals)
    assert upstream.requests[0]["stream_options"] == {"include_usage": True}
