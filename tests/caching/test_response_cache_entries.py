"""The response cache's entries (``caching/response_cache.py``): key framing, the byte bound, what is stored, replay."""

from __future__ import annotations

from typing import Any

import orjson
from test_response_cache import _reassemble

from trioproxy.caching.response_cache import LocalCache, ResponseCache, cache_key, sse_from_response
from trioproxy.context import RequestContext
from trioproxy.core.pipeline import CHAT

DEPLOYMENT: Any = object()   # store() only checks that an upstream answered


def test_field_names_with_nul_cannot_make_two_bodies_share_a_key():
    """{"n": 1, "temperature": 0} and {'n\\x001\\x00temperature': 0} fed the same bytes to the hash:
    a client could plant a default-temperature answer under someone else's key."""
    victim = {"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o", "n": 1, "temperature": 0}
    forged = {"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o", "n\x001\x00temperature": 0}
    assert cache_key("", "chat/completions", victim) != cache_key("", "chat/completions", forged)
    # the namespace (client-chosen through cache.namespace) cannot absorb the endpoint either
    assert cache_key("a\x00b", "c", {}) != cache_key("a", "b\x00c", {})


def test_local_cache_is_bounded_in_bytes_too():
    cache = LocalCache(max_size=100, max_bytes=10)
    cache.set("a", b"aaaa", ttl=10)
    cache.set("b", b"bbbb", ttl=10)
    cache.set("c", b"cccc", ttl=10)                 # 12 bytes > 10: the least recently used goes
    assert (cache.get_now("a"), cache.get_now("b"), cache.get_now("c")) == (None, b"bbbb", b"cccc")
    assert cache.size_bytes == 8
    cache.set("b", b"bb", ttl=10)                   # replacing an entry counts its new size only
    assert cache.size_bytes == 6
    cache.set("huge", b"x" * 11, ttl=10)            # larger than the whole budget: not stored, evicts nothing
    assert len(cache) == 2 and cache.get_now("huge") is None


def test_ttl_zero_stores_nothing_and_evicts_nothing():
    cache = LocalCache(max_size=1)
    cache.set("keep", b"1", ttl=10)
    cache.set("zero", b"2", ttl=0)
    assert cache.get_now("keep") == b"1" and len(cache) == 1


def test_expired_entries_give_their_bytes_back():
    now = [0.0]
    cache = LocalCache(max_size=10, max_bytes=8, clock=lambda: now[0])
    cache.set("a", b"aaaa", ttl=1)
    now[0] = 5.0
    assert cache.get_now("a") is None and cache.size_bytes == 0


def _streamed(response: dict[str, Any], **data: Any) -> RequestContext:
    ctx = RequestContext(route=CHAT, request_headers={})
    ctx.data = {"model": "m", "messages": [], "stream": True, **data}
    ctx.stream = True
    ctx.deployment = DEPLOYMENT
    ctx.cache_key = "k"
    ctx.response = ctx.upstream_response = response   # (before hooks == after, here)
    return ctx


def test_a_stream_cut_short_is_not_stored_a_complete_one_is():
    backend = LocalCache()
    cache = ResponseCache(backend)
    cut = {"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "The answer is"}, "finish_reason": None}]}
    cache.store(_streamed(cut))
    assert backend.get_now("k") is None
    complete = {**cut, "choices": [{**cut["choices"][0], "finish_reason": "stop"}]}
    cache.store(_streamed(complete))
    assert orjson.loads(backend.get_now("k")) == complete


def test_a_streamed_answer_to_a_logprobs_request_is_not_stored():
    """The stream assembler does not keep logprobs: a later plain hit would lack them."""
    backend = LocalCache()
    complete = {"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}]}
    ResponseCache(backend).store(_streamed(complete, logprobs=True))
    assert backend.get_now("k") is None


def test_replay_keeps_refusal_and_logprobs():
    logprobs = {"content": [{"token": "No", "logprob": -0.1, "bytes": [78, 111], "top_logprobs": []}]}
    answer = {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
         "logprobs": logprobs, "finish_reason": "stop"}]}
    frames = sse_from_response(answer, include_usage=False)
    first = orjson.loads(frames[0][len(b"data: "):])
    assert first["choices"][0]["delta"]["refusal"] == "I can't help with that."
    assert first["choices"][0]["logprobs"] == logprobs
    text = {"id": "t", "object": "text_completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "text": "hi", "logprobs": {"tokens": ["hi"], "token_logprobs": [-0.2]}, "finish_reason": "stop"}]}
    first_text = orjson.loads(sse_from_response(text, include_usage=False)[0][len(b"data: "):])
    assert first_text["choices"][0]["logprobs"] == {"tokens": ["hi"], "token_logprobs": [-0.2]}
    assert _reassemble(frames, True)["choices"][0]["finish_reason"] == "stop"


async def test_a_stored_value_that_is_not_an_object_is_a_miss_for_a_stream():
    backend = LocalCache()
    cache = ResponseCache(backend)
    ctx = _streamed({})
    ctx.cache_key = None
    body = {"model": "m", "messages": [], "stream": True}
    backend.set(cache_key("", "chat/completions", body), b"[1, 2]", ttl=10)
    assert await cache.lookup(ctx, body) is None      # not an AttributeError (a 500) for every such request
