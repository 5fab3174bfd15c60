"""A requested model name → the model group and the deployments that may serve it.

Rules, in the order they are tried (the first that applies wins):

1. **Exact**: a ``model_name`` without ``*`` equal to the requested name.
2. **Alias**: ``router_settings.model_group_alias`` maps the name to a group, which is then looked up
   by rules 1 and 3 (an alias never points at another alias: no chains, no loops). An alias is
   ``"alias": "group"`` or ``"alias": {"model": "group", "hidden": true}``; a hidden alias works but
   is not listed by ``GET /v1/models``.
3. **Wildcard**: a ``model_name`` with ``*`` (``"*"``, ``"openai/*"``, ``"fo::*::static::*"``) whose
   pattern matches the whole requested name, each ``*`` matching any text (``/`` included). The most
   specific pattern wins: the most literal characters, then the earlier in ``model_list``. When no
   pattern matches a bare name (no ``provider/``), the name is tried again with the providers it
   probably belongs to (:func:`infer_providers`: ``gpt-4o`` → ``openai/gpt-4o``, ``claude-…`` →
   ``anthropic/claude-…``), so ``openai/*`` serves ``gpt-4o`` as in LiteLLM.

   Each ``*`` of a deployment's ``litellm_params.model`` takes the text its pattern's ``*`` matched:
   ``model_name: openai/*`` + ``model: openai/*`` sends ``openai/gpt-4o`` for ``openai/gpt-4o`` (and
   for ``gpt-4o``); ``model_name: "*"`` + ``model: "*"`` passes the requested name through. When the
   model has fewer ``*`` than its pattern, the last matches fill them (``"*meta.llama3*"`` +
   ``bedrock/meta.llama3*`` sends ``bedrock/meta.llama3-70b`` for ``hello-meta.llama3-70b``); a model
   without ``*`` is sent as written. A requested name containing ``*`` never matches a pattern.

``GET /v1/models`` lists the exact groups (config order), then the visible aliases; wildcard patterns
are not listed (a client cannot call ``openai/*``): :meth:`ModelResolver.wildcard_patterns` gives
them to ``/model/info``, which may expand them from the price table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Literal

from .types import Candidate, T

__all__ = ["Alias", "ModelResolver", "Route", "WildcardPattern", "infer_providers", "substitute"]


@dataclass(frozen=True, slots=True)
class Alias:
    target: str
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class Route(Generic[T]):
    """Where a requested name leads. ``group`` is the ``model_name`` served (the pattern, for a
    wildcard match); ``candidates`` the deployments, substituted for wildcards."""

    requested: str
    group: str
    candidates: tuple[Candidate[T], ...]
    via: Literal["exact", "alias", "wildcard"]
    #: the name the group was found by: the alias's target for an alias, else the requested name
    name: str = ""

    @property
    def identity(self) -> str:
        """What makes two routes the same group for "never try a group twice": the group name, or for
        a wildcard the model asked for (two models through ``openai/*`` are different upstreams)."""
        return f"{self.group}\x00{self.candidates[0].model}" if "*" in self.group else self.group

    @property
    def fallback_keys(self) -> tuple[str, ...]:
        """The names a ``{"name": [...]}`` fallback entry may use for this route, most specific
        first: the requested name, the name it resolved through (an alias's target), and those names
        without their ``provider/`` prefix (LiteLLM's rule for wildcard groups)."""
        names = [self.requested, self.name or self.requested]
        keys = names + [bare for n in names if (bare := n.partition("/")[2])]
        return tuple(dict.fromkeys(keys))


#: bare-name prefixes → the providers a name probably belongs to (only used to find a wildcard)
_PROVIDER_PREFIXES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("claude",), ("anthropic",)),
    (("gemini", "gemma"), ("gemini", "vertex_ai")),
    (("mistral", "codestral", "magistral", "ministral", "pixtral", "open-mistral"), ("mistral",)),
    (("command",), ("cohere",)),
    (("grok",), ("xai",)),
    (("deepseek",), ("deepseek",)),
)


def infer_providers(name: str) -> tuple[str, ...]:
    """The providers a bare model name probably belongs to, most likely first (``openai`` last:
    trioproxy reads a bare name as an OpenAI one, as the config does)."""
    if "/" in name:
        return ()
    lowered = name.lower()
    for prefixes, providers in _PROVIDER_PREFIXES:
        if lowered.startswith(prefixes):
            return (*providers, "openai")
    return ("openai",)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("(.*)".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def substitute(model: str, matched: Sequence[str]) -> str:
    """Put the text each ``*`` of the pattern matched into the ``*`` of ``model`` (last ones first
    when ``model`` has fewer)."""
    stars = model.count("*")
    if not stars:
        return model
    fill = list(matched[-stars:]) if len(matched) >= stars else list(matched)
    parts = model.split("*")
    out = [parts[0]]
    for i, part in enumerate(parts[1:]):
        out.append(fill[i] if i < len(fill) else "*")
        out.append(part)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class WildcardPattern(Generic[T]):
    pattern: str
    regex: re.Pattern[str]
    candidates: tuple[Candidate[T], ...]
    position: int           # first appearance in model_list

    @property
    def specificity(self) -> tuple[int, int]:
        return (len(self.pattern) - self.pattern.count("*"), -self.position)


class ModelResolver(Generic[T]):
    """Built once from every candidate and the aliases; :meth:`resolve` is a dict lookup for exact
    names and aliases, a scan of the (few) patterns otherwise."""

    def __init__(self, candidates: Iterable[Candidate[T]], aliases: Mapping[str, Alias] | None = None,
                 infer: Callable[[str], tuple[str, ...]] = infer_providers) -> None:
        self._groups: dict[str, list[Candidate[T]]] = {}
        patterns: dict[str, list[Candidate[T]]] = {}
        positions: dict[str, int] = {}
        for position, candidate in enumerate(candidates):
            bucket = patterns if "*" in candidate.group else self._groups
            bucket.setdefault(candidate.group, []).append(candidate)
            positions.setdefault(candidate.group, position)
        self._patterns = sorted(
            (WildcardPattern(name, _pattern_regex(name), tuple(group), positions[name])
             for name, group in patterns.items()),
            key=lambda p: p.specificity, reverse=True)
        self._aliases = dict(aliases or {})
        self._infer = infer

    # -- lookups ---------------------------------------------------------------------------------

    def resolve(self, name: str) -> Route[T] | None:
        exact = self._groups.get(name)
        if exact:
            return Route(name, name, tuple(exact), "exact", name)
        alias = self._aliases.get(name)
        if alias is not None:
            target = self._groups.get(alias.target)
            if target:
                return Route(name, alias.target, tuple(target), "alias", alias.target)
            matched = self._match(alias.target)
            return replace(matched, requested=name, via="alias") if matched else None
        return self._match(name)

    def _match(self, name: str) -> Route[T] | None:
        if "*" in name:
            return None
        for attempt in (name, *(f"{provider}/{name}" for provider in self._infer(name))):
            for pattern in self._patterns:
                found = pattern.regex.fullmatch(attempt)
                if found is None:
                    continue
                groups = found.groups()
                candidates = tuple(
                    replace(c, model=(model := substitute(c.model, groups)),
                            key=f"{c.routing.id}:{model}")
                    for c in pattern.candidates)
                return Route(name, pattern.pattern, candidates, "wildcard", name)
        return None

    # -- listings --------------------------------------------------------------------------------

    @property
    def group_names(self) -> list[str]:
        """Every exact ``model_name``, in config order."""
        return list(self._groups)

    @property
    def aliases(self) -> dict[str, Alias]:
        return dict(self._aliases)

    def wildcard_patterns(self) -> list[str]:
        """The patterns, most specific first (the order they are tried in)."""
        return [p.pattern for p in self._patterns]

    def visible_model_names(self) -> list[str]:
        """What ``GET /v1/models`` lists: exact groups, then aliases not marked ``hidden``."""
        names = list(self._groups)
        names += [alias for alias, spec in self._aliases.items() if not spec.hidden and alias not in self._groups]
        return names
