"""The LocalAI test double (tools/doubles/localai_double.py): reads model definitions the way
LocalAI does and answers the API subset the role uses. Started in a thread on loopback."""

from __future__ import annotations

import http.client
import json
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools" / "doubles"))
import localai_double as double  # noqa: E402

KEY = "k" * 40


@pytest.fixture
def models(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "tiny.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    (tmp_path / "notgguf.gguf").write_bytes(b"nope")
    (tmp_path / "loose-model").write_bytes(b"GGUF")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({
        "name": "tiny", "backend": "llama-cpp", "context_size": 2048,
        "parameters": {"model": "weights/tiny.gguf"},
        "template": {"chat": "{{.Input}}\n<|assistant|>\n"}}))
    (tmp_path / "two.yml").write_text(yaml.safe_dump([
        {"name": "broken", "parameters": {"model": "notgguf.gguf"}},
        {"name": "escape", "parameters": {"model": "../etc/passwd"}},
    ]))
    (tmp_path / "abs.yaml").write_text("name: abs\nparameters:\n  model: /etc/passwd\n")
    (tmp_path / "badbackend.yaml").write_text("name: bb\nbackend: ../x\n")
    (tmp_path / ".hidden.yaml").write_text("name: hidden\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "nested.yaml").write_text("name: nested\n")
    return tmp_path


@pytest.fixture
def server(models):
    state = double.State({"LOCALAI_MODELS_PATH": str(models), "LOCALAI_API_KEY": f"other,{KEY}"})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), double.Handler)
    srv.state = state
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _req(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers or {})
    resp = conn.getresponse()
    data = resp.read().decode()
    conn.close()
    return resp.status, data


AUTH = {"Authorization": f"Bearer {KEY}"}


def test_definitions_are_read_like_localai(models):
    configs = double.load_configs(str(models), log=lambda _m: None)
    # top level only, no dotfiles, invalid paths and backends refused, lists of definitions read
    assert sorted(configs) == ["broken", "tiny"]
    assert configs["tiny"]["template"]["chat"] == "{{.Input}}\n<|assistant|>\n"
    # loose files: not directories, YAML or weight files, not those a definition references
    assert double.list_models(str(models), configs) == ["tiny", "broken", "loose-model"]


def test_probes_need_no_key_everything_else_does(server):
    assert _req(server, "GET", "/readyz") == (200, "OK")
    assert _req(server, "GET", "/healthz")[0] == 200
    for method, path in (("GET", "/v1/models"), ("GET", "/metrics"),
                         ("POST", "/v1/chat/completions")):
        status, body = _req(server, method, path, {} if method == "POST" else None)
        assert status == 401 and "authentication key is required" in body
    assert _req(server, "GET", "/v1/models", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert _req(server, "GET", "/v1/models", headers={"x-api-key": KEY})[0] == 200


def test_models_and_chat(server):
    status, body = _req(server, "GET", "/v1/models", headers=AUTH)
    assert status == 200
    assert [m["id"] for m in json.loads(body)["data"]] == ["tiny", "broken", "loose-model"]
    status, body = _req(server, "POST", "/v1/chat/completions", headers=AUTH, body={
        "model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
    reply = json.loads(body)
    assert status == 200 and reply["model"] == "tiny"
    assert reply["choices"][0]["message"]["content"] == "Hello from the LocalAI"
    status, body = _req(server, "POST", "/v1/chat/completions", headers=AUTH,
                        body={"model": "broken", "messages": []})
    assert status == 500 and "not a GGUF file" in body
    status, body = _req(server, "POST", "/v1/chat/completions", headers=AUTH,
                        body={"model": "nope", "messages": []})
    assert status == 500 and "not defined" in body


def test_streamed_chat_is_server_sent_events(server):
    status, body = _req(server, "POST", "/v1/chat/completions", headers=AUTH, body={
        "model": "tiny", "stream": True, "max_tokens": 3,
        "messages": [{"role": "user", "content": "hi"}]})
    events = [line[6:] for line in body.split("\n") if line.startswith("data: ")]
    assert status == 200 and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello from the"


def test_metrics_count_requests(server):
    _req(server, "GET", "/v1/models", headers=AUTH)
    status, body = _req(server, "GET", "/metrics", headers=AUTH)
    assert status == 200
    assert 'localai_double_requests_total{path="/v1/models",status="200"} 1' in body


def test_yaml_subset_reader_matches_to_nice_yaml(monkeypatch):
    doc = {"name": "m", "backend": "llama-cpp", "parameters": {"model": "weights/m.gguf",
           "temperature": 0.2}, "context_size": 2048, "f16": True, "threads": 2,
           "template": {"chat": "{{.Input}}\n<|assistant|> it's \"x\" # y\n"},
           "stopwords": [], "list": [{"a": 1, "b": {"c": [1, 2]}}, {"a": 3}], "e": None,
           "n": "1.5", "t": "true", "q": "yes: no # x"}
    text = yaml.dump(doc, default_flow_style=False, indent=2, sort_keys=True)
    monkeypatch.setitem(sys.modules, "yaml", None)  # as in the image: no PyYAML
    assert double.parse_yaml(text) == doc
    assert double.parse_yaml(json.dumps(doc)) == doc


@pytest.mark.parametrize(("address", "expected"), [
    (":8080", ("0.0.0.0", 8080)), ("127.0.0.1:9000", ("127.0.0.1", 9000)),
    ("[::1]:8080", ("::1", 8080))])
def test_address(address, expected):
    assert double.parse_address(address) == expected
