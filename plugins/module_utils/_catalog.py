# Copyright (c) teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
"""Catalog of common models (their real shapes) and of quantizations, with weight sizes.

Private to the collection; standard library and the ggml type sizes of the ``gguf`` package
(through ``_gguf_reader``). Shapes come from each model's Hugging Face
``config.json`` (the ``hf`` field names the repository). Weight bytes are computed tensor by
tensor, with llama.cpp's own per-tensor type choice for the GGUF mixes (Q4_K_M, Q5_K_M: see
``gguf_tensor_type``), so a catalog estimate matches the size of the published GGUF files
(Llama 3.1 8B: F16 16.07 GB, Q8_0 8.54 GB, Q5_K_M 5.73 GB, Q4_K_M 4.92 GB).

    spec = get_model("llama-3.1-8b")
    spec = get_model("teamllm-tiny", overrides={"n_layer": 4})
    weights = weight_bytes(spec, "Q4_K_M")     # {"layers": [...], "token_embd": ..., "total": ...}
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ansible_collections.teamllm.stack.plugins.module_utils._gguf_reader import (
    block_size,
    type_nbytes,
)


class CatalogError(ValueError):
    """Unknown model or quantization, or an override that does not fit."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    arch: str  # llama, mistral, mixtral, qwen2, gemma2, bert, xlm-roberta, nomic-bert
    kind: str  # "llm" or "embedding"
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_vocab: int
    n_ctx_train: int
    params: int = 0  # published parameter count (0: unknown)
    tied_embeddings: bool = False
    n_expert: int = 0
    n_expert_used: int = 0
    sliding_window: int = 0  # 0: none
    swa_pattern: int = 0  # every n-th layer is global, the others slide (Gemma 2: 2); 0: all slide
    attn_bias: bool = False  # q/k/v biases (Qwen2)
    hf: str = ""  # Hugging Face repository the shape was read from
    aliases: tuple[str, ...] = ()

    @property
    def n_gqa(self) -> int:
        return self.n_head // max(1, self.n_head_kv)

    def is_swa_layer(self, il: int) -> bool:
        if not self.sliding_window:
            return False
        if not self.swa_pattern:
            return True
        return (il + 1) % self.swa_pattern != 0


def _m(name, arch, kind, n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx, params, **kw):
    return ModelSpec(
        name=name,
        arch=arch,
        kind=kind,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim=head_dim,
        n_ff=n_ff,
        n_vocab=n_vocab,
        n_ctx_train=n_ctx,
        params=params,
        **kw,
    )


