"""Fallbacks: which model groups to try when a whole group failed.

A group *failed* when its attempts (its own ``num_retries``) ended in an error, or when none of its
deployments could take the request (tags, cooldowns, rpm/tpm limits). Its fallback list is then:

======================================  ===============================================================
the group's last error                  fallback list (the first that exists)
======================================  ===============================================================
context window exceeded                 its ``context_window_fallbacks`` entry, else the general list
content policy violation                its ``content_policy_fallbacks`` entry, else the general list
anything else                           the general list
======================================  ===============================================================

* **General list**: the request's own ``fallbacks`` (client-side fallbacks) when it sent some; else
  the group's ``fallbacks`` entry; else ``default_fallbacks``.
* **A group's entry**: ``[{"gpt-4o": ["gpt-4o-mini", "claude"]}]`` — looked up by the name the client
  asked for, then the group it resolved to (for an alias), then the asked name without its
  ``provider/`` prefix (``openai/gpt-4o`` finds ``gpt-4o``, as LiteLLM does for wildcards), then the
  entry ``"*"``.
* **Depth first**: a fallback group that fails has its own fallbacks tried before the rest of the
  list it came from (LiteLLM recurses the same way).
* **Never twice, never in a loop**: a group already tried (or skipped) in this request is skipped;
  names that lead nowhere are skipped.
* **Bounded**: at most ``max_fallbacks`` (default 5) fallback groups per request, each with its own
  retries; so a request makes at most ``(1 + max_fallbacks) × (1 + num_retries)`` attempts (plus one
  last-resort attempt on a cooling deployment, ``plan.py``).
* **Before the first byte only**: once a byte of the answer reached the client nothing is tried
  again (the plan is told ``first_byte_sent``). ``disable_fallbacks: true`` in a request turns them off.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from .classify import FallbackKind

__all__ = ["FallbackPlanner", "FallbackSettings", "FallbackWalk"]

_EMPTY: Mapping[str, tuple[str, ...]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class FallbackSettings:
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY)
    context_window_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY)
    content_policy_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _EMPTY)
    default_fallbacks: tuple[str, ...] = ()
    max_fallbacks: int = 5


def _lookup(table: Mapping[str, tuple[str, ...]], keys: Sequence[str]) -> tuple[str, ...] | None:
    for key in keys:
        if key in table:
            return table[key]
    return table.get("*")


class FallbackPlanner:
    """The lists (pure); :class:`FallbackWalk` is one request's way through them."""

    def __init__(self, settings: FallbackSettings | None = None) -> None:
        self.settings = settings or FallbackSettings()

    def targets(self, keys: Sequence[str], kind: FallbackKind,
                request_fallbacks: Sequence[str] | None = None) -> tuple[str, ...]:
        s = self.settings
        special = {FallbackKind.CONTEXT_WINDOW: s.context_window_fallbacks,
                   FallbackKind.CONTENT_POLICY: s.content_policy_fallbacks}.get(kind)
        if special is not None:
            found = _lookup(special, keys)
            if found is not None:
                return found
        if request_fallbacks is not None:
            return tuple(request_fallbacks)
        found = _lookup(s.fallbacks, keys)
        return found if found is not None else s.default_fallbacks

    def walk(self, *, disabled: bool = False, request_fallbacks: Sequence[str] | None = None) -> FallbackWalk:
        return FallbackWalk(self, disabled=disabled, request_fallbacks=request_fallbacks)


class FallbackWalk:
    """Depth first through the fallback lists of the groups that failed in one request.

    The plan calls :meth:`push` when a group failed, then :meth:`next_name` for a candidate name,
    and :meth:`took` when it actually enters that group (names it skips — already tried, unknown —
    do not count toward ``max_fallbacks``).
    """

    def __init__(self, planner: FallbackPlanner, *, disabled: bool = False,
                 request_fallbacks: Sequence[str] | None = None) -> None:
        self._planner = planner
        self._disabled = disabled
        self._request_fallbacks = tuple(request_fallbacks) if request_fallbacks is not None else None
        self._stack: list[Iterator[str]] = []
        self.taken = 0

    def push(self, keys: Sequence[str], kind: FallbackKind) -> None:
        if not self._disabled:
            self._stack.append(iter(self._planner.targets(keys, kind, self._request_fallbacks)))

    def next_name(self) -> str | None:
        if self.taken >= self._planner.settings.max_fallbacks:
            return None
        while self._stack:
            name = next(self._stack[-1], None)
            if name is not None:
                return name
            self._stack.pop()
        return None

    def took(self) -> None:
        self.taken += 1
