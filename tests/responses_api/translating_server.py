"""A ``POST /v1/responses`` server made of the translation functions and a scripted chat model.

The endpoint's wiring into the proxy comes later (issue #9 restructures the request core first), so
the official clients are tested against this: the request is translated by ``to_chat_request``, a
deterministic chat model (:func:`scripted_chat`) answers the chat body the way an upstream would
(whole answers, or chunk dicts as the proxy's stream relay produces them, usage chunk included), and
the answer is translated back by ``chat_response_to_response`` / ``ResponsesStreamTranslator``. Every
chat body the model received is kept (``ServerThread.chat_requests``) so tests can check what the
translation asked.

The scripted model, by the request's ``model``:

* ``broken``: streams two pieces of text, then the upstream "breaks" (the translator's ``fail``);
  ``broken-early``: breaks before any text;
* ``length``: stops at the token limit (``finish_reason: length``);
* ``thinker``: reasoning text (``reasoning_content`` deltas) before its answer;
* ``refuser``: a refusal;
* anything else: with function tools (and no tool result yet, ``tool_choice`` not ``none``), a call
  of the chosen or first tool with arguments built from its schema; with a JSON schema
  ``response_format``, an instance of it; after a tool result, ``"The tool said: <result>"``;
  otherwise ``"You said: <last user text>"``.

A plain ``http.server`` in a thread: this is test scaffolding, not Trio code.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trioproxy.errors import ProxyError, UpstreamStreamInterruptedError, to_envelope
from trioproxy.responses_api import (
    ResponsesStreamTranslator,
    chat_response_to_response,
    encode_event,
    to_chat_request,
)

__all__ = ["ServerThread", "counting_ids", "instance_of", "scripted_chat", "scripted_chunks"]


def counting_ids() -> Callable[[str], str]:
    """Deterministic ids (``msg_0001``…) for tests that compare whole events."""
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter):04d}"


def instance_of(schema: Any) -> Any:
    """A small value valid for a JSON schema (enough for the tools and formats the tests use)."""
    if not isinstance(schema, dict):
        return "x"
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        return {name: instance_of(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [instance_of(schema.get("items"))]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return "Paris"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def scripted_chat(chat: dict[str, Any]) -> dict[str, Any]:
    """The whole chat completion the scripted model answers ``chat`` with."""
    messages = chat["messages"]
    model = chat["model"]
    last = messages[-1]
    tools = chat.get("tools") or []
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    if model == "thinker":
        message["reasoning_content"] = "The user greets me; I answer kindly."
    if model == "refuser":
        message["refusal"] = "I can't help with that."
    elif model == "length":
        message["content"] = "This answer was cut"
        finish = "length"
    elif tools and last["role"] != "tool" and chat.get("tool_choice") != "none":
        choice = chat.get("tool_choice")
        name = choice["function"]["name"] if isinstance(choice, dict) else tools[0]["function"]["name"]
        tool = next(t for t in tools if t["function"]["name"] == name)
        arguments = json.dumps(instance_of(tool["function"].get("parameters") or {}))
        message["tool_calls"] = [{"id": f"call_{len(messages):03d}", "type": "function",
                                  "function": {"name": name, "arguments": arguments}}]
        finish = "tool_calls"
    elif (chat.get("response_format") or {}).get("type") == "json_schema":
        message["content"] = json.dumps(instance_of(chat["response_format"]["json_schema"]["schema"]))
    elif last["role"] == "tool":
        message["content"] = f"The tool said: {last['content']}"
    else:
        user = next(m for m in reversed(messages) if m["role"] == "user")
        message["content"] = f"You said: {_text(user['content'])}"
    prompt = sum(len(_text(m.get("content")).split()) for m in messages)
    answer = message.get("content") or message.get("refusal") or "".join(
        c["function"]["arguments"] for c in message.get("tool_calls", []))
    completion = len(answer.split())
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": 1_700_000_000, "model": f"up-{model}",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0}}}


def scripted_chunks(chat: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The same answer as chunk dicts, as OpenAI streams it; raises when the model is ``broken``."""
    whole = scripted_chat(chat)
    choice = whole["choices"][0]
    message = choice["message"]
    head = {"id": whole["id"], "object": "chat.completion.chunk", "created": whole["created"], "model": whole["model"]}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    if message.get("reasoning_content"):
        for piece in _words(message["reasoning_content"]):
            yield chunk({"reasoning_content": piece})
    if chat["model"] == "broken-early":
        raise UpstreamStreamInterruptedError("The upstream closed the stream before its end (no [DONE]).")
    if chat["model"] == "broken":
        yield chunk({"content": "Half an"})
        yield chunk({"content": " answer"})
        raise UpstreamStreamInterruptedError("The upstream closed the stream before its end (no [DONE]).")
    for piece in _words(message["content"] or ""):
        if piece:
            yield chunk({"content": piece})
    if message.get("refusal"):
        for piece in _words(message["refusal"]):
            yield chunk({"refusal": piece})
    for index, call in enumerate(message.get("tool_calls") or ()):
        yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                     "function": {"name": call["function"]["name"], "arguments": ""}}]})
        arguments = call["function"]["arguments"]
        for k in range(0, len(arguments), 7):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[k:k + 7]}}]})
    yield chunk({}, choice["finish_reason"])
    if (chat.get("stream_options") or {}).get("include_usage"):
        yield {**head, "choices": [], "usage": whole["usage"]}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:   # quiet: pytest shows failures
        pass

    def do_POST(self) -> None:
        if self.path.rstrip("/") not in ("/v1/responses", "/responses"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error",
                                       "param": None, "code": "not_found"}})
            return
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        self.server.responses_requests.append(body)
        try:
            chat = to_chat_request(body)
        except ProxyError as exc:
            self._json(*to_envelope(exc))
            return
        self.server.chat_requests.append(chat)
        if not chat.get("stream"):
            self._json(200, chat_response_to_response(scripted_chat(chat), body))
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        translator = ResponsesStreamTranslator(body)
        self._sent: list[bytes] = []
        try:
            for piece in scripted_chunks(chat):
                self._events(translator.feed(piece))
        except ProxyError as exc:
            self._events(translator.fail(exc))
        else:
            self._events(translator.finish())
        self.server.stream_bytes.append(b"".join(self._sent))

    def _events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            data = encode_event(event)
            self._sent.append(data)
            self.wfile.write(data)
            self.wfile.flush()

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    responses_requests: list[dict[str, Any]]
    chat_requests: list[dict[str, Any]]
    stream_bytes: list[bytes]


class ServerThread:
    """``with ServerThread() as server: server.base_url`` (``http://127.0.0.1:<port>/v1``)."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.responses_requests = []
        self._server.chat_requests = []
        self._server.stream_bytes = []
        self._thread = threading.Thread(target=self._server.serve_forever, name="responses-test-server", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return self._server.chat_requests

    @property
    def responses_requests(self) -> list[dict[str, Any]]:
        return self._server.responses_requests

    @property
    def stream_bytes(self) -> list[bytes]:
        """The SSE bytes of each streamed response, whole."""
        return self._server.stream_bytes

    def __enter__(self) -> ServerThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
