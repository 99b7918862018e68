# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Place model replicas on the GPUs of several hosts.

Private to the collection: pure Python, stdlib only. ``highspy`` (HiGHS) is imported lazily
for the exact solver; without it, or when it runs out of time, a greedy best-fit / worst-fit
places the models and the result says so.

Entry point: :func:`plan`. It takes plain data (what the action plugin reads from hostvars)
and returns plain data (what the engine roles and the gateway consume), so it is tested
without Ansible. The memory estimator is injected (any object with ``estimate`` and
``valid_tp_sizes`` as in ``_estimator``); by default the collection's own is imported.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
import re
import sys
import time
from dataclasses import dataclass

GIB = 1024**3
POLICIES = ("binpack", "spread")
SOLVERS = ("auto", "highs", "greedy")
# Engines tried, in this order of preference, for a model whose engine is "any". LocalAI is
# only placed when asked for by name.
ANY_ENGINES = ("vllm", "llama_cpp", "ollama")
ENGINE_RANK = ("vllm", "llama_cpp", "ollama", "localai")
# Engines whose multi-GPU mode is tensor parallelism: the GPU count must divide the attention
# heads and the vocabulary. llama.cpp, Ollama and LocalAI split by layers and take any count.
TENSOR_PARALLEL_ENGINES = frozenset({"vllm"})
CPU_ENGINE = "llama_cpp"
# GPUs are grouped for one multi-GPU instance only if the smallest has at least this fraction
# of the largest's memory (GPUStack's rule).
NEAR_EQUAL = 0.9
DEFAULT_RESERVE_GIB = 1.0
DEFAULT_RAM_RESERVE_GIB = 4.0
DEFAULT_PORT_BASE = 8100
DEFAULT_TIME_LIMIT = 10.0
# Above this many candidate placements the MILP is not built; the greedy places the models.
DEFAULT_MAX_CANDIDATES = 150_000
# Models explained in full (closest candidate and checked suggestions) in a refusal; the rest
# are named only.
DETAIL_LIMIT = 10
# Unplaced models given a shortfall at all; the rest are only named.
ANALYSE_LIMIT = 50
# Up to this many replicas in all, a suggested change is also checked by a greedy re-plan of
# every model (not only against the memory the others leave as planned).
REPLAN_LIMIT = 60
# Seconds spent finding suggestions; models left when it runs out get the shortfall only.
EXPLAIN_BUDGET = 3.0
# Quantizations tried for "a lower quantization" when the estimator cannot list a model's own.
GGUF_LADDER = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "Q3_K_M", "Q2_K")
VLLM_LADDER = ("BF16", "FP16", "FP8", "AWQ", "GPTQ")
GGUF_ENGINES = frozenset({"llama_cpp", "ollama", "localai"})
_SLUG = re.compile(r"[^a-z0-9]+")


class PlacementInputError(ValueError):
    """The models, hosts or options given to :func:`plan` are malformed."""


class PlacementError(ValueError):
    """Some model replicas do not fit. ``unplaced`` lists them; ``plan`` is the partial plan."""

    def __init__(self, message, unplaced=None, result=None):
        super().__init__(message)
        self.unplaced = unplaced or []
        self.result = result


# --------------------------------------------------------------------------------------------
# Inputs


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


_OPTION_KEYS = ("flash_attention", "kv_cache_type")


