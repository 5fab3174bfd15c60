"""``parse_routing_config``: the validated shapes, and one test per kind of problem it reports."""

from __future__ import annotations

import pytest

from trioproxy.upstream.routing import (
    Alias,
    LatencyArgs,
    RoutingConfig,
    RoutingSettings,
    parse_routing_config,
)

MODELS = [
    {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "rpm": 100, "tags": ["paid"]}},
    {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "weight": 2, "order": 1,
                                                "tpm": 5000, "cooldown_time": 30, "max_retries": 1},
     "model_info": {"id": "primary"}},
    {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini"}, "tpm": 900},
    {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-3-5-sonnet"}, "model_info": {"rpm": 7}},
]
WILDCARD = {"model_name": "openai/*", "litellm_params": {"model": "openai/*"}}


def ok(router=None, models=MODELS, litellm=None) -> RoutingConfig:
    result = parse_routing_config(router, models, litellm)
    assert isinstance(result, RoutingConfig), [str(p) for p in result]
    return result


def problems(router=None, models=MODELS, litellm=None) -> list[str]:
    result = parse_routing_config(router, models, litellm)
    assert isinstance(result, list), "expected problems"
    return [str(p) for p in result]


def warnings(config: RoutingConfig) -> list[str]:
    return [str(w) for w in config.warnings]


# -- valid shapes ----------------------------------------------------------------------------------

def test_nothing_set_gives_the_defaults():
    config = ok()
    assert config.settings == RoutingSettings()
    s = config.settings
    assert (s.routing_strategy, s.allowed_fails, s.cooldown_time, s.max_fallbacks, s.num_retries) == \
        ("simple-shuffle", 3, 5.0, 5, 2)


def test_every_router_setting_is_read():
    s = ok({
        "routing_strategy": "latency-based-routing",
        "routing_strategy_args": {"ttl": 60, "lowest_latency_buffer": 0.5, "max_latency_list_size": 4},
        "num_retries": 4, "timeout": 30, "allowed_fails": 1, "cooldown_time": "60",
        "disable_cooldowns": "false", "enable_tag_filtering": True, "tag_filtering_match_any": False,
        "max_fallbacks": 2,
        "model_group_alias": {"fast": "gpt-4o-mini", "GPT-4o": {"model": "gpt-4o", "hidden": True}},
        "fallbacks": [{"gpt-4o": ["gpt-4o-mini", "claude"]}, {"claude": "gpt-4o"}],
        "context_window_fallbacks": [{"gpt-4o-mini": ["gpt-4o"]}],
        "content_policy_fallbacks": [{"gpt-4o": ["claude"]}],
        "default_fallbacks": "claude",
    }).settings
    assert s.routing_strategy == "latency-based-routing"
    assert s.latency_args == LatencyArgs(ttl=60.0, lowest_latency_buffer=0.5, max_latency_list_size=4)
    assert (s.num_retries, s.timeout, s.allowed_fails, s.cooldown_time, s.max_fallbacks) == (4, 30.0, 1, 60.0, 2)
    assert (s.disable_cooldowns, s.enable_tag_filtering, s.tag_filtering_match_any) == (False, True, False)
    assert dict(s.model_group_alias) == {"fast": Alias("gpt-4o-mini"), "GPT-4o": Alias("gpt-4o", True)}
    assert dict(s.fallbacks) == {"gpt-4o": ("gpt-4o-mini", "claude"), "claude": ("gpt-4o",)}
    assert dict(s.context_window_fallbacks) == {"gpt-4o-mini": ("gpt-4o",)}
    assert dict(s.content_policy_fallbacks) == {"gpt-4o": ("claude",)}
    assert s.default_fallbacks == ("claude",)


def test_deployment_routing_keys_are_read_from_params_entry_and_model_info():
    d = ok().deployments
    assert (d[0].id, d[0].rpm, d[0].tags) == ("0", 100, frozenset({"paid"}))
    assert (d[1].id, d[1].weight, d[1].order, d[1].tpm, d[1].cooldown_time, d[1].max_retries) == \
        ("primary", 2.0, 1, 5000, 30.0, 1)
    assert d[2].tpm == 900 and d[3].rpm == 7 and d[3].id == "3"
    assert d[2].weight is None and d[2].rpm is None


def test_a_single_tag_may_be_a_string():
    models = [{"model_name": "m", "litellm_params": {"model": "openai/m", "tags": "free"}}]
    assert ok(models=models).deployments[0].tags == frozenset({"free"})


def test_routing_keys_from_litellm_settings_and_router_settings_wins():
    config = ok({"allowed_fails": 5}, litellm={"fallbacks": [{"gpt-4o": ["claude"]}], "allowed_fails": 1,
                                               "cooldown_time": 9, "num_retries": 6})
    s = config.settings
    assert dict(s.fallbacks) == {"gpt-4o": ("claude",)}
    assert (s.allowed_fails, s.cooldown_time, s.num_retries) == (5, 9.0, 6)
    assert any("litellm_settings.allowed_fails" in w and "wins" in w for w in warnings(config))


def test_fallbacks_may_name_models_a_wildcard_serves_and_star():
    config = ok({"fallbacks": [{"gpt-4.1": ["openai/o3"]}, {"*": ["gpt-4o"]}]}, models=[*MODELS, WILDCARD])
    assert dict(config.settings.fallbacks) == {"gpt-4.1": ("openai/o3",), "*": ("gpt-4o",)}
    assert config.warnings == ()


def test_a_name_only_a_wildcard_serves_but_close_to_a_model_name_is_a_warning():
    config = ok({"fallbacks": [{"gpt-4o": ["gpt-4o-mnii"]}]}, models=[*MODELS, WILDCARD])
    assert "router_settings.fallbacks[0].gpt-4o[0]: 'gpt-4o-mnii' is served only through the wildcard " \
           "'openai/*'; did you mean 'gpt-4o-mini'?" in warnings(config)


def test_usage_based_routing_v1_reads_as_v2_with_a_warning():
    config = ok({"routing_strategy": "usage-based-routing"})
    assert config.settings.routing_strategy == "usage-based-routing-v2"
    assert any("usage-based-routing-v2" in w for w in warnings(config))


def test_not_implemented_router_settings_are_warnings():
    config = ok({"redis_host": "localhost", "retry_policy": {"RateLimitErrorRetries": 3},
                 "enable_pre_call_checks": True, "cache_params": {"type": "redis", "max_connections": 100}})
    text = "\n".join(warnings(config))
    assert "router_settings.cache_params" in text and "did you mean" not in text
    # redis_host turns on the proxy's shared state (docs/deploy.md): accepted without a warning
    assert "router_settings.redis_host" not in text and "router_settings.cache_params: routing state" in text
    assert "router_settings.retry_policy: a LiteLLM router setting trioproxy does not implement" in text
    # implemented since (tests/routing/test_routing_pre_call.py): read, never a warning
    assert "router_settings.enable_pre_call_checks" not in text and config.settings.enable_pre_call_checks


def test_a_model_listed_as_its_own_fallback_is_dropped_with_a_warning():
    config = ok({"fallbacks": [{"gpt-4o": ["gpt-4o", "claude"]}]})
    assert dict(config.settings.fallbacks) == {"gpt-4o": ("claude",)}
    assert any("its own fallback" in w for w in warnings(config))


def test_args_of_another_strategy_are_a_warning():
    config = ok({"routing_strategy": "least-busy", "routing_strategy_args": {"lowest_latency_buffer": 1}})
    assert any("an argument of 'latency-based-routing'" in w for w in warnings(config))


# -- problems ---------------------------------------------------------------------------------------

def test_unknown_router_setting_suggests_the_closest_key():
    [p] = problems({"fallback": [{"gpt-4o": ["claude"]}]})
    assert p.startswith("router_settings.fallback: unknown key 'fallback'; did you mean 'fallbacks'?")


@pytest.mark.parametrize("strategy, message", [
    ("cost-based-routing", "'cost-based-routing' is not implemented by trioproxy"),
    ("least_busy", "did you mean 'least-busy'?"),
])
def test_routing_strategy_problems(strategy, message):
    [p] = problems({"routing_strategy": strategy})
    assert p.startswith("router_settings.routing_strategy:") and message in p


def test_unknown_fallback_target_and_key_suggest_a_model():
    found = problems({"fallbacks": [{"gpt-4o": ["gpt-4o-mnii"]}, {"clade": ["gpt-4o"]}]})
    assert "router_settings.fallbacks[0].gpt-4o[0]: 'gpt-4o-mnii' is not a model this proxy serves; " \
           "did you mean 'gpt-4o-mini'?" in found
    assert any(p.startswith("router_settings.fallbacks[1].clade: 'clade' is not a model") and "'claude'" in p
               for p in found)


def test_fallbacks_shape_problems():
    found = problems({"fallbacks": ["claude"], "context_window_fallbacks": "gpt-4o",
                      "content_policy_fallbacks": [{"gpt-4o": [3]}]})
    assert any(p.startswith("router_settings.fallbacks[0]: expected a mapping") and "default_fallbacks" in p
               for p in found)
    assert any(p.startswith("router_settings.context_window_fallbacks: expected a list") for p in found)
    assert "router_settings.content_policy_fallbacks[0].gpt-4o[0]: expected a model name, got 3" in found


def test_duplicate_fallback_key():
    [p] = problems({"fallbacks": [{"gpt-4o": ["claude"]}, {"gpt-4o": ["gpt-4o-mini"]}]})
    assert p.startswith("router_settings.fallbacks[1].gpt-4o: 'gpt-4o' already has a fallback list")


def test_default_fallbacks_must_be_served_models():
    [p] = problems({"default_fallbacks": ["claude", "gpt5"]})
    assert p.startswith("router_settings.default_fallbacks[1]: 'gpt5' is not a model")


def test_alias_problems():
    found = problems({"model_group_alias": {
        "gpt-4o": "claude",                                 # shadows a model_name
        "a": "b", "b": "gpt-4o",                             # chain
        "c": "gpt-4-o",                                      # unknown target
        "d": {"model": "claude", "hiden": True},             # unknown key
        "e": 5,
    }})
    text = "\n".join(found)
    assert "model_group_alias.gpt-4o: 'gpt-4o' is also a model_name" in text
    assert "model_group_alias.a: points at 'b', another alias" in text
    assert "model_group_alias.c: 'gpt-4-o' is not a model_name in model_list; did you mean 'gpt-4o'?" in text
    assert "model_group_alias.d.hiden: unknown key 'hiden'; did you mean 'hidden'?" in text
    assert "model_group_alias.e: expected a model group name" in text


def test_number_and_boolean_problems():
    found = problems({"allowed_fails": -1, "cooldown_time": "soon", "num_retries": 1.5, "timeout": 0,
                      "max_fallbacks": "x", "enable_tag_filtering": "yes",
                      "routing_strategy": "latency-based-routing",
                      "routing_strategy_args": {"ttl": 0, "max_latency_list_size": 0, "buffer": 1}})
    text = "\n".join(found)
    for expected in ("router_settings.allowed_fails: expected a whole number >= 0, got -1",
                     "router_settings.cooldown_time: expected a number, got 'soon'",
                     "router_settings.num_retries: expected a whole number, got 1.5",
                     "router_settings.timeout: expected a number > 0, got 0",
                     "router_settings.max_fallbacks: expected a whole number, got 'x'",
                     "router_settings.enable_tag_filtering: expected true or false, got 'yes'",
                     "router_settings.routing_strategy_args.ttl: expected a number > 0, got 0",
                     "router_settings.routing_strategy_args.max_latency_list_size: expected a whole number >= 1",
                     "router_settings.routing_strategy_args.buffer: unknown routing_strategy_args key 'buffer'"):
        assert expected in text, expected


def test_deployment_problems():
    models = [
        {"model_name": "a", "litellm_params": {"model": "openai/a", "rpm": 0, "weight": -1, "tags": [1]},
         "model_info": {"id": "x"}},
        {"model_name": "b", "litellm_params": {"model": "openai/b", "order": "first", "tpm": "many"},
         "model_info": {"id": "x"}},
        {"model_name": "c", "litellm_params": {"model": "openai/*"}},
        {"model_name": "d/*", "litellm_params": {"model": "d/*/*"}},
    ]
    text = "\n".join(problems(models=models))
    for expected in ("model_list[0].litellm_params.rpm: expected a whole number >= 1, got 0",
                     "model_list[0].litellm_params.weight: expected a number >= 0, got -1",
                     "model_list[0].litellm_params.tags[0]: expected a tag, got 1",
                     "model_list[1].model_info.id: 'x' is already the id of model_list[0]",
                     "model_list[1].litellm_params.order: expected a whole number, got 'first'",
                     "model_list[1].litellm_params.tpm: expected a whole number, got 'many'",
                     "model_list[2].litellm_params.model: 'openai/*' has more '*' than model_name 'c'",
                     "model_list[3].litellm_params.model: 'd/*/*' has more '*' than model_name 'd/*'"):
        assert expected in text, expected


def test_every_problem_is_reported_at_once():
    found = problems({"fallback": [], "allowed_fails": -2, "routing_strategy": "nope",
                      "fallbacks": [{"gpt-4o": ["zzz"]}]},
                     models=[*MODELS, {"model_name": "z", "litellm_params": {"model": "openai/z", "rpm": -1}}])
    assert len(found) == 5


def test_router_settings_must_be_a_mapping():
    assert problems(["routing_strategy"]) == ["router_settings: expected a mapping, got ['routing_strategy']"]


def test_malformed_model_list_entries_are_left_to_the_config_layer():
    config = ok(models=[None, {"model_name": "a"}, {"model_name": "b", "litellm_params": {"model": "openai/b"}}])
    assert [d.id for d in config.deployments] == ["0", "1", "2"]
