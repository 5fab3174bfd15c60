"""The real pipeline in-process, for tests in virtual time (no sockets, so MockClock can jump).

The upstream is the real ``OpenAICompatProvider`` over an ``httpx.AsyncClient`` whose transport is
an ``httpx.MockTransport``: the test supplies an async handler that can sleep (in virtual time),
record when it was cancelled, and return a streamed body whose ``aclose`` is observed. So "the
upstream request was abandoned at t = 0.05 s" is a recorded fact, not an inference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from trioproxy.caching.dual_cache import DualCache
from trioproxy.config import parse_config
from trioproxy.core.pipeline import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    Pipeline,
    ProxyResponse,
    StreamRelay,
)
from trioproxy.hooks.loader import inspect_handler
from trioproxy.hooks.scheduler import HookPlan
from trioproxy.masking import SecretScrubber
from trioproxy.upstream.fake import FakeProvider
from trioproxy.upstream.httpx_provider import OpenAICompatProvider
from trioproxy.upstream.router import Router

__all__ = ["TimedModeration", "Upstream", "chat_body", "collect", "make_pipeline", "sse_chunks"]

ROUTES = {"chat": CHAT, "completions": COMPLETIONS, "embeddings": EMBEDDINGS}


def chat_answer(content: str = "Hello there.", model: str = "up-model") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def sse_chunks(words: list[str], model: str = "up-model") -> list[bytes]:
    frames = []
    for i, word in enumerate(words):
        delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        frames.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    final = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    frames.append(b"data: " + orjson.dumps(final) + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return frames


class TimedModeration:
    """A moderation hook that takes ``seconds`` (virtual), then passes or rejects with ``status``;
    records when it finished or was cancelled."""

    def __init__(self, seconds: float, reject: bool = False, status: int = 400) -> None:
        self.seconds, self.reject, self.status = seconds, reject, status
        self.cancelled_at: float | None = None
        self.finished_at: float | None = None

    async def async_moderation_hook(self, data, user_api_key_dict, call_type):
        try:
            await trio.sleep(self.seconds)
        except trio.Cancelled:
            self.cancelled_at = trio.current_time()
            raise
        self.finished_at = trio.current_time()
        if self.reject:
            from trioproxy import HTTPException

            raise HTTPException(status_code=self.status, detail="Violated content safety policy")


class _ObservedStream(httpx.AsyncByteStream):
    def __init__(self, upstream: Upstream, frames: list[bytes], first_delay: float, chunk_delay: float) -> None:
        self.upstream, self.frames, self.first_delay, self.chunk_delay = upstream, frames, first_delay, chunk_delay

    async def __aiter__(self):  # type: ignore[override]
        try:
            for i, frame in enumerate(self.frames):
                await trio.sleep(self.first_delay if i == 0 else self.chunk_delay)
                self.upstream.sent_frames += 1
                self.upstream.frame_times.append(trio.current_time())
                yield frame
        except BaseException:
            self.upstream.cancelled_at = trio.current_time()
            raise

    async def aclose(self) -> None:
        if self.upstream.closed_at is None:
            self.upstream.closed_at = trio.current_time()


class Upstream:
    """A scripted upstream: answer after ``delay`` (virtual seconds), stream frames with delays."""

    def __init__(self, *, delay: float = 0.0, content: str = "Hello there.", status: int = 200,
                 error: dict[str, Any] | None = None, words: list[str] | None = None,
                 first_chunk_delay: float = 0.0, chunk_delay: float = 0.0) -> None:
        self.delay, self.content, self.status, self.error = delay, content, status, error
        self.words = words or ["Hello", " there", "."]
        self.first_chunk_delay, self.chunk_delay = first_chunk_delay, chunk_delay
        self.requests: list[dict[str, Any]] = []
        self.cancelled_at: float | None = None
        self.closed_at: float | None = None
        self.answered_at: float | None = None
        self.sent_frames = 0
        self.frame_times: list[float] = []     # when each stream frame was handed to the proxy

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        self.requests.append(body)
        try:
            await trio.sleep(self.delay)
        except BaseException:
            self.cancelled_at = trio.current_time()
            raise
        self.answered_at = trio.current_time()
        if self.status != 200:
            return httpx.Response(self.status, json=self.error or {"error": {"message": "upstream failure"}})
        if body.get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  stream=_ObservedStream(self, sse_chunks(self.words, body["model"]),
                                                         self.first_chunk_delay, self.chunk_delay))
        return httpx.Response(200, json=chat_answer(self.content, body["model"]))


def make_pipeline(handlers: list[Any] | None = None, *, upstream: Upstream | None = None,
                  settings: dict[str, Any] | None = None, general: dict[str, Any] | None = None,
                  guardrails: list[tuple[Any, Any]] | None = None,
                  model_params: dict[str, Any] | None = None, observers: list[Any] | None = None,
                  response_cache: Any = None, router: dict[str, Any] | None = None,
                  traceback_in_thread: bool = False) -> Pipeline:
    """A Pipeline over the given handler objects (in order) and a scripted upstream.

    ``traceback_in_thread``: format the failure hooks' traceback in a worker thread as the proxy
    does; off by default, since most tests here run in virtual time, where a thread lets the
    autojump clock leap to the next deadline.
    """
    upstream = upstream or Upstream()
    raw = {
        "model_list": [{"model_name": "gpt-test",
                        "litellm_params": {"model": "openai/up-model", "api_base": "http://upstream.test/v1",
                                           "api_key": "sk-upstream-secret-000000", **(model_params or {})}},
                       {"model_name": "fake-model", "litellm_params": {"model": "fake/fake-model"}}],
        "litellm_settings": settings or {},
        "general_settings": {"master_key": "sk-master-000000000", **(general or {})},
        "router_settings": router or {},
    }
    config = parse_config(raw, "<test>", Path.cwd())
    loaded = [inspect_handler(f"handler{i}", h, f"litellm_settings.callbacks[{i}]")
              for i, h in enumerate(handlers or [])]
    for spec, obj in guardrails or []:
        from trioproxy.hooks.scheduler import GUARDRAIL_MODE_PHASES

        phases = tuple(p for m in spec.modes for p in GUARDRAIL_MODE_PHASES[m])
        loaded.insert(0, inspect_handler(spec.name, obj, "guardrails", phases=phases, guardrail=spec))
    scrubber = SecretScrubber(config.secrets())
    client = httpx.AsyncClient(transport=httpx.MockTransport(upstream.handle))
    providers = {"openai": OpenAICompatProvider(client, scrubber), "fake": FakeProvider()}
    router = Router.from_config(config, providers)
    pipeline = Pipeline(config, HookPlan(loaded), router, DualCache(), scrubber, observers or (),
                        response_cache=response_cache)
    pipeline.rules = dataclasses.replace(pipeline.rules, traceback_in_thread=traceback_in_thread)
    pipeline.test_upstream = upstream  # type: ignore[attr-defined]
    return pipeline


def chat_body(content: str = "hi", **extra: Any) -> bytes:
    return orjson.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": content}], **extra})


AUTH = {"authorization": "Bearer sk-master-000000000"}


async def call(pipeline: Pipeline, body: bytes | dict[str, Any], route: str = "chat",
               headers: dict[str, str] | None = None) -> ProxyResponse:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return await pipeline.handle(ROUTES[route], raw, {**AUTH, **(headers or {})})


async def collect(response: ProxyResponse,
                  on_frame: Callable[[bytes], Awaitable[None] | None] | None = None) -> list[bytes]:
    """All frames of a streaming response (or the body as one element), relayed and closed the way
    the HTTP layer does it (``asgi.py``: ``StreamRelay.send_to``, then ``aclose``)."""
    if not isinstance(response.body, StreamRelay):
        return [response.body]
    frames = []
    relay = response.body

    async def send(frame: bytes) -> None:
        frames.append(frame)
        if on_frame is not None:
            result = on_frame(frame)
            if result is not None:
                await result

    try:
        await relay.send_to(send)
    finally:
        await relay.aclose()
    return frames


def frame_json(frame: bytes) -> Any:
    assert frame.startswith(b"data: "), frame
    payload = frame[6:].strip()
    return "[DONE]" if payload == b"[DONE]" else orjson.loads(payload)
