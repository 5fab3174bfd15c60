"""How fast the ``hide_secrets`` detector is: 100 KB of ordinary text and the pathological inputs.

Measured here, never asserted by a test: ``python bench/secret_detection.py``.
Requests with more than 64 KB of text are scanned in a worker thread (``policies/texts.py``), so a
slow scan costs a thread, not the Trio thread; these figures say how much.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_secret_detection import _PATHOLOGICAL, NEGATIVES

from trioproxy.policies.secret_detection import find_secrets


def timed(text: str, repeat: int = 5) -> float:
    find_secrets(text)
    start = time.perf_counter()
    for _ in range(repeat):
        find_secrets(text)
    return (time.perf_counter() - start) / repeat


def main() -> None:
    ordinary = "\n\n".join(NEGATIVES)
    ordinary = (ordinary * (100_000 // len(ordinary) + 1))[:100_000]
    print(f"100 KB of ordinary text: {timed(ordinary) * 1000:.1f} ms")
    worst = max(_PATHOLOGICAL, key=timed)
    print(f"slowest pathological input ({worst[:24]!r}..., {len(worst)} chars): {timed(worst) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
