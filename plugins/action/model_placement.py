# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Action: place the wanted models on the GPUs of every host of the play and plan their
deployment, once, on the controller, before any host is touched. The work is in
module_utils/_placement (where each model runs) and module_utils/_engines (what each host runs
and each gateway routes); this reads the hosts' ``teamllm_gpus`` facts and inventory
variables from ``hostvars``. API keys are compared, never returned."""

from __future__ import annotations

from ansible.module_utils.common.validation import check_type_bool
from ansible.plugins.action import ActionBase

from ansible_collections.teamllm.stack.plugins.module_utils import _engines, _placement
from ansible_collections.teamllm.stack.plugins.module_utils._engines import deployment, ollama

ARGUMENT_SPEC = {
    "models": {"type": "list", "elements": "raw", "required": True},
    "downloads": {"type": "dict", "default": {}},
    "policy": {"type": "str", "choices": list(_placement.POLICIES), "default": "binpack"},
    "reserve_gib": {"type": "float", "default": _placement.DEFAULT_RESERVE_GIB},
    "ram_reserve_gib": {"type": "float", "default": _placement.DEFAULT_RAM_RESERVE_GIB},
    "port_base": {"type": "int", "default": deployment.DEFAULT_PORT_BASE},
    "solver": {"type": "str", "choices": list(_placement.SOLVERS), "default": "auto"},
    "time_limit": {"type": "float", "default": _placement.DEFAULT_TIME_LIMIT},
    "allow_partial": {"type": "bool", "default": False},
    "hosts": {"type": "list", "elements": "str"},
    "gateways": {"type": "list", "elements": "str", "default": []},
}
MIB = 1024 * 1024
# Keys of the placement result returned as they are (besides placement and unplaced).
SUMMARY_KEYS = ("solver", "solver_status", "optimal", "fallback_reason", "policy", "seconds",
                "candidates", "bound", "gap", "quality", "quality_bound", "quality_gap",
                "packing_gap", "placed", "wanted", "estimates", "greedy_seconds",
                "solver_seconds", "explain_seconds")


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


def node_inputs(hostvars, hosts):
    """What the deployment plan reads of each host's inventory: the engines' bind addresses,
    their API keys (compared, never returned), Ollama's model source and custom models."""
    nodes = {}
    for host in sorted(hosts):
        hv = hostvars[host]
        binds = {"default": str(hv.get("llm_engine_bind_address") or _engines.LOOPBACK)}
        keys = {}
        for name, engine in _engines.ENGINES.items():
            if hv.get(engine.bind_variable):
                binds[name] = str(hv[engine.bind_variable])
            if engine.keyed:
                keys[name] = str(hv.get(engine.key_variable) or "")
        nodes[host] = {
            "binds": binds,
            "keys": keys,
            "ollama_model_source": hv.get("ollama_model_source")
            or ollama.default_source(hv.get("llm_artifact_source")),
            "ollama_models": hv.get("ollama_models") or [],
        }
    return nodes


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        hosts = args["hosts"] or task_vars.get("ansible_play_hosts_all") or []
        result["changed"] = False
        hostvars = task_vars["hostvars"]
        inputs, problems = host_inputs(hostvars, hosts)
        if problems:
            result.update(failed=True, msg="cannot place models:\n- " + "\n- ".join(problems))
            return result
        try:
            plan = _placement.plan(
                _engines.placement_models(args["models"]), inputs, policy=args["policy"],
                reserve_gib=args["reserve_gib"], solver=args["solver"],
                time_limit=args["time_limit"], ram_reserve_gib=args["ram_reserve_gib"],
                allow_partial=args["allow_partial"],
            )
        except _placement.PlacementError as exc:
            partial = exc.result or {}
            result.update(failed=True, msg=str(exc), unplaced=exc.unplaced,
                          placement=partial.get("placement", {}))
            for key in SUMMARY_KEYS:
                if key in partial:
                    result[key] = partial[key]
            return result
        except ValueError as exc:  # PlacementInputError and other malformed input
            result.update(failed=True, msg=f"cannot place models: {exc}")
            return result
        try:
            deployed = deployment.deployment_plan(
                plan["placement"], args["models"], args["downloads"],
                nodes=node_inputs(hostvars, plan["placement"]), gateways=args["gateways"],
                port_base=args["port_base"])
        except _engines.EngineError as exc:
            result.update(failed=True, placement=plan["placement"], unplaced=plan["unplaced"],
                          msg="cannot deploy the placement:\n- " + "\n- ".join(exc.problems))
            return result
        result.update(deployed, unplaced=plan["unplaced"])
        for key in SUMMARY_KEYS:
            if key in plan:
                result[key] = plan[key]
        placed = sum(len(h["instances"]) for h in plan["placement"].values())
        result["msg"] = (f"{placed} instance(s) on {len(plan['placement'])} host(s), "
                         f"solver {plan['solver']} ({plan['solver_status']})")
        return result