def _positive_int(value, what):
    if isinstance(value, bool):
        raise PlacementInputError(f"{what} must be a positive integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PlacementInputError(f"{what} must be a positive integer, got {value!r}") from None
    if number != value and not (isinstance(value, str) and value.strip().isdigit()):
        raise PlacementInputError(f"{what} must be a positive integer, got {value!r}")
    if number < 1:
        raise PlacementInputError(f"{what} must be a positive integer, got {value!r}")
    return number


def normalize_models(models, host_names, engines):
    """Validate the ``models`` list and return :class:`Request` objects sorted by alias."""
    if not isinstance(models, (list, tuple)) or not models:
        raise PlacementInputError("models must be a non-empty list")
    requests = []
    for position, item in enumerate(models):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not item.get("name"):
            raise PlacementInputError(f"models[{position}] needs a name")
        name = str(item["name"])
        unknown = sorted(
            set(item)
            - {"name", "alias", "engine", "quantizations", "quantization", "context",
               "parallel", "replicas", "host", *_OPTION_KEYS}
        )
        if unknown:
            raise PlacementInputError(f"model {name}: unknown keys {', '.join(unknown)}")
        engine = str(item.get("engine") or "any")
        if engine != "any" and engine not in engines:
            raise PlacementInputError(
                f"model {name}: engine {engine!r} is not one of any, {', '.join(engines)}"
            )
        quants = item.get("quantizations", item.get("quantization"))
        if isinstance(quants, str):
            quants = [quants]
        if not quants or not all(isinstance(q, str) and q for q in quants):
            raise PlacementInputError(
                f"model {name}: quantizations must be a non-empty list of names, best first"
            )
        if len(set(quants)) != len(quants):
            raise PlacementInputError(f"model {name}: quantizations repeat a name")
        host = item.get("host")
        if host is not None and host not in host_names:
            raise PlacementInputError(
                f"model {name}: pinned host {host!r} is not among the planned hosts"
            )
        options = tuple(sorted((k, item[k]) for k in _OPTION_KEYS if item.get(k) is not None))
        requests.append(
            Request(
                alias=str(item.get("alias") or name),
                model=name,
                engine=engine,
                quantizations=tuple(quants),
                context=_positive_int(item.get("context", 4096), f"model {name}: context"),
                parallel=_positive_int(item.get("parallel", 1), f"model {name}: parallel"),
                replicas=_positive_int(item.get("replicas", 1), f"model {name}: replicas"),
                host=host,
                options=options,
            )
        )
    aliases = [r.alias for r in requests]
    duplicates = sorted({a for a in aliases if aliases.count(a) > 1})
    if duplicates:
        raise PlacementInputError(
            "each model is listed once (use replicas, or an alias to serve it twice): "
            + ", ".join(duplicates)
        )
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
            device = Device(
                key=len(devices), host=name, index=int(gpu.get("index", len(keys))),
                uuid=gpu.get("uuid"), name=str(gpu.get("name") or "GPU"), total=total,
                capacity=max(0, total - reserve_bytes), kind="gpu",
            )
            devices.append(device)
            keys.append(device.key)
        kind = "gpu" if keys else "none"
        if not keys and spec.get("cpu_inference"):
            ram = int(spec.get("ram_bytes") or 0)
            if ram <= 0:
                raise PlacementInputError(f"host {name}: cpu_inference needs ram_bytes")
            device = Device(
                key=len(devices), host=name, index=None, uuid=None, name="RAM", total=ram,
                capacity=max(0, ram - ram_reserve_bytes), kind="cpu",
            )
            devices.append(device)
            keys.append(device.key)
            kind = "cpu"
        result[name] = Host(
            name=name, address=str(spec.get("address") or name), devices=tuple(keys),
            blocks=_blocks([devices[k] for k in keys]) if kind == "gpu" else {}, kind=kind,
        )
    return devices, result


def _blocks(gpus):
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
    blocks = {}
    for band in bands:
        for size in range(1, len(band) + 1):
            for start in range(0, len(band) - size + 1, size):
                group = tuple(sorted(d.key for d in band[start:start + size]))
                blocks.setdefault(size, []).append(group)
    return {size: tuple(groups) for size, groups in blocks.items()}


# --------------------------------------------------------------------------------------------
# Memory needs


@dataclass(frozen=True)
class Option:
    """One way to run a request: engine, quantization, GPU count, device kind."""

    quality: int  # higher is better; comparable across requests
    engine: str
    quantization: str
    size: int  # GPUs in the group (1 on RAM)
    kind: str  # "gpu" or "cpu"


@dataclass(frozen=True)
class Need:
    claims: tuple  # bytes taken on each device of the group, in group order
    util: float | None  # vLLM --gpu-memory-utilization
    estimate: object


class Needs:
    """Memoised estimates. Identical GPUs share one estimate: the cache key is the request,
    engine, quantization, group size and the group's smallest memory, never a GPU."""

    def __init__(self, estimator):
        self.estimator = estimator
        self._cache = {}
        self._tp = {}
        self._needs = {}
        self.errors = {}  # (model, context, parallel) -> the estimator's last refusal
        self.calls = 0

    def tp_sizes(self, model, count, engine):
        key = (model, count, engine)
        if key not in self._tp:
            try:
                sizes = self.estimator.valid_tp_sizes(model, count, engine=engine)
            except TypeError:  # an estimator without the engine argument: vLLM's rule only
                sizes = (self.estimator.valid_tp_sizes(model, count)
                         if engine in TENSOR_PARALLEL_ENGINES else range(1, count + 1))
            except ValueError:
                sizes = []
            self._tp[key] = frozenset(int(s) for s in sizes)
        return self._tp[key]

    def estimate(self, req, engine, quant, size, total, cpu=False):
        key = (req.model, engine, quant, req.context, req.parallel, size, total, cpu, req.options)
        if key in self._cache:
            return self._cache[key]
        kwargs = dict(req.options)
        if cpu:
            kwargs["n_gpu_layers"] = 0
        else:
            kwargs["gpu_total_bytes"] = total
        self.calls += 1
        try:
            value = self.estimator.estimate(
                req.model, engine, quant, req.context, parallel=req.parallel, tp=size, **kwargs
            )
        except ValueError as exc:
            value = None
            self.errors[(req.model, req.context, req.parallel)] = str(exc)
        self._cache[key] = value
        return value

    def need(self, req, option, group):
        """Bytes ``option`` of ``req`` takes on each device of ``group``; None if impossible."""
        key = (req, option, tuple(d.total for d in group))
        if key not in self._needs:
            self._needs[key] = self._need(req, option, group)
        return self._needs[key]

    def _need(self, req, option, group):
        if option.kind == "cpu":
            est = self.estimate(req, option.engine, option.quantization, 1, group[0].total, True)
            if est is None:
                return None
            return Need((int(est.host_bytes) + sum(int(b) for b in est.per_gpu_bytes),), None, est)
        smallest = min(d.total for d in group)
        est = self.estimate(req, option.engine, option.quantization, option.size, smallest)
        if est is None:
            return None
        per_gpu = [int(b) for b in est.per_gpu_bytes]
        if len(per_gpu) != len(group):
            per_gpu = [max(per_gpu or [0])] * len(group)
        if option.engine == "vllm":
            # vLLM takes one fraction of each GPU's total memory; round it up to a hundredth
            # and claim exactly that, so fractions on a GPU sum below 1.
            util = max(b / d.total for b, d in zip(per_gpu, group, strict=True))
            util = math.ceil(util * 100 - 1e-9) / 100
            return Need(tuple(math.ceil(util * d.total) for d in group), util, est)
        return Need(tuple(per_gpu), None, est)


_MAX_GROUP = 16  # most GPUs one instance may span
_GPU_BONUS = 10**7  # any GPU option beats any RAM option


def _options(req, host_kind_present, n_max, needs, engines):
    """The ways to run ``req``, best first: GPU before RAM, then the user's quantization order,
    then the engine order, then fewer GPUs."""
    names = [req.engine] if req.engine != "any" else [e for e in ANY_ENGINES if e in engines]
    options = []
    n_quant = len(req.quantizations)
    for qi, quant in enumerate(req.quantizations):
        for engine in names:
            rank = ENGINE_RANK.index(engine) if engine in ENGINE_RANK else len(ENGINE_RANK)
            base = (n_quant - qi) * (len(ENGINE_RANK) + 1) + (len(ENGINE_RANK) - rank)
            if "gpu" in host_kind_present:
                for size in sorted(needs.tp_sizes(req.model, n_max, engine)):
                    if 1 <= size <= min(n_max, _MAX_GROUP):
                        # fewer GPUs is better at the same quantization and engine
                        quality = _GPU_BONUS + base * (_MAX_GROUP + 1) + _MAX_GROUP - size
                        options.append(Option(quality, engine, quant, size, "gpu"))
            if "cpu" in host_kind_present and engine == CPU_ENGINE:
                options.append(Option(base * (_MAX_GROUP + 1), engine, quant, 1, "cpu"))
    options.sort(key=lambda o: (-o.quality, o.size, o.engine, o.quantization))
    return options


def _options_for(req, hosts, needs, engines):
    """:func:`_options` for the hosts ``req`` may use (its pinned host, or all)."""
    pool = [hosts[req.host]] if req.host else list(hosts.values())
    kinds = {h.kind for h in pool}
    n_max = max((len(h.devices) for h in pool if h.kind == "gpu"), default=0)
    return _options(req, kinds, n_max, needs, engines)


# --------------------------------------------------------------------------------------------
# Candidates (for the MILP and the diagnosis)


@dataclass(frozen=True)
class Candidate:
    req: int
    option: Option
    host: str
    devices: tuple  # device keys
    need: Need


def _groups(req, option, hosts, devices):
    """Device groups ``option`` of ``req`` may use, hosts sorted by name."""
    names = [req.host] if req.host else sorted(hosts)
    for name in names:
        host = hosts[name]
        if option.kind == "cpu":
            if host.kind == "cpu":
                yield name, host.devices
        elif host.kind == "gpu":
            for group in host.blocks.get(option.size, ()):
                yield name, group


def candidates(requests, options, hosts, devices, needs, limit=None):
    """Every placement that fits an empty cluster, dominated ones removed; None as soon as
    there are more than ``limit``."""
    result = []
    for ri, req in enumerate(requests):
        best_on = {}  # group -> list of (quality, claims) kept so far
        for option in options[ri]:
            for host, group in _groups(req, option, hosts, devices):
                members = [devices[k] for k in group]
                need = needs.need(req, option, members)
                if need is None or any(c > d.capacity for c, d in zip(need.claims, members, strict=True)):
                    continue
                kept = best_on.setdefault(group, [])
                # A better option on the same group that takes no more memory dominates.
                if any(all(a <= b for a, b in zip(claims, need.claims, strict=True)) for claims in kept):
                    continue
                kept.append(need.claims)
                result.append(Candidate(ri, option, host, group, need))
                if limit is not None and len(result) > limit:
                    return None
    return result


# --------------------------------------------------------------------------------------------
# Greedy: best-fit (binpack) or worst-fit (spread), one replica at a time, biggest first


class _State:
    def __init__(self, devices):
        self.devices = devices
        self.free = [d.capacity for d in devices]
        # Single-GPU search: GPUs grouped by total memory, each group a sorted list of
        # (free, key); identical GPUs anywhere in the cluster share one list.
        self.by_total = {}
        for d in devices:
            if d.kind == "gpu":
                self.by_total.setdefault(d.total, []).append((d.capacity, d.key))
        for entries in self.by_total.values():
            entries.sort()
        self.used_devices = set()
        self.used_hosts = set()

    def take(self, group, claims):
        for key, claim in zip(group, claims, strict=True):
            device = self.devices[key]
            if device.kind == "gpu":
                entries = self.by_total[device.total]
                entries.pop(bisect.bisect_left(entries, (self.free[key], key)))
                bisect.insort(entries, (self.free[key] - claim, key))
            self.free[key] -= claim
            self.used_devices.add(key)
            self.used_hosts.add(device.host)


def _pick_single(state, req, option, needs, exclude, avoid_hosts, policy):
    """Best GPU for a one-GPU option, searching per memory size with bisect."""
    best = None
    for total in sorted(state.by_total):
        entries = state.by_total[total]
        sample = state.devices[entries[0][1]]
        need = needs.need(req, option, [sample])
        if need is None:
            continue
        claim = need.claims[0]
        if policy == "binpack":
            pos = bisect.bisect_left(entries, (claim, -1))
            while pos < len(entries):
                free, key = entries[pos]
                if key not in exclude:
                    rank = (free - claim, key)
                    if best is None or rank < best[0]:
                        best = (rank, key, need)
                    break
                pos += 1
        else:
            pos = len(entries) - 1
            fallback = None
            while pos >= 0 and entries[pos][0] >= claim:
                free, key = entries[pos]
                if key not in exclude:
                    if state.devices[key].host not in avoid_hosts:
                        fallback = None
                        rank = (1, -free / state.devices[key].capacity, key)
                        if best is None or rank < best[0]:
                            best = (rank, key, need)
                        break
                    if fallback is None:
                        fallback = (free, key)
                pos -= 1
            if fallback is not None:
                free, key = fallback
                rank = (2, -free / state.devices[key].capacity, key)
                if best is None or rank < best[0]:
                    best = (rank, key, need)
    if best is None:
        return None
    key = best[1]
    return state.devices[key].host, (key,), best[2]


def _pick_group(state, req, option, hosts, needs, exclude, avoid_hosts, policy):
    best = None
    for host, group in _groups(req, option, hosts, state.devices):
        if exclude.intersection(group):
            continue
        members = [state.devices[k] for k in group]
        need = needs.need(req, option, members)
        if need is None:
            continue
        slack = [state.free[k] - c for k, c in zip(group, need.claims, strict=True)]
        if min(slack) < 0:
            continue
        if policy == "binpack":
            rank = (0 if host in state.used_hosts else 1, sum(slack), group)
        else:
            load = max(
                1 - s / state.devices[k].capacity if state.devices[k].capacity else 1
                for k, s in zip(group, slack, strict=True)
            )
            rank = (1 if host in avoid_hosts else 0, load, group)
        if best is None or rank < best[0]:
            best = (rank, host, group, need)
    if best is None:
        return None
    return best[1], best[2], best[3]


def _may_fit(state, req, option, needs):
    """False when no GPU has even 90% of the smallest per-GPU need of ``option`` free: a
    quick test before scanning every GPU group of the cluster (the greedy only)."""
    smallest, most_free = None, 0
    for entries in state.by_total.values():
        if not entries:
            continue
        most_free = max(most_free, entries[-1][0])
        need = needs.need(req, option, [state.devices[entries[0][1]]] * option.size)
        if need is not None:
            low = min(need.claims)
            smallest = low if smallest is None else min(smallest, low)
    return smallest is not None and most_free >= 0.9 * smallest


def _size_key(req, options, needs, devices):
    """How much a request takes at its best one-device option, for the decreasing order."""
    largest = max((d for d in devices if d.kind == "gpu"), key=lambda d: d.total, default=None)
    for option in options:
        if option.size != 1:
            continue
        sample = largest if option.kind == "gpu" else next(
            (d for d in devices if d.kind == "cpu"), None)
        if sample is None:
            continue
        need = needs.need(req, option, [sample])
        if need is not None:
            return need.claims[0]
    return 0


def greedy(requests, options, hosts, devices, needs, policy):
    """Place replicas biggest first; each takes the best option that fits somewhere, on the
    tightest GPU (binpack) or the emptiest on a host without a replica of it (spread)."""
    state = _State(devices)
    order = sorted(
        range(len(requests)),
        key=lambda ri: (
            requests[ri].host is None,
            -_size_key(requests[ri], options[ri], needs, devices),
            requests[ri].alias,
        ),
    )
    placed = []
    for ri in order:
        req = requests[ri]
        mine, my_hosts = set(), set()
        for _replica in range(req.replicas):
            choice = None
            for option in options[ri]:
                if option.kind == "gpu" and option.size == 1 and req.host is None:
                    choice = _pick_single(state, req, option, needs, mine, my_hosts, policy)
                elif option.kind == "gpu" and req.host is None and not _may_fit(
                        state, req, option, needs):
                    continue
                else:
                    choice = _pick_group(
                        state, req, option, hosts, needs, mine, my_hosts, policy)
                if choice is not None:
                    break
            if choice is None:
                break
            host, group, need = choice
            state.take(group, need.claims)
            mine.update(group)
            my_hosts.add(host)
            placed.append(Candidate(ri, option, host, group, need))
    return placed


# --------------------------------------------------------------------------------------------
# Exact: a MILP solved by HiGHS


_BANNER_SHOWN = False


def _highs():
    """A silent ``highspy.Highs`` or None when highspy is not installed."""
    global _BANNER_SHOWN
    try:
        import highspy  # optional: imported when needed
    except ImportError:
        return None, None
    if _BANNER_SHOWN:
        solver = highspy.Highs()
    else:
        # HiGHS prints a banner to fd 1 the first time; keep the controller's output clean.
        try:
            sys.stdout.flush()
            saved = os.dup(1)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            try:
                solver = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(null)
        except OSError:
            solver = highspy.Highs()
        _BANNER_SHOWN = True
    solver.setOptionValue("output_flag", False)
    return highspy, solver


def _build(highspy, requests, cands, hosts, devices, policy):
    """The MILP as a HighsLp, plus the two objectives (as column cost lists).

    Columns: x_c (binary: candidate c is used); binpack adds u_d (GPU d used) and v_h (host h
    used); spread adds z (largest GPU load, 0..1) and y_rh (replicas of r on host h beyond
    the first). Rows: replicas per model; capacity per device (binpack: <= capacity x u_d);
    replicas of one model on distinct GPUs; binpack: u_d <= v_h and identical GPUs of one host
    used in index order (symmetry breaking); spread: load_d <= z and co-location counts.
    """
    inf = highspy.kHighsInf
    total_replicas = sum(r.replicas for r in requests)
    multi = [r.replicas > 1 for r in requests]
    n_x = len(cands)
    entries = [([], []) for _ in range(n_x)]  # per column: (rows, values)
    lower, upper, integral, primary, packing = [], [], [], [], []
    rows_lower, rows_upper = [], []

    def row(lo, hi):
        rows_lower.append(lo)
        rows_upper.append(hi)
        return len(rows_lower) - 1

    def column(lo, hi, is_int, cost1, cost2, coefficients):
        entries.append(([r for r, _ in coefficients], [v for _, v in coefficients]))
        lower.append(lo)
        upper.append(hi)
        integral.append(is_int)
        primary.append(cost1)
        packing.append(cost2)
        return len(lower) - 1

    # Quality as a dense rank within each model (0 = its worst candidate option), so the
    # weights stay small integers.
    levels = {}
    for c in cands:
        levels.setdefault(c.req, set()).add(c.option.quality)
    rank = {ri: {q: i for i, q in enumerate(sorted(qs))} for ri, qs in levels.items()}
    span = max((len(qs) for qs in levels.values()), default=1)
    place_weight = span * total_replicas + 1
    for c in cands:
        lower.append(0.0)
        upper.append(1.0)
        integral.append(True)
        # one more replica placed outweighs every quality step; integers, so an absolute
        # gap below 1 proves optimality
        primary.append(float(place_weight + rank[c.req][c.option.quality]))
        packing.append(0.0)
    # No plan can score more than every replica at its best option.
    bound = 0.0
    for ri, qs in levels.items():
        most = min(requests[ri].replicas, sum(1 for c in cands if c.req == ri))
        bound += most * (place_weight + len(qs) - 1)

    def put(ci, r, value):
        entries[ci][0].append(r)
        entries[ci][1].append(value)

    per_req = {}
    for ci, c in enumerate(cands):
        per_req.setdefault(c.req, []).append(ci)
    for ri, req in enumerate(requests):
        if ri in per_req:
            r = row(-inf, float(req.replicas))
            for ci in per_req[ri]:
                put(ci, r, 1.0)
    on_device = {}
    for ci, c in enumerate(cands):
        for k, claim in zip(c.devices, c.need.claims, strict=True):
            on_device.setdefault(k, []).append((ci, claim))
    used = sorted(on_device)
    cap_row = {}
    for k in used:
        cap = devices[k].capacity
        cap_row[k] = row(-inf, 0.0 if policy == "binpack" else cap / GIB)
        for ci, claim in on_device[k]:
            put(ci, cap_row[k], claim / GIB)
    by_req_device = {}
    for ci, c in enumerate(cands):
        if multi[c.req]:
            for k in c.devices:
                by_req_device.setdefault((c.req, k), []).append(ci)
    for pair in sorted(by_req_device):
        if len(by_req_device[pair]) > 1:
            r = row(-inf, 1.0)
            for ci in by_req_device[pair]:
                put(ci, r, 1.0)
    extra = {"used": used, "bound": bound}
    if policy == "binpack":
        max_per_host = max((len(h.devices) for h in hosts.values()), default=1)
        host_weight = float(max_per_host + 1)  # one host fewer outweighs every GPU
        host_rows = {k: row(-inf, 0.0) for k in used}
        u_col, previous = {}, {}
        for k in used:
            u_col[k] = column(0.0, 1.0, True, 0.0, -1.0,
                              [(cap_row[k], -devices[k].capacity / GIB), (host_rows[k], 1.0)])
        for k in used:
            d = devices[k]
            ident = (d.host, d.name, d.total)
            if ident in previous:
                r = row(0.0, inf)  # u_previous - u_k >= 0
                put(u_col[previous[ident]], r, 1.0)
                put(u_col[k], r, -1.0)
            previous[ident] = k
        v_col = {}
        for name in sorted({devices[k].host for k in used}):
            v_col[name] = column(0.0, 1.0, True, 0.0, -host_weight,
                                 [(host_rows[k], -1.0) for k in used if devices[k].host == name])
        extra.update(u_col=u_col, v_col=v_col)
    else:
        load_rows = {}
        for k in used:
            load_rows[k] = row(-inf, 0.0)
            cap = devices[k].capacity or 1
            for ci, claim in on_device[k]:
                put(ci, load_rows[k], claim / cap)
        # max load in hundredths; one replica fewer on a shared host outweighs it
        z_col = column(0.0, 1.0, False, 0.0, -100.0, [(load_rows[k], -1.0) for k in used])
        colocate = {}
        for ci, c in enumerate(cands):
            if multi[c.req]:
                colocate.setdefault((c.req, c.host), []).append(ci)
        y_col = {}
        for pair in sorted(colocate):
            if len(colocate[pair]) < 2:
                continue
            r = row(-inf, 1.0)
            for ci in colocate[pair]:
                put(ci, r, 1.0)
            y_col[pair] = column(0.0, inf, False, 0.0, -101.0, [(r, -1.0)])
        extra.update(z_col=z_col, y_col=y_col)

    lp = highspy.HighsLp()
    lp.num_col_ = len(lower)
    lp.num_row_ = len(rows_lower)
    lp.col_cost_ = primary
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = rows_lower
    lp.row_upper_ = rows_upper
    lp.sense_ = highspy.ObjSense.kMaximize
    starts, index, value = [0], [], []
    for rows, values in entries:
        index.extend(rows)
        value.extend(values)
        starts.append(len(index))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = lp.num_col_
    lp.a_matrix_.num_row_ = lp.num_row_
    lp.a_matrix_.start_ = starts
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
        for flag in integral
    ]
    return lp, primary, packing, extra


