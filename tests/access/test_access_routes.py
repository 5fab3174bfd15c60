"""Route authorization: one test per row of the decision table (trioproxy/access/routes.py), one per
cell of the role × rule table, and the config lists that feed them."""

from __future__ import annotations

import pytest

from trioproxy.access import (
    AccessConfigError,
    AccessDenied,
    AccessUnauthenticated,
    Caller,
    CallerKind,
    PassThroughRoute,
    Role,
    RouteCatalog,
    RouteRules,
    Rule,
    authorize,
    describe_routes,
)
from trioproxy.access.catalog import EMPTY_LITELLM_GROUPS, GROUPS, ROUTES
from trioproxy.access.routes import ROWS
from trioproxy.errors import error_body

DEFAULT = RouteRules.from_settings({})
SEED = RouteRules.from_settings({  # the seed's example (enterprise-features-zh.txt)
    "public_routes": ["LiteLLMRoutes.public_routes", "/spend/calculate"],
    "admin_only_routes": ["/key/generate"],
    "allowed_routes": ["/chat/completions", "/spend/calculate", "LiteLLMRoutes.public_routes",
                       "/key/generate", "/key/info", "/global/spend/reset"],
})


def key(role=None, **kw):
    return Caller(CallerKind.VIRTUAL_KEY, role=role, **kw)


def denied(caller, route, method="POST", rules=DEFAULT, **kw):
    with pytest.raises((AccessDenied, AccessUnauthenticated)) as info:
        authorize(caller, route, method, rules, **kw)
    return info.value


def allowed(caller, route, method="POST", rules=DEFAULT, **kw):
    assert authorize(caller, route, method, rules, **kw) is None
    return True


def test_the_table_has_the_documented_rows_in_order():
    assert [name for name, _ in ROWS] == [
        "allowed_routes", "public", "no credential", "invalid credential", "master key only",
        "admin_only_routes", "key allowed_routes", "team allowed_routes", "JWT routes", "proxy admin",
        "role × rule"]


# ---- row 1: general_settings.allowed_routes --------------------------------------------------

def test_row1_allowed_routes_refuses_other_routes_to_everyone_even_the_master_key():
    err = denied(Caller.master_key(), "/embeddings", rules=SEED)
    assert err.status_code == 403
    assert error_body(err) == {"error": {"message": "Access forbidden: Route /embeddings not allowed",
                                         "type": "auth_error", "param": None, "code": "403"}}
    assert "Route /embeddings not allowed" in err.message   # the seed's wording is a substring of ours


def test_row1_allowed_routes_applies_to_public_routes_too():
    rules = RouteRules.from_settings({"allowed_routes": ["/chat/completions"]})
    assert denied(Caller.anonymous(), "/health/readiness", "GET", rules).status_code == 403
    assert allowed(Caller.anonymous(), "/health/readiness", "GET", SEED)  # listed via LiteLLMRoutes.public_routes


def test_row1_allowed_routes_lets_listed_routes_through_to_the_other_rows():
    assert allowed(Caller.master_key(), "/chat/completions", rules=SEED)
    assert denied(Caller.anonymous(), "/chat/completions", rules=SEED).status_code == 401


# ---- row 2: public ---------------------------------------------------------------------------

def test_row2_builtin_public_routes_need_no_credential():
    for route in ("/health/liveliness", "/health/readiness", "/routes", "/public/model_hub", "/model_hub"):
        assert allowed(Caller.anonymous(), route, "GET")


def test_row2_public_routes_ignore_a_bad_credential():
    bad = Caller.rejected(AccessUnauthenticated("Authentication Error, Invalid proxy server token passed."))
    assert allowed(bad, "/health/liveliness", "GET")


def test_row2_configured_public_routes_need_no_credential():
    assert allowed(Caller.anonymous(), "/spend/calculate", rules=SEED)
    assert denied(Caller.anonymous(), "/spend/calculate").status_code == 401  # not public by default


def test_row2_public_wildcards():
    rules = RouteRules.from_settings({"public_routes": ["/global/spend/*"]})
    assert allowed(Caller.anonymous(), "/global/spend/models", "GET", rules)
    assert denied(Caller.anonymous(), "/global/spend", "GET", rules).status_code == 401


def test_row2_metrics_public_makes_metrics_public():
    assert denied(Caller.anonymous(), "/metrics", "GET").status_code == 401
    assert allowed(Caller.anonymous(), "/metrics", "GET", RouteRules.from_settings({"metrics_public": True}))


# ---- rows 3 and 4: credentials ----------------------------------------------------------------

def test_row3_no_credential_is_a_401():
    err = denied(Caller.anonymous(), "/chat/completions")
    assert err.status_code == 401
    assert error_body(err)["error"] == {"message": "Authentication Error, No api key passed in.",
                                        "type": "auth_error", "param": None, "code": "401"}


