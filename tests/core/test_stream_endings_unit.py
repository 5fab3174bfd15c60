"""Stream endings in-process: the SSE parser's bounds, the envelope mapping, and the relay's stop rules
(``max_stream_duration``, ``Pipeline.stop_streams``, a body without ``[DONE]``) in virtual time.

The end-to-end versions, through a real ``trioproxy run``, are in ``e2e/test_stream_endings.py``;
these pin the exact moments (virtual time) and the httpx transport's path.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
import trio

from support.inprocess import (
    Upstream,
    call,
    chat_body,
    collect,
    frame_json,
    make_pipeline,
    sse_chunks,
)
from trioproxy.errors import ResponseTooLargeError, ShuttingDownError, StreamDurationExceededError
from trioproxy.streaming import SSEParser
from trioproxy.upstream.errors import envelope_status

# -- SSEParser ----------------------------------------------------------------------------------------------

EVENTS = (b'data: {"a": 1}\n\n'
          b'event: message\ndata: {"b":\ndata: 2}\n\n'
          b': a comment only\n\n'
          b'data: [DONE]\n\n')
EXPECTED = [b'{"a": 1}', b'{"b":\n2}', b"[DONE]"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(EVENTS)])
def test_parser_gives_the_same_events_however_the_bytes_are_cut(size: int) -> None:
    for text in (EVENTS, EVENTS.replace(b"\n", b"\r\n")):
        parser = SSEParser()
        events = []
        for start in range(0, len(text), size):
            events += parser.feed(text[start:start + size])
        assert events == EXPECTED
        assert parser.flush() == []
        assert parser.buffered == 0


def test_parser_flush_returns_an_unterminated_last_event() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a": 1}\n\ndata: {"tail"') == [b'{"a": 1}']
    assert parser.flush() == [b'{"tail"']


def test_parser_never_holds_more_than_its_bound() -> None:
    parser = SSEParser(max_event_bytes=1000)
    assert parser.feed(b"data: small\n\n") == [b"small"]
    piece = b"x" * 64
    with pytest.raises(ResponseTooLargeError) as caught:
        while True:
            parser.feed(piece)
            assert parser.buffered <= 1000       # the piece that would cross the bound is refused
    assert caught.value.code == "stream_event_too_large"
    assert parser.buffered == 0


def test_parser_refuses_an_oversized_event_that_arrives_whole() -> None:
    parser = SSEParser(max_event_bytes=1000)
    with pytest.raises(ResponseTooLargeError):
        parser.feed(b"data: " + b"y" * 2000 + b"\n\ndata: next\n\n")


def test_parser_keeps_an_event_of_exactly_the_bound() -> None:
    parser = SSEParser(max_event_bytes=1000)
    body = b"data: " + b"z" * (1000 - 6)
    events = []
    for start in range(0, len(body), 100):
        events += parser.feed(body[start:start + 100])
    assert events == [] and parser.buffered == 1000
    assert parser.feed(b"\n\n") == [b"z" * 994]


# -- the status an error envelope names ---------------------------------------------------------------------

@pytest.mark.parametrize(("error", "status"), [
    ({"code": "rate_limit_exceeded", "type": "requests"}, 429),
    ({"code": "insufficient_quota", "type": "insufficient_quota"}, 429),
    ({"code": None, "type": "invalid_request_error"}, 400),
    ({"code": "context_length_exceeded", "type": "invalid_request_error"}, 400),
    ({"code": "invalid_api_key", "type": "invalid_request_error"}, 401),
    ({"type": "overloaded_error"}, 503),                         # Anthropic
    ({"code": 429, "status": "RESOURCE_EXHAUSTED"}, 429),        # Google
    ({"status": "UNAVAILABLE"}, 503),
    ({"code": "503"}, 503),
    ({"code": 200}, 502),                                        # not an error status: the default
    ({"code": True}, 502),
    ({"type": "mystery"}, 502),
    ("a bare string", 502),
])
def test_envelope_status(error: Any, status: int) -> None:
    assert envelope_status(error) == status


# -- the relay in virtual time ------------------------------------------------------------------------------

class FailureRecorder:
    def __init__(self) -> None:
        self.seen: list[BaseException] = []

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict,
                                           traceback_str=None):
        self.seen.append(original_exception)


WORDS = [f"w{i} " for i in range(100)]


async def test_max_stream_duration_stops_the_stream_at_its_deadline(autojump_clock):
    upstream = Upstream(words=WORDS, chunk_delay=1.0)
    failures = FailureRecorder()
    pipeline = make_pipeline([failures], upstream=upstream, model_params={"max_stream_duration": 2.5})

    response = await call(pipeline, chat_body(stream=True))
    frames = await collect(response)

    assert trio.current_time() == pytest.approx(2.5)
    assert [frame_json(f)["choices"][0]["delta"]["content"] for f in frames[:-1]] == WORDS[:3]   # t = 0, 1, 2
    assert frame_json(frames[-1])["error"]["code"] == "stream_duration_exceeded"
    assert upstream.closed_at == pytest.approx(2.5)
    assert [type(e) for e in failures.seen] == [StreamDurationExceededError]


async def test_stop_streams_ends_open_streams_and_refuses_new_ones(autojump_clock):
    upstream = Upstream(words=WORDS, chunk_delay=1.0)
    failures = FailureRecorder()
    pipeline = make_pipeline([failures], upstream=upstream)
    frames: list[bytes] = []

    async def client() -> None:
        frames.extend(await collect(await call(pipeline, chat_body(stream=True))))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        await trio.sleep(1.5)
        assert len(pipeline.open_streams) == 1
        assert pipeline.stop_streams() == 1

    assert trio.current_time() == pytest.approx(1.5)            # at once, not at the next upstream piece
    error = frame_json(frames[-1])["error"]
    assert (error["code"], error["type"]) == ("shutdown", "server_error")
    assert len(frames) == 3                                       # t = 0 and t = 1, then the error
    assert upstream.closed_at == pytest.approx(1.5)
    assert [type(e) for e in failures.seen] == [ShuttingDownError]
    assert not pipeline.open_streams

    late = await call(pipeline, chat_body(stream=True))          # opened after the stop: refused
    assert late.status == 503
    assert orjson.loads(late.body)["error"]["code"] == "shutdown"


class _NoDone(httpx.AsyncByteStream):
    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames

    async def __aiter__(self):  # type: ignore[override]
        for piece in self.frames:
            await trio.sleep(1.0)
            yield piece


class NoDoneUpstream(Upstream):
    """Streams the usual chunks but ends the body cleanly without ``data: [DONE]``."""

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(orjson.loads(request.content))
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=_NoDone(sse_chunks(["a", "b"])[:-1]))


async def test_httpx_transport_stream_without_done_is_interrupted(autojump_clock):
    failures = FailureRecorder()
    pipeline = make_pipeline([failures], upstream=NoDoneUpstream())

    response = await call(pipeline, chat_body(stream=True))
    assert response.status == 200
    frames = await collect(response)

    assert [frame_json(f)["choices"][0]["finish_reason"] for f in frames[:-1]] == [None, None, "stop"]
    assert frame_json(frames[-1])["error"]["code"] == "upstream_stream_interrupted"
    assert len(failures.seen) == 1


class EnvelopeUpstream(Upstream):
    """A 200 whose body is an error envelope: as JSON, or as the stream's first event."""

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        self.requests.append(body)
        envelope = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
        if body.get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  content=b"data: " + orjson.dumps(envelope) + b"\n\n")
        return httpx.Response(200, json=envelope)


