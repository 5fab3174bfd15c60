"""Regression tests from the security review of trioproxy/access (route rules, caller address)."""

from __future__ import annotations

import ipaddress

import pytest

from trioproxy.access import (
    AccessDenied,
    Caller,
    CallerKind,
    IPPolicy,
    Role,
    RouteRules,
    Rule,
    authorize,
)
from trioproxy.access.ip import parse_address
from trioproxy.admin import ROUTES as ADMIN_ROUTES

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


# ---- the caller's address: a zone id is the client's text, not part of the address ---------------

@pytest.mark.parametrize("hop", ["2001:db8::1%Bearer sk-1234 (see logs)", "[2001:db8::1%25x]:443",
                                 "::ffff:203.0.113.7%eth0"])
def test_a_zone_id_is_dropped_never_echoed_or_recorded(hop: str) -> None:
    """``ipaddress`` keeps an IPv6 zone id (``%anything``) and prints it back: the 403 message and
    ``requester_ip_address`` carried whatever text the client put in X-Forwarded-For."""
    address = parse_address(hop)
    assert address is not None and "%" not in str(address)
    policy = IPPolicy.from_settings({"use_x_forwarded_for": True, "allowed_ips": ["10.0.0.0/8"]})
    client = policy.client_address("127.0.0.1", [hop])
    assert client is not None and "%" not in client
    with pytest.raises(AccessDenied) as info:
        policy.check(client)
    assert "Bearer" not in info.value.message and "%" not in info.value.message


def test_a_scoped_peer_still_matches_its_range() -> None:
    policy = IPPolicy.from_settings({"allowed_ips": ["fe80::/10"]})
    assert policy.client_address("fe80::1%eth0") == "fe80::1"
    policy.check(policy.client_address("fe80::1%eth0"))
    assert parse_address("fe80::1%eth0") == ipaddress.ip_address("fe80::1")


# ---- every management route has its row in the access catalog ------------------------------------

@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_admin_route_is_classified(route) -> None:
    """/end_user/block, /end_user/unblock and /user/unblock had no row: admin-only by the fail-closed
    default (no hole), but outside ``management_routes`` (a JWT admin's default routes), and listed
    as "unclassified" by GET /routes."""
    spec = DEFAULT.catalog.lookup(route.path.replace("{key}", "sk-x").replace("{id}", "1"))
    assert spec is not None and route.method in spec.methods
    if route.access.value in ("admin", "admin_read"):
        assert spec.rule in (Rule.ADMIN, Rule.SELF_SERVICE, Rule.TEAM_ADMIN, Rule.INFO)
