"""Every routing attempt that answered is settled exactly once, whichever way its request ends
(``RequestRun.settle_attempt``, docs/routing.md "Wiring"), in virtual time.

Observed through routing itself: ``least-busy`` counts a deployment's requests in flight (an attempt
left open would stay counted for ever) and, with ``allowed_fails: 0``, one failure the upstream made
cools the deployment down while a failure that was nobody's fault (the client left, a guardrail
refused) does not.
"""

from __future__ import annotations

import httpx
import orjson
import trio

from support.inprocess import (
    TimedModeration,
    Upstream,
    call,
    chat_body,
    collect,
    make_pipeline,
    sse_chunks,
)
from trioproxy.core.pipeline import Pipeline

ROUTER = {"routing_strategy": "least-busy", "allowed_fails": 0, "cooldown_time": 60}
KEY = "0"       # the first deployment's routing id (its position in model_list)


def state(pipeline: Pipeline) -> tuple[int, bool]:
    routing = pipeline.router.routing
    return routing.strategy.in_flight(KEY), routing.cooldowns.is_cooling(KEY)


class NoDoneUpstream(Upstream):
    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        self.requests.append(body)
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=b"".join(sse_chunks(["a", "b"])[:-1]))


async def test_an_answer_settles_its_attempt(autojump_clock):
    pipeline = make_pipeline(router=ROUTER)
    assert (await call(pipeline, chat_body())).status == 200
    assert state(pipeline) == (0, False)
    frames = await collect(await call(pipeline, chat_body(stream=True)))
    assert frames[-1] == b"data: [DONE]\n\n"
    assert state(pipeline) == (0, False)


async def test_a_stream_the_upstream_broke_counts_against_it(autojump_clock):
    pipeline = make_pipeline(upstream=NoDoneUpstream(), router=ROUTER)
    frames = await collect(await call(pipeline, chat_body(stream=True)))
    assert b"upstream_stream_interrupted" in frames[-1]
    assert state(pipeline) == (0, True)


async def test_a_client_that_leaves_mid_stream_abandons_the_attempt(autojump_clock):
    pipeline = make_pipeline(upstream=Upstream(words=["a", "b", "c"], chunk_delay=1.0), router=ROUTER)
    response = await call(pipeline, chat_body(stream=True))
    with trio.move_on_after(1.5):
        await collect(response)
    assert state(pipeline) == (0, False)


async def test_a_guardrail_refusing_an_answer_abandons_the_attempt(autojump_clock):
    pipeline = make_pipeline([TimedModeration(1.0, reject=True)], router=ROUTER)
    response = await call(pipeline, chat_body())
    assert response.status == 400 and pipeline.test_upstream.answered_at == 0.0   # the upstream had answered
    assert state(pipeline) == (0, False)


async def test_a_failed_upstream_call_is_settled_by_the_plan(autojump_clock):
    pipeline = make_pipeline(upstream=Upstream(status=503), router=ROUTER)
    assert (await call(pipeline, chat_body())).status == 503
    assert state(pipeline) == (0, True)