# name, arch, kind, layers, embd, heads, kv heads, head_dim, ffn, vocab, max ctx, params
MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        _m(
            "llama-3.1-8b",
            "llama",
            "llm",
            32,
            4096,
            32,
            8,
            128,
            14336,
            128256,
            131072,
            8_030_261_248,
            hf="meta-llama/Llama-3.1-8B-Instruct",
            aliases=("llama3.1:8b", "meta-llama-3.1-8b-instruct"),
        ),
        _m(
            "llama-3.1-70b",
            "llama",
            "llm",
            80,
            8192,
            64,
            8,
            128,
            28672,
            128256,
            131072,
            70_553_706_496,
            hf="meta-llama/Llama-3.1-70B-Instruct",
            aliases=("llama3.1:70b",),
        ),
        _m(
            "mistral-7b",
            "llama",
            "llm",
            32,
            4096,
            32,
            8,
            128,
            14336,
            32768,
            32768,
            7_248_023_552,
            hf="mistralai/Mistral-7B-Instruct-v0.3",
            aliases=("mistral:7b", "mistral-7b-v0.3"),
        ),
        _m(
            "mixtral-8x7b",
            "llama",
            "llm",
            32,
            4096,
            32,
            8,
            128,
            14336,
            32000,
            32768,
            46_702_792_704,
            n_expert=8,
            n_expert_used=2,
            hf="mistralai/Mixtral-8x7B-Instruct-v0.1",
            aliases=("mixtral:8x7b",),
        ),
        _m(
            "qwen2.5-0.5b",
            "qwen2",
            "llm",
            24,
            896,
            14,
            2,
            64,
            4864,
            151936,
            32768,
            494_032_768,
            tied_embeddings=True,
            attn_bias=True,
            hf="Qwen/Qwen2.5-0.5B-Instruct",
            aliases=("qwen2.5:0.5b",),
        ),
        _m(
            "qwen2.5-3b",
            "qwen2",
            "llm",
            36,
            2048,
            16,
            2,
            128,
            11008,
            151936,
            32768,
            3_085_938_688,
            tied_embeddings=True,
            attn_bias=True,
            hf="Qwen/Qwen2.5-3B-Instruct",
            aliases=("qwen2.5:3b",),
        ),
        _m(
            "qwen2.5-7b",
            "qwen2",
            "llm",
            28,
            3584,
            28,
            4,
            128,
            18944,
            152064,
            32768,
            7_615_616_512,
            attn_bias=True,
            hf="Qwen/Qwen2.5-7B-Instruct",
            aliases=("qwen2.5:7b",),
        ),
        _m(
            "qwen2.5-14b",
            "qwen2",
            "llm",
            48,
            5120,
            40,
            8,
            128,
            13824,
            152064,
            32768,
            14_770_033_664,
            attn_bias=True,
            hf="Qwen/Qwen2.5-14B-Instruct",
            aliases=("qwen2.5:14b",),
        ),
        _m(
            "qwen2.5-32b",
            "qwen2",
            "llm",
            64,
            5120,
            40,
            8,
            128,
            27648,
            152064,
            32768,
            32_763_876_352,
            attn_bias=True,
            hf="Qwen/Qwen2.5-32B-Instruct",
            aliases=("qwen2.5:32b",),
        ),
        _m(
            "qwen2.5-72b",
            "qwen2",
            "llm",
            80,
            8192,
            64,
            8,
            128,
            29568,
            152064,
            32768,
            72_706_203_648,
            attn_bias=True,
            hf="Qwen/Qwen2.5-72B-Instruct",
            aliases=("qwen2.5:72b",),
        ),
        _m(
            "yi-34b",
            "llama",
            "llm",
            60,
            7168,
            56,
            8,
            128,
            20480,
            64000,
            4096,
            34_388_917_248,
            hf="01-ai/Yi-34B",
            aliases=("yi:34b",),
        ),
        _m(
            "gemma-2-9b",
            "gemma2",
            "llm",
            42,
            3584,
            16,
            8,
            256,
            14336,
            256000,
            8192,
            9_241_705_984,
            tied_embeddings=True,
            sliding_window=4096,
            swa_pattern=2,
            hf="google/gemma-2-9b-it",
            aliases=("gemma2:9b",),
        ),
        _m(
            "gemma-2-27b",
            "gemma2",
            "llm",
            46,
            4608,
            32,
            16,
            128,
            36864,
            256000,
            8192,
            27_227_128_320,
            tied_embeddings=True,
            sliding_window=4096,
            swa_pattern=2,
            hf="google/gemma-2-27b-it",
            aliases=("gemma2:27b",),
        ),
        # embedding models (encoders: no KV cache; the whole input is one micro-batch)
        _m(
            "bge-m3",
            "xlm-roberta",
            "embedding",
            24,
            1024,
            16,
            16,
            64,
            4096,
            250002,
            8192,
            567_754_752,
            hf="BAAI/bge-m3",
        ),
        _m(
            "nomic-embed-text",
            "nomic-bert",
            "embedding",
            12,
            768,
            12,
            12,
            64,
            3072,
            30528,
            8192,
            136_731_648,
            hf="nomic-ai/nomic-embed-text-v1.5",
            aliases=("nomic-embed-text-v1.5",),
        ),
        _m(
            "all-minilm-l6-v2",
            "bert",
            "embedding",
            6,
            384,
            12,
            12,
            32,
            1536,
            30522,
            512,
            22_713_216,
            hf="sentence-transformers/all-MiniLM-L6-v2",
            aliases=("all-minilm", "all-MiniLM-L6-v2"),
        ),
        # The project's lab model: its shape is whatever tools/make_tiny_gguf.py writes (SHAPE there;
        # the vocabulary is its word list padded to a multiple of 32). Override if the generator
        # changes, or estimate from the file itself (estimate(model="path/to/file.gguf")).
        _m(
            "teamllm-tiny",
            "llama",
            "llm",
            2,
            128,
            4,
            2,
            32,
            256,
            448,
            2048,
            410_240,
            hf="",
            aliases=("tiny",),
        ),
    )
}