def _warm_values(cands, chosen, devices, n_col, policy, extra):
    """A full, feasible column vector for the chosen candidates (greedy's answer)."""
    values = [0.0] * n_col
    load = {}
    for ci in chosen:
        values[ci] = 1.0
        for k, claim in zip(cands[ci].devices, cands[ci].need.claims, strict=True):
            load[k] = load.get(k, 0) + claim
    if policy == "binpack":
        for k, col in extra["u_col"].items():
            values[col] = 1.0 if k in load else 0.0
        busy = {devices[k].host for k in load}
        for name, col in extra["v_col"].items():
            values[col] = 1.0 if name in busy else 0.0
    else:
        values[extra["z_col"]] = min(1.0, max(
            [claim / (devices[k].capacity or 1) for k, claim in load.items()] or [0.0]))
        for pair, col in extra["y_col"].items():
            count = sum(1 for ci in chosen if (cands[ci].req, cands[ci].host) == pair)
            values[col] = float(max(0, count - 1))
    return values


def milp(requests, cands, hosts, devices, policy, time_limit, start=None):
    """Solve the assignment exactly, in two stages (lexicographic objectives):

    1. maximise replicas placed, then their quality (quantization, engine, GPU over RAM);
    2. keeping that value, the packing objective: binpack minimises hosts then GPUs used,
       spread minimises replicas sharing a host, then the largest GPU load.

    Stage 1 gets up to 70% of ``time_limit``; stage 2 the rest. Each starts from the best
    known answer (greedy's, then stage 1's), so a time-out still returns a feasible plan.
    Returns (chosen candidates, status) or None when highspy is not installed.
    """
    deadline = time.monotonic() + time_limit
    highspy, solver = _highs()
    if highspy is None:
        return None
    lp, primary, packing, extra = _build(highspy, requests, cands, hosts, devices, policy)
    n_x, n_col = len(cands), lp.num_col_
    solver.passModel(lp)
    for name, value in (("mip_rel_gap", 0.0), ("mip_abs_gap", 0.5), ("random_seed", 0),
                        ("threads", 1)):
        solver.setOptionValue(name, value)

    def run(seconds, values):
        solver.setOptionValue("time_limit", max(0.05, seconds))
        if values is not None:
            solution = highspy.HighsSolution()
            solution.col_value = values
            solution.value_valid = True
            # A rejected warm start only costs time.
            with contextlib.suppress(Exception):
                solver.setSolution(solution)
        solver.run()
        status = solver.getModelStatus()
        info = solver.getInfo()
        feasible = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        values = list(solver.getSolution().col_value) if feasible else None
        return status, values

    started = time.monotonic()
    warm = _warm_values(cands, start, devices, n_col, policy, extra) if start else None
    if warm is not None and sum(primary[i] * warm[i] for i in range(n_x)) >= extra["bound"] - 0.5:
        # the greedy already placed every replica at its best option: stage 1 is done
        values, optimal, stages = warm, True, ["Optimal (greedy reached the bound)"]
    else:
        status1, values = run(0.7 * (deadline - time.monotonic()), warm)
        optimal = status1 == highspy.HighsModelStatus.kOptimal
        stages = [solver.modelStatusToString(status1)]
    if values is None:
        return [], {"status": stages[0], "optimal": False, "feasible": False,
                    "seconds": time.monotonic() - started}
    remaining = deadline - time.monotonic()
    if remaining > 0.05 and any(packing):
        best = sum(primary[i] * values[i] for i in range(n_x))
        idx = list(range(n_x))
        solver.addRow(best - 0.5, highspy.kHighsInf, n_x, idx, [primary[i] for i in idx])
        solver.changeColsCost(n_col, list(range(n_col)), packing)
        status2, values2 = run(remaining, values)
        stages.append(solver.modelStatusToString(status2))
        if values2 is not None:
            values = values2
        optimal = optimal and status2 == highspy.HighsModelStatus.kOptimal
    elif any(packing):
        optimal = False
        stages.append("skipped: no time left")
    chosen = [cands[i] for i in range(n_x) if values[i] > 0.5]
    return chosen, {"status": "; ".join(stages), "optimal": optimal, "feasible": True,
                    "seconds": time.monotonic() - started}


