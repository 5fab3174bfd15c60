"""``llmguard_moderations``: check prompts with an LLM Guard API and forward its sanitized prompt.

For each piece of user text (``trioproxy.prompt.text_slots``) the handler calls ``POST {LLM_GUARD_API_BASE}/
analyze/prompt`` with ``{"prompt": text}``. LLM Guard answers ``{"is_valid", "sanitized_prompt",
"scanners": {name: score}}``: an invalid prompt rejects the request (400 ``guardrail_violation``
naming the guardrail and the scanners that fired); otherwise the sanitized text (e.g. with personal
data anonymised) replaces the original before the upstream sees it.

Why a pre-call hook and not a moderation hook (the seed runs it as moderation): moderation races
the upstream and cannot change what is sent, and forwarding the sanitized prompt is the point.

Which requests are checked (``litellm_settings.llm_guard_mode``, as in the seed):

* ``all`` (default): every request;
* ``key-specific``: requests whose key has ``permissions: {"enable_llm_guard_check": true}``;
* ``request-specific``: requests with ``metadata: {"permissions": {"enable_llm_guard_check": true}}``.

Outages. Calls go through the app's pooled httpx client (given to the constructor by the composition
root, ``proxy.py``; None under ``trioproxy check``, which never calls) under ``llm_guard_timeout`` seconds for
the whole check (default 10, below the hook timeout, so the fail mode decides, not a generic hook
timeout). If LLM Guard cannot be reached, times out, answers an error status or something that is
not its JSON, ``llm_guard_fail_mode`` decides: ``closed`` (default) rejects with **503** naming the
guardrail (an unchecked prompt is not let through silently); ``open`` logs a warning and forwards
the request unchanged.

The texts of one request are checked concurrently (at most ``MAX_CONCURRENT`` at a time); the
prompt and LLM Guard's answer are never logged (they are the user's data), only verdicts and
scanner names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import trio

from ..config.model import DEFAULT_MODERATION_TIMEOUT as DEFAULT_TIMEOUT
from ..errors import GuardrailViolationError, ServiceUnavailableError
from ..hooks.base import CustomLogger
from ..hooks.loader import HandlerLoadError
from ..prompt import text_slots

__all__ = ["DEFAULT_TIMEOUT", "LLMGuard", "LLMGuardUnavailable", "Verdict"]

log = logging.getLogger("trioproxy.policies.llm_guard")

MAX_CONCURRENT = 8
PERMISSION = "enable_llm_guard_check"


class LLMGuardUnavailable(Exception):
    """LLM Guard could not give a verdict; the message says why (no prompt text in it)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    is_valid: bool
    sanitized: str | None
    flagged: tuple[str, ...]     # scanners with a positive risk score


