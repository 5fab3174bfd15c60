"""Chat completion chunks → the Responses API's stream of typed events.

Driven by the proxy's stream relay, one call per thing that happens::

    translator = ResponsesStreamTranslator(responses_request)
    for chunk in upstream_chunks:                 # chat.completion.chunk dicts, usage chunk included
        send(encode_events(translator.feed(chunk)))
    send(encode_events(translator.finish()))      # after the upstream's [DONE] (and post-call hooks)
    # or, when the stream breaks or a hook rejects it after the first byte:
    send(encode_events(translator.fail(error)))

Every call returns a list of event dicts (``{"type": …, "sequence_number": n, …}``);
:func:`encode_event` frames one as OpenAI does, ``event: <type>`` then ``data: <json>``. A Responses
stream has no ``[DONE]``: it ends with its terminal event.

The sequence, as OpenAI's (and what the OpenAI SDKs' accumulators and the Vercel AI SDK need):
``response.created`` and ``response.in_progress`` first (sent with the first chunk, so the
response reports the upstream's model); per output item ``response.output_item.added`` … its
deltas … ``response.output_item.done``; for text, ``response.content_part.added`` →
``response.output_text.delta``\\* → ``response.output_text.done`` → ``response.content_part.done``
(``response.refusal.*`` for a refusal part; ``response.reasoning_summary_*`` for reasoning); for a
call, ``response.function_call_arguments.delta``\\* → ``.done``. Last:
``response.completed`` (or ``response.incomplete`` when the upstream stopped at the token limit or a
content filter) with the whole response and its usage, or, on failure, an ``error`` event (the
precise code and message, what the SDKs surface) followed by ``response.failed`` (its
``response.error.code`` limited to the codes OpenAI's schema lists).

Items: reasoning and message items are closed as soon as another item starts (OpenAI's order).
Function calls stay open until the end: OpenAI-compatible servers may interleave the argument
pieces of parallel calls (chat's ``tool_calls[].index``), and a call's deltas must not arrive after
its ``done``. A call's item is announced once its name is known (arguments that come earlier are
held). Only choice 0 is read: a Responses request asks for one answer.

Ids are minted once per response and per item, so every event of an item carries the same
``item_id`` and ``response.completed`` lists the same ids the deltas used.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import ProxyError, error_body
from . import ids
from .ids import IdFactory, new_id
from .response import (
    function_call_item,
    message_item,
    outcome,
    output_text_part,
    reasoning_item,
    reasoning_text,
    refusal_part,
    response_object,
    text_logprobs,
)
from .usage import responses_usage

__all__ = ["ResponsesStreamTranslator", "encode_event", "encode_events", "failed_error_code"]

#: the codes ``response.failed``'s ``response.error.code`` may take (OpenAI's schema)
_FAILED_CODES = frozenset({"server_error", "rate_limit_exceeded", "invalid_prompt"})


def encode_event(event: Mapping[str, Any]) -> bytes:
    """One server-sent event as OpenAI frames it: ``event: <type>\\ndata: <json>\\n\\n``."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def encode_events(events: list[dict[str, Any]]) -> bytes:
    return b"".join(encode_event(e) for e in events)


def failed_error_code(status: int, code: str | None) -> str:
    """The ``response.error.code`` of a ``response.failed`` event for a proxy error."""
    if code in _FAILED_CODES:
        return code
    if status == 429:
        return "rate_limit_exceeded"
    if 400 <= status < 500:
        return "invalid_prompt"
    return "server_error"


@dataclass
class _Message:
    index: int
    item: dict[str, Any]
    part: dict[str, Any] | None = None          # the content part receiving deltas
    part_index: int = -1


@dataclass
class _Reasoning:
    index: int
    item: dict[str, Any]
    text: list[str] = field(default_factory=list)


@dataclass
class _Call:
    index: int | None                            # None until announced (the name is known)
    item: dict[str, Any]
    held: list[str] = field(default_factory=list)   # argument pieces that came before the name


