# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Template helpers of the vllm role; the logic lives in module_utils/_engines/vllm.py. Each
filter is documented in the .yml file of its name beside this one."""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils._engines import vllm as _vllm


def vllm_problems(instances, host="this host", downloads=None):
    return _vllm.problems(instances, host=host, downloads=downloads)


def vllm_args(instance, bind_address, model_path):
    return _vllm.server_args(instance, bind_address, model_path)


def vllm_cuda_devices(instance):
    return _vllm.cuda_visible_devices(instance)


def vllm_docker_args(instance, model_path, container_model_path, env_names=()):
    return _vllm.docker_args(instance, model_path, container_model_path, env_names)


def vllm_version_refused(version, minimum, refused=()):
    return _vllm.version_refused(version, minimum, refused)


class FilterModule:
    def filters(self):
        return {
            "vllm_problems": vllm_problems,
            "vllm_args": vllm_args,
            "vllm_cuda_devices": vllm_cuda_devices,
            "vllm_docker_args": vllm_docker_args,
            "vllm_version_refused": vllm_version_refused,
        }
