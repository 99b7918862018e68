# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Filters over the download manifest; the logic lives in module_utils/_downloads.py."""

from __future__ import annotations

DOCUMENTATION = r"""
name: download_source
short_description: Resolve a download manifest entry to its source and sha256
description:
  - Takes the name of an entry of C(llm_downloads) and returns where to fetch it from
    (C(url) or controller C(src)) and the sha256 it must match.
options:
  _input:
    description: The entry's name.
    type: str
    required: true
  manifest:
    description: The download manifest (C(llm_downloads)).
    type: dict
    required: true
  source:
    description: C(upstream), C(mirror) or C(controller).
    type: str
    default: upstream
  mirror_url:
    description: Base URL of the mirror.
    type: str
    default: ""
  artifacts_dir:
    description: Mirror directory on the controller.
    type: str
    default: ""
  sums:
    description: Content of the mirror's SHA256SUMS, for entries whose sha256 is C(mirror).
    type: str
"""

EXAMPLES = r"""
- name: Resolve the llama.cpp server artifact
  ansible.builtin.set_fact:
    artifact: "{{ 'llama_server_cpu' | teamllm.stack.download_source(llm_downloads, source='controller', artifacts_dir='/srv/mirror', sums=sums_text) }}"
"""

RETURN = r"""
_value:
  description: name, version, filename, source, url, src, sha256.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.teamllm.stack.plugins.module_utils._downloads import (
    DownloadError,
    resolve,
)


def download_source(name, manifest, source="upstream", mirror_url="", artifacts_dir="", sums=None):
    try:
        return resolve(name, manifest, source, mirror_url, artifacts_dir, sums)
    except DownloadError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"download_source": download_source}
