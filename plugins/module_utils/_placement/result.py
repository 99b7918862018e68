# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The plan as plain data: instances per host with their engine settings and the estimate's
breakdown, and every device's planned and free memory. Ports and gateway routes are not the
placement's: the deployment plan (docs/engines.md) assigns them."""

from __future__ import annotations

import re

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text):
    return _SLUG.sub("-", text.lower()).strip("-") or "model"


def settings(req, option, need, members):
    """The engine's settings for one instance on ``members`` (devices)."""
    engine, size = option.engine, len(members)
    extra = dict(req.options)
    flash = bool(extra.get("flash_attention", True))
    kv_type = extra.get("kv_cache_type", "f16")
    if option.kind == "cpu":
        return {"n_gpu_layers": 0, "ctx_size": req.context * req.parallel,
                "parallel": req.parallel, "flash_attn": flash, "cache_type_k": kv_type,
                "cache_type_v": kv_type}
    if engine == "vllm":
        return {"tensor_parallel_size": size, "gpu_memory_utilization": need.util,
                "max_model_len": req.context, "max_num_seqs": req.parallel}
    if engine == "ollama":
        return {"num_parallel": req.parallel, "context_length": req.context,
                "flash_attention": flash, "kv_cache_type": kv_type, "sched_spread": size > 1}
    totals = [d.total for d in members]
    split = [round(t / sum(totals), 4) for t in totals] if size > 1 else []
    return {"n_gpu_layers": 999, "ctx_size": req.context * req.parallel,
            "parallel": req.parallel, "split_mode": "layer" if size > 1 else "none",
            "tensor_split": split, "flash_attn": flash, "cache_type_k": kv_type,
            "cache_type_v": kv_type}


def _plain(value):
    """The estimate's breakdown as plain ints (lists of ints kept as lists)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def instance(req, replica, option, need, members):
    est = need.estimate
    on_gpu = option.kind == "gpu"
    return {
        "id": f"{slug(req.alias)}-{replica}",
        "name": req.alias,
        "model": req.model,
        "replica": replica,
        "engine": option.engine,
        "quantization": option.quantization,
        "context": req.context,
        "parallel": req.parallel,
        "device": option.kind,
        "gpus": [d.index for d in members] if on_gpu else [],
        "gpu_uuids": [d.uuid for d in members] if on_gpu else [],
        "cuda_visible_devices": ",".join(str(d.index) for d in members) if on_gpu else "",
        "tensor_parallel_size": len(members) if on_gpu else 0,
        "gpu_memory_utilization": need.util,
        "bytes_per_gpu": list(need.claims) if on_gpu else [],
        "ram_bytes": need.claims[0] if not on_gpu else int(getattr(est, "host_bytes", 0)),
        "settings": settings(req, option, need, members),
        "breakdown": _plain(dict(getattr(est, "breakdown", None) or {})),
    }


def build(requests, chosen, types, cluster, meta, unplaced):
    """``{"placement": {host: {"address", "instances", "devices"}}, "unplaced", **meta}``
    from the plan ``chosen``: (request, type, group) per replica."""
    devices, hosts = cluster.devices, cluster.hosts
    by_host = {name: [] for name in cluster.host_names}
    replica_index = {}
    for r, t, g in sorted(chosen, key=lambda c: (c[0], cluster.group_devs[c[2]],
                                                 types.option[c[1]].engine)):
        members = [devices[k] for k in cluster.group_devs[g]]
        replica = replica_index.get(r, 0)
        replica_index[r] = replica + 1
        by_host[members[0].host].append(
            instance(requests[r], replica, types.option[t], types.need[t], members))
    placement = {}
    for name, instances in by_host.items():
        instances.sort(key=lambda i: (i["name"], i["replica"]))
        used = {}
        for inst in instances:
            for index, claim in zip(inst["gpus"], inst["bytes_per_gpu"], strict=True):
                used.setdefault(index, []).append((inst["id"], claim))
            if inst["device"] == "cpu":
                used.setdefault("ram", []).append((inst["id"], inst["ram_bytes"]))
        rows = []
        for key in hosts[name].devices:
            d = devices[key]
            taken = used.get(d.index if d.kind == "gpu" else "ram", [])
            planned = sum(b for _inst, b in taken)
            rows.append({"index": d.index, "uuid": d.uuid, "name": d.name, "kind": d.kind,
                         "memory_total": d.total, "reserved": d.total - d.capacity,
                         "planned": planned, "free": d.capacity - planned,
                         "instances": [i for i, _claim in taken]})
        placement[name] = {"address": hosts[name].address, "instances": instances,
                           "devices": rows}
    result = {"placement": placement, "unplaced": unplaced}
    result.update(meta)
    return result
