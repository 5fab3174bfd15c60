"""Tests of the fake upstream itself, so integration-test failures can be trusted.

The fake is driven directly (no proxy in between) with ``httpx`` and with the official
``openai`` client: if the official client parses its answers, the proxy under test will
see realistic upstream traffic.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
import trio

from support.fake_upstream import Behavior, FakeUpstream, fake_embedding


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream
        assert upstream.errors == []


@pytest.fixture
def client(fake: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, timeout=5) as c:
        yield c


def test_chat_non_streaming(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.set_behavior("m1", Behavior(content="one two three"))
    resp = client.chat.completions.create(
        model="m1", messages=[{"role": "user", "content": "say three words"}], n=2
    )
    assert resp.id.startswith("chatcmpl-fake-")
    assert resp.model == "m1"
    assert [c.message.content for c in resp.choices] == ["one two three"] * 2
    assert {c.finish_reason for c in resp.choices} == {"stop"}
    assert resp.choices[0].message.role == "assistant"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (3, 6)

    rec = fake.requests[0]
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.headers["authorization"] == "Bearer sk-test"
    assert rec.json == json.loads(rec.body)
    assert rec.json == {
        "model": "m1",
        "messages": [{"role": "user", "content": "say three words"}],
        "n": 2,
    }
    assert rec.completed and not rec.client_disconnected_early


def test_chat_streaming_with_usage(fake: FakeUpstream, client: openai.OpenAI) -> None:
    content = "The quick brown fox jumps."
    fake.set_behavior("*", Behavior(content=content, chunk_delay=0.001))
    stream = client.chat.completions.create(
        model="any",
        messages=[{"role": "user", "content": "hi there"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 5  # per word
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (2, 5)
    # openai closes the response right after [DONE]: that is NOT an early disconnect.
    assert fake.requests[0].completed
    with pytest.raises(TimeoutError):
        fake.wait_for_disconnect(timeout=0.05)


def test_streaming_wire_format(fake: FakeUpstream) -> None:
    fake.set_behavior("m", Behavior(content="abcdefg", chunks=3, usage=False))
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    with httpx.Client() as http:
        resp = http.post(f"{fake.base_url}/chat/completions", json=body)
    assert resp.headers["transfer-encoding"] == "chunked"
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = resp.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    pieces = [p["choices"][0]["delta"].get("content") for p in payloads]
    assert pieces == ["", "abc", "de", "fg", None]  # role chunk, 3 pieces, finish chunk
    assert all(p["choices"] for p in payloads)  # usage=False: no usage chunk


def test_completions(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.set_behavior("c", Behavior(content="alpha beta"))
    resp = client.completions.create(model="c", prompt="four words of prompt")
    assert resp.object == "text_completion"
    assert resp.choices[0].text == "alpha beta"
    assert resp.usage is not None and resp.usage.prompt_tokens == 4

    chunks = list(
        client.completions.create(
            model="c", prompt="x", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "alpha beta"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2


def test_embeddings(fake: FakeUpstream, client: openai.OpenAI) -> None:
    # Default openai call asks for base64; the explicit float call must decode identically.
    b64 = client.embeddings.create(model="e", input=["hello", "world"])
    flt = client.embeddings.create(model="e", input="hello", encoding_format="float")
    assert [d.index for d in b64.data] == [0, 1]
    assert b64.data[0].embedding == flt.data[0].embedding == fake_embedding("hello")
    assert len(flt.data[0].embedding) == 8
    assert b64.data[0].embedding != b64.data[1].embedding
    assert b64.usage.prompt_tokens == 2
    assert fake.requests[0].json["encoding_format"] == "base64"


def test_models_and_paths_without_v1(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.set_behavior("m-a", Behavior())
    fake.set_behavior("*", Behavior())
    assert [m.id for m in client.models.list()] == ["m-a"]
    root = fake.base_url.removesuffix("/v1")
    with httpx.Client() as http:
        assert http.get(f"{root}/models").json()["data"][0]["id"] == "m-a"
        resp = http.post(f"{root}/chat/completions?x=1", json={"model": "q", "messages": []})
        assert resp.status_code == 200
    assert (fake.requests[-1].path, fake.requests[-1].query) == ("/chat/completions", "x=1")


def test_error_envelopes(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.set_behavior("bad", Behavior(status=500, error_message="boom", error_code="oops"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="bad", messages=[])
    assert info.value.status_code == 500
    assert info.value.body == {
        "message": "boom",
        "type": "server_error",
        "param": None,
        "code": "oops",
    }

    fake.set_behavior("slow-down", Behavior(status=429, headers={"retry-after": "7"}))
    with pytest.raises(openai.RateLimitError) as rl:
        client.chat.completions.create(model="slow-down", messages=[])
    assert rl.value.response.headers["retry-after"] == "7"

    with httpx.Client() as http:
        r404 = http.post(f"{fake.base_url}/nope", json={})
        assert r404.status_code == 404 and "error" in r404.json()
        r400 = http.post(
            f"{fake.base_url}/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert r400.status_code == 400
        assert r400.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests[-1].json is None and fake.requests[-1].body == b"{not json"


def test_api_key_check() -> None:
    with FakeUpstream(api_key="sk-right") as fake:
        with openai.OpenAI(base_url=fake.base_url, api_key="sk-wrong", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError) as info:
                bad.models.list()
            assert info.value.code == "invalid_api_key"
        with openai.OpenAI(base_url=fake.base_url, api_key="sk-right", max_retries=0) as good:
            assert good.chat.completions.create(model="m", messages=[]).choices
        assert len(fake.requests) == 2


def test_keep_alive_reuses_connection(fake: FakeUpstream) -> None:
    with httpx.Client() as http:
        for _ in range(3):
            http.post(f"{fake.base_url}/chat/completions", json={"model": "m", "messages": []})
    assert {r.connection_id for r in fake.requests} == {fake.requests[0].connection_id}
    fake.wait_for_requests(3, timeout=0.1)
    with pytest.raises(TimeoutError):
        fake.wait_for_requests(4, timeout=0.05)


def test_early_disconnect_mid_stream(fake: FakeUpstream) -> None:
    # an hour between chunks: the disconnect is seen within the wait below only if it interrupts the delay
    fake.set_behavior("slow", Behavior(content="a b c d e f", chunk_delay=3600.0))
    body = {"model": "slow", "messages": [], "stream": True}
    with httpx.Client() as http:
        with http.stream("POST", f"{fake.base_url}/chat/completions", json=body) as resp:
            first = next(resp.iter_raw())
            assert first.startswith(b"data: ")
    # a bounded wait for the condition, not a timed assertion (the machine may be loaded)
    rec = fake.wait_for_disconnect(timeout=30.0)
    assert rec.client_disconnected_early and rec.disconnected.is_set() and not rec.completed
    assert rec.json == body


def test_early_disconnect_during_delay(fake: FakeUpstream) -> None:
    fake.set_behavior("*", Behavior(delay=5.0))
    with httpx.Client(timeout=0.1) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post(f"{fake.base_url}/chat/completions", json={"model": "m", "messages": []})
    rec = fake.wait_for_disconnect(timeout=1.0)
    assert rec.client_disconnected_early and not rec.completed
    with pytest.raises(TimeoutError):  # each disconnect is reported once
        fake.wait_for_disconnect(timeout=0.05)


def test_close_without_response(fake: FakeUpstream) -> None:
    fake.set_behavior("dying", Behavior(close_without_response=True))
    with httpx.Client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(f"{fake.base_url}/chat/completions", json={"model": "dying", "messages": []})
    fake.wait_for_requests(1)
    rec = fake.requests[0]
    assert not rec.completed and not rec.client_disconnected_early


def test_reset(fake: FakeUpstream, client: openai.OpenAI) -> None:
    fake.set_behavior("*", Behavior(content="before"))
    client.chat.completions.create(model="m", messages=[])
    fake.reset()
    assert fake.requests == []
    resp = client.chat.completions.create(model="m", messages=[])
    assert resp.choices[0].message.content == Behavior().content


async def test_usable_from_trio_tests() -> None:
    """Inside pytest-trio the fake still runs on its own thread; blocking waits go via to_thread."""
    with FakeUpstream() as fake:
        async with httpx.AsyncClient() as http:
            resp = await http.post(f"{fake.base_url}/embeddings", json={"model": "e", "input": "x"})
        assert resp.json()["data"][0]["embedding"] == fake_embedding("x")
        await trio.to_thread.run_sync(fake.wait_for_requests, 1)
