"""The scheduler's rules, one test per row of the README's hook table (pure: no server, no Trio
structure beyond awaiting). End-to-end versions of each row are in ``test_hooks_e2e.py``."""

from __future__ import annotations

import pytest

from trioproxy import HTTPException
from trioproxy.errors import BadRequestError, GuardrailViolationError, HookCrashedError, ProxyError
from trioproxy.hooks.loader import inspect_handler
from trioproxy.hooks.scheduler import (
    Answer,
    HookPlan,
    chain_iterators,
    classify,
    run_chunk_hooks,
    run_failure,
    run_post_call_success,
    run_pre_call,
    run_response_headers,
)


async def invoke(call, values):
    return await call.call(values)


def plan(*objects):
    return HookPlan([inspect_handler(f"h{i}", obj, f"callbacks[{i}]") for i, obj in enumerate(objects)])


def values(**extra):
    base = {"user_api_key_dict": None, "cache": None, "data": {"messages": []}, "request_data": None,
            "call_type": "completion", "request_headers": {}, "response": None}
    base["request_data"] = base["data"]
    base.update(extra)
    return base


class Returns:
    def __init__(self, result, log=None, name=""):
        self.result, self.log, self.name = result, log, name

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        if self.log is not None:
            self.log.append((self.name, dict(data)))
        if isinstance(self.result, BaseException) and getattr(self, "raise_it", False):
            raise self.result
        return self.result


async def test_pre_call_none_keeps_and_dict_replaces_in_order():
    log = []
    p = plan(Returns({"model": "a"}, log, "first"), Returns(None, log, "second"), Returns({"model": "c"}, log, "third"))
    v = values()
    assert await run_pre_call(p.calls("pre_call", {}), invoke, v) is None
    assert v["data"] == {"model": "c"}
    assert [n for n, _ in log] == ["first", "second", "third"]
    assert log[1][1] == {"model": "a"}                      # each sees the previous one's data


async def test_pre_call_string_is_an_answer_and_stops_the_chain():
    log = []
    p = plan(Returns("no thanks", log, "first"), Returns(None, log, "second"))
    result = await run_pre_call(p.calls("pre_call", {}), invoke, values())
    assert result == Answer("no thanks", "h0") and len(log) == 1


async def test_pre_call_returned_exception_rejects():
    p = plan(Returns(ValueError("nope")))
    with pytest.raises(BadRequestError, match="nope"):
        await run_pre_call(p.calls("pre_call", {}), invoke, values())


async def test_pre_call_raised_plain_exception_is_a_crash_naming_handler():
    h = Returns(RuntimeError("bug"))
    h.raise_it = True
    with pytest.raises(HookCrashedError) as info:
        await run_pre_call(plan(h).calls("pre_call", {}), invoke, values())
    assert "h0" in info.value.message and "async_pre_call_hook" in info.value.message
    assert info.value.status_code == 500


class PostCall:
    def __init__(self, result):
        self.result = result

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result(response) if callable(self.result) else self.result


async def test_post_call_non_none_replaces_response():
    p = plan(PostCall(lambda r: r + "+a"), PostCall(None), PostCall(lambda r: r + "+c"))
    assert await run_post_call_success(p.calls("post_call_success", {}), invoke, values(response="r")) == "r+a+c"


async def test_post_call_raise_fails_the_call():
    with pytest.raises(ProxyError) as info:
        await run_post_call_success(plan(PostCall(HTTPException(422, "no"))).calls("post_call_success", {}),
                                    invoke, values(response="r"))
    assert info.value.status_code == 422


class Chunk:
    def __init__(self, suffix):
        self.suffix = suffix

    async def async_post_call_streaming_hook(self, user_api_key_dict, response):
        return None if self.suffix is None else response + self.suffix


async def test_chunk_hooks_replace_in_order():
    p = plan(Chunk("1"), Chunk(None), Chunk("3"))
    assert await run_chunk_hooks(p.calls("post_call_streaming", {}), invoke, values(response="c")) == "c13"