# GGUF quantizations (llama.cpp "ftype") and what most tensors become.
GGUF_QUANTS: dict[str, str] = {
    "F32": "F32",
    "F16": "F16",
    "BF16": "BF16",
    "Q8_0": "Q8_0",
    "Q6_K": "Q6_K",
    "Q5_K_M": "Q5_K",
    "Q5_K_S": "Q5_K",
    "Q5_0": "Q5_0",
    "Q4_K_M": "Q4_K",
    "Q4_K_S": "Q4_K",
    "Q4_0": "Q4_0",
    "Q3_K_M": "Q3_K",
    "Q2_K": "Q2_K",
}

# vLLM weight formats: bits per weight of the linear layers (incl. group scales/zeros) and of the
# embeddings/output head (kept in 16 bits by AWQ, GPTQ and FP8 checkpoints).
VLLM_QUANTS: dict[str, dict] = {
    "BF16": {"linear_bits": 16.0, "embed_bits": 16.0},
    "FP16": {"linear_bits": 16.0, "embed_bits": 16.0},
    "FP8": {"linear_bits": 8.0, "embed_bits": 16.0},
    # 4-bit weights + an fp16 scale and a 4-bit zero point per group of 128
    "AWQ": {"linear_bits": 4.0 + 16 / 128 + 4 / 128, "embed_bits": 16.0},
    "GPTQ": {"linear_bits": 4.0 + 16 / 128 + 4 / 128, "embed_bits": 16.0},
}
QUANT_ALIASES = {"AWQ_INT4": "AWQ", "GPTQ_INT4": "GPTQ", "INT4": "AWQ", "FP8_E4M3": "FP8"}


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def list_models() -> list[str]:
    return sorted(MODELS)


def get_model(model, overrides: dict | None = None) -> ModelSpec:
    """A catalog entry by name or alias (case-insensitive), or a ModelSpec, with ``overrides``."""
    if isinstance(model, ModelSpec):
        spec = model
    else:
        wanted = _key(str(model))
        spec = None
        for entry in MODELS.values():
            if wanted == _key(entry.name) or wanted in {_key(a) for a in entry.aliases}:
                spec = entry
                break
        if spec is None:
            raise CatalogError(
                f"model {model!r} is not in the catalog ({', '.join(list_models())}); "
                "give its shape as a ModelSpec/overrides or point at its GGUF file"
            )
    if overrides:
        known = {f.name for f in fields(ModelSpec)}
        unknown = set(overrides) - known
        if unknown:
            raise CatalogError(f"model {spec.name}: unknown override keys {sorted(unknown)}")
        spec = replace(spec, **overrides)
    validate(spec)
    return spec


def validate(spec: ModelSpec) -> None:
    for name in ("n_layer", "n_embd", "n_head", "n_head_kv", "head_dim", "n_vocab"):
        if int(getattr(spec, name)) <= 0:
            raise CatalogError(f"model {spec.name}: {name} must be positive")
    if spec.n_head % spec.n_head_kv:
        raise CatalogError(f"model {spec.name}: n_head {spec.n_head} is not a multiple of n_head_kv")
    if spec.kind not in ("llm", "embedding"):
        raise CatalogError(f"model {spec.name}: kind must be llm or embedding")


def normalize_quant(quant: str) -> str:
    q = str(quant).strip().upper().replace("-", "_")
    return QUANT_ALIASES.get(q, q)


# ----------------------------------------------------------------------------- tensors


@dataclass(frozen=True)
class Tensor:
    name: str  # ggml name
    kind: str  # token_embd, output, norm, attn_q, attn_k, attn_v, attn_o, ffn_gate, ffn_up, ffn_down, ...
    layer: int | None
    cols: int  # ne[0], the row length (input dimension)
    rows: int  # ne[1] (output dimension)
    count: int = 1  # experts stacked in one tensor

    @property
    def n_elements(self) -> int:
        return self.cols * self.rows * self.count


