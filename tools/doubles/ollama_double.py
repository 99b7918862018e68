#!/usr/bin/env python3
# Copyright: teamllm.stack contributors
# Apache License 2.0
"""A TEST DOUBLE of the Ollama server (not Ollama): a single-file, stdlib-only HTTP server that
speaks the part of Ollama's HTTP API that the collection's `ollama` role and
`teamllm.stack.ollama_model` module use, so they can be tested where Ollama's binary cannot be
had. It generates no language: every answer is deterministic text derived from the request.

    ollama serve            # reads OLLAMA_HOST, OLLAMA_MODELS, OLLAMA_NUM_PARALLEL,
                            # OLLAMA_MAX_QUEUE, OLLAMA_KEEP_ALIVE, OLLAMA_CONTEXT_LENGTH, ...
    ollama --version

What behaves like Ollama (docs/api.md, server/routes.go of ollama/ollama):
- OLLAMA_HOST parsing (default 127.0.0.1:11434) and the models directory layout:
  manifests/<host>/<namespace>/<model>/<tag> (schema 2 JSON) + blobs/sha256-<hex>.
- GET / ("Ollama is running"), GET /api/version, GET /api/tags, POST /api/show,
  POST /api/pull (streamed NDJSON status lines, or one object with stream=false),
  POST /api/create (model, from, files {name: digest}, system, template, parameters, license),
  HEAD/POST /api/blobs/:digest (digest checked; 400 on mismatch or a malformed digest),
  DELETE /api/delete, GET /api/ps, POST /api/generate and /api/chat (NDJSON stream or one
  object), POST /v1/chat/completions (SSE when stream=true), GET /v1/models.
- Unknown models answer 404 {"error": "model 'x' not found"}; more requests than
  OLLAMA_NUM_PARALLEL + OLLAMA_MAX_QUEUE answer 503.
- $HOME/.ollama/id_ed25519 is created at start (the real server writes its key there), so a
  unit without a writable HOME fails as the real one does.

Double-only knobs: OLLAMA_DOUBLE_REGISTRY (a directory laid out like a models dir that
/api/pull copies from; without it a pull fails as an offline Ollama does),
OLLAMA_DOUBLE_TOKEN_DELAY (seconds between streamed pieces, default 0.02),
OLLAMA_DOUBLE_VERSION (the version reported, default below).
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import hashlib
import json
import os
import re
import signal
import struct
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VERSION = os.environ.get("OLLAMA_DOUBLE_VERSION", "0.32.7")
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_MODEL = "application/vnd.ollama.image.model"
MT_TEMPLATE = "application/vnd.ollama.image.template"
MT_SYSTEM = "application/vnd.ollama.image.system"
MT_PARAMS = "application/vnd.ollama.image.params"
MT_LICENSE = "application/vnd.ollama.image.license"
DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,79}$")
# Parameters a Modelfile / the create API accepts (api.Options and runner options).
PARAMS = {
    "num_keep": int, "seed": int, "num_predict": int, "top_k": int, "top_p": float,
    "min_p": float, "repeat_last_n": int, "temperature": float,
    "repeat_penalty": float, "presence_penalty": float, "frequency_penalty": float,
    "stop": str, "num_ctx": int, "num_batch": int, "num_gpu": int, "main_gpu": int,
    "use_mmap": bool, "num_thread": int, "mirostat": int, "mirostat_tau": float,
    "mirostat_eta": float, "tfs_z": float, "penalize_newline": bool,
}
WORDS = ("the", "tiny", "model", "answers", "from", "a", "test", "double", "of", "ollama",
         "with", "deterministic", "words", "for", "every", "prompt")


def log(level: str, msg: str, **kv) -> None:
    extra = " ".join(f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in kv.items())
    now = _dt.datetime.now().astimezone().isoformat(timespec="milliseconds")
    print(f"time={now} level={level} source=ollama_double.py msg={json.dumps(msg)} {extra}".rstrip(),
          file=sys.stderr, flush=True)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# Configuration, as envconfig reads it


def parse_host(value: str | None) -> tuple[str, int]:
    """OLLAMA_HOST as envconfig.Host() reads it: [scheme://]host[:port], default 127.0.0.1:11434."""
    value = (value or "").strip().strip("\"'").strip()
    scheme, sep, hostport = value.partition("://")
    default_port = 11434
    if not sep:
        hostport = value
    elif scheme == "http":
        default_port = 80
    elif scheme == "https":
        default_port = 443
    hostport = hostport.rstrip("/")
    host, port = "127.0.0.1", default_port
    if hostport.startswith("["):
        inner, _, rest = hostport[1:].partition("]")
        host = inner
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif hostport.count(":") == 1:
        h, p = hostport.split(":")
        host = h or "0.0.0.0"  # noqa: S104 - ":port" means all interfaces, as in Ollama
        if p.isdigit() and int(p) <= 65535:
            port = int(p)
    elif hostport:
        host = hostport
    return host, port


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "").strip().strip("\"'") or default)
    except ValueError:
        log("ERROR", "invalid setting, ignoring", **{name: os.environ.get(name, "")})
        return default


