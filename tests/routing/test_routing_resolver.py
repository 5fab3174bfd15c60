"""``ModelResolver``: one test per rule of ``resolver.py``'s docstring (and docs/routing.md)."""

from __future__ import annotations

from trioproxy.upstream.routing import Alias, ModelResolver, infer_providers

from .routing_helpers import dep


def resolver(*candidates, aliases=None):
    return ModelResolver(candidates, aliases or {})


def test_exact_name_is_its_group_in_config_order():
    r = resolver(dep("a", "gpt-4o"), dep("x", "other"), dep("b", "gpt-4o"))
    route = r.resolve("gpt-4o")
    assert route.via == "exact" and route.group == "gpt-4o"
    assert [c.target for c in route.candidates] == ["a", "b"]


def test_exact_name_wins_over_an_alias_and_a_pattern():
    r = resolver(dep("a", "gpt-4o"), dep("b", "other"), dep("w", "*", "*"),
                 aliases={"gpt-4o": Alias("other")})
    assert r.resolve("gpt-4o").via == "exact"


def test_alias_resolves_to_its_group_and_keeps_the_requested_name():
    r = resolver(dep("a", "gpt-4o"), aliases={"my-gpt": Alias("gpt-4o")})
    route = r.resolve("my-gpt")
    assert (route.via, route.requested, route.group) == ("alias", "my-gpt", "gpt-4o")
    assert [c.target for c in route.candidates] == ["a"]


def test_alias_wins_over_a_pattern():
    r = resolver(dep("a", "gpt-4o"), dep("w", "*", "*"), aliases={"fast": Alias("gpt-4o")})
    assert r.resolve("fast").group == "gpt-4o"


def test_alias_may_point_at_a_name_a_wildcard_serves():
    r = resolver(dep("w", "openai/*", "openai/*"), aliases={"best": Alias("openai/gpt-4o")})
    route = r.resolve("best")
    assert route.via == "alias" and route.candidates[0].model == "openai/gpt-4o"


def test_aliases_do_not_chain():
    r = resolver(dep("a", "gpt-4o"), aliases={"one": Alias("two"), "two": Alias("gpt-4o")})
    assert r.resolve("two").group == "gpt-4o"
    assert r.resolve("one") is None


def test_hidden_alias_works_but_is_not_listed():
    r = resolver(dep("a", "gpt-4o"), aliases={"GPT-4o": Alias("gpt-4o", hidden=True), "shown": Alias("gpt-4o")})
    assert r.resolve("GPT-4o").group == "gpt-4o"
    assert r.visible_model_names() == ["gpt-4o", "shown"]


def test_models_list_has_exact_groups_then_visible_aliases_and_no_patterns():
    r = resolver(dep("w", "openai/*", "openai/*"), dep("a", "b-model"), dep("c", "a-model"),
                 aliases={"z": Alias("a-model")})
    assert r.visible_model_names() == ["b-model", "a-model", "z"]
    assert r.wildcard_patterns() == ["openai/*"]


def test_provider_wildcard_substitutes_the_matched_text_into_the_model():
    r = resolver(dep("w", "openai/*", "openai/*"))
    route = r.resolve("openai/gpt-4o-mini")
    assert route.via == "wildcard" and route.group == "openai/*"
    assert route.candidates[0].model == "openai/gpt-4o-mini"


def test_bare_name_is_tried_with_its_inferred_provider():
    r = resolver(dep("o", "openai/*", "openai/*"), dep("a", "anthropic/*", "anthropic/*"))
    assert r.resolve("gpt-4o").candidates[0].model == "openai/gpt-4o"
    assert r.resolve("claude-3-5-sonnet").candidates[0].model == "anthropic/claude-3-5-sonnet"


def test_infer_providers_table():
    assert infer_providers("gpt-4o") == ("openai",)
    assert infer_providers("claude-3-opus") == ("anthropic", "openai")
    assert infer_providers("gemini-1.5-pro")[0] == "gemini"
    assert infer_providers("openai/gpt-4o") == ()


