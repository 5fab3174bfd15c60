"""The value checks of secret detection: is what a pattern matched really a secret?

A check gets the match and the ORIGINAL text (the match may come from the lowercased copy; the
offsets are the same) and returns ``(kind, start, end)`` of the span to redact, or None to reject
it. The rules and their reasons are in ``secret_detection.py``'s docstring; the patterns that call
these checks are in ``secret_patterns.py``.
"""

from __future__ import annotations

import base64
import re
import string
from collections.abc import Callable

__all__ = [
    "ALNUM",
    "TOKEN_CHARS",
    "Check",
    "Span",
    "check_assignment",
    "check_authorization",
    "check_aws_secret",
    "check_bearer",
    "check_contains_digit",
    "check_jwt",
    "check_mixed",
    "check_private_key",
    "check_slack_webhook",
    "check_url_credentials",
]

Span = tuple[str, int, int]
Check = Callable[[re.Match[str], str], "Span | None"]

ALNUM = frozenset(string.ascii_letters + string.digits)
TOKEN_CHARS = ALNUM | {"_", "-"}

# --------------------------------------------------------------------------------------------
# Value heuristics
# --------------------------------------------------------------------------------------------

_PLACEHOLDER_WORDS = frozenset(
    {
        "none", "null", "nil", "true", "false", "undefined", "redacted", "hidden", "masked",
        "secret", "password", "passwd", "token", "changeme", "example", "placeholder", "string",
        "str", "bytes", "optional", "required", "todo", "tbd", "xxx", "dummy",
    }
)  # fmt: skip
_PLACEHOLDER_RE = re.compile(
    r"""
    [\W_xX]*                            # only punctuation / x's: ***, ..., xxxx, ----
    | <.*> | \{.*\} | \[.*\]            # <token>, {{ var }}, {pw}, [REDACTED]
    | \$\{[^}]*\}? | \$[A-Za-z_]\w*      # ${VAR}, $VAR, $password (but not $uperS3cret!)
    | %\(\w+\)[sr] | %[A-Za-z_]\w*%     # %(password)s, %DB_PASSWORD%
    | .*%[sdr].* | .*\{\d*\}.*         # '%s:%s' % (user, pw), "{}:{}".format(...)
    | ![A-Za-z]+                        # a YAML tag: password: !vault |
    | (?i:your[_-]?.*|.*[_-]here|my[_-]?(?:api[_-]?)?(?:key|token|secret|password))
    | [A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+     # an environment variable's name: OPENAI_API_KEY
    | (?i:sk|pk|rk)[-_](?:x+|\.+|\*+|live|test|proj|ant)?[-_.*x]*  # sk-..., sk-xxxx
    """,
    re.VERBOSE,
)
# /home/alice, ./run, ~/x, C:\Users, https://host/...: but not base64 that starts with "/"
_PATHLIKE_RE = re.compile(r"(?:~|\.{1,2})?(?:/[\w.@-]*)+|[A-Za-z]:\\.*|[a-z][a-z0-9+.-]*://.*")
_IDENTIFIER_CHAIN_RE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")  # self.password, cfg.api.key
_NEXT_LABEL_RE = re.compile(r"[A-Za-z_][\w.-]*[=:]")  # "password= scmVersion=": the next label
_NETWORK_RE = re.compile(  # IPv6 addresses and MACs: "Token=::1a:2b:3c:4d"
    r".*::.*|(?:[0-9A-Fa-f]{1,4}:){2,}[0-9A-Fa-f]{0,4}|(?:[0-9A-Fa-f]{2}-){5}[0-9A-Fa-f]{2}"
)
_VALUE_END_RE = re.compile(r"[\s‘’“”«»]")  # where the lowercased copy may have hidden an end


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_placeholder(value: str) -> bool:
    return value.lower() in _PLACEHOLDER_WORDS or _PLACEHOLDER_RE.fullmatch(value) is not None


def _has_digit(value: str) -> bool:
    return any(c.isdigit() for c in value)


def _looks_random(value: str, min_len: int = 16) -> bool:
    """A machine-made token: long enough, and with digits or a real upper/lower mix."""
    if len(value) < min_len or _is_placeholder(value):
        return False
    if _has_digit(value) and any(c.isalpha() for c in value):
        return True
    # Letters only: random mixed case has ~half capitals; camelCase identifiers and prose have few.
    upper = sum(c.isupper() for c in value)
    lower = sum(c.islower() for c in value)
    return len(value) >= 20 and lower >= 4 and upper >= 0.3 * (upper + lower)


