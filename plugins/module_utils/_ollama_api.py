# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Ollama's HTTP API as the ``ollama_model`` module uses it: a small client over Ansible's
``open_url`` (``ansible.module_utils.urls``: proxies, TLS validation, the same on every target), the
reading of ``/api/show`` and of offline model manifests, the comparison of a model as it is
with the model as the inventory describes it, and Modelfile data -> ``/api/create`` payloads.
The standard library and ``ansible.module_utils.urls`` only. Private to the collection.

A model is described by a *spec*: ``name`` plus one source -

- ``registry``: pulled by ``name`` (``/api/pull``);
- ``from``: another model, with Modelfile data on top (``/api/create`` with ``from``);
- ``manifest``: an Ollama manifest file and a directory of its blobs (``sha256-<hex>``) from an
  offline mirror. Every blob is checked against its digest before it is sent to the server
  (``/api/blobs``), then the model is created from its GGUF layer (``/api/create`` with
  ``files``) with the template, system prompt and parameters of the manifest's layers.

and optional Modelfile data: ``system``, ``template``, ``parameters`` (a dict; a list value
gives a repeated parameter such as ``stop``)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

MT_MODEL = "application/vnd.ollama.image.model"
MT_TEMPLATE = "application/vnd.ollama.image.template"
MT_SYSTEM = "application/vnd.ollama.image.system"
MT_PARAMS = "application/vnd.ollama.image.params"
MT_LICENSE = "application/vnd.ollama.image.license"
SUPPORTED_LAYERS = (MT_MODEL, MT_TEMPLATE, MT_SYSTEM, MT_PARAMS, MT_LICENSE)
_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
_FROM_BLOB = re.compile(r"^FROM\s+\S*sha256[-:]([0-9a-f]{64})\s*$", re.MULTILINE)
DEFAULT_URL = "http://127.0.0.1:11434"


