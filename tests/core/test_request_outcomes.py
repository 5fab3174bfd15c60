"""Every request ends exactly once, whatever happens when (``core/pipeline.py``, ``core/run.py``), in virtual time.

Every test drives the real pipeline through the in-process harness (``support/inprocess.py``) under
pytest-trio's ``autojump_clock``. A client disconnect is modelled the way the ASGI adapter produces
it: the scope around the request is cancelled (``trio.move_on_after``), and a streaming body is
closed with ``StreamRelay.aclose()`` on the way out.

Several tests here first demonstrated defects (as strict xfails) that have since been fixed: an
upstream stream left open by a disconnect during the race, failure hooks cut short by a disconnect,
an outcome lost when the client left during the failure path, error precedence left to Trio's
scheduler, unnamed iterator-hook crashes, an un-awaited iterator coroutine, and a stream's end held
back while the upstream body was drained. They now guard against regressions.
"""

from __future__ import annotations

import gc
import random
import warnings
from typing import Any

import httpx
import orjson
import pytest
import trio

from support.inprocess import TimedModeration as Moderation
from support.inprocess import (
    Upstream,
    call,
    chat_body,
    collect,
    frame_json,
    make_pipeline,
    sse_chunks,
)
from trioproxy import HTTPException
from trioproxy.config import GuardrailSpec
from trioproxy.core.pipeline import StreamRelay
from trioproxy.errors import BadRequestError, ClientDisconnectedError

# -- recording handlers ------------------------------------------------------------------------------


