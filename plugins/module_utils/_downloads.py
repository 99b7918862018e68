# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Resolve an entry of the download manifest (`llm_downloads`) to where it is fetched from and
the sha256 it must have. Pure logic: no Ansible, no I/O. Private to the collection."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import urlsplit

SOURCES = ("upstream", "mirror", "controller")
NOT_RECORDED = "TO_BE_FILLED"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# Keys that make an entry an apt repository (a tree, not one file: no sha256 of its own).
_REPOSITORY_KEYS = ("layout", "suites")


class DownloadError(ValueError):
    """An entry or a setting that cannot be resolved; the message says what to fix."""


def _has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "@" in url
    return bool(parts.username or parts.password) or "@" in parts.netloc


def mirror_url_problem(url: object) -> str:
    """Why ``llm_mirror_url`` cannot be used, or "". An https:// URL with a host name, or a
    directory on the nodes: an absolute path or a file:/// URL (a carried bundle). The URL
    itself is never quoted: it may hold credentials."""
    if not isinstance(url, str):
        return ("llm_mirror_url must be a string (the mirror's https:// base URL, or the "
                "bundle's absolute path on the nodes)")
    if not url:
        return ""
    if _has_credentials(url):
        return ("llm_mirror_url holds credentials (user:password@): they would reach facts, "
                "task results and the nodes' apt sources; serve the mirror without a login on "
                "the private network (its files are checked by sha256), or use "
                "llm_artifact_source: controller")
    if url.startswith("/"):
        return "" if _local_path_ok(url) else _LOCAL_PATH_PROBLEM
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "http":
        return ("llm_mirror_url uses plain http://: serve the mirror over https:// (the mirror "
                "role does, with a certificate of the collection's CA), use the bundle's path "
                "on the nodes, or llm_artifact_source: controller (copies over the Ansible "
                "connection)")
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc or not _local_path_ok(parts.path):
            return _LOCAL_PATH_PROBLEM
        return ""
    if scheme != "https" or not urlsplit(url).hostname:
        return ("llm_mirror_url must be an https:// URL with a host name (the mirror's base URL) "
                "or an absolute path on the nodes (a carried bundle, e.g. /srv/teamllm-bundle)")
    return ""


_LOCAL_PATH_PROBLEM = ("llm_mirror_url as a path must be absolute and normalized, without '..' "
                       "(e.g. /srv/teamllm-bundle or file:///srv/teamllm-bundle)")


def _local_path_ok(path: str) -> bool:
    text = path.rstrip("/") or "/"
    return (text.startswith("/") and not text.startswith("//")
            and posixpath.normpath(text) == text and ".." not in text.split("/"))


def mirror_base(url: str) -> str:
    """``llm_mirror_url`` as the base of fetchable URLs, without a trailing slash: a local path
    becomes a file:// URL (get_url and apt both read file:///path), others stay as they are."""
    url = str(url or "").rstrip("/")
    return "file://" + url if url.startswith("/") else url


def is_local_mirror(url: str) -> bool:
    """Whether ``llm_mirror_url`` is a directory on the nodes (a path or a file:// URL)."""
    return str(url or "").startswith(("/", "file:"))


def sha256_problem(name: str, sha: object, variable: str = "llm_downloads") -> str:
    """Why an entry's ``sha256`` is not usable, or "" (64 hex digits, or "mirror")."""
    text = str(sha or "")
    if text == NOT_RECORDED:
        return (f"{variable}.{name}.sha256 is not recorded yet ({NOT_RECORDED}): download the "
                "file once on a connected machine, check it against the publisher's checksum, "
                f"and record the output of `sha256sum FILE` as llm_model_downloads.{name}.sha256 "
                "in the inventory (an entry of the same name replaces the collection's)")
    if text.lower() == "mirror" or _HEX64.match(text.lower()):
        return ""
    return (f"{variable}.{name}.sha256 must be 64 hex digits (the output of `sha256sum FILE`) "
            "or 'mirror' (recorded in the mirror's SHA256SUMS by the mirror builder)")


def entry_problems(name: str, entry: object, *, needed: bool = True,
                   variable: str = "llm_downloads") -> list[str]:
    """Problems with one manifest entry, checkable without fetching anything: a relative
    ``path`` without ``..``, a ``sha256`` of 64 hex digits or "mirror" (``TO_BE_FILLED`` passes
    only when ``needed`` is false: an entry no model or role of this run uses), an https ``url``. Entries without a
    ``path`` are container images pulled by name; apt repository entries have no sha256."""
    label = f"{variable}.{name}"
    if not isinstance(entry, dict):
        return [f"{label} must be a dict (version, path, url, sha256)"]
    problems = []
    path = entry.get("path")
    if path is not None or "sha256" in entry:
        text = str(path or "").rstrip("/")
        if not text or text.startswith("/") or "\\" in text or posixpath.normpath(text) != text \
                or ".." in text.split("/"):
            problems.append(f"{label}.path must be a relative path inside the mirror, without "
                            "'..', '//' or a leading '/' (e.g. models/name.gguf)")
    if not any(key in entry for key in _REPOSITORY_KEYS) and ("path" in entry or "sha256" in entry):
        sha = entry.get("sha256")
        if needed or str(sha) != NOT_RECORDED:
            problem = sha256_problem(name, sha, variable)
            if problem:
                problems.append(problem)
    url = entry.get("url")
    if url:
        if not isinstance(url, str) or _has_credentials(url):
            problems.append(f"{label}.url must not hold credentials")
        elif not url.lower().startswith("https://"):
            problems.append(f"{label}.url must be an https:// URL (the sha256 protects the file, "
                            "https the request), or empty when the mirror builder makes it")
    return problems


