# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters for the engines' firewall; the logic lives in module_utils/_network.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_allow
short_description: Sources admitted to engine ports, split for nftables
description:
  - Turns a list of IP addresses or networks (the gateway hosts) into
    C({ipv4=[...], ipv6=[...]}) in nft syntax, sorted and de-duplicated.
  - Fails naming the host, the variable and each entry that is not an address, and when the
    list is empty (the gateway would be shut out).
  - The same plugin file provides C(is_loopback) (true for 127.0.0.0/8, ::1, localhost),
    C(gateway_addresses) (gateway hosts -> their llm_gateway_address, default IPv4 address or
    ansible_host) and C(monitoring_addresses) (monitoring hosts -> their llm_monitoring_address,
    default IPv4 address or ansible_host).
options:
  _input:
    description: Addresses or networks.
    type: list
    elements: str
    required: true
  host:
    description: Host name used in messages.
    type: str
  variable:
    description: Variable name used in messages.
    type: str
  allow_empty:
    description: Accept an empty list (a table whose other set admits someone).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Show the sources the engines admit
  ansible.builtin.debug:
    msg: "{{ ['10.0.0.5', '10.0.1.0/24'] | teamllm.stack.firewall_allow(host=inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: C({ipv4, ipv6}), lists of addresses or networks.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import _network


def firewall_allow(addresses, host="this host", variable="llm_engine_allow_from", allow_empty=False):
    try:
        return _network.allow_sets(addresses, host=host, variable=variable, allow_empty=allow_empty)
    except _network.AddressError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def is_loopback(address):
    return _network.is_loopback(address)


def gateway_addresses(hosts, hostvars, variable="llm_gateway_address"):
    """The address each gateway host reaches the engines from: its llm_gateway_address, else
    its default IPv4 address (facts), else its ansible_host, else its name."""
    result = []
    for host in hosts or []:
        hv = hostvars[host] if host in hostvars else {}
        facts = hv.get("ansible_default_ipv4") or hv.get("ansible_facts", {}).get("default_ipv4") or {}
        result.append(str(hv.get(variable) or facts.get("address")
                          or hv.get("ansible_host") or host))
    return result


def monitoring_addresses(hosts, hostvars):
    """The address each monitoring host scrapes from: its llm_monitoring_address, else its
    default IPv4 address (facts), else its ansible_host, else its name."""
    return gateway_addresses(hosts, hostvars, variable="llm_monitoring_address")


class FilterModule:
    def filters(self):
        return {
            "firewall_allow": firewall_allow,
            "is_loopback": is_loopback,
            "gateway_addresses": gateway_addresses,
            "monitoring_addresses": monitoring_addresses,
        }
