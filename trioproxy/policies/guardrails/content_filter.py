"""``guardrail: litellm_content_filter``: LiteLLM's local keyword / regex / category content filter.

As LiteLLM's ``ContentFilterGuardrail`` (``guardrail_hooks/litellm_content_filter/``, settings as its
docs ``proxy/guardrails/litellm_content_filter.md`` give them), in the proxy — no service is called:

* ``categories``: ``[{category, category_file, enabled, action, severity_threshold}]``. A category
  file (YAML) holds ``keywords`` (``{keyword, severity}`` or plain strings, severity ``medium``),
  ``always_block_keywords``, the pair ``identifier_words`` + ``additional_block_words`` (a text
  holding one of each is a violation: LiteLLM's "conditional" templates such as its EU AI Act one),
  ``exceptions`` (a text holding one is left alone by that category) and ``default_action``.
  Keywords of one word match as whole words, phrases as substrings, ignoring case; only keywords at
  or above ``severity_threshold`` (``low`` < ``medium`` (default) < ``high``) count.
* ``patterns``: ``{pattern_type: prebuilt, pattern_name}`` (trioproxy's own expressions for the
  names LiteLLM documents: :data:`PREBUILT`) or ``{pattern_type: regex, pattern, name}`` (ignoring
  case, as LiteLLM compiles them).
* ``blocked_words``: ``{keyword, action, description}`` (substring, ignoring case), and
  ``blocked_words_file`` (YAML ``blocked_words: [...]``).
* ``action``: ``BLOCK`` → 400 ``guardrail_violation`` with LiteLLM's message (``Content blocked:
  email pattern detected``, ``Content blocked: keyword 'x' detected (description)``, ``Content
  blocked: <category> category keyword 'x' detected (severity: high)``); ``MASK`` → replaced by
  ``[<PATTERN NAME>_REDACTED]`` (``pattern_redaction_format``) or ``[KEYWORD_REDACTED]``
  (``keyword_redaction_tag``). Order: categories, then patterns, then blocked words (LiteLLM's docs).

**Decisions**: LiteLLM ships its category lists and policy templates as data inside its package
and finds ``category: harmful_violence`` (or a relative ``category_file:
policy_templates/…``) there; trioproxy ships none of that data: a category needs a
``category_file``, relative to the config's directory, and a missing one stops startup saying so.
Modes: ``pre_call`` (mask or block the request), ``during_call`` (block only: the request is
already sent), ``post_call`` (mask or block the answer; a stream is checked assembled before
``[DONE]`` — a block ends it with the error event, a mask cannot change chunks already sent and is
logged. LiteLLM masks streamed chunks one by one, which misses what spans two chunks). Matched text
is never logged or put in a message: only pattern names, configured keywords and categories.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import yaml

from ...errors import GuardrailViolationError
from ...hooks.loader import HandlerLoadError
from .service import ServiceGuardrail, answer_texts, set_text

__all__ = ["PREBUILT", "ContentFilterGuardrail"]

log = logging.getLogger("trioproxy.guardrails.content_filter")

#: the prebuilt pattern names LiteLLM documents, with trioproxy's own expressions
PREBUILT: dict[str, str] = {
    "us_ssn": r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b",
    "email": r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    "phone": r"(?<![\w+])(?:\+?1[-.\s]?)?(?:\(\d{3}\)|\d{3})[-.\s]?\d{3}[-.\s]?\d{4}\b",
    "visa": r"\b4\d{3}(?:[-\s]?\d{4}){3}\b",
    "mastercard": r"\b(?:5[1-5]\d{2}|2[2-7]\d{2})(?:[-\s]?\d{4}){3}\b",
    "amex": r"\b3[47]\d{2}[-\s]?\d{6}[-\s]?\d{5}\b",
    "aws_access_key": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "aws_secret_key": r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])",
    "github_token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b",
}
PATTERN_REDACTION_FORMAT = "[{pattern_name}_REDACTED]"
KEYWORD_REDACTION_TAG = "[KEYWORD_REDACTED]"
_SEVERITY = {"low": 0, "medium": 1, "high": 2}
_ACTIONS = ("BLOCK", "MASK")
#: texts longer than this (characters, all slots together) are scanned in a worker thread
_THREAD_ABOVE = 32_768
_CPU = trio.CapacityLimiter(2)


def _action(value: Any, where: str, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or value.upper() not in _ACTIONS:
        raise HandlerLoadError(f"{where}: action must be BLOCK or MASK, got {value!r}")
    return value.upper()


def _severity(value: Any, where: str) -> int:
    if value is None:
        return _SEVERITY["medium"]
    if not isinstance(value, str) or value.lower() not in _SEVERITY:
        raise HandlerLoadError(f"{where}: severity must be low, medium or high, got {value!r}")
    return _SEVERITY[value.lower()]


def _phrase_regex(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One expression for many keywords: a single word as a whole word, a phrase as a substring."""
    parts = sorted({p.strip().lower() for p in phrases if isinstance(p, str) and p.strip()}, key=len, reverse=True)
    if not parts:
        return None
    alternatives = [rf"\b{re.escape(p)}\b" if " " not in p else re.escape(p) for p in parts]
    return re.compile("|".join(alternatives), re.IGNORECASE)


