# Copyright (c) teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
"""Decode throughput of a placed instance, predicted from memory bandwidth.

Private to the collection; standard library only. Generating one token reads every weight
the token passes through once (for a mixture of experts only the experts it is routed to) and
each sequence's KV cache; at the batch sizes a team serves, that read, not arithmetic, bounds
the speed. So, for ``B`` sequences decoded together::

    seconds per step  t(B) = (W + B x K) / (efficiency x bandwidth) + (B - 1) x h
    tokens/s per sequence  = 1 / t(B);   tokens/s of the instance = B / t(B)

``W``: weight bytes read per step (active experts only; the token-embedding table is a
one-row lookup and not counted); ``K``: one sequence's KV cache at ``context x context_fill``
tokens (sliding-window layers hold at most the window). Several GPUs: a layer split
(llama.cpp, Ollama, LocalAI) runs the GPUs one after the other, each reading its share
``f_g`` of the layers, so ``1 / bandwidth = sum f_g / bandwidth_g``; vLLM's tensor parallel
reads ``1/tp`` of every layer on each GPU at once, so ``bandwidth = tp x the slowest GPU's``
(interconnect time not counted). ``h`` is the serving cost of each further sequence of a
step: the server's sampling, detokenising and streaming, and the batch's extra compute, which
the bandwidth term does not see; measured, it caps an instance's throughput near ``1 / h``
however fast its GPU. Prompt processing is not predicted.
"""

from __future__ import annotations

from ansible_collections.teamllm.stack.plugins.module_utils import _catalog, _estimator
from ansible_collections.teamllm.stack.plugins.module_utils._gguf_reader import type_nbytes
from ansible_collections.teamllm.stack.plugins.module_utils._gpu_specs import lookup

# Fraction of the peak (datasheet) memory bandwidth that llama.cpp's CUDA decode reaches:
# the median of llama-bench tg128 on an NVIDIA H200 (4.8 TB/s) over five models and two
# context depths - 8B Q8_0 0.42, 8B Q4_K_M 0.26-0.28, 32B Q4_K_M 0.32, 70B Q4_K_M 0.39,
# Mixtral 8x7B Q4_K_M 0.32 (tests/gpu/results/throughput-2026-12-02/). It depends on the
# quantization's kernels more than on the model; the spread, 0.26-0.42, is the prediction's.
DECODE_EFFICIENCY = 0.32
# Seconds each further sequence of a decode step adds beyond the bandwidth term (h above),
# measured with llama.cpp's server, as the llama_cpp role configures it, on the H200 with a
# 16-core host: 8B Q8_0 at 1, 8 and 32 streams gave 205, 575 and 889 tokens/s; this h predicts
# 193, 656 and 884 (tests/gpu/results/throughput-2026-12-02/). Consumer GPUs, with less
# compute, will add more: the figure is a floor.
SERVING_SECONDS_PER_SEQUENCE = 0.001

DEFAULT_RAM_BANDWIDTH_GBPS = 50.0  # dual-channel DDR4-3200 peak (51.2 GB/s): a conservative host
DEFAULT_CONTEXT_FILL = 0.5  # share of the context a sequence's KV cache holds on average
DEFAULT_TOKENS_PER_SECOND_PER_USER = 10.0  # a comfortable reading speed for one person


def gpu_bandwidth(name, fact=None):
    """``(GB/s, source)`` of a GPU: its ``memory_bandwidth_gbps`` fact (NVML or declared)
    when known, else the spec-sheet table by name, else ``(None, "unknown")``."""
    if fact:
        return float(fact), "facts"
    spec = lookup(name)
    if spec is not None:
        return spec.bandwidth_gbps, "table"
    return None, "unknown"


def _expert_bytes(spec, quant):
    """Bytes of one layer's expert tensors, per layer, as ``_catalog.weight_bytes`` counts them."""
    q = _catalog.normalize_quant(quant)
    vllm = _catalog.VLLM_QUANTS.get(q)
    per_layer = [0] * spec.n_layer
    for t in _catalog.tensors(spec):
        if t.count > 1 and t.layer is not None:
            if vllm is not None:
                n = int(t.n_elements * vllm["linear_bits"] / 8)
            else:
                n = type_nbytes(_catalog.gguf_tensor_type(spec, q, t), t.n_elements)
            per_layer[t.layer] += n
    return per_layer


def _kv_type(settings, which):
    value = settings.get(f"cache_type_{which}") or settings.get("kv_cache_type") or "f16"
    value = str(value).lower()
    return {"auto": "f16", "bf16": "f16", "fp8": "q8_0"}.get(value, value)


