"""Failed authentications, limited per client address: :class:`FailedAuthLimiter`.

Without a limit a client may present any number of wrong keys — a guessed master key
(``sk-1234`` is a common one), a scan of virtual keys, forged JWTs — and each costs a key-store
lookup or a signature check. After ``auth_rate_limit_max_failures_per_ip`` refused credentials
from one address within ``auth_rate_limit_window_seconds``, that address gets **429** with
``Retry-After`` on every route that needs a credential, *before* the credential is looked at (no
store lookup, no JWT verification): the answer then says nothing about whether a key was right,
so guessing cannot go on behind the 429.

Decisions (``docs/access.md`` "Failed authentications"):

- **What counts**: a credential that was sent and refused (401) on a route that needed it —
  unknown or deleted key, a wrong master key, a key hash, a bad JWT. A key that exists but is
  expired or blocked (``ExpiredKeyError``, ``BlockedKeyError``) does not count: the caller holds a
  real key, nothing is being guessed, and one stale client must not lock out its whole NAT. No
  credential at all is not a guess either. A bad key sent to a public route is ignored there, so
  it is not counted; a 503 (store or identity provider down) is not a failure.
- **Success** neither counts nor clears earlier failures: otherwise a caller holding one valid key
  could launder unlimited master-key guesses between its own requests.
- **A sliding window**: the last ``max_failures`` failure times of an address; it is locked while
  the oldest of them is younger than the window. Requests refused with the 429 are not counted, so
  the lockout ends when the oldest counted failure leaves the window (``Retry-After``, rounded up);
  a guesser gets at most ``max_failures`` guesses per window.
- **Addresses**: the client address the entry resolved (``use_x_forwarded_for`` behind
  ``trusted_proxy_ranges``, :mod:`.ip`); IPv6 addresses are grouped by their /64 (one host
  usually owns a whole /64 and could otherwise rotate through it); an address that cannot be known
  (malformed ``X-Forwarded-For``) shares one bucket, so garbage in the header is no way around the
  limit.
- **In process**: each worker (``--workers N``) and each instance counts its own failures, so the
  effective limit is up to N times the setting. Bounded memory: at most ``max_tracked`` addresses
  (10,000); an address whose newest failure has left the window is dropped first (idle), and past
  the bound the least recently failing address is dropped.

Never holds or logs a key: only addresses and times.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any

import trio

from ..errors import AuthenticationError, RateLimitError

__all__ = ["DEFAULT_MAX_FAILURES", "DEFAULT_WINDOW_SECONDS", "FailedAuthLimiter", "TooManyFailedAuthentications"]

#: LiteLLM's default for the Admin UI sign-in limit per address (``login_rate_limit_max_failures_per_ip``)
DEFAULT_MAX_FAILURES = 60
#: LiteLLM's default window of that sign-in limit (``login_rate_limit_window_seconds``)
DEFAULT_WINDOW_SECONDS = 300.0
#: addresses remembered at most (each holds up to ``max_failures`` floats)
DEFAULT_MAX_TRACKED = 10_000

_UNKNOWN = "unknown"


class TooManyFailedAuthentications(RateLimitError):
    """429: this address sent too many refused credentials lately; the credential was not checked."""

    error_type = "auth_error"
    default_code = "too_many_failed_authentications"


def bucket_of(address: str | None) -> str:
    """The counter an address falls in: the address, its /64 for IPv6, ``unknown`` for none."""
    if not address:
        return _UNKNOWN
    if ":" not in address:
        return address
    try:
        network = ipaddress.IPv6Network(f"{address}/64", strict=False)
    except ValueError:
        return address
    return str(network)


class FailedAuthLimiter:
    """Failure times per address (sliding window), and the 429 for an address over the limit.

    ``clock``: seconds, monotonic (``trio.current_time`` by default, so tests run in virtual time).
    ``not_counted``: refusals of keys that exist (the store's ``ExpiredKeyError``,
    ``BlockedKeyError``; injected by the composition root, so this package needs no store).
    """

    def __init__(self, max_failures: int = DEFAULT_MAX_FAILURES, window: float = DEFAULT_WINDOW_SECONDS,
                 *, max_tracked: int = DEFAULT_MAX_TRACKED, clock: Callable[[], float] = trio.current_time,
                 not_counted: tuple[type[BaseException], ...] = ()) -> None:
        if max_failures < 1 or window <= 0 or max_tracked < 1:
            raise ValueError("max_failures, window and max_tracked must be positive")
        self.max_failures = max_failures
        self.window = window
        self.max_tracked = max_tracked
        self._clock = clock
        self.not_counted = not_counted
        # bucket → its last max_failures failure times; ordered by the newest failure (oldest first)
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @classmethod
    def from_settings(cls, general_settings: Mapping[str, Any] | None,
                      not_counted: tuple[type[BaseException], ...] = ()) -> FailedAuthLimiter | None:
        """``auth_rate_limit_max_failures_per_ip`` (0 turns the limit off) and
        ``auth_rate_limit_window_seconds``; types are checked by the config schema."""
        settings = general_settings or {}
        max_failures = settings.get("auth_rate_limit_max_failures_per_ip")
        window = settings.get("auth_rate_limit_window_seconds")
        max_failures = DEFAULT_MAX_FAILURES if max_failures is None else int(max_failures)
        if max_failures <= 0:
            return None
        return cls(max_failures, DEFAULT_WINDOW_SECONDS if window is None else float(window),
                   not_counted=not_counted)

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, address: str | None) -> float | None:
        """Seconds until ``address`` may try again, or ``None`` when it is not locked out.

        The request path's cost while nobody has failed: one emptiness test."""
        if not self._failures:
            return None
        times = self._failures.get(bucket_of(address))
        if times is None or len(times) < self.max_failures:
            return None
        wait = times[0] + self.window - self._clock()
        return wait if wait > 0 else None

    def refusal(self, address: str | None, wait: float) -> TooManyFailedAuthentications:
        """The 429 for a locked-out address (the address is the client's own; no key is named)."""
        seconds = max(1, math.ceil(wait))
        return TooManyFailedAuthentications(
            f"Too many failed authentication attempts from {address or 'an unknown address'}: "
            f"{self.max_failures} within {self.window:g} s (general_settings.auth_rate_limit_max_failures_per_ip, "
            f"auth_rate_limit_window_seconds). The credential was not checked. Retry after {seconds} s.",
            headers={"retry-after": str(seconds)})

    def counts(self, error: BaseException | None) -> bool:
        """Whether a refusal is a failed authentication in the sense above."""
        return isinstance(error, AuthenticationError) and not isinstance(error, TooManyFailedAuthentications) \
            and not isinstance(error, self.not_counted)

    def record_failure(self, address: str | None) -> bool:
        """Count one failed authentication of ``address``; ``True`` when this one locks it out."""
        now = self._clock()
        failures = self._failures
        self._evict_idle(now)
        bucket = bucket_of(address)
        times = failures.get(bucket)
        if times is None:
            if len(failures) >= self.max_tracked:
                failures.popitem(last=False)   # the least recently failing address
            times = failures[bucket] = deque(maxlen=self.max_failures)
        else:
            failures.move_to_end(bucket)
        times.append(now)
        return len(times) == self.max_failures and now - times[0] < self.window

    def _evict_idle(self, now: float) -> None:
        """Drop addresses whose newest failure has left the window (they are at the front)."""
        failures = self._failures
        horizon = now - self.window
        while failures:
            bucket, times = next(iter(failures.items()))
            if times[-1] > horizon:
                break
            del failures[bucket]
