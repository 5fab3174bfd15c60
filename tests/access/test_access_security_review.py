"""Regression tests from the security review of trioproxy/access (route rules, caller address)."""

from __future__ import annotations

import pytest

from trioproxy.access import (
    AccessDenied,
    Caller,
    CallerKind,
    Role,
    RouteRules,
    authorize,
)

DEFAULT = RouteRules.from_settings({})


# ---- per-key / per-team allowed_routes must never lift a restriction ------------------------------

@pytest.mark.parametrize("entries", [["anthropic_routes"], ["LiteLLMRoutes.mcp_routes", "google_routes"]])
def test_a_key_list_naming_only_routes_we_do_not_serve_allows_nothing(entries: list[str]) -> None:
    """A non-empty list expanding to no route used to count as "no list": the key could call every
    route its role allows (fail open). It is a list, so it allows only what it names: nothing here."""
    routes = DEFAULT.route_list(entries)
    caller = Caller(CallerKind.VIRTUAL_KEY, role=Role.INTERNAL_USER, key_routes=routes)
    for path in ("/chat/completions", "/key/generate", "/key/info"):
        with pytest.raises(AccessDenied, match="Virtual key is not allowed to call this route"):
            authorize(caller, path, "POST", DEFAULT)
    team = Caller(CallerKind.VIRTUAL_KEY, team_id="t1", team_routes=routes)
    with pytest.raises(AccessDenied, match="Team t1 is not allowed to call this route"):
        authorize(team, "/chat/completions", "POST", DEFAULT)


def test_an_empty_key_list_still_restricts_nothing() -> None:
    caller = Caller(CallerKind.VIRTUAL_KEY, key_routes=DEFAULT.route_list([]))
    assert authorize(caller, "/chat/completions", "POST", DEFAULT) is None
