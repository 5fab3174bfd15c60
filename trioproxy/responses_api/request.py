"""A ``POST /v1/responses`` body → the ``POST /v1/chat/completions`` body that asks the same question.

Every field of OpenAI's Responses request is in exactly one of four tables below, so what happens to
a field is decided in one place and the docs (``docs/responses_api.md``) can print the tables:

* :data:`TRANSLATED` — mapped to chat fields (``input`` → ``messages``, ``max_output_tokens`` →
  ``max_tokens``, ``text.format`` → ``response_format``, …);
* :data:`PASSED` — the same name and meaning in chat completions: copied;
* :data:`IGNORED` — accepted and without effect on a chat upstream, each for a stated reason
  (``store``: a translated response is never stored; ``include``: none of the items it asks for can
  occur, except logprobs, which are translated);
* :data:`REFUSED` — a 400 naming the field: honouring it needs state or a server-side feature that
  only OpenAI's own Responses API has (``previous_response_id``, ``conversation``, ``prompt``,
  ``background``, ``moderation``).

Fields outside the Responses API (a vendor's ``top_k``, the proxy's own ``guardrails``, ``cache``,
``mock_response``) are copied untouched, as on the chat endpoint.

Input items: messages (roles ``user``, ``assistant``, ``system``, ``developer``; content a string or
``input_text``/``output_text``/``refusal``/``input_image``/``input_file``/``input_audio`` parts),
``function_call`` (merged into the preceding assistant message's ``tool_calls``, as chat wants one
assistant turn per model turn), ``function_call_output`` (a ``tool`` message, which must answer a
``function_call`` earlier in the input: otherwise the upstream would refuse the conversation with a
vaguer message). ``reasoning`` items are dropped: their text is the model's own chain of thought,
which chat upstreams do not take back (OpenAI's encrypted reasoning means nothing to them).
``item_reference`` items are replaced by the item they name when the caller passes it in ``items``
(a response store of the future); a reference to a reasoning item (``rs_…``) is dropped like the
item itself; any other unresolved reference is a 400, since dropping it would silently remove a turn
of the conversation. Items produced by OpenAI's built-in tools (``web_search_call``,
``computer_call``, …) are a 400: no chat upstream ran them.

``developer`` messages become ``system`` messages: most OpenAI-compatible servers (vLLM, Ollama,
llama.cpp templates) know only ``system``, which OpenAI treats the same way for chat models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import BadRequestError
from .ids import is_reasoning_item_id

__all__ = [
    "BUILTIN_ITEM_TYPES",
    "BUILTIN_TOOL_TYPES",
    "IGNORED",
    "PASSED",
    "REFUSED",
    "TRANSLATED",
    "referenced_item_ids",
    "to_chat_request",
]

#: Responses fields mapped to chat fields (the mapping is the function named in the value)
TRANSLATED: Mapping[str, str] = {
    "model": "model",
    "input": "messages",
    "instructions": "a first system message",
    "tools": "tools (function tools only)",
    "tool_choice": "tool_choice (allowed_tools: the tools narrowed to those allowed)",
    "parallel_tool_calls": "parallel_tool_calls (only when there are tools)",
    "max_output_tokens": "max_tokens (or max_completion_tokens, per deployment)",
    "text": "text.format → response_format; text.verbosity → verbosity",
    "reasoning": "reasoning.effort → reasoning_effort (summary: not available from chat)",
    "stream": "stream, with stream_options.include_usage",
    "top_logprobs": "top_logprobs, with logprobs when include asks for message.output_text.logprobs",
    "metadata": "metadata (the proxy's: logging and hooks, never sent upstream)",
}

#: Responses fields with the same name and meaning in chat completions
PASSED = frozenset({
    "temperature", "top_p", "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
    "service_tier",
})

#: accepted without effect on a translated request, and why
IGNORED: Mapping[str, str] = {
    "store": "a translated response is never stored (the response says store: false)",
    "include": "the extra items it asks for cannot occur without built-in tools; logprobs are translated",
    "truncation": "'auto' is not implemented: an input over the context window fails as with 'disabled'",
    "max_tool_calls": "limits built-in tool calls, which a translated request cannot make",
    "stream_options": "include_obfuscation pads OpenAI's own events; the proxy's are not padded",
    "context_management": "OpenAI's server-side compaction; the whole input is sent every time",
    "prompt_cache_options": "an OpenAI prompt-cache hint",
}

#: fields that need OpenAI's own Responses API (state or a server-side feature): a 400
REFUSED: Mapping[str, str] = {
    "previous_response_id": "continuing a stored response needs the response store of OpenAI's "
                            "Responses API; translated responses are not stored. Send the whole "
                            "conversation as input items instead (with the Vercel AI SDK: "
                            "providerOptions.openai.store = false)",
    "conversation": "conversations are stored by OpenAI's Responses API; translated responses are "
                    "not stored. Send the whole conversation as input items instead",
    "prompt": "reusable prompts are stored at OpenAI; put the prompt's text in instructions/input",
    "background": "background responses are stored and polled at OpenAI; translated responses "
                  "are answered on the request's own connection",
    "moderation": "moderated completions are an OpenAI feature; use the proxy's guardrails",
}

#: tools that OpenAI runs itself (server-side, or client-side with OpenAI's own item types)
BUILTIN_TOOL_TYPES = frozenset({
    "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11",
    "file_search", "computer", "computer_use", "computer_use_preview", "code_interpreter",
    "image_generation", "mcp", "local_shell", "shell", "apply_patch", "custom", "tool_search",
})

#: input item types produced by built-in tools (or by OpenAI's server-side features)
BUILTIN_ITEM_TYPES = frozenset({
    "web_search_call", "file_search_call", "computer_call", "computer_call_output",
    "code_interpreter_call", "image_generation_call", "local_shell_call", "local_shell_call_output",
    "shell_call", "shell_call_output", "apply_patch_call", "apply_patch_call_output", "mcp_list_tools",
    "mcp_approval_request", "mcp_approval_response", "mcp_call", "custom_tool_call",
    "custom_tool_call_output", "tool_search_call", "tool_search_output", "additional_tools",
    "compaction", "compaction_trigger", "program", "program_output",
})

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = frozenset({"input_text", "output_text"})
_IMAGE_DETAILS = frozenset({"low", "high", "auto"})
_REASONING_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
_MAX_TOKENS_FIELDS = frozenset({"max_tokens", "max_completion_tokens"})
_LOGPROBS_INCLUDE = "message.output_text.logprobs"
_NATIVE_HINT = ("Serve the model from an upstream with a native /v1/responses "
                "(model_info.supported_endpoints: [\"/v1/responses\"]) to use it.")


def _missing(param: str, what: str) -> BadRequestError:
    return BadRequestError(f"Missing required parameter '{param}': {what}.", param=param,
                           code="missing_required_parameter")


def _invalid_type(param: str, expected: str, value: Any) -> BadRequestError:
    return BadRequestError(f"Invalid type for '{param}': expected {expected}, got {_kind(value)}.",
                           param=param, code="invalid_type")


def _invalid_value(param: str, message: str) -> BadRequestError:
    return BadRequestError(f"Invalid value for '{param}': {message}", param=param, code="invalid_value")


def _unsupported(param: str, message: str) -> BadRequestError:
    return BadRequestError(f"'{param}' is not supported here: {message}", param=param,
                           code="unsupported_parameter")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def _is_set(value: Any) -> bool:
    """A field counts as given unless it is absent or null (the SDKs send nulls for omitted options)."""
    return value is not None


def referenced_item_ids(body: Mapping[str, Any]) -> list[str]:
    """The ids of the ``item_reference`` items in ``body["input"]``, in order.

    A response store (not built: translated responses are not stored) would look these up and
    pass the items to :func:`to_chat_request` as ``items``.
    """
    input_value = body.get("input")
    if not isinstance(input_value, list):
        return []
    return [item["id"] for item in input_value
            if isinstance(item, Mapping) and item.get("type") == "item_reference" and isinstance(item.get("id"), str)]


def to_chat_request(
    body: Mapping[str, Any],
    *,
    max_tokens_field: str = "max_tokens",
    items: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The chat completions body for a Responses ``body``; :class:`BadRequestError` naming the field.

    ``max_tokens_field``: where ``max_output_tokens`` goes. ``max_tokens`` (the default) is what
    every OpenAI-compatible server takes; OpenAI's reasoning models take only
    ``max_completion_tokens``, so a deployment translating to OpenAI itself should pass that.
    ``items``: input items by id, to resolve ``item_reference`` items (see the module docstring).
    """
    if not isinstance(body, Mapping):
        raise BadRequestError("The request body must be a JSON object.", code="invalid_type")
    if max_tokens_field not in _MAX_TOKENS_FIELDS:
        raise ValueError(f"max_tokens_field must be one of {sorted(_MAX_TOKENS_FIELDS)}, not {max_tokens_field!r}")
    for field, reason in REFUSED.items():
        value = body.get(field)
        if _is_set(value) and not (field == "background" and value is False):
            raise _unsupported(field, reason + ".")

    model = body.get("model")
    if not isinstance(model, str) or not model:
        if model is None:
            raise _missing("model", "the model to answer with")
        raise _invalid_type("model", "a non-empty string", model)
    chat: dict[str, Any] = {"model": model}

    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if _is_set(instructions):
        if not isinstance(instructions, str):
            raise _invalid_type("instructions", "a string", instructions)
        if instructions:
            messages.append({"role": "system", "content": instructions})
    input_value = body.get("input")
    if input_value is None:
        if not messages:
            raise _missing("input", "the text or items the model answers")
    else:
        messages.extend(_messages(input_value, items or {}))
    if not messages:
        raise _invalid_value("input", "the input is empty; give at least one message.")
    chat["messages"] = messages

    tools = body.get("tools")
    chat_tools = _tools(tools) if _is_set(tools) else []
    choice = body.get("tool_choice")
    if _is_set(choice):
        chat_tools, chat_choice = _tool_choice(choice, chat_tools)
        if chat_choice is not None:
            chat["tool_choice"] = chat_choice
    if chat_tools:
        chat["tools"] = chat_tools
        parallel = body.get("parallel_tool_calls")
        if _is_set(parallel):
            if not isinstance(parallel, bool):
                raise _invalid_type("parallel_tool_calls", "a boolean", parallel)
            chat["parallel_tool_calls"] = parallel

    max_output = body.get("max_output_tokens")
    if _is_set(max_output):
        if not isinstance(max_output, int) or isinstance(max_output, bool) or max_output < 1:
            raise _invalid_value("max_output_tokens", "expected an integer >= 1.")
        chat[max_tokens_field] = max_output

    text = body.get("text")
    if _is_set(text):
        chat.update(_text(text))

    reasoning = body.get("reasoning")
    if _is_set(reasoning):
        if not isinstance(reasoning, Mapping):
            raise _invalid_type("reasoning", "an object", reasoning)
        effort = reasoning.get("effort")
        if _is_set(effort):
            if effort not in _REASONING_EFFORTS:
                raise _invalid_value("reasoning.effort", f"expected one of {', '.join(sorted(_REASONING_EFFORTS))}.")
            chat["reasoning_effort"] = effort

    include = body.get("include")
    if _is_set(include) and not (isinstance(include, list) and all(isinstance(x, str) for x in include)):
        raise _invalid_type("include", "an array of strings", include)
    if include and _LOGPROBS_INCLUDE in include:
        chat["logprobs"] = True
    top_logprobs = body.get("top_logprobs")
    if _is_set(top_logprobs):
        if not isinstance(top_logprobs, int) or isinstance(top_logprobs, bool) or not 0 <= top_logprobs <= 20:
            raise _invalid_value("top_logprobs", "expected an integer from 0 to 20.")
        if chat.get("logprobs"):
            chat["top_logprobs"] = top_logprobs

    metadata = body.get("metadata")
    if _is_set(metadata):
        if not isinstance(metadata, Mapping):
            raise _invalid_type("metadata", "an object", metadata)
        chat["metadata"] = dict(metadata)

    stream = body.get("stream")
    if _is_set(stream):
        if not isinstance(stream, bool):
            raise _invalid_type("stream", "a boolean", stream)
        if stream:
            chat["stream"] = True
            # response.completed carries usage: ask the upstream for its usage chunk
            chat["stream_options"] = {"include_usage": True}

    for field in sorted(PASSED):
        if _is_set(body.get(field)):
            chat[field] = body[field]
    for field, value in body.items():
        # not a Responses field: a vendor's or the proxy's own; never over what the translation set
        if field not in TRANSLATED and field not in PASSED and field not in IGNORED and field not in REFUSED:
            chat.setdefault(field, value)
    return chat


