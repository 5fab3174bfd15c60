"""What the hosted moderation built-ins share: their time limit, their fail mode, their errors.

``llamaguard_moderations`` and ``google_text_moderation`` run as moderation (during-call) hooks,
racing the upstream call like every moderation hook (``pipeline._race``): a rejection cancels the
upstream request. Each has a time limit for its whole check (``<prefix>_timeout``, default 10 s or
half the hook timeout, and always below it, so the fail mode decides an outage rather than the
generic hook timeout) and a fail mode (``<prefix>_fail_open``, default false: an unchecked request
is rejected with 503 ``guardrail_unavailable``; true: a warning is logged and the request goes on).

Metrics come from the hook machinery like for every built-in: ``trioproxy_hook_duration_seconds``
(handler = the built-in's name, phase ``moderation``) and ``trioproxy_guardrail_rejections``
(guardrail = the built-in's name, from :class:`GuardrailViolationError`).
"""

from __future__ import annotations

import logging
from typing import Any

from ..config import ProxyConfig
from ..errors import ServiceUnavailableError
from ..hooks.loader import HandlerLoadError

__all__ = ["ModerationUnavailable", "fail_or_pass", "moderation_timeout"]

class ModerationUnavailable(Exception):
    """The service gave no verdict; the message says why (never the user's text)."""


def moderation_timeout(config: ProxyConfig, key: str) -> float:
    """``litellm_settings.<key>``, or the default; a value not below the hook timeout is an error."""
    timeout = getattr(config.litellm, key)
    if timeout is None:
        return config.moderation_timeout(None)
    if timeout >= config.hook_timeout:
        raise HandlerLoadError(
            f"litellm_settings.{key} ({timeout:g} s) must be below general_settings.hook_timeout_seconds "
            f"({config.hook_timeout:g} s), or an outage ends in a hook timeout instead of the fail mode")
    return float(timeout)


def fail_or_pass(name: str, fail_open: bool, setting: str, exc: ModerationUnavailable,
                 log: logging.Logger) -> Any:
    """An outage: log it; raise 503 when failing closed, return None (let the request on) when open."""
    if fail_open:
        log.warning("%s: the moderation service is unavailable (%s); request let through (%s: true)",
                    name, exc, setting)
        return None
    log.warning("%s: the moderation service is unavailable (%s); request rejected", name, exc)
    raise ServiceUnavailableError(
        f"Guardrail {name!r} could not check the request: the moderation service is unavailable ({exc}). "
        f"The request was rejected (set litellm_settings.{setting}: true to let requests through instead).",
        code="guardrail_unavailable",
    ) from None
