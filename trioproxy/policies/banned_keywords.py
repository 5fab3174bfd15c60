"""``banned_keywords``: reject requests whose text contains a keyword from ``banned_keywords_list``.

Matching is case-insensitive. A keyword that starts (ends) with a letter, digit or ``_`` must start
(end) at a word boundary, so ``hello`` blocks "Hello world!" but ``ass`` does not block "class";
keywords in scripts without spaces (Chinese, Japanese) match anywhere. All keywords are compiled
into one regular expression at startup.

The rejection names the guardrail, not the keyword: telling a caller which word matched turns the
policy into an oracle for reading the list. The list is never logged either.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from ..errors import GuardrailViolationError
from ..hooks.base import CustomLogger
from ..prompt import text_slots
from .scan import run_scan

__all__ = ["BannedKeywords", "compile_keywords"]

log = logging.getLogger("trioproxy.policies.banned_keywords")

_WORD = re.compile(r"[0-9A-Za-z_]")


def compile_keywords(keywords: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for every keyword (longest first), or None for an empty list."""
    alternatives = []
    for keyword in sorted({k for k in keywords if k}, key=len, reverse=True):
        pattern = re.escape(keyword)
        if _WORD.match(keyword[0]):
            pattern = r"(?<![0-9A-Za-z_])" + pattern
        if _WORD.match(keyword[-1]):
            pattern += r"(?![0-9A-Za-z_])"
        alternatives.append(pattern)
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


class BannedKeywords(CustomLogger):
    name = "banned_keywords"

    def __init__(self, keywords: list[str]) -> None:
        super().__init__()
        self.count = len(keywords)
        self.pattern = compile_keywords(keywords)

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> None:
        if self.pattern is None:
            return
        texts = [slot.text for slot in text_slots(data)]
        if await run_scan(sum(map(len, texts)), self._contains, texts):   # large texts: in a thread
            log.info("banned_keywords: request rejected (it contains a banned keyword)")
            raise GuardrailViolationError(
                f"Guardrail {self.name!r} blocked the request: it contains a banned keyword.",
                guardrail=self.name,
            )

    def _contains(self, texts: list[str]) -> bool:
        """Pure CPU (one compiled pattern): safe in a worker thread."""
        pattern = self.pattern
        return pattern is not None and any(pattern.search(text) for text in texts)
