# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters of the monitoring roles: Prometheus's scrape targets, the exporters' address and the
GPU exporter's plan, from the inventory and the published deployment plan. The logic lives in
module_utils/_monitoring.py; each filter is documented in the .yml file of its name beside
this one."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import _monitoring


def scrape_configs(monitor, hostvars, groups, credentials_dir="/etc/prometheus/credentials"):
    try:
        return _monitoring.scrape_configs(hostvars, groups, monitor, credentials_dir=credentials_dir)
    except _monitoring.MonitoringError as exc:
        raise AnsibleFilterError("cannot monitor the inventory:\n- " + "\n- ".join(exc.problems)) from exc


def exporter_bind(host, hostvars, groups):
    address = _monitoring.exporter_bind(host, hostvars[host], sorted(groups.get("monitoring") or []))
    if not address:
        raise AnsibleFilterError(
            f"{host}: the address its exporters listen on is unknown (no facts, ansible_host is not "
            f"an IP address); set llm_exporter_bind_address on it")
    return address


def gpu_plan(host_vars):
    return _monitoring.gpu_plan(host_vars)


def without_alerts(rules, names):
    try:
        return _monitoring.without_alerts(rules, names)
    except _monitoring.MonitoringError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def alertmanager_config(receivers, smtp=None, group_wait="30s", group_interval="5m", repeat_interval="4h"):
    try:
        return _monitoring.alertmanager_config(receivers, smtp, group_wait=group_wait,
                                               group_interval=group_interval, repeat_interval=repeat_interval)
    except _monitoring.MonitoringError as exc:
        raise AnsibleFilterError("cannot route the alerts:\n- " + "\n- ".join(exc.problems)) from exc


class FilterModule:
    def filters(self):
        return {"scrape_configs": scrape_configs, "exporter_bind": exporter_bind,
                "gpu_plan": gpu_plan, "without_alerts": without_alerts,
                "alertmanager_config": alertmanager_config}
