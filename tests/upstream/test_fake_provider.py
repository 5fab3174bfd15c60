"""The built-in ``fake`` provider: its knobs (error injection, latency, a fixed answer) and its checks of a request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from support.inprocess import Upstream, call, collect, make_pipeline
from trioproxy.config import parse_config
from trioproxy.errors import RateLimitError
from trioproxy.upstream.fake import FakeProvider


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("n", "code"), [("two", "invalid_type"), (1.5, "invalid_type"), (True, "invalid_type"),
                                         (0, "integer_out_of_range"), (10**6, "integer_out_of_range")])
async def test_fake_provider_rejects_a_bad_n_with_a_400(n: Any, code: str, stream: bool) -> None:
    """``n: "two"`` was a 500 (ValueError in the fake provider); ``n: 1000000`` built a million choices
    on the Trio thread."""
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "n": n, "stream": stream}
    response = await call(make_pipeline(upstream=Upstream()), body)
    assert response.status == 400, response.body
    error = orjson.loads(response.body)["error"]
    assert error["param"] == "n" and error["code"] == code


async def test_fake_provider_accepts_content_parts_with_non_string_text() -> None:
    """A content part ``{"type": "text", "text": 5}`` was a 500 (TypeError joining the text)."""
    body = {"model": "fake-model", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    response = await call(make_pipeline(), body)
    assert response.status == 200, response.body
    streamed = await call(make_pipeline(), {**body, "stream": True})
    frames = b"".join(await collect(streamed))
    assert frames.endswith(b"data: [DONE]\n\n")


# -- the knobs ---------------------------------------------------------------------------------------

async def test_fake_error_injection_is_deterministic():
    provider = FakeProvider()
    deployment = _deployment(fail_rate=0.25, fail_status=429)
    outcomes = []
    for _ in range(8):
        try:
            await provider.send(deployment, "chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
            outcomes.append("ok")
        except RateLimitError:
            outcomes.append("429")
    assert outcomes == ["ok", "ok", "ok", "429"] * 2              # every 4th request fails


async def test_fake_latency_and_mock_response(autojump_clock):
    provider = FakeProvider()
    deployment = _deployment(latency=2.5, mock_response="fixed answer", chunk_latency=0.5)
    response = await provider.send(deployment, "chat/completions", {"messages": []})
    assert trio.current_time() == pytest.approx(2.5)
    assert orjson.loads(response.body)["choices"][0]["message"]["content"] == "fixed answer"
    stream = await provider.open_stream(deployment, "chat/completions", {"messages": []})
    assert trio.current_time() == pytest.approx(5.0)
    pieces = [piece async for piece in stream.aiter_bytes()]
    assert pieces[-1] == b"data: [DONE]\n\n"
    assert trio.current_time() == pytest.approx(5.0 + 0.5 * (len(pieces) - 1))


def _deployment(**params):
    raw = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/fm", **params}}]}
    return parse_config(raw, "<test>", Path.cwd()).deployments[0]
