"""The caller's address and ``allowed_ips`` (trioproxy/access/ip.py)."""

from __future__ import annotations

import pytest

from trioproxy.access import AccessConfigError, AccessDenied, IPPolicy
from trioproxy.access.ip import parse_address
from trioproxy.errors import error_body

XFF = IPPolicy.from_settings({"use_x_forwarded_for": True})


# ---- which address -----------------------------------------------------------------------------

def test_without_use_x_forwarded_for_the_header_is_ignored():
    policy = IPPolicy.from_settings({})
    assert policy.client_address("127.0.0.1", ["203.0.113.7"]) == "127.0.0.1"


def test_two_proxies_litellm_issue_33324():
    # a client behind a load balancer (10.0.0.2) and a local sidecar (127.0.0.1)
    assert XFF.client_address("127.0.0.1", ["203.0.113.7, 10.0.0.2"]) == "203.0.113.7"


def test_a_spoofed_leftmost_entry_gains_nothing():
    assert XFF.client_address("10.0.0.2", ["1.2.3.4, 203.0.113.7"]) == "203.0.113.7"


def test_an_untrusted_peer_is_the_client_whatever_it_sends():
    assert XFF.client_address("198.51.100.9", ["10.0.0.1"]) == "198.51.100.9"


def test_all_hops_trusted_gives_the_leftmost():
    assert XFF.client_address("127.0.0.1", ["192.168.1.20, 10.0.0.2"]) == "192.168.1.20"


def test_several_header_lines_are_one_list_in_order():
    assert XFF.client_address("127.0.0.1", ["198.51.100.1", "203.0.113.7, 10.0.0.2"]) == "203.0.113.7"


def test_no_header_means_the_peer():
    assert XFF.client_address("127.0.0.1", []) == "127.0.0.1"
    assert XFF.client_address("127.0.0.1", [" , "]) == "127.0.0.1"   # empty elements only


def test_ports_brackets_and_mapped_addresses():
    assert XFF.client_address("127.0.0.1", ["203.0.113.7:5123"]) == "203.0.113.7"
    assert XFF.client_address("::1", ["[2001:db8::7]:443"]) == "2001:db8::7"
    assert XFF.client_address("::ffff:127.0.0.1", ["2001:db8:0:0::7"]) == "2001:db8::7"
    assert XFF.client_address("::ffff:203.0.113.7", []) == "203.0.113.7"
    assert parse_address("[2001:db8::1]") is not None
    assert parse_address("[2001:db8::1]:x") is None
    assert parse_address("1.2.3.4:") is None


@pytest.mark.parametrize("header", ["garbage", "203.0.113.7, unknown", "_hidden", "1.2.3.4.5", "300.1.1.1"])
def test_garbage_reached_by_the_walk_makes_the_client_unknown(header):
    assert XFF.client_address("127.0.0.1", [header]) is None


def test_garbage_left_of_the_client_never_matters():
    assert XFF.client_address("127.0.0.1", ["garbage, 203.0.113.7"]) == "203.0.113.7"


def test_configured_trusted_proxy_ranges_replace_the_defaults():
    policy = IPPolicy.from_settings({"use_x_forwarded_for": True, "trusted_proxy_ranges": ["10.0.0.2/32"]})
    assert policy.client_address("10.0.0.2", ["10.9.9.9"]) == "10.9.9.9"      # 10.9.9.9 is no proxy of ours
    assert policy.client_address("127.0.0.1", ["203.0.113.7"]) == "127.0.0.1"  # loopback no longer trusted


def test_no_peer_is_unknown():
    assert XFF.client_address(None, ["203.0.113.7"]) is None
    assert IPPolicy().client_address(None) is None


# ---- the allowlist ---------------------------------------------------------------------------

ALLOW = IPPolicy.from_settings({"allowed_ips": ["203.0.113.7", "10.0.0.0/8", "2001:db8::/32"]})


@pytest.mark.parametrize("address", ["203.0.113.7", "10.200.3.4", "2001:db8::1", "::ffff:10.1.1.1"])
def test_listed_addresses_and_ranges_pass(address):
    ALLOW.check(address)


def test_others_get_litellms_403():
    with pytest.raises(AccessDenied) as info:
        ALLOW.check("1.2.3.4")
    assert error_body(info.value) == {"error": {"message": "Access forbidden: IP address 1.2.3.4 not allowed.",
                                                "type": "auth_error", "param": None, "code": "403"}}


def test_an_unknown_client_is_refused_without_echoing_header_text():
    with pytest.raises(AccessDenied) as info:
        ALLOW.check(None)
    assert info.value.message == "Access forbidden: IP address unknown not allowed."
    with pytest.raises(AccessDenied) as info:
        ALLOW.check("<script>")
    assert info.value.message == "Access forbidden: IP address unknown not allowed."


def test_ipv6_is_shown_compressed_and_v4_never_matches_v6_ranges():
    with pytest.raises(AccessDenied, match=r"IP address 2001:db9::1 not allowed"):
        ALLOW.check("2001:0db9:0000::1")
    with pytest.raises(AccessDenied):
        IPPolicy.from_settings({"allowed_ips": ["::/0"]}).check("1.2.3.4")


def test_no_allowlist_lets_everyone_through():
    IPPolicy.from_settings({}).check(None)
    IPPolicy.from_settings({}).check("1.2.3.4")


def test_end_to_end_two_proxies_with_an_allowlist():
    policy = IPPolicy.from_settings({"allowed_ips": ["203.0.113.0/24"], "use_x_forwarded_for": True})
    policy.check(policy.client_address("127.0.0.1", ["203.0.113.7, 10.0.0.2"]))
    with pytest.raises(AccessDenied, match="IP address unknown"):
        policy.check(policy.client_address("127.0.0.1", ["garbage"]))


def test_mapped_ipv6_ranges_in_the_allowlist_compare_as_ipv4():
    IPPolicy.from_settings({"allowed_ips": ["::ffff:10.0.0.0/104"]}).check("10.3.3.3")


def test_every_bad_setting_is_reported_at_once():
    with pytest.raises(AccessConfigError) as info:
        IPPolicy.from_settings({"allowed_ips": ["1.2.3.4", "nope", 7, "10.0.0.0/33"], "use_x_forwarded_for": "yes",
                                "trusted_proxy_ranges": "10.0.0.0/8"})
    assert info.value.problems == [
        "general_settings.allowed_ips[1]: 'nope' is not an IP address or CIDR range "
        "(e.g. '203.0.113.7', '10.0.0.0/8', '2001:db8::/32')",
        "general_settings.allowed_ips[2]: 7 is not an IP address or CIDR range "
        "(e.g. '203.0.113.7', '10.0.0.0/8', '2001:db8::/32')",
        "general_settings.allowed_ips[3]: '10.0.0.0/33' is not an IP address or CIDR range "
        "(e.g. '203.0.113.7', '10.0.0.0/8', '2001:db8::/32')",
        "general_settings.use_x_forwarded_for: must be true or false, got 'yes'",
        "general_settings.trusted_proxy_ranges: must be a list of IP addresses or CIDR ranges, got str",
    ]
