# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Addresses for the engines' firewall: which sources may reach an engine that listens on a
private address. Pure Python (ipaddress); private to the collection."""

from __future__ import annotations

import ipaddress


class AddressError(ValueError):
    """An address the firewall cannot use."""


def is_loopback(address):
    """True for 127.0.0.0/8, ::1 and 'localhost' (an engine bound there needs no firewall)."""
    text = str(address or "").strip()
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def allow_sets(addresses, host="this host", variable="llm_engine_allow_from", allow_empty=False):
    """Split ``addresses`` (IPs or CIDR networks) into sorted, de-duplicated IPv4 and IPv6
    lists of networks in nft syntax: ``{"ipv4": [...], "ipv6": [...]}``.

    Raises :class:`AddressError` naming the host, the variable and every bad entry; an empty
    list is an error too (it would shut the gateway out) unless ``allow_empty``."""
    bad, v4, v6 = [], set(), set()
    for entry in addresses or []:
        try:
            net = ipaddress.ip_network(str(entry).strip(), strict=False)
        except ValueError:
            bad.append(repr(entry))
            continue
        text = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
        (v4 if net.version == 4 else v6).add((net, text))
    if bad:
        raise AddressError(
            f"{host}: {variable} holds {', '.join(bad)}, which is not an IP address or network; "
            f"list the gateway hosts' addresses (e.g. 10.0.0.5 or 10.0.0.0/24)"
        )
    if not v4 and not v6 and not allow_empty:
        raise AddressError(
            f"{host}: {variable} is empty, so no gateway could reach the engines that listen on "
            f"a private address; set it to the gateway hosts' addresses, or set "
            f"llm_gateway_address on each gateway host"
        )
    return {
        "ipv4": [text for _key, text in sorted(v4, key=lambda item: item[0])],
        "ipv6": [text for _key, text in sorted(v6, key=lambda item: item[0])],
    }


# Networks an engine's allow list may name at any size: private, shared (CGNAT), link-local
# and loopback ranges. Anything else wider than these prefixes needs llm_engine_allow_wide.
_PRIVATE = tuple(ipaddress.ip_network(net) for net in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "127.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128",
))
WIDE_PREFIX = {4: 16, 6: 48}


def wide_networks(addresses):
    """The entries of an allow list that reach beyond private networks and are wider than a
    /16 (IPv4) or a /48 (IPv6): 0.0.0.0/0, ::/0, 8.0.0.0/7, 2000::/3, ... Entries that are not
    addresses are left to :func:`allow_sets`, which names them."""
    wide = []
    for entry in addresses or []:
        try:
            net = ipaddress.ip_network(str(entry).strip(), strict=False)
        except ValueError:
            continue
        if net.prefixlen >= WIDE_PREFIX[net.version]:
            continue
        if any(net.version == private.version and net.subnet_of(private) for private in _PRIVATE):
            continue
        wide.append(str(entry).strip())
    return wide


def wide_problem(addresses, host="", variable="llm_engine_allow_from",
                 opt_in="llm_engine_allow_wide"):
    """A message naming the host (when given), the variable and its world-wide entries, or ""
    when there are none. An engine has no authentication of its own (Ollama, llama.cpp) or guards only
    part of its API (vLLM): a world-wide allow list is an open engine."""
    wide = wide_networks(addresses)
    if not wide:
        return ""
    return (
        f"{host + ': ' if host else ''}{variable} admits {', '.join(wide)}, which reaches beyond private networks "
        f"and is wider than a /{WIDE_PREFIX[4]} (IPv4) or /{WIDE_PREFIX[6]} (IPv6): anyone in "
        f"it could reach the engines, which have no authentication of their own. List the "
        f"gateway hosts' addresses; if a range that wide is really meant, set {opt_in}: true"
    )
