#!/usr/bin/python
# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0

DOCUMENTATION = r"""
module: bundle_index
short_description: Write the offline bundle's manifest, SHA256SUMS and SBOM, and sign the manifest
description:
  - Lists every file of the bundle directory C(path) in C(manifest.json) (format
    C(teamllm-bundle/1) - path, size, sha256, kind, name, version; docs/airgap.md), writes
    C(SHA256SUMS) derived from it and C(bom.cdx.json), a CycloneDX 1.5 SBOM with one component
    per artifact and Debian package.
  - Signs C(manifest.json) with the bundle key (C(manifest.json.sig), a binary detached
    signature) and copies the public key beside it as C(teamllm-bundle.pub.gpg) (for people;
    nodes take the key from the controller).
  - When the bundle's files are those its manifest lists and the signature is good, nothing
    is written (the manifest keeps its C(created) time).
  - Refuses a bundle that holds links or other non-regular files.
version_added: 0.1.0
author: teamllm.stack developers (!UNKNOWN)
requirements: [gpg and gpgv on the controller]
options:
  path:
    description: The bundle directory (C(llm_bundle_dir)).
    type: path
    required: true
  downloads:
    description: The download manifest (C(llm_downloads)); names and versions the artifacts.
    type: dict
    default: {}
  collection_version:
    description: The collection's version, recorded in the manifest.
    type: str
    required: true
  key_dir:
    description: The bundle key's GnuPG home (C(llm_bundle_key_dir)).
    type: path
    required: true
  expected:
    description:
      - The artifacts' paths the bundle holds; with C(releases), any other file (left by an
        earlier build for other choices, or put there by hand) fails the task, named, before
        anything is signed. Not checked when omitted.
    type: list
    elements: str
  releases:
    description: The Debian codenames whose C(apt/<codename>/) the bundle holds (with C(expected)).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - teamllm.stack.attributes
  - teamllm.stack.attributes.action_group
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Write and sign the bundle's manifest
  teamllm.stack.bundle_index:
    path: /srv/teamllm-bundle
    downloads: "{{ llm_downloads }}"
    collection_version: 0.1.0
    key_dir: ~/.local/share/teamllm/bundle-key
"""

RETURN = r"""
files:
  description: Number of files the manifest lists.
  type: int
  returned: success
size:
  description: Total bytes of the files the manifest lists.
  type: int
  returned: success
manifest_sha256:
  description: The sha256 of manifest.json.
  type: str
  returned: success
"""

import hashlib
import os
import shutil
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.teamllm.stack.plugins.module_utils import _bundle as b
from ansible_collections.teamllm.stack.plugins.module_utils import _bundle_gpg as g


def main():
    module = AnsibleModule(
        argument_spec={"path": {"type": "path", "required": True},
                       "downloads": {"type": "dict", "default": {}},
                       "collection_version": {"type": "str", "required": True},
                       "key_dir": {"type": "path", "required": True},
                       "expected": {"type": "list", "elements": "str"},
                       "releases": {"type": "list", "elements": "str", "default": []}},
        supports_check_mode=False,
    )
    p = module.params
    root = p["path"]

    def run(argv):
        return module.run_command(argv, encoding=None)

    fpr = g.fingerprint(run, p["key_dir"])
    if not fpr:
        module.fail_json(msg=f"{p['key_dir']} holds no bundle key (teamllm.stack.bundle_key creates it)")
    if p["expected"] is not None:
        try:
            stray = b.stray_files(root, p["expected"], p["releases"])
        except b.BundleError as exc:
            module.fail_json(msg=str(exc))
        if stray:
            module.fail_json(msg=f"{root} holds files the inventory's bundle does not need (an earlier build for "
                                 f"other choices?): {', '.join(stray[:20])}{' ...' if len(stray) > 20 else ''}; "
                                 "remove them, or build into an empty llm_bundle_dir", stray=stray)
    manifest_path = os.path.join(root, b.MANIFEST)
    previous = None
    if os.path.isfile(manifest_path):
        try:
            with open(manifest_path, "rb") as handle:
                previous = b.load_manifest(handle.read())
        except b.BundleError:
            previous = None
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    try:
        manifest = b.write_bundle_index(root, p["downloads"], p["collection_version"], created, previous)
    except b.BundleError as exc:
        module.fail_json(msg=str(exc))
    changed = manifest is not previous
    data = b.manifest_bytes(manifest)
    if changed:
        with open(manifest_path + ".tmp", "wb") as handle:
            handle.write(data)
        os.replace(manifest_path + ".tmp", manifest_path)
    keyring = g.public_key_path(p["key_dir"])
    signature = os.path.join(root, b.SIGNATURE)
    if changed or not g.verify_detached(run, keyring, signature, manifest_path):
        try:
            g.sign(run, p["key_dir"], fpr, manifest_path, signature, "detach")
        except b.BundleError as exc:
            module.fail_json(msg=str(exc))
        changed = True
    bundled_key = os.path.join(root, b.PUBLIC_KEY)
    with open(keyring, "rb") as handle:
        key_bytes = handle.read()
    if not os.path.isfile(bundled_key) or open(bundled_key, "rb").read() != key_bytes:
        shutil.copyfile(keyring, bundled_key)
        changed = True
    module.exit_json(changed=changed, files=len(manifest["files"]),
                     size=sum(f["size"] for f in manifest["files"]),
                     manifest_sha256=hashlib.sha256(data).hexdigest(), fingerprint=fpr)


if __name__ == "__main__":
    main()
