#!/usr/bin/python
# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0

DOCUMENTATION = r"""
module: bundle_key
short_description: Create the offline bundle's signing key, or keep the one there
description:
  - Makes C(key_dir) a GnuPG home of its own (mode 0700) holding an OpenPGP ed25519 signing
    key without a passphrase (C(gpg --quick-gen-key)), unless it already holds a secret key -
    an existing key is kept.
  - Writes the public key as a binary keyring, C(<key_dir>/teamllm-bundle.pub.gpg); nodes check
    the bundle's signatures against that file (C(llm_bundle_public_key)).
  - The secret key has no passphrase, so whoever can read C(key_dir) can sign bundles - keep it
    on the controller, readable by its owner only (docs/airgap.md).
version_added: 0.1.0
author: teamllm.stack developers (!UNKNOWN)
requirements: [gpg (GnuPG 2.1 or later) on the controller]
options:
  key_dir:
    description: The key's GnuPG home directory (C(llm_bundle_key_dir)).
    type: path
    required: true
  uid:
    description: The key's user ID.
    type: str
    default: teamllm.stack bundle signing key
extends_documentation_fragment:
  - teamllm.stack.attributes
  - teamllm.stack.attributes.action_group
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Create the bundle key (kept when it exists)
  teamllm.stack.bundle_key:
    key_dir: ~/.local/share/teamllm/bundle-key
  register: bundle_key
"""

RETURN = r"""
fingerprint:
  description: The key's fingerprint (empty in check mode when no key exists yet).
  type: str
  returned: always
public_key:
  description: The exported public key (binary keyring).
  type: str
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.teamllm.stack.plugins.module_utils import _bundle_gpg as g
from ansible_collections.teamllm.stack.plugins.module_utils._bundle import BundleError


def main():
    module = AnsibleModule(
        argument_spec={"key_dir": {"type": "path", "required": True},
                       "uid": {"type": "str", "default": g.DEFAULT_UID}},
        supports_check_mode=True,
    )
    key_dir = module.params["key_dir"]

    def run(argv):
        return module.run_command(argv, encoding=None)

    public_key = g.public_key_path(key_dir)
    changed = False
    try:
        fpr = g.fingerprint(run, key_dir)
        if not fpr:
            changed = True
            if module.check_mode:
                module.exit_json(changed=True, fingerprint="", public_key=public_key)
            fpr = g.generate(run, key_dir, module.params["uid"])
        exported = g.export(run, key_dir, fpr)
        current = b""
        if os.path.isfile(public_key):
            with open(public_key, "rb") as handle:
                current = handle.read()
        if current != exported:
            changed = True
            if not module.check_mode:
                with open(public_key + ".tmp", "wb") as handle:
                    handle.write(exported)
                os.chmod(public_key + ".tmp", 0o644)
                os.replace(public_key + ".tmp", public_key)
    except BundleError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=changed, fingerprint=fpr, public_key=public_key)


if __name__ == "__main__":
    main()