# --------------------------------------------------------------------------------------------
# Diagnosis: why a model does not fit, and the smallest change that does


def _gib(value):
    return f"{value / GIB:.1f} GiB"


def _describe_group(devices, group):
    first = devices[group[0]]
    if first.kind == "cpu":
        return f"{first.host} RAM ({_gib(first.capacity)} usable)"
    gpus = ", ".join(f"{devices[k].index}" for k in group)
    label = "GPU" if len(group) == 1 else "GPUs"
    return f"{first.host} {label} {gpus} ({first.name}, {_gib(first.total)} each)" if len(
        group) > 1 else f"{first.host} GPU {gpus} ({first.name}, {_gib(first.total)})"


def _group_needs(req, option, hosts, devices, needs):
    """Yield (host, group, need) for every group of ``option``, one estimate per distinct
    set of GPU sizes."""
    local = {}
    for host, group in _groups(req, option, hosts, devices):
        totals = tuple(devices[k].total for k in group)
        if totals not in local:
            local[totals] = needs.need(req, option, [devices[k] for k in group])
        if local[totals] is not None:
            yield host, group, local[totals]


def _closest(req, options, hosts, devices, needs, free):
    """The option and group that come nearest to fitting ``free``: (shortfall, option, host,
    group, need) or None when the estimator accepts no option at all."""
    best = None
    for option in options:
        for host, group, need in _group_needs(req, option, hosts, devices, needs):
            short = max(c - free[k] for k, c in zip(group, need.claims, strict=True))
            rank = (max(short, 0), -option.quality, option.size, group)
            if best is None or rank < best[0]:
                best = (rank, short, option, host, group, need)
    if best is None:
        return None
    return best[1:]


