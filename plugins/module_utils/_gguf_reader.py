# Copyright (c) teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
"""Read a GGUF file's header: metadata key/values and tensor infos, with the ``gguf``
package's (llama.cpp's gguf-py) own tables of types.

Private to the collection. Reads only the header (a few MB at most, tokenizer arrays
included), never the tensor data, so it is fast on a 40 GB file. What it gives the
estimator: the model's shape from the metadata and the exact bytes of every tensor.

    info = read_gguf("model.gguf")
    info.metadata["general.architecture"]      # "llama"
    info.tensors[0]                            # GGUFTensor(name, shape, ggml_type, ...)
    shape_from_metadata(info)                  # n_layer, n_embd, n_head, ...

The ggml tensor types (id, name, block size and bytes per block), the metadata value types,
the magic and the default alignment are the ``gguf`` package's (``gguf.constants``), the kept
source that follows llama.cpp; this file holds no table of its own (the table it held until
2026-12 had drifted: Q8_1's block size was wrong and NVFP4 and Q1_0 were missing).

Why the header walk below and not ``gguf.GGUFReader``: the kept reader maps the whole file and
builds a numpy view for every item of every array, so on the header of a Llama 3.1 8B GGUF
(128 256 tokens, 280 147 merges) it took a median 22 s and 612 MB of Python allocations, where
this walk takes 0.4 s and 0.5 MB (benchmarks/gguf_reader/bench.py, RESULTS.md there; the
placement reads every GGUF file it is given). Both agree on every tensor; the unit tests check
it against ``gguf.GGUFReader`` on files that ``gguf.GGUFWriter`` wrote.

``gguf`` (with numpy) is imported guarded, so the collection's plugins load without it (Ansible
and ansible-test's import test load every file); then every function here refuses, naming it.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

try:
    from gguf.constants import (
        GGML_QUANT_SIZES,
        GGUF_DEFAULT_ALIGNMENT,
        GGUF_MAGIC,
        GGMLQuantizationType,
        GGUFValueType,
    )
except ImportError:
    GGML_QUANT_SIZES = None

MISSING = "" if GGML_QUANT_SIZES is not None else (
    "reading GGUF sizes needs the Python package gguf on the controller (pip install gguf; the "
    "collection's meta/execution-environment.yml lists what its plugins need)")

if not MISSING:
    DEFAULT_ALIGNMENT = GGUF_DEFAULT_ALIGNMENT
    # ggml type id -> (name, elements per block, bytes per block)
    GGML_TYPES: dict[int, tuple[str, int, int]] = {
        q.value: (q.name, *GGML_QUANT_SIZES[q]) for q in GGMLQuantizationType if q in GGML_QUANT_SIZES
    }
    # metadata value type id -> struct format (scalars), and the two compound ones
    _SCALARS = {int(vtype): fmt for vtype, fmt in (
        (GGUFValueType.UINT8, "<B"), (GGUFValueType.INT8, "<b"), (GGUFValueType.UINT16, "<H"),
        (GGUFValueType.INT16, "<h"), (GGUFValueType.UINT32, "<I"), (GGUFValueType.INT32, "<i"),
        (GGUFValueType.FLOAT32, "<f"), (GGUFValueType.BOOL, "<?"), (GGUFValueType.UINT64, "<Q"),
        (GGUFValueType.INT64, "<q"), (GGUFValueType.FLOAT64, "<d"))}
    _STRING, _ARRAY = int(GGUFValueType.STRING), int(GGUFValueType.ARRAY)
    _MAGIC = struct.pack("<I", GGUF_MAGIC)  # b"GGUF" as it is stored
else:
    DEFAULT_ALIGNMENT = 32
    GGML_TYPES = {}
    _SCALARS, _STRING, _ARRAY, _MAGIC = {}, 8, 9, b"GGUF"
TYPE_BY_NAME: dict[str, tuple[int, int]] = {name: (blk, size) for name, blk, size in GGML_TYPES.values()}


def _type(type_name: str) -> tuple[int, int]:
    if MISSING:
        raise GGUFError(MISSING)
    try:
        return TYPE_BY_NAME[type_name.upper()]
    except KeyError:
        raise GGUFError(f"unknown ggml type {type_name!r}") from None


def block_size(type_name: str) -> int:
    """Elements per block of ggml type ``type_name`` (a row must hold whole blocks)."""
    return _type(type_name)[0]


def type_nbytes(type_name: str, n_elements: int) -> int:
    """Bytes of ``n_elements`` values stored as ggml type ``type_name`` (whole blocks)."""
    blk, size = _type(type_name)
    return -(-n_elements // blk) * size


def bits_per_weight(type_name: str) -> float:
    blk, size = _type(type_name)
    return size * 8.0 / blk


class GGUFError(ValueError):
    """Not a GGUF file, or a header this reader cannot follow."""


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    shape: tuple[int, ...]  # ggml order: shape[0] is the row length (ne[0])
    ggml_type: str
    type_id: int
    offset: int  # from the start of the data section
    n_bytes: int

    @property
    def n_elements(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    @property
    def layer(self) -> int | None:
        match = re.match(r"blk\.(\d+)\.", self.name)
        return int(match.group(1)) if match else None


@dataclass
class GGUFInfo:
    path: str
    version: int
    metadata: dict
    tensors: list[GGUFTensor] = field(default_factory=list)
    alignment: int = DEFAULT_ALIGNMENT
    data_offset: int = 0
    file_size: int | None = None

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)


class _Reader:
    def __init__(self, fh, big_array_limit: int):
        self.fh = fh
        self.pos = 0
        self.big_array_limit = big_array_limit

    def read(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise GGUFError(f"truncated GGUF header at byte {self.pos}")
        self.pos += n
        return data

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > 1 << 30:
            raise GGUFError(f"implausible string length {n} at byte {self.pos}")
        return self.read(n).decode("utf-8", "replace")

    def value(self, vtype: int):
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            itype = self.unpack("<I")
            n = self.unpack("<Q")
            if n > self.big_array_limit:
                # keep the length only (tokenizer lists): skip through the items
                if itype in _SCALARS:
                    self.read(struct.calcsize(_SCALARS[itype]) * n)
                else:
                    for _index in range(n):
                        self.value(itype)
                return GGUFArray(itype, n)
            if itype in _SCALARS:
                fmt = _SCALARS[itype]
                size = struct.calcsize(fmt)
                raw = self.read(size * n)
                return list(struct.unpack(f"<{n}{fmt[1:]}", raw)) if n else []
            return [self.value(itype) for _index in range(n)]
        raise GGUFError(f"unknown GGUF value type {vtype} at byte {self.pos}")


@dataclass(frozen=True)
class GGUFArray:
    """A long array whose items were skipped (its length is what matters here)."""

    item_type: int
    length: int

    def __len__(self) -> int:
        return self.length


def read_gguf(path: str, big_array_limit: int = 1024) -> GGUFInfo:
    """Parse the header of the GGUF file at ``path`` (versions 2 and 3, little-endian)."""
    import os

    if MISSING:
        raise GGUFError(MISSING)
    with open(path, "rb") as fh:
        reader = _Reader(fh, big_array_limit)
        if reader.read(4) != _MAGIC:
            raise GGUFError(f"{path}: not a GGUF file (bad magic)")
        version = reader.unpack("<I")
        if version not in (2, 3):
            raise GGUFError(f"{path}: GGUF version {version} is not supported (2 and 3 are)")
        n_tensors = reader.unpack("<Q")
        n_kv = reader.unpack("<Q")
        metadata: dict = {}
        for _index in range(n_kv):
            key = reader.string()
            metadata[key] = reader.value(reader.unpack("<I"))
        alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        tensors = []
        for _index in range(n_tensors):
            name = reader.string()
            n_dims = reader.unpack("<I")
            if n_dims > 8:
                raise GGUFError(f"{path}: tensor {name} has {n_dims} dimensions")
            shape = tuple(reader.unpack("<Q") for _index in range(n_dims))
            type_id = reader.unpack("<I")
            offset = reader.unpack("<Q")
            if type_id not in GGML_TYPES:
                raise GGUFError(f"{path}: tensor {name} has unknown ggml type {type_id}")
            type_name = GGML_TYPES[type_id][0]
            n_el = 1
            for dim in shape:
                n_el *= dim
            tensors.append(GGUFTensor(name, shape, type_name, type_id, offset, type_nbytes(type_name, n_el)))
        data_offset = -(-reader.pos // alignment) * alignment
    return GGUFInfo(
        path=str(path),
        version=version,
        metadata=metadata,
        tensors=tensors,
        alignment=alignment,
        data_offset=data_offset,
        file_size=os.path.getsize(path),
    )


def shape_from_metadata(info: GGUFInfo) -> dict:
    """The model's shape from ``<arch>.*`` keys, as keyword arguments of ``_catalog.ModelSpec``."""
    md = info.metadata
    arch = md.get("general.architecture")
    if not arch:
        raise GGUFError(f"{info.path}: no general.architecture key")

    def key(name, default=None):
        return md.get(f"{arch}.{name}", default)

    n_embd = key("embedding_length")
    n_layer = key("block_count")
    n_head = key("attention.head_count")
    if n_embd is None or n_layer is None or n_head is None:
        raise GGUFError(f"{info.path}: missing {arch}.embedding_length/block_count/attention.head_count")
    if isinstance(n_head, list):  # per-layer head counts (some architectures)
        n_head = max(n_head)
    n_head_kv = key("attention.head_count_kv", n_head)
    if isinstance(n_head_kv, list):
        n_head_kv = max(n_head_kv)
    head_dim = key("attention.key_length") or (n_embd // n_head)
    n_ff = key("feed_forward_length", 0)
    if isinstance(n_ff, list):
        n_ff = max(n_ff)
    vocab = key("vocab_size")
    if vocab is None:
        tokens = md.get("tokenizer.ggml.tokens")
        vocab = len(tokens) if tokens is not None else 0
    if not vocab:
        embd = next((t for t in info.tensors if t.name == "token_embd.weight"), None)
        vocab = embd.shape[1] if embd is not None and len(embd.shape) > 1 else 0
    names = {t.name for t in info.tensors}
    pooling = key("pooling_type")
    causal = key("attention.causal", True)
    kind = "embedding" if (pooling not in (None, 0) or causal is False) else "llm"
    return {
        "name": md.get("general.name") or info.path,
        "arch": arch,
        "kind": kind,
        "n_layer": int(n_layer),
        "n_embd": int(n_embd),
        "n_head": int(n_head),
        "n_head_kv": int(n_head_kv),
        "head_dim": int(head_dim),
        "n_ff": int(n_ff),
        "n_vocab": int(vocab),
        "n_ctx_train": int(key("context_length", 0) or 0),
        "n_expert": int(key("expert_count", 0) or 0),
        "n_expert_used": int(key("expert_used_count", 0) or 0),
        "sliding_window": int(key("attention.sliding_window", 0) or 0),
        "tied_embeddings": "output.weight" not in names,
        "params": sum(t.n_elements for t in info.tensors),
    }


def bytes_by_part(info: GGUFInfo) -> dict:
    """Tensor bytes split as the estimator places them.

    ``layers``: list of bytes per repeating layer (index = block number); ``token_embd``;
    ``output`` (the output head, or 0 when tied: then llama.cpp loads a copy of token_embd
    as the output head); ``output_norm`` and any other non-layer tensor in ``other``.
    """
    n_layer = 1 + max((t.layer for t in info.tensors if t.layer is not None), default=-1)
    layers = [0] * n_layer
    parts = {"token_embd": 0, "output": 0, "other": 0}
    for t in info.tensors:
        if t.layer is not None:
            layers[t.layer] += t.n_bytes
        elif t.name == "token_embd.weight":
            parts["token_embd"] += t.n_bytes
        elif t.name == "output.weight":
            parts["output"] += t.n_bytes
        else:
            parts["other"] += t.n_bytes
    parts["layers"] = layers
    parts["tied"] = not any(t.name == "output.weight" for t in info.tensors)
    parts["total"] = info.tensor_bytes
    return parts