@dataclass
class Category:
    name: str
    action: str
    #: keyword (lower case) -> severity name, those at or above the threshold
    keywords: dict[str, str] = field(default_factory=dict)
    keyword_regex: re.Pattern[str] | None = None
    identifiers: re.Pattern[str] | None = None
    block_words: re.Pattern[str] | None = None
    exceptions: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: re.Pattern[str]
    action: str


def _read_yaml(path: Path, where: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HandlerLoadError(f"{where}: cannot read {str(path)!r} ({exc.strerror or type(exc).__name__}; a "
                               "relative path is relative to the config's directory)") from None
    except yaml.YAMLError as exc:
        raise HandlerLoadError(f"{where}: {str(path)!r} is not valid YAML: {exc}") from None


def _load_category(index: int, raw: Any, base_dir: Path | None) -> Category | None:
    where = f"categories[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("category"), str):
        raise HandlerLoadError(f"{where} must be a mapping with category and category_file")
    unknown = sorted(set(raw) - {"category", "category_file", "enabled", "action", "severity_threshold"})
    if unknown:
        raise HandlerLoadError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if raw.get("enabled") is False:
        return None
    name = raw["category"]
    file = raw.get("category_file")
    if not isinstance(file, str) or not file:
        raise HandlerLoadError(
            f"{where}: {name!r} is one of LiteLLM's built-in category lists, which trioproxy does not ship: give "
            "category_file, a YAML file of keywords (docs/guardrails.md#litellm_content_filter)")
    path = Path(file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    data = _read_yaml(path, f"{where}.category_file")
    if not isinstance(data, dict):
        raise HandlerLoadError(f"{where}.category_file: {file!r} must hold a mapping (keywords, exceptions, …)")
    threshold = _severity(raw.get("severity_threshold"), f"{where}.severity_threshold")
    action = _action(raw.get("action"), where, _action(data.get("default_action"), f"{file}", "BLOCK"))
    category = Category(name, action)
    for key in ("keywords", "always_block_keywords"):
        for item in data.get(key) or ():
            keyword, severity = (item.get("keyword"), item.get("severity")) if isinstance(item, dict) else (item, None)
            if not isinstance(keyword, str) or not keyword.strip():
                raise HandlerLoadError(f"{where}.category_file: {file!r}: {key} holds {item!r}, not a keyword")
            level = _severity(severity, f"{where}.category_file: {key} {keyword!r}")
            if key == "always_block_keywords" or level >= threshold:
                category.keywords[keyword.strip().lower()] = next(k for k, v in _SEVERITY.items() if v == level)
    category.keyword_regex = _phrase_regex(category.keywords)
    identifiers, block_words = data.get("identifier_words") or [], data.get("additional_block_words") or []
    if bool(identifiers) != bool(block_words):
        raise HandlerLoadError(f"{where}.category_file: {file!r}: identifier_words and additional_block_words go "
                               "together (a text with one of each is a violation)")
    category.identifiers = _phrase_regex(identifiers)
    category.block_words = _phrase_regex(block_words)
    category.exceptions = _phrase_regex(data.get("exceptions") or [])
    if category.keyword_regex is None and category.identifiers is None:
        raise HandlerLoadError(f"{where}.category_file: {file!r} has no keywords (keywords, always_block_keywords, "
                               "or identifier_words with additional_block_words)")
    return category


def _load_pattern(index: int, raw: Any) -> Pattern:
    where = f"patterns[{index}]"
    if not isinstance(raw, dict):
        raise HandlerLoadError(f"{where} must be a mapping with pattern_type and action")
    kind = raw.get("pattern_type", "prebuilt")
    action = _action(raw.get("action"), where, "BLOCK")
    if kind == "prebuilt":
        name = raw.get("pattern_name")
        if name not in PREBUILT:
            raise HandlerLoadError(f"{where}.pattern_name: {name!r} is not a prebuilt pattern trioproxy has "
                                   f"({', '.join(PREBUILT)}); use pattern_type: regex for others")
        return Pattern(str(name), re.compile(PREBUILT[str(name)]), action)
    if kind == "regex":
        pattern = raw.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise HandlerLoadError(f"{where}.pattern is required for pattern_type: regex")
        try:
            regex = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise HandlerLoadError(f"{where}.pattern: invalid regular expression: {exc}") from None
        return Pattern(str(raw.get("name") or "custom_regex"), regex, action)
    raise HandlerLoadError(f"{where}.pattern_type must be prebuilt or regex, got {kind!r}")


@dataclass
class Scan:
    """What checking one text found: the (possibly masked) text, or the first blocking reason."""

    text: str
    blocked: str | None = None
    masked: list[str] = field(default_factory=list)


class ContentFilterGuardrail(ServiceGuardrail):
    provider = "litellm_content_filter"
    supported_modes = ("pre_call", "during_call", "post_call")

    def __init__(self, *, categories: list[Any] | None = None, patterns: list[Any] | None = None,
                 blocked_words: list[Any] | None = None, blocked_words_file: str | None = None,
                 pattern_redaction_format: str | None = None, keyword_redaction_tag: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, value in (("categories", categories), ("patterns", patterns), ("blocked_words", blocked_words)):
            if value is not None and not isinstance(value, list):
                raise HandlerLoadError(f"{name} must be a list")
        loaded = [_load_category(i, raw, self.base_dir) for i, raw in enumerate(categories or ())]
        self.categories = [c for c in loaded if c is not None]
        self.patterns = [_load_pattern(i, raw) for i, raw in enumerate(patterns or ())]
        words = list(blocked_words or ())
        if blocked_words_file:
            path = Path(blocked_words_file)
            if not path.is_absolute() and self.base_dir is not None:
                path = self.base_dir / path
            data = _read_yaml(path, "blocked_words_file")
            if not isinstance(data, dict) or not isinstance(data.get("blocked_words"), list):
                raise HandlerLoadError(f"blocked_words_file: {blocked_words_file!r} must hold blocked_words: [...]")
            words += data["blocked_words"]
        self.blocked_words: dict[str, tuple[str, str | None]] = {}
        for index, raw in enumerate(words):
            if not isinstance(raw, dict) or not isinstance(raw.get("keyword"), str) or not raw["keyword"].strip():
                raise HandlerLoadError(f"blocked_words[{index}] must be a mapping with keyword and action")
            description = raw.get("description")
            self.blocked_words[raw["keyword"].strip().lower()] = (
                _action(raw.get("action"), f"blocked_words[{index}]", "BLOCK"),
                description if isinstance(description, str) else None)
        if pattern_redaction_format is not None and "{pattern_name}" not in pattern_redaction_format:
            raise HandlerLoadError("pattern_redaction_format must contain {pattern_name}")
        self.pattern_format = pattern_redaction_format or PATTERN_REDACTION_FORMAT
        self.keyword_tag = keyword_redaction_tag or KEYWORD_REDACTION_TAG
        if not (self.categories or self.patterns or self.blocked_words):
            raise HandlerLoadError("litellm_content_filter needs categories, patterns or blocked_words")

    # -- the check (pure; CPU only) ----------------------------------------------------------------
    def _category(self, category: Category, text: str, scan: Scan) -> str:
        if category.exceptions is not None and category.exceptions.search(text):
            return text
        if category.identifiers is not None and category.block_words is not None:
            identifier, block = category.identifiers.search(text), category.block_words.search(text)
            if identifier and block and category.action == "BLOCK":
                scan.blocked = (f"Content blocked: {category.name} category: '{identifier.group(0).lower()}' with "
                                f"'{block.group(0).lower()}' detected")
                return text
            if identifier and block:
                scan.masked.append(category.name)
                text = category.block_words.sub(self.keyword_tag, text)
        if category.keyword_regex is None:
            return text
        found = category.keyword_regex.search(text)
        if found is None:
            return text
        keyword = found.group(0).lower()
        if category.action == "BLOCK":
            scan.blocked = (f"Content blocked: {category.name} category keyword '{keyword}' detected "
                            f"(severity: {category.keywords.get(keyword, 'medium')})")
            return text
        scan.masked.append(category.name)
        return category.keyword_regex.sub(self.keyword_tag, text)

    def scan(self, text: str) -> Scan:
        scan = Scan(text)
        for category in self.categories:
            scan.text = self._category(category, scan.text, scan)
            if scan.blocked:
                return scan
        for pattern in self.patterns:
            if not pattern.regex.search(scan.text):
                continue
            if pattern.action == "BLOCK":
                scan.blocked = f"Content blocked: {pattern.name} pattern detected"
                return scan
            scan.text = pattern.regex.sub(self.pattern_format.format(pattern_name=pattern.name.upper()), scan.text)
            scan.masked.append(pattern.name)
        lower = scan.text.lower()
        for keyword, (action, description) in self.blocked_words.items():
            if keyword not in lower:
                continue
            if action == "BLOCK":
                scan.blocked = f"Content blocked: keyword '{keyword}' detected" + (
                    f" ({description})" if description else "")
                return scan
            scan.text = re.sub(re.escape(keyword), self.keyword_tag, scan.text, flags=re.IGNORECASE)
            lower = scan.text.lower()
            scan.masked.append("keyword")
        return scan

    async def scan_all(self, texts: list[str]) -> list[Scan]:
        if sum(len(t) for t in texts) <= _THREAD_ABOVE:
            return [self.scan(t) for t in texts]
        return await trio.to_thread.run_sync(lambda: [self.scan(t) for t in texts], limiter=_CPU)

    def _blocked(self, scans: list[Scan]) -> None:
        for scan in scans:
            if scan.blocked:
                log.info("guardrail %s: %s", self.name, scan.blocked)
                raise GuardrailViolationError(scan.blocked, guardrail=self.name)

    # -- hooks ------------------------------------------------------------------------------------
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> Any:
        slots = self.request_slots(data)
        scans = await self.scan_all([s.text for s in slots])
        self._blocked(scans)
        changed = False
        for slot, scan in zip(slots, scans, strict=True):
            if scan.text != slot.text:
                slot.replace(scan.text)
                changed = True
                log.info("guardrail %s: masked %s in the request", self.name, ", ".join(sorted(set(scan.masked))))
        return data if changed else None

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        self._blocked(await self.scan_all([s.text for s in self.request_slots(data)]))

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        slots = [s for s in answer_texts(response) if s[2]]
        scans = await self.scan_all([text for _, _, text in slots])
        self._blocked(scans)
        changed = False
        for (container, key, text), scan in zip(slots, scans, strict=True):
            if scan.text == text:
                continue
            if data.get("stream"):
                log.warning("guardrail %s: the streamed answer holds %s to mask; chunks already sent cannot be "
                            "masked", self.name, ", ".join(sorted(set(scan.masked))))
                continue
            set_text(container, key, scan.text)
            changed = True
        return response if changed else None
