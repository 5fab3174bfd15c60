"""``FallbackPlanner`` / ``FallbackWalk``: one test per rule of ``fallbacks.py``'s table and list."""

from __future__ import annotations

from trioproxy.upstream.routing import FallbackKind, FallbackPlanner, FallbackSettings

GENERAL, CW, CP = FallbackKind.GENERAL, FallbackKind.CONTEXT_WINDOW, FallbackKind.CONTENT_POLICY


def planner(**settings):
    return FallbackPlanner(FallbackSettings(**settings))


def test_general_list_by_the_requested_name():
    p = planner(fallbacks={"gpt-4o": ("mini", "claude")})
    assert p.targets(("gpt-4o",), GENERAL) == ("mini", "claude")
    assert p.targets(("other",), GENERAL) == ()


def test_entry_found_by_alias_group_then_name_without_provider():
    p = planner(fallbacks={"gpt-4o": ("mini",), "fast": ("claude",)})
    assert p.targets(("fast", "gpt-4o"), GENERAL) == ("claude",)      # the requested name first
    assert p.targets(("my-alias", "gpt-4o"), GENERAL) == ("mini",)    # then the alias's group
    assert p.targets(("openai/gpt-4o", "gpt-4o"), GENERAL) == ("mini",)


def test_star_entry_then_default_fallbacks_for_any_model():
    assert planner(fallbacks={"*": ("safe",)}).targets(("x",), GENERAL) == ("safe",)
    p = planner(fallbacks={"gpt-4o": ("mini",)}, default_fallbacks=("safe",))
    assert p.targets(("x",), GENERAL) == ("safe",)
    assert p.targets(("gpt-4o",), GENERAL) == ("mini",)               # a model's own entry wins


def test_context_window_uses_its_own_list_else_the_general_one():
    p = planner(fallbacks={"small": ("other",)}, context_window_fallbacks={"small": ("large",)})
    assert p.targets(("small",), CW) == ("large",)
    assert planner(fallbacks={"small": ("other",)}).targets(("small",), CW) == ("other",)
    assert planner(context_window_fallbacks={"x": ("y",)}, default_fallbacks=("d",)).targets(("small",), CW) == ("d",)


def test_content_policy_uses_its_own_list_else_the_general_one():
    p = planner(fallbacks={"azure": ("other",)}, content_policy_fallbacks={"azure": ("claude",)})
    assert p.targets(("azure",), CP) == ("claude",)
    assert p.targets(("azure",), CW) == ("other",)


def test_request_fallbacks_replace_the_general_list_not_the_special_ones():
    p = planner(fallbacks={"a": ("b",)}, context_window_fallbacks={"a": ("big",)}, default_fallbacks=("d",))
    assert p.targets(("a",), GENERAL, request_fallbacks=("mine",)) == ("mine",)
    assert p.targets(("a",), CW, request_fallbacks=("mine",)) == ("big",)


def test_walk_is_depth_first():
    p = planner(fallbacks={"a": ("b", "c"), "b": ("d",)})
    walk = p.walk()
    walk.push(("a",), GENERAL)
    assert walk.next_name() == "b"
    walk.took()
    walk.push(("b",), GENERAL)                 # b failed: its own fallbacks before the rest of a's
    assert walk.next_name() == "d"
    walk.took()
    walk.push(("d",), GENERAL)
    assert walk.next_name() == "c"
    walk.took()
    assert walk.next_name() is None


def test_walk_is_bounded_by_max_fallbacks_counting_only_groups_entered():
    walk = planner(fallbacks={"a": ("b", "c", "d", "e")}, max_fallbacks=2).walk()
    walk.push(("a",), GENERAL)
    assert walk.next_name() == "b"             # skipped by the plan (say, already tried): not counted
    assert walk.next_name() == "c"
    walk.took()
    assert walk.next_name() == "d"
    walk.took()
    assert walk.next_name() is None


def test_disabled_walk_offers_nothing():
    walk = planner(fallbacks={"a": ("b",)}, default_fallbacks=("d",)).walk(disabled=True)
    walk.push(("a",), GENERAL)
    assert walk.next_name() is None
