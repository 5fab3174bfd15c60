"""The relay's raw path (the upstream's event bytes relayed as they are) and where it ends.

``StreamRelay`` relays the upstream's ``data:`` payloads unchanged when nothing needs chunk objects
(``StreamRelay._relays_raw``: no ``post_call_streaming`` hook, no streaming-iterator hook, chat
frames, no response-cache write, not a metered request). Each scenario here runs on both paths —
the raw one, and the parsed one forced by a pass-through streaming hook — and checks they give the
client the same events and the same ending, and the hooks and the cost the same usage. Which path
ran shows in the bytes: the upstream here writes its JSON with spaces, the parsed path re-encodes
it compactly.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson
import pytest

from support.inprocess import Upstream, call, chat_body, collect, make_pipeline

USAGE = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def event(body: Any) -> bytes:
    """One SSE event, its JSON written with spaces (``json.dumps``), as some servers do."""
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def chunk(content: str | None, *, finish: str | None = None, usage_null: bool = False) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up-model",
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage_null:
        body["usage"] = None
    return body


USAGE_EVENT = event({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up-model",
                     "choices": [], "usage": USAGE})
DONE = b"data: [DONE]\n\n"


class _Bytes(httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self):  # type: ignore[override]
        for piece in self.pieces:
            yield piece


class ScriptedUpstream(Upstream):
    """Streams exactly ``pieces`` (one network piece each) for a streaming request."""

    def __init__(self, pieces: list[bytes]) -> None:
        super().__init__()
        self.pieces = pieces

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(orjson.loads(request.content))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Bytes(self.pieces))


class PassThroughStreamingHook:
    """Sees every chunk and changes nothing: its presence alone puts the stream on the parsed path."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        self.seen.append(response)
        return response


class Recorder:
    """What the post-call and failure hooks were given (neither needs chunk objects)."""

    def __init__(self) -> None:
        self.responses: list[Any] = []
        self.failures: list[BaseException] = []

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        self.responses.append(response)

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict,
                                           traceback_str=None):
        self.failures.append(original_exception)


async def relay(pieces: list[bytes], *, parsed: bool, **body: Any) -> tuple[list[bytes], Recorder, Any]:
    recorder = Recorder()
    hook = PassThroughStreamingHook()
    handlers: list[Any] = [recorder, hook] if parsed else [recorder]
    pipeline = make_pipeline(handlers, upstream=ScriptedUpstream(pieces))
    response = await call(pipeline, chat_body(stream=True, **body))
    assert response.status == 200
    frames = await collect(response)
    if parsed:
        assert hook.seen, "the streaming hook saw the chunks"
    return frames, recorder, response


def events(frames: list[bytes]) -> list[Any]:
    """Every event the client got, decoded (frames may carry several events each)."""
    out = []
    for payload in b"".join(frames).split(b"\n\n"):
        if payload:
            assert payload.startswith(b"data: ")
            data = payload[6:]
            out.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return out


BOTH = pytest.mark.parametrize("parsed", [False, True], ids=["raw", "parsed"])


@BOTH
async def test_the_path_taken_shows_in_the_bytes(parsed: bool) -> None:
    pieces = [event(chunk("Hel")), event(chunk("lo")), event(chunk(None, finish="stop")), USAGE_EVENT, DONE]
    frames, recorder, _ = await relay(pieces, parsed=parsed)
    relayed = b"".join(frames)
    assert (event(chunk("Hel")) in relayed) is not parsed      # raw: the upstream's bytes, spaces and all
    assert (b'{"id":"c1"' in relayed) is parsed                # parsed: encoded again, compactly
    assert events(frames) == [chunk("Hel"), chunk("lo"), chunk(None, finish="stop"), "[DONE]"]
    answer = recorder.responses[0]
    assert answer["choices"][0]["message"]["content"] == "Hello"
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert dict(answer["usage"]) == USAGE                      # the usage chunk captured for the cost


