from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils._catalog import (
    MODELS,
    CatalogError,
    Tensor,
    bits_per_weight,
    get_model,
    gguf_tensor_type,
    list_models,
    param_count,
    tensors,
    weight_bytes,
)

GB = 1e9
GIB = 1024**3


# Parameter counts as the model cards state them (rounded as published).
@pytest.mark.parametrize(
    ("name", "published"),
    [
        ("llama-3.1-8b", 8.03e9),
        ("llama-3.1-70b", 70.6e9),
        ("mistral-7b", 7.25e9),
        ("mixtral-8x7b", 46.7e9),
        ("qwen2.5-0.5b", 0.49e9),
        ("qwen2.5-3b", 3.09e9),
        ("qwen2.5-7b", 7.61e9),
        ("qwen2.5-14b", 14.7e9),
        ("qwen2.5-32b", 32.5e9),
        ("qwen2.5-72b", 72.7e9),
        ("yi-34b", 34.4e9),
        ("gemma-2-9b", 9.24e9),
        ("gemma-2-27b", 27.2e9),
        ("bge-m3", 568e6),
        ("nomic-embed-text", 137e6),
        ("all-minilm-l6-v2", 22.7e6),
    ],
)
def test_shapes_give_the_published_parameter_count(name, published):
    assert param_count(get_model(name)) == pytest.approx(published, rel=0.015)


# Published GGUF file sizes of Llama 3.1 8B (Hugging Face listing, decimal GB) and the rows of
# PLACEMENT.md (F16 16 GB, Q8_0 8.5 GB, Q5_K_M 5.7 GB, Q4_K_M 4.6 -- the last is GiB: 4.92 GB).
@pytest.mark.parametrize(
    ("quant", "hf_gb", "placement", "unit"),
    [
        ("F16", 16.07, 16.0, GB),
        ("Q8_0", 8.54, 8.5, GB),
        ("Q5_K_M", 5.73, 5.7, GB),
        ("Q4_K_M", 4.92, 4.6, GIB),
    ],
)
def test_llama_31_8b_gguf_sizes(quant, hf_gb, placement, unit):
    total = weight_bytes(get_model("llama-3.1-8b"), quant)["total"]
    assert total == pytest.approx(hf_gb * GB, rel=0.01)
    assert total == pytest.approx(placement * unit, rel=0.02)


def test_q4_k_m_mix_matches_a_file_written_on_the_gpu_machine():
    # tests/gpu/gen_gguf.py wrote these exact tensor bytes (tests/gpu/results/gen.log)
    spec = get_model("llama-3.1-8b")
    assert weight_bytes(spec, "Q4_K_M")["total"] == 4_912_898_048
    assert weight_bytes(spec, "Q8_0")["total"] == 8_532_934_656
    assert weight_bytes(spec, "F16")["total"] == 16_061_054_976


@pytest.mark.parametrize(
    ("kind", "layer", "cols", "expected"),
    [
        ("attn_v", 0, 4096, "Q6_K"),  # first eighth: more bits
        ("attn_v", 4, 4096, "Q4_K"),
        ("attn_v", 6, 4096, "Q6_K"),  # (6 - 4) % 3 == 2
        ("ffn_down", 31, 14336, "Q6_K"),  # last eighth
        ("ffn_down", 10, 14336, "Q4_K"),
        ("attn_q", 0, 4096, "Q4_K"),
        ("output", None, 4096, "Q6_K"),
        ("token_embd", None, 4096, "Q4_K"),
        ("norm", 3, 4096, "F32"),
    ],
)
def test_q4_k_m_tensor_types(kind, layer, cols, expected):
    spec = get_model("llama-3.1-8b")
    assert gguf_tensor_type(spec, "Q4_K_M", Tensor("t", kind, layer, cols, 1024)) == expected


def test_k_quant_fallback_for_rows_not_multiple_of_256():
    spec = get_model("qwen2.5-0.5b")  # n_embd 896 = 3.5 x 256
    assert gguf_tensor_type(spec, "Q4_K_M", Tensor("q", "attn_q", 5, 896, 896)) == "Q5_0"
    # tied embeddings: token_embd is quantized as the output head, Q8_0 when rows do not fit
    assert gguf_tensor_type(spec, "Q4_K_M", Tensor("e", "token_embd", None, 896, 151936)) == "Q8_0"


def test_special_cases_moe_and_70b():
    mixtral = get_model("mixtral-8x7b")
    assert gguf_tensor_type(mixtral, "Q4_K_M", Tensor("v", "attn_v", 9, 4096, 1024)) == "Q8_0"
    assert gguf_tensor_type(mixtral, "Q4_K_M", Tensor("k", "attn_k", 9, 4096, 1024)) == "Q8_0"
    llama70 = get_model("llama-3.1-70b")
    assert gguf_tensor_type(llama70, "Q4_K_M", Tensor("v", "attn_v", 20, 8192, 1024)) == "Q5_K"


