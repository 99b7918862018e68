# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0
"""The offline bundle (format teamllm-bundle/1, docs/airgap.md): what an inventory needs, the
manifest of a bundle directory and its check, its SHA256SUMS, its CycloneDX SBOM, and the
split into parts for removable media with the checked join.

Pure Python (stdlib only, file reads and writes where named); private to the collection. The
modules ``bundle_key``, ``bundle_sign``, ``bundle_manifest`` and ``bundle_parts`` and
``playbooks/mirror.yml`` are thin over it; the node side reads a bundle with
:func:`load_manifest`, :func:`verify_tree` and :func:`join_parts`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid

from ansible_collections.teamllm.stack.plugins.module_utils import _engines
from ansible_collections.teamllm.stack.plugins.module_utils._engines.common import model_items

FORMAT = "teamllm-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
PUBLIC_KEY = "teamllm-bundle.pub.gpg"
SUMS = "SHA256SUMS"
SBOM = "bom.cdx.json"
# Files of a bundle that its manifest does not list (the manifest itself, its signature, and
# the public key, which is for people: nodes get the key from the controller).
UNLISTED = (MANIFEST, SIGNATURE, PUBLIC_KEY)
KINDS = ("download", "apt", "apt-index", "index", "sbom")
APT_INDEX_FILES = ("Packages", "Packages.gz", "Release", "InRelease")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class BundleError(ValueError):
    """The inventory or the bundle cannot be used; ``problems`` lists why, each naming the
    host, entry or file and the fix."""

    def __init__(self, problems):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


# --- what an inventory needs -------------------------------------------------------------

# The roles site.yml (playbooks/*.yml) runs, and on which groups: (role, groups, condition).
# condition "monitoring": only when the inventory's group monitoring has a host. The engine
# roles (and docker for the engines in containers) run on llm_nodes by the placement's choice:
# see :func:`host_roles`.
SITE_ROLES = (
    ("mirror", ("llm_mirror",), None),
    ("nvidia_driver", ("gpu_nodes",), None),
    ("cuda", ("gpu_nodes",), None),
    ("docker", ("gpu_nodes",), None),
    ("nvidia_container_toolkit", ("gpu_nodes",), None),
    ("gateway", ("gateway",), None),
    ("open_webui", ("webui",), None),
    ("node_exporter", ("llm_nodes", "gpu_nodes", "gateway", "monitoring", "webui"), "monitoring"),
    ("gpu_exporter", ("gpu_nodes",), "monitoring"),
    ("alertmanager", ("monitoring",), None),
    ("prometheus", ("monitoring",), None),
    ("grafana", ("grafana",), None),
    ("backup", ("backup",), None),
)

# The llm_downloads entry each role installs, by the variable that names it: (variable,
# default on a host without GPUs, default on a host of gpu_nodes, install method or None).
# An inventory's own value of the variable wins. The defaults are those of the roles'
# defaults/main.yml (a unit test holds them together).
ROLE_DOWNLOADS = {
    "llama_cpp": (("llama_cpp_download", "llama_server_cpu", "llama_server_cuda", None),),
    "ollama": (("ollama_download", "ollama", "ollama", None),),
    "localai": (("localai_download", "localai_image", "localai_image_cuda12", None),),
    "vllm": (("vllm_download", "vllm_cpu_wheelhouse", "vllm_cpu_wheelhouse", "venv"),
             ("vllm_image_download", "vllm_image", "vllm_image", "container")),
    "open_webui": (("open_webui_wheelhouse_download", "open_webui_wheelhouse", "open_webui_wheelhouse", "venv"),
                   ("open_webui_image_download", "open_webui_image", "open_webui_image", "container")),
    "gpu_exporter": (("gpu_exporter_download", "gpu_exporter_wheelhouse", "gpu_exporter_wheelhouse", None),),
    "nvidia_container_toolkit": (("nvidia_container_toolkit_check_download", "nvidia_gpu_check_image",
                                  "nvidia_gpu_check_image", None),),
}

# Third-party apt repositories (llm_downloads entries) a role adds: (entry, (variable, value)
# that selects it, or None when the role always adds it).
ROLE_APT_REPOSITORIES = {
    "docker": (("docker_ce_apt", ("docker_source", "docker-ce")),),
    "cuda": (("cuda_apt", ("cuda_source", "nvidia")),),
    "nvidia_container_toolkit": (("nvidia_container_toolkit_apt", None),),
    "grafana": (("grafana_apt", None),),
}

# Defaults of the role variables read above, where the inventory does not set them.
_ROLE_VARIABLE_DEFAULTS = {
    "docker_source": "distribution",
    "cuda_source": "nvidia",  # the roles' defaults/main.yml (a unit test holds them together)
    "vllm_install_method": "venv",
    "open_webui_install_method": "venv",
}


def _var(hostvars, name):
    value = hostvars.get(name)
    return _ROLE_VARIABLE_DEFAULTS.get(name) if value in (None, "") else value


def host_keys():
    """The variables of a host that :func:`needed_downloads` and :func:`inventory_apt_packages`
    read (what a caller copies out of Ansible's hostvars)."""
    keys = {"llm_models", "teamllm_engines", *_ROLE_VARIABLE_DEFAULTS}
    keys.update(f"{n}_instances" for n in _engines.NAMES)
    keys.update(f"{n}_install_method" for n in _engines.NAMES)
    for variables in ROLE_DOWNLOADS.values():
        keys.update(v[0] for v in variables)
    return sorted(keys)


def host_engines(hostvars):
    """The engines a host of llm_nodes runs: those of its published placement
    (``teamllm_engines``) or its inventory's ``<engine>_instances`` (as the filter engines_here
    reads them), else every engine ``llm_models`` can be given
    to (a model's ``engine``, or every engine that takes ``engine: any``)."""
    published = hostvars.get("teamllm_engines") or {}
    here = [n for n in _engines.NAMES if published.get(n) or hostvars.get(f"{n}_instances")]
    if here:
        return sorted(here)
    wanted = set()
    for item in model_items(hostvars.get("llm_models")).values():
        engine = item.get("engine") or "any"
        wanted.update(_engines.names(any=True) if engine == "any" else [engine])
    return sorted(e for e in wanted if e in _engines.ENGINES)


def _needs_docker(engines, hostvars):
    for name in engines:
        container = _engines.ENGINES[name].container
        if container == "always" or (container == "option" and _var(hostvars, f"{name}_install_method") == "container"):
            return True
    return False


def host_roles(host, hostvars, groups):
    """The roles site.yml runs on ``host`` (``_common`` first), from its groups, the
    inventory's groups and its engines."""
    member = {g for g, hosts in groups.items() if host in (hosts or [])}
    monitoring = bool(groups.get("monitoring"))
    roles = ["_common"]
    for role, where, condition in SITE_ROLES:
        if member.intersection(where) and (condition != "monitoring" or monitoring):
            roles.append(role)
    if "llm_nodes" in member:
        engines = host_engines(hostvars)
        roles.extend(engines)
        if _needs_docker(engines, hostvars):
            roles.append("docker")
    seen = set()
    return [r for r in roles if not (r in seen or seen.add(r))]


def _role_downloads(role, host, hostvars, groups):
    gpu = host in (groups.get("gpu_nodes") or [])
    for variable, cpu_default, gpu_default, method in ROLE_DOWNLOADS.get(role, ()):
        if method and _var(hostvars, f"{role}_install_method") != method:
            continue
        value = hostvars.get(variable)
        if not isinstance(value, str) or not value or "{{" in value:
            value = gpu_default if gpu else cpu_default
        yield variable, value
    for entry, selector in ROLE_APT_REPOSITORIES.get(role, ()):
        if selector is None or _var(hostvars, selector[0]) == selector[1]:
            yield f"{role} apt repository", entry


def _model_downloads(hostvars):
    """Every llm_downloads entry the models of ``llm_models`` name (all quantizations)."""
    for served, item in model_items(hostvars.get("llm_models")).items():
        download = item.get("download")
        names = download.values() if isinstance(download, dict) else [download]
        for name in names:
            if name:
                yield f"llm_models {served}", name


def inventory_apt_packages(mapping, hostvars, groups, release):
    """(Debian packages, {apt repository entry: packages}) every host of the inventory
    installs, on Debian ``release``."""
    debian, third_party = set(), {}
    for host in sorted(hostvars):
        hv = hostvars[host] or {}
        packages, repos = apt_packages(mapping, host_roles(host, hv, groups), release, hv)
        debian.update(packages)
        for repo, names in repos.items():
            third_party.setdefault(repo, set()).update(names)
    return sorted(debian), {repo: sorted(p) for repo, p in sorted(third_party.items())}


def needed_downloads(hostvars, groups, downloads):
    """The llm_downloads entries the inventory's hosts will install, as
    {entry name: {"entry": <entry>, "hosts": [host, ...], "why": [reason, ...]}}.

    ``hostvars`` is {host: its variables} (the inventory's; role defaults are not needed),
    ``groups`` the inventory's groups, ``downloads`` the ``llm_downloads`` manifest. An apt
    repository entry brings its ``key`` entry. Raises :class:`BundleError` naming each host,
    variable and entry that the manifest lacks."""
    needed, problems = {}, []

    def add(name, host, why):
        if name not in downloads:
            problems.append(f"host {host}: {why} names {name!r}, which is not an entry of llm_downloads: "
                            "add it to llm_model_downloads or fix the name")
            return
        slot = needed.setdefault(name, {"entry": downloads[name], "hosts": [], "why": []})
        if host not in slot["hosts"]:
            slot["hosts"].append(host)
        if why not in slot["why"]:
            slot["why"].append(why)
        key = downloads[name].get("key") if isinstance(downloads[name], dict) else None
        if key:
            add(key, host, f"key of {name}")

    for host in sorted(hostvars):
        hv = hostvars[host] or {}
        for role in host_roles(host, hv, groups):
            for why, name in _role_downloads(role, host, hv, groups):
                add(name, host, why)
        if host in (groups.get("llm_nodes") or []):
            for why, name in _model_downloads(hv):
                add(name, host, why)
    if problems:
        raise BundleError(sorted(set(problems)))
    return {name: needed[name] for name in sorted(needed)}


def apt_packages(mapping, roles, release="", hostvars=None):
    """(Debian packages, {apt repository entry: packages}) that ``roles`` install on a node of
    Debian ``release`` (a codename) with variables ``hostvars``, from ``mapping`` (role -> list
    of package names or {name, releases: [codename, ...], repo: <llm_downloads apt entry>,
    when: {variable: value}}; the data file roles/_common/vars/apt_packages.yml)."""
    debian, third_party = set(), {}
    for role in roles:
        for item in mapping.get(role) or []:
            item = {"name": item} if isinstance(item, str) else dict(item)
            if item.get("releases") and release not in item["releases"]:
                continue
            if any(str(_var(hostvars or {}, k)) != str(v) for k, v in (item.get("when") or {}).items()):
                continue
            if item.get("repo"):
                third_party.setdefault(item["repo"], set()).add(item["name"])
            else:
                debian.add(item["name"])
    return sorted(debian), {repo: sorted(p) for repo, p in sorted(third_party.items())}


def carry_problem(name, entry, hosts=()):
    """Why the bundle cannot carry llm_downloads entry ``name`` ("" when it can), naming a
    host that needs it and the fix."""
    where = f"host {sorted(hosts)[0]}" if hosts else "the inventory"
    if entry.get("layout") is not None or entry.get("suites"):
        return (f"{where} needs the apt repository {name} ({entry.get('url', '')}): the bundle carries "
                "Debian's packages only; choose the Debian source of the role that adds it (e.g. "
                "docker_source: distribution) or leave that role out of the offline inventory")
    if not entry.get("path"):
        return (f"{where} needs {name}, which has no file (a registry image pulled by digest): "
                f"add a `path` to a docker save tarball of it and its sha256 to llm_downloads.{name}")
    sha = str(entry.get("sha256", ""))
    if sha != "mirror" and not _HEX64.match(sha):
        return (f"{where} needs {name}, whose sha256 is not recorded ({sha or 'empty'}): fetch it once "
                f"from a connected machine, check it, and record its sha256 in llm_downloads.{name}")
    return ""


def bundle_sources(needed, sums):
    """The files of the bundle's artifacts: [{path, sha256, name, source: "mirror" | "upstream",
    url}] for ``needed`` (entry name -> entry, from :func:`needed_downloads`), taking the
    checksum of entries built by the mirror builder (sha256 "mirror") from ``sums`` ({path:
    hex}, the lab mirror's SHA256SUMS); an entry without ``url`` comes from the mirror directory
    too, checked against its pinned sha256. An entry with ``blobs`` (an offline Ollama model) brings
    every blob the mirror lists under that directory. Raises :class:`BundleError` naming every
    file the mirror does not list."""
    files, problems = {}, []
    for name, entry in needed.items():
        sha = str(entry.get("sha256", ""))
        if sha == "mirror":
            if entry["path"] not in sums:
                problems.append(f"{name}: {entry['path']} is not in the mirror's SHA256SUMS: build it "
                                "(tools/mirror_build.py) or point llm_artifacts_dir at a mirror that has it")
                continue
            files[entry["path"]] = {"path": entry["path"], "sha256": sums[entry["path"]], "name": name,
                                    "source": "mirror", "url": ""}
        else:
            files[entry["path"]] = {"path": entry["path"], "sha256": sha, "name": name,
                                    "source": "upstream" if entry.get("url") else "mirror",
                                    "url": entry.get("url", "")}
        if entry.get("blobs"):
            prefix = entry["blobs"].rstrip("/") + "/"
            for path in sorted(p for p in sums if p.startswith(prefix)):
                files[path] = {"path": path, "sha256": sums[path], "name": name, "source": "mirror", "url": ""}
    if problems:
        raise BundleError(problems)
    return [files[p] for p in sorted(files)]


# --- the manifest ------------------------------------------------------------------------

def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_files(root, exclude=UNLISTED):
    """Relative POSIX paths of the regular files under ``root`` (sorted), without ``exclude``
    at its top."""
    found = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            full = os.path.join(directory, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel in exclude:
                continue
            if os.path.islink(full) or not os.path.isfile(full):
                raise BundleError(f"{rel}: not a regular file; a bundle holds only regular files (remove it)")
            found.append(rel)
    return sorted(found)


_DEB = re.compile(r"^(?P<name>[^_/]+)_(?P<version>[^_/]+)_(?P<arch>[^_/]+)\.deb$")


def describe(path, downloads_by_path=None):
    """{kind, name, version} of the bundle file ``path`` (relative). ``downloads_by_path`` is
    {path: (entry name, version)} of the llm_downloads entries in the bundle."""
    downloads_by_path = downloads_by_path or {}
    base = path.rsplit("/", 1)[-1]
    if path in downloads_by_path:
        name, version = downloads_by_path[path]
        return {"kind": "download", "name": name, "version": str(version or "")}
    if path.startswith("apt/"):
        match = _DEB.match(base)
        if match:
            return {"kind": "apt", "name": match["name"], "version": match["version"].replace("%3a", ":")}
        if base in APT_INDEX_FILES:
            return {"kind": "apt-index", "name": path.rsplit("/", 1)[0] + "/" + base, "version": ""}
    if path == SBOM:
        return {"kind": "sbom", "name": SBOM, "version": ""}
    if path == SUMS:
        return {"kind": "index", "name": SUMS, "version": ""}
    return {"kind": "download", "name": path, "version": ""}


def stray_files(root, expected, releases):
    """Files under ``root`` that the bundle should not hold: not one of ``expected`` (the
    artifacts' paths), not under ``apt/<release>/`` for one of ``releases``, and not one of the
    bundle's own files (manifest, signature, key, SHA256SUMS, SBOM)."""
    own = set(UNLISTED) | {SUMS, SBOM}
    prefixes = tuple(f"apt/{r}/" for r in releases)
    return [p for p in bundle_files(root, ()) if p not in own and p not in set(expected)
            and not p.startswith(prefixes)]


def file_entry(root, path, downloads_by_path=None):
    full = os.path.join(root, path)
    return {"path": path, "size": os.path.getsize(full), "sha256": sha256_file(full),
            **describe(path, downloads_by_path)}


def downloads_by_path(downloads):
    """{path: (entry name, version)} of llm_downloads entries that have a file ``path``."""
    return {e["path"]: (n, e.get("version", "")) for n, e in (downloads or {}).items()
            if isinstance(e, dict) and e.get("path") and (e.get("sha256") or e.get("blobs"))}


def build_manifest(files, collection_version, created):
    """The manifest dict of a bundle from its file entries (see :func:`file_entry`)."""
    return {
        "format": FORMAT,
        "created": created,
        "collection": {"name": "teamllm.stack", "version": str(collection_version)},
        "files": sorted(files, key=lambda f: f["path"]),
    }


def manifest_bytes(manifest):
    """The manifest's canonical bytes: JSON, keys sorted, two-space indent, ASCII, one final
    newline. What is signed is exactly these bytes."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def manifest_problems(manifest):
    """Why ``manifest`` is not a teamllm-bundle/1 manifest ([] when it is)."""
    if not isinstance(manifest, dict):
        return ["manifest.json is not a JSON object"]
    problems = []
    if manifest.get("format") != FORMAT:
        problems.append(f"manifest.json: format is {manifest.get('format')!r}, not {FORMAT!r}")
    files = manifest.get("files")
    if not isinstance(files, list):
        return problems + ["manifest.json: files is not a list"]
    seen = set()
    for i, item in enumerate(files):
        path = item.get("path") if isinstance(item, dict) else None
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
            problems.append(f"manifest.json: files[{i}] has no safe relative path: {path!r}")
            continue
        if path in seen:
            problems.append(f"manifest.json: {path} is listed twice")
        seen.add(path)
        if not isinstance(item.get("size"), int) or not _HEX64.match(str(item.get("sha256", ""))):
            problems.append(f"manifest.json: {path} has no integer size or no sha256")
        if item.get("kind") not in KINDS:
            problems.append(f"manifest.json: {path} has kind {item.get('kind')!r}; one of {', '.join(KINDS)}")
    return problems


def load_manifest(data):
    """The manifest dict from its bytes; raises :class:`BundleError` when it is not one."""
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise BundleError(f"manifest.json is not JSON: {exc}") from None
    problems = manifest_problems(manifest)
    if problems:
        raise BundleError(problems)
    return manifest


def verify_tree(root, manifest, check_hashes=True):
    """Problems of the bundle directory ``root`` against ``manifest`` ([] when none): files
    missing, of another size or sha256, and files the manifest does not list."""
    problems = list(manifest_problems(manifest))
    if problems:
        return problems
    listed = {f["path"]: f for f in manifest["files"]}
    try:
        present = set(bundle_files(root))
    except BundleError as exc:
        return list(exc.problems)
    for path in sorted(listed):
        item, full = listed[path], os.path.join(root, path)
        if path not in present:
            problems.append(f"{path}: missing")
            continue
        size = os.path.getsize(full)
        if size != item["size"]:
            problems.append(f"{path}: size {size}, the manifest says {item['size']}")
        elif check_hashes and sha256_file(full) != item["sha256"]:
            problems.append(f"{path}: sha256 differs from the manifest's")
    for path in sorted(present - set(listed)):
        problems.append(f"{path}: not listed in the manifest")
    return problems


def sha256sums_text(files):
    """``sha256sum`` lines ("<hex>  <path>") for file entries, sorted by path."""
    return "".join(f"{f['sha256']}  {f['path']}\n" for f in sorted(files, key=lambda f: f["path"]))


# --- CycloneDX 1.5 SBOM ------------------------------------------------------------------

def _purl(item, release="", pypi=""):
    if item["kind"] == "apt":
        arch = _DEB.match(item["path"].rsplit("/", 1)[-1])["arch"]
        qualifiers = f"?arch={arch}" + (f"&distro={release}" if release else "")
        return f"pkg:deb/debian/{item['name']}@{item['version']}{qualifiers}".replace("+", "%2B")
    if pypi and "==" in pypi:
        name, version = pypi.split("==", 1)
        return f"pkg:pypi/{name.lower()}@{version}"
    version = f"@{item['version']}" if item.get("version") else ""
    return f"pkg:generic/{re.sub(r'[^A-Za-z0-9._-]', '-', item['name'])}{version}"


def _component_type(item):
    if item["kind"] == "apt":
        return "library"
    path = item["path"]
    if path.endswith((".gguf", ".safetensors")) or path.startswith(("models/", "ollama/models/")):
        return "machine-learning-model"
    if path.startswith(("images/", "localai/")) and path.endswith(".tar"):
        return "container"
    return "file"


def sbom(files, collection_version, created, downloads=None):
    """A CycloneDX 1.5 JSON document (dict) of the bundle: one component per file entry (apt
    packages as pkg:deb purls, llm_downloads entries with a ``pypi`` pin as pkg:pypi, others
    pkg:generic), each with its SHA-256."""
    downloads = downloads or {}
    components = []
    for item in sorted(files, key=lambda f: f["path"]):
        if item["kind"] in ("apt-index", "index", "sbom"):
            continue
        entry = downloads.get(item["name"]) if item["kind"] == "download" else None
        release = item["path"].split("/")[1] if item["kind"] == "apt" else ""
        components.append({
            "type": _component_type(item),
            "bom-ref": item["path"],
            "name": item["name"],
            "version": item["version"],
            "purl": _purl(item, release, (entry or {}).get("pypi", "")),
            "hashes": [{"alg": "SHA-256", "content": item["sha256"]}],
            "properties": [{"name": "teamllm:path", "value": item["path"]},
                           {"name": "teamllm:size", "value": str(item["size"])}],
        })
    digest = hashlib.sha256(sha256sums_text(files).encode()).hexdigest()
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'teamllm-bundle:' + digest)}",
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": {"components": [{"type": "application", "name": "teamllm.stack",
                                      "version": str(collection_version)}]},
            "component": {"type": "data", "name": "teamllm-bundle", "version": str(collection_version),
                          "bom-ref": "teamllm-bundle"},
        },
        "components": components,
    }


def write_bundle_index(root, downloads, collection_version, created, previous=None):
    """Write bom.cdx.json and SHA256SUMS into ``root`` and return the manifest dict listing
    every file (SHA256SUMS and the SBOM included). When ``previous`` (the bundle's manifest
    dict) lists the same files, it is returned as it is and nothing is written, so that a
    rebuild of an unchanged bundle keeps its manifest and signature."""
    by_path = downloads_by_path(downloads)
    files = [file_entry(root, p, by_path) for p in bundle_files(root, UNLISTED + (SUMS, SBOM))]
    document = sbom(files, collection_version, created, downloads)
    if previous is not None:
        old = {f["path"]: f for f in previous.get("files", [])}
        same = (all(old.get(f["path"]) == f for f in files)
                and set(old) == {f["path"] for f in files} | {SUMS, SBOM}
                and not verify_tree(root, previous))
        if same:
            return previous
    sums_text = sha256sums_text(files)
    _write(os.path.join(root, SBOM), (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())
    _write(os.path.join(root, SUMS), sums_text.encode())
    files += [file_entry(root, SBOM), file_entry(root, SUMS)]
    return build_manifest(files, collection_version, created)


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


# --- split and join ----------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
          "KI": 1024, "MI": 1024**2, "GI": 1024**3, "TI": 1024**4}


def parse_size(value):
    """Bytes of a size: an integer, or "4GiB", "700M", "1G" (K/M/G/T powers of 1000; Ki/Mi/
    Gi/Ti powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise BundleError(f"bundle split size {value!r} is not a size: write e.g. 4GiB or 700MB")
        unit = (match[2] or "").upper().rstrip("B")
        size = int(match[1]) * _UNITS[unit]
    if size <= 0:
        raise BundleError(f"bundle split size {value!r} must be more than 0 bytes")
    return size


def part_plan(total, part_size):
    """[(offset, length), ...] cutting ``total`` bytes into parts of ``part_size`` (the last
    shorter); one empty part for an empty file."""
    if total == 0:
        return [(0, 0)]
    return [(offset, min(part_size, total - offset)) for offset in range(0, total, part_size)]


def part_name(name, index):
    return f"{name}.tar.part-{index:04d}"


def split_file(tar_path, part_size, out_dir, name, extra=None):
    """Cut ``tar_path`` into ``<name>.tar.part-NNNN`` files in ``out_dir`` and write
    ``<name>.parts.json`` (with the keys of ``extra`` added); returns that document."""
    total = os.path.getsize(tar_path)
    whole = hashlib.sha256()
    parts = []
    with open(tar_path, "rb") as src:
        for index, (_offset, length) in enumerate(part_plan(total, part_size), 1):
            digest, left = hashlib.sha256(), length
            path = os.path.join(out_dir, part_name(name, index))
            with open(path + ".tmp", "wb") as dst:
                while left:
                    chunk = src.read(min(_CHUNK, left))
                    if not chunk:
                        raise BundleError(f"{tar_path} got shorter while it was split")
                    dst.write(chunk)
                    digest.update(chunk)
                    whole.update(chunk)
                    left -= len(chunk)
            os.replace(path + ".tmp", path)
            parts.append({"path": part_name(name, index), "size": length, "sha256": digest.hexdigest()})
    document = {**(extra or {}), "format": FORMAT, "name": f"{name}.tar", "size": total,
                "sha256": whole.hexdigest(), "parts": parts}
    _write(os.path.join(out_dir, f"{name}.parts.json"), manifest_bytes(document))
    return document


def parts_problems(document, directory):
    """Problems of the parts a parts.json ``document`` lists, in ``directory`` ([] when each is
    present with its size and sha256)."""
    problems = []
    if not isinstance(document, dict) or not isinstance(document.get("parts"), list) or not document["parts"]:
        return ["parts.json lists no parts"]
    if sum(p.get("size", 0) for p in document["parts"]) != document.get("size"):
        problems.append("parts.json: the parts' sizes do not add up to the whole")
    for part in document["parts"]:
        path = part.get("path", "")
        if "/" in path or not path:
            problems.append(f"parts.json: part name {path!r} is not a plain file name")
            continue
        full = os.path.join(directory, path)
        if not os.path.isfile(full):
            problems.append(f"{path}: missing")
        elif os.path.getsize(full) != part.get("size"):
            problems.append(f"{path}: size {os.path.getsize(full)}, parts.json says {part.get('size')}")
        elif sha256_file(full) != part.get("sha256"):
            problems.append(f"{path}: sha256 differs from parts.json's")
    return problems


def join_parts(parts_json, dest):
    """Check every part parts.json (a path) lists, join them into ``dest`` and check the whole
    tar's size and sha256; raises :class:`BundleError` (and leaves no ``dest``) on any
    mismatch. Returns the parts document."""
    directory = os.path.dirname(os.path.abspath(parts_json))
    with open(parts_json, "rb") as handle:
        try:
            document = json.loads(handle.read())
        except ValueError as exc:
            raise BundleError(f"{parts_json} is not JSON: {exc}") from None
    problems = parts_problems(document, directory)
    if problems:
        raise BundleError(problems)
    whole, tmp = hashlib.sha256(), dest + ".joining"
    with open(tmp, "wb") as dst:
        for part in document["parts"]:
            with open(os.path.join(directory, part["path"]), "rb") as src:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    dst.write(chunk)
                    whole.update(chunk)
    if os.path.getsize(tmp) != document["size"] or whole.hexdigest() != document["sha256"]:
        os.unlink(tmp)
        raise BundleError(f"{document.get('name')}: the joined parts differ from the whole tar parts.json records")
    os.replace(tmp, dest)
    return document


def make_tar(root, dest, name):
    """Write the bundle directory ``root`` as the tar ``dest`` with one top directory
    ``name``: files sorted, owner 0, mode 0644 (directories 0755), mtime 0, so the same bundle
    gives the same bytes."""
    import tarfile

    def normal(info):
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        info.mode = 0o755 if info.isdir() else 0o644
        return info

    tmp = dest + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(root, arcname=name, recursive=False, filter=normal)
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            rel_dir = os.path.relpath(directory, root)
            for entry in sorted(dirs) + sorted(files):
                full = os.path.join(directory, entry)
                arc = os.path.normpath(os.path.join(name, rel_dir, entry))
                tar.add(full, arcname=arc, recursive=False, filter=normal)
    os.replace(tmp, dest)


def unpack_tar(tar_path, dest):
    """Unpack a bundle tar (one top directory) so that ``dest`` becomes that directory: into
    ``dest + ".unpacking"`` first (an interrupted unpack is redone from the start), then moved
    into place. Only regular files and directories inside it are accepted."""
    import shutil
    import tarfile

    work = dest + ".unpacking"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
        tops = {m.name.split("/", 1)[0] for m in members}
        bad = [m.name for m in members if not (m.isfile() or m.isdir())]
        if len(tops) != 1 or bad:
            shutil.rmtree(work)
            raise BundleError(f"{tar_path} is not a bundle tar (one top directory of files): {bad or sorted(tops)}")
        tar.extractall(work, filter="data")
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.replace(os.path.join(work, tops.pop()), dest)
    shutil.rmtree(work)
