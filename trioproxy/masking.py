"""Keeping known secrets (provider keys, the master key) out of logs, errors and payloads.

The proxy knows every secret it was configured with. :class:`SecretScrubber` replaces any of them,
wherever it shows up in a string (an upstream error echoing the key, an exception message), with
its masked form. It is built once at startup; :func:`install_log_filter` attaches it to the root
handlers so nothing a handler or library logs can leak them either.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = ["SecretScrubber", "install_log_filter", "mask_secret"]


def mask_secret(secret: str | None) -> str:
    """``sk-abcdef…wxyz`` → ``sk-...wxyz``: enough to tell keys apart, useless to an attacker."""
    if not secret:
        return ""
    if len(secret) <= 12:
        return "****"
    prefix = secret[:3]
    return f"{prefix}...{secret[-4:]}"


class SecretScrubber:
    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        # very short values would mask ordinary words; secrets are long
        self._secrets.update(s for s in secrets if s and len(s) >= 6)
        if self._secrets:
            alternatives = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in alternatives))
        else:
            self._pattern = None

    def scrub(self, text: str) -> str:
        if not isinstance(text, str):  # a handler set an error's message to a number: still scrubbed text
            text = "" if text is None else str(text)
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: mask_secret(m.group(0)), text)

    def __bool__(self) -> bool:
        return self._pattern is not None


class _ScrubFilter(logging.Filter):
    def __init__(self, scrubber: SecretScrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        if self.scrubber:
            message = record.getMessage()
            scrubbed = self.scrubber.scrub(message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
            if record.exc_info and not record.exc_text:
                record.exc_text = self.scrubber.scrub(logging.Formatter().formatException(record.exc_info))
            elif record.exc_text:
                record.exc_text = self.scrubber.scrub(record.exc_text)
        return True


def install_log_filter(scrubber: SecretScrubber) -> None:
    """Scrub every record on every root handler (handlers, not loggers: children propagate there)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _ScrubFilter) for f in handler.filters):
            handler.addFilter(_ScrubFilter(scrubber))
