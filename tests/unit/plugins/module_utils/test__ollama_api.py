"""The ollama_model logic (module_utils/_ollama_api.py): pure helpers, and ensure() against the
Ollama test double (tools/doubles/ollama_double.py) started in-process on loopback."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import threading
from pathlib import Path

import pytest

from ansible_collections.teamllm.stack.plugins.module_utils import _ollama_api as api

ROOT = Path(__file__).resolve().parents[4]
DOUBLE = ROOT / "tools" / "doubles" / "ollama_double.py"


def _load_double():
    spec = importlib.util.spec_from_file_location("ollama_double", DOUBLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gguf(tmp_path):
    """A small file with a GGUF header (general.architecture = llama) and some payload."""
    import struct

    def kv_str(key, value):
        k, v = key.encode(), value.encode()
        return struct.pack("<Q", len(k)) + k + struct.pack("<I", 8) + struct.pack("<Q", len(v)) + v

    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv_str("general.architecture", "llama")
    data += b"\0" * 1000
    path = tmp_path / "model.gguf"
    path.write_bytes(data)
    return path


@pytest.fixture
def server(tmp_path, monkeypatch):
    double = _load_double()
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:0")
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("OLLAMA_DOUBLE_TOKEN_DELAY", "0")
    monkeypatch.delenv("OLLAMA_DOUBLE_REGISTRY", raising=False)
    srv = double.make_server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def client(server):
    return api.Client(f"http://127.0.0.1:{server.server_address[1]}", timeout=10)


def _blob(directory, data):
    digest = hashlib.sha256(data).hexdigest()
    (directory / f"sha256-{digest}").write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


@pytest.fixture
def offline(tmp_path):
    """An offline model: manifest + blobs, laid out as the mirror holds them."""
    folder = tmp_path / "offline"
    folder.mkdir()
    gguf = _gguf(tmp_path).read_bytes()
    model = {"mediaType": api.MT_MODEL, **_blob(folder, gguf)}
    template = {"mediaType": api.MT_TEMPLATE, **_blob(folder, b"{{ .Prompt }}")}
    params = {"mediaType": api.MT_PARAMS,
              **_blob(folder, json.dumps({"num_ctx": 1024, "stop": ["</s>"]}).encode())}
    config = {"mediaType": "application/vnd.docker.container.image.v1+json",
              **_blob(folder, json.dumps({"model_format": "gguf"}).encode())}
    manifest = {"schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": config, "layers": [model, template, params]}
    path = folder / "q8_0"
    path.write_text(json.dumps(manifest))
    return path


# ---- pure helpers


@pytest.mark.parametrize(("name", "expected"), [
    ("tiny", "tiny:latest"), ("tiny:q8_0", "tiny:q8_0"), ("library/tiny", "tiny:latest"),
    ("registry.ollama.ai/library/tiny:1b", "tiny:1b"), ("ns/tiny", "ns/tiny:latest"),
    ("host.example:5000/ns/tiny", "host.example:5000/ns/tiny:latest"),
])
def test_canonical_name(name, expected):
    assert api.canonical_name(name) == expected


def test_show_parameters_parse_as_the_desired_ones_normalize():
    text = 'num_ctx                        4096\nstop                           "<|eot|>"\n' \
           'stop                           "</s>"\ntemperature                    0.7\n' \
           'use_mmap                       true'
    assert api.parse_show_parameters(text) == api.normalize_parameters(
        {"num_ctx": 4096.0, "stop": ["<|eot|>", "</s>"], "temperature": "0.7", "use_mmap": True})


def test_api_parameters_keep_types_and_stop_lists():
    assert api.api_parameters({"num_ctx": "2048", "temperature": "0.5", "stop": "</s>",
                               "use_mmap": "true"}) == {
        "num_ctx": 2048, "temperature": 0.5, "stop": ["</s>"], "use_mmap": True}


def test_create_payload_from_a_model_and_from_files():
    assert api.create_payload("a", source="b:latest", system="S", parameters={"num_ctx": 8}) == {
        "model": "a", "stream": False, "from": "b:latest", "system": "S",
        "parameters": {"num_ctx": 8}}
    body = api.create_payload("a", files={"model.gguf": "sha256:" + "0" * 64}, template="T")
    assert body["files"] == {"model.gguf": "sha256:" + "0" * 64} and body["template"] == "T"
    with pytest.raises(api.OllamaError):
        api.create_payload("a")


def test_desired_state_merges_parameters_and_keeps_the_base():
    base = {"model_digest": "ab", "system": "", "template": "T", "parameters": {"num_ctx": ["1024"]}}
    want = api.desired_state(base, system="S", parameters={"temperature": 0.2})
    assert want == {"model_digest": "ab", "system": "S", "template": "T",
                    "parameters": {"num_ctx": ["1024"], "temperature": ["0.2"]}}
    assert api.differences(None, want) == ["model"]
    assert api.differences(want, want) == []
    assert api.differences(dict(want, system="x"), want) == ["system"]
    # parameters the server adds beyond the desired ones do not count; other values do
    extra = dict(want, parameters={**want["parameters"], "stop": ["<|eot|>"]})
    assert api.differences(extra, want) == []
    other = dict(want, parameters={**want["parameters"], "temperature": ["0.3"]})
    assert api.differences(other, want) == ["parameters"]


def test_verify_blobs_refuses_a_tampered_blob(offline):
    manifest = api.read_manifest(offline)
    assert len(api.verify_blobs(manifest, offline.parent)) == 4
    model = offline.parent / f"sha256-{api.digest_hex(manifest['layers'][0]['digest'])}"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(api.OllamaError, match="does not match its digest"):
        api.verify_blobs(manifest, offline.parent)


def test_read_manifest_refuses_what_is_not_one(tmp_path):
    (tmp_path / "m").write_text('{"layers": []}')
    with pytest.raises(api.OllamaError, match="not an Ollama manifest"):
        api.read_manifest(tmp_path / "m")


def test_digest_hex_refuses_path_traversal():
    with pytest.raises(api.OllamaError):
        api.digest_hex("sha256:../../etc/passwd")


# ---- against the double


def test_import_create_idempotence_and_delete(client, offline):
    spec = {"name": "teamllm-tiny:q8_0", "manifest": str(offline)}
    checked = api.ensure(client, spec, check_mode=True)
    assert checked["changed"] and client.tags() == []
    first = api.ensure(client, spec)
    assert first["changed"] and client.tags() == ["teamllm-tiny:q8_0"]
    assert api.ensure(client, spec)["changed"] is False
    assert api.ensure(client, spec, check_mode=True)["changed"] is False

    custom = {"name": "pirate", "from": "teamllm-tiny:q8_0", "system": "Talk like a pirate.",
              "parameters": {"temperature": 0.7, "num_ctx": 512}}
    assert api.ensure(client, custom, check_mode=True)["changed"] is True
    assert "pirate:latest" not in client.tags()
    assert api.ensure(client, custom)["changed"] is True
    assert api.ensure(client, custom)["changed"] is False
    shown = api.model_state(client.show("pirate"))
    assert shown["system"] == "Talk like a pirate."
    assert shown["parameters"] == {"num_ctx": ["512"], "stop": ["</s>"], "temperature": ["0.7"]}
    assert shown["template"] == "{{ .Prompt }}"

    changed = api.ensure(client, dict(custom, system="Talk like a sailor."))
    assert changed["changed"] and changed["diff"]["before"]["system"] == "Talk like a pirate."

    absent = {"name": "pirate", "state": "absent"}
    assert api.ensure(client, absent, check_mode=True)["changed"] is True
    assert "pirate:latest" in client.tags()
    assert api.ensure(client, absent)["changed"] is True
    assert api.ensure(client, absent)["changed"] is False
    assert client.tags() == ["teamllm-tiny:q8_0"]


def test_tampered_offline_copy_leaves_the_models_dir_untouched(client, offline, server):
    manifest = api.read_manifest(offline)
    model = offline.parent / f"sha256-{api.digest_hex(manifest['layers'][0]['digest'])}"
    model.write_bytes(model.read_bytes()[:-1] + b"X")
    blobs = Path(server.config.models) / "blobs"
    before = sorted(p.name for p in blobs.iterdir())
    with pytest.raises(api.OllamaError, match="corrupt"):
        api.ensure(client, {"name": "bad", "manifest": str(offline)})
    assert client.tags() == []
    assert sorted(p.name for p in blobs.iterdir()) == before


def test_the_server_refuses_a_blob_that_does_not_match_its_digest(client, tmp_path):
    path = tmp_path / "b"
    path.write_bytes(b"not what the digest says")
    with pytest.raises(api.OllamaError, match="digest mismatch") as err:
        client.push_blob("0" * 64, str(path))
    assert err.value.status == 400


def test_pull_offline_fails_with_the_registry_message(client):
    with pytest.raises(api.OllamaError, match="pull model manifest"):
        api.ensure(client, {"name": "llama3.1:8b"})
    assert api.ensure(client, {"name": "llama3.1:8b"}, check_mode=True)["changed"] is True


def test_pull_from_the_doubles_registry_streams_status_lines(tmp_path, monkeypatch, offline):
    # a registry laid out as a models dir, filled by importing into a first server
    double = _load_double()
    registry = tmp_path / "registry"
    (registry / "blobs").mkdir(parents=True)
    manifest = api.read_manifest(offline)
    for hexd in api.manifest_digests(manifest):
        shutil.copy(offline.parent / f"sha256-{hexd}", registry / "blobs" / f"sha256-{hexd}")
    target = registry / "manifests" / "registry.ollama.ai" / "library" / "tiny" / "latest"
    target.parent.mkdir(parents=True)
    shutil.copy(offline, target)
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:0")
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "m2"))
    monkeypatch.setenv("OLLAMA_DOUBLE_REGISTRY", str(registry))
    srv = double.make_server()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        c = api.Client(f"http://127.0.0.1:{srv.server_address[1]}", timeout=10)
        result = api.ensure(c, {"name": "tiny"})
        assert result["changed"] and result["pull"][0] == "pulling manifest"
        assert result["pull"][-1] == "success"
        assert c.tags() == ["tiny:latest"]
        assert api.ensure(c, {"name": "tiny"})["changed"] is False
    finally:
        srv.shutdown()
        srv.server_close()


def test_modelfile_data_on_a_pulled_model_is_refused(client):
    with pytest.raises(api.OllamaError, match="need a base"):
        api.ensure(client, {"name": "x", "system": "S"})


def test_from_a_missing_base_fails_naming_it(client):
    with pytest.raises(api.OllamaError, match="base model nothere:latest"):
        api.ensure(client, {"name": "x", "from": "nothere"})


def test_unreachable_server_fails_except_in_check_mode():
    c = api.Client("http://127.0.0.1:9", timeout=2)
    with pytest.raises(api.Unreachable):
        api.ensure(c, {"name": "x", "from": "y"})
    assert api.ensure(c, {"name": "x", "from": "y"}, check_mode=True)["changed"] is True


def test_every_request_goes_through_ansible_open_url(client, tmp_path, monkeypatch):
    """ansible-test's replace-urlopen: the client uses ansible.module_utils.urls.open_url
    (proxies and TLS validation as every Ansible module has them), uploads included."""
    calls = []

    def recording(url, **kwargs):
        calls.append((kwargs.get("method"), url.split("/api/", 1)[1]))
        return api_open_url(url, **kwargs)

    api_open_url = api.open_url
    monkeypatch.setattr(api, "open_url", recording)
    assert client.version()
    blob = tmp_path / "blob"
    blob.write_bytes(b"layer")
    hexd = hashlib.sha256(b"layer").hexdigest()
    client.push_blob(hexd, blob)
    assert client.has_blob(hexd)
    assert calls == [("GET", "version"), ("POST", f"blobs/sha256:{hexd}"), ("HEAD", f"blobs/sha256:{hexd}")]
