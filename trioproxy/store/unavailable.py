"""The store cannot answer a lookup the request path needs: a 503, logged once per interval.

Shared by the key cache and the customer cache. A lookup that fails because the database is down
(``StoreError``: unreachable, pool exhausted, closed) is answered with :class:`StoreUnavailableError`
— a 503 with a generic message — never a 401 (a client would discard a good key) and never the
driver's text (it names hosts and users); the detail goes to the log, at most once per interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import ServiceUnavailableError
from .errors import StoreError

__all__ = ["OutageLog", "StoreUnavailableError", "unavailable_is_503"]

log = logging.getLogger("trioproxy.store")


class StoreUnavailableError(ServiceUnavailableError):
    """503 ``store_unavailable``: see the module docstring."""

    default_code = "store_unavailable"


class OutageLog:
    """One warning per ``interval`` seconds while lookups fail, not one per request."""

    def __init__(self, what: str, monotonic: Callable[[], float], interval: float = 10.0):
        self.what = what
        self._monotonic = monotonic
        self.interval = interval
        self._next = 0.0
        self.suppressed = 0

    def failed(self, exc: BaseException) -> None:
        now = self._monotonic()
        if now >= self._next:
            log.warning("%s lookup failed: the store is unavailable (%s); answering 503 (%d more since the last "
                        "such warning)", self.what, exc, self.suppressed)
            self._next = now + self.interval
            self.suppressed = 0
        else:
            self.suppressed += 1


@contextmanager
def unavailable_is_503(outage: OutageLog) -> Iterator[None]:
    try:
        yield
    except StoreError as exc:
        outage.failed(exc)
        raise StoreUnavailableError(
            "The proxy's key store is unavailable right now; the request was not authenticated. Retry later.",
            headers={"retry-after": "1"}) from None
