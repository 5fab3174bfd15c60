"""The response cache: the key, the local backend, SSE replay, per-request controls, and hits
through the real app (answered without the upstream's latency, cost 0, logged as cache hits)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import trio

from support.app_harness import assembled_text, build_app, collect, request, running
from trioproxy.caching.response_cache import LocalCache, cache_key, sse_from_response
from trioproxy.config import ConfigError
from trioproxy.streaming import SSEParser, StreamAssembler, parse_chunk

#: the repository (handlers/ is imported from there)
REPO = Path(__file__).resolve().parents[2]

CACHE = {"cache": True, "cache_params": {"type": "local", "ttl": 600, "max_size": 100}}


def chat(content: str = "hello", **extra):
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], **extra}


# -- the key ----------------------------------------------------------------------------------------

def test_key_ignores_what_cannot_change_the_answer():
    base = chat(temperature=0.2)
    same = [
        {**chat(temperature=0.2), "stream": True, "stream_options": {"include_usage": True}},
        {**chat(temperature=0.2), "user": "someone", "metadata": {"x": 1}},
        dict(reversed(list(base.items()))),                          # field order
    ]
    key = cache_key("", "chat/completions", base)
    assert all(cache_key("", "chat/completions", body) == key for body in same)


@pytest.mark.parametrize("change", [
    {"temperature": 0.3}, {"model": "other"}, {"messages": [{"role": "user", "content": "bye"}]},
    {"seed": 7}, {"some_future_parameter": True}, {"n": 2},
])
def test_key_changes_with_what_can_change_the_answer(change):
    base = chat(temperature=0.2)
    assert cache_key("", "chat/completions", {**base, **change}) != cache_key("", "chat/completions", base)


def test_key_separates_endpoints_and_namespaces():
    body = chat()
    keys = {cache_key("", "chat/completions", body), cache_key("", "completions", body),
            cache_key("team-a", "chat/completions", body)}
    assert len(keys) == 3


# -- the local backend --------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_local_cache_expires_entries_and_evicts_the_least_recently_used():
    clock = Clock()
    cache = LocalCache(max_size=2, clock=clock)
    cache.set("a", b"A", ttl=10)
    cache.set("b", b"B", ttl=100)
    assert cache.get_now("a") == b"A"           # a is now the most recently used
    cache.set("c", b"C", ttl=100)               # evicts b
    assert (cache.get_now("a"), cache.get_now("b"), cache.get_now("c")) == (b"A", None, b"C")
    clock.now = 10.0
    assert cache.get_now("a") is None and len(cache) == 1   # expired exactly at its ttl
    clock.now = 50.0
    assert cache.get_now("c", max_age=60) == b"C" and cache.get_now("c", max_age=30) is None


# -- SSE replay -------------------------------------------------------------------------------------

def _reassemble(frames: list[bytes], chat_mode: bool) -> dict:
    parser, assembler = SSEParser(), StreamAssembler(chat_mode)
    payloads = [p for f in frames for p in parser.feed(f)]
    assert payloads[-1] == b"[DONE]"
    for payload in payloads[:-1]:
        assembler.add(parse_chunk(payload, chat_mode))
    return assembler.build()


def test_a_stored_chat_answer_replays_as_the_same_stream():
    answer = {"id": "chatcmpl-1", "object": "chat.completion", "created": 5, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there."}, "finish_reason": "stop"},
                          {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
                              {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                           "finish_reason": "tool_calls"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
    frames = sse_from_response(answer, include_usage=True)
    rebuilt = _reassemble(frames, True)
    assert rebuilt["choices"][0]["message"]["content"] == "Hi there."
    assert rebuilt["choices"][1]["message"]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert [c["finish_reason"] for c in rebuilt["choices"]] == ["stop", "tool_calls"]
    assert rebuilt["usage"] == answer["usage"] and rebuilt["id"] == "chatcmpl-1"
    assert b'"usage"' not in b"".join(sse_from_response(answer, include_usage=False))


def test_a_stored_text_completion_replays_as_a_text_stream():
    answer = {"id": "cmpl-1", "object": "text_completion", "created": 5, "model": "m",
              "choices": [{"index": 0, "text": "once upon a time", "finish_reason": "length", "logprobs": None}]}
    rebuilt = _reassemble(sse_from_response(answer, include_usage=True), False)
    assert rebuilt["choices"][0]["text"] == "once upon a time"
    assert rebuilt["choices"][0]["finish_reason"] == "length"


# -- through the app --------------------------------------------------------------------------------

async def test_identical_request_is_answered_from_the_cache(tmp_path, autojump_clock):
    app = build_app(tmp_path, settings=CACHE)
    async with running(app) as state:
        t0 = trio.current_time()
        first = await request(state, chat(temperature=0))
        assert trio.current_time() - t0 == pytest.approx(1.0)          # the upstream's latency
        t1 = trio.current_time()
        second = await request(state, chat(temperature=0, user="another-end-user"))
        assert trio.current_time() == t1                               # no upstream call at all
        different = await request(state, chat(temperature=1))
    assert first.body == second.body and "x-trioproxy-cache-hit" not in first.headers
    assert second.headers["x-trioproxy-cache-hit"] == "true"
    assert second.headers["x-trioproxy-response-cost"] == "0"
    assert float(first.headers["x-trioproxy-response-cost"]) > 0
    assert "x-trioproxy-cache-hit" not in different.headers
    metrics = state.metrics.render().decode()
    assert 'trioproxy_cache_lookups_total{model="gpt-4o",result="hit",route="chat/completions"} 1.0' in metrics
    assert 'trioproxy_cache_lookups_total{model="gpt-4o",result="miss",route="chat/completions"} 2.0' in metrics


async def test_streams_are_cached_and_replayed_and_serve_plain_requests(tmp_path, autojump_clock):
    app = build_app(tmp_path, settings=CACHE)
    async with running(app) as state:
        live = await collect(await request(state, chat("tell me", stream=True)))
        t1 = trio.current_time()
        hit = await request(state, chat("tell me", stream=True, stream_options={"include_usage": True}))
        assert hit.headers["x-trioproxy-cache-hit"] == "true"
        replayed = await collect(hit)
        plain = await request(state, chat("tell me"))
        assert trio.current_time() == t1
    assert live[-1] == replayed[-1] == "[DONE]"
    assert assembled_text(replayed) == assembled_text(live)
    assert replayed[-2]["usage"]["completion_tokens"] > 0               # this client asked for usage
    assert plain.headers["x-trioproxy-cache-hit"] == "true"
    assert orjson.loads(plain.body)["choices"][0]["message"]["content"] == assembled_text(live)


async def test_no_cache_bypasses_the_lookup_and_no_store_does_not_store(tmp_path, autojump_clock):
    app = build_app(tmp_path, settings=CACHE)
    async with running(app) as state:
        await request(state, chat("a"))
        bypass = await request(state, chat("a", cache={"no-cache": True}))
        assert "x-trioproxy-cache-hit" not in bypass.headers
        await request(state, chat("b", cache={"no-store": True}))
        again = await request(state, chat("b"))
        assert "x-trioproxy-cache-hit" not in again.headers           # b was never stored
        assert (await request(state, chat("b"))).headers.get("x-trioproxy-cache-hit") == "true"
        bad = await request(state, chat("c", cache={"no-cache": "yes"}))
    assert bad.status == 400 and "cache.no-cache" in orjson.loads(bad.body)["error"]["message"]


async def test_supported_call_types_limit_what_is_cached(tmp_path, autojump_clock):
    settings = {"cache": True, "cache_params": {"type": "local", "supported_call_types": ["acompletion"]}}
    app = build_app(tmp_path, settings=settings)
    async with running(app) as state:
        body = {"model": "embed", "input": "vector me"}
        await request(state, body, route="embeddings")
        second = await request(state, body, route="embeddings")
        await request(state, chat("x"))
        chat_hit = await request(state, chat("x"))
    assert "x-trioproxy-cache-hit" not in second.headers
    assert chat_hit.headers["x-trioproxy-cache-hit"] == "true"


async def test_embeddings_are_cached_by_default(tmp_path, autojump_clock):
    app = build_app(tmp_path, settings=CACHE)
    async with running(app) as state:
        body = {"model": "embed", "input": ["one", "two"]}
        first = await request(state, body, route="embeddings")
        second = await request(state, body, route="embeddings")
    assert second.headers["x-trioproxy-cache-hit"] == "true" and second.body == first.body


def test_litellm_call_types_of_endpoints_not_served_cache_nothing(tmp_path):
    """LiteLLM's ``atranscription``, ``aimage_generation``… name endpoints trioproxy does not serve:
    accepted (the config keeps its meaning), nothing of theirs can be cached."""
    app = build_app(tmp_path, settings={"cache": True, "cache_params": {
        "type": "local", "supported_call_types": ["acompletion", "atranscription", "aimage_generation"]}})
    assert app.proxy.services.response_cache is not None


def test_cache_true_alone_means_redis_in_litellm_and_is_refused(tmp_path):
    """LiteLLM: ``cache: true`` without ``cache_params.type`` is a Redis cache (issue #15 item 4)."""
    for settings in ({"cache": True}, {"cache": True, "cache_params": {"ttl": 60}}):
        with pytest.raises(ConfigError) as info:
            build_app(tmp_path, settings=settings)
        message = str(info.value)
        assert "litellm_settings.cache: cache: true without cache_params.type means a Redis cache in LiteLLM" in message
        assert "issue #13" in message and "cache_params: {type: local}" in message


def test_unknown_call_type_is_a_startup_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        build_app(tmp_path, settings={"cache": True, "cache_params": {"type": "local",
                                                                      "supported_call_types": ["completion", "images"]}})
    assert "litellm_settings.cache_params.supported_call_types: unknown call type 'images'" in str(info.value)


async def test_cache_hit_events_are_pre_post_success_success(tmp_path):
    """The seeds' example: two identical calls, the CustomLogger counts 4 events."""
    root = REPO
    app = build_app(root, settings={**CACHE, "callbacks": ["handlers.custom_logger.proxy_handler_instance"]})
    async with running(app) as state:
        await request(state, chat("Hi 👋 - i'm openai", model="unpriced"))
        await request(state, chat("Hi 👋 - i'm openai", model="unpriced"))
    handler = state.handlers.loggers[0].obj
    assert handler.errors == []
    # per request the order is fixed (pre, post, success); across the two requests it is not
    assert len(handler.states) == 4
    assert sorted(handler.states) == ["post", "pre", "success", "success"]


async def test_a_stream_is_cached_as_the_upstream_sent_it_not_as_the_hooks_changed_it():
    """A replay runs the hooks again: storing their output would apply them twice (and could carry
    what a hook added for one user to another)."""
    from support.inprocess import Upstream, call, chat_body, collect, frame_json, make_pipeline
    from trioproxy.caching.response_cache import LocalCache, ResponseCache

    class Tagger:
        async def async_post_call_streaming_hook(self, user_api_key_dict, response):
            for choice in response.get("choices") or []:
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    delta["content"] += "!"
            return response

    upstream = Upstream(words=["Hello", " there"])
    cache = ResponseCache(LocalCache())
    observer_store = cache.store

    class StoreOnSuccess:
        def on_upstream_request(self, ctx): ...
        def on_failure(self, ctx): ...
        def on_success(self, ctx):
            observer_store(ctx)

    pipeline = make_pipeline([Tagger()], upstream=upstream, observers=[StoreOnSuccess()], response_cache=cache)

    def text(frames):
        return "".join((c["choices"][0].get("delta") or {}).get("content") or ""
                       for c in map(frame_json, b"".join(frames).split(b"\n\n")[:-1])
                       if isinstance(c, dict) and c.get("choices"))

    def split(frames):
        return [f + b"\n\n" for f in b"".join(frames).split(b"\n\n") if f]

    first = await collect(await call(pipeline, chat_body(stream=True)))
    assert text(split(first)) == "Hello! there!"              # the hook ran on each chunk
    backend = pipeline.response_cache.backend
    (key,) = list(backend._entries)
    stored = orjson.loads(backend.get_now(key))
    assert stored["choices"][0]["message"]["content"] == "Hello there"   # the upstream's answer
    second = await collect(await call(pipeline, chat_body(stream=True)))
    assert len(upstream.requests) == 1                       # the second one was a cache hit
    assert text(split(second)) == "Hello there!"             # replayed as one chunk, hook applied once
