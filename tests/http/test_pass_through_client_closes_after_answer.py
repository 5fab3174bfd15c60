"""A client that closes once it has the whole answer did not leave early: the call is a success.

With a ``Content-Length`` the client has every byte after the last data chunk, before the router
sends the (empty) last body message; ``http.client`` closes right then, Hypercorn reports
``http.disconnect``, and the call used to be logged as a failure (``test_pass_through``'s
"failure/failure", now and then). The order is forced here: the ASGI ``send`` that carries the
answer's last byte makes the disconnect available and lets every other task run before returning.
Unit level (in-memory target through ``httpx.MockTransport``, a gate that admits everyone): the
real-process behaviour is ``test_pass_through.py``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trioproxy.auth import Identity
from trioproxy.config import parse_config
from trioproxy.core.run import Observers
from trioproxy.http.passthrough import PassThroughRouter
from trioproxy.masking import SecretScrubber

ANSWER = b'{"made": 1}'


class _OpenGate:
    async def authorize(self, headers: Any, path: str, method: str, address: str | None) -> Identity:
        return Identity.anonymous()


class _Outcomes:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_success(self, ctx: Any) -> None:
        self.seen.append("success")

    def on_failure(self, ctx: Any) -> None:
        self.seen.append(f"failure: {ctx.error!r}")


def _router(tmp_path: Path, outcomes: _Outcomes, body: bytes) -> PassThroughRouter:
    config = parse_config({"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
                           "general_settings": {"pass_through_endpoints": [
                               {"path": "/paid", "target": "http://target.invalid/api"}]}}, "cfg.yaml", tmp_path)
    def answer(request: httpx.Request) -> httpx.Response:   # streamed, as from a socket
        return httpx.Response(200, headers={"content-length": str(len(body))}, stream=httpx.ByteStream(body))

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return PassThroughRouter(config.general.pass_through_endpoints, config=config, client=client,
                             gate=_OpenGate(), observers=Observers([outcomes]),  # type: ignore[arg-type]
                             scrubber=SecretScrubber(config.secrets()))


async def _serve_to_a_client_that_closes_once_it_has_everything(router: PassThroughRouter) -> list[dict[str, Any]]:
    to_app, from_client = trio.open_memory_channel[dict[str, Any]](10)
    await to_app.send({"type": "http.request", "body": b"{}", "more_body": False})
    sent: list[dict[str, Any]] = []
    expected: int | None = None
    received = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal expected, received
        sent.append(message)
        if message["type"] == "http.response.start":
            expected = int(dict(message["headers"])[b"content-length"])
        else:
            received += len(message.get("body", b""))
        if expected is not None and received >= expected and message.get("more_body", False) is not False \
                or (expected == 0 and message["type"] == "http.response.start"):
            # the client has the whole answer and closes: Hypercorn says so before this send returns
            await to_app.send({"type": "http.disconnect"})
            await trio.testing.wait_all_tasks_blocked()

    scope = {"type": "http", "method": "POST", "path": "/paid", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]}
    await router.serve(router.match("/paid"), scope, from_client.receive, send)  # type: ignore[arg-type]
    return sent


@pytest.mark.parametrize("body", [ANSWER, b""], ids=["with-body", "empty-body"])
async def test_a_client_closing_after_the_last_byte_is_a_success(tmp_path: Path, body: bytes) -> None:
    outcomes = _Outcomes()
    router = _router(tmp_path, outcomes, body)
    sent = await _serve_to_a_client_that_closes_once_it_has_everything(router)
    assert b"".join(m.get("body", b"") for m in sent[1:]) == body
    assert outcomes.seen == ["success"]
