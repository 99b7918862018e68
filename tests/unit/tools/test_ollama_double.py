"""The Ollama test double (tools/doubles/ollama_double.py) and its mirror step
(tools/mirror_steps/ollama_double.py): OLLAMA_HOST parsing, the streamed and OpenAI-compatible
answers, the queue limit, and the release-shaped tarball and offline model the step packs."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import sys
import tarfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools" / "doubles"))
sys.path.insert(0, str(ROOT / "tools"))
import ollama_double as double  # noqa: E402


def _gguf_bytes():
    import struct

    key, value = b"general.architecture", b"llama"
    return (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
            + struct.pack("<I", 8) + struct.pack("<Q", len(value)) + value + b"\0" * 64)


@pytest.mark.parametrize(("value", "expected"), [
    (None, ("127.0.0.1", 11434)), ("", ("127.0.0.1", 11434)),
    ("0.0.0.0", ("0.0.0.0", 11434)), ("127.0.0.1:8100", ("127.0.0.1", 8100)),  # noqa: S104
    ("http://10.0.0.5:9000/", ("10.0.0.5", 9000)), ("https://example.test", ("example.test", 443)),
    (":8100", ("0.0.0.0", 8100)), ("[::1]:8100", ("::1", 8100)),  # noqa: S104
])
def test_ollama_host_is_parsed_like_envconfig(value, expected):
    assert double.parse_host(value) == expected


def test_keep_alive_durations():
    assert double.keep_alive_seconds("5m") == 300
    assert double.keep_alive_seconds("-1") == float("inf")
    assert double.keep_alive_seconds("1h30m") == 5400
    assert double.keep_alive_seconds("90") == 90


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:0")
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("OLLAMA_DOUBLE_TOKEN_DELAY", "0")
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "1")
    monkeypatch.setenv("OLLAMA_MAX_QUEUE", "1")
    srv = double.make_server()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)

    def call(method, path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data)
        resp = conn.getresponse()
        return resp.status, resp.read()

    data = _gguf_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert call("POST", f"/api/blobs/sha256:{digest}", raw=data)[0] == 201
    status, _ = call("POST", "/api/create", {"model": "tiny", "stream": False,
                                              "files": {"m.gguf": f"sha256:{digest}"},
                                              "system": "Be brief."})
    assert status == 200
    yield srv, call
    conn.close()
    srv.shutdown()
    srv.server_close()


def test_root_version_and_unknown_paths(server):
    _, call = server
    assert call("GET", "/") == (200, b"Ollama is running")
    assert json.loads(call("GET", "/api/version")[1]) == {"version": double.VERSION}
    assert call("GET", "/api/nothing")[0] == 404
    assert call("GET", "/api/chat")[0] == 405


def test_generate_and_chat_streamed_and_not(server):
    _, call = server
    status, body = call("POST", "/api/generate", {"model": "tiny", "prompt": "hi"})
    lines = [json.loads(x) for x in body.decode().splitlines()]
    assert status == 200 and len(lines) > 3 and lines[-1]["done"] and not lines[0]["done"]
    text = "".join(x["response"] for x in lines)
    status, body = call("POST", "/api/generate", {"model": "tiny", "prompt": "hi", "stream": False})
    assert json.loads(body)["response"] == text  # deterministic
    status, body = call("POST", "/api/chat", {"model": "tiny", "stream": False,
                                              "messages": [{"role": "user", "content": "hi"}]})
    answer = json.loads(body)
    assert answer["message"]["role"] == "assistant" and "system: Be brief." in answer["message"]["content"]
    assert call("POST", "/api/chat", {"model": "nope", "messages": []})[0] == 404
    ps = json.loads(call("GET", "/api/ps")[1])["models"]
    assert [m["name"] for m in ps] == ["tiny:latest"]


def test_openai_chat_and_models(server):
    _, call = server
    msgs = [{"role": "user", "content": "hi"}]
    status, body = call("POST", "/v1/chat/completions", {"model": "tiny", "messages": msgs})
    reply = json.loads(body)
    assert status == 200 and reply["object"] == "chat.completion"
    assert reply["choices"][0]["finish_reason"] == "stop"
    status, body = call("POST", "/v1/chat/completions", {"model": "tiny", "messages": msgs, "stream": True})
    events = [e for e in body.decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]" and len(events) > 3
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"
    status, body = call("POST", "/v1/chat/completions", {"model": "nope", "messages": msgs})
    assert status == 404 and "not found" in json.loads(body)["error"]["message"]
    assert call("POST", "/v1/chat/completions", raw=b"{not json")[0] == 400
    assert [m["id"] for m in json.loads(call("GET", "/v1/models")[1])["data"]] == ["tiny:latest"]


def test_busy_server_answers_503(server):
    srv, call = server
    srv.busy = srv.config.num_parallel + srv.config.max_queue
    status, body = call("POST", "/api/generate", {"model": "tiny", "prompt": "hi"})
    srv.busy = 0
    assert status == 503 and "maximum pending requests" in json.loads(body)["error"]


def test_bad_names_digests_and_parameters_are_refused(server):
    _, call = server
    assert call("HEAD", "/api/blobs/sha256:../../x")[0] == 400
    assert call("POST", "/api/show", {"model": "../../etc/passwd"})[0] == 400
    status, body = call("POST", "/api/create", {"model": "x", "from": "tiny", "stream": False,
                                                "parameters": {"bogus": 1}})
    assert status == 400 and "unknown parameter" in json.loads(body)["error"]


def test_mirror_step_packs_a_release_shaped_tarball_and_an_offline_model(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "ollama_double_step", ROOT / "tools" / "mirror_steps" / "ollama_double.py")
    step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(step)
    source = (ROOT / "tools" / "doubles" / "ollama_double.py").read_bytes()
    out = tmp_path / "r.tgz"
    step.pack_release(out, source, "0.32.7")
    again = tmp_path / "r2.tgz"
    step.pack_release(again, source, "0.32.7")
    assert out.read_bytes() == again.read_bytes()  # reproducible
    with tarfile.open(out) as tar:
        names = tar.getnames()
        binary = tar.getmember("bin/ollama")
        assert binary.mode == 0o755
        assert tar.extractfile(binary).read().startswith(b"#!/usr/bin/env python3\n")
    assert "lib/ollama" in names
    manifest, blobs = step.model_files(_gguf_bytes())
    parsed = json.loads(manifest)
    assert parsed["schemaVersion"] == 2
    digests = [parsed["config"]["digest"]] + [la["digest"] for la in parsed["layers"]]
    assert sorted(d.split(":")[1] for d in digests) == sorted(blobs)
    for hexd, data in blobs.items():
        assert hashlib.sha256(data).hexdigest() == hexd
    assert parsed["layers"][0]["mediaType"] == "application/vnd.ollama.image.model"
    assert json.loads(io.BytesIO(blobs[parsed["layers"][2]["digest"][7:]]).read()) == step.PARAMS
