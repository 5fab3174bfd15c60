"""Cooldowns: a deployment that keeps failing is left alone for a while.

=============================================  =========  ============================================
failure (``classify.ErrorKind``)               counted?   effect
=============================================  =========  ============================================
429 rate limited, 401/403 credentials,         yes        cooldown at once: sending it more requests
402 out of credit                                         now cannot succeed
connection error, timeout (408/504), other     yes        cooldown when more than ``allowed_fails``
5xx, 404                                                  counted failures fall within the last
                                                          :data:`WINDOW` (60) seconds
context window, content policy, other 4xx      no         the request's fault, not the deployment's
an abandoned attempt (client left)             no
=============================================  =========  ============================================

* ``allowed_fails`` defaults to 3 and ``cooldown_time`` to 5 seconds (LiteLLM's defaults). A
  deployment's own ``litellm_params.cooldown_time`` overrides the router's; ``0`` means that
  deployment never cools down; ``disable_cooldowns: true`` turns cooldowns off.
* A cooldown ends ``cooldown_time`` seconds after it started; the failures counted before it are
  forgotten, so a recovered deployment starts with a clean slate. A success does not erase earlier
  failures: the window does.
* What happens when every deployment of a group is cooling down is the plan's rule (``plan.py``):
  fallbacks first; if none can answer, one attempt on the deployment whose cooldown ends first.

State is this process's (in memory). Keys are the candidates' ``key`` (deployment id; id and model
for a wildcard match).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .classify import ErrorKind
from .types import Clock, SystemClock

__all__ = ["COUNTED", "IMMEDIATE", "WINDOW", "CooldownSettings", "Cooldowns"]

#: seconds over which failures are counted against ``allowed_fails``
WINDOW = 60.0
#: failure records kept before the stale ones (no failure within ``WINDOW``) are dropped: a wildcard
#: gives each model a client names its own key, so keys are as many as clients invent
PRUNE_AT = 4096

IMMEDIATE = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.AUTH, ErrorKind.PAYMENT})
COUNTED = IMMEDIATE | {ErrorKind.CONNECTION, ErrorKind.TIMEOUT, ErrorKind.SERVER, ErrorKind.NOT_FOUND}


@dataclass(frozen=True, slots=True)
class CooldownSettings:
    allowed_fails: int = 3
    cooldown_time: float = 5.0
    disabled: bool = False


class Cooldowns:
    def __init__(self, settings: CooldownSettings | None = None, clock: Clock | None = None) -> None:
        self.settings = settings or CooldownSettings()
        self._clock = clock or SystemClock()
        self._failures: dict[str, deque[float]] = {}
        self._until: dict[str, float] = {}
        self._prune_at = PRUNE_AT

    def record_failure(self, key: str, kind: ErrorKind | None, *, cooldown_time: float | None = None) -> bool:
        """Count a failure of deployment ``key``; True when it starts a cooldown now."""
        if kind not in COUNTED or self.settings.disabled:
            return False
        duration = self.settings.cooldown_time if cooldown_time is None else cooldown_time
        if duration <= 0:
            return False
        now = self._clock.monotonic()
        if self.is_cooling(key):
            return False
        failures = self._failures.setdefault(key, deque())
        failures.append(now)
        while failures and failures[0] <= now - WINDOW:
            failures.popleft()
        if len(self._failures) > self._prune_at:
            self._prune(now)
        if kind in IMMEDIATE or len(failures) > self.settings.allowed_fails:
            self._until[key] = now + duration
            del self._failures[key]
            return True
        return False

    def _prune(self, now: float) -> None:
        """Drop the records without a failure in the window (and ended cooldowns). Amortised: the
        next prune waits until the records have doubled, so memory stays within twice the keys that
        failed in the last ``WINDOW`` seconds."""
        self._failures = {k: f for k, f in self._failures.items() if f and f[-1] > now - WINDOW}
        self._until = {k: until for k, until in self._until.items() if until > now}
        self._prune_at = max(PRUNE_AT, 2 * len(self._failures))

    def cooling_until(self, key: str) -> float | None:
        """The monotonic time its cooldown ends, or None when it is not cooling down."""
        until = self._until.get(key)
        if until is None:
            return None
        if until <= self._clock.monotonic():
            del self._until[key]
            return None
        return until

    def is_cooling(self, key: str) -> bool:
        return self.cooling_until(key) is not None

    def remaining(self, key: str) -> float:
        until = self.cooling_until(key)
        return 0.0 if until is None else until - self._clock.monotonic()

    def cooling(self) -> dict[str, float]:
        """Every deployment cooling down now → seconds left (for ``/health`` and logs)."""
        return {key: self.remaining(key) for key in list(self._until) if self.is_cooling(key)}
