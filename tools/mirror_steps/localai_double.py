"""Mirror step `localai-double`: the LocalAI TEST DOUBLE as a container image tarball.

LocalAI's images cannot be obtained on the machines this collection is built and tested on, so
the lab installs a stand-in through exactly the same path as the real image: the manifest entry
`localai_double_image` (sha256: mirror) -> `_common` download.yml (checksum) -> `docker load`.

The image is built FROM the local node image `teamllm-node:debian12` (it has python3; no
registry is reachable, so there is no other base) with tools/doubles/localai_double.py as its
entrypoint and LocalAI's image conventions (models at /models, /build/models also present,
port 8080), tagged `teamllm/localai-double:<version>` and `docker save`d to the entry's `path`.
Cache key: the double's sha256, this recipe, the version and the base image's id; the saved
tarball is also kept in the cache directory so a wiped mirror is refilled without a rebuild.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from mirror_build import REPO, key_of, log, sha256_file

STEP = "localai-double"
ENTRY = "localai_double_image"
BASE = "teamllm-node:debian12"
DOUBLE = REPO / "tools" / "doubles" / "localai_double.py"
REPOSITORY = "teamllm/localai-double"

DOCKERFILE = """\
FROM {base}
LABEL org.opencontainers.image.title="LocalAI TEST DOUBLE (not LocalAI)" \\
      org.opencontainers.image.version="{version}" \\
      org.opencontainers.image.source="teamllm.stack tools/doubles/localai_double.py"
COPY localai_double.py /usr/local/bin/local-ai
RUN chmod 0755 /usr/local/bin/local-ai && mkdir -p /models /build/models /backends
ENV LOCALAI_MODELS_PATH=/models LOCALAI_ADDRESS=:8080 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
EXPOSE 8080
ENTRYPOINT ["/usr/bin/python3", "/usr/local/bin/local-ai"]
"""


def _docker(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=True, **kw)


def build(manifest: dict, mirror, cache: Path, jobs: int) -> None:
    entry = manifest[ENTRY]
    version = str(entry["version"])
    tag = f"{REPOSITORY}:{version}"
    base_id = _docker("image", "inspect", "--format", "{{.Id}}", BASE,
                      capture_output=True, text=True).stdout.strip()
    key = key_of(sha256_file(DOUBLE), DOCKERFILE, version, base_id, entry["path"])
    if mirror.fresh(entry["path"], key):
        log(f"{entry['path']} is cached (key {key})")
        return
    cached = cache / "localai-double" / f"{key}.tar"
    if not cached.exists():
        log(f"building {tag} from {BASE} (the LocalAI test double)")
        with tempfile.TemporaryDirectory() as tmp:
            ctx = Path(tmp)
            shutil.copyfile(DOUBLE, ctx / "localai_double.py")
            (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=BASE, version=version))
            env = dict(os.environ, DOCKER_BUILDKIT="0")
            _docker("build", "--quiet", "--tag", tag, str(ctx), env=env,
                    stdout=subprocess.DEVNULL)
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(".tar.partial")
            _docker("save", "--output", str(partial), tag)
            os.replace(partial, cached)
    digest = mirror.put(entry["path"], cached, key)
    log(f"{entry['path']} {digest}")