# --- input --------------------------------------------------------------------------------------


def _messages(input_value: Any, items: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(input_value, str):
        return [{"role": "user", "content": input_value}]
    if not isinstance(input_value, list):
        raise _invalid_type("input", "a string or an array of input items", input_value)
    messages: list[dict[str, Any]] = []
    called: set[str] = set()
    for index, item in enumerate(input_value):
        path = f"input[{index}]"
        if not isinstance(item, Mapping):
            raise _invalid_type(path, "an input item (an object)", item)
        if item.get("type") == "item_reference":
            ref = item.get("id")
            if not isinstance(ref, str) or not ref:
                raise _missing(f"{path}.id", "the id of the item referenced")
            if ref in items:
                item = items[ref]
            elif is_reasoning_item_id(ref):
                continue            # reasoning is not replayed to chat upstreams (module docstring)
            else:
                raise _unsupported(
                    path, f"item_reference {ref!r} names an item of an earlier response, and "
                    "translated responses are not stored. Send the item itself (with the Vercel AI "
                    "SDK: providerOptions.openai.store = false).")
            if not isinstance(item, Mapping) or item.get("type") == "item_reference":
                raise _invalid_value(path, f"item_reference {ref!r} resolved to something that is not an input item.")
        _add_item(messages, called, item, path)
    return messages


def _add_item(messages: list[dict[str, Any]], called: set[str], item: Mapping[str, Any], path: str) -> None:
    kind = item.get("type")
    if kind == "message" or (kind is None and "role" in item):
        messages.append(_message(item, path))
    elif kind == "function_call":
        call = _function_call(item, path)
        called.add(call["id"])
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)   # one assistant turn: text + its calls
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise _missing(f"{path}.call_id", "the call_id of the function_call this output answers")
        if call_id not in called:
            raise _invalid_value(
                f"{path}.call_id", f"no function_call with call_id {call_id!r} comes before this "
                "output in the input. Send the function_call item too (previous_response_id is not "
                "supported for translated responses).")
        messages.append({"role": "tool", "tool_call_id": call_id,
                         "content": _tool_output(item.get("output"), f"{path}.output")})
    elif kind == "reasoning":
        return                       # chain of thought: not replayed (module docstring)
    elif kind in BUILTIN_ITEM_TYPES:
        raise _unsupported(path, f"a {kind!r} item comes from a tool that only OpenAI's Responses API "
                                 f"runs; this model is answered through chat completions. {_NATIVE_HINT}")
    elif kind is None:
        raise _missing(f"{path}.type", "the item's type (or a role, for a message)")
    else:
        raise _invalid_value(f"{path}.type", f"unknown input item type {kind!r}.")


