#!/usr/bin/env python3
"""Compare GPU measurements (tests/gpu/results/*.jsonl) with the estimator. Runs anywhere.

    PYTHONPATH=.collections python tests/gpu/compare_estimates.py RESULTS.jsonl [...]
    PYTHONPATH=.collections python tests/gpu/compare_estimates.py --predict validation

Prints a Markdown table: measured GPU memory (device used after one request minus the idle
reading), the estimate, and the error (estimate - measured) / measured. The target is an
estimate never below the measurement and at most 10% above it.
"""

from __future__ import annotations

import json
import sys

from ansible_collections.teamllm.stack.plugins.module_utils._estimator import estimate

MIB = 1024 * 1024
# label prefix -> catalog model; the files were written as the llama architecture without
# q/k/v biases (tests/gpu/gen_gguf.py), hence the override for the Qwen shapes.
MODELS = {
    "tiny": ("teamllm-tiny", None),
    "llama8b": ("llama-3.1-8b", None),
    "mistral7b": ("mistral-7b", None),
    "qwen05b": ("qwen2.5-0.5b", {"attn_bias": False}),
    "qwen3b": ("qwen2.5-3b", {"attn_bias": False}),
    "qwen7b": ("qwen2.5-7b", {"attn_bias": False}),
    "qwen14b": ("qwen2.5-14b", {"attn_bias": False}),
    "yi34b": ("yi-34b", None),
}
VALIDATION = [
    ("mistral7b-q4_0-c8192", 8192, 1, []),
    ("qwen3b-q8_0-c16384-np2", 16384, 2, []),
    ("llama8b-q8_0-c8192-ngl20", 8192, 1, ["-ngl", "20"]),
    ("qwen14b-q4_0-c4096", 4096, 1, []),
    ("llama8b-q4_k_m-c32768", 32768, 1, []),
    ("yi34b-q4_0-c4096", 4096, 1, []),
]


def case_estimate(label: str, ctx: int, parallel: int, extra: list[str]):
    shape, quant = label.split("-")[:2]
    name, overrides = MODELS[shape]
    ngl = int(extra[extra.index("-ngl") + 1]) if "-ngl" in extra else None
    return estimate(
        name,
        "llama_cpp",
        quant.upper(),
        ctx,
        parallel=parallel,
        flash_attention=False,
        n_gpu_layers=ngl,
        overrides=overrides,
    )


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--predict"]:
        print("| case | estimate GPU MiB | estimate host MiB |")
        print("|---|---:|---:|")
        for label, ctx, parallel, extra in VALIDATION:
            est = case_estimate(label, ctx, parallel, extra)
            print(f"| {label} | {est.per_gpu_bytes[0] / MIB:.0f} | {est.host_bytes / MIB:.0f} |")
        return 0
    print("| case | file MiB | measured GPU MiB | estimate MiB | error | host RSS MiB | host estimate MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    worst_low, worst_high = float("inf"), float("-inf")
    for path in argv[1:]:
        with open(path) as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        for rec in records:
            if not rec.get("loaded"):
                print(f"| {rec['label']} | not loaded | | | | | |")
                continue
            est = case_estimate(rec["label"], rec["ctx"], rec["parallel"], rec.get("extra", []))
            measured = rec["after_request_used"] - rec["baseline_used"]
            err = (est.per_gpu_bytes[0] - measured) / measured * 100
            worst_low, worst_high = min(worst_low, err), max(worst_high, err)
            print(
                f"| {rec['label']} | {rec['file_bytes'] / MIB:.0f} | {measured / MIB:.0f} | "
                f"{est.per_gpu_bytes[0] / MIB:.0f} | {err:+.1f}% | {rec.get('host_rss', 0) / MIB:.0f} | "
                f"{est.host_bytes / MIB:.0f} |"
            )
    print(f"\nerror range: {worst_low:+.1f}% .. {worst_high:+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
