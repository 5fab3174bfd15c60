"""The whole app (``create_app``: handlers, observability, the logging sink) in-process.

For tests of logging, cost, the response cache and metrics that need the real wiring but no
sockets, so that they can run in virtual time (``autojump_clock``) where no thread is involved.
Handler files are written to a temporary directory, which is the config's base directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import trio

from trioproxy.config import parse_config
from trioproxy.core.pipeline import CHAT, COMPLETIONS, EMBEDDINGS, ProxyResponse, StreamRelay
from trioproxy.http.app import ProxyApp
from trioproxy.proxy import Services, create_app

__all__ = ["AUTH", "MASTER", "UPSTREAM_SECRET", "assembled_text", "build_app", "collect", "request", "running"]

MASTER = "sk-master-harness-0123456789"
UPSTREAM_SECRET = "sk-upstream-harness-9876543210"
AUTH = {"authorization": f"Bearer {MASTER}"}
ROUTES = {"chat": CHAT, "completions": COMPLETIONS, "embeddings": EMBEDDINGS}


def build_app(directory: Path, *, files: dict[str, str] | None = None, settings: dict[str, Any] | None = None,
              general: dict[str, Any] | None = None, models: list[dict[str, Any]] | None = None,
              guardrails: list[dict[str, Any]] | None = None, latency: float = 1.0) -> ProxyApp:
    """An app over fake-provider models (``fake/gpt-4o``, priced, answering after ``latency``
    seconds; ``fake/unpriced-model``; ``fake/text-embedding-3-small``).

    Virtual-time tests must not involve threads (a sync logging callback, token estimation): while
    a thread runs, the autojump clock sees an idle loop and jumps to the next deadline.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (directory / name).write_text(text)
    raw = {
        "model_list": models or [
            {"model_name": "gpt-4o", "litellm_params": {"model": "fake/gpt-4o", "latency": latency,
                                                        "api_key": UPSTREAM_SECRET}},
            {"model_name": "unpriced", "litellm_params": {"model": "fake/unpriced-model"}},
            {"model_name": "embed", "litellm_params": {"model": "fake/text-embedding-3-small"}},
        ],
        "litellm_settings": {"num_retries": 0, **(settings or {})},
        "general_settings": {"master_key": MASTER, **(general or {})},
        "guardrails": guardrails or [],
    }
    return create_app(parse_config(raw, str(directory / "config.yaml"), directory))


@asynccontextmanager
async def running(app: ProxyApp) -> AsyncIterator[Services]:
    """The app's services (the logging sink) running; drained on exit, as at shutdown."""
    proxy = app.proxy
    async with trio.open_nursery() as nursery:
        await proxy.start(nursery)
        yield proxy.services
        await proxy.stop()
        nursery.cancel_scope.cancel()


async def request(state: Services, body: dict[str, Any], route: str = "chat",
                  headers: dict[str, str] | None = None) -> ProxyResponse:
    return await state.pipeline.handle(ROUTES[route], orjson.dumps(body), {**AUTH, **(headers or {})})


async def collect(response: ProxyResponse) -> list[Any]:
    """A stream's chunks as parsed JSON ("[DONE]" last), closing it as the HTTP layer does."""
    assert isinstance(response.body, StreamRelay), response.body
    out: list[Any] = []
    try:
        async for frame in response.body:
            payload = frame[len(b"data: "):].strip()
            out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    finally:
        await response.body.aclose()
    return out


def assembled_text(chunks: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if isinstance(c, dict) and c.get("choices"))