def test_row4_an_invalid_credential_raises_the_authenticators_own_error():
    expired = AccessUnauthenticated("Authentication Error - Expired Key. Key Expiry time x and current time y")
    assert denied(Caller.rejected(expired), "/chat/completions") is expired


def test_row4_an_invalid_credential_without_error_gets_the_generic_401():
    err = denied(Caller(CallerKind.INVALID), "/chat/completions")
    assert err.status_code == 401 and "Invalid proxy server token" in err.message


# ---- row 5: master key only ------------------------------------------------------------------

def test_row5_master_key_only_routes_refuse_a_proxy_admin_users_key():
    err = denied(key(Role.PROXY_ADMIN), "/global/spend/reset")
    assert err.status_code == 403
    assert err.message == "Tried to access route=/global/spend/reset, which is only for MASTER KEY"
    assert allowed(Caller.master_key(), "/global/spend/reset")


# ---- row 6: admin_only_routes ----------------------------------------------------------------

def test_row6_admin_only_routes_refuse_non_admins_with_the_seeds_message():
    err = denied(key(Role.INTERNAL_USER), "/key/generate", rules=SEED)
    assert error_body(err)["error"] == {
        "message": "user not allowed to access this route. Route=/key/generate is an admin only route",
        "type": "auth_error", "param": None, "code": "403"}
    assert allowed(Caller.master_key(), "/key/generate", rules=SEED)
    assert allowed(key(Role.PROXY_ADMIN), "/key/generate", rules=SEED)
    assert allowed(key(Role.INTERNAL_USER), "/key/generate")  # without the setting, internal users may


def test_row6_admin_only_routes_wildcard_reaches_info_routes():
    rules = RouteRules.from_settings({"admin_only_routes": ["/key/*"]})
    assert "admin only route" in denied(key(), "/key/info", "GET", rules).message


# ---- rows 7 and 8: per-key and per-team allowed_routes ----------------------------------------

def test_row7_key_allowed_routes_restrict_the_key():
    caller = key(key_routes=DEFAULT.route_list(["/chat/completions"]))
    assert allowed(caller, "/chat/completions")
    err = denied(caller, "/embeddings")
    assert err.message == ("Virtual key is not allowed to call this route. Only allowed to call routes: "
                           "['/chat/completions']. Tried to call route: /embeddings")


def test_row7_key_allowed_routes_restrict_even_a_proxy_admin_key():
    caller = key(Role.PROXY_ADMIN, key_routes=DEFAULT.route_list(["llm_api_routes"]))
    assert allowed(caller, "/v1/chat/completions")
    assert "Virtual key is not allowed" in denied(caller, "/team/new").message


def test_row7_key_allowed_routes_never_grant_beyond_the_role():
    # LiteLLM lets this key call /user/new; trioproxy does not (the list only restricts)
    caller = key(Role.INTERNAL_USER, key_routes=DEFAULT.route_list(["/user/new", "/chat/completions"]))
    assert "Only proxy admin" in denied(caller, "/user/new").message


def test_row7_key_lists_match_below_an_exact_entry_like_litellm():
    catalog_rules = RouteRules.from_settings({}, pass_through=[PassThroughRoute("/bria", include_subpath=True)])
    caller = key(key_routes=catalog_rules.route_list(["/bria"]))
    assert allowed(caller, "/bria/v1/text-to-image", rules=catalog_rules)
    assert "not allowed" in denied(caller, "/bria-other", rules=catalog_rules).message


def test_row7_an_empty_key_list_restricts_nothing():
    assert DEFAULT.route_list([]) is None
    assert allowed(key(key_routes=DEFAULT.route_list([])), "/embeddings")


def test_row8_team_allowed_routes_restrict_the_teams_keys():
    caller = key(team_id="t1", team_routes=DEFAULT.route_list(["openai_routes"]))
    assert allowed(caller, "/v1/embeddings")
    err = denied(caller, "/key/info", "GET")
    assert err.message.startswith("Team t1 is not allowed to call this route.")


# ---- row 9: JWT route grants -----------------------------------------------------------------

def jwt_caller(role, routes, **kw):
    return Caller(CallerKind.JWT, role=role, jwt_routes=DEFAULT.route_list(routes), **kw)


def test_row9_jwt_team_token_gets_only_its_team_allowed_routes():
    team = jwt_caller(Role.TEAM, ["openai_routes", "info_routes"], team_id="t1")
    assert allowed(team, "/chat/completions")
    assert allowed(team, "/team/info", "GET")
    err = denied(team, "/key/generate")
    assert err.message.startswith("Team not allowed to access this route. Route=/key/generate, Allowed Routes=")


