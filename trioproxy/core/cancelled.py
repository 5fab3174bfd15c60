"""One ``Cancelled`` out of a nursery cancelled from outside, never a group of them.

A context manager class rather than a ``@contextlib.contextmanager`` generator: the pipeline enters
it on every request, where the generator's machinery cost ~1 % of the proxy's CPU per request
(bench/README.md, "CPU per request").
"""

from __future__ import annotations

from typing import Any

import trio

from ..errors import InternalServerError

__all__ = ["SingleCancelled"]


class SingleCancelled:
    """Let a nursery cancelled from outside raise one ``Cancelled``, never a group of them.

    Children of our nurseries catch their own errors, so a group can only hold ``Cancelled``s
    (or a bug, which becomes one 500 rather than a group reaching the HTTP layer).
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, group: BaseException | None, tb: Any) -> bool:
        if not isinstance(group, BaseExceptionGroup):
            return False
        cancelled, rest = group.split(trio.Cancelled)
        if rest is not None:
            if rest.split(Exception)[1] is not None:
                return False  # KeyboardInterrupt/SystemExit: not ours to turn into a response
            raise InternalServerError("Internal error in the proxy; see the server log.") from group
        leaf: BaseException = cancelled  # type: ignore[assignment]
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        raise leaf from None
