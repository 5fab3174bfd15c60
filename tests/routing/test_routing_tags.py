"""``TagFilter`` and ``request_tags``: one test per row of ``tags.py``'s table."""

from __future__ import annotations

from trioproxy.upstream.routing import TagFilter, request_tags

from .routing_helpers import dep

FREE, PAID, DEFAULT, BOTH = (dep("free", tags=("free",)), dep("paid", tags=("paid",)),
                             dep("default", tags=("default",)), dep("both", tags=("free", "paid")))
PLAIN = dep("plain")


def ids(cands):
    return [c.id for c in cands]


def test_off_by_default_every_deployment_serves():
    assert ids(TagFilter().filter([FREE, PAID, PLAIN], ["free"])) == ["free", "paid", "plain"]


def test_tagged_request_goes_to_deployments_with_any_of_its_tags():
    f = TagFilter(enabled=True)
    assert ids(f.filter([FREE, PAID, DEFAULT, BOTH], ["paid"])) == ["paid", "both"]
    assert ids(f.filter([FREE, PAID, DEFAULT], ["paid", "other"])) == ["paid"]


def test_match_all_needs_every_request_tag():
    f = TagFilter(enabled=True, match_any=False)
    assert ids(f.filter([FREE, PAID, BOTH], ["free", "paid"])) == ["both"]


def test_tagged_request_without_a_match_goes_to_default_deployments():
    assert ids(TagFilter(enabled=True).filter([FREE, DEFAULT, PLAIN], ["gold"])) == ["default"]


def test_tagged_request_without_a_match_or_default_has_no_deployment():
    assert TagFilter(enabled=True).filter([FREE, PAID, PLAIN], ["gold"]) == []


def test_untagged_request_goes_to_default_deployments():
    assert ids(TagFilter(enabled=True).filter([FREE, DEFAULT, PLAIN], [])) == ["default"]


def test_untagged_request_without_defaults_goes_anywhere():
    assert ids(TagFilter(enabled=True).filter([FREE, PLAIN], [])) == ["free", "plain"]


def test_request_tags_from_body_metadata_and_header_without_repeats():
    body = {"tags": ["a", "b"], "metadata": {"tags": ["b", "c"]}}
    assert request_tags(body, {"X-LiteLLM-Tags": "c, d ,,e"}) == ("a", "b", "c", "d", "e")
    assert request_tags({"tags": "solo"}) == ("solo",)
    assert request_tags({"tags": [1, None, "ok"], "metadata": "not a mapping"}) == ("ok",)
    assert request_tags({}) == ()


def test_tag_regex_matches_the_user_agent_like_a_tag():
    """LiteLLM's ``tag_regex`` (tag_routing.md): Claude Code's traffic to its own deployment,
    everything else to the ``default`` one."""
    import re

    from trioproxy.upstream.routing import Candidate, DeploymentRouting

    code = Candidate("code", "g", "openai/x", DeploymentRouting(id="code", tag_regex=(re.compile(r"^User-Agent: claude-code\/"),)), "code")
    regular = dep("regular", tags=("default",))
    f = TagFilter(enabled=True)
    assert [c.target for c in f.filter([code, regular], (), "claude-code/1.0.3 (external, cli)")] == ["code"]
    assert [c.target for c in f.filter([code, regular], (), "OpenAI/Python 1.50")] == ["regular"]
    assert [c.target for c in f.filter([code, regular], ())] == ["regular"]
    # a request tag matching another deployment, and the agent matching this one: both qualify
    tagged = dep("tagged", tags=("team-a",))
    assert {c.target for c in f.filter([code, tagged, regular], ("team-a",), "claude-code/2")} == {"code", "tagged"}
    # strict tags: a deployment with plain tags must match by them, its pattern does not count
    both = Candidate("both", "g", "openai/y", DeploymentRouting(id="both", tags=frozenset({"x"}),
                     tag_regex=(re.compile("claude-code"),)), "both")
    assert TagFilter(enabled=True, match_any=False).filter([both], (), "claude-code/2") == []
    assert TagFilter(enabled=False).filter([code, regular], (), "anything") == [code, regular]
