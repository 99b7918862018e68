# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters from the placement to the ollama role; the logic lives in
module_utils/_engine_ollama.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: ollama_instances
short_description: One host's placement as the ollama role's instances
description:
  - "Takes C(placement[host]) of M(teamllm.stack.model_placement) (published by
    C(playbooks/placement.yml) as C(teamllm_placement)) and returns the C(ollama_instances)
    entries of its ollama instances, one per served name: name, id, port, context, parallel,
    cuda_visible_devices, flash_attention, kv_cache_type, sched_spread, and the weights source
    (C(pull), C(import), C(system), C(template), C(parameters)) from the C(ollama) key of the
    model's C(llm_models) item."
  - Fails naming each placed model whose C(llm_models) item has no C(ollama) source for its
    quantization.
  - "The same plugin file provides C(ollama_server) (instances to the one server's settings:
    port of the first instance, largest context and parallel count, union of the GPUs, ...),
    C(ollama_model_plan) (instances, C(llm_downloads), source, custom models to the models to
    make present, bases first), C(ollama_stale_models) (names on the server and the plan to the
    names to remove) and C(ollama_blob_downloads) (manifest, entry name, entry to the
    C(llm_downloads) entries of its blobs, each checked against its digest)."
extends_documentation_fragment:
  - teamllm.stack.engine_mapping
"""

EXAMPLES = r"""
- name: Show the Ollama instances the placement gives this host
  ansible.builtin.debug:
    msg: "{{ teamllm_placement | teamllm.stack.ollama_instances(llm_models) }}"
"""

RETURN = r"""
_value:
  description: A list of C(ollama_instances) entries.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import _engine_ollama as _eo


def _wrap(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except _eo.OllamaPlanError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def ollama_instances(host_placement, models, host="this host"):
    return _wrap(_eo.ollama_instances, host_placement, models, host=host)


def ollama_server(instances):
    return _eo.server_settings(instances)


def ollama_model_plan(instances, downloads, source="mirror", custom=None, host="this host"):
    return _wrap(_eo.model_plan, instances, downloads, source=source, custom=custom, host=host)


def ollama_stale_models(present, plan):
    return _eo.stale_models(present, plan)


def ollama_blob_downloads(manifest, entry_name, entry):
    return _wrap(_eo.blob_downloads, manifest, entry_name, entry)


class FilterModule:
    def filters(self):
        return {
            "ollama_instances": ollama_instances,
            "ollama_server": ollama_server,
            "ollama_model_plan": ollama_model_plan,
            "ollama_stale_models": ollama_stale_models,
            "ollama_blob_downloads": ollama_blob_downloads,
        }
