# Copyright: teamllm.stack contributors
# Apache License 2.0
"""From the placement to the engines: the pure mapping of ``placement[host]`` (the output of
``_placement.plan``) onto each engine role's instance list, and the gateway's routes as one
gateway host sees them. No Ansible; private to the collection."""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils import _engine_ollama as _ollama
from ansible_collections.teamllm.stack.plugins.module_utils._engine_common import (  # noqa: F401 (download_for: public here too)
    download_for,
    model_items,
    weights_download,
)

# Engines whose role this release deploys from the placement.
DEPLOYED_ENGINES = ("llama_cpp", "ollama", "vllm", "localai")
# Engines that can require an API key of their own (<engine>_api_key on the node).
KEYED_ENGINES = ("vllm", "localai")
# Every engine the placement may choose.
KNOWN_ENGINES = ("llama_cpp", "ollama", "vllm", "localai")
# Keys of an llm_models item that the engines read and the placement does not.
ENGINE_KEYS = ("download", "ollama")
LOOPBACK = "127.0.0.1"


class EngineInstancesError(ValueError):
    """The placement cannot be turned into engine instances; ``problems`` lists why."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def placement_models(models):
    """``llm_models`` without the keys only the engines read, as the placement takes them."""
    return [
        {k: v for k, v in item.items() if k not in ENGINE_KEYS} if isinstance(item, dict) else item
        for item in models or []
    ]


def undeployed(placement, deployed=DEPLOYED_ENGINES):
    """One message per placed instance whose engine this release does not deploy."""
    return [
        f"host {host}: instance {inst['id']} ({inst['name']}) uses engine {inst['engine']}, "
        f"which is not yet deployed by this release (deployed: {', '.join(deployed)}); "
        f"set engine: {deployed[0]} on that model in llm_models"
        for host, entry in sorted((placement or {}).items())
        for inst in entry.get("instances", [])
        if inst.get("engine") not in deployed
    ]


def _cache_env(settings):
    env = {}
    for key, var in (("cache_type_k", "LLAMA_ARG_CACHE_TYPE_K"),
                     ("cache_type_v", "LLAMA_ARG_CACHE_TYPE_V")):
        value = settings.get(key)
        if value and value != "f16":
            env[var] = str(value)
    return env


def llama_cpp_instances(host_placement, models, downloads, host="this host"):
    """``llama_cpp_instances`` entries for the llama_cpp instances of one host's placement.

    ``host_placement`` is ``placement[host]`` ({address, instances, devices}); ``models`` is
    ``llm_models`` (to find each model's ``download``); ``downloads`` is ``llm_downloads``.
    Raises :class:`EngineInstancesError` naming every instance whose weights have no manifest
    entry."""
    items = model_items(models)
    result, problems = [], []
    for inst in (host_placement or {}).get("instances", []):
        if inst.get("engine") != "llama_cpp":
            continue
        download, problem = weights_download(inst, items, downloads, host, "llama_cpp")
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
        parallel = int(settings.get("parallel", inst.get("parallel", 1)))
        result.append({
            "name": inst["id"],
            "model": download,
            "alias": inst["name"],
            "port": int(inst["port"]),
            # llama-server's context is the total of its slots: context x parallel
            "context": int(settings.get("ctx_size", int(inst.get("context", 4096)) * parallel)),
            "parallel": parallel,
            "gpu_layers": int(settings.get("n_gpu_layers", 0)),
            "flash_attention": "auto" if settings.get("flash_attn", True) else "off",
            "extra_env": env,
        })
    if problems:
        raise EngineInstancesError(problems)
    return result


def _bind_of(binds, host, engine):
    bind = binds.get(host)
    if isinstance(bind, dict):
        bind = bind.get(engine) or bind.get("default")
    return str(bind or LOOPBACK)


def gateway_routes(placement, gateway_host, bind_addresses=None):
    """The routes one gateway host uses: {served name: ["address:port", ...]}.

    Instances on the gateway's own host are reached on their bind address (loopback by
    default). Instances on other hosts are reached on their bind address when it is a specific
    (private) address, else on the placement's address of their host; engines there must not
    listen on loopback only. ``bind_addresses`` maps hosts to their engines' bind address
    (default 127.0.0.1): one address, or {engine: address, "default": address}. Every ollama
    instance of a host is routed to the port of that host's first one (its one server). Raises
    :class:`EngineInstancesError` for a route to another host whose engines listen on loopback
    only."""
    binds = bind_addresses or {}
    routes, problems = {}, []
    # one Ollama server per host serves all its ollama instances, on the first one's port
    ollama_ports = _ollama.server_ports(placement)
    for host, entry in sorted((placement or {}).items()):
        for inst in entry.get("instances", []):
            engine = inst.get("engine", "llama_cpp")
            port = ollama_ports.get(host, {}).get(inst.get("id"), inst["port"])
            bind = _bind_of(binds, host, engine)
            wildcard = bind in ("0.0.0.0", "::")  # noqa: S104
            if host == gateway_host:
                address = LOOPBACK if wildcard else bind
            elif bind.startswith("127.") or bind in ("::1", "localhost"):
                problems.append(
                    f"gateway {gateway_host} cannot reach {inst['name']} on {host}: its engines "
                    f"listen on {bind} only; set llm_engine_bind_address (or {engine}_bind_address) "
                    f"on {host} to its private address (its engines then admit only "
                    f"llm_engine_allow_from) or run a gateway there"
                )
                continue
            else:
                address = (entry.get("address") or host) if wildcard else bind
            if ":" in address and not address.startswith("["):
                address = f"[{address}]"
            routes.setdefault(inst["name"], []).append(f"{address}:{port}")
    if problems:
        raise EngineInstancesError(problems)
    return {name: sorted(targets) for name, targets in sorted(routes.items())}


def backend_keys(placements, keys):
    """{served name: key} for instances whose engine requires a key of its own.

    ``placements`` maps hosts to ``placement[host]``; ``keys`` maps hosts to {engine: key or
    None}. A served name whose replicas require different keys cannot be load-balanced by one
    gateway location and raises :class:`EngineInstancesError`."""
    result, problems = {}, []
    for host, entry in sorted((placements or {}).items()):
        for inst in (entry or {}).get("instances", []):
            engine = inst.get("engine")
            if engine not in KEYED_ENGINES:
                continue
            key = ((keys or {}).get(host) or {}).get(engine) or ""
            name = inst["name"]
            if name in result and result[name] != key:
                problems.append(
                    f"the replicas of {name} require different API keys ({engine}_api_key on "
                    f"{host} differs); give every {engine} node serving it the same key"
                )
                continue
            result[name] = key
    if problems:
        raise EngineInstancesError(sorted(set(problems)))
    return {name: key for name, key in sorted(result.items()) if key}
