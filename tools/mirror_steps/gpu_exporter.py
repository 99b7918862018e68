"""Mirror step `gpu-exporter`: the wheelhouse the gpu_exporter role installs offline.

`gpu_exporter_wheelhouse`: nvitop-exporter (nvitop's Prometheus exporter, PyPI) and its
dependencies (nvitop, nvidia-ml-py, psutil, prometheus-client), every wheel pinned with its
sha256 in gpu-exporter-requirements.txt next to this file (the lock), plus the lock itself as
requirements.txt. All are pure-Python or abi3 wheels: one wheelhouse serves every CPython 3.8+
on manylinux x86_64 (Debian 12 and 13, Ubuntu 22.04 and 24.04). The node installs it with
`pip install --no-index --no-deps --require-hashes -r requirements.txt`.

Rebuilt only when its cache key changes (the lock, the platform arguments, the recipe); a
reproducible tarball (sorted, owner root, mtime 0). The lock is made by hand when a pin changes:

    .venv/bin/python tools/mirror_steps/gpu_exporter.py lock
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mirror_build import Mirror, key_of, log, sha256_file  # noqa: E402

STEP = "gpu-exporter"
ENTRY = "gpu_exporter_wheelhouse"
HERE = Path(__file__).resolve().parent
# the reproducible tarball packing of the vllm step (one copy of it)
_SPEC = importlib.util.spec_from_file_location("mirror_steps.vllm", HERE / "vllm.py")
_VLLM = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_VLLM)
pack = _VLLM.pack
LOCK = HERE / "gpu-exporter-requirements.txt"
# The exporter and every dependency, pinned (nvitop-exporter pins nvitop; nvitop accepts
# nvidia-ml-py below 13.616 - the same release the controller's requirements.txt pins).
PINS = ("nvitop-exporter==1.7.2", "nvitop==1.7.2", "nvidia-ml-py==13.615.71", "psutil==7.2.2",
        "prometheus-client==0.26.0")
PLATFORM_ARGS = [
    "--only-binary", ":all:", "--python-version", "3.11", "--implementation", "cp",
    "--abi", "cp311", "--abi", "abi3", "--abi", "none",
    *[a for m in range(36, 16, -1) for a in ("--platform", f"manylinux_2_{m}_x86_64")],
    "--platform", "manylinux2014_x86_64", "--platform", "manylinux2010_x86_64",
    "--platform", "any",
]
RECIPE = "1"  # bump when the packing below changes


def _pip(*args: str) -> None:
    # --isolated: no user or site pip configuration (indexes, constraints) changes the result
    subprocess.run([sys.executable, "-m", "pip", "--isolated", *args], check=True)


def lock_lines() -> list[str]:
    return [line for line in LOCK.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def build(manifest: dict, mirror: Mirror, cache: Path, jobs: int) -> None:  # noqa: ARG001
    entry = manifest[ENTRY]
    key = key_of(sha256_file(LOCK), PLATFORM_ARGS, entry["path"], RECIPE)
    if mirror.fresh(entry["path"], key):
        log(f"{entry['path']} is cached (key {key})")
        return
    work = cache / "build" / f"gpu-exporter-wheelhouse-{key}"
    work.mkdir(parents=True, exist_ok=True)
    log(f"downloading the {len(lock_lines())} wheels pinned in {LOCK.name} (checked by sha256)")
    _pip("download", "--quiet", "--no-deps", "--require-hashes", "--dest", str(work),
         *PLATFORM_ARGS, "-r", str(LOCK))
    wheels = sorted(work.glob("*.whl"))
    if len(wheels) != len(lock_lines()):
        raise SystemExit(f"{work}: {len(wheels)} wheels for {len(lock_lines())} pinned lines; "
                         "remove the directory and run the step again")
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "wheelhouse.tar.gz"
        files: dict[str, Path | bytes] = {f"wheels/{w.name}": w for w in wheels}
        files["requirements.txt"] = LOCK.read_bytes()
        pack(tarball, Path(entry["path"]).name.removesuffix(".tar.gz"), files, level=1)
        digest = mirror.put(entry["path"], tarball, key)
    log(f"{entry['path']} {digest} ({len(wheels)} wheels)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock() -> None:
    """Download the pinned wheels and write the lock with their sha256s."""
    with tempfile.TemporaryDirectory() as tmp:
        _pip("download", "--quiet", "--no-deps", "-d", tmp, *PLATFORM_ARGS, *PINS)
        lines = []
        for path in sorted(Path(tmp).glob("*.whl")):
            name, version = path.name.split("-")[:2]
            lines.append(f"{_canonical(name)}=={version} --hash=sha256:{sha256_file(path)}")
    if len(lines) != len(PINS):
        raise SystemExit(f"{len(lines)} wheels for {len(PINS)} pins")
    head = ["# nvitop-exporter and its dependencies (pure Python or abi3: any CPython 3.8+ on",
            "# manylinux x86_64): the lock of the gpu_exporter_wheelhouse mirror artifact. Made by",
            "# tools/mirror_steps/gpu_exporter.py lock; do not edit by hand."]
    LOCK.write_text("\n".join(head + lines) + "\n")
    log(f"{LOCK}: {len(lines)} wheels")


if __name__ == "__main__":
    if sys.argv[1:] != ["lock"]:
        sys.exit(f"usage: {sys.argv[0]} lock")
    lock()
