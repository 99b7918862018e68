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
