#!/usr/bin/env python3
"""A TEST DOUBLE of LocalAI: not LocalAI, no inference.

LocalAI's binaries and container images cannot be had on the machines this collection is built
and tested on, so the lab serves this stand-in instead, installed through exactly the same path
as the real image (manifest entry -> checksum -> `docker load` -> container). It speaks the
subset of LocalAI's HTTP API that the `teamllm.stack.localai` role and the gateway use, and it
reads its settings and the model definitions the way LocalAI does:

- settings from the environment: LOCALAI_MODELS_PATH / MODELS_PATH (default /models, else
  /build/models), LOCALAI_ADDRESS / ADDRESS (default ":8080"), LOCALAI_API_KEY / API_KEY (a
  comma-separated list; empty: no authentication), LOCALAI_THREADS / THREADS,
  LOCALAI_CONTEXT_SIZE / CONTEXT_SIZE, LOCALAI_DISABLE_METRICS_ENDPOINT;
- model definitions: every top-level `*.yaml` / `*.yml` file of the models path that does not
  start with a dot (not recursive), each holding one definition or a list of them; a definition
  is refused, as LocalAI's Validate() refuses it, when `backend` is not [A-Za-z0-9_-]+ or when
  `parameters.model` is absolute or contains "..";
- `/v1/models` lists the definitions' names, then the loose files of the models path that no
  definition references (LocalAI's SKIP_IF_CONFIGURED policy; directories, YAML, templates and
  weight files such as .gguf are never listed as loose files);
- the model file is "loaded" on the first request for a model: it must exist under the models
  path and start with the GGUF magic, or the request fails with 500 as LocalAI's would.

Endpoints: GET /readyz and /healthz (no key needed, as in LocalAI), GET /v1/models and
/models, POST /v1/chat/completions and /chat/completions (with `"stream": true`: server-sent
events of chat.completion.chunk objects ending in `data: [DONE]`), GET /metrics (Prometheus
text; the metric names are the double's own). With API keys set, every other path needs one in
`Authorization: Bearer`, `x-api-key` or `xi-api-key` (as LocalAI accepts them) or gets 401.

Stdlib only (the node image has no PyYAML): a small reader for the block-YAML subset that
Ansible's to_nice_yaml writes, or JSON. Run: python3 localai_double.py
"""

from __future__ import annotations

import hmac
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "double-1"
GGUF_MAGIC = b"GGUF"
BACKEND_RE = re.compile(r"^[a-zA-Z0-9-_]+$")
NO_AUTH_PREFIXES = ("/readyz", "/healthz", "/static/", "/favicon.svg")
# LocalAI's ListFilesInModelPath skips these names and suffixes.
SKIP_FILES = ("model_card", "readme", "readme.md")
SKIP_SUFFIXES = (".tmpl", ".keep", ".yaml", ".yml", ".json", ".txt", ".pt", ".onnx", ".md",
                 ".ds_store", ".", ".safetensors", ".bin", ".gguf", ".ggml", ".ckpt", ".zip",
                 ".tag", ".bak", ".partial", ".tar.gz")


# --------------------------------------------------------------------------------------------
# A reader for the YAML subset of model definitions (block mappings and sequences, plain and
# quoted scalars, literal/folded block scalars, empty or simple flow collections).


class YamlError(ValueError):
    pass


