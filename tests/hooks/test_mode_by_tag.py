"""The tags a guardrail's ``mode: {tags: …, default: …}`` is matched against (``scheduler.mode_tags``)."""

from __future__ import annotations

from trioproxy.hooks.scheduler import mode_tags


def test_user_agent_body_metadata_and_header_tags() -> None:
    tags = mode_tags({"tags": ["a"], "metadata": {"tags": ["b", 3]}},
                     {"User-Agent": "claude-cli/1.0.3 (external, cli)", "x-litellm-tags": "c, d"})
    assert tags == {"a", "b", "c", "d", "User-Agent: claude-cli", "User-Agent: claude-cli/1.0.3 (external, cli)"}


def test_nothing_to_match() -> None:
    assert mode_tags({"metadata": None}, None) == set()