def parse_sha256sums(text: str) -> dict[str, str]:
    """Parse `sha256sum` output ("<hex>  <path>" or "<hex> *<path>") into {path: hex}."""
    sums: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not _HEX64.match(parts[0].lower()):
            raise DownloadError(f"SHA256SUMS line {lineno} is not '<sha256>  <path>': {line!r}")
        path = parts[1].lstrip("*")
        if path.startswith("./"):
            path = path[2:]
        sums[path] = parts[0].lower()
    return sums


def resolve(
    name: str,
    manifest: dict,
    source: str = "upstream",
    mirror_url: str = "",
    artifacts_dir: str = "",
    sums_text: str | dict | None = None,
) -> dict:
    """Return {name, version, filename, source, url, src, sha256} for manifest entry `name`.

    `url` is set for upstream/mirror sources, `src` (a controller path) for the controller
    source. `sums_text` is the mirror's SHA256SUMS (text), needed when the entry's sha256 is
    "mirror"; or the signed bundle manifest's {path: sha256} (``bundle_sums``): then every
    entry must be listed there, and a sha256 the inventory pins must agree with it.
    """
    if source not in SOURCES:
        raise DownloadError(
            f"llm_artifact_source is {source!r}; use one of {', '.join(SOURCES)}"
        )
    if name not in manifest:
        raise DownloadError(f"no entry {name!r} in llm_downloads (the download manifest)")
    entry = manifest[name]
    path = str(entry.get("path") or "").strip("/")
    if not path:
        raise DownloadError(f"llm_downloads.{name} has no 'path'")
    if source == "mirror" and _has_credentials(str(mirror_url or "")):
        # never let credentials reach a fact or a task result (the URL is not quoted)
        raise DownloadError(mirror_url_problem(str(mirror_url)))
    problem = sha256_problem(name, entry.get("sha256"))
    if problem:
        raise DownloadError(problem)

    sha = str(entry.get("sha256") or "").lower()
    if isinstance(sums_text, dict):
        signed = sums_text.get(path)
        if not signed:
            raise DownloadError(
                f"{path} (llm_downloads.{name}) is not listed in the bundle's signed manifest: "
                "rebuild the bundle with playbooks/mirror.yml for this inventory and carry it "
                "again; nothing was downloaded"
            )
        if sha != "mirror" and sha != signed:
            raise DownloadError(
                f"llm_downloads.{name}.sha256 ({sha}) differs from the bundle's signed manifest "
                f"({signed}) for {path}: the bundle was built from another version of this "
                "entry; rebuild it, or record the bundle's sha256 in the inventory"
            )
        sha = signed
    elif sha == "mirror":
        if sums_text is None:
            raise DownloadError(
                f"llm_downloads.{name} is built by the mirror builder; its checksum comes from "
                "the mirror's SHA256SUMS, which was not given"
            )
        sums = parse_sha256sums(sums_text)
        if path not in sums:
            raise DownloadError(
                f"{path} is not listed in the mirror's SHA256SUMS: build it with "
                "`lab/lab.sh artifacts` (or playbooks/mirror.yml) first"
            )
        sha = sums[path]
    if not _HEX64.match(sha):
        raise DownloadError(f"llm_downloads.{name}.sha256 is not a sha256 hex digest: {sha!r}")

    result = {
        "name": name,
        "version": str(entry.get("version", "")),
        "filename": path.rsplit("/", 1)[-1],
        "source": source,
        "url": "",
        "src": "",
        "sha256": sha,
    }
    if source == "controller":
        if not artifacts_dir:
            raise DownloadError(
                "llm_artifact_source is 'controller' but llm_artifacts_dir is empty: set it to "
                "the mirror directory on the controller"
            )
        result["src"] = artifacts_dir.rstrip("/") + "/" + path
    elif source == "mirror":
        if not mirror_url:
            raise DownloadError(
                "llm_artifact_source is 'mirror' but llm_mirror_url is empty: set it to the "
                "mirror's base URL"
            )
        result["url"] = mirror_base(mirror_url) + "/" + path
    else:
        url = str(entry.get("url") or "")
        if not url:
            raise DownloadError(
                f"llm_downloads.{name} has no upstream url (the collection builds it): set "
                "llm_artifact_source to 'mirror' or 'controller' and build the mirror"
            )
        result["url"] = url
    return result