def _fits(req, options, hosts, devices, needs, free, exclude=()):
    """Whether some option of ``req`` fits ``free`` on a group sharing no device with
    ``exclude`` (the GPUs its other replicas already use)."""
    blocked = set(exclude)
    for option in options:
        for _host, group, need in _group_needs(req, option, hosts, devices, needs):
            if blocked.intersection(group):
                continue
            if all(c <= free[k] for k, c in zip(group, need.claims, strict=True)):
                return True
    return False


def _ladder(req, estimator):
    """Quantizations to try as "lower": the estimator's list for the model if it has one."""
    for attr in ("quantizations_for", "quantizations"):
        fn = getattr(estimator, attr, None)
        if callable(fn):
            try:
                listed = list(fn(req.model))
            except (ValueError, KeyError, TypeError):
                continue
            if listed:
                return [q if isinstance(q, str) else str(q) for q in listed]
    engines = [req.engine] if req.engine != "any" else list(ANY_ENGINES)
    ladder = []
    if any(e in GGUF_ENGINES for e in engines):
        ladder += GGUF_LADDER
    if "vllm" in engines:
        ladder += VLLM_LADDER
    return ladder


def _suggest(ri, req, ctx, free, exclude, placed_count):
    """Smallest change to ``req`` that fits, each checked by estimating again: it fits in the
    memory the others leave as planned, or a greedy re-plan of the whole set with the change
    places it without dropping a replica of another model."""
    hosts, devices, needs, engines, estimator, replan = ctx

    def fits(changed):
        options = _options_for(changed, hosts, needs, engines)
        if _fits(changed, options, hosts, devices, needs, free, exclude):
            return True
        return replan is not None and replan(ri, changed, options)

    suggestions = []
    # 1. a lower quantization: the largest the estimator accepts that fits
    tried = {q.upper().replace("-", "_") for q in req.quantizations}
    lower = []
    for quant in _ladder(req, estimator):
        if quant.upper().replace("-", "_") in tried:
            continue
        changed = req.with_(quantizations=(quant,))
        if fits(changed):
            lower.append(quant)
    if lower:
        # smallest change = the fitting quantization that needs the most memory
        def size(quant):
            changed = req.with_(quantizations=(quant,))
            return _size_key(changed, _options_for(changed, hosts, needs, engines), needs,
                             devices)
        pick = max(lower, key=lambda q: (size(q), -lower.index(q)))
        suggestions.append(f"quantization {pick}")
    # 2. a shorter context: the longest (in steps of 256) that fits
    if req.context > 256:
        low, high = 0, (req.context - 1) // 256
        while low < high:
            mid = (low + high + 1) // 2
            if fits(req.with_(context=mid * 256)):
                low = mid
            else:
                high = mid - 1
        if low >= 1:
            suggestions.append(f"context {low * 256}")
    # 3. fewer parallel sequences
    if req.parallel > 1:
        for parallel in range(req.parallel - 1, 0, -1):
            if fits(req.with_(parallel=parallel)):
                suggestions.append(f"parallel {parallel}")
                break
    # 4. fewer replicas
    if placed_count:
        suggestions.append(f"replicas {placed_count}")
    return suggestions


