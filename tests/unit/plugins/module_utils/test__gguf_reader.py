from __future__ import annotations

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils._gguf_reader import (
    GGML_TYPES,
    GGUFArray,
    GGUFError,
    bits_per_weight,
    block_size,
    bytes_by_part,
    read_gguf,
    shape_from_metadata,
    type_nbytes,
)

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")

E, FF, V, L = 64, 128, 320, 2


def write_llama(path, qtype="F16", tied=False, extra=None):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("reader-test")
    w.add_context_length(4096)
    w.add_embedding_length(E)
    w.add_block_count(L)
    w.add_feed_forward_length(FF)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(1)
    w.add_token_list([f"t{i}".encode() for i in range(V)])
    w.add_token_scores([0.0] * V)
    w.add_bool("test.flag", True)
    w.add_float32("test.scale", 0.5)
    w.add_array("test.small", [1, 2, 3])
    for key, value in (extra or {}).items():
        w.add_uint32(key, value)
    rng = np.random.default_rng(0)
    q = getattr(gguf.GGMLQuantizationType, qtype)

    def add(name, rows, cols):
        data = rng.standard_normal((rows, cols)).astype(np.float32)
        if q == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, data.astype(np.float16))
        elif q == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, gguf.quants.quantize(data, q), raw_dtype=q)

    add("token_embd.weight", V, E)
    for i in range(L):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(E, dtype=np.float32))
        add(f"blk.{i}.attn_q.weight", E, E)
        add(f"blk.{i}.attn_k.weight", E // 2, E)
        add(f"blk.{i}.attn_v.weight", E // 2, E)
        add(f"blk.{i}.attn_output.weight", E, E)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(E, dtype=np.float32))
        add(f"blk.{i}.ffn_gate.weight", FF, E)
        add(f"blk.{i}.ffn_up.weight", FF, E)
        add(f"blk.{i}.ffn_down.weight", E, FF)
    w.add_tensor("output_norm.weight", np.ones(E, dtype=np.float32))
    if not tied:
        add("output.weight", V, E)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("qtype", ["F32", "F16", "Q8_0", "Q4_0", "BF16"])
def test_tensor_bytes_match_the_gguf_package(tmp_path, qtype):
    path = write_llama(tmp_path / f"m-{qtype}.gguf", qtype)
    info = read_gguf(str(path))
    ref = gguf.GGUFReader(str(path))
    assert [t.name for t in info.tensors] == [t.name for t in ref.tensors]
    for mine, theirs in zip(info.tensors, ref.tensors, strict=True):
        assert mine.ggml_type == theirs.tensor_type.name
        assert mine.n_bytes == int(theirs.n_bytes)
        assert list(mine.shape) == [int(d) for d in theirs.shape]
        assert mine.offset == int(theirs.data_offset) - ref.data_offset
    assert info.data_offset == ref.data_offset
    assert info.version == 3


def test_metadata_values(tmp_path):
    info = read_gguf(str(write_llama(tmp_path / "m.gguf")), big_array_limit=100)
    md = info.metadata
    assert md["general.architecture"] == "llama"
    assert md["llama.block_count"] == L
    assert md["test.flag"] is True
    assert md["test.scale"] == 0.5
    assert md["test.small"] == [1, 2, 3]
    assert isinstance(md["tokenizer.ggml.tokens"], GGUFArray)  # long lists: length only
    assert len(md["tokenizer.ggml.tokens"]) == V


def test_shape_and_parts(tmp_path):
    info = read_gguf(str(write_llama(tmp_path / "m.gguf", "Q8_0")))
    shape = shape_from_metadata(info)
    assert shape["n_layer"] == L and shape["n_embd"] == E
    assert shape["n_head"] == 4 and shape["n_head_kv"] == 2 and shape["head_dim"] == 16
    assert shape["n_vocab"] == V and shape["n_ctx_train"] == 4096
    assert shape["tied_embeddings"] is False and shape["kind"] == "llm"
    parts = bytes_by_part(info)
    assert len(parts["layers"]) == L
    assert parts["token_embd"] == type_nbytes("Q8_0", V * E)
    assert parts["output"] == type_nbytes("Q8_0", V * E)
    assert parts["other"] == E * 4  # output_norm
    assert parts["total"] == sum(parts["layers"]) + parts["token_embd"] + parts["output"] + parts["other"]


def test_tied_file(tmp_path):
    info = read_gguf(str(write_llama(tmp_path / "t.gguf", tied=True)))
    assert shape_from_metadata(info)["tied_embeddings"] is True
    assert bytes_by_part(info)["tied"] is True


@pytest.mark.parametrize(
    ("name", "n", "nbytes", "bpw"),
    [("F16", 256, 512, 16.0), ("Q8_0", 256, 272, 8.5), ("Q4_K", 256, 144, 4.5), ("Q6_K", 512, 420, 6.5625)],
)
def test_type_sizes(name, n, nbytes, bpw):
    assert type_nbytes(name, n) == nbytes
    assert bits_per_weight(name) == bpw


def test_every_ggml_type_is_the_gguf_packages():
    """The type table is gguf-py's (the hand-kept one had Q8_1 at 36 bytes a block, and lacked
    NVFP4 and Q1_0)."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    assert GGML_TYPES == {q.value: (q.name, *GGML_QUANT_SIZES[q]) for q in GGML_QUANT_SIZES}
    assert type_nbytes("Q8_1", 64) == 2 * GGML_QUANT_SIZES[GGMLQuantizationType.Q8_1][1]
    assert block_size("q4_k") == 256
    with pytest.raises(GGUFError, match="unknown ggml type"):
        type_nbytes("Q9_9", 32)


def test_not_gguf_and_truncated(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGML" + b"\0" * 64)
    with pytest.raises(GGUFError, match="bad magic"):
        read_gguf(str(bad))
    good = write_llama(tmp_path / "g.gguf")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(GGUFError, match="truncated"):
        read_gguf(str(cut))
