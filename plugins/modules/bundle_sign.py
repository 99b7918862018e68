#!/usr/bin/python
# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0

DOCUMENTATION = r"""
module: bundle_sign
short_description: Sign a file of the offline bundle with the bundle key
description:
  - Writes C(dest), a signature of C(src) by the key in C(key_dir) (made by
    M(teamllm.stack.bundle_key)) - a binary detached signature (C(mode=detach), the bundle's
    C(manifest.json.sig)) or a clearsigned copy (C(mode=clearsign), an apt repository's
    C(InRelease) from its C(Release)).
  - Nothing is written when C(dest) already holds a good signature of C(src) (checked with
    C(gpgv) against the key's exported public key).
version_added: 0.1.0
author: teamllm.stack developers (!UNKNOWN)
requirements: [gpg and gpgv on the controller]
options:
  src:
    description: The file to sign.
    type: path
    required: true
  dest:
    description: The signature (or clearsigned file) to write.
    type: path
    required: true
  key_dir:
    description: The bundle key's GnuPG home (C(llm_bundle_key_dir)).
    type: path
    required: true
  mode:
    description: C(detach) or C(clearsign).
    type: str
    choices: [detach, clearsign]
    default: detach
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
- name: Sign the apt repository's index
  teamllm.stack.bundle_sign:
    src: /srv/teamllm-bundle/apt/bookworm/Release
    dest: /srv/teamllm-bundle/apt/bookworm/InRelease
    key_dir: ~/.local/share/teamllm/bundle-key
    mode: clearsign
"""

RETURN = r"""
fingerprint:
  description: The fingerprint of the key that signs.
  type: str
  returned: success
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.teamllm.stack.plugins.module_utils import _bundle_gpg as g
from ansible_collections.teamllm.stack.plugins.module_utils._bundle import BundleError


def main():
    module = AnsibleModule(
        argument_spec={"src": {"type": "path", "required": True},
                       "dest": {"type": "path", "required": True},
                       "key_dir": {"type": "path", "required": True},
                       "mode": {"type": "str", "choices": ["detach", "clearsign"], "default": "detach"}},
        supports_check_mode=True,
    )
    p = module.params

    def run(argv):
        return module.run_command(argv, encoding=None)

    fpr = g.fingerprint(run, p["key_dir"])
    if not fpr:
        module.fail_json(msg=f"{p['key_dir']} holds no bundle key: run playbooks/mirror.yml (it creates one), "
                             "or set llm_bundle_key_dir to the directory that holds it")
    keyring = g.public_key_path(p["key_dir"])
    if p["mode"] == "detach":
        good = g.verify_detached(run, keyring, p["dest"], p["src"])
    else:
        with open(p["src"], "rb") as handle:
            good = g.verify_clearsigned(run, keyring, p["dest"], handle.read())
    if good:
        module.exit_json(changed=False, fingerprint=fpr)
    if not module.check_mode:
        try:
            g.sign(run, p["key_dir"], fpr, p["src"], p["dest"], p["mode"])
        except BundleError as exc:
            module.fail_json(msg=str(exc))
    module.exit_json(changed=True, fingerprint=fpr)


if __name__ == "__main__":
    main()
