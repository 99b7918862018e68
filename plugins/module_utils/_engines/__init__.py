# Copyright: teamllm.stack contributors
# Apache License 2.0
"""The engines this collection deploys, in one place.

Each :class:`Engine` says what the placement, the deployment plan and the playbooks need to
know of it: how a placed instance becomes the engine role's instance (its module's
``instances``) and what is checked before any host is touched (``check``), which keys of an
``llm_models`` item only it reads, whether its weights are GGUF files, whether it may require
an API key of its own (``<engine>_api_key``), whether one server per host serves all its
instances on one port, whether it runs in a container, whether it splits a model by tensor
parallelism, whether it can serve from a CPU host's RAM, whether a model with
``engine: any`` may be given to it, and what the monitoring reads of it (its readiness path, its
Prometheus metrics path, the systemd unit of an instance). :data:`ENGINES` lists them in the order the placement
prefers them. Pure Python; private to the collection.

``deployment.py`` turns a placement into the per-host instances and the gateways' routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ansible_collections.teamllm.stack.plugins.module_utils._engines import (
    llama_cpp,
    localai,
    ollama,
    vllm,
)
from ansible_collections.teamllm.stack.plugins.module_utils._engines.common import (  # noqa: F401 (the package's error class)
    LOOPBACK,
    EngineError,
)


@dataclass(frozen=True)
class Engine:
    name: str
    mapping: ModuleType  # instances(placed, items, downloads, host), check(instances, host, downloads, node)
    gguf: bool  # serves GGUF files (the estimator's llama.cpp memory math)
    keyed: bool  # may require an API key of its own: <name>_api_key on the node
    shared_server: bool  # one server per host serves all its instances, on one port
    container: str  # "never", "always", or "option" (<name>_install_method: container)
    tensor_parallel: bool  # several GPUs split by tensors: their count must divide heads and vocab
    cpu: bool  # can serve from the RAM of a CPU-only host
    any: bool  # may be chosen for a model whose engine is "any"
    health: str = "/health"  # path that answers 200 once the server is ready (the monitoring probe)
    metrics: str = ""  # path of its Prometheus metrics on the API port; "" when it has none
    unit: str = ""  # systemd unit of one instance ({name}: the instance's name); "" in a container
    served: str = "alias"  # key of a role instance that holds its served model name
    instance_id: str = "name"  # key of a role instance that names it uniquely on its host

    @property
    def model_keys(self):
        """Keys of an ``llm_models`` item that this engine reads and the placement does not."""
        return tuple(self.mapping.MODEL_KEYS)

    @property
    def key_variable(self):
        return f"{self.name}_api_key" if self.keyed else None

    @property
    def bind_variable(self):
        return f"{self.name}_bind_address"


# In the placement's order of preference.
ENGINES = {
    engine.name: engine
    for engine in (
        Engine("vllm", vllm, gguf=False, keyed=True, shared_server=False, container="option",
               tensor_parallel=True, cpu=False, any=True, metrics="/metrics",
               unit="teamllm-vllm@{name}.service", served="served_name"),
        Engine("llama_cpp", llama_cpp, gguf=True, keyed=False, shared_server=False,
               container="never", tensor_parallel=False, cpu=True, any=True, metrics="/metrics",
               unit="teamllm-llama-server@{name}.service"),
        # Ollama has no metrics of its own: the gateway's stand in for it
        Engine("ollama", ollama, gguf=True, keyed=False, shared_server=True, container="never",
               tensor_parallel=False, cpu=False, any=True, health="/api/version",
               unit="teamllm-ollama.service", served="name", instance_id="id"),
        Engine("localai", localai, gguf=True, keyed=True, shared_server=False,
               container="always", tensor_parallel=False, cpu=False, any=False,
               health="/readyz", metrics="/metrics"),
    )
}
NAMES = tuple(ENGINES)
MODEL_KEYS = tuple(sorted({key for engine in ENGINES.values() for key in engine.model_keys}))


def names(**where):
    """Names of the engines whose attributes equal ``where`` (e.g. ``names(gguf=True)``), in
    the order of preference."""
    return tuple(n for n, e in ENGINES.items()
                 if all(getattr(e, k) == v for k, v in where.items()))


def placement_models(models):
    """``llm_models`` without the keys only the engines read, as the placement takes them."""
    return [
        {k: v for k, v in item.items() if k not in MODEL_KEYS} if isinstance(item, dict) else item
        for item in models or []
    ]
