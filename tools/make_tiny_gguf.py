#!/usr/bin/env python3
"""Write the project's tiny llama-architecture GGUF model: random weights, a small SentencePiece
style tokenizer and a chat template. Deterministic: the same seed gives the same bytes on every
machine, so the download manifest can pin its sha256.

It is what the lab and the tests serve: llama.cpp loads it and generates printable text with
it (the output layer favours word pieces over byte tokens, which would otherwise come out as
invalid UTF-8 and vanish). It knows nothing, so tests assert on behaviour (tokens arrive,
counts add up), never on content.

    python tools/make_tiny_gguf.py OUT.gguf [--seed 20261125] [--type q8_0|f16|f32]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import gguf
import numpy as np

# Shape: head_dim 32 (n_embd / n_head), GQA 4:2, rows are multiples of 32 so Q8_0 applies.
SHAPE = {
    "n_embd": 128,
    "n_head": 4,
    "n_head_kv": 2,
    "n_layer": 2,
    "n_ff": 256,
    "n_ctx": 2048,
}
WORDS = (
    "the of and to in is that it for on with as was at by be this from or an are not have "
    "but what all were when we there can more if no out so said up its about into than them "
    "only other new some could time these two may first then do any like my now over such our "
    "man me even most made after also did many before must through back years where much your "
    "way well down should because each just those people how too little state good very make "
    "world still own see men work long get here between both life being under never day same "
    "another know while last might us great old year off come since against go came right used "
    "take three model token llama team gpu node cluster server answer local private secure fast "
    "small tiny test lab stack queue cache memory route gateway engine stream reply hello world"
).split()
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_BYTE = 1, 2, 3, 6


def vocabulary() -> tuple[list[bytes], list[float], list[int]]:
    tokens: list[bytes] = [b"<unk>", b"<s>", b"</s>"]
    types = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL]
    tokens += [f"<0x{b:02X}>".encode() for b in range(256)]
    types += [TOKEN_BYTE] * 256
    pieces = ["\u2581" + w for w in WORDS] + list("abcdefghijklmnopqrstuvwxyz.,!?")
    pieces += ["\u2581"]
    seen = set()
    for p in pieces:
        if p not in seen:
            seen.add(p)
            tokens.append(p.encode())
            types.append(TOKEN_NORMAL)
    # pad to a multiple of 32 with unused normal pieces so every tensor row quantizes
    while len(tokens) % 32:
        tokens.append(f"\u2581pad{len(tokens)}".encode())
        types.append(TOKEN_NORMAL)
    scores = [0.0] * 259 + [-float(i) for i in range(len(tokens) - 259)]
    return tokens, scores, types


def build(path: Path, seed: int = 20261125, wtype: str = "q8_0") -> str:
    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    s = SHAPE
    head_dim = s["n_embd"] // s["n_head"]
    qtype = {
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
        "f16": gguf.GGMLQuantizationType.F16,
        "f32": gguf.GGMLQuantizationType.F32,
    }[wtype]
    file_type = {"q8_0": 7, "f16": 1, "f32": 0}[wtype]

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("teamllm-tiny")
    w.add_context_length(s["n_ctx"])
    w.add_embedding_length(s["n_embd"])
    w.add_block_count(s["n_layer"])
    w.add_feed_forward_length(s["n_ff"])
    w.add_head_count(s["n_head"])
    w.add_head_count_kv(s["n_head_kv"])
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(file_type)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def weight(rows: int, cols: int, scale: float = 0.08) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    def add(name: str, data: np.ndarray) -> None:
        if data.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, data.astype(np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, data.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)

    n_embd, n_ff = s["n_embd"], s["n_ff"]
    n_q, n_kv = s["n_head"] * head_dim, s["n_head_kv"] * head_dim
    add("token_embd.weight", weight(n_vocab, n_embd, 0.5))
    for i in range(s["n_layer"]):
        add(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        add(f"blk.{i}.attn_q.weight", weight(n_q, n_embd))
        add(f"blk.{i}.attn_k.weight", weight(n_kv, n_embd))
        add(f"blk.{i}.attn_v.weight", weight(n_kv, n_embd))
        add(f"blk.{i}.attn_output.weight", weight(n_embd, n_q))
        add(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        add(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        add(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        add(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
    add("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    # Output layer: zero rows for control and byte tokens, strong rows for word pieces, so
    # sampling yields printable words (and </s> only rarely, so generations run to max_tokens).
    out = weight(n_vocab, n_embd, 0.6)
    out[:259] = 0.0
    add("output.weight", out)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--type", dest="wtype", choices=("q8_0", "f16", "f32"), default="q8_0")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    digest = build(args.out, args.seed, args.wtype)
    print(f"{digest}  {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