def tensors(spec: ModelSpec) -> list[Tensor]:
    """The model's weight tensors (ggml names and shapes) as llama.cpp lays them out."""
    E, hd = spec.n_embd, spec.head_dim
    q_out, kv_out = spec.n_head * hd, spec.n_head_kv * hd
    out = [Tensor("token_embd.weight", "token_embd", None, E, spec.n_vocab)]
    encoder = spec.kind == "embedding"
    if encoder and spec.arch in ("bert", "xlm-roberta"):
        out.append(Tensor("position_embd.weight", "pos_embd", None, E, spec.n_ctx_train + 2))
    if encoder:
        out.append(Tensor("token_types.weight", "pos_embd", None, E, 2))
        out.append(Tensor("token_embd_norm.weight", "norm", None, E, 2))  # weight + bias
    for il in range(spec.n_layer):
        p = f"blk.{il}."
        out.append(Tensor(p + "attn_norm.weight", "norm", il, E, 2 if encoder else 1))
        out.append(Tensor(p + "attn_q.weight", "attn_q", il, E, q_out))
        out.append(Tensor(p + "attn_k.weight", "attn_k", il, E, kv_out))
        out.append(Tensor(p + "attn_v.weight", "attn_v", il, E, kv_out))
        out.append(Tensor(p + "attn_output.weight", "attn_o", il, q_out, E))
        if spec.attn_bias or encoder:
            out.append(Tensor(p + "attn_qkv.bias", "bias", il, q_out + 2 * kv_out, 1))
        if encoder:
            out.append(Tensor(p + "attn_output.bias", "bias", il, E, 1))
        out.append(Tensor(p + "ffn_norm.weight", "norm", il, E, 2 if encoder else 1))
        if spec.arch == "gemma2":
            out.append(Tensor(p + "post_attention_norm.weight", "norm", il, E, 1))
            out.append(Tensor(p + "post_ffw_norm.weight", "norm", il, E, 1))
        if spec.n_expert:
            out.append(Tensor(p + "ffn_gate_inp.weight", "ffn_gate_inp", il, E, spec.n_expert))
            out.append(Tensor(p + "ffn_gate_exps.weight", "ffn_gate", il, E, spec.n_ff, spec.n_expert))
            out.append(Tensor(p + "ffn_up_exps.weight", "ffn_up", il, E, spec.n_ff, spec.n_expert))
            out.append(Tensor(p + "ffn_down_exps.weight", "ffn_down", il, spec.n_ff, E, spec.n_expert))
        else:
            gated = not encoder or spec.arch == "nomic-bert"
            if gated:
                out.append(Tensor(p + "ffn_gate.weight", "ffn_gate", il, E, spec.n_ff))
            out.append(Tensor(p + "ffn_up.weight", "ffn_up", il, E, spec.n_ff))
            out.append(Tensor(p + "ffn_down.weight", "ffn_down", il, spec.n_ff, E))
            if encoder and spec.arch != "nomic-bert":
                out.append(Tensor(p + "ffn.bias", "bias", il, spec.n_ff + E, 1))
    if not encoder:
        out.append(Tensor("output_norm.weight", "norm", None, E, 1))
        if not spec.tied_embeddings:
            out.append(Tensor("output.weight", "output", None, E, spec.n_vocab))
    return out


def param_count(spec: ModelSpec) -> int:
    return sum(t.n_elements for t in tensors(spec))


def _more_bits(il: int, n: int) -> bool:
    # llama-quant.cpp use_more_bits(): the first and last eighth, and every third in between
    return il < n // 8 or il >= 7 * n // 8 or (il - n // 8) % 3 == 2


_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "Q2_K": "Q4_0", "Q3_K": "Q4_0"}