def _message(item: Mapping[str, Any], path: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        if role is None:
            raise _missing(f"{path}.role", "user, assistant, system or developer")
        raise _invalid_value(f"{path}.role", f"{role!r} is not one of user, assistant, system, developer.")
    chat_role = _ROLES[role]
    content = item.get("content")
    if isinstance(content, str):
        return {"role": chat_role, "content": content}
    if not isinstance(content, list):
        if content is None:
            raise _missing(f"{path}.content", "the message's text or content parts")
        raise _invalid_type(f"{path}.content", "a string or an array of content parts", content)
    parts = [_part(part, role, f"{path}.content[{j}]") for j, part in enumerate(content)]
    if chat_role == "user":
        if len(parts) == 1 and parts[0]["type"] == "text":
            return {"role": "user", "content": parts[0]["text"]}
        return {"role": "user", "content": parts}
    # system and assistant content: text only, as one string (what every chat server takes)
    for j, part in enumerate(parts):
        if part["type"] != "text":
            raise _unsupported(f"{path}.content[{j}]", f"a {role} message carries text only, not "
                                                       f"{content[j].get('type')!r} parts.")
    return {"role": chat_role, "content": ("" if chat_role == "assistant" else "\n").join(p["text"] for p in parts)}


def _part(part: Any, role: str, path: str) -> dict[str, Any]:
    if not isinstance(part, Mapping):
        raise _invalid_type(path, "a content part (an object)", part)
    kind = part.get("type")
    if kind in _TEXT_PARTS or (kind == "refusal" and role == "assistant"):
        key = "refusal" if kind == "refusal" else "text"
        text = part.get(key)
        if not isinstance(text, str):
            raise _invalid_type(f"{path}.{key}", "a string", text)
        return {"type": "text", "text": text}
    if kind == "input_image":
        if part.get("file_id") is not None and part.get("image_url") is None:
            raise _unsupported(f"{path}.file_id", "an image stored in OpenAI's Files API cannot be "
                                                   "sent to a chat upstream; send image_url (an http(s) "
                                                   "or data: URL).")
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise _missing(f"{path}.image_url", "an http(s) or data: URL")
        image: dict[str, Any] = {"url": url}
        detail = part.get("detail")
        if detail in _IMAGE_DETAILS:
            image["detail"] = detail
        elif detail == "original":
            image["detail"] = "high"      # chat's closest: full resolution
        elif detail is not None:
            raise _invalid_value(f"{path}.detail", "expected low, high, auto or original.")
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            which = "file_id" if part.get("file_id") is not None else "file_url" if part.get("file_url") else "file_data"
            raise _unsupported(f"{path}.{which}", "a chat upstream takes files inline only: send "
                                                  "file_data (a data: URL) and filename.")
        file: dict[str, Any] = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, Mapping) or not isinstance(audio.get("data"), str):
            raise _missing(f"{path}.input_audio", "an object with data and format")
        return {"type": "input_audio", "input_audio": dict(audio)}
    if kind is None:
        raise _missing(f"{path}.type", "the content part's type")
    raise _invalid_value(f"{path}.type", f"{kind!r} is not a content part a {role} message can carry.")


