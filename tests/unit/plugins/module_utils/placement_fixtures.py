"""Real placements for the engine-mapping tests: hosts and GPUs as the placement takes them,
planned by _placement.plan with the ports of the deployment plan (imported by the
test__engines_*.py files beside this one)."""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils import _engines, _placement
from ansible_collections.teamllm.stack.plugins.module_utils._engines import deployment
from ansible_collections.teamllm.stack.plugins.module_utils._engines.common import model_items

GIB = 1024**3


def gpus(*sizes_gib):
    """A host's GPUs of these sizes (GiB), as gpu_facts reports them."""
    return {"gpus": [{"index": i, "name": f"GPU{i}", "uuid": f"GPU-{i}",
                      "memory_total": int(s * GIB)} for i, s in enumerate(sizes_gib)]}


def plan(models, hosts):
    """The placement of ``models`` (llm_models items) on ``hosts``: {name: {gpus, cpu, ram
    (GiB), address}}."""
    inputs = hosts_input(hosts)
    result = _placement.plan(_engines.placement_models(models), inputs)
    result["placement"] = deployment.assign_ports(result["placement"])
    return result


def hosts_input(hosts):
    """The placement's host inputs for {name: {gpus, cpu, ram (GiB), address}}."""
    return {
        name: {"gpus": spec.get("gpus", {"gpus": []}), "cpu_inference": spec.get("cpu", False),
               "ram_bytes": int(spec.get("ram", 0) * GIB), "address": spec.get("address", name)}
        for name, spec in hosts.items()
    }


def instances(engine, host_placement, models, downloads=None, host="this host"):
    """``engine``'s role instances for one host's placement (as the deployment plan publishes
    them); raises EngineError with the problems."""
    placed = [i for i in (host_placement or {}).get("instances", []) if i.get("engine") == engine]
    result, problems = _engines.ENGINES[engine].mapping.instances(
        placed, model_items(models), downloads, host)
    if problems:
        raise _engines.EngineError(problems)
    return result
