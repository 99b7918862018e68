#!/usr/bin/env python3
"""Write a GGUF file with a real model's shape and tiled random weights, for memory tests.

    python3 tests/gpu/gen_gguf.py SHAPE TYPE OUT.gguf [--zero]
    python3 tests/gpu/gen_gguf.py SHAPE TYPE --summary      # bytes only, JSON, no file

SHAPE: a key of SHAPES (Qwen shapes are written as the `llama` architecture: same tensors, no
q/k/v biases, tied embeddings kept; Mixtral as `llama` with 8 experts, 2 used, as llama.cpp
loads it). TYPE: f16 | q8_0 | q4_0 | q4_k_m (llama.cpp's Q4_K_M recipe: Q4_K, with Q6_K for
attn_v/ffn_down in the "more bits" layers and for the output, Q5_K for the 70B's other attn_v,
Q8_0 attn_k/attn_v and Q5_K attn_output for 8 experts). The weights are a random tile repeated,
with block scales set to small finite values: the content is garbage, the memory it takes is
exact, and an 8B file is written in seconds. --zero writes a sparse file instead (every large
tensor all zeros, the norms ones): nothing to write, for the shapes too large to write in a
GPU lease. Needs the `gguf` package (llama.cpp's gguf-py) and numpy.
"""

from __future__ import annotations

import sys

import gguf
import numpy as np

SHAPES = {
    # name: n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx_train, tied
    "llama-3.1-8b": (4096, 32, 32, 8, 14336, 128256, 131072, False),
    "qwen2.5-0.5b": (896, 24, 14, 2, 4864, 151936, 32768, True),
    "qwen2.5-7b": (3584, 28, 28, 4, 18944, 152064, 32768, False),
    "mistral-7b": (4096, 32, 32, 8, 14336, 32768, 32768, False),
    "qwen2.5-3b": (2048, 36, 16, 2, 11008, 151936, 32768, True),
    "qwen2.5-14b": (5120, 48, 40, 8, 13824, 152064, 32768, False),
    "yi-34b": (7168, 60, 56, 8, 20480, 64000, 4096, False),
    "qwen2.5-32b": (5120, 64, 40, 8, 27648, 152064, 32768, False),
    "llama-3.1-70b": (8192, 80, 64, 8, 28672, 128256, 131072, False),
    "mixtral-8x7b": (4096, 32, 32, 8, 14336, 32000, 32768, False),
    "smoke": (256, 2, 4, 2, 512, 512, 2048, False),  # for a quick check of this script
    "smoke-moe": (256, 2, 4, 2, 512, 512, 2048, False),
}
# MoE shapes: name: (experts, experts used per token)
EXPERTS = {"mixtral-8x7b": (8, 2), "smoke-moe": (4, 2)}
Q = gguf.GGMLQuantizationType
BLOCK = {Q.Q8_0: (32, 34), Q.Q4_0: (32, 18), Q.Q5_0: (32, 22), Q.Q4_K: (256, 144), Q.Q5_K: (256, 176),
         Q.Q6_K: (256, 210)}
FTYPE = {"f16": 1, "q8_0": 7, "q4_0": 2, "q4_k_m": 15}
RNG = np.random.default_rng(7)
TILE = 1 << 20


def _f16_bytes(value: float) -> np.ndarray:
    return np.frombuffer(np.float16(value).tobytes(), dtype=np.uint8)


def quant_tile(qtype) -> np.ndarray:
    """A tile of blocks with random quants and finite small scales."""
    _, size = BLOCK[qtype]
    blocks = RNG.integers(0, 256, size=(4096, size), dtype=np.uint8)
    if qtype in (Q.Q8_0, Q.Q4_0, Q.Q5_0):
        blocks[:, 0:2] = _f16_bytes(0.002)
    elif qtype in (Q.Q4_K, Q.Q5_K):
        blocks[:, 0:2] = _f16_bytes(0.002)  # d
        blocks[:, 2:4] = _f16_bytes(0.0)  # dmin
    elif qtype == Q.Q6_K:
        blocks[:, 208:210] = _f16_bytes(0.0005)  # d is last
        blocks[:, 192:208] = RNG.integers(1, 8, size=(4096, 16), dtype=np.uint8)  # int8 scales
    return blocks.reshape(-1)


TILES: dict = {}


