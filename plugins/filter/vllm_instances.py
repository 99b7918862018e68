# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters of the vllm role; the logic lives in module_utils/_engine_vllm.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: vllm_instances
short_description: One host's placement as the vllm role's instances
description:
  - Takes C(placement[host]) of M(teamllm.stack.model_placement) (published by
    C(playbooks/placement.yml) as C(teamllm_placement)) and returns the C(vllm_instances)
    entries of its vllm instances - name (the placement's id), model (the C(download) of the
    model's C(llm_models) item - a tarball of its Hugging Face snapshot), served_name, port,
    device, gpus, tensor_parallel_size, gpu_memory_utilization, max_model_len, max_num_seqs.
  - Fails naming each model that has no C(download) for its quantization, or one that is not
    an entry of C(llm_downloads).
  - The same plugin file provides C(vllm_problems) (instances -> messages for names, ports
    and GPU sets that clash, or bad values), C(vllm_args) (instance, bind address, model
    directory -> the server's arguments), C(vllm_cuda_devices) (instance ->
    C(CUDA_VISIBLE_DEVICES)), C(vllm_docker_args) (instance, model directory, its path in the container, names of
    environment variables -> the C(docker run) options - C(--gpus device=N) per GPU, the model
    mounted read-only, C(--env NAME))
    and C(vllm_version_refused) (version, minimum, refused list -> a reason or "").
extends_documentation_fragment:
  - teamllm.stack.engine_mapping
  - teamllm.stack.engine_mapping.downloads
"""

EXAMPLES = r"""
- name: Show the vLLM instances the placement gives this host
  ansible.builtin.debug:
    msg: "{{ teamllm_placement | teamllm.stack.vllm_instances(llm_models, llm_downloads) }}"
"""

RETURN = r"""
_value:
  description: A list of C(vllm_instances) entries.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils import _engine_vllm as _ev


def vllm_instances(host_placement, models, downloads, host="this host"):
    try:
        return _ev.vllm_instances(host_placement, models, downloads, host=host)
    except _ev.VllmInstancesError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def vllm_problems(instances, host="this host", downloads=None):
    return _ev.problems(instances, host=host, downloads=downloads)


def vllm_args(instance, bind_address, model_path):
    return _ev.server_args(instance, bind_address, model_path)


def vllm_cuda_devices(instance):
    return _ev.cuda_visible_devices(instance)


def vllm_docker_args(instance, model_path, container_model_path, env_names=()):
    return _ev.docker_args(instance, model_path, container_model_path, env_names)


def vllm_version_refused(version, minimum, refused=()):
    return _ev.version_refused(version, minimum, refused)


class FilterModule:
    def filters(self):
        return {
            "vllm_instances": vllm_instances,
            "vllm_problems": vllm_problems,
            "vllm_args": vllm_args,
            "vllm_cuda_devices": vllm_cuda_devices,
            "vllm_docker_args": vllm_docker_args,
            "vllm_version_refused": vllm_version_refused,
        }
