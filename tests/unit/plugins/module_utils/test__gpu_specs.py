"""Unit tests for plugins/module_utils/_gpu_specs.py: GPU names as NVML spells them."""

from __future__ import annotations

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils._gpu_specs import lookup, words


@pytest.mark.parametrize(("name", "key", "bandwidth"), [
    ("NVIDIA GeForce RTX 4090", "rtx 4090", 1008),
    ("NVIDIA GeForce RTX 4060 Ti", "rtx 4060 ti", 288),
    ("RTX 4060 Ti 16GB", "rtx 4060 ti", 288),
    ("NVIDIA GeForce RTX 3090", "rtx 3090", 936),
    ("NVIDIA GeForce RTX 3090 Ti", "rtx 3090 ti", 1008),
    ("NVIDIA RTX A6000", "rtx a6000", 768),
    ("NVIDIA RTX 6000 Ada Generation", "rtx 6000 ada", 960),
    ("NVIDIA A100-PCIE-40GB", "a100", 1555),
    ("NVIDIA A100 80GB PCIe", "a100 80gb", 1935),
    ("NVIDIA A100-SXM4-80GB", "a100 sxm4 80gb", 2039),
    ("NVIDIA L4", "l4", 300),
    ("NVIDIA L40S", "l40s", 864),
    ("NVIDIA H100 PCIe", "h100", 2000),
    ("NVIDIA H100 80GB HBM3", "h100 hbm3", 3350),
    ("NVIDIA H200", "h200", 4800),
])
def test_lookup_picks_the_most_specific_entry(name, key, bandwidth):
    spec = lookup(name)
    assert spec.key == key and spec.bandwidth_gbps == bandwidth


def test_unknown_names_and_words():
    assert lookup("GPU0") is None and lookup("") is None
    assert words("NVIDIA A100-SXM4-80GB") == {"a100", "sxm4", "80gb"}
