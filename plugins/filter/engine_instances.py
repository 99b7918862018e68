# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters from the placement to the engines; the logic lives in
module_utils/_engine_instances.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: engine_instances
short_description: One host's placement as the llama_cpp role's instances
description:
  - Takes C(placement[host]) of M(teamllm.stack.model_placement) (published by
    C(playbooks/placement.yml) as C(teamllm_placement)) and returns the C(llama_cpp_instances)
    entries of its llama_cpp instances - name (the placement's id), model (the C(download) of
    the model's C(llm_models) item for the chosen quantization), alias (the served name), port,
    context (context x parallel), parallel, gpu_layers, flash_attention and extra_env
    (C(CUDA_VISIBLE_DEVICES), split mode, tensor split, KV cache types).
  - Fails naming each model that has no C(download) for its quantization, or one that is not
    an entry of C(llm_downloads).
  - The same plugin file provides C(placement_models) (llm_models -> the placement's input,
    without the engine-only key C(download)), C(undeployed_instances) (placement -> messages
    for instances of engines this release does not deploy) and C(gateway_routes) (placement,
    gateway host, bind addresses -> the routes that gateway uses) and C(engine_binds) (hosts,
    hostvars -> each host's engine bind addresses, for C(gateway_routes)) and C(backend_keys)
    (llm_nodes hosts, hostvars -> served name to the API key its vLLM or LocalAI backend requires).
extends_documentation_fragment:
  - teamllm.stack.engine_mapping
  - teamllm.stack.engine_mapping.downloads
"""

EXAMPLES = r"""
- name: Show the llama.cpp instances the placement gives this host
  ansible.builtin.debug:
    msg: "{{ teamllm_placement | teamllm.stack.engine_instances(llm_models, llm_downloads) }}"
"""

RETURN = r"""
_value:
  description: A list of C(llama_cpp_instances) entries.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import _engine_instances as _ei


def engine_instances(host_placement, models, downloads, host="this host"):
    try:
        return _ei.llama_cpp_instances(host_placement, models, downloads, host=host)
    except _ei.EngineInstancesError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def placement_models(models):
    return _ei.placement_models(models)


def undeployed_instances(placement, deployed=_ei.DEPLOYED_ENGINES):
    return _ei.undeployed(placement, tuple(deployed))


def gateway_routes(placement, gateway_host, bind_addresses=None):
    try:
        return _ei.gateway_routes(placement, gateway_host, bind_addresses)
    except _ei.EngineInstancesError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def engine_binds(hosts, hostvars):
    """{host: {"default": llm_engine_bind_address, <engine>: <engine>_bind_address}} from the
    inventory (hostvars), for gateway_routes."""
    result = {}
    for host in hosts or []:
        hv = hostvars[host] if host in hostvars else {}
        binds = {"default": str(hv.get("llm_engine_bind_address") or _ei.LOOPBACK)}
        for engine in _ei.KNOWN_ENGINES:
            value = hv.get(f"{engine}_bind_address")
            if value:
                binds[engine] = str(value)
        result[host] = binds
    return result


def backend_keys(hosts, hostvars):
    """{served name: API key} for the engines that require one (vLLM with vllm_api_key,
    LocalAI with localai_api_key), read from each llm_nodes host's placement and inventory, so
    the gateway can present the backend's own key (never the client's)."""
    placements, keys = {}, {}
    for host in hosts or []:
        hv = hostvars[host] if host in hostvars else {}
        placements[host] = hv.get("teamllm_placement") or {}
        keys[host] = {engine: hv.get(f"{engine}_api_key") for engine in _ei.KEYED_ENGINES}
    try:
        return _ei.backend_keys(placements, keys)
    except _ei.EngineInstancesError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {
            "engine_instances": engine_instances,
            "placement_models": placement_models,
            "undeployed_instances": undeployed_instances,
            "gateway_routes": gateway_routes,
            "engine_binds": engine_binds,
            "backend_keys": backend_keys,
        }
