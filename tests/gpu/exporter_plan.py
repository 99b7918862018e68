#!/usr/bin/env python3
"""The plan side of tests/gpu/exporter_check.sh, made here (the controller, no GPU).

    PYTHONPATH=.collections python tests/gpu/exporter_plan.py --out .gpucarry-mon \
        [--context 8192] [--parallel 32] [--quantization q8_0]

Places Llama 3.1 8B on one NVIDIA H200 with the collection's own placement and deployment
plan, and renders the environment the llama_cpp role gives llama-server for it, both through
tests/gpu/role_env.py (one place for "the flags the plan gives"). Writes into --out:

- role.env: the llama_cpp role's LLAMA_ARG_* variables (model path /tmp/models/<file>);
- gpu-plan.json: what the gpu_exporter role writes for that node (filter gpu_plan over the
  published placement), with the GPU matched by index (the declared H200 has no UUID);
- estimate.json: the placement's instance (estimated bytes per GPU and their breakdown).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--context", type=int, default=8192)
    ap.add_argument("--parallel", type=int, default=32)
    ap.add_argument("--quantization", default="q8_0")
    ap.add_argument("--role-env", default=os.path.join(HERE, "role_env.py"),
                    help="tests/gpu/role_env.py (renders the llama_cpp role's environment)")
    args = ap.parse_args(argv)
    role_env_py = args.role_env
    if not os.path.exists(role_env_py):
        sys.exit(f"{role_env_py} is missing: it renders the llama_cpp role's environment")
    spec = importlib.util.spec_from_file_location("role_env", role_env_py)
    role_env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(role_env)
    from ansible_collections.teamllm.stack.plugins.module_utils import _monitoring

    model_path = f"/tmp/models/llama-3.1-8b-{args.quantization}.gguf"
    env, detail = role_env.render(args.context, args.parallel, args.quantization, model_path)
    inst = detail["placement_instance"]
    plan = _monitoring.gpu_plan({"teamllm_placement": {"instances": [inst]}})
    for unit in plan:
        for gpu in unit["gpus"]:
            gpu["uuid"] = ""  # declared GPU: the exporter matches it by index
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "role.env"), "w") as f:
        f.write(f"# llama_cpp role environment for llama-3.1-8b {args.quantization}, context "
                f"{args.context} x parallel {args.parallel} on one NVIDIA H200 (tests/gpu/exporter_plan.py)\n")
        f.writelines(f"{k}={v}\n" for k, v in env.items())
    with open(os.path.join(args.out, "gpu-plan.json"), "w") as f:
        json.dump(plan, f, indent=2)
    with open(os.path.join(args.out, "estimate.json"), "w") as f:
        json.dump({"model": "llama-3.1-8b", "quantization": args.quantization,
                   "context": args.context, "parallel": args.parallel, "instance": inst},
                  f, indent=2, default=str)
    print(json.dumps({"unit": plan[0]["unit"], "estimate_bytes": plan[0]["gpus"][0]["estimate_bytes"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
