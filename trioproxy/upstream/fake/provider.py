"""The fake provider itself: deterministic answers as bytes, the way an upstream sends them.

Error injection (``fail_rate``/``fail_status``) counts requests per deployment, so a rate of 0.25
fails exactly every 4th one; ``latency`` / ``chunk_latency`` sleep in Trio time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
import trio

from ...errors import for_status
from ..base import UpstreamResponse
from .embeddings import embeddings
from .logprobs import chat_logprobs, chunks, completion_logprobs, top_logprobs
from .reply import call_id, choice_count, count_tokens, next_id, reply
from .reply import prompt_tokens as count_prompt_tokens

if TYPE_CHECKING:
    from ...config import Deployment

__all__ = ["FakeProvider", "FakeStream"]


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
            payload = await embeddings(body, model)
        else:
            chat = endpoint != "completions"
            n = choice_count(body)
            top = top_logprobs(body, chat)
            text, call = reply(deployment, body, chat)
            pieces = chunks(text) if text is not None else []
            prompt_tokens = count_prompt_tokens(body)
            completion_tokens = count_tokens(text if call is None else call["arguments"]) * n
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}
            if not chat:
                payload = {
                    "id": f"cmpl-fake-{next_id()}", "object": "text_completion", "created": created, "model": model,
                    "choices": [{"index": i, "text": text,
                                 "logprobs": None if top is None else completion_logprobs(pieces, top),
                                 "finish_reason": "stop"} for i in range(n)],
                    "usage": usage,
                }
            else:
                choices = []
                for i in range(n):
                    message: dict[str, Any] = {"role": "assistant", "content": text}
                    if call is not None:
                        message["tool_calls"] = [{"id": call_id(), "type": "function", "function": dict(call)}]
                    choices.append({"index": i, "message": message,
                                    "logprobs": None if top is None else chat_logprobs(pieces, top),
                                    "finish_reason": "stop" if call is None else "tool_calls"})
                payload = {
                    "id": f"chatcmpl-fake-{next_id()}", "object": "chat.completion", "created": created, "model": model,
                    "choices": choices, "usage": usage,
                }
        return UpstreamResponse(200, {"content-type": "application/json"}, orjson.dumps(payload))

    async def open_stream(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> FakeStream:
        await self._prelude(deployment)
        model = deployment.upstream_model
        created = int(time.time())
        n = choice_count(body)
        chat = endpoint != "completions"
        top = top_logprobs(body, chat)
        text, call = reply(deployment, body, chat)
        cid = f"{'chatcmpl' if chat else 'cmpl'}-fake-{next_id()}"
        obj = "chat.completion.chunk" if chat else "text_completion"

        def steps(i: int) -> list[dict[str, Any]]:
            """Choice ``i``'s pieces, one per chunk (OpenAI sends one choice per chunk)."""
            if call is not None:
                arguments = call["arguments"]
                head = {"index": 0, "id": call_id(), "type": "function",
                        "function": {"name": call["name"], "arguments": ""}}
                return [{"index": i, "delta": {"role": "assistant", "content": None, "tool_calls": [head]},
                         "logprobs": None, "finish_reason": None},
                        *({"index": i, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": arguments[k:k + 16]}}]},
                           "logprobs": None, "finish_reason": None} for k in range(0, len(arguments), 16)),
                        {"index": i, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}]
            assert text is not None
            pieces, offset, out = chunks(text), 0, []
            if chat:
                out.append({"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                            "finish_reason": None})
            for piece in pieces:
                if chat:
                    out.append({"index": i, "delta": {"content": piece}, "finish_reason": None,
                                "logprobs": None if top is None else chat_logprobs([piece], top)})
                else:
                    out.append({"index": i, "text": piece, "finish_reason": None,
                                "logprobs": None if top is None else completion_logprobs([piece], top, offset)})
                offset += len(piece)
            out.append({"index": i, "delta": {}, "logprobs": None, "finish_reason": "stop"} if chat else
                       {"index": i, "text": "", "logprobs": None, "finish_reason": "stop"})
            return out

        per_choice = [steps(i) for i in range(n)]
        events: list[dict[str, Any]] = [
            {"id": cid, "object": obj, "created": created, "model": model, "choices": [choice[j]]}
            for j in range(len(per_choice[0])) for choice in per_choice
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt_tokens = count_prompt_tokens(body)
            completion_tokens = count_tokens(text if call is None else call["arguments"]) * n
            events.append({"id": cid, "object": obj, "created": created, "model": model, "choices": [],
                           "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                     "total_tokens": prompt_tokens + completion_tokens}})
        frames = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
        return FakeStream(frames, float(deployment.fake.get("chunk_latency", 0.0)))
