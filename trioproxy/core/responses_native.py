"""``POST /v1/responses`` forwarded untranslated to an upstream that serves OpenAI's Responses API.

Whether a request is forwarded or translated (``responses_wire.py``) is decided once, after the
authentication, key rules and guardrail selection and before any hook runs (:func:`use_native`).
A request is forwarded only when both hold:

* **every deployment the router may pick** serves ``/v1/responses`` natively
  (``Router.responses_native``: the model group's deployments, a wildcard's match, and every group
  its fallbacks may lead to — a fallback cannot change the body's API after the fact);
* **every call hook that will run for it reads Responses bodies** (:func:`hook_reads_responses`):
  the pre-call, moderation, post-call and streaming hooks get ``data["input"]`` and the Responses
  object, with ``call_type`` ``aresponses`` (LiteLLM's name for the proxy's Responses route). A hook
  written for chat completions reads ``messages`` and would let the same text through as ``input``;
  so when any such hook would run, the request is translated instead and that hook sees a chat
  completion, as before. Switching APIs never bypasses a guardrail.

  Hooks that read Responses bodies: guardrails that implement only ``apply_guardrail`` (their texts
  are found in ``input``/``instructions`` and in the answer's ``output``), the built-in
  ``limits_and_budgets`` step, and any handler whose class sets ``handles_responses_api = True``
  (a trioproxy attribute: LiteLLM has no way to say it). Failure, headers and logging callbacks run
  either way; a ``logging_only`` guardrail (it masks logged ``messages`` and chat answers) makes
  every ``/v1/responses`` request translated (``Pipeline.masks_logs``).

A forwarded request keeps what only OpenAI's own Responses API has (built-in tools, stored
responses, ``previous_response_id``, ``background``); its answer is the upstream's, id included
(``previous_response_id`` must find it there). Cost, spend and ``tpm`` read the Responses usage
(:func:`chat_usage`: ``input_tokens`` → ``prompt_tokens``, cached tokens kept). Native answers are
not stored in the response cache (its call types do not include ``aresponses``).

The stream relay (``relay.py``) is shared with chat completions; :class:`NativeStream` is its
dialect for Responses events: it parses each ``data:`` payload as an event, ends the stream at
``response.completed`` / ``response.incomplete`` (held back until the post-call hooks approved the
answer, like chat's ``[DONE]``), maps ``error`` / ``response.failed`` events to the upstream's error
(before the first byte: retried or answered with its status), and writes a failure after the first
byte as an ``error`` event followed by ``response.failed``, as the translated path does.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import orjson

from ..context import Route
from ..errors import ProxyError, error_body
from ..responses_api import chat_usage
from ..responses_api.stream import failed_error_code
from ..streaming import RESPONSES_FINISHED, ErrorEvent, responses_error_envelope

if TYPE_CHECKING:
    from ..hooks.loader import HookCall
    from ..upstream.router import Router
    from .run import RequestRun

__all__ = ["NATIVE_PHASES", "ROUTE", "NativeStream", "chat_usage", "hook_reads_responses", "use_native"]

#: a forwarded ``/v1/responses`` request: the upstream path, and the ``call_type`` hooks receive
ROUTE = Route("responses", "aresponses", (("model", (str,), "a string"),), True, True)

#: the phases whose hooks read the request's or the answer's content
NATIVE_PHASES = ("pre_call", "moderation", "post_call_success", "streaming_iterator", "post_call_streaming")


def hook_reads_responses(call: HookCall) -> bool:
    """Whether ``call`` handles a Responses body (``input``) and a Responses object as its answer."""
    made_for = getattr(call.fn, "__self__", None)       # a hook made from apply_guardrail
    return bool(getattr(made_for, "handles_responses_api", False) or getattr(call.obj, "handles_responses_api", False))


def _fallback_names(data: dict[str, Any]) -> list[str]:
    value = data.get("fallbacks")
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def use_native(run: RequestRun, router: Router, data: dict[str, Any]) -> bool:
    """Decide for this request (module docstring); when native, the request's route becomes :data:`ROUTE`."""
    model = data.get("model")
    if not isinstance(model, str):
        return False
    if not router.responses_native(model, request_fallbacks=_fallback_names(data),
                                   fallbacks_disabled=data.get("disable_fallbacks") is True):
        return False
    for phase in NATIVE_PHASES:
        if not all(map(hook_reads_responses, run.calls(phase))):
            return False
    run.ctx.route = ROUTE
    return True


