#!/usr/bin/env python3
"""Compare tests/gpu/results/measurements.jsonl with the estimator (run here, not on the GPU).

PYTHONPATH=.collections python tests/gpu/compare_estimates.py tests/gpu/results/measurements.jsonl
"""

import json
import sys

from ansible_collections.teamllm.stack.plugins.module_utils._estimator import estimate

M = 2**20
CASES = {
    "tiny": ("teamllm-tiny", "Q8_0"),
    "llama8b": ("llama-3.1-8b", None),
    "qwen05b": ("qwen2.5-0.5b", None),
    "qwen7b": ("qwen2.5-7b", None),
}
QM = {"q8_0": "Q8_0", "f16": "F16", "q4_k_m": "Q4_K_M"}
rows = []
for l in open(sys.argv[1]):
    r = json.loads(l)
    lab = r["label"]
    key = lab.split("-c")[0]
    shape, q = key.split("-", 1)
    name = CASES[shape][0]
    ov = None
    if shape in ("qwen05b", "qwen7b"):
        ov = {"attn_bias": False}
    e = estimate(
        name, "llama_cpp", QM[q], r["ctx"], parallel=r["parallel"], flash_attention=False, overrides=ov
    )
    meas = r.get("after_request_used", 0) - r["baseline_used"]
    est = e.per_gpu_bytes[0]
    print(
        f"{lab:28s} meas={meas / M:7.0f} est={est / M:7.0f} err={100 * (est - meas) / meas:+6.1f}%  host_meas={r['host_rss'] / M:6.0f} host_est={e.host_bytes / M:6.0f}"
    )
