"""The body of a streaming response: the open upstream stream relayed through the hooks.

How a stream runs, after the pipeline (``pipeline.py``) opened the upstream stream and every
moderation verdict is in: its first upstream event is read before the status line
(:meth:`StreamRelay.start`, so an error there gets its own status); the rest runs after the status
line is sent, in the same request task, with no nursery of its own (a generator must not hold one
open across ``yield``). The HTTP layer relays it with :meth:`StreamRelay.send_to`: one cancel scope
around the frame generator and the writes, carrying the stream's ``max_stream_duration`` deadline,
which :meth:`StreamRelay.stop` cancels at shutdown (``shutdown.OpenStreams.stop_all``); either way the
generator is closed, the failure hooks run once with the reason, and the error event is written.
(Reading the first event has its own scope with the same deadline.) The cleanup is idempotent and
is also called by the connection adapter (``http/asgi.py``), so an upstream stream is closed even
when the client leaves before the first chunk is pulled.

The relay depends on the request's run (``run.py``: its state, its outcome rules, its resources),
never on the pipeline: what it opens (the upstream stream, the chunk source, each iterator hook's
generator) is registered in ``run.resources`` and closed there, in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import trio

from ..config.model import DEFAULT_MAX_STREAM_DURATION
from ..errors import (
    APIConnectionError,
    APIError,
    InternalServerError,
    ProxyError,
    ResponseTooLargeError,
    StreamDurationExceededError,
    UpstreamStreamInterruptedError,
    to_proxy_error,
)
from ..hooks import scheduler
from ..streaming import (
    DONE,
    DONE_FRAME,
    ErrorEvent,
    SSEParser,
    StreamAssembler,
    error_frame,
    frame,
    parse_chunk,
)
from ..upstream.errors import envelope_error
from .run import CLEANUP_DEADLINE, RequestRun
from .shutdown import OpenStreams

__all__ = ["StreamRelay", "response_too_large"]

log = logging.getLogger("trioproxy.pipeline")

#: ``data: `` and the blank line around an event's payload (counted towards max_response_size_mb)
_FRAMING = 8


def response_too_large(size: int, limit: int | None) -> ResponseTooLargeError:
    """``max_response_size_mb`` was crossed (``size`` bytes so far)."""
    return ResponseTooLargeError(f"Response size is too large. Response size is {size / 1024 / 1024:.6g} MB. "
                                 f"Max size is {(limit or 0) / 1024 / 1024:.6g} MB")


def _is_usage_only(chunk: Any) -> bool:
    return isinstance(chunk, dict) and not dict.get(chunk, "choices") and bool(dict.get(chunk, "usage"))


class StreamRelay:
    """The body of a streaming response: relays the open upstream stream through the hooks.

    :meth:`start` reads the upstream up to its first event before the status line is sent, so an
    error there (an error envelope, a body that ends at once, a broken connection) is answered with
    its own HTTP status. After the status line, errors become the terminal SSE error event (after the
    failure hooks had their say); the upstream stream and every iterator-hook generator are closed on
    every path by :meth:`aclose`, which is idempotent and also called by the connection adapter.

    How a stream ends, honestly:

    * ``data: [DONE]`` from the upstream → the proxy's own ``[DONE]`` after the post-call hooks;
    * the body ends without it (connection closed, or a clean end), for an upstream that declares
      ``sends_done_marker`` (every OpenAI-compatible one) → ``upstream_stream_interrupted``;
    * ``max_stream_duration`` (the deployment's, counted from the upstream's status line) →
      ``stream_duration_exceeded``; a single event over ``MAX_EVENT_BYTES`` →
      ``stream_event_too_large``; ``max_response_size_mb`` → ``response_too_large``;
    * :meth:`stop` (graceful shutdown, see ``Pipeline.stop_streams``) → ``shutdown``.

    How the HTTP layer relays it (one cancel scope per stream; reads only after a write, so a slow
    client throttles the upstream and at most one incomplete event is held): :meth:`send_to`.
    """

    def __init__(self, run: RequestRun, upstream: Any, streams: OpenStreams, *,
                 max_response_bytes: int | None = None, keep_upstream_answer: bool = False,
                 encoder: Any = None, native: Any = None) -> None:
        self.run = run
        self.ctx = ctx = run.ctx
        self.upstream = upstream
        self.streams = streams
        self.max_response_bytes = max_response_bytes
        self.chat = ctx.route.endpoint == "chat/completions"
        #: a native Responses stream's dialect (``responses_native.NativeStream``): its events are
        #: parsed, ended, assembled and written by it; None for chat and text completion chunks
        self._native = native
        if native is not None:
            encoder = native
        self._pieces: Any = None        # the upstream's byte iterator
        self._read_piece: Any = None    # or its read_piece(), when it has one
        self._parser = SSEParser()
        self._pending: list[bytes] = []  # event payloads read by start(), not yet relayed
        self._body_bytes = 0            # upstream body bytes read so far
        # the events' bytes so far, for max_response_size_mb: counted per event, not per network read,
        # so where the limit is crossed does not depend on how TCP cut the body
        self._event_bytes = 0
        self._ended = False             # the upstream body ended
        self._saw_done = False
        self._released = False
        self._more_ready = False        # more parsed chunks are waiting: no need to flush yet
        deployment = ctx.deployment
        duration = getattr(deployment, "max_stream_duration", None) or DEFAULT_MAX_STREAM_DURATION
        self.max_duration = float(duration)
        #: when the stream is stopped with ``stream_duration_exceeded`` (Trio clock)
        self.deadline = trio.current_time() + self.max_duration
        #: the scope of start() or send_to(): what stop() cancels (kept after it exits: cleanup asks
        #: whether it was cancelled, to report why the stream ended)
        self._scope: trio.CancelScope | None = None
        self._stop_error: ProxyError | None = None
        self._terminal: bytes | None = None     # the last frame (``[DONE]`` or error), once yielded
        self._terminal_sent = False
        # the upstream's own answer, assembled before the hooks touch it: what the response cache
        # stores (a cached answer goes through the hooks again when it is replayed)
        self._upstream_answer = StreamAssembler(self.chat) if keep_upstream_answer else None
        self._events: Any = None
        self._closed = False
        # chunks, the end, an error as the client gets them: chat frames, or another API's events (encoder's
        # chunk / done / error: the Responses API's, responses_wire.py); the hooks see chat chunks either way
        #: what the encoder forgets when held frames are dropped (``withhold_output``; chat frames: nothing)
        self._withhold_output: Callable[[], None] | None = getattr(encoder, "withhold_output", None)
        if encoder is None:
            self._encode_chunk: Callable[[Any], bytes] = frame
            self._encode_done: Callable[[], bytes] = lambda: DONE_FRAME
            self._encode_error: Callable[[ProxyError], bytes] = error_frame
        else:
            self._encode_chunk, self._encode_done, self._encode_error = encoder.chunk, encoder.done, encoder.error

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._events is None:
            self._events = self._run()
        return self._events

    # -- reading the upstream --------------------------------------------------------------------
    async def start(self) -> None:
        """Read up to the first complete event (or the end of the body). Before the status line.

        Raises the error an upstream that fails this early stands for: the error an error envelope
        names (``upstream.common.envelope_error``: its status, e.g. 429), or
        ``upstream_stream_interrupted`` (502) for a body that ends, or breaks, before any event.
        """
        if self._pieces is not None:
            return
        stopping = self.streams.add(self)
        if stopping is not None and self._stop_error is None:
            self._stop_error = stopping
        # every way out of this request closes the upstream from here on (unfinished: abandoned at
        # once, so the provider stops generating; finished: returned to the pool by aclose())
        self.run.resources.push("the upstream stream", self._abandon_unfinished_upstream)
        self._pieces = self.upstream.aiter_bytes()
        # an upstream that reads a piece without an async generator around it (http11.Http11Stream)
        self._read_piece = getattr(self.upstream, "read_piece", None)
        payloads: list[bytes] = []
        with trio.CancelScope(deadline=self.deadline) as scope:
            self._scope = scope
            if self._stop_error is not None:
                scope.cancel()
            while not payloads:
                piece = await self._next_piece()
                if piece is None:
                    payloads = self._parser.flush()
                    break
                payloads = self._parser.feed(piece)
        if scope.cancelled_caught:
            self._ended = True
            raise self._stop_reason()
        self._pending = payloads
        if not payloads:
            if getattr(self.upstream, "sends_done_marker", True) or not self._body_bytes:
                raise UpstreamStreamInterruptedError(
                    "The upstream's stream ended before its first event (an empty answer).")
            return
        first = payloads[0]
        limit = self.max_response_bytes
        if limit is not None and len(first) + _FRAMING > limit:
            raise response_too_large(len(first) + _FRAMING, limit)
        if b'"error"' in first:
            self._parse(first)      # raises the error an error envelope names

    async def _next_piece(self) -> bytes | None:
        """The next piece of the upstream body, or None at its end."""
        if self._ended:
            return None
        try:
            if self._read_piece is not None:
                piece = await self._read_piece()
                if piece is None:
                    self._ended = True
                    return None
            else:
                piece = await self._pieces.__anext__()
        except StopAsyncIteration:
            self._ended = True
            return None
        except APIConnectionError as exc:    # the connection broke (reset, EOF inside a chunk), or a native
            self._ended = True               # stream ended without its own end marker (an adapter says so)
            raise UpstreamStreamInterruptedError(exc.message if exc.code == "upstream_stream_interrupted" else
                "The upstream connection broke in the middle of the stream; the answer is incomplete.") from exc
        self._body_bytes += len(piece)
        return piece

    def stop(self, error: ProxyError) -> None:
        """End this stream with ``error`` as its terminal event, at once (wherever it is waiting)."""
        if self._stop_error is None:
            self._stop_error = error
        if self._scope is not None:
            self._scope.cancel()

    def _stop_reason(self) -> ProxyError:
        """Why our scope was cancelled: :meth:`stop`, or else the stream's deadline."""
        if self._stop_error is not None:
            return self._stop_error
        return StreamDurationExceededError(
            f"The stream ran longer than the model's max_stream_duration ({self.max_duration:g} s) "
            "and was stopped.")

    def _parse(self, payload: bytes) -> Any:
        try:
            chunk = parse_chunk(payload, self.chat) if self._native is None else self._native.parse(payload)
        except orjson.JSONDecodeError:
            raise ProxyError("The upstream sent an invalid stream chunk.", status_code=502) from None
        if isinstance(chunk, ErrorEvent):
            deployment = self.ctx.deployment
            if deployment is None:      # not from an upstream (a replayed answer): cannot happen
                raise APIError("The stream carried an error event.", status_code=502)
            raise envelope_error(chunk.body, deployment, self.run.rules.scrubber)
        return chunk

    def _count_event(self, payload: bytes, limit: int | None) -> None:
        """Count one event towards ``max_response_size_mb`` (raises once it is crossed)."""
        if limit is not None:
            self._event_bytes += len(payload) + _FRAMING
            if self._event_bytes > limit:
                raise response_too_large(self._event_bytes, limit)

    def _accept(self, chunk: Any, client_wants_usage: bool, request_id: str | None) -> Any:
        """One parsed event → the chunk to relay, ``None`` (not for this client) or ``DONE``.

        The rules every relayed chunk follows, on both paths: ``[DONE]`` ends the stream; a metered
        request's chunks carry its id (docs/spend.md); the usage chunk is captured for the cost and
        relayed only to a client that asked for usage, as is the ``"usage": null`` servers add to
        every chunk once asked for usage.
        """
        if chunk is DONE:
            self._saw_done = True
            return DONE
        if request_id is not None and "id" in chunk:
            dict.__setitem__(chunk, "id", request_id)
        if _is_usage_only(chunk):
            self.ctx.usage = dict(dict.get(chunk, "usage"))
            if not client_wants_usage:
                return None
        elif not client_wants_usage and "usage" in chunk and dict.get(chunk, "usage") is None:
            del chunk["usage"]
        return chunk

    def _relays_raw(self, chunk_calls: Any, iterator_calls: Any) -> bool:
        """Whether the upstream's event bytes can be relayed as they are (:meth:`_raw_frames`).

        Only when nothing needs chunk objects or another shape: no ``post_call_streaming`` hook or
        streaming guardrail, no streaming-iterator hook, chat frames (not the Responses API's
        events), no response-cache write (which stores the upstream's own answer, assembled
        separately), and ids left as the upstream sent them (not a metered request's, docs/spend.md).
        """
        return (not chunk_calls and not iterator_calls and self._native is None and self._encode_chunk is frame
                and self._upstream_answer is None and self.run.ticket is None)

    def _raw_frames(self, payloads: list[bytes], assembler: StreamAssembler, client_wants_usage: bool,
                    limit: int | None) -> bytes:
        """The frames of one upstream read's events, for the raw path; sets ``_saw_done`` at ``[DONE]``.

        Each payload is still parsed once (``orjson.loads``: an invalid event, an error event and the
        usage chunk are found exactly as on the parsed path, and the assembler, which the logging
        callbacks, ``async_post_call_success_hook`` and the cost of an answer without usage read,
        gets every chunk). What is skipped is the chunk object (``ModelResponseStream``), encoding the
        JSON again and one async-generator hop per chunk: measured ~1.5 µs per delta of the ~3 µs
        the parsed path spends on SSE (bench/README.md, "Many concurrent streams"). A payload with an
        error, a usage field, several ``data:`` lines or not a JSON object goes the parsed way.
        """
        frames: list[bytes] = []
        for payload in payloads:
            self._count_event(payload, limit)
            if payload.strip() == b"[DONE]":
                self._saw_done = True
                break
            try:
                body = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise ProxyError("The upstream sent an invalid stream chunk.", status_code=502) from None
            if type(body) is dict and "error" not in body and "usage" not in body and b"\n" not in payload:
                assembler.add(body)
                frames.append(b"data: " + payload + b"\n\n")
                continue
            chunk = self._accept(self._parse(payload), client_wants_usage, None)
            if chunk is not None:
                assembler.add(chunk)
                frames.append(frame(chunk))
        return b"".join(frames)

    async def _chunks(self) -> AsyncIterator[Any]:
        """Upstream bytes → chunk objects (stops at ``[DONE]``; raises ProxyError on errors)."""
        await self.start()
        payloads, self._pending = self._pending, []
        client_wants_usage = self.ctx.client_wants_usage
        request_id = self.ctx.id if self.run.ticket is not None else None   # metered: ids, docs/spend.md
        limit = self.max_response_bytes
        while True:
            chunks = []
            for payload in payloads:
                self._count_event(payload, limit)
                chunk = self._parse(payload)
                if self._native is not None:
                    if self._native.observe(chunk):     # response.completed / .incomplete: the end,
                        self._saw_done = True           # written after the post-call hooks (done())
                        break
                    chunks.append(chunk)
                    continue
                chunk = self._accept(chunk, client_wants_usage, request_id)
                if chunk is DONE:
                    break
                if chunk is not None:
                    chunks.append(chunk)
            last = len(chunks) - 1
            for index, chunk in enumerate(chunks):
                if self._upstream_answer is not None:
                    self._upstream_answer.add(chunk)   # before any hook sees (and may change) it
                # tells _run whether the next chunk is already here (then both go out in one write)
                self._more_ready = index < last
                yield chunk
            if self._saw_done:
                return
            if self._ended:
                break
            piece = await self._next_piece()
            payloads = self._parser.flush() if piece is None else self._parser.feed(piece)
        if getattr(self.upstream, "sends_done_marker", True):
            raise UpstreamStreamInterruptedError(
                "The upstream ended the stream without data: [DONE]; the answer is incomplete.")

    # -- relaying --------------------------------------------------------------------------------
    async def _run(self) -> AsyncIterator[bytes]:
        run, ctx = self.run, self.ctx
        scrubber = run.rules.scrubber
        chunk_calls = run.calls("post_call_streaming")
        success_calls = run.calls("post_call_success")
        buffering = any(c.guardrail in run.rules.plan.buffering_guardrails for c in success_calls)
        assembler = self._native if self._native is not None else StreamAssembler(self.chat)
        held: list[bytes] = []      # held back by a buffering guardrail until it approves
        ready: list[bytes] = []     # frames from one upstream read, sent in one write
        try:
            iterator_calls = run.calls("streaming_iterator")
            if self._relays_raw(chunk_calls, iterator_calls):
                # the upstream's event bytes as they are: one upstream read, one write (_raw_frames)
                await self.start()
                payloads, self._pending = self._pending, []
                client_wants_usage = ctx.client_wants_usage
                limit = self.max_response_bytes
                while True:
                    out = self._raw_frames(payloads, assembler, client_wants_usage, limit)
                    if out:
                        if ctx.first_chunk_at is None:
                            ctx.first_chunk_at = time.perf_counter()
                            run.first_token()
                        if buffering:
                            held.append(out)
                        else:
                            yield out
                    if self._saw_done or self._ended:
                        break
                    piece = await self._next_piece()
                    payloads = self._parser.flush() if piece is None else self._parser.feed(piece)
                if not self._saw_done and getattr(self.upstream, "sends_done_marker", True):
                    raise UpstreamStreamInterruptedError(
                        "The upstream ended the stream without data: [DONE]; the answer is incomplete.")
            else:
                source = self._chunks()
                run.resources.push("the chunk source", source.aclose)
                stream: AsyncIterator[Any] = source
                if iterator_calls:
                    stream, generators = scheduler.chain_iterators(iterator_calls, source, run.args())
                    for generator in generators:    # innermost first: closed outermost first
                        aclose = getattr(generator, "aclose", None)
                        if aclose is not None:
                            run.resources.push("a streaming iterator hook", aclose, log_level=logging.ERROR)
                async for chunk in stream:
                    if chunk_calls:
                        chunk = await scheduler.run_chunk_hooks(chunk_calls, run.invoke, run.args(response=chunk))
                        if chunk is None:
                            continue
                    if ctx.first_chunk_at is None:
                        ctx.first_chunk_at = time.perf_counter()
                        run.first_token()
                    assembler.add(chunk)
                    encoded = self._encode_chunk(chunk)   # may be empty (an event-less chunk of another API)
                    if buffering:
                        held.append(encoded)
                    else:
                        ready.append(encoded)
                        if not self._more_ready:
                            out = b"".join(ready)
                            ready.clear()
                            if out:
                                yield out
            if ready and success_calls:
                # pass-through: what already passed is released before the post-call hooks run
                yield b"".join(ready)
                ready.clear()
            assembled = assembler.build()
            if ctx.usage and "usage" not in assembled:
                assembled["usage"] = ctx.usage
            if success_calls:
                await scheduler.run_post_call_success(success_calls, run.invoke, run.args(response=assembled))
            ctx.response = assembled
            if self._upstream_answer is not None:
                upstream_answer = self._upstream_answer.build()
                if ctx.usage:
                    upstream_answer["usage"] = ctx.usage
                ctx.upstream_response = upstream_answer
            tail = self._terminal = b"".join(ready) + b"".join(held) + self._encode_done()
            ready.clear()
            held.clear()
            await run.settle_final_cost()
            run.succeed(200)            # hands the spend record off before the last byte
            yield tail
        except Exception as exc:
            error = to_proxy_error(exc)
            if not isinstance(exc, ProxyError) and error.__class__ is InternalServerError:
                log.error("stream %s failed with an unexpected error", ctx.id, exc_info=exc)
            # drop what a buffering guardrail held back: it was never approved (nor may the error event
            # carry it: a Responses failure event lists the answer's items so far)
            if held and self._withhold_output is not None:
                self._withhold_output()
            held.clear()
            if ready:   # these passed every hook: release them before the error event
                yield b"".join(ready)
                ready.clear()
            error = await run.failure_hooks(error)
            scrubber.scrub_error(error)
            run.report_failure(error)
            self._terminal = self._encode_error(error)
            yield self._terminal
        finally:
            await self._cleanup()

    async def send_to(self, send: Callable[[bytes], Awaitable[None]]) -> None:
        """Relay every frame through ``send`` (the HTTP layer's write); how the HTTP layer runs a stream.

        The relay and the writes run in one cancel scope with the stream's deadline
        (``max_stream_duration``), which :meth:`stop` cancels. When it fires, the frame generator is
        closed wherever it was (its cleanup closes the upstream and reports the failure once, with
        the reason), then the terminal frame goes out: the error event, or the frame whose write the
        cancellation interrupted if that was already the last one.
        """
        with trio.CancelScope(deadline=self.deadline) as scope:
            self._scope = scope
            if self._stop_error is not None:
                scope.cancel()
            async for frame in self:
                await send(frame)
                if frame is self._terminal:
                    self._terminal_sent = True
        if not scope.cancelled_caught or self._terminal_sent:
            return
        pending = self._terminal
        events, self._events = self._events, None
        if events is not None:
            with trio.CancelScope(shield=True):
                await events.aclose()   # _run's finally: cleanup, the failure reported with its reason
        await self._cleanup()
        if pending is None:
            error = self.ctx.error
            if error is None:           # nothing was decided (cannot happen): end the body as is
                return
            error.message = self.run.rules.scrubber.scrub(error.message)
            pending = self._encode_error(error)
        await send(pending)

    # -- closing ---------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close everything this stream holds. Idempotent; safe before iteration started.

        The HTTP layer calls it after the response's last byte went out; only then is the rest of a
        finished upstream body read, so that the connection can go back to the pool without
        delaying the end of the client's response.
        """
        events, self._events = self._events, None
        if events is not None:
            with trio.CancelScope(shield=True):
                await events.aclose()   # runs _run's finally, if it started
        await self._cleanup()
        await self._release_upstream()

    async def discard(self) -> None:
        """Before the status line (the request failed or was cancelled): abandon the upstream.

        The pipeline reports that failure itself; nothing here is reported.
        """
        self._closed = True
        await self._release_upstream()

    async def _release_upstream(self) -> None:
        """Return the upstream connection (after [DONE]: read the tiny rest) or abandon it. Idempotent."""
        if self._released:
            return
        self._released = True
        self.streams.discard(self)
        with trio.CancelScope(shield=True, deadline=trio.current_time() + CLEANUP_DEADLINE):
            if self._pieces is not None:
                if self._saw_done:
                    with trio.move_on_after(0.5):
                        try:
                            async for _ in self._pieces:
                                pass
                        except Exception as exc:
                            log.debug("reading the end of an upstream stream raised %r", exc)
                try:
                    await self._pieces.aclose()
                except Exception as exc:
                    log.debug("closing the upstream byte iterator raised %r", exc)
            try:
                await self.upstream.aclose()
            except Exception as exc:
                log.debug("closing the upstream stream raised %r", exc)

    async def _abandon_unfinished_upstream(self) -> None:
        """Unfinished (error, disconnect, stop): abandon the upstream now, so it stops generating.
        A finished one is released by :meth:`aclose`, after the client's last byte."""
        if not self._saw_done:
            await self._release_upstream()

    async def _cleanup(self) -> None:
        if self._closed:
            return
        self._closed = True
        # closing what the stream opened has its own deadline scope: a hook generator that overruns
        # it (its ``finally`` awaiting something slow) must not skip the outcome or the spend close
        with trio.CancelScope(shield=True, deadline=trio.current_time() + CLEANUP_DEADLINE):
            await self.run.resources.close_all()   # hook generators, the chunk source, the upstream
        with trio.CancelScope(shield=True):
            if not self.ctx.outcome_reported:
                # the client left before the end (or never pulled the first chunk), or send_to's scope
                # stopped the stream (shutdown, max_stream_duration): reported with that reason
                # (the failure hooks are bounded by their own deadline: RequestRun.failure_hooks)
                stopped = self._scope is not None and self._scope.cancel_called
                await self.run.cancelled(self._stop_reason() if stopped else None)
            await self.run.close_spend()
