#!/usr/bin/python
# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0

DOCUMENTATION = r"""
module: bundle_parts
short_description: Split the offline bundle into parts for removable media, or join them with checks
description:
  - C(state=split) packs the bundle directory C(path) into one tar (files sorted, owner 0,
    mtime 0) and cuts it into C(<name>.tar.part-0001), ... of C(part_size) bytes in C(dest),
    with C(<name>.parts.json) listing each part's size and sha256 and the whole tar's. Parts
    already made from the same signed manifest are kept.
  - C(state=joined) checks every part C(<name>.parts.json) in C(path) lists, joins them, checks
    the whole tar, and unpacks it as the directory C(dest) (through C(<dest>.unpacking), so an
    interrupted unpack is redone). A missing or corrupted part fails with nothing unpacked.
  - The joined bundle is then checked as any bundle is - its signature first (docs/airgap.md).
version_added: 0.1.0
author: teamllm.stack developers (!UNKNOWN)
options:
  state:
    description: C(split) or C(joined).
    type: str
    choices: [split, joined]
    default: split
  path:
    description: The bundle directory (split), or the C(<name>.parts.json) file (joined).
    type: path
    required: true
  dest:
    description: The directory for the parts (split), or the bundle directory to unpack (joined).
    type: path
    required: true
  part_size:
    description: Bytes per part (split), e.g. C(4GiB), C(700MB) or an integer.
    type: str
    default: 4GiB
  name:
    description: The parts' base name (split).
    type: str
    default: teamllm-bundle
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
- name: Cut the bundle into 4 GiB parts
  teamllm.stack.bundle_parts:
    path: /srv/teamllm-bundle
    dest: /media/usb
    part_size: 4GiB

- name: Join the parts again (checked) into a bundle directory
  teamllm.stack.bundle_parts:
    state: joined
    path: /media/usb/teamllm-bundle.parts.json
    dest: /srv/teamllm-bundle
"""

RETURN = r"""
parts:
  description: The parts (path, size, sha256).
  type: list
  elements: dict
  returned: success
sha256:
  description: The sha256 of the whole tar.
  type: str
  returned: success
"""

import hashlib
import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.teamllm.stack.plugins.module_utils import _bundle as b


def main():
    module = AnsibleModule(
        argument_spec={"state": {"type": "str", "choices": ["split", "joined"], "default": "split"},
                       "path": {"type": "path", "required": True},
                       "dest": {"type": "path", "required": True},
                       "part_size": {"type": "str", "default": "4GiB"},
                       "name": {"type": "str", "default": "teamllm-bundle"}},
        supports_check_mode=False,
    )
    p = module.params
    try:
        if p["state"] == "joined":
            tar = p["dest"].rstrip("/") + ".tar"
            document = b.join_parts(p["path"], tar)
            b.unpack_tar(tar, p["dest"])
            os.unlink(tar)
            module.exit_json(changed=True, parts=document["parts"], sha256=document["sha256"])
        size = b.parse_size(p["part_size"])
        with open(os.path.join(p["path"], b.MANIFEST), "rb") as handle:
            manifest_sha = hashlib.sha256(handle.read()).hexdigest()
        parts_json = os.path.join(p["dest"], f"{p['name']}.parts.json")
        if os.path.isfile(parts_json):
            with open(parts_json, "rb") as handle:
                old = json.loads(handle.read())
            if (old.get("manifest_sha256") == manifest_sha and old["parts"][0]["size"] in (size, old["size"])
                    and not b.parts_problems(old, p["dest"])):
                module.exit_json(changed=False, parts=old["parts"], sha256=old["sha256"])
        os.makedirs(p["dest"], exist_ok=True)
        for stale in os.listdir(p["dest"]):
            if stale.startswith(f"{p['name']}.tar.part-"):
                os.unlink(os.path.join(p["dest"], stale))
        tar = os.path.join(p["dest"], f"{p['name']}.tar")
        b.make_tar(p["path"], tar, p["name"])
        document = b.split_file(tar, size, p["dest"], p["name"], {"manifest_sha256": manifest_sha})
        os.unlink(tar)
    except (b.BundleError, OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, parts=document["parts"], sha256=document["sha256"])


if __name__ == "__main__":
    main()
