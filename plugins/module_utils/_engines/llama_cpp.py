# Copyright: teamllm.stack contributors
# Apache License 2.0
"""llama.cpp, from the placement to the ``llama_cpp`` role: the llama_cpp instances placed on
one host as ``llama_cpp_instances`` (llama-server reads its settings from ``LLAMA_ARG_*``
variables). No Ansible; private to the collection."""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils._engines.common import (
    slots_instance,
    weights_download,
)

ENGINE = "llama_cpp"
# Keys of an llm_models item that only the engines read.
MODEL_KEYS = ("download",)


def _cache_env(settings):
    env = {}
    for key, var in (("cache_type_k", "LLAMA_ARG_CACHE_TYPE_K"),
                     ("cache_type_v", "LLAMA_ARG_CACHE_TYPE_V")):
        value = settings.get(key)
        if value and value != "f16":
            env[var] = str(value)
    return env


def instances(placed, items, downloads, host="this host"):
    """(``llama_cpp_instances`` entries, problems) for the llama_cpp instances ``placed`` on
    one host. ``items`` is ``llm_models`` by served name (to find each model's ``download``);
    ``downloads`` is ``llm_downloads``. A problem names every instance whose weights have no
    manifest entry."""
    result, problems = [], []
    for inst in placed:
        download, problem = weights_download(inst, items, downloads, host, ENGINE)
        if problem:
            problems.append(problem)
            continue
        settings = inst.get("settings") or {}
        env = {}
        if inst.get("cuda_visible_devices"):
            env["CUDA_VISIBLE_DEVICES"] = inst["cuda_visible_devices"]
        if settings.get("split_mode") and settings["split_mode"] != "none":
            env["LLAMA_ARG_SPLIT_MODE"] = settings["split_mode"]
        if settings.get("tensor_split"):
            env["LLAMA_ARG_TENSOR_SPLIT"] = ",".join(str(s) for s in settings["tensor_split"])
        env.update(_cache_env(settings))
        result.append({
            **slots_instance(inst, download, settings),
            "gpu_layers": int(settings.get("n_gpu_layers", 0)),
            "flash_attention": "auto" if settings.get("flash_attn", True) else "off",
            "extra_env": env,
        })
    return result, problems


def check(instances_, host, downloads, node):
    """llama.cpp instances need no check beyond their weights (each its own port)."""
    del instances_, host, downloads, node
    return []