class Outcomes:
    """An observer: records every outcome it is told about."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.statuses: list[int] = []

    def on_upstream_request(self, ctx: Any) -> None:
        pass

    def on_success(self, ctx: Any) -> None:
        self.events.append(("success", ctx.status))

    def on_failure(self, ctx: Any) -> None:
        self.events.append(("failure", type(ctx.error).__name__))
        self.statuses.append(ctx.status)


class Failures:
    """A failure hook that records every call; optionally slow (to be interrupted)."""

    def __init__(self, seconds: float = 0.0, replace_with: HTTPException | None = None) -> None:
        self.seconds, self.replace_with = seconds, replace_with
        self.seen: list[BaseException] = []
        self.completed = 0

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict,
                                           traceback_str=None):
        self.seen.append(original_exception)
        if self.seconds:
            await trio.sleep(self.seconds)
        self.completed += 1
        if self.replace_with is not None:
            raise self.replace_with


class Headers:
    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.calls = 0

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers):
        self.calls += 1
        if self.seconds:
            await trio.sleep(self.seconds)
        return {"x-review": "1"}


class SlowPreCall:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        await trio.sleep(self.seconds)


class PassThroughIterator:
    """An iterator hook that records being closed; optionally raises after ``raise_after`` items."""

    def __init__(self, raise_after: int | None = None) -> None:
        self.raise_after = raise_after
        self.closed = False
        self.items = 0

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        try:
            async for item in response:
                if self.raise_after is not None and self.items >= self.raise_after:
                    raise ValueError("iterator hook broke")
                self.items += 1
                yield item
        finally:
            self.closed = True


class ChunkHookRaises:
    def __init__(self, on_chunk: int) -> None:
        self.on_chunk, self.seen = on_chunk, 0

    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        self.seen += 1
        if self.seen == self.on_chunk:
            raise HTTPException(status_code=422, detail="chunk hook refused")
        return None


class SlowSuccess:
    def __init__(self, seconds: float = 0.0, reject: bool = False) -> None:
        self.seconds, self.reject = seconds, reject

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        await trio.sleep(self.seconds)
        if self.reject:
            raise HTTPException(status_code=400, detail="post-call says no")


def observed(handlers: list[Any], **kwargs: Any) -> tuple[Any, Outcomes]:
    outcomes = Outcomes()
    pipeline = make_pipeline(handlers, observers=[outcomes], **kwargs)
    return pipeline, outcomes


async def disconnect_at(seconds: float, pipeline: Any, body: bytes, *, consume: bool = True) -> tuple[list[bytes], bool]:
    """Run one request as the ASGI adapter does, the client hanging up at ``seconds``.

    Returns the frames the client received and whether the cancellation reached the caller (it must:
    ``Cancelled`` is never swallowed).
    """
    frames: list[bytes] = []
    relay: StreamRelay | None = None
    try:
        with trio.move_on_after(seconds) as scope:
            response = await call(pipeline, body)
            if isinstance(response.body, StreamRelay):
                relay = response.body
                if consume:
                    async for frame in relay:
                        frames.append(frame)
            else:
                frames.append(response.body)
            await trio.sleep_forever()   # the client is slow to hang up; the cut is at ``seconds``
    finally:
        if relay is not None:
            await relay.aclose()
    return frames, scope.cancelled_caught


# -- 1. exactly one outcome per request, disconnect at any point ---------------------------------------


async def test_disconnect_during_pre_call_runs_failure_hooks_once_and_reports_once(autojump_clock):
    failures = Failures()
    pipeline, outcomes = observed([SlowPreCall(10.0), failures])

    _, propagated = await disconnect_at(1.0, pipeline, chat_body())

    assert propagated
    assert len(failures.seen) == 1 and isinstance(failures.seen[0], ClientDisconnectedError)
    assert outcomes.events == [("failure", "ClientDisconnectedError")]
    assert pipeline.test_upstream.requests == []


async def test_disconnect_between_race_and_first_chunk_closes_the_stream(autojump_clock):
    # the client leaves while the headers hook runs (after the upstream stream is open)
    upstream = Upstream(delay=0.1)
    failures, headers = Failures(), Headers(seconds=5.0)
    pipeline, outcomes = observed([headers, failures], upstream=upstream)

    _, propagated = await disconnect_at(1.0, pipeline, chat_body(stream=True))

    assert propagated
    assert upstream.answered_at == pytest.approx(0.1)
    assert upstream.closed_at == pytest.approx(1.0)
    assert headers.calls == 1
    assert len(failures.seen) == 1 and isinstance(failures.seen[0], ClientDisconnectedError)
    assert outcomes.events == [("failure", "ClientDisconnectedError")]


async def test_disconnect_after_status_line_before_first_pull_closes_the_stream(autojump_clock):
    upstream = Upstream(delay=0.1)
    failures = Failures()
    iterator = PassThroughIterator()
    pipeline, outcomes = observed([iterator, failures], upstream=upstream)

    frames, propagated = await disconnect_at(1.0, pipeline, chat_body(stream=True), consume=False)

    assert propagated and frames == []
    assert upstream.closed_at == pytest.approx(1.0)
    assert len(failures.seen) == 1 and isinstance(failures.seen[0], ClientDisconnectedError)
    assert outcomes.events == [("failure", "ClientDisconnectedError")]


async def test_disconnect_mid_stream_reports_once_and_closes_everything(autojump_clock):
    upstream = Upstream(words=["a", "b", "c", "d", "e"], chunk_delay=1.0)
    failures, headers, iterator = Failures(), Headers(), PassThroughIterator()
    pipeline, outcomes = observed([iterator, headers, failures], upstream=upstream)

    frames, propagated = await disconnect_at(2.5, pipeline, chat_body(stream=True))

    assert propagated and len(frames) == 3
    assert upstream.closed_at == pytest.approx(2.5)
    assert iterator.closed
    assert headers.calls == 1
    assert len(failures.seen) == 1 and isinstance(failures.seen[0], ClientDisconnectedError)
    assert outcomes.events == [("failure", "ClientDisconnectedError")]


async def test_disconnect_during_streaming_post_call_runs_failure_hooks_once(autojump_clock):
    upstream = Upstream()
    failures, iterator = Failures(), PassThroughIterator()
    pipeline, outcomes = observed([iterator, SlowSuccess(seconds=10.0), failures], upstream=upstream)

    frames, propagated = await disconnect_at(1.0, pipeline, chat_body(stream=True))

    assert propagated
    assert b"[DONE]" not in b"".join(frames)
    assert upstream.closed_at == pytest.approx(1.0)
    assert iterator.closed
    assert len(failures.seen) == 1 and isinstance(failures.seen[0], ClientDisconnectedError)
    assert outcomes.events == [("failure", "ClientDisconnectedError")]


async def test_disconnect_during_race_after_stream_opened_closes_the_stream(autojump_clock):
    upstream = Upstream(delay=0.1)                 # status line and headers at t = 0.1
    moderation = Moderation(5.0)                   # verdict pending until t = 5
    failures = Failures()
    pipeline, outcomes = observed([moderation, failures], upstream=upstream)

    _, propagated = await disconnect_at(1.0, pipeline, chat_body(stream=True))

    assert propagated
    assert moderation.cancelled_at == pytest.approx(1.0)
    assert len(failures.seen) == 1 and outcomes.events == [("failure", "ClientDisconnectedError")]
    assert upstream.closed_at == pytest.approx(1.0)     # fails: None, the stream (a pool slot) leaks


async def test_disconnect_during_failure_hooks_still_reports_one_outcome(autojump_clock):
    upstream = Upstream(status=500, error={"error": {"message": "boom"}})
    pipeline, outcomes = observed([Failures(seconds=5.0)], upstream=upstream,
                                  settings={"num_retries": 0})

    _, propagated = await disconnect_at(1.0, pipeline, chat_body())

    assert propagated
    assert len(outcomes.events) == 1            # fails: [] (no on_success, no on_failure)


async def test_disconnect_during_failure_hooks_still_runs_every_failure_hook(autojump_clock):
    upstream = Upstream(status=500, error={"error": {"message": "boom"}})
    slow, after = Failures(seconds=2.0), Failures()
    pipeline, _ = observed([slow, after], upstream=upstream, settings={"num_retries": 0})

    await disconnect_at(1.0, pipeline, chat_body())

    assert slow.completed == 1                 # fails: cancelled half-way
    assert len(after.seen) == 1                # fails: never called


async def test_disconnect_during_failure_hooks_mid_stream_still_runs_every_failure_hook(autojump_clock):
    upstream = Upstream(words=["a", "b", "c"])
    slow, after = Failures(seconds=2.0), Failures()
    pipeline, outcomes = observed([ChunkHookRaises(on_chunk=2), slow, after], upstream=upstream)

    await disconnect_at(1.0, pipeline, chat_body(stream=True))

    assert len(outcomes.events) == 1           # passes: _cleanup reports the disconnect
    assert len(after.seen) == 1                # fails: never called


# -- 2. Cancelled never swallowed, no group escapes, nothing outlives its request -----------------------


async def test_iterator_hook_raising_ends_stream_with_one_error_event_and_closes_everything(autojump_clock):
    upstream = Upstream(words=["a", "b", "c", "d"], chunk_delay=1.0)
    outer, broken = PassThroughIterator(), PassThroughIterator(raise_after=2)
    failures = Failures()
    # config order: ``broken`` wraps the source, ``outer`` wraps ``broken``
    pipeline, outcomes = observed([broken, outer, failures], upstream=upstream)

    response = await call(pipeline, chat_body(stream=True))
    frames = await collect(response)

    assert response.status == 200
    assert len(frames) == 3                    # two chunks, then the terminal error event
    assert "error" in frame_json(frames[-1])
    assert all(frame_json(f) != "[DONE]" for f in frames)
    assert broken.closed and outer.closed
    assert upstream.closed_at == pytest.approx(2.0)   # closed the moment the hook broke
    assert len(failures.seen) == 1
    assert outcomes.events == [("failure", "HookCrashedError")]   # names the iterator hook


async def test_iterator_hook_crash_names_the_handler_and_failure_hooks_see_the_original(autojump_clock):
    failures = Failures()
    pipeline, _ = observed([PassThroughIterator(raise_after=1), failures], upstream=Upstream())

    frames = await collect(await call(pipeline, chat_body(stream=True)))

    error = frame_json(frames[-1])["error"]
    assert isinstance(failures.seen[0], ValueError)
    assert error["code"] == "hook_error" and "handler0" in error["message"]


async def test_per_chunk_hook_raising_is_one_terminal_event_replaced_by_failure_hook(autojump_clock):
    upstream = Upstream(words=["a", "b", "c", "d"], chunk_delay=1.0)
    iterator = PassThroughIterator()
    failures = Failures(replace_with=HTTPException(status_code=451, detail="replaced by failure hook"))
    pipeline, outcomes = observed([iterator, ChunkHookRaises(on_chunk=3), failures], upstream=upstream)

    response = await call(pipeline, chat_body(stream=True))
    frames = await collect(response)

    assert response.status == 200              # the status line was already sent
    assert len(frames) == 3                    # chunks 1 and 2, then one error event, no [DONE]
    error = frame_json(frames[-1])["error"]
    assert error["message"] == "replaced by failure hook"
    assert all(frame_json(f) != "[DONE]" for f in frames)
    assert iterator.closed
    assert upstream.closed_at == pytest.approx(2.0)
    assert len(failures.seen) == 1
    assert len(outcomes.events) == 1 and outcomes.statuses == [451]   # the replaced error is reported


async def test_streaming_post_call_rejection_with_buffering_guardrail_releases_nothing(autojump_clock):
    upstream = Upstream(words=["a", "b", "c"])
    spec = GuardrailSpec(name="buffered", class_path="x.Y", modes=["post_call"], default_on=True,
                         stream_mode="buffer", params={})
    guard = SlowSuccess(reject=True)
    failures = Failures()
    iterator = PassThroughIterator()
    pipeline, outcomes = observed([iterator, failures], upstream=upstream, guardrails=[(spec, guard)])

    response = await call(pipeline, chat_body(stream=True))
    frames = await collect(response)

    assert len(frames) == 1                    # nothing held back was released: only the error
    assert frame_json(frames[0])["error"]["message"] == "post-call says no"
    assert upstream.closed_at is not None and iterator.closed
    assert len(failures.seen) == 1 and len(outcomes.events) == 1


async def test_moderation_and_upstream_failing_together_give_one_error_and_no_group(autojump_clock):
    upstream = Upstream(delay=1.0, status=500, error={"error": {"message": "boom"}})
    failures = Failures()
    pipeline, outcomes = observed([Moderation(1.0, reject=True), failures], upstream=upstream,
                                  settings={"num_retries": 0})

    response = await call(pipeline, chat_body())   # a group escaping would raise here

    assert trio.current_time() == pytest.approx(1.0)
    assert response.status in (400, 500)
    assert len(failures.seen) == 1 and len(outcomes.events) == 1


def _seeded_scheduler(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Make Trio's scheduling order a pure function of ``seed`` (what its Hypothesis plugin does).

    Trio deliberately randomises the order in which tasks woken in the same batch run (and breaks
    deadline ties by ``id()``). With deterministic scheduling on, each batch is sorted by task
    creation and then shuffled by ``_r``: one seed, one interleaving, every run.
    """
    monkeypatch.setattr(trio._core._run, "_ALLOW_DETERMINISTIC_SCHEDULING", True)
    monkeypatch.setattr(trio._core._run, "_r", random.Random(seed))