def _explain(requests, options, chosen, ctx):
    hosts, devices, needs = ctx[:3]
    free = [d.capacity for d in devices]
    count = {}
    used_by = {}
    for c in chosen:
        for k, claim in zip(c.devices, c.need.claims, strict=True):
            free[k] -= claim
        count[c.req] = count.get(c.req, 0) + 1
        used_by.setdefault(c.req, set()).update(c.devices)
    lines, unplaced, skipped, detailed, brief = [], [], 0, 0, []
    deadline = time.monotonic() + EXPLAIN_BUDGET
    for ri, req in enumerate(requests):
        missing = req.replicas - count.get(ri, 0)
        if missing <= 0:
            continue
        exclude = tuple(sorted(used_by.get(ri, ())))
        what = f"{missing} of {req.replicas} replicas of " if req.replicas > 1 else ""
        head = f"{what}model {req.alias}"
        if req.alias != req.model:
            head += f" ({req.model})"
        if detailed + skipped >= ANALYSE_LIMIT:
            unplaced.append({"name": req.alias, "model": req.model, "missing": missing,
                             "short_bytes": None, "suggestions": [],
                             "message": f"{head} does not fit (not analysed)"})
            brief.append(req.alias)
            skipped += 1
            continue
        closest = _closest(req, options[ri], hosts, devices, needs, free)
        entry = {"name": req.alias, "model": req.model, "missing": missing}
        if closest is None:
            where = f" on host {req.host}" if req.host else ""
            why = needs.errors.get((req.model, req.context, req.parallel))
            text = (f"{head} cannot run as asked{where} (engine {req.engine}, quantizations "
                    f"{', '.join(req.quantizations)}): "
                    + (f"the estimator says: {why}" if why else "no GPU or CPU host can take it"))
            entry["short_bytes"] = None
        else:
            short, option, _host, group, need = closest
            empty_short = max(c - devices[k].capacity for k, c in zip(group, need.claims, strict=True))
            text = (f"{head} does not fit: the closest is {option.engine} {option.quantization} "
                    f"context {req.context} on {_describe_group(devices, group)}, needs "
                    f"{_gib(max(need.claims))} per device and is {_gib(max(short, 0))} short")
            if empty_short > 0:
                text += " even with nothing else on it"
            entry["short_bytes"] = max(short, 0)
            entry["closest"] = {
                "engine": option.engine, "quantization": option.quantization,
                "host": _host, "gpus": [devices[k].index for k in group],
                "need_bytes": list(need.claims),
            }
        if detailed >= DETAIL_LIMIT or time.monotonic() > deadline:
            entry["suggestions"] = []
            entry["message"] = text
            unplaced.append(entry)
            brief.append(req.alias)
            skipped += 1
            continue
        suggestions = _suggest(ri, req, ctx, free, exclude, count.get(ri, 0))
        entry["suggestions"] = suggestions
        detailed += 1
        if suggestions:
            text += "; it would fit with " + " or ".join(suggestions)
        else:
            text += "; no single change to it fits: add GPU memory or remove another model"
        entry["message"] = text
        lines.append(text)
        unplaced.append(entry)
    if skipped:
        lines.append(f"{skipped} more models do not fit: "
                     + ", ".join(brief))
    return lines, unplaced


