# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Action: place the wanted models on the GPUs of every host of the play, once, on the
controller, before any host is touched. The work is in module_utils/_placement.py; this
reads the hosts' ``teamllm_gpus`` facts and variables from ``hostvars``."""

from __future__ import annotations

from ansible.module_utils.common.validation import check_type_bool
from ansible.plugins.action import ActionBase

from ansible_collections.teamllm.stack.plugins.module_utils import _placement

ARGUMENT_SPEC = {
    "models": {"type": "list", "elements": "raw", "required": True},
    "policy": {"type": "str", "choices": list(_placement.POLICIES), "default": "binpack"},
    "reserve_gib": {"type": "float", "default": _placement.DEFAULT_RESERVE_GIB},
    "ram_reserve_gib": {"type": "float", "default": _placement.DEFAULT_RAM_RESERVE_GIB},
    "port_base": {"type": "int", "default": _placement.DEFAULT_PORT_BASE},
    "solver": {"type": "str", "choices": list(_placement.SOLVERS), "default": "auto"},
    "time_limit": {"type": "float", "default": _placement.DEFAULT_TIME_LIMIT},
    "allow_partial": {"type": "bool", "default": False},
    "hosts": {"type": "list", "elements": "str"},
}
MIB = 1024 * 1024
# Keys of the placement result returned as they are (besides placement, routes, unplaced).
SUMMARY_KEYS = ("solver", "solver_status", "optimal", "fallback_reason", "policy", "seconds",
                "candidates")


def host_inputs(hostvars, hosts):
    """``{host: {"gpus", "cpu_inference", "ram_bytes", "address"}}`` from hostvars; a list of
    problems for hosts whose facts are missing."""
    inputs, problems = {}, []
    for host in sorted(hosts):
        hv = hostvars[host]
        facts = hv.get("teamllm_gpus")
        if facts is None:
            facts = (hv.get("ansible_facts") or {}).get("teamllm_gpus")
        if facts is None:
            problems.append(
                f"host {host} has no teamllm_gpus facts: run teamllm.stack.gpu_facts on it first"
            )
            continue
        cpu = check_type_bool(hv.get("llm_cpu_inference", False))
        ram = hv.get("llm_cpu_ram_gib")
        if ram is not None and float(ram) > 0:  # 0 (the default) means: read it from the host
            ram_bytes = int(float(ram) * _placement.GIB)
        else:
            ram_bytes = int(hv.get("ansible_memtotal_mb") or 0) * MIB
        inputs[host] = {
            "gpus": facts,
            "cpu_inference": cpu,
            "ram_bytes": ram_bytes,
            "address": str(hv.get("ansible_host") or host),
        }
    return inputs, problems


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        hosts = args["hosts"] or task_vars.get("ansible_play_hosts_all") or []
        result["changed"] = False
        inputs, problems = host_inputs(task_vars["hostvars"], hosts)
        if problems:
            result.update(failed=True, msg="cannot place models:\n- " + "\n- ".join(problems))
            return result
        try:
            plan = _placement.plan(
                args["models"], inputs, policy=args["policy"], reserve_gib=args["reserve_gib"],
                port_base=args["port_base"], solver=args["solver"],
                time_limit=args["time_limit"], ram_reserve_gib=args["ram_reserve_gib"],
                allow_partial=args["allow_partial"],
            )
        except _placement.PlacementError as exc:
            partial = exc.result or {}
            result.update(failed=True, msg=str(exc), unplaced=exc.unplaced,
                          placement=partial.get("placement", {}), routes=partial.get("routes", {}))
            for key in SUMMARY_KEYS:
                if key in partial:
                    result[key] = partial[key]
            return result
        except ValueError as exc:  # PlacementInputError and other malformed input
            result.update(failed=True, msg=f"cannot place models: {exc}")
            return result
        result.update(placement=plan["placement"], routes=plan["routes"],
                      unplaced=plan["unplaced"])
        for key in SUMMARY_KEYS:
            result[key] = plan.get(key)
        placed = sum(len(h["instances"]) for h in plan["placement"].values())
        result["msg"] = (f"{placed} instance(s) on {len(plan['placement'])} host(s), "
                         f"solver {plan['solver']} ({plan['solver_status']})")
        return result
