"""What LiteLLM's built-in guardrails share in trioproxy: the HTTP call to their service, its time
limit, what an outage means, and the text of a request or an answer.

Every built-in here is a :class:`~trioproxy.hooks.base.CustomGuardrail` (``should_run_guardrail``,
``default_on``, per-request selection and ``extra_body`` work as for a custom guardrail) that calls
a hosted service on the request path through the proxy's pooled ``httpx.AsyncClient`` (given by the
composition root, ``proxy.py``; ``None`` under ``trioproxy check``, which never calls).

**Outage policy** (the service refused the connection, did not answer within the time limit,
answered an HTTP error, or answered something that is not its JSON): the request is rejected with
**503** ``guardrail_unavailable`` naming the guardrail and the reason — an unchecked prompt is never
let through silently. ``unreachable_fallback: fail_open`` (LiteLLM's setting of its generic
guardrail API, accepted by every built-in here) logs a warning and lets the request on instead.
LiteLLM itself answers most outages with a 500 carrying the exception text; a 503 says what happened.

**Time limit**: ``guardrail_timeout`` seconds for one check (default: ``min(10, hook timeout / 2)``,
always below ``general_settings.hook_timeout_seconds``, so the outage policy — not a generic hook
timeout — decides).

**Secrets**: API keys go in headers only; no message, log line or error carries a key, a prompt or
the service's answer text (only verdicts, entity types, categories and HTTP statuses).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import trio

from ...errors import ServiceUnavailableError
from ...hooks.base import CustomGuardrail
from ...hooks.loader import HandlerLoadError
from ...prompt import TextSlot, text_slots

__all__ = ["GuardrailUnavailable", "ServiceGuardrail", "answer_texts", "gather_limited", "stream_texts"]

log = logging.getLogger("trioproxy.guardrails")

MAX_CONCURRENT = 8
T = TypeVar("T")
R = TypeVar("R")


class GuardrailUnavailable(Exception):
    """The service gave no verdict; the message says why (never a prompt, an answer or a key)."""


class ServiceGuardrail(CustomGuardrail):
    """Base of the built-ins that call a service: the client, the time limit, the outage policy."""

    #: LiteLLM's ``guardrail:`` value (for messages)
    provider = "guardrail"
    #: the modes the built-in implements (others are a startup error naming them)
    supported_modes: tuple[str, ...] = ("pre_call", "during_call", "post_call")

    def __init__(self, *, http_client: httpx.AsyncClient | None = None, timeout: float = 10.0,
                 unreachable_fallback: str = "fail_closed", base_dir: Path | None = None,
                 skip_system_messages: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        modes = self._modes()
        unsupported = [m for m in modes if m not in self.supported_modes]
        if unsupported:
            raise HandlerLoadError(
                f"trioproxy's built-in {self.provider!r} guardrail supports the modes "
                f"{', '.join(self.supported_modes)}; not {', '.join(map(repr, unsupported))}")
        if self.optional_params:   # LiteLLM accepts them too; say so rather than ignore them silently
            log.warning("guardrail %s: trioproxy's built-in %r does not use the setting(s) %s",
                        self.name, self.provider, ", ".join(sorted(self.optional_params)))
        if unreachable_fallback not in ("fail_closed", "fail_open"):
            raise HandlerLoadError(f"unreachable_fallback must be 'fail_closed' or 'fail_open', "
                                   f"got {unreachable_fallback!r}")
        self.http_client = http_client
        self.timeout = timeout
        self.fail_open = unreachable_fallback == "fail_open"
        #: the config's directory (files a setting names are relative to it)
        self.base_dir = base_dir
        #: ``litellm_settings.skip_system_message_in_guardrail``: system messages are not sent to the service
        self.skip_system_messages = skip_system_messages

    def request_slots(self, data: dict[str, Any]) -> list[TextSlot]:
        """The request's non-blank texts (``prompt.text_slots``), without system messages when skipped."""
        slots = [s for s in text_slots(data) if s.text.strip()]
        if self.skip_system_messages:
            messages = data.get("messages") or []
            slots = [s for s in slots if s.message is None or not isinstance(messages[s.message], dict)
                     or messages[s.message].get("role") not in ("system", "developer")]
        return slots

    def request_messages(self, data: dict[str, Any]) -> list[Any]:
        """The request's messages, without system messages when skipped."""
        messages = data.get("messages")
        if not isinstance(messages, list):
            return []
        if self.skip_system_messages:
            return [m for m in messages if not (isinstance(m, dict) and m.get("role") in ("system", "developer"))]
        return messages

    @property
    def name(self) -> str:
        return self.guardrail_name or self.provider

    # -- calling the service ----------------------------------------------------------------------
    async def post_json(self, url: str, body: Any, headers: dict[str, str] | None = None, *,
                        content: bytes | None = None, ok: Sequence[int] = (200,)) -> Any:
        """POST ``body`` as JSON; the parsed JSON answer. Raises :class:`GuardrailUnavailable`."""
        client = self.http_client
        if client is None:
            raise GuardrailUnavailable("the proxy's HTTP client is not running")
        sent = {"content-type": "application/json", "accept": "application/json", **(headers or {})}
        try:
            response = await client.post(url, content=orjson.dumps(body) if content is None else content,
                                         headers=sent, timeout=self.timeout)
        except httpx.TimeoutException:
            raise GuardrailUnavailable(f"no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise GuardrailUnavailable(f"request failed: {type(exc).__name__}") from None
        if response.status_code not in ok:
            raise GuardrailUnavailable(f"it answered HTTP {response.status_code}")
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise GuardrailUnavailable("it answered with something that is not JSON") from None

    async def checked(self, work: Callable[[], Awaitable[T]]) -> T | None:
        """Run ``work`` under the time limit; an outage → 503, or None when failing open."""
        try:
            with trio.fail_after(self.timeout):
                return await work()
        except trio.TooSlowError:
            problem = GuardrailUnavailable(f"no answer within {self.timeout:g} s")
        except GuardrailUnavailable as exc:
            problem = exc
        if self.fail_open:
            log.warning("guardrail %s: the %s service is unavailable (%s); request let through "
                        "(unreachable_fallback: fail_open)", self.name, self.provider, problem)
            return None
        log.warning("guardrail %s: the %s service is unavailable (%s); request rejected",
                    self.name, self.provider, problem)
        raise ServiceUnavailableError(
            f"Guardrail {self.name!r} could not check the request: the {self.provider} service is unavailable "
            f"({problem}). The request was rejected (set unreachable_fallback: fail_open on the guardrail to "
            "let requests through instead).",
            code="guardrail_unavailable",
        ) from None


async def gather_limited(fn: Callable[[T], Awaitable[R]], items: Sequence[T],
                         limit: int = MAX_CONCURRENT) -> list[R]:
    """``[await fn(x) for x in items]`` run concurrently (at most ``limit`` at a time), in order.

    The first exception cancels the others and propagates alone (not as a group): guardrail errors
    must reach the scheduler as themselves (a violation, an outage).
    """
    results: list[Any] = [None] * len(items)
    if len(items) <= 1:
        return [await fn(x) for x in items]
    failure: list[BaseException] = []
    limiter = trio.CapacityLimiter(limit)

    async def one(index: int, item: T, nursery: trio.Nursery) -> None:
        async with limiter:
            try:
                results[index] = await fn(item)
            except Exception as exc:
                if not failure:
                    failure.append(exc)
                nursery.cancel_scope.cancel()

    try:
        async with trio.open_nursery() as nursery:
            for index, item in enumerate(items):
                nursery.start_soon(one, index, item, nursery)
    except BaseExceptionGroup as group:   # cancelled from outside: let one Cancelled escape
        cancelled, rest = group.split(trio.Cancelled)
        if rest is not None or cancelled is None:
            raise
        leaf: BaseException = cancelled
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        raise leaf from None
    if failure:
        raise failure[0]
    return results


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def answer_texts(response: Any) -> list[tuple[Any, str, str]]:
    """Each choice's text in a chat or text completion answer: ``(container, key, text)``."""
    out: list[tuple[Any, str, str]] = []
    choices = _get(response, "choices")
    for choice in choices if isinstance(choices, list) else ():
        message = _get(choice, "message")
        if message is not None and isinstance(_get(message, "content"), str):
            out.append((message, "content", _get(message, "content")))
        elif isinstance(_get(choice, "text"), str):
            out.append((choice, "text", _get(choice, "text")))
    return out


def set_text(container: Any, key: str, text: str) -> None:
    if isinstance(container, dict):
        container[key] = text
    else:
        setattr(container, key, text)


def stream_texts(chunks: Sequence[Any]) -> dict[int, str]:
    """The assembled text of each choice of a chat or text completion stream."""
    texts: dict[int, list[str]] = {}
    for chunk in chunks:
        for choice in _get(chunk, "choices") or ():
            index = _get(choice, "index") or 0
            delta = _get(choice, "delta")
            piece = _get(delta, "content") if delta is not None else _get(choice, "text")
            if isinstance(piece, str):
                texts.setdefault(index, []).append(piece)
    return {index: "".join(parts) for index, parts in texts.items()}
