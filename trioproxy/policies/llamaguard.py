"""``llamaguard_moderations``: a Llama Guard model of the proxy's own ``model_list`` judges the prompt.

Config (LiteLLM's names)::

    litellm_settings:
      callbacks: ["llamaguard_moderations"]
      llamaguard_model_name: llama-guard          # a model_name of this proxy's model_list
      llamaguard_unsafe_content_categories: categories.txt   # optional, relative to the config
      llamaguard_fail_open: false                 # trioproxy's: see moderation_common.py
      llamaguard_timeout: 10

LiteLLM hands ``llamaguard_model_name`` to a provider directly; here it names a model group of this
proxy and the call goes through the proxy's own router (any deployment, load balancing and retries
included; the guard call itself runs no hooks and is not logged as a request of its own).

What is sent, as LiteLLM does: the request's **last** message (Llama Guard 1 has a 4k-token window),
for chat completions; a text completion's ``prompt`` is checked the same way (LiteLLM skips it);
embeddings are not checked.

* Without a categories file: ``POST chat/completions`` with that message; the server's chat template
  applies the model's default categories.
* With ``llamaguard_unsafe_content_categories``: the file's text really goes into the prompt (LiteLLM's
  docs promise it; its code registers a template only some providers use). The Llama Guard prompt
  with those categories is built here and sent raw through ``POST completions``, so no chat template
  wraps it a second time.

The answer is ``safe``, or ``unsafe`` and a line of comma-separated category codes (``S1,S10``),
possibly with leading whitespace; anything else is treated as an outage. ``unsafe`` → 400
``guardrail_violation`` with LiteLLM's message ``Violated content safety policy`` and the codes.

It runs as a moderation (during-call) hook, racing the upstream. Its cost and latency are logged as
part of the request: an ``async_pre_call_hook`` adds a record under
``metadata["llamaguard_moderations"]`` of the request (what ``standard_logging_object["metadata"]`` and
the callbacks' ``litellm_params.metadata`` show), and the moderation hook, which gets its own copy of
the request, fills that original record (found by its ``id`` in a weak registry): guard ``model``,
``deployment``, ``latency_seconds``, ``prompt_tokens``, ``completion_tokens``, ``response_cost``,
``verdict`` and ``categories``. The hook's own time is also in ``timings.hooks``. The prompt and the
guard's answer text are never logged.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import trio

from ..config import ProxyConfig
from ..config.model import DEFAULT_MODERATION_TIMEOUT
from ..errors import GuardrailViolationError, ProxyError
from ..hooks.base import CustomLogger
from ..hooks.loader import HandlerLoadError
from ..observability.cost import CostCalculator
from ..observability.prices import compute_cost, usage_from_response
from ..prompt import text_slots
from .moderation_common import ModerationUnavailable, fail_or_pass, moderation_timeout

if TYPE_CHECKING:
    from ..upstream.router import Router

__all__ = ["LlamaGuard", "build_prompt", "llamaguard_from_config", "parse_verdict"]

log = logging.getLogger("trioproxy.policies.llamaguard")

NAME = "llamaguard_moderations"
MESSAGE = "Violated content safety policy"


def build_prompt(categories: str, role: str, content: str) -> str:
    """The Llama Guard prompt with custom categories (the format of LiteLLM's template)."""
    speaker = "Agent" if role == "assistant" else "User"
    return (
        f"[INST] Task: Check if there is unsafe content in '{speaker}' messages in conversations according "
        "our safety policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{categories.strip()}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{speaker}: {content}\n\n<END CONVERSATION>\n\n"
        f"Provide your safety assessment for {speaker} in the above conversation:\n"
        "- First line must read 'safe' or 'unsafe'.\n"
        "- If unsafe, a second line must include a comma-separated list of violated categories. [/INST]"
    )


def parse_verdict(text: str) -> tuple[bool, tuple[str, ...]]:
    """``(safe, category codes)``; raises ModerationUnavailable for anything else."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise ModerationUnavailable("the guard model answered with nothing")
    first = lines[0].lower()
    if first == "safe":
        return True, ()
    if first == "unsafe":
        codes = tuple(c.strip() for c in lines[1].split(",") if c.strip()) if len(lines) > 1 else ()
        return False, codes
    raise ModerationUnavailable("the guard model's answer is neither 'safe' nor 'unsafe'")


def _message_text(message: dict[str, Any]) -> str:
    """The message's text (its string content, or its text parts one per line)."""
    return "\n".join(slot.text for slot in text_slots({"messages": [message]}))


class _Record(dict):  # type: ignore[type-arg]
    """A plain dict for the logs (orjson serialises it as one), weakly referable for the registry."""


class LlamaGuard(CustomLogger):
    name = NAME

    def __init__(self, model_name: str, router: Router | None, *, categories: str | None = None,
                 fail_open: bool = False, timeout: float = DEFAULT_MODERATION_TIMEOUT, cost: CostCalculator | None = None) -> None:
        super().__init__()
        self.model_name = model_name
        #: the proxy's own router (None while it is not serving, e.g. ``trioproxy check``)
        self.router = router
        self.categories = categories
        self.fail_open = fail_open
        self.timeout = timeout
        self.cost = cost or CostCalculator()
        self._records: weakref.WeakValueDictionary[str, _Record] = weakref.WeakValueDictionary()
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex()

    # -- the record in the request's metadata (see the module docstring) --------------------------
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict,
                                  call_type: str) -> None:
        record = _Record(id=f"lg-{self._prefix}-{next(self._ids)}", model=self.model_name, verdict=None)
        metadata = data.get("metadata")
        if not isinstance(metadata, dict):
            metadata = data["metadata"] = {}
        metadata[NAME] = record
        self._records[record["id"]] = record
        return None

    def _record_for(self, data: dict[str, Any]) -> dict[str, Any]:
        metadata = data.get("metadata")
        copy = metadata.get(NAME) if isinstance(metadata, dict) else None
        original = self._records.get(copy.get("id")) if isinstance(copy, dict) else None
        return original if original is not None else {}

    # -- the check -----------------------------------------------------------------------------------
    def _guard_request(self, data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """``(endpoint, body)`` for the guard model, or None when there is nothing to check."""
        messages = data.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
            last = messages[-1]
            role, text = str(last.get("role") or "user"), _message_text(last)
        elif isinstance(data.get("prompt"), str):
            role, text = "user", data["prompt"]
        else:
            return None
        if not text.strip():
            return None
        if self.categories is not None:
            return "completions", {"model": self.model_name, "prompt": build_prompt(self.categories, role, text)}
        guard_role = "assistant" if role == "assistant" else "user"
        return "chat/completions", {"model": self.model_name, "messages": [{"role": guard_role, "content": text}]}

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        request = self._guard_request(data)
        if request is None:
            return None
        record = self._record_for(data)
        started = time.perf_counter()
        try:
            safe, codes = await self._ask(*request, record)
        except ModerationUnavailable as exc:
            record["verdict"] = "unavailable"
            return fail_or_pass(self.name, self.fail_open, "llamaguard_fail_open", exc, log)
        finally:
            record["latency_seconds"] = round(time.perf_counter() - started, 6)
        record["verdict"] = "safe" if safe else "unsafe"
        record["categories"] = list(codes)
        if safe:
            return None
        log.info("%s: the guard model found the prompt unsafe (categories: %s)", self.name, ", ".join(codes) or "-")
        raise GuardrailViolationError(
            f"{MESSAGE} ({self.name}: " + (f"unsafe categories {', '.join(codes)})" if codes else "unsafe)"),
            guardrail=self.name,
        )

    async def _ask(self, endpoint: str, body: dict[str, Any], record: dict[str, Any]) -> tuple[bool, tuple[str, ...]]:
        router = self.router
        if router is None:
            raise ModerationUnavailable("the proxy's router is not running")
        answer = None
        called: list[Any] = []      # the deployment the router called (a wildcard's, a fallback's)
        with trio.move_on_after(self.timeout):
            try:
                attempt, answer = await router.send(self.model_name, endpoint, body,
                                                    on_attempt=lambda d, _body, _attempt: called.append(d))
            except ProxyError as exc:
                raise ModerationUnavailable(f"the guard model {self.model_name!r} failed "
                                            f"(HTTP {exc.status_code}, {exc.code})") from None
        if answer is None:
            raise ModerationUnavailable(f"no answer within llamaguard_timeout={self.timeout:g} s")
        deployment = called[-1]
        try:
            parsed = orjson.loads(answer.body)
            choice = parsed["choices"][0]
            text = choice["text"] if endpoint == "completions" else choice["message"]["content"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            attempt.abandoned()
            raise ModerationUnavailable("the guard model's answer is not an OpenAI completion") from None
        prompt_tokens, completion_tokens = usage_from_response(parsed) if isinstance(parsed, dict) else (None, None)
        attempt.succeeded(completion_tokens=completion_tokens,
                          total_tokens=None if prompt_tokens is None or completion_tokens is None
                          else prompt_tokens + completion_tokens)
        if not isinstance(text, str):
            raise ModerationUnavailable("the guard model's answer has no text")
        record["deployment"] = deployment.label
        record["prompt_tokens"] = prompt_tokens
        record["completion_tokens"] = completion_tokens
        record["response_cost"] = compute_cost(self.cost.price(deployment), prompt_tokens, completion_tokens)
        return parse_verdict(text)


def llamaguard_from_config(config: ProxyConfig, router: Router | None, cost: CostCalculator | None = None) -> LlamaGuard:
    """The ``llamaguard_moderations`` factory for ``builtins.py``."""
    settings = config.litellm
    model = settings.llamaguard_model_name
    if not model:
        raise HandlerLoadError("llamaguard_moderations needs litellm_settings.llamaguard_model_name "
                               "(a model_name of this proxy's model_list serving Llama Guard)")
    routing = config.routing_rules
    aliases = routing.settings.model_group_alias if routing is not None else {}
    if model not in config.model_groups and model not in aliases:
        known = ", ".join(sorted(config.model_groups))
        raise HandlerLoadError(f"litellm_settings.llamaguard_model_name {model!r} is not a model_name of "
                               f"model_list (models: {known})")
    categories = None
    path = settings.llamaguard_unsafe_content_categories
    if path:
        file = (config.base_dir / path) if not Path(path).is_absolute() else Path(path)
        try:
            categories = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise HandlerLoadError(f"litellm_settings.llamaguard_unsafe_content_categories: cannot read "
                                   f"{file.resolve()}: {exc.strerror or exc}") from None
        if not categories.strip():
            raise HandlerLoadError(f"litellm_settings.llamaguard_unsafe_content_categories: {file.resolve()} is empty")
    return LlamaGuard(model, router, cost=cost, categories=categories,
                      fail_open=settings.llamaguard_fail_open,
                      timeout=moderation_timeout(config, "llamaguard_timeout"))