@BOTH
@pytest.mark.parametrize("wants_usage", [False, True])
async def test_usage_reaches_only_a_client_that_asked(parsed: bool, wants_usage: bool) -> None:
    # once asked for usage, servers add "usage": null to every chunk (the proxy always asks)
    pieces = [event(chunk("a", usage_null=True)) + event(chunk("b", usage_null=True)),
              event(chunk(None, finish="stop", usage_null=True)) + USAGE_EVENT + DONE]
    body = {"stream_options": {"include_usage": True}} if wants_usage else {}
    frames, recorder, _ = await relay(pieces, parsed=parsed, **body)
    got = events(frames)
    if wants_usage:
        assert got == [chunk("a", usage_null=True), chunk("b", usage_null=True),
                       chunk(None, finish="stop", usage_null=True), json.loads(USAGE_EVENT[6:]), "[DONE]"]
    else:
        assert got == [chunk("a"), chunk("b"), chunk(None, finish="stop"), "[DONE]"]
    assert dict(recorder.responses[0]["usage"]) == USAGE


@BOTH
async def test_an_error_event_ends_the_stream_with_its_error(parsed: bool) -> None:
    error = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    pieces = [event(chunk("a")), event(chunk("b")), event(error), event(chunk("never"))]
    frames, recorder, _ = await relay(pieces, parsed=parsed)
    got = events(frames)
    assert got[:2] == [chunk("a"), chunk("b")]
    assert got[2]["error"]["code"] == "rate_limit_exceeded" and "slow down" in got[2]["error"]["message"]
    assert len(got) == 3
    assert len(recorder.failures) == 1 and not recorder.responses


@BOTH
async def test_an_upstream_that_ends_between_events_without_done_is_interrupted(parsed: bool) -> None:
    frames, recorder, _ = await relay([event(chunk("a")), event(chunk("b"))], parsed=parsed)
    got = events(frames)
    assert got[:2] == [chunk("a"), chunk("b")]
    assert got[2]["error"]["code"] == "upstream_stream_interrupted"
    assert len(recorder.failures) == 1


@BOTH
async def test_an_upstream_that_ends_in_the_middle_of_an_event(parsed: bool) -> None:
    cut = event(chunk("b"))[:25]           # the connection closed inside the event
    frames, recorder, _ = await relay([event(chunk("a")), cut], parsed=parsed)
    got = events(frames)
    assert got[0] == chunk("a")
    assert got[-1]["error"]["message"] == "The upstream sent an invalid stream chunk."
    assert len(got) == 2 and len(recorder.failures) == 1


@BOTH
async def test_events_cut_anywhere_by_the_network_and_multi_line_data(parsed: bool) -> None:
    whole = (event(chunk("x")) + b'data: {"id": "c1", "object": "chat.completion.chunk",\n'
             b'data: "created": 1, "model": "up-model", "choices": [{"index": 0, "delta": {"content": "y"}, '
             b'"finish_reason": null}]}\n\n' + USAGE_EVENT + DONE)
    pieces = [whole[i:i + 7] for i in range(0, len(whole), 7)]
    frames, recorder, _ = await relay(pieces, parsed=parsed)
    assert events(frames) == [chunk("x"), chunk("y"), "[DONE]"]
    assert recorder.responses[0]["choices"][0]["message"]["content"] == "xy"


async def test_an_iterator_hook_also_takes_the_parsed_path() -> None:
    seen: list[Any] = []

    class Iterator:
        async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
            async for item in response:
                seen.append(item)
                yield item

    pipeline = make_pipeline([Iterator()], upstream=ScriptedUpstream([event(chunk("a")), DONE]))
    frames = await collect(await call(pipeline, chat_body(stream=True)))
    assert b'{"id":"c1"' in b"".join(frames)
    assert [c["choices"][0]["delta"]["content"] for c in seen] == ["a"]


# -- SSEParser's fast path: a piece that is exactly one whole single-line event ----------------------------

def test_one_whole_event_per_piece_gives_the_general_paths_events() -> None:
    from trioproxy.errors import ResponseTooLargeError
    from trioproxy.streaming import SSEParser

    parser = SSEParser(max_event_bytes=1000)
    assert parser.feed(b'data: {"a": 1}\n\n') == [b'{"a": 1}']
    assert parser.feed(b"data:no-space\n\n") == [b"no-space"]
    assert parser.feed(b"data: " + b"z" * 994 + b"\n\n") == [b"z" * 994]       # exactly the bound
    assert parser.feed(b"event: x\ndata: two lines\n\n") == [b"two lines"]      # not one line: general path
    assert parser.feed(b"data: half") == [] and parser.feed(b"\n\n") == [b"half"]
    with pytest.raises(ResponseTooLargeError):
        parser.feed(b"data: " + b"y" * 995 + b"\n\n")                          # one byte over it
    assert parser.buffered == 0