def gguf_tensor_type(spec: ModelSpec, quant: str, t: Tensor) -> str:
    """The ggml type llama.cpp's quantizer gives tensor ``t`` for file type ``quant``.

    Follows llama-quant.cpp for the mixes kept here (norms and biases stay F32; output head
    Q6_K for k-quant mixes; attn_v/ffn_down get Q6_K in the "more bits" layers for
    Q4_K_M/Q5_K_M; 8-expert models keep attn_k/attn_v in Q8_0; rows that a 256-block type
    cannot hold fall back to a 32-block type).
    """
    q = normalize_quant(quant)
    if q not in GGUF_QUANTS:
        raise CatalogError(f"GGUF quantization {quant!r} unknown; known: {', '.join(GGUF_QUANTS)}")
    if t.kind in ("norm", "bias", "ffn_gate_inp") or t.rows == 1:
        return "F32"
    base = GGUF_QUANTS[q]
    if base in ("F32", "F16", "BF16"):
        return base
    new = base
    is_output = t.kind == "output" or (spec.tied_embeddings and t.kind == "token_embd")
    if t.kind == "pos_embd":
        return "F32" if spec.kind == "embedding" else base
    if is_output:
        blk = block_size(base)
        if t.cols % blk:
            return "Q8_0"
        return base if base == "Q8_0" else "Q6_K"
    if t.kind == "attn_v":
        if q in ("Q4_K_M", "Q5_K_M") and _more_bits(t.layer, spec.n_layer):
            new = "Q6_K"
        elif q == "Q4_K_S" and t.layer < 4:
            new = "Q5_K"
        elif q == "Q3_K_M":
            new = "Q5_K" if t.layer < 2 else "Q4_K"
        elif q == "Q2_K":
            new = "Q4_K" if spec.n_gqa >= 4 else "Q3_K"
        if spec.n_layer == 80 and new in ("Q3_K", "Q4_K"):  # llama.cpp's LLM_TYPE_70B rule
            new = "Q5_K"
        if spec.n_expert == 8:
            new = "Q8_0"
    elif t.kind == "attn_k" and spec.n_expert == 8:
        new = "Q8_0"
    elif t.kind == "ffn_down":
        if q in ("Q4_K_M", "Q5_K_M") and _more_bits(t.layer, spec.n_layer):
            new = "Q6_K"
        elif q == "Q4_K_S" and t.layer < spec.n_layer // 8:
            new = "Q5_K"
        elif q == "Q3_K_M":
            new = "Q5_K" if t.layer < spec.n_layer // 16 else "Q4_K"
        elif q == "Q2_K":
            new = "Q3_K"
    elif t.kind == "attn_o" and spec.n_expert == 8 and q in ("Q4_K_M", "Q4_K_S", "Q3_K_M", "Q2_K"):
        new = "Q5_K"
    elif t.kind == "attn_o" and q == "Q3_K_M":
        new = "Q4_K"
    blk = block_size(new)
    if t.cols % blk:
        new = _FALLBACK.get(new, "F16")
        if t.cols % block_size(new):
            new = "F16"
    return new


def weight_bytes(spec: ModelSpec, quant: str) -> dict:
    """Weight bytes by part: ``layers`` (list, per block), ``token_embd``, ``output`` (0 when
    tied), ``other`` (norms and position tables outside the blocks), ``total``, ``types``
    (ggml type -> bytes)."""
    q = normalize_quant(quant)
    layers = [0] * spec.n_layer
    parts = {"token_embd": 0, "output": 0, "other": 0}
    types: dict[str, int] = {}
    vllm = VLLM_QUANTS.get(q)
    if vllm is None and q not in GGUF_QUANTS:
        raise CatalogError(
            f"quantization {quant!r} unknown for {spec.name}; GGUF: {', '.join(GGUF_QUANTS)}; "
            f"vLLM: {', '.join(VLLM_QUANTS)}"
        )
    for t in tensors(spec):
        if vllm is not None:
            small = t.kind in ("norm", "bias", "ffn_gate_inp")
            bits = (
                16.0
                if small
                else vllm["embed_bits"]
                if t.kind in ("token_embd", "output")
                else vllm["linear_bits"]
            )
            n = int(t.n_elements * bits / 8)
            tname = q
        else:
            tname = gguf_tensor_type(spec, q, t)
            n = type_nbytes(tname, t.n_elements)
        types[tname] = types.get(tname, 0) + n
        if t.layer is not None:
            layers[t.layer] += n
        elif t.kind == "token_embd":
            parts["token_embd"] += n
        elif t.kind == "output":
            parts["output"] += n
        else:
            parts["other"] += n
    parts["layers"] = layers
    parts["total"] = sum(layers) + parts["token_embd"] + parts["output"] + parts["other"]
    parts["types"] = types
    return parts


def bits_per_weight(spec: ModelSpec, quant: str) -> float:
    """Effective bits per parameter of ``spec`` in ``quant`` (mixes, scales and 16-bit embeddings
    included): Llama 3.1 8B gives F16 16.0, Q8_0 8.5, Q5_K_M 5.70, Q4_K_M 4.89."""
    return weight_bytes(spec, quant)["total"] * 8.0 / param_count(spec)
