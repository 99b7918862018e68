# Copyright: teamllm.stack contributors
# Apache License 2.0
"""LocalAI, from the placement to the ``teamllm.stack.localai`` role: the localai instances
placed on one host as ``localai_instances``, and the model definition (LocalAI's model YAML)
of one instance. No Ansible; private to the collection.

One placed LocalAI instance is one container serving one model on the instance's port with the
instance's GPUs, so the placement's per-instance ports and GPU claims hold as they do for
llama.cpp."""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils._engines.common import (
    slots_instance,
    weights_download,
)

ENGINE = "localai"
# Keys of an llm_models item that only the engines read.
MODEL_KEYS = ("download",)
BACKEND = "llama-cpp"  # LocalAI's llama.cpp backend, the one that serves GGUF files
WEIGHTS_DIR = "weights"  # where the GGUF files appear inside the models path (read-only mount)


def instances(placed, items, downloads, host="this host"):
    """(``localai_instances`` entries, problems) for the localai instances ``placed`` on one
    host. ``items`` is ``llm_models`` by served name (each item's ``download`` names the GGUF
    file's manifest entry, one name or {quantization: name}); ``downloads`` is
    ``llm_downloads``. A problem names every instance whose weights have no manifest entry."""
    result, problems = [], []
    for inst in placed:
        download, problem = weights_download(inst, items, downloads, host, ENGINE)
        if problem:
            problems.append(problem)
            continue
        settings = inst.get("settings") or {}
        on_gpu = inst.get("device") == "gpu"
        # Docker device requests name GPUs by UUID where the facts have one (stable across
        # reboots and driver reloads), else by index.
        uuids = [str(u) for u in inst.get("gpu_uuids") or [] if u]
        gpus = uuids if on_gpu and len(uuids) == len(inst.get("gpus") or []) else [
            str(i) for i in inst.get("gpus") or []]
        kv = settings.get("cache_type_k") or "f16"
        extra = {}  # further keys of LocalAI's model YAML
        if len(gpus) > 1 and settings.get("tensor_split"):
            extra["tensor_split"] = ",".join(str(s) for s in settings["tensor_split"])
        if kv != "f16":
            extra["cache_type_k"] = str(kv)
            extra["cache_type_v"] = str(settings.get("cache_type_v") or kv)
        result.append({
            # like llama-server, LocalAI's llama.cpp backend shares its context among the slots
            **slots_instance(inst, download, settings),
            "gpu_layers": int(settings.get("n_gpu_layers", 999 if on_gpu else 0)),
            "gpus": gpus if on_gpu else [],
            "flash_attention": bool(settings.get("flash_attn", True)),
            "extra": extra,
        })
    return result, problems


def model_definition(instance, model_file, threads=0):
    """LocalAI's model YAML (as a dict) for one ``localai_instances`` entry.

    ``model_file`` is the GGUF file's name; it appears under ``weights/`` of the models path.
    ``threads`` 0 leaves LocalAI's default (LOCALAI_THREADS)."""
    name = str(instance.get("alias") or instance["name"])
    if "/" in model_file or ".." in model_file or not model_file:
        raise ValueError(f"model file name {model_file!r} must be a plain file name")
    parameters = {"model": f"{WEIGHTS_DIR}/{model_file}"}
    parameters.update(instance.get("parameters") or {})
    definition = {
        "name": name,
        "backend": BACKEND,
        "parameters": parameters,
        "context_size": int(instance["context"]),
        "f16": bool(instance.get("f16", True)),
        "gpu_layers": int(instance.get("gpu_layers", 0)),
        "mmap": True,
        "flash_attention": bool(instance.get("flash_attention", True)),
        # the chat template comes from the GGUF file unless the inventory gives one
        "template": dict(instance.get("template") or {"use_tokenizer_template": True}),
    }
    threads = int(instance.get("threads") or threads or 0)
    if threads > 0:
        definition["threads"] = threads
    for key, value in sorted((instance.get("extra") or {}).items()):
        if key in ("name", "parameters"):
            raise ValueError(f"extra may not set {key}; use alias or parameters")
        definition[key] = value
    return definition
