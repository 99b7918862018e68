"""Realistic plans for the plan-report tests: the team of issue 11 (two RTX 4090, an RTX 3090
with an RTX A6000, an RTX 4060 Ti 16 GB) placed by _placement.plan with the real estimator and
catalog, with the ports and routes of the deployment plan as model_placement returns them; GPUs
declared through _gpu_facts as the inventory declares them."""

from __future__ import annotations

import functools
import json

from ansible_collections.teamllm.stack.plugins.module_utils import _gpu_facts, _placement
from ansible_collections.teamllm.stack.plugins.module_utils._engines import deployment

GIB = 1024**3

TEAM_GPUS = {
    "gpu-a": [{"name": "NVIDIA GeForce RTX 4090", "memory_gb": 24, "count": 2, "power_limit_w": 450}],
    "gpu-b": [{"name": "NVIDIA GeForce RTX 3090", "memory_gb": 24},
              {"name": "NVIDIA RTX A6000", "memory_gb": 48}],
    "gpu-c": [{"name": "NVIDIA GeForce RTX 4060 Ti", "memory_gb": 16}],
}
TEAM_MODELS = [
    {"name": "llama-3.1-8b", "engine": "llama_cpp", "quantizations": ["Q8_0"], "context": 8192,
     "parallel": 4, "replicas": 2},
    {"name": "qwen2.5-14b", "engine": "llama_cpp", "quantizations": ["Q5_K_M", "Q4_K_M"],
     "context": 8192, "parallel": 2},
    {"name": "qwen2.5-32b", "engine": "llama_cpp", "quantizations": ["Q5_K_M", "Q4_K_M"],
     "context": 16384, "parallel": 2},
    {"name": "mixtral-8x7b", "engine": "llama_cpp", "quantizations": ["Q4_K_M"], "context": 8192,
     "parallel": 2},
    {"name": "bge-m3", "engine": "llama_cpp", "quantizations": ["F16"], "context": 8192,
     "replicas": 2},
    {"name": "qwen2.5-72b", "engine": "vllm", "quantizations": ["BF16"]},  # fits nowhere
]


def facts(declared):
    return _gpu_facts.from_declared(declared)


def hosts(gpus=None, extra=None):
    gpus = TEAM_GPUS if gpus is None else gpus
    out = {name: {"gpus": facts(d), "address": f"10.0.0.{11 + n}"}
           for n, (name, d) in enumerate(sorted(gpus.items()))}
    out.update(extra or {})
    return out


def plan(models, host_inputs, gateways=("gw",), **kwargs):
    """A placement of ``models`` on ``host_inputs`` with its deployment (every node's engines
    listening on its address, reached by ``gateways``), through JSON as Ansible hands it over."""
    result = _placement.plan(models, host_inputs, allow_partial=True, **kwargs)
    downloads = {"weights": {}}
    nodes = {name: {"binds": {"default": spec.get("address") or name}}
             for name, spec in host_inputs.items()}
    result.update(deployment.deployment_plan(
        result["placement"], [{**m, "download": "weights"} for m in models], downloads,
        nodes=nodes, gateways=gateways))
    return json.loads(json.dumps(result))


@functools.cache
def _team_json():
    return json.dumps(plan(TEAM_MODELS, hosts()))


def team_plan():
    """The team's plan (a fresh copy each call)."""
    return json.loads(_team_json())


def team_facts():
    """``{host: teamllm_gpus}`` of the team, as the report's ``gpus`` argument takes them."""
    return {name: facts(d) for name, d in TEAM_GPUS.items()}
