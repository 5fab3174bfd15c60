"""``general_settings.custom_key_generate`` and ``custom_key_update``: user functions that decide
whether ``/key/generate`` (and ``/key/update``) may proceed, as in LiteLLM (``key_management_endpoints``).

The function is ``async def fn(data: GenerateKeyRequest) -> dict`` (``UpdateKeyRequest`` for
updates; both exported by ``trioproxy``), named by a dotted path next to the config like handlers.
Its answer is LiteLLM's ``{"decision": bool, "message": str}``: ``decision`` false is a **403**
with ``message`` (default LiteLLM's ``Authentication Failed - Custom Auth Rule``); true (or no
``decision``) lets the request on — to the key generation rules of ``admin/key_generation.py``,
which still apply. It runs before anything is written, for every caller (the master key included),
on the request as sent (``data.team_id`` is what the caller asked for, before config defaults).

Decisions where LiteLLM says nothing: the function must be ``async def`` (a startup error
otherwise, naming it: LiteLLM raises on every request). A function that raises, answers something
that is not a mapping, or takes longer than ``custom_key_generate_timeout`` seconds (trioproxy's,
default 10) fails **closed**: 503 ``custom_key_generate_unavailable``, no key is made, the log says
which function and the exception's type (never the request: it may carry a custom key).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from ..auth.key_requests import GenerateKeyRequest, UpdateKeyRequest
from ..errors import ServiceUnavailableError
from .errors import forbidden

__all__ = ["CustomKeyHook", "CustomKeyHooks"]

log = logging.getLogger("trioproxy.admin")

DEFAULT_TIMEOUT = 10.0
DEFAULT_DENIED = "Authentication Failed - Custom Auth Rule"


def is_async_function(function: Any) -> bool:
    method = None if inspect.isfunction(function) else type(function).__dict__.get("__call__")
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(method)


@dataclass(frozen=True)
class CustomKeyHook:
    function: Callable[..., Any]
    #: the dotted path (for messages)
    name: str
    #: ``custom_key_generate`` or ``custom_key_update``
    setting: str
    timeout: float = DEFAULT_TIMEOUT

    async def check(self, sent: Mapping[str, Any]) -> None:
        """Return when the request may proceed; 403 (denied) or 503 (the function failed)."""
        request = (GenerateKeyRequest if self.setting == "custom_key_generate" else UpdateKeyRequest)(sent)
        unavailable = ServiceUnavailableError(
            f"{self.setting} could not decide ({self.name}); no key was changed. Contact your proxy admin.",
            code=f"{self.setting}_unavailable")
        result: Any = None
        with trio.move_on_after(self.timeout) as deadline:
            try:
                result = await self.function(request)
            except (trio.Cancelled, KeyboardInterrupt):
                raise
            except BaseException as exc:   # fail closed
                log.warning("%s %s raised %s: request refused", self.setting, self.name, type(exc).__name__)
                raise unavailable from None
        if deadline.cancelled_caught:
            log.warning("%s %s did not answer within %g s: request refused", self.setting, self.name, self.timeout)
            raise unavailable
        if not isinstance(result, Mapping):
            log.warning("%s %s returned a %s, not {'decision': bool, 'message': str}: request refused",
                        self.setting, self.name, type(result).__name__)
            raise unavailable
        if not result.get("decision", True):
            message = result.get("message")
            raise forbidden(message if isinstance(message, str) and message else DEFAULT_DENIED)


@dataclass(frozen=True)
class CustomKeyHooks:
    generate: CustomKeyHook | None = None
    update: CustomKeyHook | None = None
