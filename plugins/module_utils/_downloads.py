# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Resolve an entry of the download manifest (`llm_downloads`) to where it is fetched from and
the sha256 it must have. Pure logic: no Ansible, no I/O. Private to the collection."""

from __future__ import annotations

import re

SOURCES = ("upstream", "mirror", "controller")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(ValueError):
    """An entry or a setting that cannot be resolved; the message says what to fix."""


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
    sums_text: str | None = None,
) -> dict:
    """Return {name, version, filename, source, url, src, sha256} for manifest entry `name`.

    `url` is set for upstream/mirror sources, `src` (a controller path) for the controller
    source. `sums_text` is the mirror's SHA256SUMS, needed when the entry's sha256 is "mirror".
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

    sha = str(entry.get("sha256") or "").lower()
    if sha == "mirror":
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
        result["url"] = mirror_url.rstrip("/") + "/" + path
    else:
        url = str(entry.get("url") or "")
        if not url:
            raise DownloadError(
                f"llm_downloads.{name} has no upstream url (the collection builds it): set "
                "llm_artifact_source to 'mirror' or 'controller' and build the mirror"
            )
        result["url"] = url
    return result


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