# --------------------------------------------------------------------------------------------
# Output


def _slug(text):
    return _SLUG.sub("-", text.lower()).strip("-") or "model"


def _settings(req, c, devices):
    engine, size = c.option.engine, len(c.devices)
    options = dict(req.options)
    flash = bool(options.get("flash_attention", True))
    kv_type = options.get("kv_cache_type", "f16")
    if c.option.kind == "cpu":
        return {"n_gpu_layers": 0, "ctx_size": req.context * req.parallel,
                "parallel": req.parallel, "flash_attn": flash, "cache_type_k": kv_type,
                "cache_type_v": kv_type}
    if engine == "vllm":
        return {"tensor_parallel_size": size, "gpu_memory_utilization": c.need.util,
                "max_model_len": req.context, "max_num_seqs": req.parallel}
    totals = [devices[k].total for k in c.devices]
    split = [round(t / sum(totals), 4) for t in totals] if size > 1 else []
    if engine == "ollama":
        return {"num_parallel": req.parallel, "context_length": req.context,
                "flash_attention": flash, "kv_cache_type": kv_type, "sched_spread": size > 1}
    return {"n_gpu_layers": 999, "ctx_size": req.context * req.parallel,
            "parallel": req.parallel, "split_mode": "layer" if size > 1 else "none",
            "tensor_split": split, "flash_attn": flash, "cache_type_k": kv_type,
            "cache_type_v": kv_type}


def _result(requests, chosen, hosts, devices, port_base, meta, unplaced):
    by_host = {name: [] for name in sorted(hosts)}
    replica_index = {}
    ordered = sorted(
        chosen,
        key=lambda c: (c.req, devices[c.devices[0]].host, c.devices, c.option.engine),
    )
    for c in ordered:
        req = requests[c.req]
        replica = replica_index.get(c.req, 0)
        replica_index[c.req] = replica + 1
        members = [devices[k] for k in c.devices]
        est = c.need.estimate
        on_gpu = c.option.kind == "gpu"
        by_host[c.host].append({
            "id": f"{_slug(req.alias)}-{replica}",
            "name": req.alias,
            "model": req.model,
            "replica": replica,
            "engine": c.option.engine,
            "quantization": c.option.quantization,
            "context": req.context,
            "parallel": req.parallel,
            "device": c.option.kind,
            "gpus": [d.index for d in members] if on_gpu else [],
            "gpu_uuids": [d.uuid for d in members] if on_gpu else [],
            "cuda_visible_devices": ",".join(str(d.index) for d in members) if on_gpu else "",
            "tensor_parallel_size": len(members) if on_gpu else 0,
            "gpu_memory_utilization": c.need.util,
            "bytes_per_gpu": list(c.need.claims) if on_gpu else [],
            "ram_bytes": c.need.claims[0] if not on_gpu else int(getattr(est, "host_bytes", 0)),
            "settings": _settings(req, c, devices),
        })
    placement, routes = {}, {}
    for name, instances in by_host.items():
        instances.sort(key=lambda i: (i["name"], i["replica"]))
        if port_base + len(instances) - 1 > 65535:
            raise PlacementInputError(f"port_base {port_base} leaves no port for {name}")
        for port, instance in enumerate(instances, start=port_base):
            instance["port"] = port
            routes.setdefault(instance["name"], []).append(f"{hosts[name].address}:{port}")
        used = {}
        for instance in instances:
            for index, claim in zip(instance["gpus"], instance["bytes_per_gpu"], strict=True):
                used.setdefault(index, []).append((instance["id"], claim))
            if instance["device"] == "cpu":
                used.setdefault("ram", []).append((instance["id"], instance["ram_bytes"]))
        device_rows = []
        for key in hosts[name].devices:
            d = devices[key]
            slot = d.index if d.kind == "gpu" else "ram"
            taken = used.get(slot, [])
            device_rows.append({
                "index": d.index, "uuid": d.uuid, "name": d.name, "kind": d.kind,
                "memory_total": d.total, "reserved": d.total - d.capacity,
                "planned": sum(b for _, b in taken), "free": d.capacity - sum(b for _, b in taken),
                "instances": [i for i, _ in taken],
            })
        placement[name] = {"address": hosts[name].address, "instances": instances,
                           "devices": device_rows}
    for targets in routes.values():
        targets.sort()
    result = {"placement": placement, "routes": dict(sorted(routes.items())),
              "unplaced": unplaced}
    result.update(meta)
    return result


