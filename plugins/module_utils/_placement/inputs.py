# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Inputs of the placement: constants, errors, and the models and hosts normalised.

``normalize_models`` turns the ``models`` list into :class:`Request` objects sorted by alias;
``normalize_hosts`` turns the hosts' facts into :class:`Device` and :class:`Host` objects
sorted by host name and GPU index, with the GPU groups a multi-GPU instance may use.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
POLICIES = ("binpack", "spread")
SOLVERS = ("auto", "highs", "greedy")
DEFAULT_RESERVE_GIB = 1.0
DEFAULT_RAM_RESERVE_GIB = 4.0
DEFAULT_TIME_LIMIT = 10.0
# Above this many candidate placements (model x GPU group x option) the per-GPU MILP is not
# built; the class relaxation bounds the plan and guides the packing instead.
DEFAULT_MAX_CANDIDATES = 5_000
# GPUs are grouped for one multi-GPU instance only if the smallest has at least this fraction
# of the largest's memory (GPUStack's rule).
NEAR_EQUAL = 0.9
_OPTION_KEYS = ("flash_attention", "kv_cache_type")
_MODEL_KEYS = frozenset({"name", "alias", "engine", "quantizations", "quantization", "context",
                         "parallel", "replicas", "host", *_OPTION_KEYS})


class PlacementInputError(ValueError):
    """The models, hosts or options given to ``plan`` are malformed."""


class PlacementError(ValueError):
    """Some model replicas do not fit. ``unplaced`` lists them; ``result`` is the partial plan."""

    def __init__(self, message, unplaced=None, result=None):
        super().__init__(message)
        self.unplaced = unplaced or []
        self.result = result


@dataclass(frozen=True)
class Request:
    """One wanted model (all its replicas), normalised."""

    alias: str  # name the gateway serves it under
    model: str  # catalog name given to the estimator
    engine: str  # an engine or "any"
    quantizations: tuple  # acceptable, best first
    context: int
    parallel: int
    replicas: int
    host: str | None
    options: tuple  # extra estimator keyword arguments, sorted (key, value) pairs

    def with_(self, **changes):
        data = self.__dict__.copy()
        data.update(changes)
        return Request(**data)

    @property
    def profile(self):
        """What its candidate placements depend on: requests with one profile are
        interchangeable (alias and replica count aside)."""
        return (self.model, self.engine, self.quantizations, self.context, self.parallel,
                self.host, self.options)


@dataclass(frozen=True)
class Device:
    """A GPU, or the RAM of a CPU-only host taken as one device."""

    key: int  # position in the global, sorted device list
    host: str
    index: int | None  # GPU index; None for RAM
    uuid: str | None
    name: str
    total: int
    capacity: int  # total minus the reservation
    kind: str  # "gpu" or "cpu"


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    devices: tuple  # of Device keys
    blocks: dict  # size -> tuple of device-key tuples (GPU groups for multi-GPU instances)
    kind: str  # "gpu", "cpu" or "none"


def _positive_int(value, what):
    problem = PlacementInputError(f"{what} must be a positive integer, got {value!r}")
    if isinstance(value, bool):
        raise problem
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise problem from None
    if number != value and not (isinstance(value, str) and value.strip().isdigit()):
        raise problem
    if number < 1:
        raise problem
    return number


def _quantizations(name, item):
    quants = item.get("quantizations", item.get("quantization"))
    if isinstance(quants, str):
        quants = [quants]
    if not quants or not all(isinstance(q, str) and q for q in quants):
        raise PlacementInputError(
            f"model {name}: quantizations must be a non-empty list of names, best first")
    if len(set(quants)) != len(quants):
        raise PlacementInputError(f"model {name}: quantizations repeat a name")
    return tuple(quants)


def _request(position, item, host_names, engines):
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict) or not item.get("name"):
        raise PlacementInputError(f"models[{position}] needs a name")
    name = str(item["name"])
    unknown = sorted(set(item) - _MODEL_KEYS)
    if unknown:
        raise PlacementInputError(f"model {name}: unknown keys {', '.join(unknown)}")
    engine = str(item.get("engine") or "any")
    if engine != "any" and engine not in engines:
        raise PlacementInputError(
            f"model {name}: engine {engine!r} is not one of any, {', '.join(engines)}")
    host = item.get("host")
    if host is not None and host not in host_names:
        raise PlacementInputError(
            f"model {name}: pinned host {host!r} is not among the planned hosts")
    return Request(
        alias=str(item.get("alias") or name),
        model=name,
        engine=engine,
        quantizations=_quantizations(name, item),
        context=_positive_int(item.get("context", 4096), f"model {name}: context"),
        parallel=_positive_int(item.get("parallel", 1), f"model {name}: parallel"),
        replicas=_positive_int(item.get("replicas", 1), f"model {name}: replicas"),
        host=host,
        options=tuple(sorted((k, item[k]) for k in _OPTION_KEYS if item.get(k) is not None)),
    )


