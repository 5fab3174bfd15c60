"""Running a text scan where it costs the other requests nothing: inline when small, in a thread when large.

The text itself is found by the one walker, :func:`trioproxy.prompt.text_slots`; this module only
decides where a scan of it (regexes, redaction) runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio

__all__ = ["INLINE_LIMIT", "SCAN_LIMITER", "run_scan"]

T = TypeVar("T")

#: text scans over more characters than this run in a worker thread: they cost a few ms per
#: 100 KB, and a multi-megabyte prompt would otherwise stall every other request on the Trio thread
INLINE_LIMIT = 64 * 1024

#: at most this many large scans at once (each holds a worker thread)
SCAN_LIMITER = trio.CapacityLimiter(4)


async def run_scan(size: int, scan: Callable[..., T], *args: Any) -> T:
    """``scan(*args)`` inline for small texts, in a worker thread (limited) for large ones."""
    if size > INLINE_LIMIT:
        return await trio.to_thread.run_sync(scan, *args, limiter=SCAN_LIMITER)
    return scan(*args)
