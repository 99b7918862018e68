#!/usr/bin/env python3
"""Render the environment the llama_cpp role gives llama-server for one planned model.

    PYTHONPATH=.collections python tests/gpu/role_env.py [--context 8192] [--parallel 32] \
        [--quantization q8_0] [--model-path /tmp/models/llama-3.1-8b-q8_0.gguf] > role.env

Runs on the controller (no Ansible run, no GPU): the collection's own placement
(`_placement.plan`) places Llama 3.1 8B on one declared NVIDIA H200 (143771 MiB, as NVML reads
it), `_engine_instances.llama_cpp_instances` turns the placement into the role's instance, the
role's `llama_cpp_instance_defaults` fill the rest, and the LLAMA_ARG_* variables are built as
`roles/llama_cpp/tasks/configure.yml` and `vars/main.yml` build them (base env + per-instance
vars + extra_env). The script checks that the variable names it writes are exactly the ones
those two files name, so a change in the role makes it fail instead of measuring stale flags.
LLAMA_ARG_MODEL is the model's path on the GPU machine (the role's would be
/var/lib/teamllm/models/<file>); LLAMA_ARG_PORT the placement's port.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
H200_MIB = 143771


def _role_file(*parts: str) -> str:
    return os.path.join(ROOT, "roles", "llama_cpp", *parts)


def role_var_names() -> set[str]:
    """The variable names configure.yml and vars/main.yml give every instance."""
    with open(_role_file("tasks", "configure.yml")) as fh:
        tasks = yaml.safe_load(fh)
    names = set()
    for task in tasks:
        names |= set((task.get("vars") or {}).get("__llama_cpp_env_vars", {}) or {})
    with open(_role_file("vars", "main.yml")) as fh:
        names |= set(yaml.safe_load(fh)["_llama_cpp_base_env"])
    return names


def render(context: int, parallel: int, quantization: str, model_path: str) -> tuple[dict, dict]:
    from ansible_collections.teamllm.stack.plugins.module_utils import _placement

    models = [{"name": "llama-3.1-8b", "engine": "llama_cpp", "quantizations": [quantization],
               "context": context, "parallel": parallel, "download": "model_gguf"}]
    downloads = {"model_gguf": {"path": "models/" + os.path.basename(model_path), "url": "",
                                "sha256": "0" * 64}}
    hosts = {"h200": {"gpus": [{"index": 0, "name": "NVIDIA H200", "uuid": "GPU-h200",
                                "memory_total": H200_MIB * 1024 * 1024}]}}
    try:  # the engine registry (issue 11): one deployment plan for every engine
        from ansible_collections.teamllm.stack.plugins.module_utils import _engines
        from ansible_collections.teamllm.stack.plugins.module_utils._engines import deployment

        plan = _placement.plan(_engines.placement_models(models), hosts)
        dep = deployment.deployment_plan(plan["placement"], models, downloads)
        host = dep["placement"]["h200"]
        (inst,) = dep["engines"]["h200"]["llama_cpp"]
    except ImportError:  # before it: _engine_instances
        from ansible_collections.teamllm.stack.plugins.module_utils import _engine_instances as ei

        plan = _placement.plan(ei.placement_models(models), hosts)
        host = plan["placement"]["h200"]
        (inst,) = ei.llama_cpp_instances(host, models, downloads, host="h200")
    with open(_role_file("defaults", "main.yml")) as fh:
        defaults = yaml.safe_load(fh)
    item = {**defaults["llama_cpp_instance_defaults"], **inst}  # fill_defaults
    with open(_role_file("vars", "main.yml")) as fh:
        base = yaml.safe_load(fh)["_llama_cpp_base_env"]
    bind = "127.0.0.1"  # llama_cpp_bind_address's default (llm_engine_bind_address unset)
    env = {k: (bind if "llama_cpp_bind_address" in str(v) else str(v)) for k, v in base.items()}
    env.update({  # configure.yml's __llama_cpp_env_vars, expression by expression
        "LLAMA_ARG_MODEL": model_path,
        "LLAMA_ARG_PORT": str(item["port"]),
        "LLAMA_ARG_ALIAS": str(item.get("alias") or item["name"]),
        "LLAMA_ARG_CTX_SIZE": str(item["context"]),
        "LLAMA_ARG_N_PARALLEL": str(item["parallel"]),
        "LLAMA_ARG_THREADS": str(item["threads"] if int(item["threads"]) > 0 else -1),
        "LLAMA_ARG_N_GPU_LAYERS": str(item["gpu_layers"]),
        "LLAMA_ARG_FLASH_ATTN": str(item["flash_attention"]),
        "LLAMA_ARG_CACHE_RAM": str(item["prompt_cache_mib"] if str(item["prompt_cache_mib"]) != "auto"
                                   else (0 if int(item["gpu_layers"]) > 0 else 8192)),
    })
    expected = role_var_names()
    if set(env) != expected:
        raise SystemExit(f"the role's variables changed: role {sorted(expected)}, here {sorted(env)}")
    env.update({k: str(v) for k, v in item["extra_env"].items()})
    return dict(sorted(env.items())), {"placement_instance": host["instances"][0], "role_item": item}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--context", type=int, default=8192, help="llm_models context (per sequence)")
    ap.add_argument("--parallel", type=int, default=32, help="llm_models parallel")
    ap.add_argument("--quantization", default="q8_0")
    ap.add_argument("--model-path", default="/tmp/models/llama-3.1-8b-q8_0.gguf")
    ap.add_argument("--json", help="also write the placement instance and role item here")
    args = ap.parse_args()
    env, detail = render(args.context, args.parallel, args.quantization, args.model_path)
    print(f"# llama_cpp role environment for llama-3.1-8b {args.quantization}, context "
          f"{args.context} x parallel {args.parallel} on one NVIDIA H200 "
          f"(tests/gpu/role_env.py)")
    for key, value in env.items():
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise SystemExit(f"bad variable name {key}")
        print(f"{key}={value}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(detail, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
