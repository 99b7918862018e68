# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Playbook helpers of the rolling update (roles/upgrade) over module_utils/_upgrade. Each
filter is documented in the .yml file of its name beside this one."""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils import _upgrade


def upgrade_changes(instances, states=None, models=None, rollback=False, engine=None):
    """``_upgrade.plan_changes``: {before, after, changes, engine, restart, ...} of one host."""
    return _upgrade.plan_changes(instances, states, models, bool(rollback), engine)


def upgrade_drain_problems(gateways, host):
    """``_upgrade.drain_problems``: models that would have no backend while ``host`` drains."""
    return _upgrade.drain_problems(gateways, host)


def llama_cpp_in_flight(metrics):
    """Requests a llama-server is processing or holding, from its /metrics text."""
    return _upgrade.in_flight(metrics)


class FilterModule:
    def filters(self):
        return {"upgrade_changes": upgrade_changes, "upgrade_drain_problems": upgrade_drain_problems,
                "llama_cpp_in_flight": llama_cpp_in_flight}