class OllamaError(Exception):
    """A failed API call or an unusable input; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message, status=0):
        super().__init__(message)
        self.status = status


class Unreachable(OllamaError):
    """The server did not answer at all."""


# --------------------------------------------------------------------------------------------
# Names


def canonical_name(name):
    """``name:tag`` as ``/api/tags`` lists it (``latest`` when no tag; registry.ollama.ai/library
    dropped)."""
    text = str(name or "").strip()
    if not text:
        raise OllamaError("a model name is required")
    last = text.rsplit("/", 1)[-1]
    if ":" not in last:
        text += ":latest"
    for prefix in ("registry.ollama.ai/library/", "library/"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    if text.startswith("registry.ollama.ai/"):
        text = text[len("registry.ollama.ai/"):]
    return text


def digest_hex(digest):
    match = _DIGEST.match(str(digest or ""))
    if not match:
        raise OllamaError(f"not a sha256 digest: {digest!r}")
    return match.group(1)


# --------------------------------------------------------------------------------------------
# Parameters


def _scalar(value):
    """A parameter value as a comparable string (4096 == 4096.0 == "4096", True == "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    if text.strip().lower() in ("nan", "inf", "-inf", "infinity"):
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def normalize_parameters(params):
    """{name: [values as strings]} from a parameters dict (list values are repeated ones)."""
    out = {}
    for key, value in (params or {}).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        out[str(key)] = [_scalar(v) for v in values]
    return out


def parse_show_parameters(text):
    """``/api/show``'s ``parameters`` ("name   value" lines, values as Go's %#v prints them)
    -> {name: [values as strings]}."""
    out = {}
    for line in str(text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        key, _sep, raw = line.partition(" ")
        raw = raw.strip()
        if raw.startswith('"'):
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw.strip('"')
        else:
            value = raw
        out.setdefault(key, []).append(_scalar(value))
    return out


def api_parameters(params):
    """Parameters as the create API takes them: numbers as numbers, ``stop`` always a list."""
    out = {}
    for key, value in (params or {}).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        conv = []
        for v in values:
            if isinstance(v, str) and key != "stop":
                text = v.strip()
                if text.lower() in ("true", "false"):
                    v = text.lower() == "true"
                else:
                    try:
                        v = int(text)
                    except ValueError:
                        try:
                            v = float(text)
                        except ValueError:
                            v = text
            conv.append(v)
        out[key] = conv if key == "stop" or len(conv) > 1 else conv[0]
    return out


# --------------------------------------------------------------------------------------------
# Models as the server shows them


def model_state(show):
    """The comparable state of a model from its ``/api/show`` answer."""
    if show is None:
        return None
    match = _FROM_BLOB.search(show.get("modelfile") or "")
    return {
        "model_digest": match.group(1) if match else "",
        "system": show.get("system") or "",
        "template": show.get("template") or "",
        "parameters": parse_show_parameters(show.get("parameters")),
    }


def desired_state(base, system=None, template=None, parameters=None):
    """What a model created on top of ``base`` (a state, or None) with this Modelfile data
    will show: the base's model layer, its system and template unless replaced, its
    parameters updated by ``parameters`` (Ollama merges them)."""
    base = base or {"model_digest": "", "system": "", "template": "", "parameters": {}}
    params = dict(base["parameters"])
    params.update(normalize_parameters(parameters))
    return {
        "model_digest": base["model_digest"],
        "system": base["system"] if system is None else str(system),
        "template": base["template"] if template is None else str(template),
        "parameters": params,
    }


def differences(present, desired):
    """Names of the fields that differ (all of them when the model is absent).

    Parameters differ when one the inputs name has another value on the server; parameters
    the server holds beyond them (Ollama adds defaults, such as the stop words of a chat
    template it detects in a GGUF) do not count."""
    if present is None:
        return ["model"]
    diff = [key for key in ("model_digest", "system", "template")
            if present.get(key) != desired.get(key)]
    have = present.get("parameters") or {}
    if any(have.get(k) != v for k, v in (desired.get("parameters") or {}).items()):
        diff.append("parameters")
    return diff


def create_payload(name, source=None, files=None, system=None, template=None, parameters=None,
                   license_text=None):
    """The ``/api/create`` body for a model: ``from`` another model or ``files`` {name: digest}."""
    body = {"model": name, "stream": False}
    if source:
        body["from"] = source
    if files:
        body["files"] = dict(files)
    if not source and not files:
        raise OllamaError(f"model {name}: needs a base model (from) or files")
    if system is not None:
        body["system"] = str(system)
    if template is not None:
        body["template"] = str(template)
    if parameters:
        body["parameters"] = api_parameters(parameters)
    if license_text:
        body["license"] = str(license_text)
    return body


# --------------------------------------------------------------------------------------------
# Offline manifests


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(path):
    """An Ollama manifest (schema 2) from a file; raises OllamaError when it is not one."""
    try:
        with open(path, "rb") as f:
            manifest = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise OllamaError(f"cannot read the model manifest {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2 \
            or not isinstance(manifest.get("layers"), list):
        raise OllamaError(f"{path} is not an Ollama manifest (schemaVersion 2 with layers)")
    return manifest


def manifest_digests(manifest):
    """Every blob digest a manifest names (config first), as hex."""
    layers = [manifest.get("config") or {}, *manifest["layers"]]
    return [digest_hex(layer.get("digest")) for layer in layers if layer.get("digest")]


def verify_blobs(manifest, blobs_dir):
    """Check every blob of ``manifest`` in ``blobs_dir`` (files ``sha256-<hex>``) against its
    digest; raise naming the first that is missing or corrupt. Returns {hex: path}."""
    paths = {}
    for hexd in manifest_digests(manifest):
        path = os.path.join(blobs_dir, f"sha256-{hexd}")
        if not os.path.isfile(path):
            raise OllamaError(f"blob sha256-{hexd} is missing from {blobs_dir}: nothing was imported")
        got = sha256_file(path)
        if got != hexd:
            raise OllamaError(
                f"blob {path} does not match its digest (sha256 {got}, expected {hexd}): "
                "the offline copy is corrupt; nothing was imported"
            )
        paths[hexd] = path
    return paths


def manifest_model(manifest, blobs_dir):
    """The import of a verified manifest: {model_digest, system, template, parameters,
    license} read from its layers. Layers this import cannot carry (adapters, projectors)
    raise."""
    out = {"model_digest": "", "system": "", "template": "", "parameters": {}, "license": ""}
    for layer in manifest["layers"]:
        mt = layer.get("mediaType")
        hexd = digest_hex(layer.get("digest"))
        path = os.path.join(blobs_dir, f"sha256-{hexd}")
        if mt not in SUPPORTED_LAYERS:
            raise OllamaError(f"layer {mt} of the manifest cannot be imported through the API")
        if mt == MT_MODEL:
            if out["model_digest"]:
                raise OllamaError("the manifest has more than one model layer")
            out["model_digest"] = hexd
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if mt == MT_PARAMS:
            out["parameters"] = json.loads(text)
        elif mt == MT_TEMPLATE:
            out["template"] = text
        elif mt == MT_SYSTEM:
            out["system"] = text
        else:
            out["license"] = text
    if not out["model_digest"]:
        raise OllamaError("the manifest has no model layer")
    return out


# --------------------------------------------------------------------------------------------
# The HTTP client


class Client:
    def __init__(self, url=DEFAULT_URL, timeout=600):
        self.url = str(url or DEFAULT_URL).rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise OllamaError(f"the Ollama URL must be http:// or https://, got {self.url!r}")
        self.timeout = timeout

    def _open(self, method, path, body=None, data=None, headers=None):
        payload = data
        hdrs = dict(headers or {})
        if body is not None:
            payload = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            return open_url(self.url + path, data=payload, headers=hdrs, method=method,
                            timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw).get("error") or raw.decode()
            except (ValueError, AttributeError):
                message = raw.decode(errors="replace") or exc.reason
            if isinstance(message, dict):
                message = message.get("message", str(message))
            raise OllamaError(f"{method} {path}: {exc.code} {message}", exc.code) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError, UrlsConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"{method} {self.url}{path}: {reason}") from None

    def call(self, method, path, body=None):
        with self._open(method, path, body) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else {}

    def stream(self, path, body):
        """POST and read an NDJSON stream; raise on an {"error": ...} line. Returns the lines."""
        lines = []
        with self._open("POST", path, dict(body, stream=True)) as resp:
            for raw in resp:
                raw = raw.strip()
                if not raw:
                    continue
                line = json.loads(raw)
                if line.get("error"):
                    raise OllamaError(f"POST {path}: {line['error']}")
                lines.append(line)
        if not lines or lines[-1].get("status") != "success":
            raise OllamaError(f"POST {path}: the stream ended without success")
        return lines

    def version(self):
        return self.call("GET", "/api/version").get("version", "")

    def tags(self):
        return [m["name"] for m in self.call("GET", "/api/tags").get("models", [])]

    def show(self, name):
        try:
            return self.call("POST", "/api/show", {"model": name})
        except OllamaError as exc:
            if exc.status == 404:
                return None
            raise

    def pull(self, name):
        return self.stream("/api/pull", {"model": name})

    def create(self, body):
        return self.call("POST", "/api/create", dict(body, stream=False))

    def has_blob(self, hexd):
        try:
            with self._open("HEAD", f"/api/blobs/sha256:{hexd}"):
                return True
        except OllamaError as exc:
            if exc.status == 404:
                return False
            raise

    def push_blob(self, hexd, path):
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            with self._open("POST", f"/api/blobs/sha256:{hexd}", data=f,
                            headers={"Content-Length": str(size),
                                     "Content-Type": "application/octet-stream"}):
                pass

    def delete(self, name):
        with self._open("DELETE", "/api/delete", {"model": name}):
            pass


# --------------------------------------------------------------------------------------------
# Ensure a model is present or absent


def _diff_view(state):
    if state is None:
        return {}
    return {k: v for k, v in state.items() if v not in ("", {}, None)}


def ensure(client, spec, check_mode=False):
    """Make one model present or absent. ``spec``: name, state (present|absent), and for
    present one source - ``from`` (a model name), ``manifest`` + ``blobs_dir`` (an offline
    import), else the registry - plus ``system``, ``template``, ``parameters``.

    Returns {changed, name, actions, diff: {before, after}}. In check mode nothing is sent
    that changes the server; an unreachable server counts as an absent model (it is being
    installed in the same run)."""
    name = canonical_name(spec["name"])
    state = spec.get("state", "present")
    result = {"changed": False, "name": name, "actions": [], "diff": {"before": {}, "after": {}}}
    try:
        present = model_state(client.show(name))
    except Unreachable:
        if not check_mode:
            raise
        present = None
    result["diff"]["before"] = _diff_view(present)

    if state == "absent":
        if present is not None:
            result["changed"] = True
            result["actions"].append("delete")
            if not check_mode:
                client.delete(name)
        return result

    system, template, params = spec.get("system"), spec.get("template"), spec.get("parameters")
    if spec.get("manifest"):
        blobs_dir = spec.get("blobs_dir") or os.path.dirname(spec["manifest"])
        manifest = read_manifest(spec["manifest"])
        blobs = verify_blobs(manifest, blobs_dir)
        imported = manifest_model(manifest, blobs_dir)
        base = {"model_digest": imported["model_digest"], "system": imported["system"],
                "template": imported["template"],
                "parameters": normalize_parameters(imported["parameters"])}
        desired = desired_state(base, system, template, params)
        diff = differences(present, desired)
        if diff:
            result.update(changed=True)
            result["actions"].append("import " + ", ".join(diff))
            if not check_mode:
                hexd = imported["model_digest"]
                if not client.has_blob(hexd):
                    client.push_blob(hexd, blobs[hexd])
                    result["actions"].append(f"upload sha256:{hexd[:12]}")
                merged = dict(imported["parameters"])
                merged.update(params or {})
                client.create(create_payload(
                    name, files={"model.gguf": f"sha256:{hexd}"},
                    system=desired["system"] or None, template=desired["template"] or None,
                    parameters=merged, license_text=imported["license"] or None))
        result["diff"]["after"] = _diff_view(desired)
        return result

    if spec.get("from"):
        source = canonical_name(spec["from"])
        try:
            base = model_state(client.show(source))
        except Unreachable:
            if not check_mode:
                raise
            base = None
        if base is None and not check_mode:
            raise OllamaError(f"model {name}: its base model {source} is not on the server")
        desired = desired_state(base, system, template, params)
        diff = differences(present, desired) if base is not None else ["model"]
        if diff:
            result["changed"] = True
            result["actions"].append(f"create from {source}: " + ", ".join(diff))
            if not check_mode:
                client.create(create_payload(name, source=source, system=system,
                                             template=template, parameters=params))
        result["diff"]["after"] = _diff_view(desired)
        return result

    if system is not None or template is not None or params:
        raise OllamaError(
            f"model {name}: system, template and parameters need a base (from) or a manifest; "
            "for a pulled model, create a second model from it"
        )
    if present is None:
        result["changed"] = True
        result["actions"].append("pull")
        if not check_mode:
            result["pull"] = [line.get("status") for line in client.pull(name)]
        result["diff"]["after"] = {"pulled": name}
    else:
        result["diff"]["after"] = result["diff"]["before"]
    return result