def env_bool(name: str) -> bool:
    return os.environ.get(name, "").strip().strip("\"'").lower() in ("1", "true", "t", "yes")


def keep_alive_seconds(value: str | None) -> float:
    """OLLAMA_KEEP_ALIVE / keep_alive: seconds ("300", "5m", "1h"), negative = forever."""
    if value is None or value == "":
        return 300.0
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
        total, matched = 0.0, False
        for number, unit in re.findall(r"(-?[0-9.]+)(ms|s|m|h)", text):
            total += float(number) * units[unit]
            matched = True
        seconds = total if matched else 300.0
    return float("inf") if seconds < 0 else seconds


class Config:
    def __init__(self) -> None:
        self.host, self.port = parse_host(os.environ.get("OLLAMA_HOST"))
        models = os.environ.get("OLLAMA_MODELS")
        self.models = Path(models) if models else Path.home() / ".ollama" / "models"
        self.num_parallel = env_int("OLLAMA_NUM_PARALLEL", 1) or 1
        self.max_queue = env_int("OLLAMA_MAX_QUEUE", 512)
        self.max_loaded = env_int("OLLAMA_MAX_LOADED_MODELS", 0)
        self.context_length = env_int("OLLAMA_CONTEXT_LENGTH", 4096)
        self.keep_alive = keep_alive_seconds(os.environ.get("OLLAMA_KEEP_ALIVE"))
        self.flash_attention = env_bool("OLLAMA_FLASH_ATTENTION")
        self.kv_cache_type = os.environ.get("OLLAMA_KV_CACHE_TYPE", "")
        self.sched_spread = env_bool("OLLAMA_SCHED_SPREAD")
        self.noprune = bool(os.environ.get("OLLAMA_NOPRUNE"))
        self.registry = os.environ.get("OLLAMA_DOUBLE_REGISTRY") or ""
        self.delay = float(os.environ.get("OLLAMA_DOUBLE_TOKEN_DELAY", "0.02"))

    def as_env(self) -> dict:
        return {
            "OLLAMA_HOST": f"http://{self.host}:{self.port}", "OLLAMA_MODELS": str(self.models),
            "OLLAMA_NUM_PARALLEL": self.num_parallel, "OLLAMA_MAX_QUEUE": self.max_queue,
            "OLLAMA_MAX_LOADED_MODELS": self.max_loaded,
            "OLLAMA_CONTEXT_LENGTH": self.context_length,
            "OLLAMA_KEEP_ALIVE": "forever" if self.keep_alive == float("inf") else self.keep_alive,
            "OLLAMA_FLASH_ATTENTION": self.flash_attention,
            "OLLAMA_KV_CACHE_TYPE": self.kv_cache_type, "OLLAMA_SCHED_SPREAD": self.sched_spread,
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        }


# --------------------------------------------------------------------------------------------
# Names and the models directory


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_name(name: str) -> tuple[str, str, str, str]:
    """host, namespace, model, tag of a model name such as `llama3.1:8b` or `ns/model`."""
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "model is required")
    text = name.strip()
    for scheme in ("http://", "https://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    tag = DEFAULT_TAG
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
    parts = text.split("/")
    if len(parts) == 1:
        host, namespace, model = DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0]
    elif len(parts) == 2:
        host, (namespace, model) = DEFAULT_HOST, parts
    elif len(parts) == 3:
        host, namespace, model = parts
    else:
        raise ApiError(400, f"invalid model name {name!r}")
    if not (PART.match(model) and PART.match(namespace) and TAG.match(tag)
            and re.match(r"^[A-Za-z0-9][A-Za-z0-9.:_-]{0,349}$", host)):
        raise ApiError(400, f"invalid model name {name!r}")
    return host, namespace, model, tag


def display_name(parts: tuple[str, str, str, str]) -> str:
    host, namespace, model, tag = parts
    if host == DEFAULT_HOST and namespace == DEFAULT_NAMESPACE:
        return f"{model}:{tag}"
    if host == DEFAULT_HOST:
        return f"{namespace}/{model}:{tag}"
    return f"{host}/{namespace}/{model}:{tag}"