class ResponsesStreamTranslator:
    """Feed chat chunk dicts; get Responses events. One instance per response (see the module docstring).

    ``request`` is the client's Responses body (its settings are echoed in the response objects).
    ``response_id``, ``new_id`` and ``clock`` are for callers that mint ids themselves and for tests.
    After :meth:`finish` or :meth:`fail`, :attr:`response` is the final response object (for the
    logs and the post-call hooks); calling any method again is a bug and raises ``RuntimeError``.
    """

    def __init__(self, request: Mapping[str, Any], *, response_id: str | None = None,
                 new_id: IdFactory = new_id, clock: Callable[[], float] = time.time) -> None:
        self._request = request
        self._new_id = new_id
        self._clock = clock
        self.response_id = response_id or new_id(ids.RESPONSE)
        self._created_at = int(clock())
        self._model = str(request.get("model") or "")
        self._sequence = 0
        self._started = False
        self._ended = False
        self._output: list[dict[str, Any]] = []     # items in output_index order (live objects)
        self._message: _Message | None = None
        self._reasoning: _Reasoning | None = None
        self._calls: dict[Any, _Call] = {}           # by the chat tool call's index
        self._usage: dict[str, Any] | None = None
        self._finish_reason: Any = None
        self.response: dict[str, Any] | None = None

    # --- the three calls ---------------------------------------------------------------------

    def feed(self, chunk: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One chat completion chunk (the final usage chunk with ``choices: []`` included)."""
        self._check_open()
        if not isinstance(chunk, Mapping):
            raise TypeError(f"feed() takes a chat completion chunk (a mapping), not {type(chunk).__name__}; "
                            "an upstream error event goes to fail()")
        events: list[dict[str, Any]] = []
        if not self._started:
            model = chunk.get("model")
            if isinstance(model, str) and model:
                self._model = model
            created = chunk.get("created")
            if isinstance(created, int) and not isinstance(created, bool):
                self._created_at = created
            self._start(events)
        usage = chunk.get("usage")
        if isinstance(usage, Mapping) and usage:
            self._usage = dict(usage)
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) not in (0, None):
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), Mapping) else {}
            thought = reasoning_text(delta)
            if thought is not None:
                self._reasoning_delta(thought, events)
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._part_delta("output_text", content, text_logprobs(choice.get("logprobs")), events)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self._part_delta("refusal", refusal, [], events)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, Mapping):
                    self._call_delta(call.get("index", 0), call, events)
            legacy = delta.get("function_call")
            if isinstance(legacy, Mapping):
                self._call_delta("function_call", {"function": legacy}, events)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return events

    def finish(self) -> list[dict[str, Any]]:
        """The upstream's stream is complete: close every item; ``response.completed`` (or ``.incomplete``)."""
        self._check_open()
        events: list[dict[str, Any]] = []
        self._start(events)
        status, incomplete = outcome(self._finish_reason)
        item_status = "incomplete" if status == "incomplete" else "completed"
        self._close_reasoning(events)
        self._close_message(events, item_status)
        for key in list(self._calls):
            call = self._calls[key]
            if call.index is None:                   # never named: announce it now
                self._announce_call(call, events)
            item = call.item
            events.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                      output_index=call.index, name=item["name"], arguments=item["arguments"]))
            item["status"] = "completed"
            events.append(self._event("response.output_item.done", output_index=call.index, item=copy.deepcopy(item)))
        self._calls.clear()
        now = int(self._clock())
        self.response = self._response(status, usage=responses_usage(self._usage), incomplete_details=incomplete,
                                       completed_at=now if status == "completed" else None)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        events.append(self._event(kind, response=copy.deepcopy(self.response)))
        self._ended = True
        return events

    def withhold_output(self) -> None:
        """Forget the items so far: their events were never sent (a buffering guardrail dropped them),
        so the ``response.failed`` that follows must not list them either."""
        self._output = []

    def fail(self, error: ProxyError | Mapping[str, Any]) -> list[dict[str, Any]]:
        """The stream broke (or a hook rejected it): an ``error`` event, then ``response.failed``.

        ``error`` is a :class:`ProxyError` or an OpenAI error envelope (``{"error": {...}}``). Items
        still open stay ``in_progress`` in the failed response: they were cut, not finished.
        """
        self._check_open()
        events: list[dict[str, Any]] = []
        self._start(events)
        if isinstance(error, ProxyError):
            status, body = error.status_code, error_body(error)["error"]
        else:
            inner = error.get("error") if isinstance(error.get("error"), Mapping) else error
            body = {"message": str(inner.get("message") or "The upstream failed."), "code": inner.get("code"),
                    "param": inner.get("param")}
            status = 500
            if isinstance(body["code"], str) and body["code"].isdigit():
                status = int(body["code"])
        code = None if body.get("code") is None else str(body["code"])
        message = str(body.get("message") or "The upstream failed.")
        events.append(self._event("error", code=code, message=message, param=body.get("param")))
        self.response = self._response("failed", usage=responses_usage(self._usage),
                                       error={"code": failed_error_code(status, code), "message": message})
        events.append(self._event("response.failed", response=copy.deepcopy(self.response)))
        self._ended = True
        return events

    # --- items -------------------------------------------------------------------------------

    def _start(self, events: list[dict[str, Any]]) -> None:
        if self._started:
            return
        self._started = True
        snapshot = self._response("in_progress")
        events.append(self._event("response.created", response=snapshot))
        events.append(self._event("response.in_progress", response=copy.deepcopy(snapshot)))

    def _add_item(self, item: dict[str, Any], events: list[dict[str, Any]]) -> int:
        index = len(self._output)
        self._output.append(item)
        events.append(self._event("response.output_item.added", output_index=index, item=copy.deepcopy(item)))
        return index

    def _reasoning_delta(self, text: str, events: list[dict[str, Any]]) -> None:
        if self._reasoning is None:
            self._close_message(events, "completed")
            item = reasoning_item(self._new_id(ids.REASONING), [])
            index = self._add_item(item, events)
            self._reasoning = _Reasoning(index, item)
            events.append(self._event("response.reasoning_summary_part.added", item_id=item["id"], output_index=index,
                                      summary_index=0, part={"type": "summary_text", "text": ""}))
        reasoning = self._reasoning
        reasoning.text.append(text)
        events.append(self._event("response.reasoning_summary_text.delta", item_id=reasoning.item["id"],
                                  output_index=reasoning.index, summary_index=0, delta=text))

    def _close_reasoning(self, events: list[dict[str, Any]]) -> None:
        reasoning, self._reasoning = self._reasoning, None
        if reasoning is None:
            return
        text = "".join(reasoning.text)
        item_id, index = reasoning.item["id"], reasoning.index
        events.append(self._event("response.reasoning_summary_text.done", item_id=item_id, output_index=index,
                                  summary_index=0, text=text))
        part = {"type": "summary_text", "text": text}
        events.append(self._event("response.reasoning_summary_part.done", item_id=item_id, output_index=index,
                                  summary_index=0, part=dict(part)))
        reasoning.item["summary"] = [part]
        events.append(self._event("response.output_item.done", output_index=index, item=copy.deepcopy(reasoning.item)))

    def _part_delta(self, kind: str, text: str, logprobs: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        if self._message is None:
            self._close_reasoning(events)
            item = message_item(self._new_id(ids.MESSAGE), [], "in_progress")
            self._message = _Message(self._add_item(item, events), item)
        message = self._message
        item_id = message.item["id"]
        if message.part is None or message.part["type"] != kind:
            message.part = output_text_part() if kind == "output_text" else refusal_part()
            message.item["content"].append(message.part)
            message.part_index = len(message.item["content"]) - 1
            events.append(self._event("response.content_part.added", item_id=item_id, output_index=message.index,
                                      content_index=message.part_index, part=copy.deepcopy(message.part)))
        part = message.part
        if kind == "output_text":
            part["text"] += text
            part["logprobs"].extend(logprobs)
            events.append(self._event("response.output_text.delta", item_id=item_id, output_index=message.index,
                                      content_index=message.part_index, delta=text, logprobs=logprobs))
        else:
            part["refusal"] += text
            events.append(self._event("response.refusal.delta", item_id=item_id, output_index=message.index,
                                      content_index=message.part_index, delta=text))

    def _close_message(self, events: list[dict[str, Any]], status: str) -> None:
        message, self._message = self._message, None
        if message is None:
            return
        item_id = message.item["id"]
        for content_index, part in enumerate(message.item["content"]):
            common = {"item_id": item_id, "output_index": message.index, "content_index": content_index}
            if part["type"] == "output_text":
                events.append(self._event("response.output_text.done", **common, text=part["text"],
                                          logprobs=copy.deepcopy(part["logprobs"])))
            else:
                events.append(self._event("response.refusal.done", **common, refusal=part["refusal"]))
            events.append(self._event("response.content_part.done", **common, part=copy.deepcopy(part)))
        message.item["status"] = status
        events.append(self._event("response.output_item.done", output_index=message.index,
                                  item=copy.deepcopy(message.item)))

    def _call_delta(self, key: Any, delta: Mapping[str, Any], events: list[dict[str, Any]]) -> None:
        function = delta.get("function") if isinstance(delta.get("function"), Mapping) else {}
        call = self._calls.get(key)
        if call is None:
            call = _Call(None, function_call_item(self._new_id(ids.FUNCTION_CALL), "", "", "", "in_progress"))
            self._calls[key] = call
        item = call.item
        if isinstance(delta.get("id"), str) and delta["id"] and not item["call_id"]:
            item["call_id"] = delta["id"]
        name = function.get("name")
        if isinstance(name, str) and name and not item["name"]:
            item["name"] = name          # once: some servers repeat the whole name in later deltas
        arguments = function.get("arguments")
        if isinstance(arguments, Mapping):              # a few servers send the arguments as an object
            arguments = orjson.dumps(arguments).decode()
        if call.index is None and item["name"]:
            self._announce_call(call, events)
        if isinstance(arguments, str) and arguments:
            if call.index is None:
                call.held.append(arguments)
            else:
                self._arguments_delta(call, arguments, events)

    def _announce_call(self, call: _Call, events: list[dict[str, Any]]) -> None:
        self._close_reasoning(events)
        self._close_message(events, "completed")
        if not call.item["call_id"]:
            call.item["call_id"] = self._new_id(ids.CALL)
        call.index = self._add_item(call.item, events)
        held, call.held = call.held, []
        for piece in held:
            self._arguments_delta(call, piece, events)

    def _arguments_delta(self, call: _Call, piece: str, events: list[dict[str, Any]]) -> None:
        call.item["arguments"] += piece
        events.append(self._event("response.function_call_arguments.delta", item_id=call.item["id"],
                                  output_index=call.index, delta=piece))

    # --- helpers -----------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(self._request, response_id=self.response_id, created_at=self._created_at,
                               model=self._model, status=status, output=copy.deepcopy(self._output), **extra)

    def _check_open(self) -> None:
        if self._ended:
            raise RuntimeError("this Responses stream has already ended (finish() or fail() was called)")