def test_a_pattern_matching_the_name_as_written_wins_over_provider_inference():
    r = resolver(dep("o", "openai/*", "openai/*"), dep("all", "*", "*"))
    route = r.resolve("gpt-4o")
    assert route.group == "*" and route.candidates[0].model == "gpt-4o"


def test_catch_all_passes_the_name_through_or_into_its_model():
    assert resolver(dep("w", "*", "*")).resolve("groq/llama3").candidates[0].model == "groq/llama3"
    assert resolver(dep("w", "*", "openai/*")).resolve("llama3").candidates[0].model == "openai/llama3"


def test_most_literal_characters_win_then_config_order():
    r = resolver(dep("all", "*", "*"), dep("oa", "openai/*", "openai/*"),
                 dep("g4", "openai/gpt-4*", "openai/gpt-4*"), dep("g4b", "openai/gpt-4*", "openai/gpt-4*"))
    assert r.resolve("openai/gpt-4o").group == "openai/gpt-4*"
    assert [c.target for c in r.resolve("openai/gpt-4o").candidates] == ["g4", "g4b"]
    assert r.resolve("openai/o1").group == "openai/*"
    assert r.resolve("mistral/x").group == "*"
    tie = resolver(dep("first", "a/*", "a/*"), dep("second", "*/b", "*/b"))
    assert tie.resolve("a/b").group == "a/*"


def test_several_stars_map_in_order_and_fewer_model_stars_take_the_last_matches():
    r = resolver(dep("s", "llmengine/fo::*::static::*", "openai/fo::*::static::*"))
    assert r.resolve("llmengine/fo::bar::static::baz").candidates[0].model == "openai/fo::bar::static::baz"
    meta = resolver(dep("m", "*meta.llama3*", "bedrock/meta.llama3*"))
    assert meta.resolve("hello-meta.llama3-70b").candidates[0].model == "bedrock/meta.llama3-70b"


def test_a_model_without_star_is_sent_as_written():
    r = resolver(dep("fixed", "team-*", "openai/gpt-4o-mini"))
    assert r.resolve("team-anything").candidates[0].model == "openai/gpt-4o-mini"


def test_requested_names_with_a_star_and_unknown_names_resolve_to_nothing():
    r = resolver(dep("w", "openai/*", "openai/*"), dep("a", "gpt-4o"))
    assert r.resolve("openai/*") is None
    assert r.resolve("*") is None
    assert r.resolve("mistral/large") is None


def test_each_wildcard_model_has_its_own_health_key():
    r = resolver(dep("w", "openai/*", "openai/*"))
    a, b = r.resolve("openai/gpt-4o").candidates[0], r.resolve("openai/o1").candidates[0]
    assert a.id == b.id == "w" and a.key != b.key
    assert r.resolve("openai/gpt-4o").identity != r.resolve("openai/o1").identity


def test_fallback_keys_are_requested_name_alias_target_and_names_without_provider():
    r = resolver(dep("a", "gpt-4o"), dep("w", "openai/*", "openai/*"),
                 aliases={"fast": Alias("gpt-4o"), "best": Alias("openai/o3")})
    assert r.resolve("gpt-4o").fallback_keys == ("gpt-4o",)
    assert r.resolve("fast").fallback_keys == ("fast", "gpt-4o")
    assert r.resolve("openai/o1").fallback_keys == ("openai/o1", "o1")
    assert r.resolve("best").fallback_keys == ("best", "openai/o3", "o3")


def test_an_alias_to_a_wildcard_model_is_the_same_group_as_that_model_not_the_pattern():
    r = resolver(dep("w", "openai/*", "openai/*"), aliases={"best": Alias("openai/o3")})
    assert r.resolve("best").identity == r.resolve("openai/o3").identity != r.resolve("openai/o1").identity