def digest_hex(digest: str) -> str:
    match = DIGEST.match(str(digest or ""))
    if not match:
        raise ApiError(400, "invalid digest format")
    return match.group(1)


class Store:
    """The models directory, laid out as Ollama lays it out."""

    def __init__(self, root: Path):
        self.root = root
        self.blobs = root / "blobs"
        self.manifests = root / "manifests"
        self.lock = threading.RLock()

    def init(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: str) -> Path:
        return self.blobs / f"sha256-{digest_hex(digest)}"

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_blob_stream(self, digest: str, stream, length: int) -> None:
        """Write a blob from a stream; kept only when its sha256 is the digest."""
        want = digest_hex(digest)
        h = hashlib.sha256()
        self.init()
        fd, tmp = tempfile.mkstemp(prefix="sha256-", suffix="-partial", dir=self.blobs)
        try:
            with os.fdopen(fd, "wb") as out:
                remaining = length
                while remaining > 0:
                    chunk = stream.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    h.update(chunk)
                    out.write(chunk)
                    remaining -= len(chunk)
            got = h.hexdigest()
            if got != want:
                raise ApiError(400, f'digest mismatch, expected "sha256:{want}", got "sha256:{got}"')
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.blobs / f"sha256-{want}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_blob_bytes(self, data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        path = self.blobs / f"sha256-{digest}"
        if not path.exists():
            self.init()
            tmp = path.with_name(path.name + "-partial")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    def manifest_path(self, name: str) -> Path:
        host, namespace, model, tag = parse_name(name)
        return self.manifests / host / namespace / model / tag

    def read_manifest(self, name: str) -> dict | None:
        path = self.manifest_path(name)
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    def write_manifest(self, name: str, manifest: dict) -> None:
        path = self.manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, path)

    def list_models(self) -> list[tuple[str, Path]]:
        found = []
        if not self.manifests.is_dir():
            return found
        for path in sorted(self.manifests.glob("*/*/*/*")):
            if path.is_file() and not path.name.endswith(".tmp"):
                host, namespace, model, tag = path.relative_to(self.manifests).parts
                try:
                    found.append((display_name((host, namespace, model, tag)), path))
                except ApiError:
                    continue
        return found

    def delete(self, name: str) -> None:
        path = self.manifest_path(name)
        if not path.is_file():
            raise ApiError(404, f"model '{name}' not found")
        path.unlink()
        for parent in list(path.parents)[:2]:
            try:
                parent.rmdir()
            except OSError:
                break

    def prune(self) -> None:
        """Remove blobs no manifest references (Ollama does this unless OLLAMA_NOPRUNE)."""
        used = set()
        for _, path in self.list_models():
            manifest = json.loads(path.read_text())
            for layer in [manifest.get("config", {}), *manifest.get("layers", [])]:
                if layer.get("digest"):
                    used.add("sha256-" + digest_hex(layer["digest"]))
        if self.blobs.is_dir():
            for blob in self.blobs.iterdir():
                if blob.name.startswith("sha256-") and blob.name not in used:
                    blob.unlink()


# --------------------------------------------------------------------------------------------
# GGUF header (enough to fill in details: architecture and file type)

_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
              10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
              16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K"}


def gguf_info(path: Path) -> dict:
    """general.* keys of a GGUF file; raises ApiError when it is not one."""
    info = {}
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ApiError(400, "invalid file magic")
        version, _tensors, kv_count = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            raise ApiError(400, "unsupported GGUF version")

        def read_str() -> str:
            (n,) = struct.unpack("<Q", f.read(8))
            return f.read(n).decode("utf-8", "replace")

        def read_value(kind: int):
            if kind == 8:
                return read_str()
            if kind == 9:
                item_kind, count = struct.unpack("<IQ", f.read(12))
                if item_kind in _GGUF_SCALARS and count > 64:
                    f.seek(struct.calcsize(_GGUF_SCALARS[item_kind]) * count, 1)
                    return None
                return [read_value(item_kind) for _ in range(count)][:64]
            fmt = _GGUF_SCALARS[kind]
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        for _ in range(min(kv_count, 4096)):
            key = read_str()
            (kind,) = struct.unpack("<I", f.read(4))
            value = read_value(kind)
            if key.startswith("general.") or key.endswith((".context_length", ".block_count")):
                info[key] = value
    return info


# --------------------------------------------------------------------------------------------
# Models: manifests, configs and their layers


def layers_of(store: Store, manifest: dict) -> dict:
    out = {"model": None, "template": "", "system": "", "params": {}, "license": ""}
    for layer in manifest.get("layers", []):
        mt = layer.get("mediaType")
        path = store.blob_path(layer["digest"])
        if mt == MT_MODEL:
            out["model"] = layer
        elif mt == MT_TEMPLATE:
            out["template"] = path.read_text()
        elif mt == MT_SYSTEM:
            out["system"] = path.read_text()
        elif mt == MT_PARAMS:
            out["params"] = json.loads(path.read_text())
        elif mt == MT_LICENSE:
            out["license"] = path.read_text()
    return out