# --------------------------------------------------------------------------------------------
# Entry point


def load_estimator():
    """The collection's estimator module (imported here so tests can inject a fake)."""
    from ansible_collections.teamllm.stack.plugins.module_utils import (
        _estimator,
    )

    return _estimator


def plan(models, hosts, policy="binpack", reserve_gib=DEFAULT_RESERVE_GIB,
         port_base=DEFAULT_PORT_BASE, solver="auto", time_limit=DEFAULT_TIME_LIMIT,
         estimator=None, ram_reserve_gib=DEFAULT_RAM_RESERVE_GIB, allow_partial=False,
         max_candidates=DEFAULT_MAX_CANDIDATES):
    """Place ``models`` on ``hosts``.

    ``models``: list of dicts (name, engine, quantizations, context, parallel, replicas, host,
    alias, flash_attention, kv_cache_type). ``hosts``: ``{name: {"gpus": teamllm_gpus facts,
    "cpu_inference": bool, "ram_bytes": int, "address": str}}``.

    Returns ``{"placement": {host: {"address", "instances", "devices"}}, "routes": {name:
    ["address:port", ...]}, "unplaced": [...], "solver", "solver_status", "optimal",
    "fallback_reason", "seconds", "policy", "candidates"}``. Raises :class:`PlacementError`
    when a replica does not fit (unless ``allow_partial``) and :class:`PlacementInputError`
    on malformed input.
    """
    started = time.monotonic()
    if policy not in POLICIES:
        raise PlacementInputError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if solver not in SOLVERS:
        raise PlacementInputError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    try:
        reserve = int(float(reserve_gib) * GIB)
        ram_reserve = int(float(ram_reserve_gib) * GIB)
        port_base = int(port_base)
        time_limit = float(time_limit)
    except (TypeError, ValueError) as exc:
        raise PlacementInputError(f"numeric option malformed: {exc}") from None
    if reserve < 0 or ram_reserve < 0 or time_limit <= 0 or not 1 <= port_base <= 65535:
        raise PlacementInputError("reserve_gib must be >= 0, time_limit > 0, port_base a port")
    estimator = estimator or load_estimator()
    engines = tuple(getattr(estimator, "ENGINES", ENGINE_RANK))
    devices, host_map = normalize_hosts(hosts, reserve, ram_reserve)
    requests = normalize_models(models, set(host_map), engines)
    needs = Needs(estimator)
    options = [_options_for(req, host_map, needs, engines) for req in requests]

    greedy_started = time.monotonic()
    greedy_chosen = greedy(requests, options, host_map, devices, needs, policy)
    greedy_seconds = time.monotonic() - greedy_started
    chosen, meta = greedy_chosen, {
        "solver": "greedy", "solver_status": "heuristic", "optimal": False,
        "fallback_reason": None, "candidates": None,
    }
    if solver == "greedy":
        meta["fallback_reason"] = "greedy asked for"
    else:
        def groups(names, option):
            if option.kind == "cpu":
                return sum(1 for n in names if host_map[n].kind == "cpu")
            return sum(len(host_map[n].blocks.get(option.size, ())) for n in names)

        everywhere = {}
        bound = 0
        for r, opts in zip(requests, options, strict=True):
            for o in opts:
                if r.host:
                    bound += groups([r.host], o)
                else:
                    key = (o.kind, o.size)
                    if key not in everywhere:
                        everywhere[key] = groups(host_map, o)
                    bound += everywhere[key]
        cands = (None if bound > 20 * max_candidates else
                 candidates(requests, options, host_map, devices, needs, max_candidates))
        meta["candidates"] = None if cands is None else len(cands)
        if cands is None:
            meta["fallback_reason"] = (
                f"more candidate placements than max_candidates ({max_candidates}) "
                "for the exact solver")
        else:
            index = {(c.req, c.option, c.devices): i for i, c in enumerate(cands)}
            start = [index[(c.req, c.option, c.devices)] for c in greedy_chosen
                     if (c.req, c.option, c.devices) in index]
            remaining = max(0.1, time_limit - (time.monotonic() - started))
            solved = milp(requests, cands, host_map, devices, policy, remaining, start)
            if solved is None:
                meta["fallback_reason"] = "highspy is not installed"
                if solver == "highs":
                    raise PlacementInputError("solver highs asked for but highspy is not installed")
            else:
                milp_chosen, status = solved
                better = len(milp_chosen) > len(greedy_chosen) or (
                    len(milp_chosen) == len(greedy_chosen) and status["feasible"])
                if status["feasible"] and better:
                    chosen = milp_chosen
                    meta.update(solver="highs", solver_status=status["status"],
                                optimal=status["optimal"])
                else:
                    meta["fallback_reason"] = (
                        f"HiGHS returned {status['status']} within {remaining:.1f}s without "
                        "beating the greedy")
    meta["policy"] = policy
    meta["greedy_seconds"] = round(greedy_seconds, 4)
    meta["estimates"] = needs.calls
    counts = {}
    for c in chosen:
        counts[c.req] = counts.get(c.req, 0) + 1
    replan = None
    if sum(r.replicas for r in requests) <= REPLAN_LIMIT:
        def replan(ri, changed, changed_options):
            reqs = requests[:ri] + [changed] + requests[ri + 1:]
            opts = options[:ri] + [changed_options] + options[ri + 1:]
            got = {}
            for c in greedy(reqs, opts, host_map, devices, needs, policy):
                got[c.req] = got.get(c.req, 0) + 1
            return got.get(ri, 0) >= changed.replicas and all(
                got.get(j, 0) >= counts.get(j, 0) for j in range(len(requests)) if j != ri)
    ctx = (host_map, devices, needs, engines, estimator, replan)
    lines, unplaced = _explain(requests, options, chosen, ctx)
    meta["seconds"] = round(time.monotonic() - started, 4)
    result = _result(requests, chosen, host_map, devices, port_base, meta, unplaced)
    if lines and not allow_partial:
        raise PlacementError(
            "models do not fit:\n- " + "\n- ".join(lines), unplaced=unplaced, result=result)
    return result
