"""The hook scheduler: which handlers run in each phase, in what order, and how results combine.

This module is the answer to "in what order do hooks run?". It knows nothing about Trio, sockets or
cancellation (that is ``pipeline.py``): the pipeline hands it an ``invoke`` coroutine that calls one
hook under its time limit, and the functions here apply the rules below. The README's hook table is
this docstring; each row has a test in ``tests/test_scheduler*.py``.

Order within a phase (every phase): built-in request policies (``general_settings``), then
guardrails in config order, then ``callbacks`` in config order. A guardrail runs only in the phases
of its mode (pre_call → pre-call, during_call → moderation, post_call → post-call success and the
streaming iterator) and only when it is ``default_on`` or the request names it.

| phase | runs | a result of… | means |
|---|---|---|---|
| pre_call | one after another, each sees the previous one's data | ``None`` / dict / str / Exception | keep data / replace data / answer with this text (chat & text completions: 200; others: 400) / reject |
| moderation | all at once, racing the upstream call (pipeline) | raise | reject: upstream cancelled, the other hooks cancelled, first error wins |
| post_call_success | one after another (non-streaming); once with the assembled answer before ``[DONE]`` (streaming) | non-``None`` / raise | replace the response (non-streaming) / fail the call |
| streaming_iterator | each wraps the previous one's output, config order | yielded items | what the client receives, before the per-chunk hooks |
| post_call_streaming | per chunk, one after another | non-``None`` / raise | replace the chunk / end the stream with an error event |
| failure | exactly once per failed request, all handlers in order | the first ``HTTPException`` returned or raised | replaces the error the client receives; other errors in these hooks are logged |
| response_headers | once per request (success and failure), before the status line | dict | merged in order, later keys win; a raising handler is logged and skipped |

How a raised exception is classified (:func:`classify`): a ``ProxyError`` keeps its status; an
``HTTPException`` (or anything with ``status_code`` and ``detail``) keeps its status and detail; any
other exception from a guardrail is a 400 ``guardrail_violation`` naming the guardrail; from any
other handler it is a 500 naming the handler and the phase (the traceback stays in the server log).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    BadRequestError,
    GuardrailViolationError,
    HookCrashedError,
    ProxyError,
    from_http_exception,
    is_http_exception,
)
from .base import requested_guardrails
from .loader import CALL_HOOKS, HookCall, LoadedHandler

__all__ = [
    "PHASES",
    "Answer",
    "HookPlan",
    "chain_iterators",
    "classify",
    "run_chunk_hooks",
    "run_failure",
    "run_post_call_success",
    "run_pre_call",
    "run_replacing",
    "run_response_headers",
]

log = logging.getLogger("trioproxy.hooks")

#: what HTTP/1.1 allows in a header name (RFC 9110 token) and value (visible latin-1, spaces, tabs)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")

#: the phases in the order a request meets them
PHASES = (
    "pre_call",
    "moderation",
    "post_call_success",
    "streaming_iterator",
    "post_call_streaming",
    "failure",
    "response_headers",
)

#: a guardrail's mode → the phases it runs in
GUARDRAIL_MODE_PHASES: dict[str, tuple[str, ...]] = {
    "pre_call": ("pre_call",),
    "during_call": ("moderation",),
    "post_call": ("post_call_success", "streaming_iterator"),
    "logging_only": (),
}
#: a phase → the event type handed to ``should_run_guardrail``
PHASE_EVENT = {"pre_call": "pre_call", "moderation": "during_call",
               "post_call_success": "post_call", "streaming_iterator": "post_call"}

Invoke = Callable[[HookCall, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Answer:
    """A pre-call hook returned a string: answer the user with it (or 400 where that cannot be)."""

    text: str
    handler: str


@dataclass
class HookPlan:
    """Every loaded handler, in scheduling order, and each phase's calls (built once at startup)."""

    handlers: list[LoadedHandler]
    phases: dict[str, list[HookCall]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.phases = {phase: [h.hooks[phase] for h in self.handlers if phase in h.hooks] for phase in PHASES}
        #: guardrail name → its handlers: several under one name are load-balanced (one runs per request)
        self.guardrail_groups: dict[str, list[LoadedHandler]] = {}
        for h in self.handlers:
            if h.guardrail is not None:
                self.guardrail_groups.setdefault(h.guardrail.name, []).append(h)
        self.guardrails = {name: group[0] for name, group in self.guardrail_groups.items()}
        # a streaming post-call guardrail in "buffer" mode holds the answer back until it has seen it all
        self.buffering_guardrails = {name for name, group in self.guardrail_groups.items()
                                     if any(h.guardrail.stream_mode == "buffer" for h in group)}
        self._turns = {name: itertools.count() for name, group in self.guardrail_groups.items() if len(group) > 1}

    def has(self, phase: str) -> bool:
        return bool(self.phases[phase])

    def check_requested_guardrails(self, data: dict[str, Any]) -> None:
        """An unknown guardrail name in a request is a 400 listing the configured ones.

        So is a selection of the wrong shape (``"guardrails": "name"``): ignoring it would silently
        skip guardrails the caller asked for.
        """
        if "guardrails" not in data and "metadata" not in data:
            return
        _check_selection_shape(data)
        requested = requested_guardrails(data)
        unknown = [name for name in requested if name not in self.guardrails]
        if unknown:
            known = ", ".join(sorted(self.guardrails)) or "none are configured"
            raise BadRequestError(
                f"Unknown guardrail {', '.join(map(repr, unknown))} in the request; configured guardrails: {known}",
                param="guardrails",
                code="unknown_guardrail",
            )

    def pick(self, name: str) -> int:
        """Which of the guardrails named ``name`` runs for the next request: in turn (round-robin).

        LiteLLM picks one of the guardrails sharing a name at random for each call; in turn spreads
        the load the same way on average and is deterministic (``docs/guardrails.md``).
        """
        group = self.guardrail_groups[name]
        return next(self._turns[name]) % len(group) if len(group) > 1 else 0

    def calls(self, phase: str, data: dict[str, Any], picks: dict[str, int] | None = None,
              headers: Mapping[str, str] | None = None) -> list[HookCall]:
        """The calls that run in ``phase`` for this request (guardrails filtered by selection).

        ``picks``: the request's choice among guardrails that share a name (:meth:`pick`), made
        once per request and kept there, so that every phase of one request uses the same one.
        ``headers``: the request's, for guardrails whose mode is chosen by request tag (the
        ``User-Agent`` and ``x-litellm-tags`` tags).
        """
        calls = self.phases[phase]
        if not self.guardrails or not any(c.guardrail for c in calls):
            return calls
        event = PHASE_EVENT.get(phase, phase)
        tags: set[str] | None = None
        selected = []
        for call in calls:
            if call.guardrail is None:
                selected.append(call)
                continue
            member = self.guardrails[call.guardrail]
            if call.guardrail in self._turns:
                if picks is None:
                    picks = {}
                if call.guardrail not in picks:
                    picks[call.guardrail] = self.pick(call.guardrail)
                member = self.guardrail_groups[call.guardrail][picks[call.guardrail]]
                if member.hooks.get(phase) is not call:
                    continue
            if member.guardrail.tag_modes:    # mode chosen by request tag: this request's modes
                if tags is None:
                    tags = mode_tags(data, headers)
                if event not in member.guardrail.modes_for(tags):
                    continue
            should_run = getattr(call.obj, "should_run_guardrail", None)
            if should_run is None:
                spec = member.guardrail
                if spec.default_on or call.guardrail in requested_guardrails(data):
                    selected.append(call)
            elif should_run(data=data, event_type=event):
                selected.append(call)
        return selected

    def describe(self) -> list[str]:
        """For ``trioproxy check``: each phase and its handlers, in order."""
        lines = []
        for phase in PHASES:
            calls = self.phases[phase]
            names = [f"{c.handler} (guardrail)" if c.guardrail else c.handler for c in calls]
            lines.append(f"  {phase:<20} {CALL_HOOKS[phase]:<42} {', '.join(names) if names else '-'}")
        return lines


def mode_tags(data: dict[str, Any], headers: Mapping[str, str] | None) -> set[str]:
    """The tags a guardrail's ``mode: {tags: …}`` is matched against: the body's ``tags`` and
    ``metadata.tags``, the ``x-litellm-tags`` header, and, as LiteLLM adds them to every request,
    ``User-Agent: <product>`` and ``User-Agent: <whole header>`` (``User-Agent: claude-cli`` for
    ``claude-cli/1.0.3 (external, cli)``)."""
    found: set[str] = set()
    metadata = data.get("metadata")
    for value in (data.get("tags"), metadata.get("tags") if isinstance(metadata, dict) else None):
        if isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    found.update(t.strip() for t in lowered.get("x-litellm-tags", "").split(",") if t.strip())
    agent = lowered.get("user-agent", "").strip()
    if agent:
        found.update({f"User-Agent: {agent}", f"User-Agent: {agent.split('/', 1)[0].strip()}"})
    return found


def _is_selection_mapping(value: Any) -> bool:
    """``{"name": {...params}}``, ``{"name": null}`` or the pre-v1 ``{"name": true/false}``."""
    return isinstance(value, dict) and all(isinstance(p, dict | bool | None) for p in value.values())


def _check_selection_shape(data: dict[str, Any]) -> None:
    """``guardrails`` (or ``metadata.guardrails``) must be a list of names or ``{name: params}`` objects,
    or one ``{name: params}`` mapping (see ``base.requested_guardrails``)."""
    metadata = data.get("metadata")
    for where, value in (("guardrails", data.get("guardrails")),
                         ("metadata.guardrails", metadata.get("guardrails") if isinstance(metadata, dict) else None)):
        if value is None:
            continue
        if not (_is_selection_mapping(value) or isinstance(value, list) and all(
                isinstance(item, str) or _is_selection_mapping(item) for item in value)):
            raise BadRequestError(
                f"'{where}' must be a list of guardrail names or {{\"name\": {{\"extra_body\": {{...}}}}}} objects, "
                f"or one {{\"name\": {{...}}}} mapping",
                param=where,
                code="invalid_guardrails",
            )


def classify(call: HookCall, exc: BaseException) -> ProxyError:
    """What a hook's exception means for the client (see the module docstring)."""
    if isinstance(exc, ProxyError):
        return exc
    if is_http_exception(exc):
        return from_http_exception(exc)
    if call.guardrail is not None:
        err: ProxyError = GuardrailViolationError(
            f"Guardrail {call.guardrail!r} blocked the request: {exc}" if str(exc)
            else f"Guardrail {call.guardrail!r} blocked the request",
            guardrail=call.guardrail,
        )
        err.__cause__ = exc
        return err
    err = HookCrashedError(call.handler, CALL_HOOKS[call.phase], exc)
    err.__cause__ = exc
    return err


async def _invoke_classified(invoke: Invoke, call: HookCall, values: dict[str, Any]) -> Any:
    try:
        return await invoke(call, values)
    except Exception as exc:
        error = classify(call, exc)
        if isinstance(error, HookCrashedError):
            log.error("handler %s crashed in %s", call.handler, CALL_HOOKS[call.phase], exc_info=exc)
        raise error from exc


async def run_pre_call(calls: Iterable[HookCall], invoke: Invoke, values: dict[str, Any]) -> Answer | None:
    """Pre-call rule. Updates ``values["data"]``; returns an :class:`Answer` for a string result."""
    for call in calls:
        result = await _invoke_classified(invoke, call, values)
        if result is None:
            continue
        if isinstance(result, dict):
            values["data"] = values["request_data"] = result
        elif isinstance(result, str):
            return Answer(result, call.handler)
        elif isinstance(result, BaseException):
            if isinstance(result, ProxyError) or is_http_exception(result):
                raise classify(call, result)
            if call.guardrail is not None:
                raise classify(call, result)
            raise BadRequestError(str(result) or f"Request rejected by {call.handler}", code="rejected_by_hook")
        else:
            raise HookCrashedError(call.handler, CALL_HOOKS[call.phase],
                                   TypeError(f"returned {type(result).__name__}; expected None, dict, str or Exception"))
    return None


async def run_replacing(calls: Iterable[HookCall], invoke: Invoke, values: dict[str, Any]) -> Any:
    """The post-call success rule and the per-chunk rule (the same one): one after another, a
    non-``None`` result replaces ``values["response"]`` for the handlers after it; a raise fails."""
    for call in calls:
        result = await _invoke_classified(invoke, call, values)
        if result is not None:
            values["response"] = result
    return values["response"]


run_post_call_success = run_replacing
run_chunk_hooks = run_replacing


class _AwaitThenIterate:
    """An ``async def`` iterator hook that *returns* an async iterator instead of yielding one.

    A class rather than a generator so that closing it before it started also closes the pending
    coroutine (no "coroutine was never awaited").
    """

    def __init__(self, awaitable: Any) -> None:
        self._awaitable = awaitable
        self._iterator: Any = None

    def __aiter__(self) -> _AwaitThenIterate:
        return self

    async def __anext__(self) -> Any:
        if self._iterator is None:
            self._iterator = (await self._awaitable).__aiter__()
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        if self._iterator is None:
            self._awaitable.close()
        elif hasattr(self._iterator, "aclose"):
            await self._iterator.aclose()


async def _named(call: HookCall, produced: Any) -> AsyncIterator[Any]:
    """Relays one iterator hook's output; what *it* raises is classified like any hook's error
    (named handler and phase), while ProxyErrors from further in pass through unchanged."""
    try:
        async for item in produced:
            yield item
    except ProxyError:
        raise
    except Exception as exc:
        error = classify(call, exc)
        if isinstance(error, HookCrashedError):
            log.error("handler %s crashed in %s", call.handler, CALL_HOOKS[call.phase], exc_info=exc)
        raise error from exc
    finally:
        aclose = getattr(produced, "aclose", None)
        if aclose is not None:
            await aclose()


def chain_iterators(calls: Iterable[HookCall], source: AsyncIterator[Any],
                    values: dict[str, Any]) -> tuple[AsyncIterator[Any], list[Any]]:
    """Each iterator hook wraps the previous one's output, in config order.

    Returns the outermost iterator and every iterator created (innermost first), which the caller
    must close (``aclose``, idempotent) on every path, outermost first. Each hook's output is wrapped so that
    an exception the hook itself raises names it, like any other hook's.
    """
    current: AsyncIterator[Any] = source
    created: list[Any] = []
    for call in calls:
        produced = call.call({**values, "response": current})
        if hasattr(produced, "__await__"):
            produced = _AwaitThenIterate(produced)
        current = _named(call, produced)
        # both: a wrapper that never started would not close what it wraps
        created += [produced, current]
    return current, created


async def run_failure(calls: Iterable[HookCall], invoke: Invoke, values: dict[str, Any]) -> ProxyError | None:
    """Every failure hook runs; the first HTTPException returned or raised replaces the error."""
    replacement: ProxyError | None = None
    for call in calls:
        try:
            result = await invoke(call, values)
        except Exception as exc:
            if replacement is None and (is_http_exception(exc) or isinstance(exc, ProxyError)):
                replacement = classify(call, exc)
            else:
                log.error("failure hook of %s raised; ignored", call.handler, exc_info=exc)
            continue
        if replacement is None and result is not None:
            if is_http_exception(result) or isinstance(result, ProxyError):
                replacement = classify(call, result)
            else:
                log.warning("failure hook of %s returned %s; only an HTTPException replaces the error",
                            call.handler, type(result).__name__)
    return replacement


async def run_response_headers(calls: Iterable[HookCall], invoke: Invoke, values: dict[str, Any]) -> dict[str, str]:
    """Dicts merge in order (later keys win); a raising or misbehaving handler is logged and skipped."""
    merged: dict[str, str] = {}
    for call in calls:
        try:
            result = await invoke(call, values)
        except Exception as exc:
            log.error("response headers hook of %s raised; its headers are skipped", call.handler, exc_info=exc)
            continue
        if result is None:
            continue
        if not isinstance(result, dict):
            log.error("response headers hook of %s returned %s, not a dict; skipped", call.handler,
                      type(result).__name__)
            continue
        for key, value in result.items():
            name, text = str(key), str(value)
            # a header the HTTP layer cannot send would fail the whole response (a 500 after the
            # request succeeded): skip it like any other misbehaviour of a headers hook
            if not _HEADER_NAME.fullmatch(name) or not _HEADER_VALUE.fullmatch(text):
                log.error("response headers hook of %s returned an invalid header %r (line break, non-latin-1 "
                          "or control character, or a name that is not a token); skipped", call.handler, name[:64])
                continue
            merged[name.lower()] = text
    return merged
