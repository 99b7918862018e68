"""The tiny model is deterministic, loadable by the gguf reader, and matches the manifest."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]


def _generator():
    spec = importlib.util.spec_from_file_location("make_tiny_gguf", REPO / "tools" / "make_tiny_gguf.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_same_seed_same_bytes_and_manifest_checksum(tmp_path):
    gen = _generator()
    a = gen.build(tmp_path / "a.gguf")
    b = gen.build(tmp_path / "b.gguf")
    assert a == b == hashlib.sha256((tmp_path / "a.gguf").read_bytes()).hexdigest()
    manifest = yaml.safe_load((REPO / "roles/_common/defaults/main/downloads.yml").read_text())
    assert manifest["llm_downloads_collection"]["teamllm_tiny_gguf"]["sha256"] == a


def test_other_seed_other_model(tmp_path):
    gen = _generator()
    assert gen.build(tmp_path / "a.gguf", seed=1) != gen.build(tmp_path / "b.gguf", seed=2)


def test_model_shape_and_tokenizer(tmp_path):
    import gguf

    gen = _generator()
    gen.build(tmp_path / "m.gguf")
    reader = gguf.GGUFReader(str(tmp_path / "m.gguf"))
    fields = reader.fields
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "llama"
    n_vocab = len(fields["tokenizer.ggml.tokens"].data)
    assert n_vocab % 32 == 0 and n_vocab > 259
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "output.weight", "blk.1.ffn_down.weight"} <= names
    assert "tokenizer.chat_template" in fields


def test_second_and_broken_versions_match_the_manifest(tmp_path):
    """The mirror step's other tiny models: another seed, and the first one cut after 64 KiB."""
    spec = importlib.util.spec_from_file_location("mirror_build", REPO / "tools" / "mirror_build.py")
    mirror_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mirror_build)
    manifest = yaml.safe_load((REPO / "roles/_common/defaults/main/downloads.yml").read_text())
    entries = manifest["llm_downloads_collection"]
    gen = _generator()
    for name, how in mirror_build.TINY_GGUF.items():
        out = tmp_path / f"{name}.gguf"
        gen.build(out, seed=how["seed"])
        if "truncate" in how:
            with out.open("r+b") as f:
                f.truncate(how["truncate"])
        assert hashlib.sha256(out.read_bytes()).hexdigest() == entries[name]["sha256"], name
    assert len({entries[n]["sha256"] for n in mirror_build.TINY_GGUF}) == 3
