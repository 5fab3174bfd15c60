"""One spelling per path: the normalisation the HTTP layer applies before routing *and* authorising.

Why this exists: a rule written for ``/key/generate`` must hold for ``/key/generate/``,
``//key//generate``, ``/key%2Fgenerate``, ``/v1/../key/generate`` and ``/%6Bey/generate`` too. The
classic bypass is a router and an authoriser that disagree about which of those is which route.
So the ASGI entry computes :func:`normalize_path` once, from ``scope["raw_path"]`` (the bytes the
client sent, still percent-encoded), and replaces ``scope["path"]`` with the result before any
router (the fast path in ``asgi.py``, Quart's url map, the pass-through table) looks at it. The
router then matches exactly the string :func:`~trioproxy.access.routes.authorize` judged.

The rules, in order:

1. Anything from ``?`` on is dropped (a query never belongs to the path; ASGI servers differ on
   whether ``raw_path`` carries it).
2. The path must start with ``/`` (origin form). Otherwise: 400.
3. Percent-escapes are decoded **exactly once**, to bytes, which must be UTF-8. ``%2F`` becomes a
   ``/`` and therefore a segment separator: the same reading Hypercorn gives ``scope["path"]``.
   A double-encoded ``%252F`` decodes to the literal text ``%2F`` (and then matches no route).
   Invalid UTF-8: 400.
4. Control characters (``\\x00``–``\\x1f``, ``\\x7f``), decoded or not: 400. NUL in a path is only
   ever an attack on some C string further down.
5. Empty segments vanish (``//`` → ``/``, a trailing ``/`` is dropped, except for ``/`` itself).
6. ``.`` segments vanish and ``..`` removes the segment before it (RFC 3986 §5.2.4); a ``..`` at the
   root stays at the root. Because decoding came first, ``%2e%2e`` is a ``..`` too.

Not changed: case (routes are case-sensitive), ``;`` (no matrix parameters: ``/a;b`` is its own,
unknown, path), backslashes (a literal character, not a separator), ``+`` (a plus, not a space).

Pass-through endpoints forward the *suffix* after their prefix to the target: that suffix is taken
from the normalised path too (re-encoded with :func:`urllib.parse.quote`), so a ``..`` can never
climb out of the configured target prefix.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from .errors import BadPathError

__all__ = ["normalize_path"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_path(raw: str | bytes) -> str:
    """The canonical form of a request path (see the module docstring), or :class:`BadPathError`.

    ``raw`` is the path as received, still percent-encoded: ASGI's ``scope["raw_path"]`` (bytes) or
    a ``str`` of the same. Never pass an already-decoded ``scope["path"]``: decoding twice would turn
    ``%252F`` into a separator.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            # raw non-ASCII bytes on the wire: legal enough for HTTP/1.1 servers to pass through;
            # treat them as already-decoded UTF-8 text (they are percent-decoded below as nothing)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadPathError("Malformed request path: not valid UTF-8.", param="path") from None
    else:
        text = raw
    text = text.partition("?")[0]
    if not text.startswith("/"):
        raise BadPathError("Malformed request path: it must start with '/'.", param="path")
    if _CONTROL.search(text):
        raise BadPathError("Malformed request path: control characters are not allowed.", param="path")
    if "%" in text:
        try:
            text = unquote_to_bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise BadPathError("Malformed request path: percent-escapes do not decode to UTF-8.",
                               param="path") from None
        if _CONTROL.search(text):
            raise BadPathError("Malformed request path: control characters are not allowed.", param="path")
    segments: list[str] = []
    for segment in text.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments)
