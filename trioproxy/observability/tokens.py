r"""The token estimator: how many tokens a request and its answer took, when the upstream did not say.

Used for billing only when an upstream reports no usage (``cost.py``), and by provider adapters
that must count tokens themselves. Pure CPU work: callers run it off the Trio thread for large
inputs (``trio.to_thread.run_sync``), which is why it is sync and has no shared mutable state.
The places of the user's text come from the one walker (``trioproxy.prompt.text_slots``).

Method: split text the way cl100k_base pre-tokenizes it (its published regex,
rewritten for the stdlib ``re`` module, which lacks ``\p{L}``: letters are
``[^\W\d_]``), then estimate how many BPE tokens each piece becomes:

* an ASCII letter run (with its leading space/punctuation): 1 token per 6
  letters, rounded up -- common English words are single tokens, rare long
  words split into several;
* CJK ideographs, kana and Hangul: 1 token per character;
* other non-ASCII letters (accented Latin, Cyrillic, Greek, ...): 1 per 3;
* digits: cl100k groups at most 3 digits per token, so each group is 1;
* punctuation runs: 1 token per 2 characters; contractions ('s, 'll): 1;
* newline runs: 1; other whitespace runs: 1 per 8 characters.

It matches the published cl100k counts of the reference strings in
tests/observability/test_prices_and_tokens.py exactly for common English words, digits and kana/kanji,
and undercounts rare long words by ~1 token in 6 (within 20% there). It has
not been compared with the real tokenizer on large corpora (tiktoken is not a
dependency): treat it as an estimate for billing when an upstream reports no
usage, not as a tokenizer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ..prompt import text_slots

__all__ = ["estimate_tokens", "estimate_usage"]

_PRETOKEN = re.compile(
    r"""'(?i:[sdmt]|ll|ve|re)"""  # contractions
    r"""|(?:_|[^\r\n\w])?[^\W\d_]+"""  # letters, with one leading non-letter
    r"""|\d{1,3}"""  # digits in groups of three
    r"""| ?(?:_|[^\s\w])+[\r\n]*"""  # punctuation run
    r"""|\s*[\r\n]+"""  # newlines (with preceding spaces)
    r"""|\s+(?!\S)|\s+"""  # other whitespace
)

# CJK Unified Ideographs (+ Ext. A, compatibility), kana, Hangul syllables.
_WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_ASCII_LETTER = re.compile(r"[A-Za-z]")


def _piece_tokens(piece: str) -> int:
    first = piece[0]
    if first == "'" and len(piece) <= 3 and piece[1:].isalpha():
        return 1  # contraction
    if piece[-1].isalpha():  # letter run (may start with one non-letter)
        ascii_letters = len(_ASCII_LETTER.findall(piece))
        wide = len(_WIDE.findall(piece))
        letters = sum(1 for ch in piece if ch.isalpha())
        other = letters - ascii_letters - wide
        return max(1, math.ceil(ascii_letters / 6) + wide + math.ceil(other / 3))
    if piece.isdigit():
        return 1
    if piece.isspace():
        if "\n" in piece or "\r" in piece:
            return 1
        return math.ceil(len(piece) / 8)
    # punctuation run, possibly with one leading space and trailing newlines
    core = piece.strip()
    return max(1, math.ceil(len(core) / 2))


def estimate_tokens(text: str) -> int:
    """Approximate cl100k token count of ``text`` (0 for empty); see method above.

    Deterministic, dependency-free, and linear in ``len(text)``.
    """
    if not text:
        return 0
    return sum(_piece_tokens(m.group()) for m in _PRETOKEN.finditer(text))


# OpenAI's documented chat accounting: every message costs a few tokens of
# framing (role, separators) and the reply is primed with a few more.
_TOKENS_PER_MESSAGE = 4
_TOKENS_PER_NAME = 1
_REPLY_PRIMING = 3


def _prompt_tokens(prompt: object) -> int:
    """Tokens of a completions ``prompt`` or embeddings ``input``.

    Both may be a string, a list of strings, a list of token ids, or a list of
    token-id lists; token ids are counted exactly (they are not text, so the
    walker does not see them).
    """
    if isinstance(prompt, str):
        return estimate_tokens(prompt)
    if isinstance(prompt, list):
        if all(isinstance(x, int) and not isinstance(x, bool) for x in prompt):
            return len(prompt)
        return sum(_prompt_tokens(x) for x in prompt)
    return 0


def _is_responses_body(body: Mapping[str, Any]) -> bool:
    """A Responses API body (items in ``input``, or ``instructions``), not an embeddings one."""
    items = body.get("input")
    return "instructions" in body or (isinstance(items, list) and any(isinstance(i, Mapping) for i in items))


#: the places of a message that are billed as prompt (the legacy ``function_call`` is not counted)
_MESSAGE_PLACES = frozenset({"content", "part", "bare_part", "name", "tool_name", "tool_arguments"})


def estimate_usage(request_body: Mapping[str, Any], response_text: str) -> tuple[int, int]:
    """Estimated ``(prompt_tokens, completion_tokens)`` for a request.

    Prompt tokens come from ``messages`` (the walker's places: string content, the text of
    list-of-parts content, ``name`` and assistant ``tool_calls``, plus ~4 tokens of framing per
    message, 1 per ``name`` and 3 for reply priming), else from ``prompt`` (completions) or
    ``input`` (embeddings). ``tools`` / ``functions`` definitions are counted from their JSON text,
    since upstreams bill them as prompt. Completion tokens are ``estimate_tokens(response_text)``.
    """
    prompt_tokens = 0
    messages = request_body.get("messages")
    if isinstance(messages, list):
        prompt_tokens = _TOKENS_PER_MESSAGE * sum(1 for m in messages if isinstance(m, Mapping))
        for slot in text_slots({"messages": messages}, arguments=True, names=True, any_part=True):
            if slot.where in _MESSAGE_PLACES:
                prompt_tokens += estimate_tokens(slot.text) + (_TOKENS_PER_NAME if slot.where == "name" else 0)
        if messages:
            prompt_tokens += _REPLY_PRIMING
    elif _is_responses_body(request_body):
        # a natively forwarded /v1/responses body: the text of its input items and instructions
        prompt_tokens = sum(estimate_tokens(slot.text) for slot in text_slots(dict(request_body), arguments=True))
    elif "prompt" in request_body:
        prompt_tokens = _prompt_tokens(request_body["prompt"])
    elif "input" in request_body:
        prompt_tokens = _prompt_tokens(request_body["input"])
    for key in ("tools", "functions"):
        definitions = request_body.get(key)
        if isinstance(definitions, list) and definitions:
            prompt_tokens += estimate_tokens(json.dumps(definitions, separators=(",", ":")))
    return prompt_tokens, estimate_tokens(response_text)
