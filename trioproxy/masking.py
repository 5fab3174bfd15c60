"""Keeping known secrets (provider keys, the master key) out of logs, errors and payloads.

The proxy knows every secret it was configured with. :class:`SecretScrubber` replaces any of them,
wherever it shows up in a string (an upstream error echoing the key, an exception message), with
its masked form. It is built once at startup; :func:`install_log_filter` attaches it to the root
handlers so nothing a handler or library logs can leak them either.

Where a secret can enter, and what cleans it:

* an upstream's error body (``message``, ``param``, ``code``) → :meth:`SecretScrubber.scrub_error`
  on every error before it becomes an envelope, a log record or a failure hook's argument;
* an exception's text, and the texts of its chain (``__cause__``, ``__context__``, a crashed
  handler's ``original``): :meth:`SecretScrubber.scrub_error` rewrites their ``args`` in place, so
  ``str()`` and formatted tracebacks of the objects handed to hooks and callbacks are clean;
* a URL from the config (``api_base`` with ``user:password@`` or ``?key=…``): :func:`mask_url` for
  what is shown, :func:`url_secrets` feeds the scrubber for what is echoed back by someone else;
* structured records (the JSON log line, ``standard_logging_object``): :meth:`SecretScrubber.scrub_value`.

A masked secret shows at most 3 characters at its start and 4 at its end (and nothing at all
when it is 12 characters or shorter): enough to tell two keys apart, useless to an attacker.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

import orjson

__all__ = ["SecretScrubber", "install_log_filter", "mask_secret", "mask_url", "url_secrets"]


def mask_secret(secret: str | None) -> str:
    """``sk-abcdef…wxyz`` → ``sk-...wxyz``: enough to tell keys apart, useless to an attacker."""
    if not secret:
        return ""
    if len(secret) <= 12:
        return "****"
    prefix = secret[:3]
    return f"{prefix}...{secret[-4:]}"


def _split(url: str) -> urllib.parse.SplitResult | None:
    try:
        return urllib.parse.urlsplit(url)
    except ValueError:
        return None


def mask_url(url: str | None) -> str | None:
    """A URL safe to show: ``user:password@`` → ``***@``, every query value masked.

    Every query value counts as a secret (``?key=…`` is how Gemini-style gateways take their key;
    telling a key from a harmless ``api-version`` by name is a guess the proxy does not make).
    """
    if not url or ("@" not in url and "?" not in url and "#" not in url):
        return url
    parts = _split(url)
    if parts is None:
        return "<URL hidden: it could not be parsed>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{urllib.parse.quote(name, safe='')}={mask_secret(value) if value else ''}"
                         for name, value in pairs)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query, fragment=""))


def url_secrets(url: str | None) -> list[str]:
    """The secrets a URL carries, for the scrubber: ``user:password``, the password, query values.

    Both the raw (percent-encoded) and the decoded form of each: either may be echoed back.
    """
    if not url or ("@" not in url and "?" not in url):
        return []
    parts = _split(url)
    if parts is None:
        return [url]
    out: list[str] = []
    userinfo, at, _host = parts.netloc.rpartition("@")
    if at and userinfo:
        out.append(userinfo)
        _user, colon, password = userinfo.partition(":")
        if colon and password:
            out += [password, urllib.parse.unquote(password)]
    for raw in parts.query.split("&") if parts.query else ():
        _name, _eq, value = raw.partition("=")
        if value:
            out += [value, urllib.parse.unquote_plus(value)]
    return out


#: characters JSON escapes (orjson leaves everything else, non-ASCII included, as is)
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')

#: attributes of exceptions (ours, FastAPI's, OSError's, the seeds') that hold text a client or a
#: log could see; each is scrubbed when it is a string (or a dict/list of strings)
_ERROR_TEXT_ATTRIBUTES = ("message", "param", "code", "error_type", "detail", "body", "strerror", "filename", "filename2",
                          "llm_provider", "model", "reason")
#: how many exceptions of one chain are cleaned (chains are short; this bounds a cycle or a bug)
_MAX_CHAIN = 32


class SecretScrubber:
    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._bytes_pattern: re.Pattern[bytes] | None = None
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        # very short values would mask ordinary words; secrets are long
        self._secrets.update(s for s in secrets if s and len(s) >= 6)
        if self._secrets:
            alternatives = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in alternatives))
            self._bytes_pattern = re.compile(b"|".join(re.escape(s.encode()) for s in alternatives))
        else:
            self._pattern = None
        # a secret JSON would escape (a quote, a backslash, a control character) cannot be looked for
        # in a JSON dump: then scrub_value always walks the value
        self._json_plain = not any(_JSON_ESCAPED.search(s) for s in self._secrets)

    def scrub(self, text: str) -> str:
        if not isinstance(text, str):  # a handler set an error's message to a number: still scrubbed text
            text = "" if text is None else str(text)
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: mask_secret(m.group(0)), text)

    def scrub_value(self, value: Any) -> Any:
        """Every string in a JSON-like value (dicts, lists, tuples) scrubbed.

        Returns the very same object when nothing had to change (no copies on the common path), and
        new containers only along the way to a changed string: callers' objects are never mutated.
        """
        if self._pattern is None:
            return value
        if self._json_plain and isinstance(value, dict | list | tuple):
            # one C-speed dump and one search instead of a Python walk (a log record: ~3 µs, not ~50)
            try:
                dumped = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
            except (TypeError, orjson.JSONEncodeError):
                dumped = None
            if dumped is not None and self._bytes_pattern.search(dumped) is None:
                return value
        return self._scrub_value(value, 0)

    def _scrub_value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self._pattern.sub(lambda m: mask_secret(m.group(0)), value) if self._pattern else value
        if depth > 32:
            return value
        if isinstance(value, dict):
            changed = None
            for key, item in value.items():
                clean = self._scrub_value(item, depth + 1)
                clean_key = self._scrub_value(key, depth + 1) if isinstance(key, str) else key
                if clean is not item or clean_key is not key:
                    changed = changed if changed is not None else {}
                    changed[key] = (clean_key, clean)
            if changed is None:
                return value
            out = {}
            for key, item in value.items():
                if key in changed:
                    clean_key, clean = changed[key]
                    out[clean_key] = clean
                else:
                    out[key] = item
            return out
        if isinstance(value, list | tuple):
            cleaned = [self._scrub_value(item, depth + 1) for item in value]
            if all(a is b for a, b in zip(cleaned, value, strict=True)):
                return value
            return type(value)(cleaned) if isinstance(value, tuple) else cleaned
        return value

    def scrub_error(self, error: BaseException | None) -> None:
        """Clean, in place, an exception and every exception it carries.

        Every string field a client, a log or a hook could read: ``args`` (what ``str()`` and a
        formatted traceback show), the envelope fields (``message``, ``param``, ``code``), FastAPI's
        ``detail``, OSError's ``strerror``/``filename``, ``__notes__``. The chain is followed through
        ``__cause__``, ``__context__``, a crashed handler's ``original`` and exception groups. Used
        once an error is final for a request (nobody else holds it any more), so changing it in
        place affects nobody else.
        """
        if self._pattern is None or error is None:
            return
        seen: set[int] = set()
        pending: list[BaseException] = [error]
        while pending and len(seen) < _MAX_CHAIN:
            current = pending.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            self._scrub_one(current)
            for linked in (current.__cause__, current.__context__, getattr(current, "original", None)):
                if isinstance(linked, BaseException) and id(linked) not in seen:
                    pending.append(linked)
            if isinstance(current, BaseExceptionGroup):
                pending.extend(e for e in current.exceptions if id(e) not in seen)

    def _scrub_one(self, exc: BaseException) -> None:
        try:
            args = exc.args
            clean_args = self.scrub_value(args)
            if clean_args is not args:
                exc.args = tuple(clean_args)
        except (AttributeError, TypeError, ValueError):  # an exception type with read-only args
            pass
        for name in _ERROR_TEXT_ATTRIBUTES:
            try:
                value = exc.__dict__.get(name) if hasattr(exc, "__dict__") else None
                if value is None and name in ("strerror", "filename", "filename2") and isinstance(exc, OSError):
                    value = getattr(exc, name, None)
                if isinstance(value, str | dict | list | tuple):
                    clean = self.scrub_value(value)
                    if clean is not value:
                        setattr(exc, name, clean)
            except (AttributeError, TypeError, ValueError):
                pass
        notes = getattr(exc, "__notes__", None)
        if isinstance(notes, list):
            clean_notes = self.scrub_value(notes)
            if clean_notes is not notes:
                try:
                    exc.__notes__ = clean_notes
                except (AttributeError, TypeError):
                    pass

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
