"""The patterns of secret detection: one detector per kind of secret, each starting with a literal.

Why every pattern starts with a literal (``sk-``, ``AKIA``, ``eyJ``, ``://``, ``password``…), why
there is no combined alternation and no generic high-entropy detector: ``secret_detection.py``'s
docstring. Each detector names its kind, its pattern, whether it runs over the lowercased text,
the characters it must not follow, its priority when detections overlap, and its value check
(``secret_checks.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .secret_checks import (
    ALNUM,
    TOKEN_CHARS,
    Check,
    check_assignment,
    check_authorization,
    check_aws_secret,
    check_bearer,
    check_contains_digit,
    check_jwt,
    check_mixed,
    check_private_key,
    check_slack_webhook,
    check_url_credentials,
)

__all__ = ["DETECTORS", "KINDS", "Detector"]


@dataclass(frozen=True, slots=True)
class Detector:
    kind: str
    pattern: re.Pattern[str]
    lowered: bool = False  # a lowercase pattern, run over text.lower()
    not_after: frozenset[str] = frozenset()  # the match must not follow one of these characters
    priority: int = 3  # on overlap, the highest priority names the merged finding
    check: Check | None = None




# --------------------------------------------------------------------------------------------
# Patterns (each starts with a literal: see the module docstring)
# --------------------------------------------------------------------------------------------

_R = r"(?![A-Za-z0-9_-])"  # right edge of a prefixed token

# A quoted or unquoted value after a label and separator. Quotes may be JSON-escaped (\"), as
# they are inside tool-call arguments. Unquoted values stop at anything that ends a value in
# code, config or prose, and the lookahead rejects "get_pw()" or "tokens[0]" outright.
_VALUE = r"""
    (?:
        (?P<qo>\\?["'`])(?P<q>[^"'`\s\\]{1,512}+)(?P=qo)
      | (?P<u>[^\s"'`,;&<>(){}\[\]\\‘’“”«»]{1,512}+)(?=[\s"'`,;&<)}\]\\‘’“”«»]|\Z)
    )
"""
# label  ["'] [: type-annotation] separator   (run over lowercased text)
_SEPARATOR = r"""
    (?![a-z0-9_])
    \\?["']?[ \t]{0,10}
    (?::[ \t]{0,5}[a-z_][\w.]{0,40}(?:\[[^\]\n]{0,60}\])?[ \t]{0,10})?   # password: str = "..."
    (?P<sep>=>|:=|=(?!=)|:(?![:/])|>)     # ">": <password>value</password>, checked later
    [ \t]{0,10}
"""


def _lit(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags | re.VERBOSE)


DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key",
        _lit(r"""
            -----BEGIN[ A-Z0-9]{0,40}PRIVATE\ KEY(?:\ BLOCK)?-----
            (?:
                (?P<body>(?:(?!-----BEGIN)[\s\S]){0,16384}?)
                -----END[ A-Z0-9]{0,40}PRIVATE\ KEY(?:\ BLOCK)?-----
              | (?P<truncated>(?:(?:\s|\\[nr]){1,8}+[A-Za-z0-9+/=]{16,1024}+)*+)
            )
        """),
        check=check_private_key,
    ),
    Detector(
        "anthropic_api_key",
        _lit(r"sk-ant-[A-Za-z0-9_-]{20,1024}+"),
        not_after=TOKEN_CHARS,
        check=check_contains_digit,
    ),
    Detector(
        "openrouter_api_key",
        _lit(r"sk-or-(?:v\d+-)?[A-Za-z0-9]{32,256}+" + _R),
        not_after=TOKEN_CHARS,
        check=check_contains_digit,
    ),
    Detector(
        "openai_api_key",
        _lit(
            r"sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,1024}+|[A-Za-z0-9]{20,512}+"
            + _R
            + ")"
        ),
        not_after=TOKEN_CHARS,
        check=check_contains_digit,
    ),
    Detector(
        "google_api_key",
        _lit(r"AIza[0-9A-Za-z_-]{35}" + _R),
        not_after=TOKEN_CHARS,
    ),
    Detector(
        "github_token",
        _lit(r"gh[pousr]_[A-Za-z0-9]{36,251}+"),
        not_after=TOKEN_CHARS,
    ),
    Detector(
        "github_token",
        _lit(r"github_pat_[A-Za-z0-9_]{22,251}+"),
        not_after=TOKEN_CHARS,
    ),
    Detector(
        "gitlab_token",
        _lit(r"gl(?:pat|dt|rt|ptt|oas)-[A-Za-z0-9_-]{20,128}+"),
        not_after=TOKEN_CHARS,
    ),
    Detector(
        "slack_token",
        _lit(r"xox[abposre]-[A-Za-z0-9-]{10,250}+"),
        not_after=TOKEN_CHARS,
        check=check_contains_digit,
    ),
    Detector(
        "slack_webhook",
        _lit(r"""
            hooks\.slack\.com/(?:services|workflows)/
            (?P<v>T[A-Z0-9]{6,16}/[A-Z0-9]{6,16}/[A-Za-z0-9]{16,64}+)
        """),
        check=check_slack_webhook,
    ),
    Detector(
        "stripe_key",
        _lit(r"sk_(?:live|test)_[A-Za-z0-9]{16,247}+"),
        not_after=TOKEN_CHARS,
        check=check_contains_digit,
    ),
    Detector(
        "stripe_key",
        _lit(r"rk_(?:live|test)_[A-Za-z0-9]{16,247}+"),
        not_after=TOKEN_CHARS,
        check=check_contains_digit,
    ),
    Detector(
        "stripe_key",
        _lit(r"whsec_[A-Za-z0-9]{24,128}+"),
        not_after=TOKEN_CHARS,
        check=check_contains_digit,
    ),
    Detector(
        "aws_access_key_id",
        _lit(r"A(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
        not_after=ALNUM,
    ),
    Detector(
        "aws_secret_access_key",
        _lit(r"""
            secret[_\ ]?(?P<access>access[_\ ]?)?key(?:[\ \t]{0,5}\[[^\]\n]{0,20}\])?  # aws configure: "AWS Secret Access Key [None]:"
            \\?["']?[ \t]{0,10}(?:=>|:=|=|:)[ \t]{0,10}\\?["']?
            (?P<v>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])
        """),
        lowered=True,
        not_after=ALNUM,
        check=check_aws_secret,
    ),
    Detector(
        "huggingface_token",
        _lit(r"hf_(?P<body>[A-Za-z0-9]{30,64}+)(?![A-Za-z0-9_])"),
        not_after=TOKEN_CHARS,
        check=check_mixed,
    ),
    Detector(
        "groq_api_key",
        _lit(r"gsk_[A-Za-z0-9]{40,128}+" + _R),
        not_after=TOKEN_CHARS,
    ),
    Detector(
        "xai_api_key",
        _lit(r"xai-[A-Za-z0-9]{60,128}+" + _R),
        not_after=TOKEN_CHARS,
    ),
    Detector(
        "replicate_api_token",
        _lit(r"r8_[A-Za-z0-9]{30,64}+" + _R),
        not_after=TOKEN_CHARS,
        check=check_contains_digit,
    ),
    Detector(
        "perplexity_api_key",
        _lit(r"pplx-[A-Za-z0-9]{40,64}+" + _R),
        not_after=TOKEN_CHARS,
    ),
    Detector(
        "npm_token",
        _lit(r"npm_[A-Za-z0-9]{36}" + _R),
        not_after=TOKEN_CHARS,
        check=check_contains_digit,
    ),
    Detector(
        "pypi_token",
        _lit(r"pypi-AgE[A-Za-z0-9_-]{50,512}+"),
        not_after=TOKEN_CHARS,
    ),
    Detector(
        "sendgrid_api_key",
        _lit(r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}" + _R),
        not_after=TOKEN_CHARS,
    ),
    Detector(
        "jwt",
        _lit(
            r"(?P<header>eyJ[A-Za-z0-9_-]{8,4096}+)\.(?P<payload>[A-Za-z0-9_-]{8,16384}+)"
            r"(?:\.[A-Za-z0-9_-]{8,4096}+)?" + _R
        ),
        not_after=TOKEN_CHARS,
        check=check_jwt,
    ),
    Detector(
        "bearer_token",
        _lit(r"bearer[ \t]{1,5}+(?P<v>[A-Za-z0-9._~+/-]{8,4096}+=*)"),
        lowered=True,
        not_after=ALNUM,
        priority=2,
        check=check_bearer,
    ),
    Detector(
        "bearer_token",
        _lit(
            r"""authorization\\?["']?[ \t]{0,10}[:=][ \t]{0,10}
            (?:(?P<scheme>bearer|basic|token|bot)[ \t]{1,5}+)?"""
            + _VALUE
        ),
        lowered=True,
        not_after=ALNUM,
        priority=2,
        check=check_authorization,
    ),
    Detector(
        "url_credentials",
        _lit(r"""
            ://[^\s:/?\#@"'<>\\]{0,256}+:(?P<v>[^\s/?\#@"'<>\\]{1,256}+)@(?=[A-Za-z0-9\[])
        """),
        priority=2,
        check=check_url_credentials,
    ),
    *(
        Detector(
            "generic_secret",
            _lit(f"(?P<kw>{keyword})" + _SEPARATOR + _VALUE),
            lowered=True,
            priority=1,
            check=check_assignment,
        )
        # one pattern per keyword, so that each starts with a literal
        for keyword in ("pass(?:word|wd|phrase|code)?", "pwd", "secret", "token", "key")
    ),
    Detector(
        "generic_secret",
        _lit(
            r"--(?:[a-z0-9]{1,30}-){0,4}(?P<kw>password|passwd|passphrase|token|secret|api-key|apikey)"
            r"[ \t]{1,5}+" + _VALUE
        ),
        lowered=True,
        not_after=ALNUM | {"-"},
        priority=1,
        check=check_assignment,
    ),
    # SQL: IDENTIFIED BY 'pw' (MySQL, Oracle), [WITH] PASSWORD 'pw' (PostgreSQL). Single quotes
    # only: `identified by` in backticks is Markdown.
    Detector(
        "password",
        _lit(r"(?P<kw>identified)[ \t]+by[ \t]+'(?P<q>[^'\s\\]{1,512}+)'"),
        lowered=True,
        not_after=ALNUM,
        priority=1,
        check=check_assignment,
    ),
    Detector(
        "password",
        _lit(r"(?P<kw>password)[ \t]{1,5}'(?P<q>[^'\s\\]{1,512}+)'"),
        lowered=True,
        not_after=ALNUM,
        priority=1,
        check=check_assignment,
    ),
)

KINDS: frozenset[str] = frozenset(d.kind for d in DETECTORS) | {"basic_auth", "password"}
"""Every kind :func:`find_secrets` can report."""