def _scalar(text: str):
    text = text.strip()
    if text == "" or text in ("~", "null", "Null", "NULL"):
        return None
    if text[0] in "\"'":
        if text[0] == '"':
            return json.loads(text)
        return text[1:-1].replace("''", "'")
    if text[0] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            inner = text[1:-1].strip()
            if text[0] == "[":
                return [_scalar(p) for p in inner.split(",")] if inner else []
            raise YamlError(f"unsupported flow mapping: {text}") from None
    if text in ("true", "True", "TRUE", "yes", "on"):
        return True
    if text in ("false", "False", "FALSE", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _open_quote(line: str) -> str | None:
    """The quote character left open at the end of ``line`` (a value's quoted scalar)."""
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote == '"' and ch == "\\":
            i += 2
            continue
        if quote:
            if ch == quote:
                if quote == "'" and line[i + 1:i + 2] == "'":
                    i += 2
                    continue
                quote = None
        elif ch in "\"'" and (i == 0 or line[i - 1] in " \t:-[,"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return None
        i += 1
    return quote


def _join_quoted(raw: list[str]) -> list[str]:
    """Fold multi-line quoted scalars onto one line (a newline per blank line, else a space),
    keeping one entry per raw line so that line numbers and block scalars stay right."""
    out, i = [], 0
    while i < len(raw):
        line = raw[i]
        quote = _open_quote(line)
        if quote is None:
            out.append(line)
            i += 1
            continue
        text, j, pending = line.rstrip(), i + 1, ""
        while j < len(raw):
            part = raw[j].strip()
            j += 1
            if not part:
                pending += "\\n" if quote == '"' else "\n"
                continue
            text += pending if pending else " "
            pending = ""
            text += part
            if _open_quote(text) is None:
                break
        out.append(text)
        out.extend([""] * (j - i - 1))
        i = j
    return out


def parse_yaml(text: str):
    """Parse one YAML document of the supported subset (or JSON)."""
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        return json.loads(stripped)
    try:  # the real thing when it is there
        import yaml  # type: ignore[import-not-found]

        return yaml.safe_load(text)
    except ImportError:
        pass
    raw = _join_quoted(text.split("\n"))
    lines = []  # (indent, content, index in raw)
    for idx, line in enumerate(raw):
        if line.strip() in ("---", "...") and not line.startswith(" "):
            continue
        content = _strip_comment(line)
        if content.strip():
            lines.append((len(content) - len(content.lstrip(" ")), content.strip(), idx))
    pos = 0

    def block_scalar(style, indent, raw_index):
        nonlocal pos
        body = []
        while pos < len(lines) and lines[pos][0] > indent:
            pos += 1
        last = lines[pos - 1][2] if pos > 0 else raw_index
        chunk = raw[raw_index + 1:last + 1]
        width = min((len(x) - len(x.lstrip(" ")) for x in chunk if x.strip()), default=0)
        body = [x[width:] for x in chunk]
        if style.startswith(">"):
            return " ".join(b.strip() for b in body if b.strip()) + "\n"
        out = "\n".join(body)
        return out if style.startswith("|-") else out + "\n"

    def value_after(rest, indent, raw_index):
        nonlocal pos
        if rest.startswith(("|", ">")):
            return block_scalar(rest, indent, raw_index)
        if rest:
            return _scalar(rest)
        if pos < len(lines) and (lines[pos][0] > indent
                                 or (lines[pos][0] == indent and lines[pos][1].startswith("- "))):
            return node(lines[pos][0])
        return None

    def node(indent):
        nonlocal pos
        if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
            seq = []
            while pos < len(lines) and lines[pos][0] == indent and lines[pos][1][:1] == "-":
                _, content, raw_index = lines[pos]
                item = content[1:].strip()
                pos += 1
                if not item:
                    seq.append(node(lines[pos][0]) if pos < len(lines) and lines[pos][0] > indent else None)
                elif re.match(r"^[^\"'\[{][^:]*:(\s|$)", item):
                    # a mapping starting on the dash line: re-read it at the item's indent
                    inner = indent + len(content) - len(content[1:].lstrip(" "))
                    lines.insert(pos, (inner, item, raw_index))
                    seq.append(node(inner))
                else:
                    seq.append(_scalar(item))
            return seq
        mapping = {}
        while pos < len(lines) and lines[pos][0] == indent:
            _, content, raw_index = lines[pos]
            match = re.match(r"^(\"[^\"]*\"|'[^']*'|[^:]+?):(?:\s+(.*))?$", content, re.DOTALL)
            if not match:
                raise YamlError(f"line {raw_index + 1}: expected 'key: value', got {content!r}")
            key = _scalar(match.group(1))
            pos += 1
            mapping[key] = value_after((match.group(2) or "").strip(), indent, raw_index)
        if pos < len(lines) and lines[pos][0] > indent:
            raise YamlError(f"line {lines[pos][2] + 1}: unexpected indentation")
        return mapping

    if not lines:
        return None
    result = node(lines[0][0])
    if pos != len(lines):
        raise YamlError(f"line {lines[pos][2] + 1}: unexpected content")
    return result


# --------------------------------------------------------------------------------------------
# Model definitions


def validate(config: dict) -> str | None:
    """None when LocalAI would accept the definition, else why not."""
    if not isinstance(config, dict) or not config.get("name"):
        return "a model definition needs a name"
    params = config.get("parameters") or {}
    model = str(params.get("model") or "")
    for target in (str(config.get("backend") or ""), model, str(config.get("mmproj") or "")):
        if target and (target.startswith("/") or ".." in target):
            return f"invalid file path: {target}"
    backend = str(config.get("backend") or "")
    if backend and not BACKEND_RE.match(backend):
        return f"invalid backend name: {backend}"
    return None


def load_configs(models_path: str, log=print) -> dict:
    configs = {}
    try:
        names = sorted(os.listdir(models_path))
    except OSError as exc:
        log(f"cannot read models path {models_path}: {exc}")
        return configs
    for name in names:
        ext = os.path.splitext(name)[1].lower()
        if ext not in (".yaml", ".yml") or name.startswith("."):
            continue
        path = os.path.join(models_path, name)
        try:
            with open(path, encoding="utf-8") as f:
                data = parse_yaml(f.read())
        except (OSError, ValueError) as exc:
            log(f"cannot read config file {name}: {exc}")
            continue
        for config in data if isinstance(data, list) else [data]:
            problem = validate(config)
            if problem:
                log(f"config {name} is not valid: {problem}")
                continue
            configs[str(config["name"])] = config
    return configs


def loose_files(models_path: str) -> list[str]:
    result = []
    for entry in sorted(os.scandir(models_path), key=lambda e: e.name):
        low = entry.name.lower()
        if low in SKIP_FILES or low.endswith(SKIP_SUFFIXES) or ".bak" in low or entry.is_dir():
            continue
        result.append(entry.name)
    return result


def list_models(models_path: str, configs: dict) -> list[str]:
    referenced = {str((c.get("parameters") or {}).get("model") or "") for c in configs.values()}
    names = list(configs)
    names += [f for f in loose_files(models_path) if f not in referenced]
    return names


# --------------------------------------------------------------------------------------------
# Server


class State:
    def __init__(self, env):
        self.models_path = (env.get("LOCALAI_MODELS_PATH") or env.get("MODELS_PATH")
                            or ("/models" if os.path.isdir("/models") else "/build/models"))
        keys = env.get("LOCALAI_API_KEY") or env.get("API_KEY") or ""
        self.api_keys = [k.strip() for k in keys.split(",") if k.strip()]
        self.threads = int(env.get("LOCALAI_THREADS") or env.get("THREADS") or 0)
        self.context_size = int(env.get("LOCALAI_CONTEXT_SIZE") or env.get("CONTEXT_SIZE") or 0)
        self.metrics = str(env.get("LOCALAI_DISABLE_METRICS_ENDPOINT")
                           or env.get("DISABLE_METRICS_ENDPOINT") or "").lower() not in ("1", "true")
        self.configs = load_configs(self.models_path, log)
        self.loaded = {}
        self.lock = threading.Lock()
        self.counts = {}
        self.started = time.time()

    def count(self, path, status):
        with self.lock:
            key = (path, status)
            self.counts[key] = self.counts.get(key, 0) + 1

    def load(self, name):
        """The model's definition once its file is found and looks like GGUF, else an error."""
        config = self.configs.get(name)
        if config is None:
            return None, f"could not load model: model {name} is not defined in {self.models_path}"
        with self.lock:
            if name in self.loaded:
                return config, None
        rel = str((config.get("parameters") or {}).get("model") or "")
        path = os.path.join(self.models_path, rel)
        try:
            with open(path, "rb") as f:
                magic = f.read(4)
        except OSError as exc:
            return None, f"could not load model {name}: {exc}"
        if magic != GGUF_MAGIC:
            return None, f"could not load model {name}: {rel} is not a GGUF file"
        with self.lock:
            self.loaded[name] = path
        log(f"loaded model {name} from {rel} (backend {config.get('backend') or 'auto'}, "
            f"context_size {config.get('context_size')}, gpu_layers {config.get('gpu_layers')}, "
            f"threads {config.get('threads') or self.threads})")
        return config, None


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} localai-double: {msg}", file=sys.stderr, flush=True)


def reply_text(model, messages, max_tokens):
    last = ""
    for message in messages or []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            last = content if isinstance(content, str) else json.dumps(content)
    words = ["Hello", "from", "the", "LocalAI", "test", "double", "serving", model + ".",
             "You", "said:"] + last.split()[:8]
    return words[:max(1, int(max_tokens))]


class Handler(BaseHTTPRequestHandler):
    server_version = f"LocalAI-double/{VERSION}"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # no request logging: keys never reach a log
        pass

    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def _send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else (
            json.dumps(body) if not isinstance(body, str) else body).encode()
        # counted before the client can read the answer, so a /metrics request it sends next
        # (on another server thread) always sees this one
        self.state.count(self.path.split("?")[0], status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, message, kind="invalid_request_error"):
        self._send(status, {"error": {"code": status, "message": message, "type": kind}})

    def _authorized(self):
        path = self.path.split("?")[0]
        if not self.state.api_keys or path.startswith(NO_AUTH_PREFIXES):
            return True
        auth = self.headers.get("Authorization", "")
        given = [auth[7:].strip()] if auth.lower().startswith("bearer ") else []
        given += [self.headers.get(h, "") for h in ("x-api-key", "xi-api-key")]
        for key in given:
            for valid in self.state.api_keys:
                if key and hmac.compare_digest(key.encode(), valid.encode()):
                    return True
        self._error(401, "An authentication key is required")
        return False

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self.path.split("?")[0]
        if path in ("/readyz", "/healthz"):
            return self._send(200, "OK", "text/plain")
        if not self._authorized():
            return None
        if path in ("/v1/models", "/models"):
            names = list_models(self.state.models_path, self.state.configs)
            return self._send(200, {"object": "list",
                                    "data": [{"id": n, "object": "model"} for n in names]})
        if path == "/metrics" and self.state.metrics:
            return self._send(200, self._metrics(), "text/plain; version=0.0.4")
        return self._error(404, f"Cannot GET {path}")

    def _metrics(self):
        lines = ["# HELP localai_double_requests_total Requests answered, by path and status.",
                 "# TYPE localai_double_requests_total counter"]
        with self.state.lock:
            for (path, status), n in sorted(self.state.counts.items()):
                lines.append(f'localai_double_requests_total{{path="{path}",status="{status}"}} {n}')
            loaded = len(self.state.loaded)
        lines += ["# HELP localai_double_models_loaded Models loaded.",
                  "# TYPE localai_double_models_loaded gauge",
                  f"localai_double_models_loaded {loaded}",
                  "# HELP localai_double_models_defined Model definitions read at start.",
                  "# TYPE localai_double_models_defined gauge",
                  f"localai_double_models_defined {len(self.state.configs)}"]
        return "\n".join(lines) + "\n"

    def do_POST(self):  # noqa: N802
        path = self.path.split("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if not self._authorized():
            return None
        if path not in ("/v1/chat/completions", "/chat/completions"):
            return self._error(404, f"Cannot POST {path}")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return self._error(400, "invalid JSON body")
        if not isinstance(request, dict) or not request.get("model"):
            return self._error(400, "a model is required")
        config, problem = self.state.load(str(request["model"]))
        if problem:
            return self._error(500, problem, "server_error")
        words = reply_text(str(request["model"]), request.get("messages"),
                           request.get("max_tokens") or 16)
        created, rid = int(time.time()), f"chatcmpl-{uuid.uuid4()}"
        usage = {"prompt_tokens": 8, "completion_tokens": len(words),
                 "total_tokens": 8 + len(words)}
        if not request.get("stream"):
            return self._send(200, {
                "id": rid, "object": "chat.completion", "created": created,
                "model": config["name"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": " ".join(words)}}],
                "usage": usage})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(delta, finish=None):
            chunk = {"id": rid, "object": "chat.completion.chunk", "created": created,
                     "model": config["name"],
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        event({"role": "assistant", "content": ""})
        for i, word in enumerate(words):
            time.sleep(0.05)
            event({"content": (" " if i else "") + word})
        event({}, "stop")
        self.state.count(path, 200)  # before the client sees the end of the stream
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        return None


def parse_address(address: str):
    host, _, port = address.rpartition(":")
    return (host.strip("[]") or "0.0.0.0"), int(port or 8080)  # noqa: S104 (LocalAI's default)


def main(env=None):
    env = dict(os.environ if env is None else env)
    state = State(env)
    host, port = parse_address(env.get("LOCALAI_ADDRESS") or env.get("ADDRESS") or ":8080")
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.state = state  # type: ignore[attr-defined]

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"LocalAI TEST DOUBLE {VERSION} on {host}:{port}, models path {state.models_path}, "
        f"{len(state.configs)} model definitions ({', '.join(sorted(state.configs)) or 'none'}), "
        f"API keys {'on' if state.api_keys else 'OFF'}")
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
