"""curl against a real trioproxy: what the README and LiteLLM's docs show users typing."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from .conftest import BROKEN_STREAM, CHAT, EMBED, OVERLOADED, ClientProxy

BODY = {"model": CHAT, "messages": [{"role": "user", "content": "What is the capital of France?"}]}
ECHO = f"This is a fake answer from {CHAT} to: What is the capital of France?"


def curl(*args: str) -> tuple[int, str]:
    """Run curl; return (HTTP status, body). ``-w`` appends the status on a line of its own."""
    binary = shutil.which("curl")
    assert binary, "curl is not on PATH"
    done = subprocess.run([binary, "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def post(proxy: ClientProxy, path: str, body: dict, *extra: str, key: str | None = None) -> tuple[int, str]:
    return curl(f"{proxy.url}/{path}", "-H", f"Authorization: Bearer {key or proxy.key}",
                "-H", "Content-Type: application/json", "-d", json.dumps(body), *extra)


def test_chat(client_proxy: ClientProxy) -> None:
    status, body = post(client_proxy, "chat/completions", BODY)
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == ECHO


def test_chat_without_content_type_as_in_the_quickstart(client_proxy: ClientProxy) -> None:
    """``curl -d`` alone sends ``application/x-www-form-urlencoded``: the README's quickstart does that."""
    status, body = curl(f"{client_proxy.base_url}/v1/chat/completions", "-H", f"Authorization: Bearer {client_proxy.key}",
                        "-d", json.dumps(BODY))
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == ECHO


def test_stream_with_no_buffer(client_proxy: ClientProxy) -> None:
    status, body = post(client_proxy, "chat/completions", {**BODY, "stream": True}, "-N")
    assert status == 200
    events = [line[len("data: "):] for line in body.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == ECHO


def test_interrupted_stream_ends_with_an_error_event_not_done(client_proxy: ClientProxy) -> None:
    status, body = post(client_proxy, "chat/completions", {**BODY, "model": BROKEN_STREAM, "stream": True}, "-N")
    events = [line[len("data: "):] for line in body.splitlines() if line.startswith("data: ")]
    assert status == 200 and "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "upstream_stream_interrupted"


def test_upstream_429(client_proxy: ClientProxy) -> None:
    status, body = post(client_proxy, "chat/completions", {**BODY, "model": OVERLOADED})
    assert status == 429 and json.loads(body)["error"]["code"] == "rate_limit_exceeded"


def test_embeddings_base64(client_proxy: ClientProxy) -> None:
    status, body = post(client_proxy, "embeddings", {"model": EMBED, "input": "hello", "encoding_format": "base64"})
    assert status == 200 and isinstance(json.loads(body)["data"][0]["embedding"], str)


def test_models(client_proxy: ClientProxy) -> None:
    status, body = curl(f"{client_proxy.url}/models", "-H", f"Authorization: Bearer {client_proxy.key}")
    assert status == 200 and {CHAT, EMBED} <= {m["id"] for m in json.loads(body)["data"]}


@pytest.mark.parametrize("path", ["/health/liveliness", "/health/liveness", "/health/readiness"])
def test_health_needs_no_key(client_proxy: ClientProxy, path: str) -> None:
    status, _ = curl(f"{client_proxy.base_url}{path}")
    assert status == 200


def test_wrong_key_is_a_401_envelope(client_proxy: ClientProxy) -> None:
    status, body = post(client_proxy, "chat/completions", BODY, key="sk-wrong-key")
    error = json.loads(body)["error"]
    assert status == 401 and error["type"] == "authentication_error" and error["code"] == "invalid_api_key"
    assert set(error) == {"message", "type", "param", "code"}


def test_unknown_model_is_a_404_envelope(client_proxy: ClientProxy) -> None:
    status, body = post(client_proxy, "chat/completions", {**BODY, "model": "no-such-model"})
    error = json.loads(body)["error"]
    assert status == 404 and error["code"] == "model_not_found" and error["param"] == "model"


def test_responses(client_proxy: ClientProxy) -> None:
    """POST /v1/responses with curl (issue #15 item 9)."""
    status, body = curl(f"{client_proxy.url}/responses", "-H", f"Authorization: Bearer {client_proxy.key}",
                        "-H", "Content-Type: application/json",
                        "-d", json.dumps({"model": CHAT, "input": "What is the capital of France?"}))
    assert status == 200 and json.loads(body)["output"][0]["content"][0]["text"] == ECHO
