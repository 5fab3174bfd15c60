"""The built-in ``fake/…`` provider: deterministic OpenAI-shaped answers, no network.

It produces the same bytes a real upstream would (JSON bodies, SSE streams), so everything after
the provider — hooks, streaming, logging — runs exactly as with a real one. Demos and benchmarks
use it; knobs in ``litellm_params``:

* ``mock_response``: the assistant's text (default: a sentence echoing the last user message);
* ``latency``: seconds before the answer (or before the stream's first chunk);
* ``chunk_latency``: seconds between stream chunks;
* ``fail_rate`` (0..1) and ``fail_status`` (default 500): error injection. Failures are chosen by a
  counter, not a random draw, so a rate of 0.25 fails exactly every 4th request: tests and demos
  stay deterministic.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
import trio

from ..errors import BadRequestError, for_status
from .base import UpstreamResponse

if TYPE_CHECKING:
    from ..config import Deployment

__all__ = ["FakeProvider"]

_ids = itertools.count(1)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _answer(deployment: Deployment, body: dict[str, Any]) -> str:
    if "mock_response" in deployment.fake:
        return str(deployment.fake["mock_response"])
    if isinstance(body.get("mock_response"), str):
        return body["mock_response"]
    prompt = ""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            prompt = _text_of(message.get("content"))
            break
    if not prompt:
        raw = body.get("prompt")
        prompt = raw if isinstance(raw, str) else " ".join(map(str, raw)) if isinstance(raw, list) else ""
    prompt = " ".join(prompt.split())[:200]
    return f"This is a fake answer from {deployment.upstream_model} to: {prompt}" if prompt else \
        f"This is a fake answer from {deployment.upstream_model}."


#: OpenAI's limit on ``n``; also keeps one request from building millions of choices on the Trio thread
MAX_CHOICES = 128


def _choice_count(body: dict[str, Any]) -> int:
    """``n``, checked the way OpenAI checks it: a 400 naming the parameter, never a crash."""
    n = body.get("n")
    if n is None:
        return 1
    if isinstance(n, bool) or not isinstance(n, int):
        raise BadRequestError(f"Invalid type for 'n': expected an integer, got {type(n).__name__}.",
                              param="n", code="invalid_type")
    if not 1 <= n <= MAX_CHOICES:
        raise BadRequestError(f"Invalid value for 'n': expected an integer from 1 to {MAX_CHOICES}, got {n}.",
                              param="n", code="integer_out_of_range")
    return n


def _count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def _prompt_tokens(body: dict[str, Any]) -> int:
    words = 0
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            words += len(_text_of(message.get("content")).split()) + 3
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            words += len(value.split())
        elif isinstance(value, list):
            words += sum(len(str(v).split()) for v in value)
    return max(words, 1)


def _embedding(text: str, dims: int = 16) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    values = struct.unpack(f">{dims}H", (digest * 2)[: dims * 2])
    return [round(v / 65535.0 * 2 - 1, 6) for v in values]


def _chunks(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


class FakeStream:
    #: the fake ends its streams with ``data: [DONE]``, as OpenAI does (see ``base.UpstreamStream``)
    sends_done_marker = True

    def __init__(self, events: list[bytes], chunk_latency: float) -> None:
        self.status = 200
        self.headers = {"content-type": "text/event-stream"}
        self._events = events
        self._chunk_latency = chunk_latency
        self.closed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for i, event in enumerate(self._events):
            if self.closed:
                return
            if self._chunk_latency and i:
                await trio.sleep(self._chunk_latency)
            yield event

    async def aclose(self) -> None:
        self.closed = True


class FakeProvider:
    def __init__(self) -> None:
        self._calls: dict[int, int] = {}

    async def _prelude(self, deployment: Deployment) -> None:
        fail_rate = float(deployment.fake.get("fail_rate", 0.0))
        if fail_rate > 0:
            n = self._calls.get(deployment.index, 0) + 1
            self._calls[deployment.index] = n
            if int(n * fail_rate) > int((n - 1) * fail_rate):
                status = int(deployment.fake.get("fail_status", 500))
                raise for_status(status, f"Injected failure from the fake provider ({deployment.upstream_model})")
        latency = float(deployment.fake.get("latency", 0.0))
        if latency:
            await trio.sleep(latency)
        else:
            await trio.lowlevel.checkpoint()

    async def send(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> UpstreamResponse:
        await self._prelude(deployment)
        created = int(time.time())
        model = deployment.upstream_model
        if endpoint == "embeddings":
            inputs = body.get("input")
            items = [inputs] if isinstance(inputs, str) else list(inputs or [])
            tokens = sum(len(str(i).split()) for i in items) or 1
            payload: dict[str, Any] = {
                "object": "list",
                "data": [{"object": "embedding", "index": i, "embedding": _embedding(str(t))} for i, t in enumerate(items)],
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        else:
            text = _answer(deployment, body)
            n = _choice_count(body)
            prompt_tokens = _prompt_tokens(body)
            completion_tokens = _count_tokens(text) * n
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}
            if endpoint == "completions":
                payload = {
                    "id": f"cmpl-fake-{next(_ids)}", "object": "text_completion", "created": created, "model": model,
                    "choices": [{"index": i, "text": text, "logprobs": None, "finish_reason": "stop"} for i in range(n)],
                    "usage": usage,
                }
            else:
                payload = {
                    "id": f"chatcmpl-fake-{next(_ids)}", "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                                for i in range(n)],
                    "usage": usage,
                }
        return UpstreamResponse(200, {"content-type": "application/json"}, orjson.dumps(payload))

    async def open_stream(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> FakeStream:
        await self._prelude(deployment)
        text = _answer(deployment, body)
        model = deployment.upstream_model
        created = int(time.time())
        n = _choice_count(body)
        chat = endpoint != "completions"
        cid = f"{'chatcmpl' if chat else 'cmpl'}-fake-{next(_ids)}"
        obj = "chat.completion.chunk" if chat else "text_completion"
        events: list[dict[str, Any]] = []

        def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
            return {"id": cid, "object": obj, "created": created, "model": model, "choices": choices}

        if chat:
            events.append(chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                                 for i in range(n)]))
        for piece in _chunks(text):
            if chat:
                events.append(chunk([{"index": i, "delta": {"content": piece}, "finish_reason": None} for i in range(n)]))
            else:
                events.append(chunk([{"index": i, "text": piece, "finish_reason": None} for i in range(n)]))
        if chat:
            events.append(chunk([{"index": i, "delta": {}, "finish_reason": "stop"} for i in range(n)]))
        else:
            events.append(chunk([{"index": i, "text": "", "finish_reason": "stop"} for i in range(n)]))
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt_tokens = _prompt_tokens(body)
            completion_tokens = _count_tokens(text) * n
            final = chunk([])
            final["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens}
            events.append(final)
        frames = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
        return FakeStream(frames, float(deployment.fake.get("chunk_latency", 0.0)))