def _parse_verdict(raw: bytes) -> Verdict:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise LLMGuardUnavailable("it answered with something that is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("is_valid"), bool):
        raise LLMGuardUnavailable("its answer has no boolean 'is_valid'")
    scanners = body.get("scanners")
    flagged = tuple(sorted(
        name for name, score in (scanners.items() if isinstance(scanners, dict) else ())
        if isinstance(score, int | float) and score > 0
    ))
    sanitized = body.get("sanitized_prompt")
    return Verdict(body["is_valid"], sanitized if isinstance(sanitized, str) else None, flagged)


@contextmanager
def _one_cancelled() -> Iterator[None]:
    """A nursery cancelled from outside raises a group of ``Cancelled``; let exactly one escape.

    The pipeline's ``except trio.Cancelled`` (its cleanup on client disconnect) must see a plain
    ``Cancelled``, as it does for every other hook. Children here catch their own errors, so anything
    else in a group is a bug and propagates unchanged.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        cancelled, rest = group.split(trio.Cancelled)
        if rest is not None or cancelled is None:
            raise
        leaf: BaseException = cancelled
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        raise leaf from None


class LLMGuard(CustomLogger):
    name = "llmguard_moderations"

    def __init__(self, api_base: str | None, http_client: httpx.AsyncClient | None, *, mode: str = "all",
                 fail_mode: str = "closed", timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        if not api_base:
            raise HandlerLoadError("llmguard_moderations needs the environment variable LLM_GUARD_API_BASE "
                                   "(the URL of the LLM Guard API, e.g. http://localhost:8192)")
        if not api_base.startswith(("http://", "https://")):
            raise HandlerLoadError(f"LLM_GUARD_API_BASE must be an http(s) URL, got {api_base!r}")
        self.url = api_base.rstrip("/") + "/analyze/prompt"
        #: the app's pooled client (None while the proxy is not serving, e.g. ``trioproxy check``)
        self.http_client = http_client
        self.mode = mode
        self.fail_mode = fail_mode
        self.timeout = timeout

    # -- which requests ----------------------------------------------------------------------------
    def should_check(self, user_api_key_dict: Any, data: dict[str, Any]) -> bool:
        if self.mode == "all":
            return True
        if self.mode == "key-specific":
            permissions = getattr(user_api_key_dict, "permissions", None) or {}
            return permissions.get(PERMISSION) is True
        metadata = data.get("metadata")
        permissions = metadata.get("permissions") if isinstance(metadata, dict) else None
        return isinstance(permissions, dict) and permissions.get(PERMISSION) is True

    # -- the hook ----------------------------------------------------------------------------------
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict,
                                  call_type: str) -> dict | None:
        if not self.should_check(user_api_key_dict, data):
            return None
        slots = text_slots(data)
        texts = list(dict.fromkeys(s.text for s in slots if s.text.strip()))
        if not texts:
            return None
        try:
            verdicts = await self._analyze_all(texts)
        except LLMGuardUnavailable as exc:
            if self.fail_mode == "open":
                log.warning("%s: LLM Guard is unavailable (%s); request forwarded unchecked "
                            "(llm_guard_fail_mode: open)", self.name, exc)
                return None
            log.warning("%s: LLM Guard is unavailable (%s); request rejected (llm_guard_fail_mode: closed)",
                        self.name, exc)
            raise ServiceUnavailableError(
                f"Guardrail {self.name!r} could not check the request: the LLM Guard service is "
                f"unavailable ({exc}). The request was rejected (llm_guard_fail_mode: closed).",
                code="guardrail_unavailable",
            ) from None
        rejected = [v for v in verdicts.values() if not v.is_valid]
        if rejected:
            scanners = sorted({name for v in rejected for name in v.flagged})
            log.info("%s: LLM Guard rejected the prompt (scanners: %s)", self.name, ", ".join(scanners) or "-")
            raise GuardrailViolationError(
                f"Guardrail {self.name!r} blocked the request: LLM Guard found the prompt invalid"
                + (f" (scanners: {', '.join(scanners)})." if scanners else "."),
                guardrail=self.name,
            )
        changed = False
        for slot in slots:
            verdict = verdicts.get(slot.text)
            if verdict is not None and verdict.sanitized is not None and verdict.sanitized != slot.text:
                slot.replace(verdict.sanitized)
                changed = True
        if changed:
            log.info("%s: forwarded LLM Guard's sanitized prompt", self.name)
        return data if changed else None

    # -- talking to LLM Guard ----------------------------------------------------------------------
    async def _analyze_all(self, texts: list[str]) -> dict[str, Verdict]:
        client = self.http_client
        if client is None:
            raise LLMGuardUnavailable("the proxy's HTTP client is not running")
        verdicts: dict[str, Verdict] = {}
        problems: list[LLMGuardUnavailable] = []
        limiter = trio.CapacityLimiter(MAX_CONCURRENT)
        with trio.move_on_after(self.timeout) as deadline, _one_cancelled():
            async with trio.open_nursery() as nursery:

                async def one(text: str) -> None:
                    async with limiter:
                        try:
                            verdicts[text] = await self._analyze(client, text)
                        except LLMGuardUnavailable as exc:
                            problems.append(exc)
                            nursery.cancel_scope.cancel(reason="LLM Guard unavailable")

                for text in texts:
                    nursery.start_soon(one, text)
        if problems:
            raise problems[0]
        if deadline.cancelled_caught:
            raise LLMGuardUnavailable(f"no answer within llm_guard_timeout={self.timeout:g} s")
        return verdicts

    async def _analyze(self, client: httpx.AsyncClient, text: str) -> Verdict:
        try:
            response = await client.post(self.url, content=orjson.dumps({"prompt": text}),
                                         headers={"content-type": "application/json"}, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise LLMGuardUnavailable(f"request failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise LLMGuardUnavailable(f"it answered HTTP {response.status_code}")
        verdict = _parse_verdict(response.content)
        log.debug("%s: LLM Guard verdict is_valid=%s scanners=%s", self.name, verdict.is_valid, verdict.flagged)
        return verdict
