# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters over the download manifest; the logic lives in module_utils/_downloads.py. Each
filter is documented in the .yml file of its name beside this one."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils._downloads import (
    DownloadError,
    bundle_missing,
    bundle_sums,
    image_pin,
    mirror_base,
    resolve,
)


def download_source(name, manifest, source="upstream", mirror_url="", artifacts_dir="", sums=None):
    try:
        return resolve(name, manifest, source, mirror_url, artifacts_dir, sums)
    except DownloadError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def bundle_sums_filter(manifest):
    try:
        return bundle_sums(manifest)
    except DownloadError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def bundle_missing_filter(needed, manifest, apt_packages=None):
    """``needed``: the list filter bundle_downloads returns (entries with ``name`` and
    ``problem``), or a dict of entries by name."""
    if isinstance(needed, dict):
        entries, problems = dict(needed), []
    else:
        entries = {e["name"]: e for e in needed or []}
        problems = [f"llm_downloads.{e['name']}: {e['problem']}" for e in needed or [] if e.get("problem")]
    try:
        return problems + bundle_missing(entries, manifest, apt_packages)
    except DownloadError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def image_reference(name, manifest, allow_unpinned=None, host="this host"):
    return image_pin(name, manifest, allow_unpinned or [], host)


class FilterModule:
    def filters(self):
        return {"download_source": download_source, "image_reference": image_reference,
                "bundle_sums": bundle_sums_filter, "mirror_base": mirror_base,
                "bundle_missing": bundle_missing_filter}
