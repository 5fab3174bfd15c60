"""``hide_secrets``: redact API keys, tokens, private keys and passwords before the upstream sees them.

Detection is :mod:`.secret_detection` (its docstring has the rules and the corpus rates); the
places it scans are the one walker's (``trioproxy.prompt.text_slots``, tool arguments included).
This handler only applies it to the request and reports what it did: a warning naming the *kinds*
found (``openai_api_key, password``), never a value, because the log is where a secret is most
easily leaked a second time.

Per-key switch (the seeds' ``permissions: {"hide_secrets": false}`` on a key): read from
``UserAPIKeyAuth.permissions``; ``False`` turns the redaction off for that key's requests.

Usable as a callback (``litellm_settings.callbacks: [hide_secrets]``, runs on every request) or as a
guardrail (``guardrail: hide-secrets``, runs when ``default_on`` or named by the request).
"""

from __future__ import annotations

import logging
from typing import Any

from ..hooks.base import CustomGuardrail
from ..prompt import text_slots
from .scan import INLINE_LIMIT, run_scan
from .secret_detection import redact_messages, redact_prompt

__all__ = ["INLINE_LIMIT", "PERMISSION", "HideSecrets"]

log = logging.getLogger("trioproxy.policies.hide_secrets")

#: the key permission that switches this policy off when it is ``False``
PERMISSION = "hide_secrets"


def _redact(data: dict[str, Any]) -> set[str]:
    """Redact ``data`` in place; the kinds found. Pure CPU: safe in a worker thread."""
    kinds: set[str] = set()
    messages = data.get("messages")
    if isinstance(messages, list):
        kinds.update(redact_messages(messages))
    for field in ("prompt", "input"):
        if field in data:
            redacted, found = redact_prompt(data[field])
            if found:
                data[field] = redacted
                kinds.update(found)
    return kinds


class HideSecrets(CustomGuardrail):
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict,
                                  call_type: str) -> dict | None:
        permissions = getattr(user_api_key_dict, "permissions", None) or {}
        if permissions.get(PERMISSION) is False:
            return None
        size = sum(len(slot.text) for slot in text_slots(data, arguments=True))
        kinds = await run_scan(size, _redact, data)   # large texts: in a worker thread
        if not kinds:
            return None
        log.warning("%s: detected and redacted secrets in the request: %s",
                    self.guardrail_name or "hide_secrets", ", ".join(sorted(kinds)))
        return data
