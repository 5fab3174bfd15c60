"""What the fake "model" says: the text (echo or ``mock_response``), a tool call, a JSON answer.

A ``mock_response`` (the deployment's, or the request's) always wins: tools and ``response_format``
then get that text. The parameter checks are OpenAI's (a 400 naming the parameter, never a crash).
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import orjson

from ...errors import BadRequestError
from .schema import schema_instance

if TYPE_CHECKING:
    from ...config import Deployment

__all__ = ["MAX_CHOICES", "call_id", "choice_count", "count_tokens", "int_param", "next_id", "prompt_tokens",
           "reply", "text_of"]

_ids = itertools.count(1)


def next_id() -> int:
    return next(_ids)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _mocked(deployment: Deployment, body: dict[str, Any]) -> bool:
    return "mock_response" in deployment.fake or isinstance(body.get("mock_response"), str)


def _answer(deployment: Deployment, body: dict[str, Any]) -> str:
    if isinstance(body.get("mock_response"), str):     # the request's own wins, as in LiteLLM
        return body["mock_response"]
    if "mock_response" in deployment.fake:
        return str(deployment.fake["mock_response"])
    prompt = ""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            prompt = text_of(message.get("content"))
            break
    if not prompt:
        raw = body.get("prompt")
        prompt = raw if isinstance(raw, str) else " ".join(map(str, raw)) if isinstance(raw, list) else ""
    prompt = " ".join(prompt.split())[:200]
    return f"This is a fake answer from {deployment.upstream_model} to: {prompt}" if prompt else \
        f"This is a fake answer from {deployment.upstream_model}."


#: OpenAI's limit on ``n``; also keeps one request from building millions of choices on the Trio thread
MAX_CHOICES = 128


def choice_count(body: dict[str, Any]) -> int:
    """``n``, checked the way OpenAI checks it: a 400 naming the parameter, never a crash."""
    n = body.get("n")
    if n is None:
        return 1
    if isinstance(n, bool) or not isinstance(n, int):
        raise BadRequestError(f"Invalid type for 'n': expected an integer, got {type(n).__name__}.",
                              param="n", code="invalid_type")
    if not 1 <= n <= MAX_CHOICES:
        raise BadRequestError(f"Invalid value for 'n': expected an integer from 1 to {MAX_CHOICES}, got {n}.",
                              param="n", code="integer_out_of_range")
    return n


def count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def prompt_tokens(body: dict[str, Any]) -> int:
    words = 0
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            words += len(text_of(message.get("content")).split()) + 3
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            words += len(value.split())
        elif isinstance(value, list):
            words += sum(len(str(v).split()) for v in value)
    return max(words, 1)


def int_param(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """An integer parameter, checked the way OpenAI checks it (a 400 naming it, never a crash)."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequestError(f"Invalid type for '{name}': expected an integer, got {type(value).__name__}.",
                              param=name, code="invalid_type")
    if not low <= value <= high:
        raise BadRequestError(f"Invalid value for '{name}': expected an integer from {low} to {high}, got {value}.",
                              param=name, code="integer_out_of_range")
    return value


def _tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function tool the fake calls, or None for a text answer (see the module docstring)."""
    tools = body.get("tools")
    functions = [t["function"] for t in (tools if isinstance(tools, list) else [])
                 if isinstance(t, dict) and t.get("type", "function") == "function"
                 and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)]
    choice = body.get("tool_choice")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
        for function in functions:
            if function["name"] == name:
                return function
        raise BadRequestError(f"Invalid 'tool_choice': no function named {name!r} in 'tools'.",
                              param="tool_choice", code="invalid_value")
    messages = body.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages and isinstance(messages[-1], dict) else {}
    if choice != "required" and last.get("role") in ("tool", "function"):
        return None                                         # the tool answered: now the model talks
    return functions[0]


_decoder = json.JSONDecoder()


def _schema_in_messages(body: dict[str, Any]) -> dict[str, Any] | None:
    """The first JSON schema written in the messages, system ones first: JSON mode's instructions
    (instructor's ``Mode.JSON`` puts the schema there). At most 32 candidate ``{`` per message."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    messages.sort(key=lambda m: m.get("role") not in ("system", "developer"))
    for message in messages:
        text = text_of(message.get("content"))
        start = text.find("{")
        for _ in range(32):
            if start < 0:
                break
            try:
                value, _end = _decoder.raw_decode(text, start)
            except ValueError:
                value = None
            if isinstance(value, dict) and (isinstance(value.get("properties"), dict) or value.get("type") == "object"):
                return value
            start = text.find("{", start + 1)
    return None


def _structured(body: dict[str, Any], text: str) -> str | None:
    """The JSON answer ``response_format`` asks for, or None when it asks for none."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return orjson.dumps(schema_instance(schema if isinstance(schema, dict) else {"type": "object"})).decode()
    if fmt.get("type") == "json_object":
        schema = _schema_in_messages(body)
        return orjson.dumps(schema_instance(schema) if schema is not None else {"answer": text}).decode()
    return None


def reply(deployment: Deployment, body: dict[str, Any], chat: bool) -> tuple[str | None, dict[str, str] | None]:
    """(text, function call): what the model says. A ``mock_response`` always wins."""
    text = _answer(deployment, body)
    if not chat or _mocked(deployment, body):
        return text, None
    tool = _tool_to_call(body)
    if tool is not None:
        arguments = schema_instance(tool.get("parameters") or {"type": "object", "properties": {}})
        return None, {"name": tool["name"], "arguments": orjson.dumps(arguments).decode()}
    structured = _structured(body, text)
    return (structured if structured is not None else text), None


def call_id() -> str:
    return f"call_fake_{next_id()}"