@pytest.mark.parametrize("stream", [False, True])
async def test_httpx_transport_maps_an_error_envelope_in_a_200(autojump_clock, stream: bool):
    failures = FailureRecorder()
    pipeline = make_pipeline([failures], upstream=EnvelopeUpstream())

    response = await call(pipeline, chat_body(stream=stream))

    assert response.status == 429
    error = orjson.loads(response.body)["error"]
    assert error["code"] == "rate_limit_exceeded" and "slow down" in error["message"]
    assert len(failures.seen) == 1


class MidStreamErrorUpstream(Upstream):
    """Two content chunks, then an error envelope as an event (``message`` set per test)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(orjson.loads(request.content))
        envelope = {"error": {"message": self.message, "type": "server_error", "code": "overloaded"}}
        frames = sse_chunks(["a", "b"])[:2] + [b"data: " + orjson.dumps(envelope) + b"\n\n"]
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join(frames))


@pytest.mark.parametrize("message", ["Traceback (most recent call last):\n  File \"/srv/app.py\", line 3",
                                     "x" * 200_000])
async def test_an_error_event_mid_stream_is_bounded_and_filtered_like_any_upstream_message(autojump_clock,
                                                                                            message: str):
    """The terminal event relays an upstream's stream error through ``relayable_message``: a traceback
    is not relayed, a long message is cut (and its code kept, as for an HTTP error)."""
    from trioproxy.upstream.errors import MAX_ERROR_MESSAGE

    failures = FailureRecorder()
    pipeline = make_pipeline([failures], upstream=MidStreamErrorUpstream(message))

    frames = await collect(await call(pipeline, chat_body(stream=True)))

    error = frame_json(frames[-1])["error"]
    assert error["code"] == "overloaded"
    assert "Traceback" not in error["message"] and "/srv/app.py" not in error["message"]
    assert len(error["message"]) <= MAX_ERROR_MESSAGE + 100
    if message.startswith("x"):
        assert "xxxxxxxx" in error["message"]
    else:
        assert "without an error message" in error["message"]
    assert len(failures.seen) == 1


async def test_a_provider_without_done_marker_ends_cleanly(autojump_clock, monkeypatch):
    """A stream object that declares ``sends_done_marker = False`` (a future provider adapter with its
    own terminator) ends with the proxy's ``[DONE]`` when its body ends cleanly."""
    from trioproxy.upstream import httpx_provider as openai_compat

    monkeypatch.setattr(openai_compat._HttpxStream, "sends_done_marker", False)
    failures = FailureRecorder()
    pipeline = make_pipeline([failures], upstream=NoDoneUpstream())

    frames = await collect(await call(pipeline, chat_body(stream=True)))

    assert frame_json(frames[-1]) == "[DONE]"
    assert failures.seen == []


class RedirectUpstream(Upstream):
    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(orjson.loads(request.content))
        return httpx.Response(307, headers={"location": "https://elsewhere.example/v1/chat/completions"})


@pytest.mark.parametrize("stream", [False, True])
async def test_httpx_transport_refuses_a_redirect(autojump_clock, stream: bool):
    upstream = RedirectUpstream()
    pipeline = make_pipeline(upstream=upstream, settings={"num_retries": 2})

    response = await call(pipeline, chat_body(stream=stream))

    assert response.status == 502
    error = orjson.loads(response.body)["error"]
    assert error["code"] == "upstream_redirect" and "elsewhere" not in error["message"]
    assert len(upstream.requests) == 1                           # not retried
