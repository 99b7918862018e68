#!/usr/bin/python
# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0

DOCUMENTATION = r"""
module: gpu_facts
short_description: Gather NVIDIA GPU facts (NVML, nvidia-smi, or declared in the inventory)
description:
  - Reads every NVIDIA GPU of the host through NVML (the C(pynvml) module of nvidia-ml-py)
    and falls back to C(nvidia-smi --query-gpu) when NVML cannot be used.
  - With O(declared), uses GPUs declared in the inventory instead, to plan placements before
    the machines arrive or for hosts without a GPU.
  - A host without an NVIDIA GPU is not a failure, its list is empty and C(reason) says why.
  - Sets C(teamllm_gpus) in the host's facts; the placement plugin reads it.
version_added: 0.1.0
author: teamllm.stack developers (!UNKNOWN)
options:
  declared:
    description:
      - GPUs declared for this host. Each item has C(name), memory as C(memory_gb) (GiB, as cards
        are sold), C(memory_mib) or C(memory_bytes), and optionally C(count) (default 1),
        C(compute_capability), C(nvlink) (the item's GPUs are NVLinked together), C(pcie_gen),
        C(pcie_width), C(power_limit_w) and C(memory_bandwidth_gbps) (peak GB/s, used by the
        plan report's throughput prediction).
      - An empty list declares a host without GPU. Unset, the GPUs are read from the host.
    type: list
    elements: dict
  source:
    description:
      - Where to read the facts. V(auto) uses O(declared) when it is set, else NVML, else nvidia-smi.
    type: str
    choices: [auto, declared, nvml, nvidia-smi]
    default: auto
  nvidia_smi_path:
    description: The nvidia-smi binary, when it is not on the PATH.
    type: str
    default: nvidia-smi
requirements:
  - nvidia-ml-py (C(pynvml)) on the target for NVML; otherwise nvidia-smi
extends_documentation_fragment:
  - teamllm.stack.attributes
  - teamllm.stack.attributes.action_group
attributes:
  check_mode:
    support: full
    details: Reads only; runs the same in check mode.
  diff_mode:
    support: none
  facts:
    description: Returns an C(ansible_facts) dictionary that updates the host's facts.
    support: full
"""

EXAMPLES = r"""
- name: Read the GPUs of each node
  teamllm.stack.gpu_facts:

- name: Plan with hardware that has not arrived yet
  teamllm.stack.gpu_facts:
    declared:
      - name: NVIDIA GeForce RTX 3090
        memory_gb: 24
        count: 2
        compute_capability: "8.6"
        nvlink: true

- name: Show what was found
  ansible.builtin.debug:
    msg: "{{ teamllm_gpus.gpu_count }} GPU(s), {{ teamllm_gpus.memory_total | human_readable }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    teamllm_gpus:
      description: The host's GPUs and totals.
      type: dict
      contains:
        source:
          description: Where the facts came from, V(nvml), V(nvidia-smi), V(declared) or V(none).
          type: str
        gpu_count:
          description: Number of GPUs.
          type: int
        memory_total:
          description: Sum of the GPUs' memory in bytes.
          type: int
        driver_version:
          description: NVIDIA driver version, null when declared or unknown.
          type: str
        cuda_driver_version:
          description: Highest CUDA version the driver supports, as C(13.0).
          type: str
        reason:
          description: Why the list is empty (no driver, no GPU, none declared); null otherwise.
          type: str
        warnings:
          description: Fields NVML could not read (besides "not supported" ones).
          type: list
          elements: str
        gpus:
          description:
            - One dict per GPU, by index, with C(index), C(uuid), C(pci_bus_id), C(name),
              C(memory_total), C(memory_used), C(memory_free) (bytes), C(compute_capability)
              (C(9.0)), C(driver_version), C(cuda_driver_version), C(pcie_gen), C(pcie_gen_max),
              C(pcie_width), C(power_limit_w), C(memory_bandwidth_gbps), C(temperature_c),
              C(persistence_mode), C(mig_mode), C(ecc_enabled), C(nvlink_peers) (indices)
              and C(source).
            - C(memory_bandwidth_gbps) is the peak memory bandwidth in GB/s, from NVML's memory
              bus width and maximum memory clock (two transfers per clock), or declared; null
              from nvidia-smi.
            - Fields a GPU cannot report are null.
          type: list
          elements: dict
  sample:
    teamllm_gpus:
      source: nvml
      gpu_count: 1
      memory_total: 85520809984
      driver_version: "580.159.04"
      cuda_driver_version: "13.0"
      reason: null
      warnings: []
      gpus:
        - index: 0
          name: NVIDIA H100 80GB HBM3
          memory_total: 85520809984
          compute_capability: "9.0"
          nvlink_peers: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.teamllm.stack.plugins.module_utils._gpu_facts import (
    GpuFactsError,
    collect,
)


def _load_nvml():
    import pynvml  # nvidia-ml-py; ImportError when it is not installed

    return pynvml


def run_module(module, load_nvml=None):
    """The module's work, separate from main() so tests can inject a fake NVML."""
    params = module.params
    load_nvml = load_nvml or _load_nvml
    smi = None
    if params["source"] in ("auto", "nvidia-smi"):
        smi = module.get_bin_path(params["nvidia_smi_path"])

    def run(argv):
        return module.run_command(argv, check_rc=False)

    try:
        facts = collect(
            declared=params["declared"],
            source=params["source"],
            load_nvml=load_nvml,
            run_command=run,
            nvidia_smi=smi,
        )
    except GpuFactsError as exc:
        module.fail_json(msg=str(exc))
    return {"changed": False, "ansible_facts": {"teamllm_gpus": facts}}


def main():
    module = AnsibleModule(
        argument_spec={
            "declared": {"type": "list", "elements": "dict"},
            "source": {
                "type": "str",
                "default": "auto",
                "choices": ["auto", "declared", "nvml", "nvidia-smi"],
            },
            "nvidia_smi_path": {"type": "str", "default": "nvidia-smi"},
        },
        supports_check_mode=True,
    )
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
