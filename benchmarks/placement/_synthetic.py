"""A synthetic memory estimator and cluster generator for the placement benchmarks.

Placement quality and speed do not depend on how accurate the estimator is, only on the
shape of the numbers, so the benchmarks use this stand-in, returning the real ``Estimate``, with the interface
of ``plugins/module_utils/_estimator.py`` (``estimate``, ``valid_tp_sizes``, ``ENGINES``).
Weights follow the published GGUF sizes (Llama 3.1 8B: Q4_K_M 4.6 GB, Q8_0 8.5 GB, F16 16 GB)
scaled by parameter count; vLLM follows GPUStack's ``weights x 1.2 + 2 GiB``.
"""

from __future__ import annotations

import random

from ansible_collections.teamllm.stack.plugins.module_utils._estimator import Estimate, EstimateError

GIB = 1024**3
ENGINES = ("llama_cpp", "ollama", "vllm", "localai")
BYTES_PER_PARAM = {
    "F16": 2.0, "Q8_0": 1.06, "Q6_K": 0.82, "Q5_K_M": 0.71, "Q4_K_M": 0.57, "Q3_K_M": 0.46,
    "Q2_K": 0.37, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "awq": 0.55, "gptq": 0.55,
}
VLLM_QUANTS = {"bf16", "fp16", "fp8", "awq", "gptq"}
# name: (billions of parameters, attention heads, vocabulary, KV bytes per token at f16)
MODELS = {
    "qwen2.5-0.5b": (0.5, 14, 151936, 12288),
    "llama3.2-1b": (1.2, 32, 128256, 32768),
    "llama3.2-3b": (3.2, 24, 128256, 114688),
    "qwen2.5-7b": (7.6, 28, 152064, 57344),
    "llama3.1-8b": (8.0, 32, 128256, 131072),
    "gemma2-9b": (9.2, 16, 256000, 344064),
    "mistral-nemo-12b": (12.2, 32, 131072, 163840),
    "qwen2.5-14b": (14.8, 40, 152064, 196608),
    "mistral-small-24b": (23.6, 32, 131072, 163840),
    "qwen2.5-32b": (32.8, 40, 152064, 262144),
    "llama3.3-70b": (70.6, 64, 128256, 327680),
}




def valid_tp_sizes(model, max_gpus, engine="vllm"):
    _, heads, vocab, _ = MODELS[model]
    if engine != "vllm":
        return list(range(1, max_gpus + 1))
    return [n for n in range(1, max_gpus + 1) if heads % n == 0 and vocab % n == 0]


def estimate(model, engine, quantization, context, parallel=1, tp=1, gpu_total_bytes=None,
             flash_attention=True, kv_cache_type="f16", n_gpu_layers=None, **opts):
    if model not in MODELS:
        raise EstimateError(f"unknown model {model}")
    params, heads, vocab, kv_token = MODELS[model]
    quantization = {q.upper(): q for q in BYTES_PER_PARAM}.get(quantization.upper(), quantization)
    if quantization not in BYTES_PER_PARAM:
        raise EstimateError(f"unknown quantization {quantization}")
    if (engine == "vllm") != (quantization in VLLM_QUANTS):
        raise EstimateError(f"{engine} does not run {quantization}")
    if engine == "vllm" and tp not in valid_tp_sizes(model, tp):
        raise EstimateError(f"tp {tp} does not divide the heads")
    weights = params * 1e9 * BYTES_PER_PARAM[quantization]
    kv = kv_token * context * parallel
    if engine == "vllm":
        per_gpu = (weights * 1.2 + kv) / tp + 2 * GIB
    else:
        per_gpu = (weights + kv) / tp + 0.4 * GIB + (0.2 * GIB if tp > 1 else 0)
    if n_gpu_layers == 0:
        return Estimate(engine, model, quantization, context, parallel, 1, (0,),
                        int(weights + kv + 0.5 * GIB), {}, None)
    util = None
    if engine == "vllm" and gpu_total_bytes:
        util = round(per_gpu / gpu_total_bytes, 2)
    return Estimate(engine, model, quantization, context, parallel, tp,
                    tuple(int(per_gpu) for _ in range(tp)), int(0.5 * GIB), {}, util)


GPU_TYPES = (
    ("NVIDIA GeForce RTX 3060 Ti", 8),
    ("NVIDIA GeForce RTX 3060", 12),
    ("NVIDIA GeForce RTX 4060 Ti", 16),
    ("NVIDIA GeForce RTX 3090", 24),
    ("NVIDIA RTX A6000", 48),
)
GGUF_CHOICES = (("Q8_0", "Q4_K_M"), ("Q4_K_M",), ("Q6_K", "Q4_K_M", "Q3_K_M"), ("F16", "Q8_0"))
VLLM_CHOICES = (("bf16", "fp8"), ("awq",), ("fp8", "awq"))


def cluster(rng: random.Random, nodes: int, max_gpus: int = 4, cpu_nodes: int = 0):
    """``{host: {"gpus": teamllm_gpus}}``; mostly one GPU type per node, as bought."""
    hosts = {}
    for n in range(nodes):
        name = f"node{n:04d}"
        count = rng.choice([1, 1, 2, 2, 3, 4][: max(1, min(6, max_gpus + 2))])
        count = min(count, max_gpus)
        kind = rng.choice(GPU_TYPES)
        gpus = []
        for i in range(count):
            gpu_name, gib = kind if rng.random() < 0.8 else rng.choice(GPU_TYPES)
            gpus.append({"index": i, "uuid": f"GPU-{n:04d}-{i}", "name": gpu_name,
                         "memory_total": gib * GIB, "memory_free": gib * GIB,
                         "compute_capability": "8.6", "nvlink_peers": []})
        hosts[name] = {"gpus": {"gpus": gpus, "source": "declared", "reason": None}}
    for n in range(cpu_nodes):
        hosts[f"cpu{n:03d}"] = {"gpus": {"gpus": [], "source": "declared", "reason": None},
                                "cpu_inference": True, "ram_bytes": 64 * GIB}
    return hosts


LIGHT = ("qwen2.5-0.5b", "llama3.2-1b", "llama3.2-3b", "qwen2.5-7b", "llama3.1-8b", "gemma2-9b",
         "mistral-nemo-12b", "qwen2.5-14b")


def models(rng: random.Random, count: int, max_replicas: int = 2, light: bool = False):
    """A model set; ``light``: up to 14B and 8k context, the mix a team serves most."""
    names = sorted(LIGHT if light else MODELS)
    result = []
    for i in range(count):
        model = rng.choice(names[:-1] if rng.random() < 0.9 else names)
        engine = rng.choice(["any", "llama_cpp", "ollama", "vllm", "any"])
        if engine == "vllm":
            quants = rng.choice(VLLM_CHOICES)
        elif engine == "any":
            quants = rng.choice(GGUF_CHOICES) + rng.choice(VLLM_CHOICES)
        else:
            quants = rng.choice(GGUF_CHOICES)
        result.append({
            "name": model, "alias": f"{model}-{i}", "engine": engine,
            "quantizations": list(quants),
            "context": rng.choice([2048, 4096, 8192] if light else [2048, 4096, 8192, 16384]),
            "parallel": rng.choice([1, 1, 2, 4]), "replicas": rng.randint(1, max_replicas),
        })
    return result