def test_row9_jwt_admin_token_gets_only_admin_allowed_routes():
    admin = jwt_caller(Role.PROXY_ADMIN, ["management_routes", "spend_tracking_routes",
                                          "global_spend_tracking_routes", "info_routes"])
    assert allowed(admin, "/team/new")
    assert allowed(admin, "/global/spend", "GET")
    assert "Admin not allowed to access this route" in denied(admin, "/chat/completions").message  # as LiteLLM
    assert "only for MASTER KEY" in denied(admin, "/global/spend/reset").message                   # row 5 first


def test_row9_jwt_without_a_role_gets_public_routes_only():
    nobody = jwt_caller(None, ["public_routes"])
    assert allowed(nobody, "/health/readiness", "GET")
    assert "JWT not allowed" in denied(nobody, "/chat/completions").message


def test_row9_jwt_user_without_route_list_uses_the_role_table():
    user = Caller(CallerKind.JWT, role=Role.INTERNAL_USER, user_id="u1")
    assert allowed(user, "/key/generate")
    assert "Only proxy admin" in denied(user, "/team/new").message


# ---- row 10: proxy admin ---------------------------------------------------------------------

@pytest.mark.parametrize("spec", [s for s in ROUTES if s.rule is not Rule.MASTER_KEY], ids=lambda s: s.path)
def test_row10_a_proxy_admin_may_call_every_route_but_master_key_ones(spec):
    path = spec.path.replace("{key}", "sk-x").replace("{id}", "1").replace("{model}", "m")
    assert allowed(key(Role.PROXY_ADMIN), path, sorted(spec.methods)[0])
    assert allowed(Caller.master_key(), path, sorted(spec.methods)[0])


def test_row10_an_unknown_route_is_admin_only():
    assert allowed(Caller.master_key(), "/brand/new/route", "GET")
    assert "Only proxy admin" in denied(key(Role.INTERNAL_USER), "/brand/new/route", "GET").message


# ---- row 11: role × rule ---------------------------------------------------------------------
# one representative route per rule; a cell is True (allow) or False (403)

ROUTE_OF = {Rule.LLM_API: ("POST", "/v1/chat/completions"), Rule.INFO: ("GET", "/key/info"),
            Rule.SELF_SERVICE: ("POST", "/key/generate"), Rule.SPEND: ("GET", "/spend/logs"),
            Rule.TEAM_ADMIN: ("POST", "/team/member_add"), Rule.ADMIN: ("POST", "/team/new")}

ROLES = {
    "virtual key": key(),
    "internal_user_viewer": key(Role.INTERNAL_USER_VIEWER, user_id="viewer-user-1"),
    "internal_user": key(Role.INTERNAL_USER, user_id="user-123456789"),
    "team admin": key(Role.INTERNAL_USER, user_id="lead-1", admin_of_teams=frozenset({"t1"})),
    "proxy_admin_viewer": key(Role.PROXY_ADMIN_VIEWER, user_id="auditor-1"),
}

TABLE = {  # rule: (virtual key, internal_user_viewer, internal_user, team admin, proxy_admin_viewer)
    Rule.LLM_API: (True, True, True, True, False),
    Rule.INFO: (True, True, True, True, True),
    Rule.SELF_SERVICE: (False, False, True, True, False),   # viewer: POST is a write
    Rule.SPEND: (False, True, True, True, True),
    Rule.TEAM_ADMIN: (False, False, False, True, False),
    Rule.ADMIN: (False, False, False, False, False),        # viewer: POST is a write
}


@pytest.mark.parametrize("rule", list(TABLE), ids=str)
@pytest.mark.parametrize("role", list(ROLES))
def test_row11_role_by_rule(rule, role):
    method, route = ROUTE_OF[rule]
    expected = TABLE[rule][list(ROLES).index(role)]
    caller = ROLES[role]
    if expected:
        assert allowed(caller, route, method, team_id="t1")
    else:
        err = denied(caller, route, method, team_id="t1")
        assert err.status_code == 403 and error_body(err)["error"]["type"] == "auth_error"


def test_row11_admin_viewer_reads_admin_and_self_service_routes():
    viewer = ROLES["proxy_admin_viewer"]
    assert allowed(viewer, "/global/spend", "GET")
    assert allowed(viewer, "/audit/abc", "GET")
    assert allowed(viewer, "/spend/calculate", "POST")       # a POST that only computes
    assert "role= proxy_admin_viewer" in denied(viewer, "/key/generate").message


def test_row11_admin_viewer_may_not_run_inference():
    err = denied(ROLES["proxy_admin_viewer"], "/chat/completions")
    assert err.message == "user not allowed to access this OpenAI routes, role= proxy_admin_viewer"


def test_row11_team_admin_of_another_team_is_refused():
    err = denied(ROLES["team admin"], "/team/member_add", team_id="t2")
    assert err.message == ("user not allowed to access this route. Route=/team/member_add needs a proxy admin "
                           "or an admin of team t2. Your role=internal_user")


