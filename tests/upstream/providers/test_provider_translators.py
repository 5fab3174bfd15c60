"""Pure unit tests of the translators: parameter policy, message translation, decoders fed in odd pieces."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from support.native_fakes.bedrock_fake import event_frame
from trioproxy.errors import (
    BadRequestError,
    ContextWindowExceededError,
    RateLimitError,
    ServiceUnavailableError,
)
from trioproxy.upstream.providers import anthropic, bedrock, gemini, ollama
from trioproxy.upstream.providers.adapter import Call, StreamInterruptedError
from trioproxy.upstream.providers.openai_like import OpenAISSEDecoder
from trioproxy.upstream.providers.params import CHAT_PARAMS, apply_drop_list, apply_param_policy
from trioproxy.upstream.providers.shapes import encode_embedding, parse_data_url


def policy(body, **kw):
    defaults = {"provider": "p", "endpoint": "chat/completions", "known": CHAT_PARAMS,
                "supported": frozenset({"messages", "temperature"}), "native": frozenset({"top_k"}),
                "pass_unknown": False, "drop_params": False}
    return apply_param_policy(body, **{**defaults, **kw})


def test_param_policy():
    base = {"model": "m", "messages": [], "temperature": 1, "top_k": 2}
    assert policy(base) == base
    with pytest.raises(BadRequestError) as caught:
        policy({**base, "logprobs": True, "frobnicate": 1})
    assert caught.value.param == "logprobs" and "'frobnicate'" in caught.value.message
    assert policy({**base, "logprobs": True}, drop_params=True) == base
    assert policy({**base, "logprobs": True, "drop_params": True}) == base          # the request's own
    assert policy({**base, "logprobs": True}, additional_drop_params=["logprobs"]) == base
    assert policy({**base, "frobnicate": 1}, pass_unknown=True)["frobnicate"] == 1
    # settings, proxy fields, None values, the proxy's stream_options and n=1 never fail a request
    quiet = {**base, "api_key": "k", "aws_region_name": "x", "metadata": {}, "stop": None,
             "stream_options": {"include_usage": True}, "n": 1}
    assert policy(quiet) == base
    with pytest.raises(BadRequestError):
        policy({**base, "n": 2})
    # the request's own additional_drop_params (a name or a list) drop like the deployment's
    assert policy({**base, "logprobs": True, "additional_drop_params": ["logprobs", "temperature"]}) == {
        "model": "m", "messages": [], "top_k": 2}
    assert policy({**base, "logprobs": True, "additional_drop_params": "logprobs"}) == base


def test_drop_list_for_the_builtin_providers():
    body = {"model": "m", "user": "u", "seed": 1, "frobnicate": 2, "drop_params": True,
            "additional_drop_params": ["seed", 7, "model"]}
    # unknown fields pass (OpenAI-compatible), the lists and the policy's fields never do; model stays
    assert apply_drop_list(body, ("user",)) == {"model": "m", "frobnicate": 2}
    assert apply_drop_list({"model": "m", "additional_drop_params": {"x": 1}}) == {"model": "m"}


def test_data_urls_and_base64_embeddings():
    assert parse_data_url("data:image/png;base64,aGk=") == ("image/png", "aGk=")
    assert parse_data_url("https://x/y.png") is None
    with pytest.raises(BadRequestError):
        parse_data_url("data:image/png;base64,***")
    encoded = encode_embedding([0.5, -2.0], "base64")
    assert struct.unpack("<2f", base64.b64decode(encoded)) == (0.5, -2.0)
    assert encode_embedding([1, 2], None) == [1.0, 2.0]


def test_anthropic_messages_merge_and_tool_results_lead():
    system, turns = anthropic.translate_messages([
        {"role": "system", "content": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}]},
        {"role": "developer", "content": "b"},
        {"role": "user", "content": "q1"}, {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}},
            {"id": "t2", "type": "function", "function": {"name": "g", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "r1"},
        {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "r2"}]},
        {"role": "user", "content": "thanks"}])
    assert system == [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "b"}]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == [{"type": "text", "text": "q1"}, {"type": "text", "text": "q2"}]
    assert turns[1]["content"][1] == {"type": "tool_use", "id": "t2", "name": "g", "input": {}}
    assert [b["type"] for b in turns[2]["content"]] == ["tool_result", "tool_result", "text"]
    with pytest.raises(BadRequestError):
        anthropic.translate_messages([{"role": "system", "content": "only"}])
    with pytest.raises(BadRequestError):
        anthropic.translate_messages([{"role": "assistant", "content": "", "tool_calls": [
            {"id": "x", "function": {"name": "f", "arguments": "{not json"}}]}])


def test_anthropic_errors():
    def err(status, kind, message):
        return anthropic.anthropic_error(status, json.dumps({"type": "error", "error": {"type": kind,
                                                                                       "message": message}}).encode())
    assert isinstance(err(529, "overloaded_error", "Overloaded"), ServiceUnavailableError)
    assert err(529, "overloaded_error", "Overloaded").status_code == 529
    assert isinstance(err(429, "rate_limit_error", "slow down"), RateLimitError)
    assert isinstance(err(400, "invalid_request_error", "prompt is too long: 1 > 0"), ContextWindowExceededError)
    assert anthropic.anthropic_error(502, b"<html>bad gateway</html>").status_code == 502


def _call(settings, endpoint="chat/completions"):
    return Call(endpoint=endpoint, body={"model": "m"}, stream=True, settings=settings, created=1, call_id="c1")


def test_anthropic_decoder_byte_by_byte():
    settings = anthropic.AnthropicSettings("http://x", "k", "claude")
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 10,
                                                                                          "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "héllo"}},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"}]
    raw = b"".join(f"event: {e['type']}\r\ndata: {json.dumps(e)}\r\n\r\n".encode() for e in events)
    decoder = anthropic.AnthropicStreamDecoder(_call(settings))
    chunks = []
    for i in range(len(raw)):
        chunks += decoder.feed(raw[i:i + 1])
    assert decoder.finished
    chunks += decoder.close()
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "héllo"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    truncated = anthropic.AnthropicStreamDecoder(_call(settings))
    truncated.feed(raw[: raw.index(b"event: message_stop")])
    with pytest.raises(StreamInterruptedError):
        truncated.close()


def test_gemini_usage_rules():
    exclusive = gemini.gemini_usage({"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7,
                                     "totalTokenCount": 22})
    assert exclusive["completion_tokens"] == 12
    inclusive = gemini.gemini_usage({"promptTokenCount": 10, "candidatesTokenCount": 12, "thoughtsTokenCount": 7,
                                     "totalTokenCount": 22})
    assert inclusive["completion_tokens"] == 12
    assert gemini.gemini_usage(None) is None


def test_gemini_decoder_multiple_candidates_and_split_events():
    settings = gemini.GeminiSettings("http://x", "k", "gemini-2.5-flash")
    decoder = gemini.GeminiStreamDecoder(_call(settings), "gemini-2.5-flash")
    first = {"candidates": [{"index": 0, "content": {"parts": [{"text": "a"}]}},
                            {"index": 1, "content": {"parts": [{"text": "b"}]}}],
             "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}}
    last = {"candidates": [{"index": 0, "content": {"parts": [{"text": "c"}]}, "finishReason": "STOP"},
                           {"index": 1, "content": {"parts": [{"text": ""}]}, "finishReason": "RECITATION"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}}
    raw = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in (first, last))
    chunks = decoder.feed(raw[:17]) + decoder.feed(raw[17:])
    chunks += decoder.close()
    by_index = {0: "", 1: ""}
    for c in chunks[:-1]:
        by_index[c["choices"][0]["index"]] += c["choices"][0]["delta"].get("content", "")
    assert by_index == {0: "ac", 1: "b"}
    finishes = {c["choices"][0]["index"]: c["choices"][0]["finish_reason"] for c in chunks[:-1]
                if c["choices"][0]["finish_reason"]}
    assert finishes == {0: "stop", 1: "content_filter"}
    assert chunks[-1]["usage"]["completion_tokens"] == 4
    assert gemini.gemini_error(400, b'{"error": {"code": 400, "message": "API key not valid", "status": '
                                    b'"INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}}').status_code == 401


def test_bedrock_decoder_frames_split_anywhere():
    settings = bedrock.BedrockSettings("m", "http://x", "us-east-1", None, None)
    frames = [event_frame({":event-type": "messageStart", ":message-type": "event"}, {"role": "assistant"}),
              event_frame({":event-type": "contentBlockDelta", ":message-type": "event"},
                          {"contentBlockIndex": 0, "delta": {"text": "ok"}}),
              event_frame({":event-type": "messageStop", ":message-type": "event"}, {"stopReason": "max_tokens"}),
              event_frame({":event-type": "metadata", ":message-type": "event"},
                          {"usage": {"inputTokens": 2, "outputTokens": 1, "totalTokens": 3}})]
    raw = b"".join(frames)
    decoder = bedrock.BedrockStreamDecoder(_call(settings))
    chunks = []
    for i in range(0, len(raw), 7):
        chunks += decoder.feed(raw[i:i + 7])
    assert decoder.finished
    chunks += decoder.close()
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert chunks[-1]["usage"]["total_tokens"] == 3
    corrupt = bytearray(frames[1])
    corrupt[-1] ^= 0xFF
    from trioproxy.errors import APIConnectionError

    with pytest.raises(APIConnectionError):
        bedrock.BedrockStreamDecoder(_call(settings)).feed(bytes(corrupt))


def test_bedrock_request_translation_and_error_header():
    out = bedrock.translate_request({"messages": [{"role": "user", "content": "x"}], "tools": [
        {"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "f"}}})
    assert out["toolConfig"] == {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {
        "type": "object", "properties": {}}}}}], "toolChoice": {"tool": {"name": "f"}}}
    error = bedrock.bedrock_error(429, b'{"message": "slow"}', {"x-amzn-errortype": "ThrottlingException:http://x"})
    assert isinstance(error, RateLimitError) and error.code == "ThrottlingException"


def test_ollama_decoder_and_flattening():
    settings = ollama.OllamaSettings("http://x", None, "llama3.2", True)
    decoder = ollama.OllamaStreamDecoder(_call(settings))
    raw = (b'{"message": {"role": "assistant", "content": "a"}, "done": false}\n'
           b'{"message": {"role": "assistant", "content": "b"}, "done": true, "done_reason": "length", '
           b'"prompt_eval_count": 4, "eval_count": 2}')           # the last line without its newline
    chunks = decoder.feed(raw[:30]) + decoder.feed(raw[30:])
    assert not decoder.finished
    chunks += decoder.close()
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "ab"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length" and chunks[-1]["usage"]["total_tokens"] == 6
    system, prompt, images = ollama.flatten([{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                                             {"role": "assistant", "content": "a"}, {"role": "user", "content": "v"}])
    assert system == "s" and prompt == "### User:\nu\n\n### Assistant:\na\n\n### User:\nv\n\n### Assistant:\n"


def test_openai_sse_decoder_error_event_and_done():
    decoder = OpenAISSEDecoder()
    assert decoder.feed(b'data: {"choices": [], "prompt_filter_results": []}\n\n') == []
    with pytest.raises(RateLimitError):
        OpenAISSEDecoder().feed(b'data: {"error": {"message": "slow", "code": 429}}\n\n')
    decoder.feed(b"data: [DONE]\n\n")
    assert decoder.finished and decoder.close() == []