async def test_simultaneous_moderation_rejections_resolve_in_config_order(autojump_clock, monkeypatch):
    statuses = []
    for seed in range(8):
        _seeded_scheduler(monkeypatch, seed)
        first, second = Moderation(1.0, reject=True, status=403), Moderation(1.0, reject=True, status=422)
        pipeline = make_pipeline([first, second], upstream=Upstream(delay=5.0))
        statuses.append((await call(pipeline, chat_body())).status)
    assert set(statuses) == {403}, statuses    # fails: both 403 and 422 occur


async def test_simultaneous_moderation_and_upstream_errors_have_a_fixed_precedence(autojump_clock, monkeypatch):
    statuses = []
    for seed in range(8):
        _seeded_scheduler(monkeypatch, seed)
        upstream = Upstream(delay=1.0, status=500, error={"error": {"message": "boom"}})
        pipeline = make_pipeline([Moderation(1.0, reject=True)], upstream=upstream, settings={"num_retries": 0})
        statuses.append((await call(pipeline, chat_body())).status)
    assert len(set(statuses)) == 1, statuses   # fails: [400, 500, 500, 500, 400, 400, ...]


class ReturnsIterator:
    """An ``async def`` iterator hook that returns an iterator instead of yielding (supported)."""

    def __init__(self) -> None:
        self.ran = False

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        self.ran = True
        return response