def test_row11_team_admin_without_a_known_team_passes_to_the_handler():
    assert allowed(ROLES["team admin"], "/team/member_add")
    assert "an admin of a team" in denied(ROLES["internal_user"], "/team/member_add").message


def test_row11_admin_message_is_litellms_with_a_masked_user_id():
    err = denied(ROLES["internal_user"], "/team/new")
    assert err.message == ("Only proxy admin can be used to generate, delete, update info for new "
                           "keys/users/teams. Route=/team/new. Your role=internal_user. Your user_id=user-1******89")
    assert "Your role=unknown. Your user_id=unknown" in denied(key(), "/team/new").message


# ---- config lists ----------------------------------------------------------------------------

def test_group_names_expand_in_both_spellings():
    rules = RouteRules.from_settings({"public_routes": ["LiteLLMRoutes.info_routes"]})
    assert rules.public.matches("/key/info")
    assert DEFAULT.route_list(["info_routes"]).matches("/team/list")


def test_every_bad_entry_is_reported_at_once():
    with pytest.raises(AccessConfigError) as info:
        RouteRules.from_settings({"public_routes": ["LiteLLMRoutes.nope", "spend/calculate", 3],
                                  "admin_only_routes": "/key/generate",
                                  "allowed_routes": ["/a/*/b"]})
    problems = info.value.problems
    assert len(problems) == 5
    assert problems[0].startswith("general_settings.public_routes[0]: 'LiteLLMRoutes.nope' is neither a route")
    assert problems[1].startswith("general_settings.public_routes[1]: 'spend/calculate'")
    assert problems[2].startswith("general_settings.public_routes[2]: must be a route")
    assert problems[3] == "general_settings.admin_only_routes: must be a list of routes, got str"
    assert "'*' is only allowed at the end" in problems[4]


def test_litellm_groups_trioproxy_does_not_serve_load_with_a_warning():
    rules = RouteRules.from_settings({"allowed_routes": ["LiteLLMRoutes.anthropic_routes", "/chat/completions"]})
    assert rules.warnings == ("general_settings.allowed_routes[0]: LiteLLMRoutes.anthropic_routes names routes "
                              "trioproxy does not serve; it adds no route",)
    assert "anthropic_routes" in EMPTY_LITELLM_GROUPS


def test_key_route_list_errors_raise_for_the_admin_api():
    with pytest.raises(AccessConfigError) as info:
        DEFAULT.route_list(["chat/completions"], "allowed_routes")
    assert info.value.problems[0].startswith("allowed_routes[0]:")


def test_placeholder_patterns_match_one_segment():
    routes = DEFAULT.route_list(["/audit/{id}"])
    assert routes.matches("/audit/42") and not routes.matches("/audit/42/x") and not routes.matches("/audit")


def test_pass_through_routes_join_llm_api_routes_and_public_ones_are_public():
    rules = RouteRules.from_settings({}, pass_through=[PassThroughRoute("/v1/rerank"),
                                                      PassThroughRoute("/hook", auth=False)])
    assert rules.route_list(["llm_api_routes"]).matches("/v1/rerank")
    assert allowed(Caller.anonymous(), "/hook", rules=rules)
    assert denied(Caller.anonymous(), "/v1/rerank", rules=rules).status_code == 401
    assert allowed(key(), "/v1/rerank", rules=rules)


# ---- the catalog and GET /routes -------------------------------------------------------------

def test_every_group_has_members_and_every_route_a_rule():
    catalog = RouteCatalog()
    for group in GROUPS:
        if group != "master_key_only_routes":
            assert catalog.group(group), group
    assert catalog.group("master_key_only_routes") == ["/global/spend/reset"]
    assert all(isinstance(spec.rule, Rule) for spec in ROUTES)


def test_describe_routes_shows_the_effective_rule():
    listed = {r["path"]: r for r in describe_routes(SEED)}
    assert listed["/spend/calculate"]["rule"] == "public"
    assert listed["/spend/calculate"]["configured_by"] == "public_routes"
    assert listed["/embeddings"]["rule"] == "disabled" and listed["/embeddings"]["configured_by"] == "allowed_routes"
    assert listed["/key/generate"]["rule"] == "admin" and listed["/key/generate"]["configured_by"] == "admin_only_routes"
    assert listed["/chat/completions"] == {"path": "/chat/completions", "methods": ["POST"], "rule": "llm_api",
                                           "configured_by": None, "groups": ["llm_api_routes", "openai_routes"],
                                           "description": "chat completions"}


def test_describe_routes_marks_unclassified_registered_routes():
    listed = describe_routes(DEFAULT, [("/key/info", ["GET"]), ("/brand/new", ["post"])])
    assert listed[1] == {"path": "/brand/new", "methods": ["POST"], "rule": "admin",
                         "configured_by": "unclassified", "groups": [], "description": ""}