def test_tied_models_have_no_output_tensor():
    names = {t.name for t in tensors(get_model("qwen2.5-3b"))}
    assert "output.weight" not in names and "token_embd.weight" in names
    assert weight_bytes(get_model("qwen2.5-3b"), "Q8_0")["output"] == 0


@pytest.mark.parametrize(
    ("quant", "bits"),
    [("BF16", 16.0), ("FP8", 8.0), ("AWQ", 4.15625), ("GPTQ", 4.15625)],
)
def test_vllm_formats_quantize_linear_layers_only(quant, bits):
    spec = get_model("qwen2.5-7b")
    w = weight_bytes(spec, quant)
    embed = spec.n_vocab * spec.n_embd * 2
    assert w["token_embd"] == embed and w["output"] == embed  # 16-bit in every format
    linear = sum(
        t.n_elements for t in tensors(spec) if t.layer is not None and t.kind not in ("norm", "bias")
    )
    assert sum(w["layers"]) == pytest.approx(linear * bits / 8, rel=0.001)


@pytest.mark.parametrize("name", ["Llama-3.1-8B", "llama3.1:8b", "QWEN2.5-7B", "qwen2.5:7b", "tiny"])
def test_lookup_by_alias_and_case(name):
    assert get_model(name).name in MODELS


def test_overrides_and_errors():
    spec = get_model("teamllm-tiny", overrides={"n_layer": 4, "n_vocab": 512})
    assert (spec.n_layer, spec.n_vocab) == (4, 512)
    with pytest.raises(CatalogError, match="not in the catalog"):
        get_model("gpt-5")
    with pytest.raises(CatalogError, match="unknown override"):
        get_model("teamllm-tiny", overrides={"layers": 3})
    with pytest.raises(CatalogError, match="multiple of n_head_kv"):
        get_model("teamllm-tiny", overrides={"n_head_kv": 3})
    with pytest.raises(CatalogError, match="quantization"):
        weight_bytes(get_model("llama-3.1-8b"), "Q1_X")


def test_kinds_and_windows():
    assert get_model("bge-m3").kind == "embedding"
    gemma = get_model("gemma-2-9b")
    assert [gemma.is_swa_layer(i) for i in range(4)] == [True, False, True, False]
    assert not get_model("llama-3.1-8b").is_swa_layer(0)
    assert get_model("mixtral-8x7b").n_expert == 8
    assert len(list_models()) >= 17


def test_teamllm_tiny_matches_the_lab_generator(tmp_path):
    tool = Path(__file__).resolve().parents[4] / "tools" / "make_tiny_gguf.py"
    if not tool.exists():
        pytest.skip("tools/make_tiny_gguf.py not present")
    pytest.importorskip("gguf")
    from ansible_collections.teamllm.stack.plugins.module_utils._gguf_reader import (
        read_gguf,
        shape_from_metadata,
    )

    spec = importlib.util.spec_from_file_location("make_tiny_gguf", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "tiny.gguf"
    module.build(out)
    shape = shape_from_metadata(read_gguf(str(out)))
    tiny = get_model("teamllm-tiny")
    for key in ("n_layer", "n_embd", "n_head", "n_head_kv", "head_dim", "n_ff", "n_vocab", "n_ctx_train"):
        assert shape[key] == getattr(tiny, key), key
    assert shape["params"] == param_count(tiny)


@pytest.mark.parametrize(
    ("quant", "bits"),
    [("F16", 16.0), ("BF16", 16.0), ("Q8_0", 8.5), ("Q5_K_M", 5.70), ("Q4_K_M", 4.89), ("Q4_0", 4.64)],
)
def test_effective_bits_per_weight_llama_31_8b(quant, bits):
    assert bits_per_weight(get_model("llama-3.1-8b"), quant) == pytest.approx(bits, abs=0.01)


# 1.05B embedding + output parameters stay 16-bit, 6.98B linear ones are quantized: an int4
# checkpoint of Llama 3.1 8B is ~5.7 GB, not 8B x 4 bits = 4 GB.
@pytest.mark.parametrize(("quant", "low", "high"), [("AWQ", 5.6, 5.8), ("GPTQ", 5.6, 5.8), ("FP8", 8.9, 9.2)])
def test_vllm_effective_bits_include_16_bit_embeddings(quant, low, high):
    assert low < bits_per_weight(get_model("llama-3.1-8b"), quant) < high