def normalize_models(models, host_names, engines):
    """Validate the ``models`` list and return :class:`Request` objects sorted by alias."""
    if not isinstance(models, (list, tuple)) or not models:
        raise PlacementInputError("models must be a non-empty list")
    requests = [_request(i, item, host_names, engines) for i, item in enumerate(models)]
    seen, duplicates = set(), set()
    for request in requests:
        (duplicates if request.alias in seen else seen).add(request.alias)
    if duplicates:
        raise PlacementInputError(
            "each model is listed once (use replicas, or an alias to serve it twice): "
            + ", ".join(sorted(duplicates)))
    return sorted(requests, key=lambda r: r.alias)


def _gpus_of(facts):
    if facts is None:
        return []
    if isinstance(facts, dict):
        facts = facts.get("gpus", [])
    if not isinstance(facts, (list, tuple)):
        raise PlacementInputError("teamllm_gpus must be a dict with a gpus list")
    return list(facts)


def normalize_hosts(hosts, reserve_bytes, ram_reserve_bytes):
    """Return (devices, hosts) from ``{name: {"gpus": facts, "cpu_inference", "ram_bytes",
    "address"}}``, both sorted (hosts by name, GPUs by index)."""
    if not isinstance(hosts, dict) or not hosts:
        raise PlacementInputError("no hosts to place models on")
    devices, result = [], {}
    for name in sorted(hosts):
        spec = hosts[name] or {}
        gpus = sorted(_gpus_of(spec.get("gpus")), key=lambda g: int(g.get("index", 0)))
        keys = []
        for gpu in gpus:
            total = int(gpu.get("memory_total") or 0)
            if total <= 0:
                raise PlacementInputError(f"host {name}: GPU {gpu.get('index')} has no memory_total")
            devices.append(Device(
                key=len(devices), host=name, index=int(gpu.get("index", len(keys))),
                uuid=gpu.get("uuid"), name=str(gpu.get("name") or "GPU"), total=total,
                capacity=max(0, total - reserve_bytes), kind="gpu"))
            keys.append(len(devices) - 1)
        kind = "gpu" if keys else "none"
        if not keys and spec.get("cpu_inference"):
            ram = int(spec.get("ram_bytes") or 0)
            if ram <= 0:
                raise PlacementInputError(f"host {name}: cpu_inference needs ram_bytes")
            devices.append(Device(
                key=len(devices), host=name, index=None, uuid=None, name="RAM", total=ram,
                capacity=max(0, ram - ram_reserve_bytes), kind="cpu"))
            keys.append(len(devices) - 1)
            kind = "cpu"
        result[name] = Host(
            name=name, address=str(spec.get("address") or name), devices=tuple(keys),
            blocks=blocks([devices[k] for k in keys]) if kind == "gpu" else {}, kind=kind)
    return devices, result


def blocks(gpus):
    """GPU groups a multi-GPU instance may use, per group size.

    GPUs are sorted by memory (largest first, then index) and cut into bands where the
    smallest is at least NEAR_EQUAL of the largest. Within a band, groups of size k are the
    aligned runs [0..k-1], [k..2k-1], ... so groups of different sizes nest (as buddy
    allocation does). This keeps the candidates linear in the GPU count instead of binomial,
    and treats identical GPUs as interchangeable.
    """
    order = sorted(gpus, key=lambda d: (-d.total, d.index))
    bands, band = [], []
    for gpu in order:
        if band and gpu.total < NEAR_EQUAL * band[0].total:
            bands.append(band)
            band = []
        band.append(gpu)
    if band:
        bands.append(band)
    result = {}
    for band in bands:
        for size in range(1, len(band) + 1):
            for start in range(0, len(band) - size + 1, size):
                group = tuple(sorted(d.key for d in band[start:start + size]))
                result.setdefault(size, []).append(group)
    return {size: tuple(groups) for size, groups in result.items()}
