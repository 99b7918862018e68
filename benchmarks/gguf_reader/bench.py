"""The estimator's GGUF header reader (``_gguf_reader.read_gguf``) beside the kept one
(``gguf.GGUFReader``, llama.cpp's gguf-py) on the header of a real model's shape.

    PYTHONPATH=.collections .venv/bin/python benchmarks/gguf_reader/bench.py [--repeat N]

Writes, in a temporary directory, a GGUF file with Llama 3.1 8B's shape and tokenizer sizes
(128 256 tokens with their types, 280 147 BPE merges, 291 Q8_0/F32 tensors), its data section
left sparse (8.5 GB apparent, a few MB on disk: neither reader reads tensor data). Then reads it
with both, as the estimator needs it (metadata and tensor infos), and prints Markdown: median
and best wall time, and the peak Python allocation (tracemalloc). Also checks that both
readers agree on every tensor's name, type, shape and offset. Not part of the unit tests;
RESULTS.md holds the committed numbers.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import statistics
import tempfile
import time
import tracemalloc

import gguf
import numpy as np

from ansible_collections.teamllm.stack.plugins.module_utils._gguf_reader import read_gguf, shape_from_metadata

# Llama 3.1 8B: embedding, layers, heads, KV heads, feed-forward, vocabulary, merges
E, L, H, KV, FF, V, MERGES = 4096, 32, 32, 8, 14336, 128256, 280147
ALIGN = 32


def write_header(path: str) -> None:
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("bench-llama-3.1-8b-shape")
    w.add_context_length(131072)
    w.add_embedding_length(E)
    w.add_block_count(L)
    w.add_feed_forward_length(FF)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"tok{i}".encode() for i in range(V)])
    w.add_token_types([1] * V)
    w.add_token_merges([f"a{i} b{i}" for i in range(MERGES)])
    q8, f32 = gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.F32

    def q8_0(name, rows, cols):  # byte shape as gguf-py takes a quantized tensor
        w.add_tensor_info(name, [rows, cols // 32 * 34], np.dtype(np.uint8), rows * cols // 32 * 34, raw_dtype=q8)

    def norm(name):
        w.add_tensor_info(name, [E], np.dtype(np.float32), E * 4, raw_dtype=f32)

    q8_0("token_embd.weight", V, E)
    for i in range(L):
        norm(f"blk.{i}.attn_norm.weight")
        q8_0(f"blk.{i}.attn_q.weight", E, E)
        q8_0(f"blk.{i}.attn_k.weight", E * KV // H, E)
        q8_0(f"blk.{i}.attn_v.weight", E * KV // H, E)
        q8_0(f"blk.{i}.attn_output.weight", E, E)
        norm(f"blk.{i}.ffn_norm.weight")
        q8_0(f"blk.{i}.ffn_gate.weight", FF, E)
        q8_0(f"blk.{i}.ffn_up.weight", FF, E)
        q8_0(f"blk.{i}.ffn_down.weight", E, FF)
    norm("output_norm.weight")
    q8_0("output.weight", V, E)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    data = sum(-(-t.nbytes // ALIGN) * ALIGN for t in w.tensors[0].values())
    w.close()
    header = -(-os.path.getsize(path) // ALIGN) * ALIGN
    with open(path, "r+b") as fh:  # the data section as a hole: the file's real size, no data
        fh.truncate(header + data)


def timed(fn, repeat: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), min(times), peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "llama-3.1-8b-shape.gguf")
        write_header(path)
        mine = read_gguf(path)
        theirs = gguf.GGUFReader(path)
        assert [(t.name, t.ggml_type, list(t.shape), t.offset) for t in mine.tensors] == [
            (t.name, t.tensor_type.name, [int(d) for d in t.shape], int(t.data_offset) - theirs.data_offset)
            for t in theirs.tensors
        ], "the readers disagree"
        rows = [
            ("`_gguf_reader.read_gguf` + `shape_from_metadata`", timed(lambda: shape_from_metadata(read_gguf(path)), args.repeat)),
            ("`gguf.GGUFReader`", timed(lambda: gguf.GGUFReader(path), args.repeat)),
        ]
        size = os.path.getsize(path)
    print(f"{datetime.date.today()}, Python {platform.python_version()}, gguf {importlib.metadata.version('gguf')},"
          f" numpy {np.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f};"
          f" file {size / 1e9:.1f} GB apparent, {len(mine.tensors)} tensors, {args.repeat} runs each")
    print()
    print("| reader | median (s) | best (s) | peak Python allocation (MB) |")
    print("| --- | ---: | ---: | ---: |")
    for name, (median, best, peak) in rows:
        print(f"| {name} | {median:.2f} | {best:.2f} | {peak:.1f} |")


if __name__ == "__main__":
    main()
