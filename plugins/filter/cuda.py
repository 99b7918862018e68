# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters for CUDA and NVIDIA driver compatibility; the logic lives in
module_utils/_cuda_compat.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: cuda_min_driver
short_description: The lowest NVIDIA driver version a CUDA toolkit version needs
description:
  - Takes a CUDA version (C(major.minor) or C(major.minor.patch)) and a table of CUDA
    C(major.minor) to minimum Linux driver version, and returns the minimum driver version.
  - The same plugin file provides C(cuda_driver_supports) (driver, cuda, table -> bool),
    C(cuda_max_version) (driver, table -> newest CUDA the driver runs),
    C(cuda_major_minor) (C(12.8.1) -> C(12.8)) and
    C(cuda_package_suffix) (C(12.8) -> C(12-8)).
options:
  _input:
    description: The CUDA version.
    type: str
    required: true
  table:
    description: CUDA major.minor -> minimum driver version (C(_cuda_min_driver) of the cuda role).
    type: dict
    required: true
  minor_compat:
    description: CUDA major -> minimum driver for minor-version compatibility; omit to disable.
    type: dict
"""

EXAMPLES = r"""
- name: Refuse a driver too old for the requested CUDA
  ansible.builtin.assert:
    that: driver_version | teamllm.stack.cuda_driver_supports(cuda_version, _cuda_min_driver)
    fail_msg: "CUDA {{ cuda_version }} needs driver {{ cuda_version | teamllm.stack.cuda_min_driver(_cuda_min_driver) }}"
"""

RETURN = r"""
_value:
  description: The minimum driver version, e.g. C(570.26).
  type: str
"""

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