def byte_shape(rows: int, cols: int, qtype, experts: int = 1) -> tuple[list[int], np.dtype, int]:
    """(numpy shape as gguf-py takes it, dtype, bytes) of one tensor."""
    lead = [experts] if experts > 1 else []
    if qtype in (Q.F32, Q.F16):
        dtype = np.dtype(np.float32 if qtype == Q.F32 else np.float16)
        return lead + [rows, cols], dtype, experts * rows * cols * dtype.itemsize
    per, size = BLOCK[qtype]
    if cols % per:
        raise SystemExit(f"row of {cols} is not a multiple of {per} for {qtype.name}")
    row_bytes = cols // per * size
    return lead + [rows, row_bytes], np.dtype(np.uint8), experts * rows * row_bytes


def tensor_data(rows: int, cols: int, qtype, experts: int = 1) -> tuple[np.ndarray, list[int]]:
    shape, _, nbytes = byte_shape(rows, cols, qtype, experts)
    if qtype == Q.F32:
        return np.ones(shape, dtype=np.float32), shape
    if qtype == Q.F16:
        tile = TILES.setdefault(Q.F16, (RNG.standard_normal(TILE) * 0.02).astype(np.float16))
        return np.resize(tile, nbytes // 2).reshape(shape), shape
    tile = TILES.setdefault(qtype, quant_tile(qtype))
    return np.resize(tile, nbytes).reshape(shape), shape


def more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def plan(shape: str, wtype: str):
    """[(name, rows, cols, qtype, experts)] in file order."""
    n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, _, tied = SHAPES[shape]
    n_expert = EXPERTS.get(shape, (1, 1))[0]
    head_dim = n_embd // n_head
    base = {"f16": Q.F16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0, "q4_k_m": Q.Q4_K}[wtype]

    def pick(kind: str, layer: int, cols: int):
        qtype = base
        if wtype == "q4_k_m":
            if kind == "output":
                qtype = Q.Q6_K
            elif kind in ("attn_v", "ffn_down") and more_bits(layer, n_layer):
                qtype = Q.Q6_K
            elif kind == "attn_v" and n_layer == 80:  # llama.cpp's LLM_TYPE_70B rule
                qtype = Q.Q5_K
            if n_expert == 8 and kind in ("attn_k", "attn_v"):
                qtype = Q.Q8_0
            elif n_expert == 8 and kind == "attn_o":
                qtype = Q.Q5_K
            if cols % 256 and qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):  # llama.cpp's fallback
                qtype = {Q.Q4_K: Q.Q5_0, Q.Q5_K: Q.Q5_0, Q.Q6_K: Q.Q8_0}[qtype]
        if wtype == "q4_0" and kind == "output":
            qtype = Q.Q6_K if cols % 256 == 0 else Q.Q8_0
        return qtype

    tensors = []
    embd_type = pick("output" if tied else "token_embd", -1, n_embd)
    tensors.append(("token_embd.weight", n_vocab, n_embd, embd_type, 1))
    for i in range(n_layer):
        tensors.append((f"blk.{i}.attn_norm.weight", 1, n_embd, Q.F32, 1))
        tensors.append((f"blk.{i}.attn_q.weight", n_head * head_dim, n_embd, pick("attn_q", i, n_embd), 1))
        tensors.append((f"blk.{i}.attn_k.weight", n_head_kv * head_dim, n_embd, pick("attn_k", i, n_embd), 1))
        tensors.append((f"blk.{i}.attn_v.weight", n_head_kv * head_dim, n_embd, pick("attn_v", i, n_embd), 1))
        tensors.append((f"blk.{i}.attn_output.weight", n_embd, n_head * head_dim, pick("attn_o", i, n_embd), 1))
        tensors.append((f"blk.{i}.ffn_norm.weight", 1, n_embd, Q.F32, 1))
        if n_expert > 1:  # merged expert tensors, as convert_hf_to_gguf writes them
            tensors.append((f"blk.{i}.ffn_gate_inp.weight", n_expert, n_embd, Q.F32, 1))
            tensors.append((f"blk.{i}.ffn_gate_exps.weight", n_ff, n_embd, pick("ffn_gate", i, n_embd), n_expert))
            tensors.append((f"blk.{i}.ffn_up_exps.weight", n_ff, n_embd, pick("ffn_up", i, n_embd), n_expert))
            tensors.append((f"blk.{i}.ffn_down_exps.weight", n_embd, n_ff, pick("ffn_down", i, n_ff), n_expert))
            continue
        tensors.append((f"blk.{i}.ffn_gate.weight", n_ff, n_embd, pick("ffn_gate", i, n_embd), 1))
        tensors.append((f"blk.{i}.ffn_up.weight", n_ff, n_embd, pick("ffn_up", i, n_embd), 1))
        tensors.append((f"blk.{i}.ffn_down.weight", n_embd, n_ff, pick("ffn_down", i, n_ff), 1))
    tensors.append(("output_norm.weight", 1, n_embd, Q.F32, 1))
    if not tied:
        tensors.append(("output.weight", n_vocab, n_embd, pick("output", -1, n_embd), 1))
    return tensors


