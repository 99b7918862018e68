# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Memory needs: the ways to run a request (:class:`Option`) and what each takes on a GPU
group (:class:`Need`), with the estimator's answers memoised.

A need depends on the request's model, context, parallel sequences and estimator options,
the option, and the memory of the GPUs in the group, never on which GPUs they are: identical
GPUs anywhere in the cluster share one estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ansible_collections.teamllm.stack.plugins.module_utils import _engines

# What the placement needs to know of the engines comes from the engine registry:
# the engines in its order of preference; those tried, in that order, for a model whose engine
# is "any" (LocalAI only when asked for by name);
ENGINE_RANK = _engines.NAMES
ANY_ENGINES = _engines.names(any=True)
# those whose multi-GPU mode is tensor parallelism (the GPU count must divide the attention
# heads and the vocabulary; the others split by layers and take any count);
TENSOR_PARALLEL_ENGINES = frozenset(_engines.names(tensor_parallel=True))
# those that serve from the RAM of a CPU-only host.
CPU_ENGINES = frozenset(_engines.names(cpu=True))
MAX_GROUP = 16  # most GPUs one instance may span
_GPU_BONUS = 10**7  # any GPU option beats any RAM option


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
    """Memoised estimates and needs, keyed by what they depend on."""

    def __init__(self, estimator):
        self.estimator = estimator
        self._estimates = {}
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
        # Only vLLM's estimate depends on the GPU's memory (its utilization fraction); the
        # layer-split engines get one estimate per GPU count.
        total = total if engine in TENSOR_PARALLEL_ENGINES and not cpu else None
        key = (req.model, engine, quant, req.context, req.parallel, size, total, cpu, req.options)
        if key in self._estimates:
            return self._estimates[key]
        kwargs = dict(req.options)
        if cpu:
            kwargs["n_gpu_layers"] = 0
        elif total is not None:
            kwargs["gpu_total_bytes"] = total
        self.calls += 1
        try:
            value = self.estimator.estimate(
                req.model, engine, quant, req.context, parallel=req.parallel, tp=size, **kwargs)
        except ValueError as exc:
            value = None
            self.errors[(req.model, req.context, req.parallel)] = str(exc)
        self._estimates[key] = value
        return value

    def need(self, req, option, totals):
        """Bytes ``option`` of ``req`` takes on each device of a group whose devices have
        ``totals`` bytes (in group order); None if the estimator refuses it."""
        # only vLLM's need depends on the GPUs' memory (its fraction of each)
        key = (req.model, req.context, req.parallel, req.options, option,
               totals if option.engine in TENSOR_PARALLEL_ENGINES else len(totals))
        if key not in self._needs:
            self._needs[key] = self._need(req, option, totals)
        return self._needs[key]

    def _need(self, req, option, totals):
        if option.kind == "cpu":
            est = self.estimate(req, option.engine, option.quantization, 1, totals[0], True)
            if est is None:
                return None
            return Need((int(est.host_bytes) + sum(int(b) for b in est.per_gpu_bytes),), None, est)
        est = self.estimate(req, option.engine, option.quantization, option.size, min(totals))
        if est is None:
            return None
        per_gpu = [int(b) for b in est.per_gpu_bytes]
        if len(per_gpu) != len(totals):
            per_gpu = [max(per_gpu or [0])] * len(totals)
        if option.engine == "vllm":
            # vLLM takes one fraction of each GPU's total memory; round it up to a hundredth
            # and claim exactly that, so fractions on a GPU sum below 1.
            util = max(b / t for b, t in zip(per_gpu, totals, strict=True))
            util = math.ceil(util * 100 - 1e-9) / 100
            return Need(tuple(math.ceil(util * t) for t in totals), util, est)
        return Need(tuple(per_gpu), None, est)


def options(req, kinds, n_max, needs, engines):
    """The ways to run ``req`` on hosts of ``kinds`` with at most ``n_max`` GPUs, best first:
    GPU before RAM, then the user's quantization order, then the engine order, then fewer
    GPUs."""
    names = [req.engine] if req.engine != "any" else [e for e in ANY_ENGINES if e in engines]
    result = []
    n_quant = len(req.quantizations)
    for qi, quant in enumerate(req.quantizations):
        for engine in names:
            rank = ENGINE_RANK.index(engine) if engine in ENGINE_RANK else len(ENGINE_RANK)
            base = (n_quant - qi) * (len(ENGINE_RANK) + 1) + (len(ENGINE_RANK) - rank)
            if "gpu" in kinds:
                for size in sorted(needs.tp_sizes(req.model, n_max, engine)):
                    if 1 <= size <= min(n_max, MAX_GROUP):
                        # fewer GPUs is better at the same quantization and engine
                        quality = _GPU_BONUS + base * (MAX_GROUP + 1) + MAX_GROUP - size
                        result.append(Option(quality, engine, quant, size, "gpu"))
            if "cpu" in kinds and engine in CPU_ENGINES:
                result.append(Option(base * (MAX_GROUP + 1), engine, quant, 1, "cpu"))
    result.sort(key=lambda o: (-o.quality, o.size, o.engine, o.quantization))
    return result


def pool(hosts, host=None):
    """(kinds of hosts, most GPUs on one) among ``hosts``, or only ``host``."""
    chosen = [hosts[host]] if host else list(hosts.values())
    return ({h.kind for h in chosen},
            max((len(h.devices) for h in chosen if h.kind == "gpu"), default=0))


def options_for(req, hosts, needs, engines, everywhere=None):
    """:func:`options` for the hosts ``req`` may use (its pinned host, or all);
    ``everywhere`` is ``pool(hosts)`` when already known."""
    kinds, n_max = pool(hosts, req.host) if req.host or everywhere is None else everywhere
    return options(req, kinds, n_max, needs, engines)
