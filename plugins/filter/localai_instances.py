# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters from the placement to LocalAI; the logic lives in module_utils/_engine_localai.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: localai_instances
short_description: One host's placement as the localai role's instances
description:
  - Takes C(placement[host]) of M(teamllm.stack.model_placement) (published by
    C(playbooks/placement.yml) as C(teamllm_placement)) and returns the C(localai_instances)
    entries of its localai instances - name (the placement's id), model (the C(download) of the
    model's C(llm_models) item for the chosen quantization), alias (the served name), port,
    context (context x parallel), parallel, gpu_layers, gpus (UUIDs, else indexes, for Docker's
    device requests), flash_attention and extra (tensor split, KV cache types - further keys
    of LocalAI's model YAML).
  - Fails naming each model that has no C(download) for its quantization, or one that is not
    an entry of C(llm_downloads).
  - The same plugin file provides C(localai_model_definition) (instance, GGUF file name,
    threads -> LocalAI's model YAML as a dict).
extends_documentation_fragment:
  - teamllm.stack.engine_mapping
  - teamllm.stack.engine_mapping.downloads
"""

EXAMPLES = r"""
- name: Show the LocalAI instances the placement gives this host
  ansible.builtin.debug:
    msg: "{{ teamllm_placement | teamllm.stack.localai_instances(llm_models, llm_downloads) }}"
"""

RETURN = r"""
_value:
  description: A list of C(localai_instances) entries.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import _engine_localai as _el
from ansible_collections.teamllm.stack.plugins.module_utils._engine_instances import (
    EngineInstancesError,
)


def localai_instances(host_placement, models, downloads, host="this host"):
    try:
        return _el.localai_instances(host_placement, models, downloads, host=host)
    except EngineInstancesError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def localai_model_definition(instance, model_file, threads=0):
    try:
        return _el.model_definition(instance, model_file, threads)
    except (KeyError, ValueError) as exc:
        raise AnsibleFilterError(f"localai instance {instance.get('name', '?')}: {exc}") from exc


class FilterModule:
    def filters(self):
        return {
            "localai_instances": localai_instances,
            "localai_model_definition": localai_model_definition,
        }
