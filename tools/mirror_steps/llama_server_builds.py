"""Mirror step `llama-server-builds`: two more llama.cpp builds for the rolling engine update's
test (playbooks/upgrade.yml with upgrade_engines; molecule default), made without compiling.

1. `llama_server_cpu_repack` (`llama.cpp/llama-server-<version>-repack1-linux-x86_64-cpu.tar.gz`):
   the mirror's own CPU build (`llama_server_cpu`, checked against SHA256SUMS first) repacked
   with a build label in its BUILD file: the same `bin/llama-server`, another version and
   checksum, so the llama_cpp role installs it into a directory of its own. Its sha256 is
   `mirror` like its source's: the packing is deterministic, but the compiled binary inside
   differs from machine to machine.
2. `llama_server_broken` (`llama.cpp/llama-server-broken-linux-x86_64.tar.gz`): a deliberately
   broken build whose `bin/llama-server` is a shell script that exits 1; wholly deterministic,
   so its sha256 is pinned in the manifest. An update to it must roll back by itself.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from mirror_build import PACKING, Mirror, key_of, log, pack, sha256_file

STEP = "llama-server-builds"
SOURCE_ENTRY = "llama_server_cpu"
REPACK_ENTRY = "llama_server_cpu_repack"
BROKEN_ENTRY = "llama_server_broken"
BROKEN_SERVER = (b"#!/bin/sh\n"
                 b"# A deliberately broken llama-server build (teamllm.stack's rollback test).\n"
                 b"echo 'llama-server: a deliberately broken build (teamllm.stack rollback test)' >&2\n"
                 b"exit 1\n")


def build_repack(manifest: dict, mirror: Mirror) -> None:
    source, entry = manifest[SOURCE_ENTRY], manifest[REPACK_ENTRY]
    src = mirror.root / source["path"]
    digest = mirror.sums.get(source["path"])
    if not src.exists() or digest != sha256_file(src):
        raise SystemExit(f"{STEP}: {src} is missing or does not match SHA256SUMS: build the "
                         "`llama-server` step first")
    key = key_of(digest, entry["version"], PACKING, entry["path"])
    if mirror.fresh(entry["path"], key):
        log(f"{entry['path']} is cached (key {key})")
        return
    files: dict[str, bytes] = {}
    with tarfile.open(src) as tar:
        for member in tar.getmembers():
            if member.isfile():
                files[member.name] = tar.extractfile(member).read()
    if "bin/llama-server" not in files:
        raise SystemExit(f"{STEP}: {src} holds no bin/llama-server")
    files["BUILD"] = files.get("BUILD", b"") + (
        f"teamllm.stack repack {entry['version']} of {source['path']} "
        f"(sha256 {digest}; the same binary, for the rolling engine update's test)\n").encode()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "repack.tar.gz"
        pack(out, files, executables={"bin/llama-server"})
        put = mirror.put(entry["path"], out, key)
    log(f"{entry['path']} {put}")


def build_broken(manifest: dict, mirror: Mirror) -> None:
    entry = manifest[BROKEN_ENTRY]
    key = key_of(BROKEN_SERVER, entry["version"], PACKING, entry["path"])
    if mirror.fresh(entry["path"], key):
        log(f"{entry['path']} is cached (key {key})")
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "broken.tar.gz"
        pack(out, {"bin/llama-server": BROKEN_SERVER,
                   "BUILD": b"A deliberately broken build: bin/llama-server exits 1.\n"},
             executables={"bin/llama-server"})
        digest = sha256_file(out)
        if digest != entry["sha256"]:
            raise SystemExit(f"{BROKEN_ENTRY}'s sha256 {digest} differs from the manifest's "
                             f"{entry['sha256']}: the recipe changed; update {BROKEN_ENTRY}.sha256 "
                             "in roles/_common/defaults/main/downloads.yml (and its version).")
        mirror.put(entry["path"], out, key)
    log(f"{entry['path']} {digest}")


def build(manifest: dict, mirror: Mirror, cache: Path, jobs: int) -> None:  # noqa: ARG001
    build_repack(manifest, mirror)
    build_broken(manifest, mirror)
