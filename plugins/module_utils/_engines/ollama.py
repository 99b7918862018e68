# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Ollama, from the placement to the ``ollama`` role: pure logic, no Ansible. Private to the
collection.

Ollama is one server process per node that serves every model placed on it (the deployment
plan gives all of a node's ollama instances that server's one port), so the mapping has three
steps:

1. :func:`instances`: the ollama instances placed on one host -> the role's instances (one per
   served model: its port, context, parallel slots, GPUs, and where its weights come from);
2. :func:`server_settings`: the instances -> the one server's settings (the port of the first
   instance, the largest context and parallel count, the union of the GPUs, ...), which the
   role writes as ``OLLAMA_*`` variables;
3. :func:`model_plan`: the instances (and the inventory's custom models) -> the models to make
   present, in order: each base model (pulled from the registry or imported from the mirror),
   then each served model created from its base with the placement's context (``num_ctx``)
   and the Modelfile data of the inventory.

Where an instance's weights come from is the ``ollama`` key of its ``llm_models`` item: a
registry reference (``ollama: llama3.1:8b-instruct-q8_0``), or a dict with ``pull`` (registry
reference), ``import`` (the ``llm_downloads`` entry of an offline model in the mirror: an
Ollama manifest whose blobs lie in the entry's ``blobs`` directory), ``system``, ``template``
and ``parameters``; or a dict of such values per quantization (``{Q8_0: ..., Q4_K_M: ...}``).
"""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils._engines.common import EngineError

ENGINE = "ollama"
# Keys of an llm_models item that only this engine reads (the placement must not see them).
MODEL_KEYS = ("ollama",)
SPEC_KEYS = ("pull", "import", "system", "template", "parameters")
SOURCES = ("registry", "mirror")
# Where models come from when ollama_model_source is not set: Ollama's registry when the
# artifacts come from upstream, else the mirror (offline models imported blob by blob).
# KV cache types from the most compact (the placement's memory estimate holds for anything at
# least as compact as what it planned).
KV_ORDER = ("q4_0", "q8_0", "f16")


def default_source(artifact_source):
    """``ollama_model_source``'s default for ``llm_artifact_source``."""
    return "registry" if (artifact_source or "upstream") == "upstream" else "mirror"


def canonical(name):
    """``name:tag`` as Ollama lists it (``latest`` when no tag)."""
    text = str(name).strip()
    return text if ":" in text.rsplit("/", 1)[-1] else text + ":latest"


def source_spec(item, quantization):
    """The weights spec ({pull, import, system, template, parameters}) of an llm_models item
    for ``quantization``, or None."""
    value = item.get(ENGINE)
    if isinstance(value, dict) and not any(k in value for k in SPEC_KEYS):
        value = value.get(quantization)
    if isinstance(value, str) and value:
        return {"pull": value}
    if isinstance(value, dict) and any(value.get(k) for k in ("pull", "import")):
        return {k: value[k] for k in SPEC_KEYS if value.get(k) not in (None, "", {})}
    return None


def instances(placed, items, downloads=None, host="this host"):
    """(role instances, problems) for the ollama instances ``placed`` on one host, in placement
    order; one per served name (replicas on one host share the one server). ``items`` is
    ``llm_models`` by served name; ``downloads`` is unused (an offline model's entry is checked
    by :func:`model_plan`)."""
    del downloads
    result, problems, seen = [], [], {}
    for inst in placed:
        quant = inst.get("quantization")
        spec = source_spec(items.get(inst["name"], {}), quant)
        if spec is None:
            problems.append(
                f"{host}: model {inst['name']} is placed as ollama {quant}, but its llm_models "
                f"item has no ollama source for {quant}: add ollama: <registry reference> or "
                f"ollama: {{pull: <reference>, import: <llm_downloads entry>}}"
            )
            continue
        settings = inst.get("settings") or {}
        parallel = int(settings.get("num_parallel", settings.get("parallel", inst.get("parallel", 1))))
        context = int(settings.get("context_length", inst.get("context", 4096)))
        kv = settings.get("kv_cache_type", settings.get("cache_type_k", "f16")) or "f16"
        entry = {
            "name": inst["name"],
            "id": inst["id"],
            "port": int(inst["port"]),
            "context": context,
            "parallel": parallel,
            "cuda_visible_devices": str(inst.get("cuda_visible_devices") or ""),
            "flash_attention": bool(settings.get("flash_attention", settings.get("flash_attn", True))),
            "kv_cache_type": str(kv),
            "sched_spread": bool(settings.get("sched_spread", False)),
            **spec,
        }
        if entry["name"] in seen:
            first = seen[entry["name"]]
            first["context"] = max(first["context"], context)
            first["parallel"] = max(first["parallel"], parallel)
            first["cuda_visible_devices"] = _union_devices([first, entry])
            first["sched_spread"] = first["sched_spread"] or entry["sched_spread"]
            continue
        seen[entry["name"]] = entry
        result.append(entry)
    return result, problems


def check(instances_, host, downloads, node):
    """Problems of one host's ollama instances: the models they need must be obtainable from
    the node's model source (``node["ollama_model_source"]``: registry or mirror), with its
    custom models (``node["ollama_models"]``)."""
    try:
        model_plan(instances_, downloads,
                   node.get("ollama_model_source") or default_source(node.get("llm_artifact_source")),
                   node.get("ollama_models") or [], host)
    except EngineError as exc:
        return exc.problems
    return []


def _union_devices(instances):
    devices = set()
    for inst in instances:
        for part in str(inst.get("cuda_visible_devices") or "").split(","):
            if part.strip():
                devices.add(part.strip())
    return ",".join(sorted(devices, key=lambda d: (not d.isdigit(), int(d) if d.isdigit() else 0, d)))


def server_settings(instances):
    """The one Ollama server's settings for all of a node's instances."""
    if not instances:
        return {}
    kvs = [str(i.get("kv_cache_type") or "f16") for i in instances]
    kv = min(kvs, key=lambda k: KV_ORDER.index(k) if k in KV_ORDER else len(KV_ORDER))
    return {
        "port": int(instances[0]["port"]),
        "num_parallel": max(int(i.get("parallel", 1)) for i in instances),
        "context_length": max(int(i.get("context", 4096)) for i in instances),
        "max_loaded_models": len({canonical(i["name"]) for i in instances}),
        "flash_attention": all(bool(i.get("flash_attention", True)) for i in instances),
        "kv_cache_type": kv,
        "sched_spread": any(bool(i.get("sched_spread")) for i in instances),
        "cuda_visible_devices": _union_devices(instances),
        "served": [i["name"] for i in instances],
    }


def import_name(entry_name, entry):
    """The model name an offline mirror entry is imported as: its ``ollama_name``, else the
    last two parts of its path (``.../<model>/<tag>`` -> ``model:tag``)."""
    if entry.get("ollama_name"):
        return canonical(entry["ollama_name"])
    parts = str(entry.get("path") or "").strip("/").split("/")
    if len(parts) < 2:
        raise EngineError([f"llm_downloads.{entry_name}: its path must end in <model>/<tag>"])
    return f"{parts[-2]}:{parts[-1]}"


def model_plan(instances, downloads, source="mirror", custom=None, host="this host"):
    """The ``ollama_model`` calls that make a node's models present, in order: base models
    (``kind`` pull or import), then served and custom models (``kind`` from). Each item:
    {name, kind, from?, download?, system?, template?, parameters?}."""
    if source not in SOURCES:
        raise EngineError([f"ollama model source {source!r} is not one of {', '.join(SOURCES)}"])
    downloads = downloads or {}
    bases, derived, problems = {}, [], []
    for inst in instances:
        name = inst.get("name")
        if source == "registry" and inst.get("pull"):
            base = {"name": canonical(inst["pull"]), "kind": "pull"}
        elif inst.get("import"):
            entry = inst["import"]
            if entry not in downloads:
                problems.append(f"{host}: ollama model {name}: import {entry!r} is not an entry of llm_downloads")
                continue
            try:
                base = {"name": import_name(entry, downloads[entry]), "kind": "import",
                        "download": entry}
            except EngineError as exc:
                problems.extend(exc.problems)
                continue
        else:
            problems.append(
                f"{host}: ollama model {name} has no offline copy (import: <llm_downloads entry>) "
                "and the models come from the mirror; add one, or pull from the registry "
                "(ollama_model_source: registry)"
                if source == "mirror" else
                f"{host}: ollama model {name} has no registry reference (pull: <reference>)"
            )
            continue
        if canonical(name) == base["name"]:
            problems.append(
                f"{host}: ollama model {name}: the served name is the name of its weights "
                f"({base['name']}); serve it under another name (an alias in llm_models)"
            )
            continue
        bases.setdefault(base["name"], base)
        params = {"num_ctx": int(inst.get("context", 4096))}
        params.update(inst.get("parameters") or {})
        served = {"name": canonical(name), "kind": "from", "from": base["name"],
                  "parameters": params}
        for key in ("system", "template"):
            if inst.get(key) is not None:
                served[key] = inst[key]
        derived.append(served)
    for model in custom or []:
        if not isinstance(model, dict) or not model.get("name") or not model.get("from"):
            problems.append(f"{host}: ollama_models entries need a name and a from: {model!r}")
            continue
        if model.get("state", "present") == "absent":
            continue
        item = {"name": canonical(model["name"]), "kind": "from", "from": canonical(model["from"])}
        for key in ("system", "template", "parameters"):
            if model.get(key) is not None:
                item[key] = model[key]
        derived.append(item)
    names = [m["name"] for m in [*bases.values(), *derived]]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"{host}: ollama models named twice: {', '.join(repeated)}")
    if problems:
        raise EngineError(problems)
    return [*bases.values(), *derived]


def stale_models(present, plan):
    """Models on the server that the plan does not name."""
    keep = {m["name"] for m in plan}
    return sorted(canonical(n) for n in present or [] if canonical(n) not in keep)


def blob_downloads(manifest, entry_name, entry):
    """``llm_downloads`` entries for the blobs of an offline model's manifest: each blob is
    fetched like any artifact and checked against its digest (its sha256)."""
    blobs_dir = str(entry.get("blobs") or "").strip("/")
    if not blobs_dir:
        raise EngineError([f"llm_downloads.{entry_name} has no 'blobs' (the mirror directory of its blobs)"])
    layers = [manifest.get("config") or {}, *(manifest.get("layers") or [])]
    out = {}
    for layer in layers:
        digest = str(layer.get("digest") or "")
        algo, _sep, hexd = digest.replace("-", ":", 1).partition(":")
        if algo != "sha256" or len(hexd) != 64 or any(c not in "0123456789abcdef" for c in hexd):
            raise EngineError([f"llm_downloads.{entry_name}: the manifest names a malformed digest {digest!r}"])
        out[f"{entry_name}__blob_{hexd[:16]}"] = {
            "version": str(entry.get("version", "")),
            "path": f"{blobs_dir}/sha256-{hexd}",
            "url": "",
            "sha256": hexd,
        }
    return out
