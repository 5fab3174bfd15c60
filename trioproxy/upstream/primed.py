"""A stream's first event, read inside its routing attempt: so that an upstream that opens a stream
with ``200`` and then fails at once is retried, or falls back, like one that answers an error status.

Why: nothing of a stream reaches the client before its first event (the relay reads it before the
status line, ``core/relay.py``), so an upstream whose first event is an error envelope — or whose body
ends before any event — has not cost the client a byte yet. LiteLLM treats such a stream as a failed
call too. :func:`prime` reads the body up to its first complete event and raises that error (the
attempt fails; ``envelope_error`` records whether another deployment may be tried); otherwise it
returns a :class:`PrimedStream` that hands the relay the bytes already read, then the rest.

For a native provider's stream (``announces_first``: ``providers/provider.py:AdapterStream``) the
first event means the first one with something in it: events that only announce the answer — a
chunk whose deltas carry nothing but the ``role`` (what the adapters emit for Anthropic's
``message_start`` or Bedrock's ``messageStart``), Azure's opening chunk with empty ``choices`` — are
read past (at most :data:`PREAMBLE_LIMIT`), because those providers report overload right after
them: Anthropic answers ``200``, ``message_start``, then an ``overloaded_error`` event. An error
raised while reading them (an adapter's mapped error) fails the attempt like an error status. An
OpenAI-compatible upstream's first event is its first, whatever it holds: its role chunk reaches the
client at once, so a client sees the answer start even when the first token takes long.

Cost: the first event is parsed twice (here and in the relay); after it, each piece costs one extra
method call (no generator in between).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
import trio

from ..errors import UpstreamStreamInterruptedError
from ..streaming import SSEParser, is_error_envelope, responses_error_envelope
from .errors import envelope_error

if TYPE_CHECKING:
    from ..config import Deployment
    from ..masking import SecretScrubber
    from .base import UpstreamStream

__all__ = ["PrimedStream", "prime"]

#: announcing events (role-only deltas, empty ``choices``) read past before the first real one
PREAMBLE_LIMIT = 8

#: seconds closing a stream that failed its first event may take (a socket close, in practice)
_CLOSE_DEADLINE = 5.0


class _Pieces:
    """The body's pieces: those read while priming, then the upstream's own iterator's."""

    __slots__ = ("_buffered", "_pieces", "_read")

    def __init__(self, buffered: list[bytes], pieces: AsyncIterator[bytes], read: Any = None) -> None:
        self._buffered = buffered
        self._pieces = pieces
        #: the upstream's ``read_piece`` when it has one (``http11.Http11Stream``): see :meth:`read_piece`
        self._read = read

    def __aiter__(self) -> _Pieces:
        return self

    async def __anext__(self) -> bytes:
        if self._buffered:
            await trio.lowlevel.checkpoint()    # a read is a checkpoint (the relay's stop relies on it)
            return self._buffered.pop(0)
        return await self._pieces.__anext__()

    async def read_piece(self) -> bytes | None:
        """The next piece, or None at the end: past the buffered ones, the upstream's ``read_piece``
        (no async generator between the relay and the reads; the upstream's own iterator, suspended
        where priming left it, still reads the same response after it), else its iterator."""
        if self._buffered:
            await trio.lowlevel.checkpoint()
            return self._buffered.pop(0)
        if self._read is not None:
            return await self._read()
        try:
            return await self._pieces.__anext__()
        except StopAsyncIteration:
            return None

    async def aclose(self) -> None:
        self._buffered.clear()
        aclose = getattr(self._pieces, "aclose", None)
        if aclose is not None:
            await aclose()


class PrimedStream:
    """The upstream stream, its first event already read (see the module docstring)."""

    def __init__(self, stream: UpstreamStream, pieces: _Pieces) -> None:
        self._stream = stream
        self._pieces = pieces
        self.status = stream.status
        self.headers = stream.headers
        self.sends_done_marker = getattr(stream, "sends_done_marker", True)

    def aiter_bytes(self) -> _Pieces:
        return self._pieces

    async def read_piece(self) -> bytes | None:
        """The next piece of the body, or None at its end (the relay's read: :meth:`_Pieces.read_piece`)."""
        return await self._pieces.read_piece()

    async def aclose(self) -> None:
        await self._stream.aclose()


async def prime(stream: UpstreamStream, deployment: Deployment, scrubber: SecretScrubber) -> PrimedStream:
    """Read ``stream`` up to its first complete event; raise the error it stands for, if it is one.

    Raises: the error an error envelope names (``envelope_error``: its status, its retryability), or
    ``upstream_stream_interrupted`` (retryable) for a body that ends before any event. The stream is
    closed whenever this raises (also on cancellation).
    """
    read_past = bool(getattr(stream, "announces_first", False))
    pieces = stream.aiter_bytes()
    parser = SSEParser()
    buffered: list[bytes] = []
    events: list[bytes] = []
    seen = 0        # events read past (announcements)
    ended = False
    try:
        while True:
            while len(events) <= seen and not ended:
                try:
                    piece = await pieces.__anext__()
                except StopAsyncIteration:
                    events += parser.flush()
                    ended = True
                    break
                buffered.append(piece)
                events += parser.feed(piece)
            if len(events) <= seen:
                break
            event = events[seen]
            if b'"error"' in event:
                body: Any = _json(event)
                if isinstance(body, dict) and "error" in body and is_error_envelope(body):
                    raise envelope_error(body, deployment, scrubber)
                envelope = responses_error_envelope(body)     # a native Responses stream's error / response.failed
                if envelope is not None:
                    raise envelope_error(envelope, deployment, scrubber)
            if read_past and seen < PREAMBLE_LIMIT and _announces_only(event):
                seen += 1
                continue
            break
        if len(events) <= seen:     # the body ended before any event with content
            if not getattr(stream, "sends_done_marker", True) and buffered:
                return PrimedStream(stream, _Pieces(buffered, pieces, getattr(stream, "read_piece", None)))
            error = UpstreamStreamInterruptedError("The upstream's stream ended before its first event (an empty "
                                                   "answer).")
            error.retryable = True      # like an empty 200: another deployment may answer
            raise error
    except BaseException:
        await _close(pieces, stream)
        raise
    return PrimedStream(stream, _Pieces(buffered, pieces, getattr(stream, "read_piece", None)))


def _announces_only(event: bytes) -> bool:
    """An OpenAI chunk with nothing in it yet: no usage, no finish reason, deltas with only a role
    (or empty content) — or no choices at all (Azure's opening ``prompt_filter_results`` chunk)."""
    if len(event) > 4096:
        return False
    body = _json(event)
    if not isinstance(body, dict) or body.get("usage") or "error" in body:
        return False
    choices = body.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("finish_reason") is not None:
            return False
        delta = choice.get("delta")
        if not isinstance(delta, dict) or any(value not in (None, "", []) for key, value in delta.items()
                                              if key != "role"):
            return False
    return True


def _json(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None     # not JSON: the relay reports it as an invalid chunk


async def _close(pieces: Any, stream: UpstreamStream) -> None:
    """Close the stream (shielded, bounded): the error being raised is the news, not how closing went."""
    with trio.CancelScope(shield=True, deadline=trio.current_time() + _CLOSE_DEADLINE):
        for aclose in (getattr(pieces, "aclose", None), stream.aclose):
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