class BreaksAtOnce:
    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        raise ValueError("broken before pulling anything")
        yield  # pragma: no cover


async def test_unstarted_returning_iterator_hook_is_closed_cleanly(autojump_clock):
    inner = ReturnsIterator()
    pipeline, outcomes = observed([inner, BreaksAtOnce()], upstream=Upstream())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frames = await collect(await call(pipeline, chat_body(stream=True)))
        gc.collect()

    assert "error" in frame_json(frames[-1]) and len(outcomes.events) == 1
    never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert never_awaited == []                 # fails: the hook's coroutine leaked


# -- 3. moderation rejection cancels the upstream; no byte before the verdict ---------------------------


async def test_streaming_rejection_after_stream_opened_closes_it_and_sends_nothing(autojump_clock):
    upstream = Upstream(delay=0.1, first_chunk_delay=0.0)
    moderation = Moderation(1.0, reject=True)
    failures = Failures()
    pipeline, outcomes = observed([moderation, failures], upstream=upstream)

    response = await call(pipeline, chat_body(stream=True))

    assert not isinstance(response.body, StreamRelay)     # decided before the status line
    assert response.status == 400
    # only the first event was read (within the routing attempt); nothing was sent
    assert upstream.sent_frames == 1 and upstream.closed_at == pytest.approx(1.0)
    assert len(failures.seen) == 1 and len(outcomes.events) == 1


