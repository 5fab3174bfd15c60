"""``upstream/primed.py``: a stream's first event with content is read within its routing attempt.

In-memory streams (the e2e proofs are in ``tests/e2e/test_routing_e2e.py`` and
``test_provider_routing_e2e.py``): a native adapter's announcing events are read past, an error right
after them fails the attempt, the bytes read are handed to the relay unchanged, and reading past
announcements is bounded; an OpenAI-compatible stream's first event is its first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import trio

from trioproxy.config import Deployment, parse_config
from trioproxy.errors import ServiceUnavailableError, UpstreamStreamInterruptedError
from trioproxy.masking import SecretScrubber
from trioproxy.upstream.primed import PREAMBLE_LIMIT, prime


def frame(obj: object) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else orjson.dumps(obj)) + b"\n\n"


ROLE = frame({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
AZURE_OPENING = frame({"choices": [], "prompt_filter_results": [{"prompt_index": 0}]})
CONTENT = frame({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})
DONE = frame(b"[DONE]")


class Stream:
    status = 200
    headers: dict[str, str] = {}

    def __init__(self, pieces: list[bytes | Exception], *, announces_first: bool = True) -> None:
        self.announces_first = announces_first     # a native adapter's stream
        self.pieces = pieces
        self.read = 0
        self.closed = False

    async def _iterate(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            await trio.lowlevel.checkpoint()
            self.read += 1
            if isinstance(piece, Exception):
                raise piece
            yield piece

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def aclose(self) -> None:
        self.closed = True


def deployment() -> Deployment:
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}]}, "t.yaml",
                          Path("."))
    return config.deployments[0]


async def relayed(primed) -> bytes:
    return b"".join([piece async for piece in primed.aiter_bytes()])


async def test_announcements_are_read_past_and_relayed_unchanged() -> None:
    stream = Stream([AZURE_OPENING, ROLE, CONTENT, DONE])
    primed = await prime(stream, deployment(), SecretScrubber())
    assert stream.read == 3                     # up to the first event with content
    assert await relayed(primed) == AZURE_OPENING + ROLE + CONTENT + DONE


async def test_an_error_right_after_the_announcement_fails_the_attempt() -> None:
    overloaded = ServiceUnavailableError("anthropic is overloaded", code="overloaded_error")
    stream = Stream([ROLE, overloaded])
    with pytest.raises(ServiceUnavailableError):
        await prime(stream, deployment(), SecretScrubber())
    assert stream.closed
    envelope = frame({"error": {"message": "overloaded", "type": "server_error", "code": "overloaded"}})
    stream = Stream([ROLE, envelope])
    with pytest.raises(Exception) as caught:
        await prime(stream, deployment(), SecretScrubber())
    assert caught.value.code == "overloaded" and stream.closed


async def test_a_body_that_ends_after_announcements_only_is_retryable() -> None:
    stream = Stream([ROLE])
    with pytest.raises(UpstreamStreamInterruptedError) as caught:
        await prime(stream, deployment(), SecretScrubber())
    assert caught.value.retryable


async def test_an_empty_answer_or_a_finish_is_content() -> None:
    finish = frame({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    stream = Stream([ROLE, finish, DONE])
    primed = await prime(stream, deployment(), SecretScrubber())
    assert stream.read == 2 and await relayed(primed) == ROLE + finish + DONE


async def test_reading_past_announcements_is_bounded() -> None:
    stream = Stream([ROLE] * (PREAMBLE_LIMIT + 5))
    primed = await prime(stream, deployment(), SecretScrubber())
    assert stream.read == PREAMBLE_LIMIT + 1
    assert await relayed(primed) == ROLE * (PREAMBLE_LIMIT + 5)


async def test_an_openai_compatible_streams_role_chunk_is_its_first_event() -> None:
    stream = Stream([ROLE, CONTENT, DONE], announces_first=False)
    primed = await prime(stream, deployment(), SecretScrubber())
    assert stream.read == 1                     # the client sees the answer start at once
    assert await relayed(primed) == ROLE + CONTENT + DONE
