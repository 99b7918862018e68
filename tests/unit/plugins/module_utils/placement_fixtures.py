"""Real placements for the engine-mapping tests: hosts and GPUs as the placement takes them,
planned by _placement.plan (imported by the test__engine_*.py files beside this one)."""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils import _engine_instances as ei
from ansible_collections.teamllm.stack.plugins.module_utils import _placement

GIB = 1024**3


def gpus(*sizes_gib):
    """A host's GPUs of these sizes (GiB), as gpu_facts reports them."""
    return {"gpus": [{"index": i, "name": f"GPU{i}", "uuid": f"GPU-{i}",
                      "memory_total": int(s * GIB)} for i, s in enumerate(sizes_gib)]}


def plan(models, hosts):
    """The placement of ``models`` (llm_models items) on ``hosts``: {name: {gpus, cpu, ram
    (GiB), address}}."""
    inputs = {
        name: {"gpus": spec.get("gpus", {"gpus": []}), "cpu_inference": spec.get("cpu", False),
               "ram_bytes": int(spec.get("ram", 0) * GIB), "address": spec.get("address", name)}
        for name, spec in hosts.items()
    }
    return _placement.plan(ei.placement_models(models), inputs)