def summary(shape: str, wtype: str) -> dict:
    """Bytes of the file's tensors, and what one generated token reads from GPU memory.

    With every layer offloaded, llama.cpp keeps `token_embd` in host memory (it reads one row
    of it per token there) and reads every other tensor once per decode step; of a MoE layer's
    expert tensors only the used experts' slices (n_used / n_expert of them) at batch 1. A
    tied model's output head is token_embd itself, copied to the GPU, so it counts. The KV
    cache (f16) adds `kv_bytes_per_ctx_token` per token already in the context."""
    n_embd, n_layer, n_head, n_head_kv, _, n_vocab, _, tied = SHAPES[shape]
    n_expert, n_used = EXPERTS.get(shape, (1, 1))
    total = embd = expert_bytes = 0
    for name, rows, cols, qtype, experts in plan(shape, wtype):
        nbytes = byte_shape(rows, cols, qtype, experts)[2]
        total += nbytes
        if name == "token_embd.weight":
            embd = nbytes
        if experts > 1:
            expert_bytes += nbytes
    head_bytes = embd if tied else 0
    read = total - embd + head_bytes - expert_bytes + expert_bytes * n_used // n_expert
    head_dim = n_embd // n_head
    return {
        "shape": shape, "type": wtype, "tensor_bytes": total, "token_embd_bytes": embd,
        "tied_output": tied, "expert_bytes": expert_bytes, "n_expert": n_expert,
        "n_expert_used": n_used, "weight_bytes_read_per_token": read,
        "kv_bytes_per_ctx_token": n_layer * n_head_kv * head_dim * 2 * 2,
        "n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "n_head_kv": n_head_kv,
        "n_vocab": n_vocab,
    }


def vocabulary(n_vocab: int):
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{b:02X}>".encode() for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    words = "the of and to in is that it for on with as was at by be this from".split()
    for w in words:
        tokens.append(("\u2581" + w).encode())
        types.append(1)
    while len(tokens) < n_vocab:
        tokens.append(f"\u2581w{len(tokens)}".encode())
        types.append(1)
    scores = [0.0] * len(tokens)
    return tokens, scores, types


def write(shape: str, wtype: str, out: str, zero: bool = False) -> int:
    n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx, _ = SHAPES[shape]
    w = gguf.GGUFWriter(out, "llama")
    w.add_name(f"{shape}-shaped-random")
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(FTYPE[wtype])
    if shape in EXPERTS:
        w.add_expert_count(EXPERTS[shape][0])
        w.add_expert_used_count(EXPERTS[shape][1])
    tokens, scores, types = vocabulary(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    tensors = plan(shape, wtype)
    total = 0
    for name, rows, cols, qtype, experts in tensors:
        if rows == 1:  # norms: 1-D F32
            w.add_tensor_info(name, [cols], np.dtype(np.float32), cols * 4)
            total += cols * 4
            continue
        shape_, dtype, nbytes = byte_shape(rows, cols, qtype, experts)
        raw = None if qtype in (Q.F16, Q.F32) else qtype
        w.add_tensor_info(name, shape_, dtype, nbytes, raw_dtype=raw)
        total += nbytes
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    if zero:  # sparse: seek over every large tensor, write only the norms (ones)
        fout = w.fout[0]
        align = w.data_alignment
        pos = fout.tell()
        for name, rows, cols, qtype, experts in tensors:
            pos = w.ggml_pad(pos, align)
            nbytes = byte_shape(rows, cols, qtype, experts)[2]
            if rows == 1:
                fout.seek(pos)
                fout.write(np.ones(cols, dtype=np.float32).tobytes())
            pos += nbytes
        fout.truncate(w.ggml_pad(pos, align))
        w.close()
        return total
    for name, rows, cols, qtype, experts in tensors:
        if rows == 1:
            w.write_tensor_data(np.ones(cols, dtype=np.float32))
        else:
            w.write_tensor_data(tensor_data(rows, cols, qtype, experts)[0])
    w.close()
    return total


if __name__ == "__main__":
    if "--summary" in sys.argv:
        import json

        print(json.dumps(summary(sys.argv[1], sys.argv[2])))
        sys.exit(0)
    shape_name, weight_type, path = sys.argv[1:4]
    nbytes = write(shape_name, weight_type, path, zero="--zero" in sys.argv[4:])
    print(f"{path}: {shape_name} {weight_type} tensor bytes {nbytes}{' (sparse, zero)' if '--zero' in sys.argv else ''}")
