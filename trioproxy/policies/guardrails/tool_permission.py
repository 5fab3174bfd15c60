"""``guardrail: tool_permission``: allow/deny rules on the tools a request offers and the model calls.

As LiteLLM's ``ToolPermissionGuardrail`` (``guardrail_hooks/tool_permission.py``), checked locally
(no service is called):

* ``rules``: an ordered list of ``{id, tool_name, tool_type, decision, allowed_param_patterns}``;
  the first rule whose ``tool_name`` (and ``tool_type``, when given) matches the whole name decides
  (``allow`` / ``deny``, any case: LiteLLM's own example writes ``Deny``); no match →
  ``default_action`` (default ``deny``). ``allowed_param_patterns`` maps argument paths (dots, ``[]``
  for every array item: ``to[]``, ``options.mode``) to regular expressions the call's arguments
  must match in full, or the rule does not apply (the next rule, then the default, decides).
* **Patterns**: LiteLLM compiles ``tool_name`` as a regular expression today, while its docs and
  example configs write globs (``mcp__github_*``). **Decision**: a pattern whose only special
  character is ``*`` is a glob (``*`` = any run of characters), so the examples mean what their
  authors meant; anything else (``^mcp__github_.*$``) is a regular expression, as in LiteLLM.
* ``pre_call``: the request's function ``tools`` are checked by name. ``post_call``: the answer's
  ``tool_calls`` are checked by name and arguments (streams: the assembled answer, before ``[DONE]``).
* ``on_disallowed_action: block`` (default) → 400 ``guardrail_violation`` with the message;
  ``rewrite`` → pre-call, the denied tools are removed from ``tools`` (when none is left, ``tools``
  and ``tool_choice`` are dropped: OpenAI rejects an empty list; LiteLLM would send it); post-call,
  denied calls are removed from the answer and ``Permission denied: <message> (Rule: <id>)`` lines
  are appended to its text (with no call left, ``finish_reason`` becomes ``stop`` so clients do not
  wait for a call). A streamed answer cannot be rewritten once sent: the denial is logged.
* ``violation_message_template``: ``{tool_name}``, ``{rule_id}``, ``{default_message}`` are filled.
  Default messages are LiteLLM's: ``Tool 'Read' denied by rule 'deny_read'``, ``Tool 'X' denied by
  default action``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import orjson

from ...errors import GuardrailViolationError
from ...hooks.loader import HandlerLoadError
from .service import ServiceGuardrail

__all__ = ["ToolPermissionGuardrail", "compile_tool_pattern"]

log = logging.getLogger("trioproxy.guardrails.tool_permission")

_RULE_KEYS = {"id", "tool_name", "tool_type", "decision", "allowed_param_patterns"}
_REGEX_CHARS = set("^$.+?()[]{}|\\")
_MAX_DEPTH = 32


def compile_tool_pattern(pattern: str) -> re.Pattern[str]:
    """A glob (only ``*`` special) or a regular expression, matched against a whole name."""
    if not _REGEX_CHARS & set(pattern):
        return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
    return re.compile(pattern)


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    decision: str
    name: re.Pattern[str] | None
    type: re.Pattern[str] | None
    params: dict[str, re.Pattern[str]]

    def matches(self, name: str | None, type_: str | None) -> bool:
        if self.name is not None and (name is None or not self.name.fullmatch(name)):
            return False
        return self.type is None or (type_ is not None and bool(self.type.fullmatch(type_)))


def _parse_rule(index: int, raw: Any) -> _Rule:
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        raise HandlerLoadError(f"{where} must be a mapping with id, tool_name and decision")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise HandlerLoadError(f"{where}: unknown key(s) {', '.join(unknown)} (keys: {', '.join(sorted(_RULE_KEYS))})")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise HandlerLoadError(f"{where}.id must be a non-empty string")
    decision = raw.get("decision")
    if not isinstance(decision, str) or decision.lower() not in ("allow", "deny"):
        raise HandlerLoadError(f"{where}.decision must be 'allow' or 'deny', got {decision!r}")
    compiled: dict[str, re.Pattern[str] | None] = {}
    for key in ("tool_name", "tool_type"):
        value = raw.get(key)
        if value is None:
            compiled[key] = None
            continue
        if not isinstance(value, str):
            raise HandlerLoadError(f"{where}.{key} must be a string, got {value!r}")
        try:
            compiled[key] = compile_tool_pattern(value) if key == "tool_name" else re.compile(value)
        except re.error as exc:
            raise HandlerLoadError(f"{where}.{key}: invalid regular expression {value!r}: {exc}") from None
    if compiled["tool_name"] is None and compiled["tool_type"] is None:
        raise HandlerLoadError(f"{where} needs tool_name or tool_type")
    params: dict[str, re.Pattern[str]] = {}
    raw_params = raw.get("allowed_param_patterns") or {}
    if not isinstance(raw_params, dict):
        raise HandlerLoadError(f"{where}.allowed_param_patterns must map argument paths to regular expressions")
    for path, pattern in raw_params.items():
        if not isinstance(path, str) or not isinstance(pattern, str):
            raise HandlerLoadError(f"{where}.allowed_param_patterns: {path!r}: {pattern!r} must be strings")
        try:
            params[path] = re.compile(pattern)
        except re.error as exc:
            raise HandlerLoadError(f"{where}.allowed_param_patterns[{path!r}]: invalid regular expression: "
                                   f"{exc}") from None
    return _Rule(rule_id, decision.lower(), compiled["tool_name"], compiled["tool_type"], params)


def _argument_paths(value: Any, path: str, out: dict[str, list[Any]], depth: int = 0) -> None:
    """``{"to": ["a", "b"], "o": {"m": 1}}`` → ``{"to[]": ["a", "b"], "o.m": [1]}`` (LiteLLM's paths)."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, dict):
        for key, sub in value.items():
            _argument_paths(sub, f"{path}.{key}" if path else str(key), out, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _argument_paths(item, f"{path}[]", out, depth + 1)
    elif path:
        out.setdefault(path, []).append(value)


def _arguments(call: dict[str, Any]) -> dict[str, Any]:
    raw = (call.get("function") or {}).get("arguments")
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    rule_id: str | None
    message: str


class ToolPermissionGuardrail(ServiceGuardrail):
    provider = "tool_permission"
    supported_modes = ("pre_call", "post_call")

    def __init__(self, *, rules: list[Any] | None = None, default_action: str = "deny",
                 on_disallowed_action: str = "block", violation_message_template: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if rules is not None and not isinstance(rules, list):
            raise HandlerLoadError("rules must be a list of {id, tool_name, decision} rules")
        self.rules = [_parse_rule(i, raw) for i, raw in enumerate(rules or ())]
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise HandlerLoadError(f"rules: every id must be unique, got {ids}")
        if not isinstance(default_action, str) or default_action.lower() not in ("allow", "deny"):
            raise HandlerLoadError(f"default_action must be 'allow' or 'deny', got {default_action!r}")
        if not isinstance(on_disallowed_action, str) or on_disallowed_action.lower() not in ("block", "rewrite"):
            raise HandlerLoadError(f"on_disallowed_action must be 'block' or 'rewrite', got {on_disallowed_action!r}")
        if violation_message_template is not None and not isinstance(violation_message_template, str):
            raise HandlerLoadError("violation_message_template must be a string")
        self.default_allows = default_action.lower() == "allow"
        self.rewrite = on_disallowed_action.lower() == "rewrite"
        self.template = violation_message_template

    # -- the decision -----------------------------------------------------------------------------
    def _message(self, default: str, tool: str, rule_id: str | None) -> str:
        if not self.template:
            return default
        try:
            return self.template.format(tool_name=tool, rule_id=rule_id, default_message=default)
        except (KeyError, IndexError, ValueError):   # an unknown placeholder: LiteLLM falls back too
            return default

    def decide(self, name: str | None, type_: str | None, arguments: dict[str, Any] | None = None) -> Verdict:
        """The first matching rule's decision (arguments checked when given), else the default."""
        tool = name or type_ or "unknown_tool"
        pattern_failure: str | None = None
        paths: dict[str, list[Any]] | None = None
        for rule in self.rules:
            if not rule.matches(name, type_):
                continue
            if rule.params and arguments is not None and rule.name is not None:
                if not arguments:
                    pattern_failure = f"Tool '{tool}' is missing arguments required by rule '{rule.id}'"
                    continue
                if paths is None:
                    paths = {}
                    _argument_paths(arguments, "", paths)
                failure = self._params_failure(rule, paths, tool)
                if failure is not None:
                    pattern_failure = failure
                    continue
            allowed = rule.decision == "allow"
            return Verdict(allowed, rule.id, self._message(
                f"Tool '{tool}' {'allowed' if allowed else 'denied'} by rule '{rule.id}'", tool, rule.id))
        allowed = self.default_allows
        default = pattern_failure if pattern_failure and not allowed else \
            f"Tool '{tool}' {'allowed' if allowed else 'denied'} by default action"
        return Verdict(allowed, None, self._message(default, tool, None))

    @staticmethod
    def _params_failure(rule: _Rule, paths: dict[str, list[Any]], tool: str) -> str | None:
        for path, pattern in rule.params.items():
            values = paths.get(path)
            if not values:
                return f"Missing value for path '{path}' required by rule '{rule.id}'"
            for value in values:
                if not pattern.fullmatch(str(value)):
                    # the value is the model's output: not logged, not echoed (it may carry data)
                    return (f"A value for path '{path}' does not match allowed pattern '{pattern.pattern}' "
                            f"for tool '{tool}'")
        return None

    # -- hooks ------------------------------------------------------------------------------------
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        tools = data.get("tools")
        if not isinstance(tools, list):
            return None
        denied: set[str] = set()
        for tool in tools:
            if not isinstance(tool, dict) or tool.get("type") != "function":
                continue
            name = (tool.get("function") or {}).get("name")
            verdict = self.decide(name if isinstance(name, str) else None, "function")
            if verdict.allowed:
                continue
            log.info("guardrail %s: %s", self.name, verdict.message)
            if not self.rewrite:
                raise GuardrailViolationError(verdict.message, guardrail=self.name)
            denied.add(str(name))
        if not denied:
            return None
        kept = [t for t in tools if not (isinstance(t, dict) and t.get("type") == "function"
                                         and (t.get("function") or {}).get("name") in denied)]
        if kept:
            data["tools"] = kept
            choice = data.get("tool_choice")
            if isinstance(choice, dict) and (choice.get("function") or {}).get("name") in denied:
                data.pop("tool_choice", None)
        else:
            data.pop("tools", None)
            data.pop("tool_choice", None)
            data.pop("parallel_tool_calls", None)
        return data

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        choices = response.get("choices") if isinstance(response, dict) else None
        changed = False
        for choice in choices if isinstance(choices, list) else ():
            message = choice.get("message") if isinstance(choice, dict) else None
            calls = message.get("tool_calls") if isinstance(message, dict) else None
            if not isinstance(calls, list) or not calls:
                continue
            kept, notes = [], []
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                name = function.get("name") if isinstance(function, dict) else None
                verdict = self.decide(name if isinstance(name, str) else None,
                                      call.get("type") if isinstance(call, dict) else None, _arguments(call))
                if verdict.allowed:
                    kept.append(call)
                    continue
                log.info("guardrail %s: %s", self.name, verdict.message)
                if not self.rewrite:
                    raise GuardrailViolationError(verdict.message, guardrail=self.name)
                notes.append(f"Permission denied: {verdict.message}"
                             + (f" (Rule: {verdict.rule_id})" if verdict.rule_id else ""))
            if not notes:
                continue
            if data.get("stream"):
                log.warning("guardrail %s: a streamed answer called a denied tool; chunks already sent cannot "
                            "be rewritten", self.name)
                continue
            changed = True
            message["tool_calls"] = kept or None
            text = message.get("content")
            message["content"] = (text + "\n\n" if isinstance(text, str) and text else "") + "\n".join(notes)
            if not kept and choice.get("finish_reason") == "tool_calls":
                choice["finish_reason"] = "stop"
        return response if changed else None