def _strip_sentence_end(value: str) -> str:
    """'password: hunter2.' -> 'hunter2': a full stop ends the sentence, not the value."""
    return value.rstrip(".") or value


def _orig(m: re.Match[str], text: str, group: str) -> str | None:
    """A group's text, read from the original (case-preserving) text at the match's offsets."""
    start, end = m.span(group)
    return None if start < 0 else text[start:end]


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def check_contains_digit(m: re.Match[str], text: str) -> Span | None:
    return ("", m.start(), m.end()) if _has_digit(m.group(0)) else None


def check_mixed(m: re.Match[str], text: str) -> Span | None:
    """Tokens such as ``hf_`` that may be letters only but are never one-case words."""
    body = m.group("body")
    if _has_digit(body) or (any(c.isupper() for c in body) and any(c.islower() for c in body)):
        return "", m.start(), m.end()
    return None


def _b64url_json_header(segment: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:
        return False
    head = raw[:512]
    return head.lstrip().startswith(b"{") and any(
        key in head for key in (b'"alg"', b'"typ"', b'"enc"', b'"kid"')
    )


def check_jwt(m: re.Match[str], text: str) -> Span | None:
    if m.group("payload").startswith("eyJ") or _b64url_json_header(m.group("header")):
        return "", m.start(), m.end()
    return None


_B64_CHAR_RE = re.compile(r"[A-Za-z0-9+/]")


def check_private_key(m: re.Match[str], text: str) -> Span | None:
    # "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----" in docs is not a key.
    body = m.group("body")
    if body is not None:
        if len(_B64_CHAR_RE.findall(body, 0, 4096)) < 32:
            return None
        return "", m.start(), m.end()
    # A BEGIN line with no END (the paste was cut off): the header and the base64 lines go.
    body = m.group("truncated") or ""
    if len(_B64_CHAR_RE.findall(body, 0, 4096)) < 32:
        return None
    return "", m.start(), m.start("truncated") + len(body.rstrip())


def check_aws_secret(m: re.Match[str], text: str) -> Span | None:
    # secret_access_key / SecretAccessKey on its own; secret_key only as aws_secret_key
    if m.group("access") is None and not text[max(0, m.start() - 4) : m.start()].lower().endswith(
        ("aws_", "aws", "aws ")
    ):
        return None
    value = _orig(m, text, "v")
    if value is None or not _looks_random(value, 40):
        return None
    return "", m.start("v"), m.end("v")


def check_bearer(m: re.Match[str], text: str) -> Span | None:
    # Standalone "Bearer X" appears in prose ("bearer tokens", "Bearer authentication"), so X must
    # look machine-made; an Authorization header (below) is trusted with less.
    value = _orig(m, text, "v")
    if value is None:
        return None
    value = _strip_sentence_end(value)
    if not _looks_random(value, 16):
        return None
    return "", m.start("v"), m.start("v") + len(value)


def _value_span(m: re.Match[str], text: str) -> tuple[str, int, bool] | None:
    """(value, start, was_quoted) of the _VALUE part of a match."""
    for group, quoted in (("q", True), ("u", False)):
        if group not in m.re.groupindex:
            continue
        value = _orig(m, text, group)
        if value is not None:
            return value, m.start(group), quoted
    return None


def check_authorization(m: re.Match[str], text: str) -> Span | None:
    found = _value_span(m, text)
    if found is None:
        return None
    value, start, _ = found
    value = _strip_sentence_end(value)
    scheme = m.group("scheme") or ""
    if len(value) < 8 or _is_placeholder(value):
        return None
    if not (_has_digit(value) or _looks_random(value, 12) or scheme == "basic"):
        return None
    return ("basic_auth" if scheme == "basic" else ""), start, start + len(value)


def check_url_credentials(m: re.Match[str], text: str) -> Span | None:
    # The match starts at "://"; a scheme ("https", "postgres", "mongodb+srv") must precede it.
    if m.start() == 0 or not text[m.start() - 1].isalnum():
        return None
    value = m.group("v")
    # user:<password>@, user:${PW}@, user:***@, and https://a:b@host in URL-parsing docs
    if len(value) < 3 or _PLACEHOLDER_RE.fullmatch(value) is not None:
        return None
    return "", m.start("v"), m.end("v")


# Words that, glued or joined by "_"/"-" in front of a keyword, still make it a label:
# apiKey, api_key, x-api-key, clientSecret, authtoken, access-token...
_KEY_QUALIFIER_RE = re.compile(
    r"(?:api|access|secret|private|auth|signing|encryption|master|app|client|license|account)"
    r"[_-]?\Z",
    re.IGNORECASE,
)
_PASSWORD_KEYWORDS = ("pass", "pwd", "identified")


def _label_ok(m: re.Match[str], text: str) -> bool:
    """Is the keyword the end of a label (``DB_PASSWORD``, ``apiKey``), not inside a word?"""
    start = m.start("kw")
    if text[start - 2 : start] == "--":  # a CLI flag; its own pattern checked the rest
        return True
    keyword = m.group("kw")
    before = text[max(0, start - 16) : start]
    if keyword == "key":  # a bare "key" is too common a word: demand a qualifier (api_key...)
        q = _KEY_QUALIFIER_RE.search(before)
        if q is None:
            return False
        start -= len(q.group(0))
        before = text[max(0, start - 1) : start]
        return not before or not before.isalnum() or (before.islower() and text[start].isupper())
    prev = before[-1:] if before else ""
    if prev == "/":  # a path (/etc/passwd, /run/secrets/token), not a label
        return False
    if not prev or prev not in ALNUM:
        return True
    # camelCase: dbPassword, accessToken, clientSecret
    if text[start].isupper() and (prev.islower() or prev.isdigit()):
        return True
    # an environment variable's name: PGPASSWORD, GHTOKEN
    if prev.isupper() and text[start : m.end("kw")].isupper():
        return True
    # glued qualifier: authtoken, apitoken, clientsecret (preceded by a boundary)
    q = _KEY_QUALIFIER_RE.search(before)
    if q is not None and not q.group(0).endswith(("_", "-")):
        cut = start - len(q.group(0))
        return cut == 0 or text[cut - 1] not in ALNUM
    return False


_XML_OPEN_RE = re.compile(r"<[\w:.-]{0,40}\Z")


def _xml_ok(m: re.Match[str], text: str, value_end: int) -> bool:
    """``<password>value</password>``: an opening tag before the label, a closing one after."""
    start = m.start("kw")
    return (
        _XML_OPEN_RE.search(text, max(0, start - 41), start) is not None
        and text.startswith("</", value_end)
        and m.group("qo") is None
    )


def _bare_pass_ok(m: re.Match[str], text: str) -> bool:
    """``DB_PASS=``, ``smtp.pass:``; never a bare "pass" (test logs say "PASS: test_x")."""
    start = m.start("kw")
    return start > 0 and text[start - 1] in "_-."


def check_assignment(m: re.Match[str], text: str) -> Span | None:
    if not _label_ok(m, text):
        return None
    if "sep" in m.re.groupindex and m.group("sep") == ">" and not _xml_ok(m, text, m.end()):
        return None
    if m.group("kw") == "pass" and not _bare_pass_ok(m, text):
        return None
    is_password = m.group("kw").startswith(_PASSWORD_KEYWORDS)
    kind = "password" if is_password else "generic_secret"
    found = _value_span(m, text)
    if found is None:
        return None
    value, start, quoted = found
    if quoted:
        # A string literal after a label: somebody typed this value in.
        if _is_placeholder(value) or _PATHLIKE_RE.fullmatch(value):
            return None
        ok = len(value) >= 4 if is_password else _looks_random(value, 8)
        return (kind, start, start + len(value)) if ok else None
    # Unquoted values are where code (password=password, token=tokens[0]) and prose
    # ("Password: must be 8-64 characters") live, so demand more.
    end = _VALUE_END_RE.search(value)
    value = _strip_sentence_end(value if end is None else value[: end.start()])
    if (
        _is_placeholder(value)
        or value.startswith("-")  # the next command-line flag
        or _PATHLIKE_RE.fullmatch(value)
        or _IDENTIFIER_CHAIN_RE.fullmatch(value)
        or _NEXT_LABEL_RE.fullmatch(value)
        or _NETWORK_RE.fullmatch(value)
        or "%20" in value  # a URL-encoded phrase (pkcs11:token=Root%20CA%20Certificates)
        # a word, an identifier, "on/off", a field list ("login_name:passwd:UID:GID:shell")
        or all(c.isalpha() or c in "_-.:/" for c in value)
    ):
        return None
    if is_password:
        ok = len(value) >= 6
    else:
        ok = (
            len(value) >= 8
            and _has_digit(value)
            and any(c.isalpha() for c in value)
            and not _is_number(value)  # "cost_per_token": 1.25e-06
        )
    return (kind, start, start + len(value)) if ok else None


def check_slack_webhook(m: re.Match[str], text: str) -> Span | None:
    return "", m.start("v"), m.end("v")
