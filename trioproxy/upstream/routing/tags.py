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

    def filter(self, candidates: Sequence[Candidate], tags: Sequence[str]) -> list[Candidate]:
        """The candidates that may serve a request with ``tags`` (empty: none may)."""
        if not self.enabled:
            return list(candidates)
        defaults = [c for c in candidates if "default" in c.routing.tags]
        if not tags:
            return defaults or list(candidates)
        wanted = set(tags)
        if self.match_any:
            matching = [c for c in candidates if c.routing.tags & wanted]
        else:
            matching = [c for c in candidates if wanted <= c.routing.tags]
        return matching or defaults
