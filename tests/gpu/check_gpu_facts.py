#!/usr/bin/env python3
"""Compare the gpu_facts module logic (real NVML through nvidia-ml-py) with nvidia-smi.

Run on a machine with an NVIDIA GPU, from the repository root:

    python3 tests/gpu/check_gpu_facts.py [OUT.json]

Prints one line per GPU field that differs and exits 1 if any does. The JSON holds both
readings and the differences; tests/gpu/results/ keeps what a run on real hardware gave.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_gpu_facts():
    path = ROOT / "plugins" / "module_utils" / "_gpu_facts.py"
    spec = importlib.util.spec_from_file_location("_gpu_facts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    gf = load_gpu_facts()
    import pynvml  # nvidia-ml-py

    nvml_facts = gf.from_nvml(pynvml)
    smi = subprocess.run(gf.nvidia_smi_command(), capture_output=True, text=True, check=True)
    banner = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=False)
    topo = subprocess.run(["nvidia-smi", "topo", "-m"], capture_output=True, text=True, check=False)
    smi_facts = gf.parse_nvidia_smi_csv(smi.stdout, cuda_driver_version=gf.parse_cuda_version(banner.stdout))
    gf.parse_nvlink_status(topo.stdout, smi_facts)
    problems = gf.compare(nvml_facts, smi_facts)
    if nvml_facts["cuda_driver_version"] != smi_facts["cuda_driver_version"]:
        problems.append(
            f"cuda_driver_version: nvml={nvml_facts['cuda_driver_version']!r} "
            f"nvidia-smi={smi_facts['cuda_driver_version']!r}"
        )
    for a, b in zip(nvml_facts["gpus"], smi_facts["gpus"]):
        if a["nvlink_peers"] != b["nvlink_peers"]:
            problems.append(f"gpu{a['index']}.nvlink_peers: {a['nvlink_peers']} vs {b['nvlink_peers']}")
    result = {
        "nvml": nvml_facts,
        "nvidia_smi": smi_facts,
        "nvidia_smi_csv": smi.stdout,
        "topo": topo.stdout,
        "problems": problems,
    }
    if len(argv) > 1:
        Path(argv[1]).write_text(json.dumps(result, indent=2, sort_keys=True))
    for gpu in nvml_facts["gpus"]:
        print("nvml:", json.dumps(gpu, sort_keys=True))
    for gpu in smi_facts["gpus"]:
        print("smi: ", json.dumps(gpu, sort_keys=True))
    print("warnings:", nvml_facts["warnings"])
    for line in problems:
        print("DIFF", line)
    print("check_gpu_facts:", "OK" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
