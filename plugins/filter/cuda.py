# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters for CUDA and NVIDIA driver compatibility; the logic lives in
module_utils/_cuda_compat.py. Each filter is documented in the .yml file of its name beside
this one."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils._cuda_compat import (
    CudaCompatError,
    cuda_key,
    driver_supports,
    max_cuda,
    min_driver,
    package_suffix,
)


def _wrap(func):
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CudaCompatError as exc:
            raise AnsibleFilterError(str(exc)) from exc

    wrapper.__name__ = func.__name__
    return wrapper


def cuda_min_driver(cuda_version, table, minor_compat=None):
    return min_driver(cuda_version, table, minor_compat)


def cuda_driver_supports(driver_version, cuda_version, table, minor_compat=None):
    return driver_supports(driver_version, cuda_version, table, minor_compat)


def cuda_max_version(driver_version, table):
    return max_cuda(driver_version, table)


def cuda_major_minor(cuda_version):
    return cuda_key(cuda_version)


def cuda_package_suffix(cuda_version):
    return package_suffix(cuda_version)


class FilterModule:
    def filters(self):
        return {
            "cuda_min_driver": _wrap(cuda_min_driver),
            "cuda_driver_supports": _wrap(cuda_driver_supports),
            "cuda_max_version": _wrap(cuda_max_version),
            "cuda_major_minor": _wrap(cuda_major_minor),
            "cuda_package_suffix": _wrap(cuda_package_suffix),
        }