def config_of(store: Store, manifest: dict) -> dict:
    try:
        return json.loads(store.blob_path(manifest["config"]["digest"]).read_text())
    except (KeyError, OSError, ValueError):
        return {}


def details_of(config: dict) -> dict:
    return {
        "parent_model": config.get("parent_model", ""),
        "format": config.get("model_format", "gguf"),
        "family": config.get("model_family", ""),
        "families": config.get("model_families") or [],
        "parameter_size": config.get("model_type", ""),
        "quantization_level": config.get("file_type", ""),
    }


def check_params(params) -> dict:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ApiError(400, "parameters must be an object")
    out = {}
    for key, value in params.items():
        kind = PARAMS.get(key)
        if key == "typical_p":
            raise ApiError(400, "typical_p is deprecated and cannot be set as a model parameter; "
                                "pass it as a request option instead")
        if kind is None:
            raise ApiError(400, f"unknown parameter '{key}'")
        values = value if isinstance(value, list) else [value]
        try:
            if kind is bool:
                conv = [v if isinstance(v, bool) else str(v).lower() in ("1", "true") for v in values]
            elif kind is int:
                conv = [int(v) for v in values]
            elif kind is float:
                conv = [float(v) for v in values]
            else:
                conv = [str(v) for v in values]
        except (TypeError, ValueError):
            raise ApiError(400, f"invalid value for parameter '{key}': {value!r}") from None
        out[key] = conv if key == "stop" else conv[0]
    return out