BUNDLE_FORMAT = "teamllm-bundle/1"


def bundle_sums(manifest: object) -> dict[str, str]:
    """{path: sha256} of a bundle's manifest.json (format teamllm-bundle/1), already parsed and
    already verified against its signature. Raises DownloadError naming what is wrong."""
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise DownloadError(f"the bundle's manifest.json is not of the format {BUNDLE_FORMAT}: "
                            "build the bundle with this collection's playbooks/mirror.yml")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise DownloadError("the bundle's manifest.json has no list 'files'")
    sums: dict[str, str] = {}
    for i, item in enumerate(files):
        path = str(item.get("path") or "") if isinstance(item, dict) else ""
        sha = str(item.get("sha256") or "").lower() if isinstance(item, dict) else ""
        if not path or path.startswith("/") or ".." in path.split("/") or not _HEX64.match(sha):
            raise DownloadError(f"the bundle's manifest.json files[{i}] needs a relative path "
                                "and a sha256 of 64 hex digits")
        sums[path] = sha
    return sums


def bundle_missing(needed: dict, manifest: object, apt_packages: object = None) -> list[str]:
    """What the play will need that the bundle lacks, one line each, before any host changes.

    ``needed`` maps each llm_downloads entry name the play uses to its entry (with ``path`` and
    ``sha256``); ``apt_packages`` maps an apt codename (bookworm, trixie) to the Debian package
    names the roles install there. A file is lacking when its path is not in the manifest or its
    pinned sha256 differs; a package when no ``kind: apt`` file of the manifest under
    ``apt/<codename>/`` carries its name."""
    sums = bundle_sums(manifest)
    lines = []
    for name in sorted(needed):
        entry = needed[name] if isinstance(needed[name], dict) else {}
        path = str(entry.get("path") or "").strip("/")
        if not path:
            continue  # an image pulled by name or an apt repository: not a file of the bundle
        pinned = str(entry.get("sha256") or "").lower()
        if path not in sums:
            lines.append(f"llm_downloads.{name}: {path} is not in the bundle")
        elif _HEX64.match(pinned) and pinned != sums[path]:
            lines.append(f"llm_downloads.{name}: {path} in the bundle has sha256 {sums[path]}, "
                         f"the inventory pins {pinned}")
    have: dict[str, set] = {}
    for item in manifest.get("files", []):
        if item.get("kind") == "apt":
            parts = str(item.get("path")).split("/")
            if len(parts) >= 3 and parts[0] == "apt":
                have.setdefault(parts[1], set()).add(str(item.get("name") or ""))
    for codename in sorted(apt_packages or {}):
        for package in sorted(set((apt_packages or {})[codename] or [])):
            if package not in have.get(codename, set()):
                lines.append(f"apt package {package} ({codename}) is not in the bundle's "
                             f"apt/{codename}/ repository")
    return lines


_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_pin(name: str, manifest: dict, allow_unpinned=(), host: str = "this host") -> dict:
    """How to pull the container image of manifest entry `name`: {ref, pinned, problem}.

    `ref` is `image@digest` when the entry records its registry digest, else `image:tag`.
    `problem` says why the pull must be refused ("" when it may go ahead): an entry that is not
    a container image, a malformed digest, or no digest at all while `name` is not listed in
    `allow_unpinned` (the inventory's llm_allow_unpinned) - a tag can be moved to another image,
    a digest cannot."""
    entry = manifest.get(name)
    if not isinstance(entry, dict) or not entry.get("image") or not entry.get("tag"):
        return {"ref": "", "pinned": False,
                "problem": f"{host}: llm_downloads.{name} is not a container image entry (it needs "
                           "image, tag and digest)"}
    image, tag = str(entry["image"]), str(entry["tag"])
    digest = str(entry.get("digest") or "").strip()
    if digest:
        if not _DIGEST.match(digest):
            return {"ref": "", "pinned": False,
                    "problem": f"{host}: llm_downloads.{name}.digest is {digest!r}, not "
                               "sha256:<64 lowercase hex digits>"}
        return {"ref": f"{image}@{digest}", "pinned": True, "problem": ""}
    ref = f"{image}:{tag}"
    if name in (allow_unpinned or ()):
        return {"ref": ref, "pinned": False, "problem": ""}
    return {"ref": ref, "pinned": False, "problem": (
        f"{host}: llm_downloads.{name} ({ref}) records no digest, so a pull could get another "
        f"image than the one pinned. Record it on a connected machine (docker buildx imagetools "
        f"inspect {ref}, the Digest line) as digest: sha256:... in the entry (llm_model_downloads "
        f"may override it), load the image from the mirror (llm_artifact_source: mirror or "
        f"controller), or accept the tag alone for this entry with llm_allow_unpinned: [{name}]")}
