"""Mirror step `llama-server-cuda`: llama.cpp's `llama-server` built with CUDA, for GPU nodes.

The same pinned llama.cpp source as the CPU build (vendored in the llama-cpp-python sdist,
checked against the manifest's sha256), the same portable CPU flags, plus `-DGGML_CUDA=ON` for
the GPU architectures of the cards the collection targets. Not built by default (it needs a
CUDA toolkit: `nvcc` on PATH or CUDACXX; about 6 minutes per architecture on 16 cores):

    python tools/mirror_build.py --mirror DIR --only llama-server-cuda

TEAMLLM_CUDA_ARCHS overrides the architectures (e.g. "90" for an H100 only; the tarball's
BUILD file records what it holds). TEAMLLM_LLAMA_SRC names an already extracted source tree
instead of the sdist (used on the GPU test machine, which reaches no package registry; the
BUILD file then says so). The binary links the CUDA runtime and cuBLAS dynamically (NCCL
off): a node needs the CUDA libraries of the same major version (the cuda role installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import mirror_build as mb

STEP = "llama-server-cuda"
DEFAULT = False  # needs a CUDA toolkit; run with --only llama-server-cuda

# Turing (RTX 20xx, T4) .. Hopper; CUDA 13 no longer builds for older cards.
CUDA_ARCHS = "75;80;86;89;90"


def _nvcc() -> str:
    nvcc = os.environ.get("CUDACXX") or shutil.which("nvcc")
    if not nvcc:
        raise SystemExit(
            "llama-server-cuda: no CUDA compiler found; install the CUDA toolkit (nvcc) or set "
            "CUDACXX, or build this step on a machine that has one"
        )
    return nvcc


def build(manifest: dict, mirror: mb.Mirror, cache: Path, jobs: int) -> None:
    src_entry = manifest["llama_cpp_python_sdist"]
    out_entry = manifest["llama_server_cuda"]
    archs = os.environ.get("TEAMLLM_CUDA_ARCHS", CUDA_ARCHS)
    given_src = os.environ.get("TEAMLLM_LLAMA_SRC")
    nvcc = _nvcc()
    nvcc_version = subprocess.run([nvcc, "--version"], capture_output=True, text=True,
                                  check=True).stdout.strip().splitlines()[-1]
    # NCCL off: the binary then needs only the CUDA runtime, cuBLAS and the driver on a node
    # (NCCL speeds up only tensor-parallel splits across GPUs, which the placement gives vLLM).
    cmake_args = (*mb.LLAMA_CMAKE_ARGS, "-DGGML_CUDA=ON", "-DGGML_CUDA_NCCL=OFF",
                  f"-DCMAKE_CUDA_ARCHITECTURES={archs}", f"-DCMAKE_CUDA_COMPILER={nvcc}")
    key = mb.key_of(src_entry["sha256"], cmake_args, nvcc_version, out_entry["path"], given_src)
    if mirror.fresh(out_entry["path"], key):
        mb.log(f"{out_entry['path']} is cached (key {key})")
        return
    work = cache / "build" / f"llama-server-cuda-{key}"
    if given_src:
        src = Path(given_src).resolve()
        origin = f"source: the extracted tree {given_src} (TEAMLLM_LLAMA_SRC; not checked)"
    else:
        src = mb.extract_llama_source(mb.fetch_sdist(src_entry, cache), work / "src")
        origin = f"source: llama-cpp-python {src_entry['version']} sdist sha256 {src_entry['sha256']}"
    mb.log(f"building llama-server with CUDA for {archs} ({nvcc_version})")
    binary = mb.compile_llama_server(src, work / "build", cmake_args, jobs, STEP)
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "llama-server-cuda.tar.gz"
        mb.pack(tarball, {"bin/llama-server": binary, "LICENSE": src / "LICENSE",
                          "BUILD": (f"{origin}\nllama.cpp vendored in llama-cpp-python "
                                    f"{src_entry['version']}\n{nvcc_version}\n"
                                    f"CUDA architectures {archs}\n"
                                    f"cmake {' '.join(cmake_args)}\n").encode()})
        digest = mirror.put(out_entry["path"], tarball, key)
    mb.log(f"{out_entry['path']} {digest}")
    shutil.rmtree(work / "build", ignore_errors=True)
