#!/usr/bin/env python3
"""Write the project's tiny Llama model in Hugging Face format: random weights (safetensors),
a byte-level BPE tokenizer (tokenizer.json) padded to the model's vocabulary size, and a chat
template. Deterministic: the same seed gives the same bytes on every machine.

It is what the vLLM tests serve (vLLM's CPU build loads it, see docs/vllm.md). Shape: hidden
64, 2 layers, 4 attention heads, 2 KV heads, head_dim 32 (vLLM's CPU attention refuses a
head_dim below 32), vocabulary 1000. The tokenizer holds exactly `vocab_size` pieces: a token
id without a piece would stream back as an empty string. The output layer favours letter
pieces over bytes >= 0x80 (those alone are invalid UTF-8 and vanish). It knows nothing, so
tests assert on behaviour (tokens arrive, counts add up), never on content.

Needs only numpy (safetensors and tokenizer.json are written directly).

    python tools/make_tiny_hf.py OUT_DIR [--seed 20261125]
"""

from __future__ import annotations

import argparse
import json
import string
import struct
import sys
from pathlib import Path

import numpy as np

CONFIG = {
    "vocab_size": 1000,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": 512,
}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by ByteLevel."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def vocabulary(size: int) -> tuple[dict[str, int], list[str], list[int]]:
    """Pieces (byte level) with merges; returns vocab, merges and the ids of the high bytes."""
    byte_map = bytes_to_unicode()
    pieces = [byte_map[b] for b in range(256)]
    merges: list[str] = []
    space = byte_map[ord(" ")]
    letters = string.ascii_lowercase
    candidates = [(a, b) for a in letters for b in letters]
    candidates += [(space, a) for a in letters]
    candidates += [(space + a, b) for a in letters for b in letters]
    room = size - 256 - len(SPECIALS)
    for left, right in candidates[:room]:
        merges.append(f"{left} {right}")
        pieces.append(left + right)
    pieces += SPECIALS
    if len(pieces) != size:
        raise SystemExit(f"vocabulary has {len(pieces)} pieces, expected {size}")
    vocab = {p: i for i, p in enumerate(pieces)}
    high = [vocab[byte_map[b]] for b in range(0x80, 0x100)]
    return vocab, merges, high


def tensors(seed: int, high_ids: list[int]) -> dict[str, np.ndarray]:
    c = CONFIG
    rng = np.random.default_rng(seed)
    h, ff, hd = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd

    def w(*shape: int, scale: float = 0.08) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype("<f4")

    out: dict[str, np.ndarray] = {"model.embed_tokens.weight": w(c["vocab_size"], h, scale=0.5)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = np.ones(h, "<f4")
        out[p + "post_attention_layernorm.weight"] = np.ones(h, "<f4")
        out[p + "self_attn.q_proj.weight"] = w(q, h)
        out[p + "self_attn.k_proj.weight"] = w(kv, h)
        out[p + "self_attn.v_proj.weight"] = w(kv, h)
        out[p + "self_attn.o_proj.weight"] = w(h, q)
        out[p + "mlp.gate_proj.weight"] = w(ff, h)
        out[p + "mlp.up_proj.weight"] = w(ff, h)
        out[p + "mlp.down_proj.weight"] = w(h, ff)
    out["model.norm.weight"] = np.ones(h, "<f4")
    head = w(c["vocab_size"], h, scale=0.5)
    head[high_ids] = 0.0  # bytes >= 0x80 alone are invalid UTF-8: keep them unlikely
    out["lm_head.weight"] = head
    return out


def write_safetensors(path: Path, arrays: dict[str, np.ndarray]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in sorted(arrays):
        a = arrays[name]
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name in sorted(arrays):
            f.write(np.ascontiguousarray(arrays[name]).tobytes())


def tokenizer_json(vocab: dict[str, int], merges: list[str]) -> dict:
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": vocab[s], "content": s, "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True}
            for s in SPECIALS
        ],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None,
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": merges,
        },
    }


def write_model(out: Path, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    vocab, merges, high = vocabulary(CONFIG["vocab_size"])
    bos, eos = vocab["<|endoftext|>"], vocab["<|im_end|>"]
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        **CONFIG,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": bos,
    }
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|endoftext|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "add_bos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": CONFIG["max_position_embeddings"],
        "chat_template": CHAT_TEMPLATE,
    }
    generation = {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": bos}

    def dump(name: str, data: dict) -> None:
        (out / name).write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
                                + "\n", encoding="utf-8")

    dump("config.json", config)
    dump("generation_config.json", generation)
    dump("tokenizer.json", tokenizer_json(vocab, merges))
    dump("tokenizer_config.json", tok_config)
    dump("special_tokens_map.json", {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>",
                                     "pad_token": "<|endoftext|>"})
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    write_safetensors(out / "model.safetensors", tensors(seed, high))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output directory")
    ap.add_argument("--seed", type=int, default=20261125)
    args = ap.parse_args(argv)
    write_model(args.out, args.seed)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
