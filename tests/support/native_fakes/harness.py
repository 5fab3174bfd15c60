"""Building deployments and an AdapterProvider for the provider tests (no config wiring needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from trioproxy.config import Deployment
from trioproxy.masking import SecretScrubber
from trioproxy.upstream.http11 import Http11Pool
from trioproxy.upstream.providers.provider import AdapterProvider

__all__ = ["collect_stream", "deployment", "provider_for", "sse_events"]

_COMMON = {"api_base", "api_key", "timeout", "stream_timeout", "extra_headers", "model_info"}


def deployment(model: str, *, model_name: str = "public-model", index: int = 0, **params: Any) -> Deployment:
    """A Deployment as the config layer would build it for ``model: <prefix>/<name>`` and ``params``."""
    prefix, _, name = model.partition("/")
    return Deployment(
        model_name=model_name, provider=prefix, upstream_model=name,
        api_base=(params.get("api_base") or "").rstrip("/") or None, api_key=params.get("api_key"),
        timeout=float(params.get("timeout", 30.0)), stream_timeout=float(params.get("stream_timeout", 30.0)),
        max_retries=None, weight=1.0,
        extra_params={k: v for k, v in params.items() if k not in _COMMON},
        extra_headers=dict(params.get("extra_headers") or {}),
        input_cost_per_token=None, output_cost_per_token=None, fake={},
        model_info=dict(params.get("model_info") or {}), index=index)


@asynccontextmanager
async def provider_for(environ: dict[str, str] | None = None, **kwargs: Any) -> AsyncIterator[AdapterProvider]:
    pool = Http11Pool()
    scrubber = SecretScrubber()
    provider = AdapterProvider(pool, scrubber, environ=environ or {}, **kwargs)
    provider.scrubber = scrubber   # type: ignore[attr-defined]  (tests check masking)
    provider.pool = pool           # type: ignore[attr-defined]
    try:
        yield provider
    finally:
        await pool.aclose()


def sse_events(data: bytes) -> list[Any]:
    """The payloads of OpenAI SSE bytes: dicts, and the string "[DONE]"."""
    out: list[Any] = []
    for block in data.split(b"\n\n"):
        if not block.strip():
            continue
        assert block.startswith(b"data: "), block
        payload = block[6:]
        out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


async def collect_stream(stream: Any) -> list[Any]:
    data = b""
    try:
        async for piece in stream.aiter_bytes():
            data += piece
    finally:
        await stream.aclose()
    return sse_events(data)