async def test_rejection_while_upstream_opening_abandons_the_request(autojump_clock):
    upstream = Upstream(delay=5.0)
    pipeline, outcomes = observed([Moderation(1.0, reject=True)], upstream=upstream)

    response = await call(pipeline, chat_body(stream=True))

    assert response.status == 400
    assert upstream.cancelled_at == pytest.approx(1.0) and upstream.answered_at is None
    assert len(outcomes.events) == 1 and outcomes.statuses == [400]


# -- 4. errors after the first byte: one terminal SSE error event -----------------------------------------


class _ErrorMidStream(httpx.AsyncByteStream):
    def __init__(self, owner: Any) -> None:
        self.owner = owner

    async def __aiter__(self):  # type: ignore[override]
        frames = sse_chunks(["a", "b"])[:2]
        for frame in frames:
            await trio.sleep(1.0)
            yield frame
        await trio.sleep(1.0)
        yield b'data: {"error": {"message": "upstream overloaded"}}\n\n'
        await trio.sleep_forever()

    async def aclose(self) -> None:
        self.owner.closed_at = trio.current_time()


class ErrorMidStreamUpstream(Upstream):
    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(orjson.loads(request.content))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_ErrorMidStream(self))


async def test_upstream_error_mid_stream_is_one_terminal_event_after_failure_hooks(autojump_clock):
    upstream = ErrorMidStreamUpstream()
    failures = Failures(replace_with=HTTPException(status_code=503, detail="try again later"))
    headers = Headers()
    pipeline, outcomes = observed([headers, failures], upstream=upstream)

    response = await call(pipeline, chat_body(stream=True))
    frames = await collect(response)

    assert response.status == 200
    assert len(frames) == 3
    assert frame_json(frames[-1])["error"]["message"] == "try again later"
    assert "upstream overloaded" in str(failures.seen[0])
    assert upstream.closed_at == pytest.approx(3.0)
    assert headers.calls == 1 and len(outcomes.events) == 1


# -- hot path: the end of a stream -------------------------------------------------------------------------


class _LingeringAfterDone(httpx.AsyncByteStream):
    """An upstream that sends ``[DONE]`` at t = 0 but ends its body only at t = 3."""

    async def __aiter__(self):  # type: ignore[override]
        for frame in sse_chunks(["a"]):
            yield frame
        await trio.sleep(3.0)

    async def aclose(self) -> None:
        pass


class LingeringUpstream(Upstream):
    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(orjson.loads(request.content))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_LingeringAfterDone())