def go_value(value) -> str:
    """A value as Go's %#v prints it in /api/show's parameters."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_params(params: dict) -> str:
    lines = []
    for key, value in sorted(params.items()):
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key:<30} {go_value(item)}")
    return "\n".join(lines)


def modelfile_of(store: Store, name: str, parts: dict) -> str:
    lines = ['# Modelfile generated by "ollama show"',
             "# To build a new Modelfile based on this, replace FROM with:", f"# FROM {name}", ""]
    if parts["model"]:
        lines.append(f"FROM {store.blob_path(parts['model']['digest'])}")
    if parts["template"]:
        lines.append(f'TEMPLATE """{parts["template"]}"""')
    if parts["system"]:
        lines.append(f'SYSTEM """{parts["system"]}"""')
    for key, value in sorted(parts["params"].items()):
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {key} {go_value(item)}")
    if parts["license"]:
        lines.append(f'LICENSE """{parts["license"]}"""')
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Deterministic "generation"


def generate_text(model: str, prompt: str, system: str, limit: int) -> list[str]:
    seed = hashlib.sha256(f"{model}\n{system}\n{prompt}".encode()).digest()
    pieces = [f"[{model}]"]
    if system:
        pieces.append(f"(system: {system[:60]})")
    count = 8 + seed[0] % 8
    pieces += [WORDS[b % len(WORDS)] for b in seed[1:1 + count]]
    if limit and limit > 0:
        pieces = pieces[:limit]
    return [p + ("" if i == len(pieces) - 1 else " ") for i, p in enumerate(pieces)]


# --------------------------------------------------------------------------------------------
# The server


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config: Config):
        self.config = config
        self.store = Store(config.models)
        self.loaded: dict[str, dict] = {}
        self.busy = 0
        self.busy_lock = threading.Lock()
        self.slots = threading.Semaphore(max(1, config.num_parallel))
        family = 6 if ":" in config.host else 2
        self.address_family = family
        super().__init__((config.host, config.port), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    server_version = "ollama-double/" + VERSION

    def log_message(self, fmt, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        log("INFO", "request", client=self.client_address[0], request=fmt % args)

    # ---- plumbing
    def body_json(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"invalid character in request body: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "request body must be a JSON object")
        return data

    def send_json(self, status: int, obj, head_only: bool = False) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head_only:
            self.wfile.write(data)

    def send_empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        if content_type == "text/event-stream":
            self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def ndjson(self, obj) -> None:
        self.chunk(json.dumps(obj).encode() + b"\n")

    def dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        routes = {
            ("GET", "/"): self.root, ("HEAD", "/"): self.root,
            ("GET", "/api/version"): self.version, ("GET", "/api/tags"): self.tags,
            ("POST", "/api/show"): self.show, ("POST", "/api/pull"): self.pull,
            ("POST", "/api/create"): self.create, ("DELETE", "/api/delete"): self.delete,
            ("GET", "/api/ps"): self.ps, ("POST", "/api/generate"): self.generate,
            ("POST", "/api/chat"): self.chat, ("POST", "/v1/chat/completions"): self.openai_chat,
            ("GET", "/v1/models"): self.openai_models,
        }
        try:
            if path.startswith("/api/blobs/") and method in ("HEAD", "POST"):
                return self.blob(method, path[len("/api/blobs/"):])
            handler = routes.get((method, path))
            if handler is None:
                known = {p for _, p in routes}
                if path in known:
                    return self.send_json(405, {"error": "method not allowed"})
                return self.send_json(404, {"error": "404 page not found"})
            return handler()
        except ApiError as exc:
            if path.startswith("/v1/"):
                kind = "invalid_request_error" if exc.status == 400 else "api_error"
                return self.send_json(exc.status, {"error": {
                    "message": exc.message, "type": kind, "param": None, "code": None}})
            return self.send_json(exc.status, {"error": exc.message}, head_only=method == "HEAD")
        except (BrokenPipeError, ConnectionResetError):
            return None

    def do_GET(self):  # noqa: N802
        self.dispatch("GET")

    def do_HEAD(self):  # noqa: N802
        self.dispatch("HEAD")

    def do_POST(self):  # noqa: N802
        self.dispatch("POST")

    def do_DELETE(self):  # noqa: N802
        self.dispatch("DELETE")

    # ---- endpoints
    def root(self):
        data = b"Ollama is running"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def version(self):
        self.send_json(200, {"version": VERSION})

    def model_entry(self, name: str, path: Path) -> dict:
        manifest = json.loads(path.read_text())
        raw = path.read_bytes()
        config = config_of(self.server.store, manifest)
        size = sum(int(layer.get("size", 0)) for layer in manifest.get("layers", []))
        modified = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc)
        return {"name": name, "model": name, "modified_at": modified.isoformat(),
                "size": size, "digest": hashlib.sha256(raw).hexdigest(),
                "details": details_of(config)}

    def tags(self):
        store = self.server.store
        with store.lock:
            models = [self.model_entry(n, p) for n, p in store.list_models()]
        self.send_json(200, {"models": models})

    def find(self, name: str) -> tuple[str, dict]:
        parts = parse_name(name)
        manifest = self.server.store.read_manifest(name)
        if manifest is None:
            raise ApiError(404, f"model '{name}' not found")
        return display_name(parts), manifest

    def show(self):
        req = self.body_json()
        name = req.get("model") or req.get("name") or ""
        store = self.server.store
        with store.lock:
            shown, manifest = self.find(name)
            parts = layers_of(store, manifest)
            config = config_of(store, manifest)
            info = {}
            if parts["model"]:
                info = gguf_info(store.blob_path(parts["model"]["digest"]))
        resp = {
            "license": parts["license"],
            "modelfile": modelfile_of(store, shown, parts),
            "parameters": format_params(parts["params"]),
            "template": parts["template"],
            "details": details_of(config),
            "model_info": info,
            "capabilities": ["completion"],
            "modified_at": now_iso(),
        }
        if parts["system"]:
            resp["system"] = parts["system"]
        self.send_json(200, resp)

    def pull(self):
        req = self.body_json()
        name = req.get("model") or req.get("name") or ""
        parts = parse_name(name)
        stream = req.get("stream", True) is not False
        registry = self.server.config.registry
        source = Store(Path(registry)) if registry else None
        lines = [{"status": "pulling manifest"}]
        error = None
        manifest = source.read_manifest(name) if source else None
        if manifest is None:
            error = ("pull model manifest: file does not exist" if source else
                     f"pull model manifest: Get \"https://{parts[0]}/v2/{parts[1]}/{parts[2]}"
                     f"/manifests/{parts[3]}\": dial tcp: lookup {parts[0]}: no such host")
        if stream:
            self.start_stream("application/x-ndjson")
            self.ndjson(lines[0])
        try:
            if error is None:
                store = self.server.store
                for layer in [manifest["config"], *manifest.get("layers", [])]:
                    digest = layer["digest"]
                    total = int(layer.get("size", 0))
                    status = f"pulling {digest_hex(digest)[:12]}"
                    if stream:
                        self.ndjson({"status": status, "digest": digest, "total": total})
                    if not store.has_blob(digest):
                        with source.blob_path(digest).open("rb") as f:
                            store.put_blob_stream(digest, f, total)
                    if stream:
                        self.ndjson({"status": status, "digest": digest, "total": total,
                                     "completed": total})
                for status in ("verifying sha256 digest", "writing manifest"):
                    if stream:
                        self.ndjson({"status": status})
                with store.lock:
                    store.write_manifest(name, manifest)
        except ApiError as exc:
            error = exc.message
        except OSError as exc:
            error = f"pull model: {exc}"
        if stream:
            self.ndjson({"error": error} if error else {"status": "success"})
            return self.end_stream()
        if error:
            return self.send_json(500, {"error": error})
        return self.send_json(200, {"status": "success"})

    def create(self):
        req = self.body_json()
        name = req.get("model") or req.get("name") or ""
        parse_name(name)
        stream = req.get("stream", True) is not False
        store = self.server.store
        if req.get("quantize"):
            raise ApiError(400, "quantization is not supported by the test double")
        if req.get("adapters"):
            raise ApiError(400, "LoRA adapters are no longer supported")
        params = check_params(req.get("parameters"))
        statuses = []
        with store.lock:
            if req.get("from"):
                _, base = self.find(req["from"])
                base_parts = layers_of(store, base)
                config = config_of(store, base)
                model_layer = base_parts["model"]
                merged = dict(base_parts["params"])
                merged.update(params)
                params = merged
                template = req.get("template", base_parts["template"])
                system = req.get("system", base_parts["system"])
                license_ = req.get("license", base_parts["license"])
                config["parent_model"] = display_name(parse_name(req["from"]))
                statuses.append({"status": "using existing layer " + model_layer["digest"]})
            elif req.get("files"):
                files = req["files"]
                if not isinstance(files, dict):
                    raise ApiError(400, "files must be an object of {name: digest}")
                ggufs = [(f, d) for f, d in files.items() if str(f).endswith(".gguf")]
                if len(ggufs) != 1 or len(files) != 1:
                    raise ApiError(400, "the test double creates models from exactly one .gguf file")
                digest = ggufs[0][1]
                if not store.has_blob(digest):
                    raise ApiError(400, f"file {ggufs[0][0]} ({digest}) not found: upload it "
                                        "to /api/blobs first")
                path = store.blob_path(digest)
                info = gguf_info(path)
                arch = str(info.get("general.architecture", "unknown"))
                ftype = FILE_TYPES.get(info.get("general.file_type"), "unknown")
                model_layer = {"mediaType": MT_MODEL, "digest": "sha256:" + digest_hex(digest),
                               "size": path.stat().st_size}
                config = {"model_format": "gguf", "model_family": arch, "model_families": [arch],
                          "model_type": str(info.get("general.size_label", "")),
                          "file_type": ftype}
                template = req.get("template", "{{ .Prompt }}")
                system = req.get("system", "")
                license_ = req.get("license", "")
                statuses.append({"status": "parsing GGUF"})
            else:
                raise ApiError(400, "neither 'from' or 'files' was specified")
            if isinstance(license_, list):
                license_ = "\n".join(license_)
            layers = [model_layer]
            for mt, text in ((MT_TEMPLATE, template), (MT_SYSTEM, system), (MT_LICENSE, license_)):
                if text:
                    layer = {"mediaType": mt, **store.put_blob_bytes(str(text).encode())}
                    layers.append(layer)
                    statuses.append({"status": "creating new layer " + layer["digest"]})
            if params:
                layer = {"mediaType": MT_PARAMS,
                         **store.put_blob_bytes(json.dumps(params, sort_keys=True).encode())}
                layers.append(layer)
                statuses.append({"status": "creating new layer " + layer["digest"]})
            config = dict(config, architecture="amd64", os="linux",
                          rootfs={"type": "layers", "diff_ids": [la["digest"] for la in layers]})
            config_layer = {"mediaType": MT_CONFIG,
                            **store.put_blob_bytes(json.dumps(config, sort_keys=True).encode())}
            manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": config_layer,
                        "layers": layers}
            statuses.append({"status": "writing manifest"})
            store.write_manifest(name, manifest)
            if not self.server.config.noprune:
                store.prune()
            self.server.loaded.pop(display_name(parse_name(name)), None)
        statuses.append({"status": "success"})
        if not stream:
            return self.send_json(200, {"status": "success"})
        self.start_stream("application/x-ndjson")
        for line in statuses:
            self.ndjson(line)
        return self.end_stream()

    def blob(self, method: str, digest: str):
        store = self.server.store
        digest_hex(digest)
        if method == "HEAD":
            return self.send_empty(200 if store.has_blob(digest) else 404)
        length = int(self.headers.get("Content-Length") or 0)
        with store.lock:
            if store.has_blob(digest):
                self.rfile.read(length)
                return self.send_empty(200)
            store.put_blob_stream(digest, self.rfile, length)
        return self.send_empty(201)

    def delete(self):
        req = self.body_json()
        name = req.get("model") or req.get("name") or ""
        parse_name(name)
        store = self.server.store
        with store.lock:
            store.delete(name)
            if not self.server.config.noprune:
                store.prune()
        self.server.loaded.pop(display_name(parse_name(name)), None)
        self.send_empty(200)

    def ps(self):
        now = time.time()
        models = []
        for name, entry in sorted(self.server.loaded.items()):
            if entry["expires"] < now:
                continue
            expires = "2318-08-21T00:00:00Z" if entry["expires"] == float("inf") else \
                _dt.datetime.fromtimestamp(entry["expires"], _dt.timezone.utc).isoformat()
            models.append({"name": name, "model": name, "size": entry["size"],
                           "digest": entry["digest"], "details": entry["details"],
                           "expires_at": expires, "size_vram": 0,
                           "context_length": entry["context_length"]})
        self.send_json(200, {"models": models})

    # ---- inference
    def load(self, name: str, req: dict) -> dict:
        store = self.server.store
        with store.lock:
            shown, manifest = self.find(name)
            parts = layers_of(store, manifest)
            config = config_of(store, manifest)
        options = dict(parts["params"])
        options.update(req.get("options") or {})
        keep = req.get("keep_alive")
        seconds = self.server.config.keep_alive if keep is None else keep_alive_seconds(str(keep))
        cfg = self.server.config
        loaded = self.server.loaded
        if shown not in loaded and cfg.max_loaded > 0 and len(loaded) >= cfg.max_loaded:
            oldest = min(loaded, key=lambda n: loaded[n]["used"])
            loaded.pop(oldest, None)
        loaded[shown] = {
            "size": sum(int(la.get("size", 0)) for la in manifest.get("layers", [])),
            "digest": hashlib.sha256(json.dumps(manifest).encode()).hexdigest(),
            "details": details_of(config), "used": time.time(),
            "expires": time.time() + seconds,
            "context_length": int(options.get("num_ctx") or cfg.context_length),
        }
        return {"name": shown, "system": parts["system"], "options": options}

    def admit(self):
        with self.server.busy_lock:
            cfg = self.server.config
            if self.server.busy >= cfg.num_parallel + cfg.max_queue:
                raise ApiError(503, "server busy, please try again.  maximum pending requests exceeded")
            self.server.busy += 1

    def release(self):
        with self.server.busy_lock:
            self.server.busy -= 1

    def run_inference(self, req: dict, prompt: str, system_override: str | None):
        model = self.load(req.get("model") or "", req)
        system = system_override if system_override is not None else model["system"]
        limit = int(model["options"].get("num_predict") or req.get("max_tokens")
                    or req.get("max_completion_tokens") or 0)
        return model, generate_text(model["name"], prompt, system, limit)

    def _inference(self, body, emit):
        """Run `emit(model, pieces)` under the parallel/queue limits."""
        self.admit()
        try:
            with self.server.slots:
                return emit(body)
        finally:
            self.release()

    def timing(self, count: int) -> dict:
        return {"total_duration": 1000000 * (count + 1), "load_duration": 1000000,
                "prompt_eval_count": 8, "prompt_eval_duration": 1000000,
                "eval_count": count, "eval_duration": 1000000 * count}

    def generate(self):
        req = self.body_json()
        if not req.get("model"):
            raise ApiError(400, "model is required")
        stream = req.get("stream", True) is not False

        def emit(req):
            prompt = str(req.get("prompt") or "")
            model, pieces = self.run_inference(req, prompt, req.get("system"))
            name = model["name"]
            if not prompt:
                return self.send_json(200, {"model": name, "created_at": now_iso(),
                                            "response": "", "done": True, "done_reason": "load"})
            final = {"model": name, "created_at": now_iso(), "response": "", "done": True,
                     "done_reason": "stop", "context": [1, 2, 3], **self.timing(len(pieces))}
            if not stream:
                final["response"] = "".join(pieces)
                return self.send_json(200, final)
            self.start_stream("application/x-ndjson")
            for piece in pieces:
                self.ndjson({"model": name, "created_at": now_iso(), "response": piece,
                             "done": False})
                time.sleep(self.server.config.delay)
            self.ndjson(final)
            return self.end_stream()

        return self._inference(req, emit)

    @staticmethod
    def messages_prompt(messages) -> tuple[str, str | None]:
        if not isinstance(messages, list):
            raise ApiError(400, "messages must be a list")
        system = None
        user = ""
        for m in messages:
            if not isinstance(m, dict):
                raise ApiError(400, "each message must be an object")
            if m.get("role") == "system":
                system = str(m.get("content") or "")
            elif m.get("role") == "user":
                user = m.get("content") or ""
                if isinstance(user, list):
                    user = " ".join(str(p.get("text", "")) for p in user if isinstance(p, dict))
        return str(user), system

    def chat(self):
        req = self.body_json()
        if not req.get("model"):
            raise ApiError(400, "model is required")
        stream = req.get("stream", True) is not False

        def emit(req):
            prompt, system = self.messages_prompt(req.get("messages") or [])
            model, pieces = self.run_inference(req, prompt, system)
            name = model["name"]
            final = {"model": name, "created_at": now_iso(),
                     "message": {"role": "assistant", "content": ""}, "done": True,
                     "done_reason": "stop", **self.timing(len(pieces))}
            if not stream:
                final["message"]["content"] = "".join(pieces)
                return self.send_json(200, final)
            self.start_stream("application/x-ndjson")
            for piece in pieces:
                self.ndjson({"model": name, "created_at": now_iso(),
                             "message": {"role": "assistant", "content": piece}, "done": False})
                time.sleep(self.server.config.delay)
            self.ndjson(final)
            return self.end_stream()

        return self._inference(req, emit)

    def openai_chat(self):
        req = self.body_json()
        if not req.get("model"):
            raise ApiError(400, "model is required")
        if not req.get("messages"):
            raise ApiError(400, "[] is too short - 'messages'")
        stream = bool(req.get("stream"))

        def emit(req):
            prompt, system = self.messages_prompt(req.get("messages"))
            try:
                model, pieces = self.run_inference(req, prompt, system)
            except ApiError as exc:
                if exc.status == 404:
                    raise ApiError(404, f'model "{req.get("model")}" not found, try pulling it first') from None
                raise
            cid = "chatcmpl-" + hashlib.sha256(json.dumps(req, sort_keys=True).encode()).hexdigest()[:9]
            created = int(time.time())
            base = {"id": cid, "created": created, "model": req["model"],
                    "system_fingerprint": "fp_ollama"}
            if not stream:
                text = "".join(pieces)
                return self.send_json(200, {
                    **base, "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 8, "completion_tokens": len(pieces),
                              "total_tokens": 8 + len(pieces)}})
            self.start_stream("text/event-stream")
            for piece in pieces:
                chunk = {**base, "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece},
                                      "finish_reason": None}]}
                self.chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                time.sleep(self.server.config.delay)
            last = {**base, "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                 "finish_reason": "stop"}]}
            self.chunk(b"data: " + json.dumps(last).encode() + b"\n\n")
            self.chunk(b"data: [DONE]\n\n")
            return self.end_stream()

        return self._inference(req, emit)

    def openai_models(self):
        store = self.server.store
        data = []
        with store.lock:
            for name, path in store.list_models():
                data.append({"id": name, "object": "model", "created": int(path.stat().st_mtime),
                             "owned_by": "library"})
        self.send_json(200, {"object": "list", "data": data})


# --------------------------------------------------------------------------------------------
# Command line


def set_process_name(name: str) -> None:
    """Show as `ollama` in ps/ss like the real binary (the interpreter would show otherwise)."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def initialize_keypair() -> None:
    """Ollama's serve writes ~/.ollama/id_ed25519 first; fail the same way without a home."""
    home = Path.home() / ".ollama"
    key = home / "id_ed25519"
    if key.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    key.write_bytes(b"# ollama test double: not a key\n" + os.urandom(32).hex().encode() + b"\n")
    key.chmod(0o600)


def make_server() -> Server:
    config = Config()
    server = Server(config)
    server.store.init()
    if not config.noprune:
        server.store.prune()
    return server


def serve() -> int:
    set_process_name("ollama")
    try:
        initialize_keypair()
    except OSError as exc:
        print(f"Error: could not create directory {exc}", file=sys.stderr)
        return 1
    try:
        server = make_server()
    except OSError as exc:
        print(f"Error: listen tcp: {exc}", file=sys.stderr)
        return 1
    log("INFO", "server config", env=json.dumps(server.config.as_env(), sort_keys=True))
    log("INFO", f"Listening on {server.config.host}:{server.config.port} (version {VERSION}, TEST DOUBLE)")

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.server_close()
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("Usage:\n  ollama [command]\n\nAvailable Commands:\n  serve       Start ollama "
              "(TEST DOUBLE)\n\nFlags:\n  -v, --version   Show version information")
        return 0
    if argv[0] in ("-v", "--version", "version"):
        print(f"ollama version is {VERSION} (test double)")
        return 0
    if argv[0] in ("serve", "start"):
        return serve()
    print(f"Error: the Ollama test double only implements `serve`, not {argv[0]!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