def _function_call(item: Mapping[str, Any], path: str) -> dict[str, Any]:
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
    if not isinstance(call_id, str) or not call_id:
        raise _missing(f"{path}.call_id", "the id that pairs the call with its function_call_output")
    if not isinstance(name, str) or not name:
        raise _missing(f"{path}.name", "the name of the function called")
    if not isinstance(arguments, str):
        raise _invalid_type(f"{path}.arguments", "a string (the arguments as JSON)", arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tool_output(output: Any, path: str) -> str:
    """A function's result as the tool message's text (chat tool messages carry text only)."""
    if isinstance(output, str):
        return output
    if not isinstance(output, list):
        raise _invalid_type(path, "a string or an array of content parts", output)
    texts = []
    for j, part in enumerate(output):
        if not isinstance(part, Mapping) or part.get("type") not in _TEXT_PARTS or not isinstance(part.get("text"), str):
            kind = part.get("type") if isinstance(part, Mapping) else _kind(part)
            raise _unsupported(f"{path}[{j}]", f"a chat tool result carries text only, not {kind!r}.")
        texts.append(part["text"])
    return "".join(texts)


# --- tools --------------------------------------------------------------------------------------


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _invalid_type("tools", "an array of tools", tools)
    out = []
    for index, tool in enumerate(tools):
        path = f"tools[{index}]"
        if not isinstance(tool, Mapping):
            raise _invalid_type(path, "a tool (an object)", tool)
        kind = tool.get("type")
        if kind in BUILTIN_TOOL_TYPES:
            raise _unsupported(path, f"{kind!r} is a built-in tool that only OpenAI's Responses API "
                                     f"runs; this model is answered through chat completions, which "
                                     f"has no equivalent. {_NATIVE_HINT}")
        if kind != "function":
            if kind is None:
                raise _missing(f"{path}.type", "'function' (the only tool type chat completions has)")
            raise _invalid_value(f"{path}.type", f"unknown tool type {kind!r}.")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _missing(f"{path}.name", "the function's name")
        function: dict[str, Any] = {"name": name}
        description = tool.get("description")
        if _is_set(description):
            if not isinstance(description, str):
                raise _invalid_type(f"{path}.description", "a string", description)
            function["description"] = description
        parameters = tool.get("parameters")
        if _is_set(parameters):
            if not isinstance(parameters, Mapping):
                raise _invalid_type(f"{path}.parameters", "a JSON schema (an object)", parameters)
            function["parameters"] = dict(parameters)
        strict = tool.get("strict")
        if _is_set(strict):
            if not isinstance(strict, bool):
                raise _invalid_type(f"{path}.strict", "a boolean", strict)
            function["strict"] = strict
        out.append({"type": "function", "function": function})
    return out


def _tool_names(tools: Iterable[Mapping[str, Any]]) -> list[str]:
    return [t["function"]["name"] for t in tools]


def _tool_choice(choice: Any, tools: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    """``(tools, chat tool_choice or None)``; ``allowed_tools`` narrows the tools themselves."""
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise _invalid_value("tool_choice", "expected auto, none, required or an object.")
        if not tools:
            if choice == "required":
                raise _invalid_value("tool_choice", "'required' needs at least one function tool in tools.")
            return tools, None           # chat upstreams refuse a tool_choice without tools
        return tools, choice
    if not isinstance(choice, Mapping):
        raise _invalid_type("tool_choice", "a string or an object", choice)
    kind = choice.get("type")
    if kind == "function":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise _missing("tool_choice.name", "the function to call")
        if name not in _tool_names(tools):
            raise _invalid_value("tool_choice.name", f"no function tool named {name!r} in tools.")
        return tools, {"type": "function", "function": {"name": name}}
    if kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise _invalid_value("tool_choice.mode", "expected auto or required.")
        allowed = choice.get("tools")
        if not isinstance(allowed, list):
            raise _invalid_type("tool_choice.tools", "an array of tools", allowed)
        names = set()
        for index, entry in enumerate(allowed):
            if not isinstance(entry, Mapping) or entry.get("type") != "function" or not isinstance(entry.get("name"), str):
                kind_of = entry.get("type") if isinstance(entry, Mapping) else _kind(entry)
                raise _unsupported(f"tool_choice.tools[{index}]", f"only function tools can be allowed "
                                                                  f"on a translated request, not {kind_of!r}.")
            names.add(entry["name"])
        unknown = names.difference(_tool_names(tools))
        if unknown:
            raise _invalid_value("tool_choice.tools", f"no function tool named {sorted(unknown)[0]!r} in tools.")
        narrowed = [t for t in tools if t["function"]["name"] in names]
        if not narrowed:
            raise _invalid_value("tool_choice.tools", "allows no tool at all.")
        return narrowed, mode
    if kind in ("auto", "none", "required"):      # the object spelling some clients send
        return _tool_choice(kind, tools)
    raise _unsupported("tool_choice", f"{kind!r} chooses a built-in tool that only OpenAI's Responses "
                                      f"API runs. {_NATIVE_HINT}")


# --- text ---------------------------------------------------------------------------------------


def _text(text: Any) -> dict[str, Any]:
    if not isinstance(text, Mapping):
        raise _invalid_type("text", "an object", text)
    out: dict[str, Any] = {}
    verbosity = text.get("verbosity")
    if _is_set(verbosity):
        if verbosity not in ("low", "medium", "high"):
            raise _invalid_value("text.verbosity", "expected low, medium or high.")
        out["verbosity"] = verbosity
    fmt = text.get("format")
    if not _is_set(fmt):
        return out
    if not isinstance(fmt, Mapping):
        raise _invalid_type("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind == "text":
        return out
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
        return out
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, Mapping):
            if schema is None:
                raise _missing("text.format.schema", "the JSON schema of the answer")
            raise _invalid_type("text.format.schema", "a JSON schema (an object)", schema)
        name = fmt.get("name")
        if _is_set(name) and not isinstance(name, str):
            raise _invalid_type("text.format.name", "a string", name)
        spec: dict[str, Any] = {"name": name or "response", "schema": dict(schema)}
        if isinstance(fmt.get("description"), str):
            spec["description"] = fmt["description"]
        if isinstance(fmt.get("strict"), bool):
            spec["strict"] = fmt["strict"]
        out["response_format"] = {"type": "json_schema", "json_schema": spec}
        return out
    if kind is None:
        raise _missing("text.format.type", "text, json_object or json_schema")
    raise _invalid_value("text.format.type", f"{kind!r} is not text, json_object or json_schema.")