async def test_response_ends_when_done_is_sent(autojump_clock):
    pipeline = make_pipeline([], upstream=LingeringUpstream())
    response = await call(pipeline, chat_body(stream=True))
    done_at = None

    def mark(frame: bytes) -> None:
        nonlocal done_at
        if frame == b"data: [DONE]\n\n":
            done_at = trio.current_time()

    relay = response.body
    async for frame in relay:
        mark(frame)
    ended_at = trio.current_time()   # the HTTP layer sends the response's end here
    await relay.aclose()             # and only then releases the upstream (reading its rest)

    assert done_at == pytest.approx(0.0)
    assert ended_at == pytest.approx(done_at)


# -- failure hooks and bad hook results -------------------------------------------------------------

async def test_failure_hooks_get_a_scrubbed_traceback() -> None:
    """``traceback_str`` handed to failure hooks was the raw traceback: a key in it reached the hook."""
    seen: dict[str, Any] = {}

    class Leaky:
        async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
            raise RuntimeError("upstream refused key sk-upstream-secret-000000")

    class Recorder:
        async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                               user_api_key_dict: Any, traceback_str: str) -> None:
            seen["traceback"] = traceback_str

    response = await call(make_pipeline([Leaky(), Recorder()]), chat_body())
    assert response.status == 500
    assert "RuntimeError" in seen["traceback"]
    assert "sk-upstream-secret-000000" not in seen["traceback"]


async def test_the_failure_hooks_traceback_is_formatted_in_a_worker_thread(monkeypatch: Any) -> None:
    """Formatting a traceback reads source files and walks every frame of its chain: it ran on the
    event loop, once per failed request with a failure hook."""
    import threading

    from trioproxy.core import run as run_module

    threads: list[str] = []
    real = run_module._scrubbed_traceback

    def recording(scrubber: Any, error: BaseException) -> str:
        threads.append(threading.current_thread().name)
        return real(scrubber, error)

    monkeypatch.setattr(run_module, "_scrubbed_traceback", recording)
    failures = Failures()

    class Refuses:
        async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
            raise RuntimeError("no")

    response = await call(make_pipeline([Refuses(), failures], traceback_in_thread=True), chat_body())
    assert response.status == 500 and len(failures.seen) == 1
    assert len(threads) == 1 and threads[0] != threading.main_thread().name, threads


async def test_an_error_with_a_non_string_message_is_answered_and_reported() -> None:
    """``BadRequestError(12345)`` from a hook crashed the pipeline (TypeError in the scrubber): the
    client got a generic 500 and no failure was reported to the observers (logging, metrics)."""
    failed: list[Any] = []

    class Rejects:
        async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
            raise BadRequestError(12345)

    class Observer:
        def on_upstream_request(self, ctx: Any) -> None: ...
        def on_success(self, ctx: Any) -> None: ...
        def on_failure(self, ctx: Any) -> None:
            failed.append(ctx)

    pipeline = make_pipeline([Rejects()], observers=[Observer()])
    response = await call(pipeline, chat_body())
    assert response.status == 400
    assert orjson.loads(response.body)["error"]["message"] == "12345"
    assert len(failed) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_a_header_the_http_layer_cannot_send_is_skipped(stream: bool) -> None:
    """A headers hook returning ``{"x-price": "5 €"}`` reached ``asgi.py``'s latin-1 encoding (or
    h11's validation) and turned a successful request into a 500; the hook table says a
    misbehaving headers hook is logged and the other headers are kept."""

    class Headers:
        async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any,
                                                        response: Any, request_headers: dict) -> dict:
            return {"x-price": "5 €", "bad name": "x", "x-nul": "a\x00b", "x-good": "yes", "x-latin": "café"}

    response = await call(make_pipeline([Headers()]), chat_body(stream=stream))
    assert response.status == 200
    assert response.headers["x-good"] == "yes" and response.headers["x-latin"] == "café"
    assert not {"x-price", "bad name", "x-nul"} & set(response.headers)
    for name, value in response.headers.items():     # what asgi.py does with them
        name.encode("latin-1"), value.encode("latin-1")
    await collect(response)
