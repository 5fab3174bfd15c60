"""Tag-based routing: a request's tags choose among a group's deployments.

Off unless ``router_settings.enable_tag_filtering: true``. Then, for each group a request reaches:

==========================================  ====================================================
the request…                                is served by
==========================================  ====================================================
has tags, some deployments match them       those deployments (match: with
                                            ``tag_filtering_match_any: true``, the default, a
                                            deployment carrying any of the request's tags; with
                                            ``false``, one carrying all of them)
has tags, none match, some are ``default``  the deployments tagged ``default``
has tags, none match, no ``default``        nobody: ``NoDeploymentsForTagsError`` (400), which
                                            starts fallbacks like any failure of the group
has no tags, some deployments ``default``   the deployments tagged ``default``
has no tags, no ``default``                 every deployment
==========================================  ====================================================

**``tag_regex``** (LiteLLM's, on a deployment's ``litellm_params``): regular expressions searched in
``User-Agent: <the request's User-Agent header>``. A deployment whose pattern matches is chosen as
if its tags had matched (``^User-Agent: claude-code/`` sends Claude Code's traffic to it), so a
request with a user agent counts as "has tags" when some deployment of the group has ``tag_regex``.
With ``tag_filtering_match_any: false`` a deployment that also has plain tags must match by tags
(its pattern cannot get around the strict policy), as in LiteLLM.

A request's tags (:func:`request_tags`) are the union of the body's ``tags``, ``metadata.tags`` and
the ``x-litellm-tags`` header (comma-separated), in that order, without repeats; the wiring adds the
key's and team's tags. Filtering happens before cooldowns and strategies see the candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .types import Candidate

__all__ = ["TagFilter", "request_tags"]

TAGS_HEADER = "x-litellm-tags"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str) and item]
    return []


def request_tags(body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> tuple[str, ...]:
    tags = _strings(body.get("tags"))
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping):
        tags += _strings(metadata.get("tags"))
    if headers:
        raw = next((v for k, v in headers.items() if k.lower() == TAGS_HEADER), "")
        tags += [part.strip() for part in raw.split(",") if part.strip()]
    return tuple(dict.fromkeys(tags))


class TagFilter:
    def __init__(self, enabled: bool = False, match_any: bool = True) -> None:
        self.enabled = enabled
        self.match_any = match_any

    def filter(self, candidates: Sequence[Candidate], tags: Sequence[str],
               user_agent: str | None = None) -> list[Candidate]:
        """The candidates that may serve a request with ``tags`` (empty: none may)."""
        if not self.enabled:
            return list(candidates)
        defaults = [c for c in candidates if "default" in c.routing.tags]
        header = f"User-Agent: {user_agent}" if user_agent else None
        by_regex = header is not None and any(c.routing.tag_regex for c in candidates)
        if not tags and not by_regex:
            return defaults or list(candidates)
        wanted = set(tags)

        def by_tags(c: Candidate) -> bool:
            if not wanted or not c.routing.tags:
                return False
            return bool(c.routing.tags & wanted) if self.match_any else wanted <= c.routing.tags

        def by_pattern(c: Candidate) -> bool:
            if header is None or not c.routing.tag_regex or (not self.match_any and c.routing.tags):
                return False
            return any(p.search(header) for p in c.routing.tag_regex)

        matching = [c for c in candidates if by_tags(c) or by_pattern(c)]
        return matching or defaults
