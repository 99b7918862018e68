from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils._catalog import get_model, weight_bytes
from ansible_collections.teamllm.stack.plugins.module_utils._estimator import (
    ENGINES,
    Estimate,
    EstimateError,
    estimate,
    gpustack_claim,
    valid_tp_sizes,
)

MIB = 1024**2
GIB = 1024**3
H100 = 85520809984
RESULTS = Path(__file__).resolve().parents[4] / "tests" / "gpu" / "results"


def _compare_estimates():
    """tests/gpu/compare_estimates.py: the one mapping from a measured case to its estimate."""
    spec = importlib.util.spec_from_file_location("compare_estimates", RESULTS.parent / "compare_estimates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


case_estimate = _compare_estimates().case_estimate


def measured_cases():
    cases = []
    for path in sorted(RESULTS.glob("**/measurements.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if rec.get("loaded"):
                cases.append(pytest.param(rec, id=f"{path.parent.name}/{rec['label']}"))
    return cases


@pytest.mark.parametrize("rec", measured_cases())
def test_h100_measurements_are_covered_within_10_percent(rec):
    """Real llama-server runs on an H100 (tests/gpu/results): never below, at most 10% above."""
    est = case_estimate(rec["label"], rec["ctx"], rec["parallel"], rec.get("extra", []))
    measured = rec["after_request_used"] - rec["baseline_used"]
    assert measured <= est.per_gpu_bytes[0] <= measured * 1.10
    assert est.host_bytes >= rec["host_rss"]


def test_measured_cases_are_present():
    assert len(measured_cases()) >= 10


def test_shape_of_an_estimate():
    est = estimate("llama-3.1-8b", "llama_cpp", "Q4_K_M", 8192)
    assert isinstance(est, Estimate)
    assert (est.engine, est.model, est.quantization, est.context, est.parallel, est.tp) == (
        "llama_cpp",
        "llama-3.1-8b",
        "Q4_K_M",
        8192,
        1,
        1,
    )
    assert len(est.per_gpu_bytes) == 1
    assert est.gpu_memory_utilization is None
    assert est.breakdown["weights"] + est.breakdown["host_weights"] == est.breakdown["weights_total"]
    json.dumps(est.as_dict())


def test_kv_cache_is_exact():
    # Llama 3.1 8B, f16: 32 layers x 8 KV heads x 128 x (2 + 2) bytes = 128 KiB per token
    a = estimate("llama-3.1-8b", "llama_cpp", "Q8_0", 4096)
    b = estimate("llama-3.1-8b", "llama_cpp", "Q8_0", 8192)
    assert a.breakdown["kv_cache"] == 4096 * 128 * 1024
    assert b.breakdown["kv_cache"] == 2 * a.breakdown["kv_cache"]
    c = estimate("llama-3.1-8b", "llama_cpp", "Q8_0", 4096, parallel=4)
    assert c.breakdown["kv_cache"] == 4 * a.breakdown["kv_cache"]
    q8 = estimate("llama-3.1-8b", "llama_cpp", "Q8_0", 4096, kv_cache_type="q8_0")
    assert q8.breakdown["kv_cache"] == a.breakdown["kv_cache"] * 34 // 64


@pytest.mark.parametrize(("context", "padded"), [(1, 256), (256, 256), (1000, 1024), (4097, 4352)])
def test_context_padding(context, padded):
    assert estimate("qwen2.5-0.5b", "ollama", "Q8_0", context).breakdown["n_ctx_seq"] == padded


def test_flash_attention_shrinks_compute():
    off = estimate("llama-3.1-8b", "llama_cpp", "Q8_0", 32768, flash_attention=False)
    on = estimate("llama-3.1-8b", "llama_cpp", "Q8_0", 32768, flash_attention=True)
    assert on.breakdown["compute_attention"] * 8 < off.breakdown["compute_attention"]
    assert on.breakdown["kv_cache"] == off.breakdown["kv_cache"]


def test_token_embedding_stays_on_the_host():
    est = estimate("llama-3.1-8b", "llama_cpp", "Q8_0", 4096)
    embd = 128256 * 4096 * 34 // 32
    assert est.breakdown["host_weights"] == embd
    assert est.host_bytes > embd


def test_tied_output_head_is_a_gpu_copy():
    est = estimate("qwen2.5-0.5b", "llama_cpp", "F16", 4096)
    embd = 151936 * 896 * 2
    assert est.breakdown["host_weights"] == embd
    assert est.breakdown["weights"] + est.breakdown["host_weights"] == est.breakdown["weights_total"] + embd


def test_partial_offload_and_cpu_only():
    full = estimate("llama-3.1-8b", "llama_cpp", "Q8_0", 8192)
    part = estimate("llama-3.1-8b", "llama_cpp", "Q8_0", 8192, n_gpu_layers=16)
    cpu = estimate("llama-3.1-8b", "llama_cpp", "Q8_0", 8192, n_gpu_layers=0)
    assert part.per_gpu_bytes[0] < full.per_gpu_bytes[0]
    assert part.host_bytes > full.host_bytes
    assert part.breakdown["kv_cache"] == full.breakdown["kv_cache"] // 2
    assert cpu.per_gpu_bytes == (0,)
    assert cpu.notes and "CPU" in cpu.notes[0]


def test_split_over_two_gpus_puts_output_on_the_last():
    one = estimate("llama-3.1-70b", "llama_cpp", "Q4_K_M", 8192)
    two = estimate("llama-3.1-70b", "llama_cpp", "Q4_K_M", 8192, tp=2)
    assert len(two.per_gpu_bytes) == 2
    assert sum(two.breakdown["weights_per_gpu"]) == one.breakdown["weights"]
    w0, w1 = two.breakdown["weights_per_gpu"]
    assert w1 > w0  # same layer count, plus the output head
    uneven = estimate("llama-3.1-70b", "llama_cpp", "Q4_K_M", 8192, tp=2, tensor_split=[3, 1])
    assert uneven.breakdown["weights_per_gpu"][0] > 2 * uneven.breakdown["weights_per_gpu"][1]


def test_sliding_window_layers_keep_only_the_window():
    gemma = estimate("gemma-2-9b", "llama_cpp", "Q4_K_M", 32768)
    full = estimate("gemma-2-9b", "llama_cpp", "Q4_K_M", 32768, overrides={"sliding_window": 0})
    assert gemma.breakdown["kv_cache"] < 0.6 * full.breakdown["kv_cache"]


def test_embedding_models_have_no_kv_and_batch_the_whole_input():
    est = estimate("bge-m3", "llama_cpp", "F16", 8192, flash_attention=False)
    assert est.breakdown["kv_cache"] == 0
    assert est.breakdown["compute_attention"] == 8192 * 8192 * 17 * 4


def test_gguf_file_gives_the_same_estimate_as_the_catalog(tmp_path):
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    spec = get_model("teamllm-tiny", overrides={"n_vocab": 256, "n_layer": 3})
    path = tmp_path / "t.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(spec.n_ctx_train)
    w.add_embedding_length(spec.n_embd)
    w.add_block_count(spec.n_layer)
    w.add_feed_forward_length(spec.n_ff)
    w.add_head_count(spec.n_head)
    w.add_head_count_kv(spec.n_head_kv)
    w.add_vocab_size(spec.n_vocab)
    e, q, kv, ff = spec.n_embd, spec.n_head * spec.head_dim, spec.n_head_kv * spec.head_dim, spec.n_ff
    z = np.zeros

    w.add_tensor("token_embd.weight", z((spec.n_vocab, e), np.float16))
    for i in range(spec.n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", z(e, np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", z((q, e), np.float16))
        w.add_tensor(f"blk.{i}.attn_k.weight", z((kv, e), np.float16))
        w.add_tensor(f"blk.{i}.attn_v.weight", z((kv, e), np.float16))
        w.add_tensor(f"blk.{i}.attn_output.weight", z((e, q), np.float16))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", z(e, np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", z((ff, e), np.float16))
        w.add_tensor(f"blk.{i}.ffn_up.weight", z((ff, e), np.float16))
        w.add_tensor(f"blk.{i}.ffn_down.weight", z((e, ff), np.float16))
    w.add_tensor("output_norm.weight", z(e, np.float32))
    w.add_tensor("output.weight", z((spec.n_vocab, e), np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    from_file = estimate(str(path), "llama_cpp", None, 2048)
    from_catalog = estimate(spec, "llama_cpp", "F16", 2048)
    assert from_file.per_gpu_bytes == from_catalog.per_gpu_bytes
    assert from_file.host_bytes == from_catalog.host_bytes


@pytest.mark.parametrize(
    ("model", "max_gpus", "sizes"),
    [
        ("llama-3.1-8b", 8, [1, 2, 4, 8]),
        ("llama-3.1-70b", 6, [1, 2, 4]),  # 3 and 6 do not divide 64 heads
        ("qwen2.5-0.5b", 8, [1, 2]),
        ("qwen2.5-7b", 8, [1, 2, 4]),
        ("qwen2.5-14b", 8, [1, 2, 4, 8]),
        ("mistral-7b", 3, [1, 2]),
    ],
)
def test_valid_tp_sizes(model, max_gpus, sizes):
    assert valid_tp_sizes(model, max_gpus) == sizes


def test_layer_split_engines_take_any_gpu_count():
    assert valid_tp_sizes("llama-3.1-70b", 6, engine="llama_cpp") == [1, 2, 3, 4, 5, 6]
    assert valid_tp_sizes("teamllm-tiny", 8, engine="ollama") == [1, 2]  # two layers


@pytest.mark.parametrize(
    ("model", "gib"),
    [("qwen2.5-0.5b", 3.1), ("qwen2.5-3b", 8.9), ("qwen2.5-7b", 19.0), ("qwen2.5-72b", 164.5)],
)
def test_gpustack_published_rows(model, gib):
    # PLACEMENT.md: bf16 vLLM claims by GPUStack's rule (weights x 1.2 + 2 GiB)
    assert gpustack_claim(model) / GIB == pytest.approx(gib, abs=0.06)


def test_vllm_utilization_and_parts():
    est = estimate("qwen2.5-7b", "vllm", "BF16", 8192, parallel=4, gpu_total_bytes=H100)
    need = est.per_gpu_bytes[0]
    assert est.gpu_memory_utilization == pytest.approx(-(-need * 100 // H100) / 100)
    assert est.gpu_memory_utilization <= 0.95
    assert est.breakdown["weights_per_gpu"] == weight_bytes(get_model("qwen2.5-7b"), "BF16")["total"]
    # KV: 28 layers x 4 heads x 128 x 2 x 2 bytes = 56 KiB per token, 8192 x 4 tokens
    assert est.breakdown["kv_cache_per_gpu"] == 28 * 4 * 128 * 2 * 2 * 8192 * 4
    eager = estimate("qwen2.5-7b", "vllm", "BF16", 8192, parallel=4, enforce_eager=True)
    assert eager.per_gpu_bytes[0] < need


def test_vllm_tp_halves_weights():
    one = estimate("qwen2.5-32b", "vllm", "AWQ", 8192)
    two = estimate("qwen2.5-32b", "vllm", "AWQ", 8192, tp=2)
    assert two.breakdown["weights_per_gpu"] == pytest.approx(one.breakdown["weights_per_gpu"] / 2, abs=1)
    assert len(two.per_gpu_bytes) == 2


def test_vllm_too_big_fails_clearly():
    with pytest.raises(EstimateError, match=r"qwen2.5-72b.*gpu_memory_utilization.*raise tp"):
        estimate("qwen2.5-72b", "vllm", "BF16", 32768, gpu_total_bytes=H100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"model": "llama-3.1-70b", "engine": "vllm", "quantization": "BF16", "context": 4096, "tp": 3},
            "use one of",
        ),
        (
            {"model": "llama-3.1-8b", "engine": "vllm", "quantization": "Q4_K_M", "context": 4096},
            "not a vLLM",
        ),
        (
            {"model": "llama-3.1-8b", "engine": "llama_cpp", "quantization": "AWQ", "context": 4096},
            "not a GGUF",
        ),
        ({"model": "llama-3.1-8b", "engine": "tgi", "quantization": "Q8_0", "context": 4096}, "engine"),
        (
            {"model": "gpt-x", "engine": "ollama", "quantization": "Q8_0", "context": 4096},
            "not in the catalog",
        ),
        ({"model": "yi-34b", "engine": "vllm", "quantization": "BF16", "context": 8192}, "max_model_len"),
        ({"model": "llama-3.1-8b", "engine": "ollama", "quantization": "Q8_0", "context": 0}, "at least 1"),
        (
            {"model": "/nonexistent/m.gguf", "engine": "ollama", "quantization": None, "context": 512},
            "does not exist",
        ),
        (
            {
                "model": "llama-3.1-8b",
                "engine": "ollama",
                "quantization": "Q8_0",
                "context": 512,
                "n_threads": 4,
            },
            "unknown options",
        ),
    ],
)
def test_errors_name_the_model_and_the_fix(kwargs, message):
    with pytest.raises(EstimateError, match=message):
        estimate(**kwargs)


def test_engines():
    assert set(ENGINES) == {"llama_cpp", "ollama", "vllm", "localai"}
    a = estimate("mistral-7b", "ollama", "Q4_K_M", 4096)
    b = estimate("mistral-7b", "localai", "Q4_K_M", 4096)
    assert a.per_gpu_bytes == b.per_gpu_bytes
