# Copyright (c) teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
"""Memory estimates for serving a model: per GPU and on the host, by engine.

Private to the collection; standard library and the ggml type sizes of the ``gguf`` package
(through ``_gguf_reader``). The placement solver codes against
``estimate``, ``Estimate``, ``valid_tp_sizes`` and ``ENGINES``: keep them stable.

llama.cpp family (llama_cpp, ollama, localai) -- gguf-parser-go's approach, calibrated on an
H100 (docs/estimator-accuracy.md)::

    per GPU = CUDA runtime + weights of its layers (+ output head on the last GPU)
              + KV cache of its layers + compute buffer
    host    = process base + token embedding (+ layers not offloaded) + output buffer

vLLM::

    per GPU = weights/tp + activation peak + CUDA graphs + runtime + KV(context x parallel)
    gpu_memory_utilization = needed / total of ONE GPU, rounded up to 0.01

Sizes are bytes. Errors are ``EstimateError`` (a ``ValueError``) naming the model and the
setting to change.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from ansible_collections.teamllm.stack.plugins.module_utils import _engines
from ansible_collections.teamllm.stack.plugins.module_utils._catalog import (
    GGUF_QUANTS,
    VLLM_QUANTS,
    CatalogError,
    ModelSpec,
    get_model,
    normalize_quant,
    weight_bytes,
)
from ansible_collections.teamllm.stack.plugins.module_utils._gguf_reader import (
    GGUFError,
    bytes_by_part,
    read_gguf,
    shape_from_metadata,
    type_nbytes,
)

# The engines it estimates: the engine registry's; those serving GGUF files share the GGUF math.
ENGINES = _engines.NAMES
GGUF_ENGINES = _engines.names(gguf=True)

MIB = 1024 * 1024
GIB = 1024 * MIB

# Calibrated on an H100 80GB (driver 580, CUDA 13), llama.cpp b-version vendored by
# llama-cpp-python 0.3.36: see docs/estimator-accuracy.md for the measurements behind them.
LLAMA_CPP_DEFAULTS = {
    "n_batch": 2048,
    "n_ubatch": 512,
    "kv_padding": 256,  # llama.cpp pads n_ctx (and n_ctx per sequence) to 256
    "cuda_overhead_bytes": 736 * MIB,  # CUDA context, cuBLAS, kernels loaded on first use
    "activation_factor": 16,  # x n_embd x n_ubatch x 4 bytes: activations and the CUDA pool
    "host_base_bytes": 720 * MIB,  # llama-server process, tokenizer, logits, CUDA host buffers
    "safety_margin": 0.02,  # on top of everything, per GPU
}
VLLM_DEFAULTS = {
    "max_num_batched_tokens": 8192,
    "max_num_seqs": 256,
    "block_size": 16,
    "cuda_graph_bytes": 768 * MIB,  # 0 with enforce_eager
    "runtime_bytes": 1 * GIB,  # CUDA context, NCCL, allocator fragmentation (non-torch memory)
    "nccl_bytes": 512 * MIB,  # extra per GPU when tp > 1
    "max_utilization": 0.95,
    "safety_margin": 0.05,
}
KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl", "fp8", "auto")


class EstimateError(ValueError):
    """The request cannot be estimated or cannot fit; the message says what to change."""


@dataclass(frozen=True)
class Estimate:
    engine: str
    model: str
    quantization: str
    context: int
    parallel: int
    tp: int
    per_gpu_bytes: tuple[int, ...]  # length tp (or n GPUs split); what each GPU needs
    host_bytes: int  # RAM on the host (non-offloaded layers, token embd, etc.)
    breakdown: dict  # weights/kv/compute/overhead/... in bytes
    gpu_memory_utilization: float | None  # vLLM only: fraction of ONE GPU's total to pass
    notes: tuple[str, ...] = field(default=())

    @property
    def total_gpu_bytes(self) -> int:
        return sum(self.per_gpu_bytes)

    def as_dict(self) -> dict:
        return {
            "engine": self.engine,
            "model": self.model,
            "quantization": self.quantization,
            "context": self.context,
            "parallel": self.parallel,
            "tp": self.tp,
            "per_gpu_bytes": list(self.per_gpu_bytes),
            "host_bytes": self.host_bytes,
            "breakdown": dict(self.breakdown),
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "notes": list(self.notes),
        }


def _pad(n: int, to: int) -> int:
    return -(-n // to) * to


def _resolve(model, quantization: str | None, overrides: dict | None):
    """(spec, weights-by-part, quantization label, source) for a name, a ModelSpec or a GGUF path."""
    if isinstance(model, str) and (model.endswith(".gguf") or os.path.sep in model):
        if not os.path.isfile(model):
            raise EstimateError(f"model file {model!r} does not exist; give a catalog name or a GGUF path")
        try:
            info = read_gguf(model)
            shape = shape_from_metadata(info)
        except GGUFError as exc:
            raise EstimateError(f"model file {model!r}: {exc}") from exc
        shape.update(overrides or {})
        spec = ModelSpec(**shape)
        parts = bytes_by_part(info)
        if parts["tied"]:
            parts["output"] = 0
        ftype = info.metadata.get("general.file_type")
        label = quantization or (f"gguf-ftype-{ftype}" if ftype is not None else "gguf")
        return spec, parts, label, "file"
    try:
        spec = get_model(model, overrides)
    except CatalogError as exc:
        raise EstimateError(str(exc)) from exc
    return spec, None, quantization, "catalog"


def valid_tp_sizes(model, max_gpus: int, engine: str = "vllm") -> list[int]:
    """Tensor-parallel sizes up to ``max_gpus`` that divide the attention heads, the KV heads
    (for GQA) and the vocabulary (vLLM's rule; a 3- or 6-GPU split of a 32-head model is not).

    With a llama.cpp-family ``engine`` the split is by layers, so any count up to the number
    of layers works.
    """
    spec = model if isinstance(model, ModelSpec) else _resolve(model, None, None)[0]
    if engine in GGUF_ENGINES:
        return list(range(1, min(max(1, int(max_gpus)), spec.n_layer) + 1))
    sizes = []
    for tp in range(1, max(1, int(max_gpus)) + 1):
        if spec.n_head % tp or spec.n_vocab % tp:
            continue
        if spec.n_head_kv < spec.n_head and spec.n_head_kv % tp:
            continue
        sizes.append(tp)
    return sizes


def estimate(
    model,
    engine,
    quantization,
    context,
    parallel=1,
    tp=1,
    gpu_total_bytes=None,
    flash_attention=True,
    kv_cache_type="f16",
    n_gpu_layers=None,
    **opts,
) -> Estimate:
    """Memory one instance of ``model`` needs on ``engine``.

    ``model``: catalog name/alias, a ``ModelSpec``, or a GGUF file path (its exact tensor
    bytes are used). ``context``: tokens per sequence; ``parallel``: sequences served at once
    (llama.cpp ``-np``, Ollama ``NUM_PARALLEL``, vLLM concurrent sequences at full context);
    the KV cache holds ``context x parallel`` tokens. ``tp``: GPUs the model is split over
    (llama.cpp: layer split; vLLM: tensor parallel). ``gpu_total_bytes``: total memory of ONE
    GPU (vLLM: needed for ``gpu_memory_utilization``). ``n_gpu_layers``: llama.cpp partial
    offload (None: all, incl. the output layer). Options: ``overrides`` (dict of ModelSpec
    fields), ``n_batch``, ``n_ubatch``, ``tensor_split`` (fractions per GPU), the calibration
    constants in ``LLAMA_CPP_DEFAULTS``/``VLLM_DEFAULTS``, ``enforce_eager`` (vLLM).
    """
    if engine not in ENGINES:
        raise EstimateError(f"engine {engine!r} unknown; use one of {', '.join(ENGINES)}")
    context, parallel, tp = int(context), int(parallel), int(tp)
    if context < 1 or parallel < 1 or tp < 1:
        raise EstimateError(f"{model}: context, parallel and tp must be at least 1")
    kv_cache_type = str(kv_cache_type).lower()
    if kv_cache_type not in KV_TYPES:
        raise EstimateError(
            f"{model}: kv_cache_type {kv_cache_type!r} unknown; use one of {', '.join(KV_TYPES)}"
        )
    spec, file_parts, label, source = _resolve(model, quantization, opts.pop("overrides", None))
    if engine == "vllm":
        if source == "file":
            raise EstimateError(
                f"model {spec.name}: vLLM serves safetensors checkpoints here, not GGUF; "
                "give the catalog name and a vLLM quantization"
            )
        return _estimate_vllm(spec, label, context, parallel, tp, gpu_total_bytes, kv_cache_type, opts)
    return _estimate_gguf(
        spec,
        engine,
        label,
        file_parts,
        context,
        parallel,
        tp,
        flash_attention,
        kv_cache_type,
        n_gpu_layers,
        opts,
    )


# ---------------------------------------------------------------------------- llama.cpp family


def _kv_bytes_per_cell(spec: ModelSpec, kv_cache_type: str) -> int:
    """Bytes of one token's K and V in one layer."""
    t = "F16" if kv_cache_type in ("auto", "fp8") else kv_cache_type.upper()
    per_row = spec.n_head_kv * spec.head_dim
    return type_nbytes(t, per_row) * 2


def _estimate_gguf(spec, engine, quant, file_parts, context, parallel, n_gpus, fa, kv_type, ngl, opts):
    o = dict(LLAMA_CPP_DEFAULTS)
    unknown = set(opts) - set(o) - {"tensor_split"}
    if unknown:
        raise EstimateError(f"model {spec.name}: unknown options {sorted(unknown)} for {engine}")
    o.update(opts)
    notes: list[str] = []
    if file_parts is None:
        q = normalize_quant(quant or "")
        if q not in GGUF_QUANTS:
            raise EstimateError(
                f"model {spec.name}: quantization {quant!r} is not a GGUF type for {engine}; "
                f"use one of {', '.join(GGUF_QUANTS)}"
            )
        parts = weight_bytes(spec, q)
        quant = q
    else:
        parts = file_parts
    if spec.n_ctx_train and context > spec.n_ctx_train:
        notes.append(f"context {context} exceeds the model's trained context {spec.n_ctx_train}")

    n_layer = spec.n_layer
    full = n_layer + 1
    ngl = full if ngl is None or int(ngl) < 0 else min(int(ngl), full)
    n_off = min(ngl, n_layer)  # repeating layers on GPUs: the last n_off
    output_on_gpu = ngl > n_layer
    first_gpu_layer = n_layer - n_off

    split = o.get("tensor_split") or [1.0] * n_gpus
    if len(split) != n_gpus or any(float(s) < 0 for s in split) or sum(split) <= 0:
        raise EstimateError(f"model {spec.name}: tensor_split needs {n_gpus} non-negative fractions")
    total = float(sum(split))
    cum = []
    acc = 0.0
    for s in split:
        acc += float(s) / total
        cum.append(acc)

    def gpu_of(il: int) -> int:
        k = il - first_gpu_layer
        pos = k / n_off if n_off else 0.0
        for g, c in enumerate(cum):
            if pos < c - 1e-12:
                return g
        return n_gpus - 1

    # KV cache cells: per sequence, padded; sliding-window layers keep window + ubatch
    n_ubatch = int(o["n_ubatch"])
    encoder = spec.kind == "embedding"
    if encoder:
        n_ubatch = max(n_ubatch, context)  # an encoder takes the whole input in one micro-batch
    n_ctx_seq = _pad(context, int(o["kv_padding"]))
    per_cell = _kv_bytes_per_cell(spec, kv_type)

    weights = [0] * n_gpus
    kv = [0] * n_gpus
    host_weights = parts["token_embd"]
    host_kv = 0
    layer_bytes = parts["layers"]
    for il in range(n_layer):
        if encoder:
            cells = 0
        elif spec.is_swa_layer(il):
            cells = min(n_ctx_seq, _pad(spec.sliding_window + n_ubatch, int(o["kv_padding"]))) * parallel
        else:
            cells = n_ctx_seq * parallel
        if il >= first_gpu_layer and n_off:
            g = gpu_of(il)
            weights[g] += layer_bytes[il]
            kv[g] += cells * per_cell
        else:
            host_weights += layer_bytes[il]
            host_kv += cells * per_cell
    # output head (a copy of token_embd when tied) and output norm
    head = parts["output"] or (parts["token_embd"] if _tied(spec, parts) else 0)
    if output_on_gpu:
        weights[-1] += head + parts.get("other", 0)
    else:
        host_weights += head + parts.get("other", 0)

    # compute buffer (per GPU holding layers): attention scratch + activations
    n_kv = n_ctx_seq if not encoder else _pad(context, 32)
    if fa:
        attn = n_kv * n_ubatch * 2 + n_ubatch * spec.n_head * spec.head_dim * 4 * 2
    else:
        attn = n_kv * n_ubatch * (spec.n_head + 1) * 4
    act = int(o["activation_factor"]) * spec.n_embd * n_ubatch * 4
    compute = attn + act
    # partial offload: ggml's scheduler runs large-batch matmuls of CPU-held layers on the GPU,
    # copying that layer's weights into the GPU compute buffer (measured: -ngl 20 of 32)
    host_layers = [layer_bytes[il] for il in range(first_gpu_layer)]
    staging = max(host_layers) if host_layers and n_off and n_ubatch >= 32 else 0
    used = [weights[g] > 0 or kv[g] > 0 for g in range(n_gpus)]
    overhead = int(o["cuda_overhead_bytes"])
    per_gpu = []
    for g in range(n_gpus):
        if not used[g]:
            per_gpu.append(0)
            continue
        need = weights[g] + kv[g] + compute + overhead + (staging if g == 0 else 0)
        per_gpu.append(int(math.ceil(need * (1 + float(o["safety_margin"])))))
    if not any(used):
        notes.append("no layer offloaded: the model runs on the CPU")

    host = int(o["host_base_bytes"]) + host_weights + host_kv
    if not all(used):
        host += compute  # the CPU computes the layers it holds
    breakdown = {
        "weights": sum(weights),
        "weights_per_gpu": list(weights),
        "kv_cache": sum(kv),
        "kv_cache_per_gpu": list(kv),
        "compute": compute * sum(used),
        "compute_attention": attn,
        "compute_activations": act,
        "overhead": overhead * sum(used),
        "host_weights": host_weights,
        "host_kv_cache": host_kv,
        "partial_offload_staging": staging,
        "n_ctx_seq": n_ctx_seq,
        "kv_cells": n_ctx_seq * parallel,
        "n_gpu_layers": ngl,
        "weights_total": parts["total"],
    }
    return Estimate(
        engine=engine,
        model=spec.name,
        quantization=str(quant),
        context=context,
        parallel=parallel,
        tp=n_gpus,
        per_gpu_bytes=tuple(per_gpu),
        host_bytes=int(host),
        breakdown=breakdown,
        gpu_memory_utilization=None,
        notes=tuple(notes),
    )


def _tied(spec: ModelSpec, parts: dict) -> bool:
    return bool(parts.get("tied", spec.tied_embeddings)) and spec.kind == "llm"


# ---------------------------------------------------------------------------- vLLM


def _estimate_vllm(spec, quant, context, parallel, tp, gpu_total, kv_type, opts):
    o = dict(VLLM_DEFAULTS)
    o["enforce_eager"] = False
    unknown = set(opts) - set(o)
    if unknown:
        raise EstimateError(f"model {spec.name}: unknown options {sorted(unknown)} for vllm")
    o.update(opts)
    q = normalize_quant(quant or "BF16")
    if q not in VLLM_QUANTS:
        raise EstimateError(
            f"model {spec.name}: quantization {quant!r} is not a vLLM format; use one of {', '.join(VLLM_QUANTS)}"
        )
    if tp not in valid_tp_sizes(spec, tp):
        raise EstimateError(
            f"model {spec.name}: tensor-parallel size {tp} does not divide its {spec.n_head} attention "
            f"heads, {spec.n_head_kv} KV heads and {spec.n_vocab} vocabulary entries; "
            f"use one of {valid_tp_sizes(spec, max(tp, 8))}"
        )
    if spec.n_ctx_train and context > spec.n_ctx_train:
        raise EstimateError(
            f"model {spec.name}: context {context} exceeds max_model_len {spec.n_ctx_train}; lower the context"
        )
    notes: list[str] = []
    weights = int(math.ceil(weight_bytes(spec, q)["total"] / tp))
    # activation peak of the profiling run (max_num_batched_tokens tokens in one step)
    tokens = (
        min(int(o["max_num_batched_tokens"]), max(context, 1) * parallel) if spec.kind == "llm" else context
    )
    tokens = max(tokens, min(int(o["max_num_batched_tokens"]), 2048))
    width = 2 * spec.n_ff // tp + 4 * spec.n_embd + (spec.n_head + 2 * spec.n_head_kv) * spec.head_dim // tp
    activation = tokens * width * 2 + int(o["max_num_seqs"]) * spec.n_vocab * 4 // tp
    graphs = 0 if o["enforce_eager"] else int(o["cuda_graph_bytes"])
    runtime = int(o["runtime_bytes"]) + (int(o["nccl_bytes"]) if tp > 1 else 0)
    kv_heads = max(1, spec.n_head_kv // tp)
    dtype = 1 if kv_type in ("fp8", "q8_0") else 2
    if kv_type not in ("auto", "f16", "bf16", "fp8", "q8_0"):
        raise EstimateError(
            f"model {spec.name}: vLLM kv_cache_type is auto, bf16, f16 or fp8, not {kv_type!r}"
        )
    kv = 0
    if spec.kind == "llm":
        tokens_kv = _pad(context, int(o["block_size"])) * parallel
        layers_full = sum(1 for il in range(spec.n_layer) if not spec.is_swa_layer(il))
        layers_swa = spec.n_layer - layers_full
        swa_tokens = min(tokens_kv, _pad(spec.sliding_window or 0, int(o["block_size"])) * parallel)
        per_tok = kv_heads * spec.head_dim * 2 * dtype
        kv = per_tok * (tokens_kv * layers_full + swa_tokens * layers_swa)
    need = weights + activation + graphs + runtime + kv
    need = int(math.ceil(need * (1 + float(o["safety_margin"]))))
    util = None
    if gpu_total:
        util = math.ceil(need / float(gpu_total) * 100 - 1e-9) / 100.0
        if util > float(o["max_utilization"]):
            raise EstimateError(
                f"model {spec.name} ({q}, context {context} x {parallel}) needs {need / GIB:.1f} GiB per GPU "
                f"with tp={tp}: gpu_memory_utilization {util:.2f} > {o['max_utilization']}; "
                f"raise tp (valid: {valid_tp_sizes(spec, 8)}), lower context/parallel or pick a smaller quantization"
            )
    breakdown = {
        "weights": weights * tp,
        "weights_per_gpu": weights,
        "activation": activation,
        "cuda_graphs": graphs,
        "overhead": runtime,
        "kv_cache": kv * tp,
        "kv_cache_per_gpu": kv,
    }
    host = 2 * GIB + weights  # loader staging; vLLM streams safetensors shard by shard
    return Estimate(
        engine="vllm",
        model=spec.name,
        quantization=q,
        context=context,
        parallel=parallel,
        tp=tp,
        per_gpu_bytes=tuple([need] * tp),
        host_bytes=int(host),
        breakdown=breakdown,
        gpu_memory_utilization=util,
        notes=tuple(notes),
    )


def gpustack_claim(model, quantization="BF16") -> int:
    """GPUStack's rule of thumb for vLLM (weights x 1.2 + 2 GiB), for comparison only."""
    spec = get_model(model)
    return int(weight_bytes(spec, quantization)["total"] * 1.2 + 2 * GIB)
