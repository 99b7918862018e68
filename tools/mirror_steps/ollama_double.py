"""Mirror step `ollama-double`: the Ollama TEST DOUBLE packed like Ollama's release, and the
project's tiny model as an offline Ollama model.

1. `ollama_double` (`ollama/ollama-linux-amd64-<version>-double.tgz`): the layout of Ollama's
   Linux release tarball - `bin/ollama` (here tools/doubles/ollama_double.py, a Python script
   that answers `ollama serve` and reads OLLAMA_HOST/OLLAMA_MODELS like the real binary) and
   `lib/ollama/` - so the `ollama` role installs it through exactly the code path of the real
   release (manifest entry -> download with sha256 -> unpack -> `current` link).
2. `ollama_teamllm_tiny`: the tiny GGUF (models/teamllm-tiny-q8_0.gguf, checked against the
   manifest's sha256) as Ollama stores a model - a schema-2 manifest at
   `ollama/models/manifests/registry.ollama.ai/library/teamllm-tiny/q8_0` and its blobs
   (model, template, params, config) at `ollama/models/blobs/sha256-<hex>`, all listed in
   SHA256SUMS. The mirror's `ollama/models` is thereby also a valid OLLAMA_MODELS directory.

Both are deterministic (fixed tar metadata, gzip mtime 0, sorted JSON), keyed by their inputs.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from mirror_build import PACKING, REPO, Mirror, key_of, log, pack, sha256_file

STEP = "ollama-double"
RELEASE_ENTRY = "ollama_double"
MODEL_ENTRY = "ollama_teamllm_tiny"
GGUF_ENTRY = "teamllm_tiny_gguf"
DOUBLE = REPO / "tools" / "doubles" / "ollama_double.py"
RECIPE = 2  # bump when the model's files below change
# Ollama's chat template in Go template syntax, for the tiny model's <|role|> format.
TEMPLATE = (
    "{{- if .System }}<|system|>\n{{ .System }}</s>\n{{ end }}"
    "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}</s>\n{{ end }}<|assistant|>\n"
)
PARAMS = {"num_ctx": 1024, "stop": ["</s>"]}


def pack_release(out: Path, double_source: bytes, version: str) -> None:
    note = (f"TEST DOUBLE of Ollama {version} (tools/doubles/ollama_double.py in teamllm.stack).\n"
            "Not Ollama: it serves deterministic text over Ollama's HTTP API.\n").encode()
    pack(out, {"bin/ollama": double_source, "lib/ollama/DOUBLE.txt": note}, executables={"bin/ollama"})


def model_files(gguf: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The manifest and {hex digest: content} of the tiny model as Ollama stores it."""
    blobs: dict[str, bytes] = {}

    def layer(media_type: str, data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    layers = [
        layer("application/vnd.ollama.image.model", gguf),
        layer("application/vnd.ollama.image.template", TEMPLATE.encode()),
        layer("application/vnd.ollama.image.params", json.dumps(PARAMS, sort_keys=True).encode()),
    ]
    config = {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
              "model_type": "tiny", "file_type": "Q8_0", "architecture": "amd64", "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": [la["digest"] for la in layers]}}
    config_layer = layer("application/vnd.docker.container.image.v1+json",
                         json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": config_layer, "layers": layers}
    return json.dumps(manifest).encode(), blobs


def build_release(manifest: dict, mirror: Mirror) -> None:
    entry = manifest[RELEASE_ENTRY]
    source = DOUBLE.read_bytes()
    if not source.startswith(b"#!/usr/bin/env python3\n"):
        raise SystemExit(f"{DOUBLE} must start with #!/usr/bin/env python3")
    key = key_of(hashlib.sha256(source).hexdigest(), entry["version"], PACKING, entry["path"])
    if mirror.fresh(entry["path"], key):
        log(f"{entry['path']} is cached (key {key})")
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "release.tgz"
        pack_release(out, source, entry["version"])
        digest = mirror.put(entry["path"], out, key)
    log(f"{entry['path']} {digest}")


def build_model(manifest: dict, mirror: Mirror) -> None:
    entry, gguf_entry = manifest[MODEL_ENTRY], manifest[GGUF_ENTRY]
    gguf_path = mirror.root / gguf_entry["path"]
    if not gguf_path.exists() or sha256_file(gguf_path) != gguf_entry["sha256"]:
        raise SystemExit(f"{STEP}: {gguf_path} is missing or not the pinned tiny model: build "
                         "the `model` step first")
    key = key_of(gguf_entry["sha256"], TEMPLATE, PARAMS, RECIPE, entry["path"], entry["blobs"])
    if mirror.fresh(entry["path"], key):
        log(f"{entry['path']} is cached (key {key})")
        return
    manifest_bytes, blobs = model_files(gguf_path.read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        for digest, data in sorted(blobs.items()):
            rel = f"{entry['blobs'].strip('/')}/sha256-{digest}"
            if mirror.fresh(rel, key):
                continue
            blob = Path(tmp) / digest
            blob.write_bytes(data)
            mirror.put(rel, blob, key)
        out = Path(tmp) / "manifest"
        out.write_bytes(manifest_bytes)
        digest = mirror.put(entry["path"], out, key)
    log(f"{entry['path']} {digest} ({len(blobs)} blobs)")


def build(manifest: dict, mirror: Mirror, cache: Path, jobs: int) -> None:  # noqa: ARG001
    build_release(manifest, mirror)
    build_model(manifest, mirror)