class Wrap:
    def __init__(self, tag):
        self.tag = tag

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        async for item in response:
            yield item + self.tag


async def test_iterators_wrap_in_config_order():
    async def source():
        for item in ("x", "y"):
            yield item

    p = plan(Wrap("A"), Wrap("B"))
    outer, created = chain_iterators(p.calls("streaming_iterator", {}), source(), values())
    assert [item async for item in outer] == ["xAB", "yAB"]
    assert len(created) == 4   # each hook: its generator and the wrapper naming it


class Failure:
    def __init__(self, result, raise_it=False):
        self.result, self.raise_it, self.called = result, raise_it, 0

    async def async_post_call_failure_hook(self, request_data, original_exception, user_api_key_dict,
                                           traceback_str=None):
        self.called += 1
        if self.raise_it:
            raise self.result
        return self.result


async def test_failure_first_http_exception_wins_all_run():
    hooks = [Failure(RuntimeError("broken"), raise_it=True), Failure(None),
             Failure(HTTPException(503, "first")), Failure(HTTPException(400, "second"))]
    replacement = await run_failure(plan(*hooks).calls("failure", {}), invoke,
                                    values(original_exception=ValueError(), traceback_str=""))
    assert replacement.status_code == 503 and replacement.message == "first"
    assert [h.called for h in hooks] == [1, 1, 1, 1]


async def test_failure_raised_http_exception_counts_too():
    replacement = await run_failure(plan(Failure(HTTPException(429, "slow"), raise_it=True)).calls("failure", {}),
                                    invoke, values(original_exception=ValueError(), traceback_str=""))
    assert replacement.status_code == 429


async def test_failure_without_replacement_keeps_the_error():
    assert await run_failure(plan(Failure(None)).calls("failure", {}), invoke,
                             values(original_exception=ValueError(), traceback_str="")) is None


class Headers:
    def __init__(self, result, raise_it=False):
        self.result, self.raise_it = result, raise_it

    async def async_post_call_response_headers_hook(self, data, user_api_key_dict, response, request_headers=None):
        if self.raise_it:
            raise RuntimeError("broken")
        return self.result


async def test_headers_merge_later_wins_and_raising_is_skipped():
    p = plan(Headers({"X-A": "1", "x-b": "1"}), Headers(None, raise_it=True), Headers({"x-b": "2"}),
             Headers("not a dict"), Headers({"x-bad": "a\r\nb"}))
    merged = await run_response_headers(p.calls("response_headers", {}), invoke, values())
    assert merged == {"x-a": "1", "x-b": "2"}


def test_classify():
    p = plan(Returns(None))
    call = p.calls("pre_call", {})[0]
    assert classify(call, HTTPException(418, "teapot")).status_code == 418
    crashed = classify(call, KeyError("x"))
    assert isinstance(crashed, HookCrashedError) and crashed.status_code == 500


def test_guardrail_exceptions_are_violations_naming_the_guardrail():
    from trioproxy import CustomGuardrail
    from trioproxy.config import GuardrailSpec

    class G(CustomGuardrail):
        async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
            raise ValueError("found a bad word")

    spec = GuardrailSpec("no-bad-words", "x.G", ["pre_call"], False, "pass_through", {})
    loaded = inspect_handler("no-bad-words", G(guardrail_name="no-bad-words", event_hook="pre_call"),
                             "guardrails[0]", phases=("pre_call",), guardrail=spec)
    p = HookPlan([loaded])
    assert p.calls("pre_call", {}) == []                                 # not default_on, not named
    calls = p.calls("pre_call", {"guardrails": ["no-bad-words"]})
    assert len(calls) == 1
    error = classify(calls[0], ValueError("found a bad word"))
    assert isinstance(error, GuardrailViolationError)
    assert error.status_code == 400 and "no-bad-words" in error.message and error.error_type == "guardrail_violation"
    with pytest.raises(BadRequestError, match="no-bad-words"):
        p.check_requested_guardrails({"guardrails": ["typo-guard"]})
