"""Lists in the config that may also live in a text file (``banned_keywords_list: keywords.txt``).

The seeds allow either a YAML list or the path of a ``.txt`` file. A string is always a path (a
single keyword would be written as a one-element list), resolved against the config file's
directory so a config and its lists move together. Files are read once, at startup: a missing or
unreadable file stops startup with the path in the message instead of failing on the request path.
"""

from __future__ import annotations

from pathlib import Path

from ..hooks.loader import HandlerLoadError

__all__ = ["load_list"]


def load_list(value: object, base_dir: Path, key: str) -> list[str]:
    """``value`` (a list, a path, or None) → the entries. Raises HandlerLoadError naming ``key``.

    File format: one entry per line; surrounding whitespace, blank lines and lines starting with
    ``#`` are ignored, so lists can carry comments.
    """
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [item.strip() for item in value if isinstance(item, str) and item.strip()]
    if not isinstance(value, str):
        raise HandlerLoadError(f"{key} must be a list of strings or the path of a .txt file")
    path = (base_dir / value).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HandlerLoadError(
            f"{key}: file not found: {path} (a path is resolved relative to the config's directory)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HandlerLoadError(f"{key}: cannot read {path}: {exc}") from None
    entries = []
    for line in text.splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            entries.append(entry)
    return entries