def _frame(event: dict[str, Any]) -> bytes:
    kind = event.get("type")
    head = b"event: " + kind.encode() + b"\n" if isinstance(kind, str) and "\n" not in kind else b""
    return head + b"data: " + orjson.dumps(event) + b"\n\n"


class NativeStream:
    """The stream relay's dialect for a native Responses stream (module docstring).

    The relay calls :meth:`parse` per payload, :meth:`observe` per event (True: the finishing event,
    kept for :meth:`done`), ``add``/``build`` as its assembler (the answer the post-call hooks and the
    logs see: the finishing event's ``response``), and ``chunk``/``done``/``error`` as its encoder.
    """

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._final: dict[str, Any] | None = None       # the finishing event
        self._snapshot: dict[str, Any] | None = None    # the latest response object announced
        self._items: dict[int, Any] = {}                # output items so far, by output_index
        self._sequence = -1

    # -- reading ---------------------------------------------------------------------------------
    @staticmethod
    def parse(payload: bytes) -> Any:
        """One ``data:`` payload → the event, or an :class:`ErrorEvent` for ``error`` / ``response.failed``."""
        event = orjson.loads(payload)
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            if isinstance(event, dict) and "error" in event:    # a plain error envelope
                return ErrorEvent(event)
            raise orjson.JSONDecodeError("not a Responses event", payload.decode("utf-8", "replace"), 0)
        envelope = responses_error_envelope(event)
        return ErrorEvent(envelope) if envelope is not None else event

    def observe(self, event: dict[str, Any]) -> bool:
        sequence = event.get("sequence_number")
        if isinstance(sequence, int):
            self._sequence = max(self._sequence, sequence)
        kind = event["type"]
        response = event.get("response")
        if kind in RESPONSES_FINISHED:
            self._final = event
            usage = response.get("usage") if isinstance(response, dict) else None
            self.ctx.usage = chat_usage(usage) if isinstance(usage, dict) else None
            return True
        if isinstance(response, dict):
            self._snapshot = response
        index = event.get("output_index")
        if kind in ("response.output_item.added", "response.output_item.done") and isinstance(index, int):
            self._items[index] = event.get("item")
        return False

    # -- the relay's assembler -------------------------------------------------------------------
    def add(self, event: Any) -> None:
        """(Chunks are assembled by the upstream itself: the finishing event carries the answer.)"""

    def build(self) -> dict[str, Any]:
        response = self._final.get("response") if self._final is not None else None
        return response if isinstance(response, dict) else {}

    # -- the relay's encoder ---------------------------------------------------------------------
    def chunk(self, event: Any) -> bytes:
        return _frame(event)

    def done(self) -> bytes:
        return _frame(self._final) if self._final is not None else b""

    def error(self, error: ProxyError) -> bytes:
        """``error`` then ``response.failed`` (the items so far, cut), numbered after the upstream's events."""
        body = error_body(error)["error"]
        code = None if body.get("code") is None else str(body["code"])
        message = str(body.get("message") or "The upstream failed.")
        response = copy.deepcopy(self._snapshot) if self._snapshot is not None else {"object": "response"}
        response.update(status="failed", error={"code": failed_error_code(error.status_code, code), "message": message},
                        output=[self._items[i] for i in sorted(self._items) if self._items[i] is not None])
        first = self._sequence + 1
        self._sequence += 2
        return (_frame({"type": "error", "code": code, "message": message, "param": body.get("param"),
                        "sequence_number": first})
                + _frame({"type": "response.failed", "response": response, "sequence_number": first + 1}))
