# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters for the engines' and exporters' firewalls; the logic lives in
module_utils/_network.py. Each filter is documented in the .yml file of its name beside this
one."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import _network


def firewall_allow(addresses, host="this host", variable="llm_engine_allow_from", allow_empty=False):
    try:
        return _network.allow_sets(addresses, host=host, variable=variable, allow_empty=allow_empty)
    except _network.AddressError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def is_loopback(address):
    return _network.is_loopback(address)


def firewall_wide_problem(addresses, host="this host", variable="llm_engine_allow_from"):
    return _network.wide_problem(addresses, host=host, variable=variable)


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
            "firewall_wide_problem": firewall_wide_problem,
            "gateway_addresses": gateway_addresses,
            "monitoring_addresses": monitoring_addresses,
        }