def read_bytes(inst, context_fill=DEFAULT_CONTEXT_FILL):
    """What one decode step of ``inst`` (a placement instance) reads: ``weights`` (bytes, once
    per step), ``kv_per_sequence`` (bytes, per sequence in the batch) and ``basis``: where
    the figures come from (the catalog's shapes; else the instance's ``breakdown``; else its
    whole memory, an upper bound). ``kind`` is ``embedding`` for models that generate nothing.
    """
    fill = max(1, round(int(inst["context"]) * float(context_fill)))
    try:
        spec = _catalog.get_model(inst["model"])
        parts = _catalog.weight_bytes(spec, inst["quantization"])
    except _catalog.CatalogError:
        spec = None
    if spec is not None:
        layers = list(parts["layers"])
        if spec.n_expert and spec.n_expert_used:
            idle = 1 - spec.n_expert_used / spec.n_expert
            experts = _expert_bytes(spec, inst["quantization"])
            layers = [b - int(e * idle) for b, e in zip(layers, experts, strict=True)]
        head = parts["output"] or (parts["token_embd"] if spec.tied_embeddings else 0)
        weights = sum(layers) + head + parts["other"]
        settings = inst.get("settings") or {}
        per_cell = sum(_estimator._kv_bytes_per_cell(spec, _kv_type(settings, w)) for w in "kv") / 2
        cells = sum(min(fill, spec.sliding_window) if spec.is_swa_layer(il) else fill
                    for il in range(spec.n_layer))
        return {"weights": int(weights), "kv_per_sequence": int(per_cell * cells),
                "basis": "catalog", "kind": spec.kind}
    breakdown = inst.get("breakdown") or {}
    parallel = max(1, int(inst.get("parallel") or 1))
    kv = breakdown.get("kv", breakdown.get("kv_cache"))
    kv_seq = int(kv * context_fill / parallel) if kv else 0
    if breakdown.get("weights"):
        return {"weights": int(breakdown["weights"]), "kv_per_sequence": kv_seq,
                "basis": "breakdown", "kind": "llm"}
    memory = sum(inst.get("bytes_per_gpu") or []) or int(inst.get("ram_bytes") or 0)
    return {"weights": memory, "kv_per_sequence": 0, "basis": "memory (upper bound)",
            "kind": "llm"}


def effective_bandwidth(inst, bandwidths):
    """``(GB/s, how)``: the bandwidth one decode step of ``inst`` sees over its GPUs
    (``bandwidths``: GB/s per GPU of ``inst["gpus"]``, in order), see the module docstring."""
    if any(b is None for b in bandwidths) or not bandwidths:
        return None, "unknown"
    if len(bandwidths) == 1:
        return float(bandwidths[0]), "one GPU"
    if inst.get("engine") == "vllm":
        return len(bandwidths) * min(bandwidths), f"tensor parallel x{len(bandwidths)}"
    shares = (inst.get("settings") or {}).get("tensor_split") or inst.get("bytes_per_gpu")
    if not shares or len(shares) != len(bandwidths) or not sum(shares):
        shares = [1.0] * len(bandwidths)
    total = float(sum(shares))
    return 1.0 / sum(s / total / b for s, b in zip(shares, bandwidths, strict=True)), (
        f"layer split over {len(bandwidths)} GPUs")


def decode(inst, bandwidth_gbps, efficiency=DECODE_EFFICIENCY, context_fill=DEFAULT_CONTEXT_FILL,
           tokens_per_second_per_user=DEFAULT_TOKENS_PER_SECOND_PER_USER,
           serving_seconds=SERVING_SECONDS_PER_SEQUENCE):
    """Predicted decode figures of ``inst`` at ``bandwidth_gbps`` (its effective bandwidth):
    ``single_stream`` (tokens/s of one sequence alone), ``per_sequence_full`` and
    ``aggregate_full`` (all ``parallel`` slots busy), ``users`` (concurrent sequences that
    each still get ``tokens_per_second_per_user``, at most ``parallel``; 0 when even one
    sequence is slower), ``bytes_per_token`` (one sequence alone). None figures when the
    bandwidth is unknown or the model generates nothing (embedding models)."""
    read = read_bytes(inst, context_fill)
    parallel = max(1, int(inst.get("parallel") or 1))
    out = dict(read, parallel=parallel, bandwidth_gbps=bandwidth_gbps, efficiency=efficiency,
               serving_seconds=serving_seconds,
               bytes_per_token=read["weights"] + read["kv_per_sequence"], single_stream=None,
               per_sequence_full=None, aggregate_full=None, users=None)
    if read["kind"] != "llm" or not bandwidth_gbps:
        return out
    rate = efficiency * float(bandwidth_gbps) * 1e9  # bytes/s

    def per_sequence(batch):
        step = (read["weights"] + batch * read["kv_per_sequence"]) / rate
        return 1 / (step + (batch - 1) * serving_seconds)

    users = 0
    while users < parallel and per_sequence(users + 1) >= tokens_per_second_per_user:
        users += 1
    out.update(single_stream=per_sequence(1), per_sequence_full=per_sequence(parallel),
               aggregate_full=parallel * per_sequence(parallel), users=users)
    return out
