"""The caller's address, and ``general_settings.allowed_ips``.

**Which address.** Without ``use_x_forwarded_for`` the caller is the TCP peer and
``X-Forwarded-For`` is ignored entirely. With ``use_x_forwarded_for: true`` the header is read the
way every proxy in front of us wrote it: each proxy *appends* the address it received the
connection from, so the right end of the list was written by our own infrastructure and the left
end by whoever sent the request. The client is therefore the **rightmost address that is not a
trusted proxy**, walking from the TCP peer leftwards:

    X-Forwarded-For: 198.51.100.1, 203.0.113.7, 10.0.0.2      peer 127.0.0.1
                     (anyone can     (the client)  (our LB)   (our sidecar)
                      write this)

→ 127.0.0.1 trusted, 10.0.0.2 trusted, 203.0.113.7 not trusted: the client is 203.0.113.7. A
client that prepends a fake address gains nothing, and two proxies in front of us work (LiteLLM
compares the whole raw header against the allowlist, so this exact request is refused there: its
issue #33324). If the peer itself is not a trusted proxy, the header is ignored (anyone can send
it). If every hop is trusted, the leftmost is the client (a caller inside the trusted network).

Trusted proxies: ``general_settings.trusted_proxy_ranges`` (addresses and CIDR ranges); by default
the loopback and private ranges (``127.0.0.0/8``, ``::1``, ``10.0.0.0/8``, ``172.16.0.0/12``,
``192.168.0.0/16``, ``fc00::/7``). The default trusts every host on those networks to say who the
client is; when hosts on your private network are not all trusted, list just your proxies.

**Malformed entries.** Entries may carry a port (``203.0.113.7:5123``, ``[2001:db8::1]:443``, as
some load balancers write them) or brackets; IPv4-mapped IPv6 (``::ffff:203.0.113.7``) counts as
the IPv4 address. Empty list elements are skipped (``a,,b``). Anything else the walk reaches —
``unknown``, ``garbage``, an obfuscated ``_hidden`` — makes the client **unknown** (``None``): the
chain cannot be trusted past that point, and the last trusted hop (a proxy's own address, often
inside the allowlist) must not stand in for the client. With ``allowed_ips`` set an unknown client
is refused (``Access forbidden: IP address unknown not allowed.``); without it the request goes on
and ``requester_ip_address`` is empty. Garbage to the *left* of the client is never reached and
never matters.

**The allowlist.** ``general_settings.allowed_ips``: addresses and CIDR ranges, IPv4 and IPv6
(``10.0.0.0/8``, ``2001:db8::/32``, ``203.0.113.7``). Every route, public or not, master key or
not: 403 ``Access forbidden: IP address 1.2.3.4 not allowed.`` A bad entry is a startup error
naming it (LiteLLM compares strings, so a typo silently locks everybody out).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import AccessConfigError, AccessDenied

__all__ = ["DEFAULT_TRUSTED_PROXIES", "IPPolicy", "parse_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: loopback and private ranges: the proxies a default deployment has in front of it
DEFAULT_TRUSTED_PROXIES: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr) for cidr in
    ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))


def parse_address(text: str | None) -> IPAddress | None:
    """One hop as written by a proxy or the ASGI server → an address, or ``None`` if it is not one.

    Accepts ``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``, ``[2001:db8::1]``, ``[2001:db8::1]:443``;
    IPv4-mapped IPv6 becomes the IPv4 address; an IPv6 zone id (``%eth0``) is dropped.
    """
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        text = host
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has at least two colons
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
        text = host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            # a zone id (``fe80::1%eth0``) names an interface of the *sender's* host and is free
            # text (``%Bearer sk-…`` parses): dropped, so it is never echoed in a 403 or recorded
            # as requester_ip_address; range checks never depended on it
            return ipaddress.IPv6Address(int(address))
    return address


def _parse_networks(value: object, key_path: str, problems: list[str]) -> tuple[IPNetwork, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        problems.append(f"{key_path}: must be a list of IP addresses or CIDR ranges, got {type(value).__name__}")
        return None
    networks: list[IPNetwork] = []
    for index, entry in enumerate(value):
        try:
            if not isinstance(entry, str):
                raise ValueError
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            problems.append(f"{key_path}[{index}]: {entry!r} is not an IP address or CIDR range "
                            "(e.g. '203.0.113.7', '10.0.0.0/8', '2001:db8::/32')")
            continue
        if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96 and \
                network.network_address.ipv4_mapped is not None:
            # ::ffff:10.0.0.0/104 written for an IPv4 range: compare as IPv4, as parse_address does
            mapped = network.network_address.ipv4_mapped
            network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
        networks.append(network)
    return tuple(networks)


def _in_any(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


@dataclass(frozen=True, slots=True)
class IPPolicy:
    """``allowed_ips``, ``use_x_forwarded_for`` and the trusted proxies of one config."""

    allowed: tuple[IPNetwork, ...] | None = None
    use_x_forwarded_for: bool = False
    trusted_proxies: tuple[IPNetwork, ...] = DEFAULT_TRUSTED_PROXIES

    @classmethod
    def from_settings(cls, general_settings: Mapping[str, Any] | None) -> IPPolicy:
        """Read ``allowed_ips``, ``use_x_forwarded_for``, ``trusted_proxy_ranges``; every bad entry is
        reported at once in an :class:`AccessConfigError`."""
        settings = general_settings or {}
        problems: list[str] = []
        allowed = _parse_networks(settings.get("allowed_ips"), "general_settings.allowed_ips", problems)
        use_xff = settings.get("use_x_forwarded_for", False)
        if not isinstance(use_xff, bool):
            problems.append(f"general_settings.use_x_forwarded_for: must be true or false, got {use_xff!r}")
        trusted = _parse_networks(settings.get("trusted_proxy_ranges"), "general_settings.trusted_proxy_ranges",
                                  problems)
        if problems:
            raise AccessConfigError(problems)
        return cls(allowed, bool(use_xff), DEFAULT_TRUSTED_PROXIES if trusted is None else trusted)

    def client_address(self, peer: str | None, forwarded_for: Sequence[str] = ()) -> str | None:
        """The caller's address as text (IPv6 compressed), or ``None`` when it cannot be known.

        ``peer``: the TCP peer (ASGI ``scope["client"][0]``). ``forwarded_for``: every
        ``X-Forwarded-For`` header line, in the order received (several lines are one list).
        """
        peer_address = parse_address(peer)
        if not self.use_x_forwarded_for:
            return str(peer_address) if peer_address is not None else None
        hops = [hop.strip() for line in forwarded_for for hop in line.split(",") if hop.strip()]
        if peer_address is None:
            return None
        client: IPAddress = peer_address
        # walk leftwards while the address we have is one of our own proxies
        while hops and _in_any(client, self.trusted_proxies):
            hop = parse_address(hops.pop())
            if hop is None:
                return None
            client = hop
        return str(client)

    def check(self, address: str | None) -> None:
        """Raise 403 unless ``address`` is in ``allowed_ips`` (no allowlist: everyone passes)."""
        if self.allowed is None:
            return
        parsed = parse_address(address)
        if parsed is None or not _in_any(parsed, self.allowed):
            shown = str(parsed) if parsed is not None else "unknown"  # never echo unparsed header text
            raise AccessDenied(f"Access forbidden: IP address {shown} not allowed.")
