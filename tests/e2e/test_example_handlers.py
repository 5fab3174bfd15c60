"""Every example handler in ``handlers/`` does what its docstring says (through the real pipeline)."""

from __future__ import annotations

import importlib

import orjson
import pytest
import trio

from support.inprocess import Upstream, call, chat_body, collect, frame_json, make_pipeline


def example(name: str):
    return importlib.import_module(f"handlers.{name}").proxy_handler_instance


async def test_change_model_rewrites_the_model():
    pipeline = make_pipeline([example("change_model")])
    response = await call(pipeline, chat_body())
    # the example renames the model to one this config does not serve: a 404 naming it
    assert response.status == 404
    assert "my-new-model" in orjson.loads(response.body)["error"]["message"]


async def test_mask_word_masks_before_the_upstream_sees_it():
    upstream = Upstream()
    pipeline = make_pipeline([example("mask_word")], upstream=upstream)
    response = await call(pipeline, chat_body("say the word - `litellm`"))
    assert response.status == 200
    assert upstream.requests[0]["messages"][0]["content"] == "say the word - `*******`"


async def test_reject_with_string_answers_as_the_assistant():
    upstream = Upstream()
    pipeline = make_pipeline([example("reject_with_string")], upstream=upstream)
    response = await call(pipeline, chat_body("Hello world"))
    body = orjson.loads(response.body)
    assert response.status == 200 and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "This is an invalid response"
    assert upstream.requests == []


async def test_moderation_rejects_hello_world():
    pipeline = make_pipeline([example("moderation")])
    response = await call(pipeline, chat_body("hello world"))
    assert response.status == 400
    assert orjson.loads(response.body)["error"]["message"] == "Violated content safety policy"
    assert (await call(pipeline, chat_body("hello there"))).status == 200


@pytest.mark.parametrize(("status", "code", "expected_status", "message"), [
    (400, "context_length_exceeded", 400, "Your prompt is too long. Please reduce the length and try again."),
    (429, None, 429, "Rate limit exceeded. Please try again in a moment."),
])
async def test_error_transformer(status, code, expected_status, message):
    upstream = Upstream(status=status, error={"error": {"message": "Prompt exceeds context window", "code": code}})
    pipeline = make_pipeline([example("error_transformer")], upstream=upstream, settings={"num_retries": 0})
    response = await call(pipeline, chat_body())
    assert response.status == expected_status
    assert orjson.loads(response.body)["error"]["message"] == message


async def test_error_transformer_leaves_other_errors_alone():
    upstream = Upstream(status=500, error={"error": {"message": "boom"}})
    pipeline = make_pipeline([example("error_transformer")], upstream=upstream, settings={"num_retries": 0})
    response = await call(pipeline, chat_body())
    assert response.status == 500 and "boom" in orjson.loads(response.body)["error"]["message"]


async def test_header_injector_on_success_and_failure():
    pipeline = make_pipeline([example("header_injector")])
    ok = await call(pipeline, chat_body())
    assert ok.headers["x-custom-header"] == "custom-value"
    failed = await call(pipeline, {"model": "nope", "messages": []})
    assert failed.status == 404 and failed.headers["x-custom-header"] == "custom-value"


async def test_streaming_iterator_rewrites_the_stream():
    pipeline = make_pipeline([example("streaming_iterator")], upstream=Upstream(words=["Hello", " there"]))
    frames = await collect(await call(pipeline, chat_body(stream=True)))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in map(frame_json, frames[:-1]) if c["choices"])
    assert text == "HELLO THERE"


async def test_parallel_request_limiter(autojump_clock):
    from handlers.parallel_request_limiter import ParallelRequestLimiter

    limiter = ParallelRequestLimiter(max_parallel_requests=1)
    pipeline = make_pipeline([limiter], upstream=Upstream(delay=1.0))
    results: list[int] = []

    async def one() -> None:
        results.append((await call(pipeline, chat_body())).status)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one)
        await trio.sleep(0.1)
        nursery.start_soon(one)            # while the first is in flight: refused
    assert sorted(results) == [200, 429]
    assert (await call(pipeline, chat_body())).status == 200   # the count went back down
    from trioproxy.auth import UserAPIKeyAuth, hash_key

    key = limiter._key(UserAPIKeyAuth(api_key=hash_key("sk-master-000000000")))
    assert pipeline.cache.get_cache(key=key) == 0
