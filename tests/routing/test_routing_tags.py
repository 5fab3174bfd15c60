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
